//! Search over a tenant's chunks: lexical, vector, and the child windows of chunks, on PostgreSQL.

use async_trait::async_trait;
use cortex_core::StoreError;
use cortex_core::ids::TenantId;
use cortex_core::knowledge::{ChunkHit, ChunkVectors, Windows};
use cortex_core::store::{Result, SearchSource};
use cortex_search::lexical::LexicalIndex;
use cortex_search::vectors::Matrix;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::vector::PgVector;
use crate::{PgStore, chunk_from, corrupt, db};

fn hit_from(row: &PgRow) -> Result<ChunkHit> {
    Ok(ChunkHit {
        chunk: chunk_from(row)?,
        document_title: row.try_get("document_title").map_err(db)?,
        score: row.try_get::<f64, _>("score").map_err(db)? as f32,
    })
}

/// The chunk columns plus the document title, for search hits.
const HIT_COLUMNS: &str = "c.id, c.tenant_id, c.document_id, c.ordinal, c.text, c.answer,
    c.heading_path, c.page_start, c.page_end, c.token_count, c.content_hash, c.created_at,
    d.title AS document_title";

/// The dimension the HNSW index covers (migration `0003`); other dimensions are searched
/// exactly.
const INDEXED_DIMS: usize = 384;

impl PgStore {
    /// The tenant's matrix of `model` vectors of `dims` dimensions, from the cache when it is
    /// current; `None` when the tenant has more than `max_in_memory_vectors`.
    async fn matrix(
        &self,
        tenant: TenantId,
        model: &str,
        dims: usize,
    ) -> Result<Option<std::sync::Arc<Matrix>>> {
        let versions_sql = "SELECT version, rebuild_version FROM embedding_versions
             WHERE tenant_id = $1 AND model = $2";
        let versions: Option<(i64, i64)> = sqlx::query_as(versions_sql)
            .bind(tenant.0)
            .bind(model)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let (version, _) = versions.unwrap_or((0, 0));
        if let Some(m) = self.vectors.get(tenant, model, version) {
            return Ok(Some(m));
        }
        // One snapshot for the versions and the rows, so a matrix never carries a version
        // newer than its rows.
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let (version, rebuild): (i64, i64) = sqlx::query_as(versions_sql)
            .bind(tenant.0)
            .bind(model)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .unwrap_or((0, 0));
        let dims_i32 = i32::try_from(dims).unwrap_or(i32::MAX);
        // Vectors added since the cached matrix are appended to it when nothing was deleted
        // meanwhile; otherwise the tenant's vectors are loaded whole.
        let plan = self.vectors.plan(tenant, model, dims, version, rebuild);
        let since = match plan.base_len() {
            Some(_) => plan.since(),
            None => {
                let count: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM embeddings WHERE tenant_id = $1 AND model = $2 AND dims = $3",
                )
                .bind(tenant.0)
                .bind(model)
                .bind(dims_i32)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
                if count > self.max_in_memory_vectors {
                    return Ok(None);
                }
                -1
            }
        };
        let rows = sqlx::query(
            "SELECT content_hash, embedding::real[] AS v FROM embeddings
             WHERE tenant_id = $1 AND model = $2 AND dims = $3
               AND added_version > $4 AND added_version <= $5",
        )
        .bind(tenant.0)
        .bind(model)
        .bind(dims_i32)
        .bind(since)
        .bind(version)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut vectors = Vec::with_capacity(rows.len());
        for row in rows {
            vectors.push((
                row.try_get::<String, _>("content_hash").map_err(db)?,
                row.try_get::<Vec<f32>, _>("v").map_err(db)?,
            ));
        }
        if plan
            .base_len()
            .is_some_and(|n| (n + vectors.len()) as i64 > self.max_in_memory_vectors)
        {
            return Ok(None);
        }
        Ok(Some(self.vectors.refresh(tenant, model, plan, vectors)))
    }

    /// The tenant's lexical index: from the cache when it is current; the cached one with the
    /// chunks added since appended when none was deleted meanwhile; else built from every
    /// chunk. Changes made here or in another process are seen (the version row).
    async fn lexical_index(&self, tenant: TenantId) -> Result<std::sync::Arc<LexicalIndex<Uuid>>> {
        const VERSIONS: &str =
            "SELECT version, rebuild_version FROM chunk_versions WHERE tenant_id = $1";
        let versions: Option<(i64, i64)> = sqlx::query_as(VERSIONS)
            .bind(tenant.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let (version, _) = versions.unwrap_or((0, 0));
        if let Some(index) = self.lexical.get(tenant, version) {
            return Ok(index);
        }
        // One snapshot for the versions and the rows.
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let (version, rebuild): (i64, i64) = sqlx::query_as(VERSIONS)
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .unwrap_or((0, 0));
        let plan = self.lexical.plan(tenant, version, rebuild);
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, text FROM chunks
             WHERE tenant_id = $1 AND added_version > $2 AND added_version <= $3
             ORDER BY id",
        )
        .bind(tenant.0)
        .bind(plan.since())
        .bind(version)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let cache = self.lexical.clone();
        tokio::task::spawn_blocking(move || cache.refresh(tenant, plan, rows))
            .await
            .map_err(StoreError::other)
    }
}

#[async_trait]
impl SearchSource for PgStore {
    async fn chunk_vectors(
        &self,
        tenant: TenantId,
        model: &str,
        hashes: &[String],
    ) -> Result<Vec<ChunkVectors>> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT content_hash, dims, embedding::real[] AS v, windows, windows_of FROM embeddings
             WHERE tenant_id = $1 AND model = $2 AND content_hash = ANY($3)",
        )
        .bind(tenant.0)
        .bind(model)
        .bind(hashes)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                let hash: String = row.try_get("content_hash").map_err(db)?;
                let dims: i32 = row.try_get("dims").map_err(db)?;
                let vector: Vec<f32> = row.try_get("v").map_err(db)?;
                let windows = Windows::from_stored(
                    row.try_get("windows").map_err(db)?,
                    row.try_get("windows_of").map_err(db)?,
                    usize::try_from(dims).unwrap_or(0),
                )
                .map_err(|what| corrupt(what, &hash))?;
                Ok(ChunkVectors {
                    content_hash: hash,
                    vector,
                    windows,
                })
            })
            .collect()
    }

    async fn lexical_search_weighed(
        &self,
        tenant: TenantId,
        query: &str,
        k: u32,
    ) -> Result<(Vec<ChunkHit>, f32)> {
        let index = self.lexical_index(tenant).await?;
        let (best, weight) = index.search_weighed(query, k as usize, &self.lexical.analyzer);
        if best.is_empty() {
            return Ok((Vec::new(), weight));
        }
        let ids: Vec<Uuid> = best.iter().map(|(id, _)| *id).collect();
        let sql = format!(
            "SELECT {HIT_COLUMNS}, 0.0::float8 AS score
             FROM chunks c JOIN documents d ON d.id = c.document_id
             WHERE c.tenant_id = $1 AND c.id = ANY($2)"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut hits = rows.iter().map(hit_from).collect::<Result<Vec<_>>>()?;
        for hit in &mut hits {
            hit.score = best
                .iter()
                .find(|(id, _)| *id == hit.chunk.id.0)
                .map_or(f32::MIN, |(_, score)| *score);
        }
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.chunk.id.cmp(&b.chunk.id))
        });
        Ok((hits, weight))
    }

    async fn vector_search(
        &self,
        tenant: TenantId,
        model: &str,
        vector: &[f32],
        k: u32,
    ) -> Result<Vec<ChunkHit>> {
        if k == 0 || vector.is_empty() {
            return Ok(Vec::new());
        }
        let dims = vector.len();
        // Spare candidates cover hashes shared by several chunks, and hashes whose chunks
        // went since the matrix was loaded.
        let want = i64::from(k) + 8;
        if let Some(matrix) = self.matrix(tenant, model, dims).await? {
            let best = matrix.search(vector, want as usize);
            if best.is_empty() {
                return Ok(Vec::new());
            }
            let hashes: Vec<&str> = best.iter().map(|(h, _)| h.as_str()).collect();
            let rows = sqlx::query(&format!(
                "SELECT {HIT_COLUMNS}, 0.0::float8 AS score
                 FROM chunks c JOIN documents d ON d.id = c.document_id
                 WHERE c.tenant_id = $1 AND c.content_hash = ANY($2)"
            ))
            .bind(tenant.0)
            .bind(&hashes)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
            let mut hits = rows.iter().map(hit_from).collect::<Result<Vec<_>>>()?;
            for hit in &mut hits {
                hit.score = best
                    .iter()
                    .find(|(h, _)| *h == hit.chunk.content_hash)
                    .map_or(f32::MIN, |(_, s)| *s);
            }
            hits.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then(a.chunk.id.cmp(&b.chunk.id))
            });
            hits.truncate(k as usize);
            return Ok(hits);
        }
        // A tenant too large for memory: pgvector's HNSW index.
        let search = |approximate: bool| {
            // HNSW filters by tenant *after* walking the graph, so it may find fewer than k
            // rows of this tenant; the exact scan below then answers instead.
            let order = if approximate {
                format!("e.embedding::vector({INDEXED_DIMS}) <=> $3::vector({INDEXED_DIMS})")
            } else {
                "e.embedding <=> $3".to_owned()
            };
            format!(
                "WITH best AS (
                     SELECT e.content_hash, 1 - ({order}) AS score FROM embeddings e
                     WHERE e.tenant_id = $1 AND e.model = $2 AND e.dims = {dims}
                     ORDER BY {order} LIMIT $4)
                 SELECT {HIT_COLUMNS}, best.score::float8 AS score
                 FROM best JOIN chunks c ON c.tenant_id = $1 AND c.content_hash = best.content_hash
                 JOIN documents d ON d.id = c.document_id
                 ORDER BY score DESC, c.id LIMIT $5"
            )
        };
        let run = |sql: String, ef_search: Option<i64>| async move {
            let mut tx = self.pool.begin().await.map_err(db)?;
            if let Some(ef) = ef_search {
                sqlx::query(&format!("SET LOCAL hnsw.ef_search = {ef}"))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            let rows = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(model)
                .bind(PgVector(vector))
                .bind(want)
                .bind(i64::from(k))
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?;
            tx.commit().await.map_err(db)?;
            rows.iter().map(hit_from).collect::<Result<Vec<_>>>()
        };
        if dims == INDEXED_DIMS {
            let ef = (want * 10).clamp(40, 1000);
            let hits = run(search(true), Some(ef)).await?;
            if hits.len() >= k as usize {
                return Ok(hits);
            }
        }
        run(search(false), None).await
    }
}
