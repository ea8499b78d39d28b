//! The [`Store`] port on SQLite: the embedded default, one file under `./data/` in WAL mode.
//!
//! Depends on `cortex-core` and sqlx only. Ids are stored as 16-byte blobs and times as Unix
//! milliseconds, so ordering and comparisons are plain integer work. Rules that span rows (the
//! last-owner rule, single use of tokens) are single conditional statements: SQLite runs one
//! writer at a time, so a statement that reads and writes is atomic.

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
mod widget;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use cortex_core::StoreError;
use cortex_core::audit::NewAuditEvent;
use cortex_core::ids::{ChunkId, DocumentId, TenantId};
use cortex_core::jobs::NewJob;
use cortex_core::knowledge::Chunk;
use cortex_core::store::{Backend, Result};
use cortex_core::tenancy::Email;
use cortex_search::lexical::LexicalCache;
use cortex_search::vectors::VectorCache;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The SQLite backend. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    vectors: Arc<VectorCache>,
    /// Per-tenant BM25 indexes, keyed by chunk `seq`.
    lexical: Arc<LexicalCache<i64>>,
}

/// Memory the in-process vector matrices may use before the least recently searched tenants
/// are dropped: 1 GiB holds ~650k chunks of 384 dimensions.
pub const DEFAULT_VECTOR_CACHE_BYTES: usize = 1 << 30;

/// Memory the in-process lexical indexes may use (100k chunks of ~200 words take ~100 MB).
pub const DEFAULT_LEXICAL_CACHE_BYTES: usize = 512 << 20;

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// with WAL journaling, foreign keys and a busy timeout, then applies pending migrations.
    pub async fn connect(url: &str) -> std::result::Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Windows' vectors are read a few dozen rows per question from a file that grows
            // to gigabytes: memory-mapped reads skip a system call per page.
            .pragma("mmap_size", MMAP_BYTES.to_string());
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            vectors: Arc::new(VectorCache::new(DEFAULT_VECTOR_CACHE_BYTES)),
            lexical: Arc::new(LexicalCache::new(DEFAULT_LEXICAL_CACHE_BYTES)),
        })
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

/// How much of the database file SQLite reads through a memory map.
const MMAP_BYTES: u64 = 4 << 30;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn opt_ts(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(ts)
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

fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn chunk_from(row: &SqliteRow) -> Result<Chunk> {
    let path: String = row.try_get("heading_path").map_err(db)?;
    Ok(Chunk {
        id: ChunkId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        document_id: DocumentId(row.try_get("document_id").map_err(db)?),
        ordinal: count(row.try_get("ordinal").map_err(db)?),
        text: row.try_get("text").map_err(db)?,
        answer: row.try_get("answer").map_err(db)?,
        heading_path: serde_json::from_str(&path).map_err(|_| corrupt("heading path", &path))?,
        page_start: row
            .try_get::<Option<i64>, _>("page_start")
            .map_err(db)?
            .map(count),
        page_end: row
            .try_get::<Option<i64>, _>("page_end")
            .map_err(db)?
            .map(count),
        token_count: count(row.try_get("token_count").map_err(db)?),
        content_hash: row.try_get("content_hash").map_err(db)?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

async fn insert_audit(
    tx: &mut Transaction<'_, Sqlite>,
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
    .bind(e.metadata.to_string())
    .bind(ms(e.created_at))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
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
    conn: &mut SqliteConnection,
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
        .bind(job.payload.to_string())
        .bind(job.unique_key.as_deref())
        .bind(i64::from(job.max_attempts))
        .bind(ms(job.run_at))
        .bind(ms(job.created_at))
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(done.rows_affected() == 1)
}

impl SqliteStore {
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
impl Backend for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn readiness(&self) -> Result<()> {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
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
