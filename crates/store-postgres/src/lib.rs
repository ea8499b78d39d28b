//! The [`Store`] port on PostgreSQL 16: the scale-out backend, shared by many instances.
//!
//! Depends on `cortex-core` and sqlx only. Rules that span rows are enforced under a lock:
//! changes that could leave a tenant without an owner first lock the tenant's row
//! (`SELECT … FOR UPDATE`), so two owners demoting each other at once cannot both succeed under
//! READ COMMITTED. Single use of tokens is one conditional `UPDATE … RETURNING`.

mod audit;
mod bot;
mod channels;
mod conversations;
mod credentials;
mod delivery;
mod jobs;
mod knowledge;
mod search;
mod tenants;
mod usage;
mod vector;
mod widget;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cortex_core::StoreError;
use cortex_core::audit::NewAuditEvent;
use cortex_core::ids::{ChunkId, DocumentId, TenantId};
use cortex_core::jobs::NewJob;
use cortex_core::knowledge::Chunk;
use cortex_core::store::{Backend, Result};
use cortex_core::tenancy::Email;
use cortex_search::lexical::LexicalCache;
use cortex_search::vectors::VectorCache;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The PostgreSQL backend. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Per-tenant BM25 indexes, keyed by chunk id.
    lexical: std::sync::Arc<LexicalCache<Uuid>>,
    /// Per-tenant vector matrices, scanned exactly in process.
    vectors: std::sync::Arc<VectorCache>,
    /// Tenants with more vectors than this are searched with HNSW.
    max_in_memory_vectors: i64,
}

/// Memory the in-process vector matrices may use before the least recently searched tenants
/// are dropped: 1 GiB holds ~650k chunks of 384 dimensions.
pub const DEFAULT_VECTOR_CACHE_BYTES: usize = 1 << 30;

/// Tenants with more vectors of a model than this are searched with pgvector's HNSW index
/// instead of in memory (a matrix this size takes a third of the cache).
pub const MAX_IN_MEMORY_VECTORS: i64 = 200_000;

/// Memory the in-process lexical indexes may use (100k chunks of ~200 words take ~100 MB).
pub const DEFAULT_LEXICAL_CACHE_BYTES: usize = 512 << 20;

impl PgStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db`). Does not migrate.
    pub async fn connect(url: &str) -> std::result::Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            lexical: std::sync::Arc::new(LexicalCache::new(DEFAULT_LEXICAL_CACHE_BYTES)),
            vectors: std::sync::Arc::new(VectorCache::new(DEFAULT_VECTOR_CACHE_BYTES)),
            max_in_memory_vectors: MAX_IN_MEMORY_VECTORS,
        })
    }

    /// Searches tenants with more than `n` vectors with HNSW (0: every tenant).
    pub fn with_max_in_memory_vectors(mut self, n: i64) -> Self {
        self.max_in_memory_vectors = n;
        self
    }

    /// Applies every migration not yet applied.
    pub async fn migrate(&self) -> std::result::Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Names of the migrations this binary carries, for the pairing test.
    pub fn migration_names() -> Vec<String> {
        MIGRATOR
            .iter()
            .map(|m| format!("{:04}_{}", m.version, m.description))
            .collect()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Scratch databases on a shared server, for test suites and `cortexlayer eval`.
pub mod testing {
    use sqlx::Connection;

    /// Creates an empty database with a unique name on the server at `base_url` and returns
    /// the URL that points at it.
    pub async fn fresh_database(base_url: &str) -> Result<String, sqlx::Error> {
        let name = format!("cortex_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(base_url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(with_database(base_url, &name))
    }

    /// `base_url` with its database name replaced by `name` (query string kept).
    pub fn with_database(base_url: &str, name: &str) -> String {
        let (main, query) = match base_url.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (base_url, None),
        };
        let authority_start = main.find("://").map_or(0, |i| i + 3);
        let root = match main[authority_start..].find('/') {
            Some(i) => &main[..authority_start + i],
            None => main,
        };
        match query {
            Some(q) => format!("{root}/{name}?{q}"),
            None => format!("{root}/{name}"),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::with_database;

        #[test]
        fn the_database_name_is_replaced_and_the_query_kept() {
            assert_eq!(
                with_database("postgres://u@h:5/postgres", "x"),
                "postgres://u@h:5/x"
            );
            assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
            assert_eq!(
                with_database("postgres://u:p@h/db?sslmode=disable", "x"),
                "postgres://u:p@h/x?sslmode=disable"
            );
        }
    }
}

fn db(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        e => StoreError::other(e),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Other(format!("corrupt {what} in database: {value:?}").into())
}

fn parse_enum<T: FromStr>(what: &str, value: String) -> Result<T> {
    value.parse().map_err(|_| corrupt(what, &value))
}

fn email_from(value: String) -> Result<Email> {
    Email::parse(&value).map_err(|_| corrupt("email", &value))
}

/// Enqueues a job at the end of its tenant's line for its kind, the line's tenant matched by
/// `$tenant` (an `=` or `IS NULL` match rather than `IS`, so the partial index `jobs_turns`
/// serves it).
macro_rules! insert_job_sql {
    ($tenant:literal) => {
        concat!(
            "INSERT INTO jobs (id, tenant_id, kind, payload, unique_key, status, attempts, max_attempts, run_at, created_at, updated_at, turn)
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $8,
                     COALESCE((SELECT MAX(turn) + 1 FROM jobs WHERE ",
            $tenant,
            " AND kind = $3 AND status = 'queued'), 0))
             ON CONFLICT (unique_key) DO NOTHING"
        )
    };
}

async fn insert_job(
    conn: &mut PgConnection,
    tenant: Option<TenantId>,
    job: &NewJob,
) -> Result<bool> {
    // The job's turn: one past the last of its tenant's queued jobs of its kind.
    let sql = match tenant {
        Some(_) => insert_job_sql!("tenant_id = $2"),
        None => insert_job_sql!("tenant_id IS NULL"),
    };
    let done = sqlx::query(sql)
        .bind(job.id.0)
        .bind(tenant.map(|t| t.0))
        .bind(&job.kind)
        .bind(&job.payload)
        .bind(job.unique_key.as_deref())
        .bind(i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
        .bind(job.run_at)
        .bind(job.created_at)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

fn count(v: i32) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn chunk_from(row: &PgRow) -> Result<Chunk> {
    Ok(Chunk {
        id: ChunkId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        document_id: DocumentId(row.try_get("document_id").map_err(db)?),
        ordinal: count(row.try_get("ordinal").map_err(db)?),
        text: row.try_get("text").map_err(db)?,
        answer: row.try_get("answer").map_err(db)?,
        heading_path: row.try_get("heading_path").map_err(db)?,
        page_start: row
            .try_get::<Option<i32>, _>("page_start")
            .map_err(db)?
            .map(count),
        page_end: row
            .try_get::<Option<i32>, _>("page_end")
            .map_err(db)?
            .map(count),
        token_count: count(row.try_get("token_count").map_err(db)?),
        content_hash: row.try_get("content_hash").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

async fn insert_audit(
    tx: &mut Transaction<'_, Postgres>,
    tenant: TenantId,
    e: &NewAuditEvent,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, metadata, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(e.id.as_uuid())
    .bind(tenant.0)
    .bind(e.actor.kind())
    .bind(e.actor.id())
    .bind(e.action)
    .bind(e.target_type)
    .bind(e.target_id.as_deref())
    .bind(&e.metadata)
    .bind(e.created_at)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

/// Serialises changes to one tenant's membership: concurrent role changes and removals queue
/// here instead of each seeing two owners and together leaving none.
async fn lock_tenant(tx: &mut Transaction<'_, Postgres>, tenant: TenantId) -> Result<()> {
    sqlx::query("SELECT id FROM tenants WHERE id = $1 FOR UPDATE")
        .bind(tenant.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db)?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

impl PgStore {
    /// Why a conditional change matched no row: the row is there, so the rule refused it
    /// (`Conflict(code)`), or this tenant has no such row (`NotFound`).
    async fn refused(
        &self,
        table: &'static str,
        tenant: TenantId,
        id: Uuid,
        code: &'static str,
    ) -> StoreError {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1 AND id = $2");
        match sqlx::query_scalar::<_, i64>(&sql)
            .bind(tenant.0)
            .bind(id)
            .fetch_one(&self.pool)
            .await
        {
            Ok(n) if n > 0 => StoreError::Conflict(code),
            Ok(_) => StoreError::NotFound,
            Err(e) => db(e),
        }
    }
}

#[async_trait]
impl Backend for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn readiness(&self) -> Result<()> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        let missing = MIGRATOR
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .count();
        if missing > 0 {
            return Err(StoreError::Other(
                format!("{missing} migrations not applied").into(),
            ));
        }
        Ok(())
    }
}
