//! The knowledge base: documents, their chunks and embeddings, on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cortex_core::StoreError;
use cortex_core::ids::{DocumentId, JobId, TenantId};
use cortex_core::jobs::NewJob;
use cortex_core::knowledge::{
    Chunk, ChunkVectors, Document, DocumentStage, NewChunk, NewDocument, Original,
    PendingEmbedding, vector_to_bytes, windows_to_bytes,
};
use cortex_core::store::{KnowledgeStore, Page, Result, conflict};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use crate::{
    SqliteStore, chunk_from, count, db, insert_job, is_unique_violation, ms, opt_ts, parse_enum, ts,
};

fn document_from(row: &SqliteRow) -> Result<Document> {
    Ok(Document {
        id: DocumentId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        title: row.try_get("title").map_err(db)?,
        filename: row.try_get("filename").map_err(db)?,
        source: parse_enum("document source", row.try_get("source").map_err(db)?)?,
        source_url: row.try_get("source_url").map_err(db)?,
        kind: row.try_get("kind").map_err(db)?,
        size_bytes: row.try_get::<i64, _>("size_bytes").map_err(db)?.max(0) as u64,
        sha256: row.try_get("sha256").map_err(db)?,
        blob_key: row.try_get("blob_key").map_err(db)?,
        status: parse_enum("document status", row.try_get("status").map_err(db)?)?,
        stage: parse_enum("document stage", row.try_get("stage").map_err(db)?)?,
        progress: row.try_get::<i64, _>("progress").map_err(db)?.clamp(0, 100) as u8,
        chunk_count: count(row.try_get("chunk_count").map_err(db)?),
        error_code: row.try_get("error_code").map_err(db)?,
        error_message: row.try_get("error_message").map_err(db)?,
        generation: count(row.try_get("generation").map_err(db)?),
        job_id: row
            .try_get::<Option<Uuid>, _>("job_id")
            .map_err(db)?
            .map(JobId),
        lexical_ready_at: opt_ts(row.try_get("lexical_ready_at").map_err(db)?),
        vectors_ready_at: opt_ts(row.try_get("vectors_ready_at").map_err(db)?),
        embedding_model: row.try_get("embedding_model").map_err(db)?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
        updated_at: ts(row.try_get("updated_at").map_err(db)?),
    })
}

/// Removes a document's chunks, telling the lexical indexes when some went.
async fn delete_chunks(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    document: Uuid,
) -> Result<Vec<String>> {
    let hashes: Vec<String> = sqlx::query_scalar(
        "DELETE FROM chunks WHERE tenant_id = $1 AND document_id = $2 RETURNING content_hash",
    )
    .bind(tenant.0)
    .bind(document)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    if !hashes.is_empty() {
        bump_chunk_version(conn, tenant, true).await?;
    }
    Ok(hashes)
}

/// Marks the tenant's chunks as changed (in the caller's transaction) and returns the new
/// version: chunks added carry it, so every process's lexical index appends them on its next
/// search; `deleted` also bumps the rebuild counter, so those indexes are rebuilt instead.
async fn bump_chunk_version(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    deleted: bool,
) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO chunk_versions (tenant_id, version, rebuild_version) VALUES ($1, 1, $2)
         ON CONFLICT (tenant_id) DO UPDATE SET version = chunk_versions.version + 1,
             rebuild_version = chunk_versions.rebuild_version + $2
         RETURNING version",
    )
    .bind(tenant.0)
    .bind(i64::from(deleted))
    .fetch_one(conn)
    .await
    .map_err(db)
}

/// Drops vectors of the tenant that no chunk uses any more, and tells the vector caches
/// when some went.
async fn collect_vectors(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    mut hashes: Vec<String>,
) -> Result<()> {
    hashes.sort_unstable();
    hashes.dedup();
    if hashes.is_empty() {
        return Ok(());
    }
    // By key, model by model (every model with vectors has a version row): a scan of the
    // tenant's vectors on each reprocessed document made an import quadratic.
    let gone = sqlx::query(
        "DELETE FROM embeddings WHERE tenant_id = $1
             AND model IN (SELECT model FROM embedding_versions WHERE tenant_id = $1)
             AND content_hash IN (SELECT value FROM json_each($2))
             AND NOT EXISTS (SELECT 1 FROM chunks c
                 WHERE c.tenant_id = $1 AND c.content_hash = embeddings.content_hash)",
    )
    .bind(tenant.0)
    .bind(serde_json::to_string(&hashes).map_err(StoreError::other)?)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if gone.rows_affected() > 0 {
        sqlx::query(
            "UPDATE embedding_versions SET version = version + 1, rebuild_version = rebuild_version + 1
             WHERE tenant_id = $1",
        )
            .bind(tenant.0)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

#[async_trait]
impl KnowledgeStore for SqliteStore {
    async fn create_document(
        &self,
        tenant: TenantId,
        d: NewDocument,
        job: NewJob,
        max_documents: Option<u32>,
    ) -> Result<Document> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // One statement checks the limit and inserts: SQLite runs one writer at a time.
        let done = sqlx::query(
            "INSERT INTO documents (id, tenant_id, title, filename, source, source_url, kind, size_bytes,
                 sha256, blob_key, status, stage, job_id, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 'queued', $11, $12, $12
             WHERE $13 IS NULL OR (SELECT COUNT(*) FROM documents WHERE tenant_id = $2) < $13",
        )
        .bind(d.id.0)
        .bind(tenant.0)
        .bind(&d.title)
        .bind(d.filename.as_deref())
        .bind(d.source.as_str())
        .bind(d.source_url.as_deref())
        .bind(&d.kind)
        .bind(i64::try_from(d.size_bytes).unwrap_or(i64::MAX))
        .bind(&d.sha256)
        .bind(d.blob_key.as_deref())
        .bind(job.id.0)
        .bind(ms(d.created_at))
        .bind(max_documents.map(i64::from))
        .execute(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(conflict::DOCUMENT_EXISTS) } else { db(e) })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(conflict::DOCUMENT_LIMIT_REACHED));
        }
        insert_job(&mut tx, Some(tenant), &job).await?;
        let row = sqlx::query("SELECT * FROM documents WHERE id = $1")
            .bind(d.id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        document_from(&row)
    }

    async fn attach_original(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        original: Original,
        next: NewJob,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE documents SET kind = $4, size_bytes = $5, sha256 = $6, blob_key = $7,
                 title = COALESCE($8, title), source_url = COALESCE($9, source_url), job_id = $10,
                 updated_at = $11
             WHERE tenant_id = $1 AND id = $2 AND generation = $3",
        )
        .bind(tenant.0)
        .bind(document.0)
        .bind(i64::from(generation))
        .bind(&original.kind)
        .bind(i64::try_from(original.size_bytes).unwrap_or(i64::MAX))
        .bind(&original.sha256)
        .bind(&original.blob_key)
        .bind(original.title.as_deref())
        .bind(original.source_url.as_deref())
        .bind(next.id.0)
        .bind(ms(Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(self
                .refused("documents", tenant, document.0, conflict::STALE_GENERATION)
                .await);
        }
        insert_job(&mut tx, Some(tenant), &next).await?;
        tx.commit().await.map_err(db)
    }

    async fn get_document(&self, tenant: TenantId, document: DocumentId) -> Result<Document> {
        let row = sqlx::query("SELECT * FROM documents WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(document.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        document_from(&row)
    }

    async fn list_documents(&self, tenant: TenantId, page: Page) -> Result<Vec<Document>> {
        let rows = sqlx::query(
            "SELECT * FROM documents WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.0)
        .bind(page.before)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(document_from).collect()
    }

    async fn count_documents(&self, tenant: TenantId) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE tenant_id = $1")
            .bind(tenant.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        Ok(n.max(0) as u64)
    }

    async fn delete_document(&self, tenant: TenantId, document: DocumentId) -> Result<Document> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let gone: Vec<String> = sqlx::query_scalar(
            "SELECT content_hash FROM chunks WHERE tenant_id = $1 AND document_id = $2",
        )
        .bind(tenant.0)
        .bind(document.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let row = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2 RETURNING *")
            .bind(tenant.0)
            .bind(document.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound)?;
        // The cascade removes the chunks; their triggers remove the lexical entries.
        collect_vectors(&mut tx, tenant, gone).await?;
        tx.commit().await.map_err(db)?;
        document_from(&row)
    }

    async fn restart_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        job: NewJob,
    ) -> Result<Document> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(
            "UPDATE documents SET generation = generation + 1, status = 'pending', stage = 'queued',
                 progress = 0, error_code = NULL, error_message = NULL, job_id = $3, updated_at = $4
             WHERE tenant_id = $1 AND id = $2 RETURNING *",
        )
        .bind(tenant.0)
        .bind(document.0)
        .bind(job.id.0)
        .bind(ms(job.created_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .ok_or(StoreError::NotFound)?;
        insert_job(&mut tx, Some(tenant), &job).await?;
        tx.commit().await.map_err(db)?;
        document_from(&row)
    }

    async fn set_document_stage(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        stage: DocumentStage,
        progress: u8,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE documents SET status = 'processing', stage = $4, progress = $5, updated_at = $6
             WHERE tenant_id = $1 AND id = $2 AND generation = $3",
        )
        .bind(tenant.0)
        .bind(document.0)
        .bind(i64::from(generation))
        .bind(stage.as_str())
        .bind(i64::from(progress.min(100)))
        .bind(ms(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(self
                .refused("documents", tenant, document.0, conflict::STALE_GENERATION)
                .await);
        }
        Ok(())
    }

    async fn replace_chunks(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        chunks: Vec<NewChunk>,
        next: NewJob,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE documents SET status = 'processing', stage = 'embedding', progress = 50,
                 chunk_count = $4, lexical_ready_at = $5, vectors_ready_at = NULL, job_id = $6,
                 updated_at = $5
             WHERE tenant_id = $1 AND id = $2 AND generation = $3",
        )
        .bind(tenant.0)
        .bind(document.0)
        .bind(i64::from(generation))
        .bind(i64::try_from(chunks.len()).unwrap_or(i64::MAX))
        .bind(ms(at))
        .bind(next.id.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(self
                .refused("documents", tenant, document.0, conflict::STALE_GENERATION)
                .await);
        }
        let gone = delete_chunks(&mut tx, tenant, document.0).await?;
        // The new version first: the chunks carry it.
        let added = if chunks.is_empty() {
            0
        } else {
            bump_chunk_version(&mut tx, tenant, false).await?
        };
        for c in &chunks {
            sqlx::query(
                "INSERT INTO chunks (id, tenant_id, document_id, ordinal, text, answer, heading_path,
                     page_start, page_end, token_count, content_hash, created_at, added_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(c.id.0)
            .bind(tenant.0)
            .bind(document.0)
            .bind(i64::from(c.ordinal))
            .bind(&c.text)
            .bind(c.answer.as_deref())
            .bind(serde_json::to_string(&c.heading_path).unwrap_or_else(|_| "[]".into()))
            .bind(c.page_start.map(i64::from))
            .bind(c.page_end.map(i64::from))
            .bind(i64::from(c.token_count))
            .bind(&c.content_hash)
            .bind(ms(at))
            .bind(added)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        collect_vectors(&mut tx, tenant, gone).await?;
        insert_job(&mut tx, Some(tenant), &next).await?;
        tx.commit().await.map_err(db)
    }

    async fn fail_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        code: &str,
        message: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE documents SET status = 'failed', error_code = $4, error_message = $5,
                 chunk_count = 0, lexical_ready_at = NULL, vectors_ready_at = NULL, updated_at = $6
             WHERE tenant_id = $1 AND id = $2 AND generation = $3",
        )
        .bind(tenant.0)
        .bind(document.0)
        .bind(i64::from(generation))
        .bind(code)
        .bind(message)
        .bind(ms(Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(self
                .refused("documents", tenant, document.0, conflict::STALE_GENERATION)
                .await);
        }
        let gone = delete_chunks(&mut tx, tenant, document.0).await?;
        collect_vectors(&mut tx, tenant, gone).await?;
        tx.commit().await.map_err(db)
    }

    async fn pending_embeddings(
        &self,
        tenant: TenantId,
        document: DocumentId,
        model: &str,
        limit: u32,
    ) -> Result<Vec<PendingEmbedding>> {
        let rows = sqlx::query(
            "SELECT c.content_hash, MIN(c.text) AS text, MIN(c.answer) AS answer FROM chunks c
             WHERE c.tenant_id = $1 AND c.document_id = $2 AND NOT EXISTS (
                 SELECT 1 FROM embeddings e
                 WHERE e.tenant_id = $1 AND e.model = $3 AND e.content_hash = c.content_hash
                   AND e.windows IS NOT NULL)
             GROUP BY c.content_hash ORDER BY MIN(c.ordinal) LIMIT $4",
        )
        .bind(tenant.0)
        .bind(document.0)
        .bind(model)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(PendingEmbedding {
                    content_hash: r.try_get("content_hash").map_err(db)?,
                    text: r.try_get("text").map_err(db)?,
                    answer: r.try_get("answer").map_err(db)?,
                })
            })
            .collect()
    }

    async fn put_embeddings(
        &self,
        tenant: TenantId,
        model: &str,
        vectors: &[ChunkVectors],
    ) -> Result<()> {
        if vectors.is_empty() {
            return Ok(());
        }
        let now = ms(Utc::now());
        let mut tx = self.pool.begin().await.map_err(db)?;
        // The new version first: the rows carry it, so a process holding the previous one
        // appends exactly these.
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO embedding_versions (tenant_id, model, version) VALUES ($1, $2, 1)
             ON CONFLICT (tenant_id, model) DO UPDATE SET version = version + 1
             RETURNING version",
        )
        .bind(tenant.0)
        .bind(model)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        for v in vectors {
            // A vector stored before its windows existed keeps its row (and version): only
            // the windows are added.
            sqlx::query(
                "INSERT INTO embeddings (tenant_id, model, content_hash, dims, vector, created_at,
                     added_version, windows, windows_of)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT DO UPDATE SET windows = excluded.windows,
                     windows_of = excluded.windows_of
                 WHERE embeddings.windows IS NULL AND excluded.windows IS NOT NULL",
            )
            .bind(tenant.0)
            .bind(model)
            .bind(&v.content_hash)
            .bind(i64::try_from(v.vector.len()).unwrap_or(i64::MAX))
            .bind(vector_to_bytes(&v.vector))
            .bind(now)
            .bind(version)
            .bind(v.windows.as_ref().map(|w| windows_to_bytes(&w.vectors)))
            .bind(v.windows.as_ref().map(|w| w.of.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn finish_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        model: &str,
        at: DateTime<Utc>,
    ) -> Result<Document> {
        let row = sqlx::query(
            "UPDATE documents SET status = 'ready', stage = 'done', progress = 100,
                 vectors_ready_at = $4, embedding_model = $5, updated_at = $4
             WHERE tenant_id = $1 AND id = $2 AND generation = $3 RETURNING *",
        )
        .bind(tenant.0)
        .bind(document.0)
        .bind(i64::from(generation))
        .bind(ms(at))
        .bind(model)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match row {
            Some(row) => document_from(&row),
            None => Err(self
                .refused("documents", tenant, document.0, conflict::STALE_GENERATION)
                .await),
        }
    }

    async fn list_chunks(
        &self,
        tenant: TenantId,
        document: DocumentId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Chunk>> {
        let rows = sqlx::query(
            "SELECT * FROM chunks WHERE tenant_id = $1 AND document_id = $2 AND ordinal >= $3
             ORDER BY ordinal LIMIT $4",
        )
        .bind(tenant.0)
        .bind(document.0)
        .bind(i64::from(offset))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(chunk_from).collect()
    }

    async fn fail_abandoned_documents(&self, at: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let rows = sqlx::query(
            "UPDATE documents SET status = 'failed', error_code = 'processing_abandoned',
                 error_message = 'processing stopped after its last attempt: ' || COALESCE(
                     (SELECT last_error FROM jobs WHERE jobs.id = documents.job_id), 'unknown error'),
                 chunk_count = 0, lexical_ready_at = NULL, vectors_ready_at = NULL, updated_at = $1
             WHERE status IN ('pending', 'processing')
               AND job_id IN (SELECT id FROM jobs WHERE status = 'failed')
             RETURNING id, tenant_id",
        )
        .bind(ms(at))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        for row in &rows {
            let tenant = TenantId(row.try_get("tenant_id").map_err(db)?);
            let id: Uuid = row.try_get("id").map_err(db)?;
            let gone = delete_chunks(&mut tx, tenant, id).await?;
            collect_vectors(&mut tx, tenant, gone).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(rows.len() as u64)
    }
}
