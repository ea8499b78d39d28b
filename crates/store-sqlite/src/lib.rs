//! The [`Store`] port on SQLite: the embedded default, one file under `./data/` in WAL mode.
//!
//! Depends on `cortex-core` and sqlx only. Ids are stored as 16-byte blobs and times as Unix
//! milliseconds, so ordering and comparisons are plain integer work. Rules that span rows (the
//! last-owner rule, single use of tokens) are single conditional statements: SQLite runs one
//! writer at a time, so a statement that reads and writes is atomic.

mod answer;
mod channels;
mod widget;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use cortex_core::audit::{Actor, AuditEvent, NewAuditEvent};
use cortex_core::credentials::{
    ApiKey, ApiScope, NewApiKey, NewRefreshToken, PlatformAdmin, RefreshToken,
};
use cortex_core::ids::{
    ApiKeyId, ChunkId, DocumentId, InvitationId, JobId, PlatformAdminId, SignupId, TenantId,
    TokenFamilyId, UserId,
};
use cortex_core::jobs::{Job, Lease, NewJob};
use cortex_core::knowledge::{
    Chunk, ChunkHit, ChunkVectors, Document, DocumentStage, NewChunk, NewDocument, Original,
    PendingEmbedding, Windows, vector_from_bytes, vector_to_bytes, windows_to_bytes,
};
use cortex_core::lexical::{LexicalCache, LexicalIndex};
use cortex_core::store::{Page, RefreshUse, Result, conflict};
use cortex_core::tenancy::{
    CompanyName, Email, Invitation, NewInvitation, NewPendingSignup, NewTenant, NewUser,
    PendingSignup, Role, Tenant, TenantStatus, User,
};
use cortex_core::{Store, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use uuid::Uuid;

use cortex_core::vectors::{Matrix, VectorCache};

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

/// How much of the database file SQLite reads through a memory map.
const MMAP_BYTES: u64 = 4 << 30;

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

fn tenant_from(row: &SqliteRow) -> Result<Tenant> {
    Ok(Tenant {
        id: TenantId(row.try_get("id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        plan: row.try_get("plan").map_err(db)?,
        status: parse_enum("tenant status", row.try_get("status").map_err(db)?)?,
        status_before_suspension: row
            .try_get::<Option<String>, _>("status_before_suspension")
            .map_err(db)?
            .map(|s| parse_enum("tenant status", s))
            .transpose()?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
        updated_at: ts(row.try_get("updated_at").map_err(db)?),
    })
}

fn email_from(value: String) -> Result<Email> {
    Email::parse(&value).map_err(|_| corrupt("email", &value))
}

fn user_from(row: &SqliteRow) -> Result<User> {
    Ok(User {
        id: UserId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        email: email_from(row.try_get("email").map_err(db)?)?,
        name: row.try_get("name").map_err(db)?,
        role: parse_enum("role", row.try_get("role").map_err(db)?)?,
        password_hash: row.try_get("password_hash").map_err(db)?,
        email_verified_at: opt_ts(row.try_get("email_verified_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn pending_signup_from(row: &SqliteRow) -> Result<PendingSignup> {
    let company: String = row.try_get("company_name").map_err(db)?;
    Ok(PendingSignup {
        id: SignupId(row.try_get("id").map_err(db)?),
        email: email_from(row.try_get("email").map_err(db)?)?,
        company_name: CompanyName::parse(&company).map_err(StoreError::other)?,
        name: row.try_get("name").map_err(db)?,
        password_hash: row.try_get("password_hash").map_err(db)?,
        code_hash: row.try_get("code_hash").map_err(db)?,
        attempts: row
            .try_get::<i64, _>("attempts")
            .map_err(db)?
            .try_into()
            .unwrap_or(u32::MAX),
        expires_at: ts(row.try_get("expires_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn refresh_from(row: &SqliteRow) -> Result<RefreshToken> {
    Ok(RefreshToken {
        id: row.try_get::<Uuid, _>("id").map_err(db)?.into(),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        user_id: UserId(row.try_get("user_id").map_err(db)?),
        family_id: TokenFamilyId(row.try_get("family_id").map_err(db)?),
        token_hash: row.try_get("token_hash").map_err(db)?,
        expires_at: ts(row.try_get("expires_at").map_err(db)?),
        used_at: opt_ts(row.try_get("used_at").map_err(db)?),
        revoked_at: opt_ts(row.try_get("revoked_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn invitation_from(row: &SqliteRow) -> Result<Invitation> {
    Ok(Invitation {
        id: InvitationId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        email: email_from(row.try_get("email").map_err(db)?)?,
        role: parse_enum("role", row.try_get("role").map_err(db)?)?,
        invited_by: UserId(row.try_get("invited_by").map_err(db)?),
        token_hash: row.try_get("token_hash").map_err(db)?,
        expires_at: ts(row.try_get("expires_at").map_err(db)?),
        accepted_at: opt_ts(row.try_get("accepted_at").map_err(db)?),
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn api_key_from(row: &SqliteRow) -> Result<ApiKey> {
    let scopes_json: String = row.try_get("scopes").map_err(db)?;
    let names: Vec<String> =
        serde_json::from_str(&scopes_json).map_err(|_| corrupt("api key scopes", &scopes_json))?;
    let scopes = names
        .into_iter()
        .map(|s| parse_enum::<ApiScope>("api key scope", s))
        .collect::<Result<Vec<_>>>()?;
    Ok(ApiKey {
        id: ApiKeyId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        name: row.try_get("name").map_err(db)?,
        prefix: row.try_get("prefix").map_err(db)?,
        key_hash: row.try_get("key_hash").map_err(db)?,
        scopes,
        created_by: row
            .try_get::<Option<Uuid>, _>("created_by")
            .map_err(db)?
            .map(UserId),
        created_at: ts(row.try_get("created_at").map_err(db)?),
        last_used_at: opt_ts(row.try_get("last_used_at").map_err(db)?),
        revoked_at: opt_ts(row.try_get("revoked_at").map_err(db)?),
    })
}

fn admin_from(row: &SqliteRow) -> Result<PlatformAdmin> {
    Ok(PlatformAdmin {
        id: PlatformAdminId(row.try_get("id").map_err(db)?),
        email: email_from(row.try_get("email").map_err(db)?)?,
        password_hash: row.try_get("password_hash").map_err(db)?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn audit_from(row: &SqliteRow) -> Result<AuditEvent> {
    let metadata: String = row.try_get("metadata").map_err(db)?;
    Ok(AuditEvent {
        id: row.try_get::<Uuid, _>("id").map_err(db)?.into(),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        actor: Actor::from_parts(
            &row.try_get::<String, _>("actor_type").map_err(db)?,
            row.try_get("actor_id").map_err(db)?,
        ),
        action: row.try_get("action").map_err(db)?,
        target_type: row.try_get("target_type").map_err(db)?,
        target_id: row.try_get("target_id").map_err(db)?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|_| corrupt("audit metadata", &metadata))?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

fn job_from(row: &SqliteRow) -> Result<Job> {
    let payload: String = row.try_get("payload").map_err(db)?;
    Ok(Job {
        id: JobId(row.try_get("id").map_err(db)?),
        tenant_id: row
            .try_get::<Option<Uuid>, _>("tenant_id")
            .map_err(db)?
            .map(TenantId),
        kind: row.try_get("kind").map_err(db)?,
        payload: serde_json::from_str(&payload).map_err(|_| corrupt("job payload", &payload))?,
        unique_key: row.try_get("unique_key").map_err(db)?,
        status: parse_enum("job status", row.try_get("status").map_err(db)?)?,
        attempts: row
            .try_get::<i64, _>("attempts")
            .map_err(db)?
            .try_into()
            .unwrap_or(u32::MAX),
        max_attempts: row
            .try_get::<i64, _>("max_attempts")
            .map_err(db)?
            .try_into()
            .unwrap_or(u32::MAX),
        run_at: ts(row.try_get("run_at").map_err(db)?),
        leased_until: opt_ts(row.try_get("leased_until").map_err(db)?),
        last_error: row.try_get("last_error").map_err(db)?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
        finished_at: opt_ts(row.try_get("finished_at").map_err(db)?),
    })
}

fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

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

fn hit_from(row: &SqliteRow) -> Result<ChunkHit> {
    Ok(ChunkHit {
        chunk: chunk_from(row)?,
        document_title: row.try_get("document_title").map_err(db)?,
        score: row.try_get::<f64, _>("score").map_err(db)? as f32,
    })
}

/// Removes a document's chunks, telling the lexical indexes when some went.
async fn delete_chunks(
    conn: &mut SqliteConnection,
    tenant: TenantId,
    document: Uuid,
) -> Result<()> {
    let gone = sqlx::query("DELETE FROM chunks WHERE tenant_id = $1 AND document_id = $2")
        .bind(tenant.0)
        .bind(document)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if gone.rows_affected() > 0 {
        bump_chunk_version(conn, tenant, true).await?;
    }
    Ok(())
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

fn chunk_vectors_from(row: &sqlx::sqlite::SqliteRow) -> Result<ChunkVectors> {
    let hash: String = row.try_get("content_hash").map_err(db)?;
    let dims: i64 = row.try_get("dims").map_err(db)?;
    let bytes: Vec<u8> = row.try_get("vector").map_err(db)?;
    let vector = vector_from_bytes(&bytes).ok_or_else(|| corrupt("vector", &hash))?;
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
}

/// Drops vectors of the tenant that no chunk uses any more, and tells the vector caches
/// when some went.
async fn collect_vectors(conn: &mut SqliteConnection, tenant: TenantId) -> Result<()> {
    let gone = sqlx::query(
        "DELETE FROM embeddings WHERE tenant_id = $1 AND NOT EXISTS (
             SELECT 1 FROM chunks c WHERE c.tenant_id = $1 AND c.content_hash = embeddings.content_hash)",
    )
    .bind(tenant.0)
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

/// The chunk columns plus the document title, for search hits.
const HIT_COLUMNS: &str = "c.seq, c.id, c.tenant_id, c.document_id, c.ordinal, c.text, c.answer,
    c.heading_path, c.page_start, c.page_end, c.token_count, c.content_hash, c.created_at,
    d.title AS document_title";

/// Leases due jobs: one statement, so two workers cannot take the same job (SQLite runs one
/// writer at a time).
const LEASE_SQL: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1,
        leased_until = $2, lease_token = $3, updated_at = $1
    WHERE id IN (
        SELECT id FROM jobs
        WHERE ((status = 'queued' AND run_at <= $1) OR (status = 'running' AND leased_until <= $1))
          AND attempts < max_attempts
        ORDER BY run_at, id LIMIT $4)
    RETURNING *";

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

async fn insert_job(
    conn: &mut SqliteConnection,
    tenant: Option<TenantId>,
    job: &NewJob,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO jobs (id, tenant_id, kind, payload, unique_key, status, attempts, max_attempts, run_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $8)
         ON CONFLICT (unique_key) DO NOTHING",
    )
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

async fn insert_tenant_with_owner(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: &NewTenant,
    owner: &NewUser,
    audit: &NewAuditEvent,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tenants (id, name, plan, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(tenant.id.0)
    .bind(tenant.name.as_str())
    .bind(&tenant.plan)
    .bind(tenant.status.as_str())
    .bind(ms(tenant.created_at))
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    insert_user(tx, tenant.id, owner).await?;
    insert_audit(tx, tenant.id, audit).await
}

async fn insert_user(
    tx: &mut Transaction<'_, Sqlite>,
    tenant: TenantId,
    u: &NewUser,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, tenant_id, email, name, role, password_hash, email_verified_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(u.id.0)
    .bind(tenant.0)
    .bind(u.email.as_str())
    .bind(u.name.as_deref())
    .bind(u.role.as_str())
    .bind(&u.password_hash)
    .bind(u.email_verified_at.map(ms))
    .bind(ms(u.created_at))
    .execute(&mut **tx)
    .await
    .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(conflict::EMAIL_TAKEN) } else { db(e) })?;
    Ok(())
}

impl SqliteStore {
    /// Runs `sql` (`$1` job, `$2` lease token, `$3` a time), which changes the job only while
    /// `token` still holds its lease; `Conflict(lease_lost)` when it no longer does.
    async fn update_leased(&self, sql: &str, job: JobId, token: Uuid, at: i64) -> Result<()> {
        let done = sqlx::query(sql)
            .bind(job.0)
            .bind(token)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(conflict::LEASE_LOST));
        }
        Ok(())
    }

    /// The tenant's matrix of `model` vectors: from the cache when it is current; the cached
    /// one with the vectors added since appended when nothing was deleted meanwhile; else
    /// loaded whole.
    async fn matrix(&self, tenant: TenantId, model: &str, dims: usize) -> Result<Arc<Matrix>> {
        const VERSIONS: &str = "SELECT version, rebuild_version FROM embedding_versions
             WHERE tenant_id = $1 AND model = $2";
        let version: Option<(i64, i64)> = sqlx::query_as(VERSIONS)
            .bind(tenant.0)
            .bind(model)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let (version, _) = version.unwrap_or((0, 0));
        if let Some(m) = self.vectors.get(tenant, model, version) {
            return Ok(m);
        }
        // One snapshot for the versions and the rows.
        let mut tx = self.pool.begin().await.map_err(db)?;
        let (version, rebuild): (i64, i64) = sqlx::query_as(VERSIONS)
            .bind(tenant.0)
            .bind(model)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .unwrap_or((0, 0));
        let base = self
            .vectors
            .latest(tenant, model)
            .filter(|m| m.rebuild == rebuild && m.version < version && m.dims == dims);
        let since = base.as_ref().map_or(-1, |m| m.version);
        let rows = sqlx::query(
            "SELECT content_hash, vector FROM embeddings
             WHERE tenant_id = $1 AND model = $2 AND dims = $3
               AND added_version > $4 AND added_version <= $5",
        )
        .bind(tenant.0)
        .bind(model)
        .bind(i64::try_from(dims).unwrap_or(i64::MAX))
        .bind(since)
        .bind(version)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let mut vectors = Vec::with_capacity(rows.len());
        for row in rows {
            let hash: String = row.try_get("content_hash").map_err(db)?;
            let bytes: Vec<u8> = row.try_get("vector").map_err(db)?;
            let v = vector_from_bytes(&bytes).ok_or_else(|| corrupt("vector", &hash))?;
            vectors.push((hash, v));
        }
        let matrix = Arc::new(match base {
            Some(base) => base.appended(version, vectors),
            None => Matrix::new(version, dims, vectors).rebuilt_at(rebuild),
        });
        self.vectors.put(tenant, model, matrix.clone());
        Ok(matrix)
    }

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

impl SqliteStore {
    /// The tenant's lexical index: from the cache when it is current; the cached one with the
    /// chunks added since appended when none was deleted meanwhile; else built from every
    /// chunk. Changes made here or in another process are seen (the version row).
    async fn lexical_index(&self, tenant: TenantId) -> Result<Arc<LexicalIndex<i64>>> {
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
        let (version, rebuild): (i64, i64) = sqlx::query_as(VERSIONS)
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .unwrap_or((0, 0));
        let base = self
            .lexical
            .latest(tenant)
            .filter(|i| i.rebuild == rebuild && i.version < version);
        let since = base.as_ref().map_or(-1, |i| i.version);
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, text FROM chunks
             WHERE tenant_id = $1 AND added_version > $2 AND added_version <= $3
             ORDER BY seq",
        )
        .bind(tenant.0)
        .bind(since)
        .bind(version)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let cache = self.lexical.clone();
        let index = tokio::task::spawn_blocking(move || {
            Arc::new(match base {
                Some(base) => base.appended(version, rows, &cache.analyzer),
                None => LexicalIndex::build(version, rows, &cache.analyzer).rebuilt_at(rebuild),
            })
        })
        .await
        .map_err(StoreError::other)?;
        self.lexical.put(tenant, index.clone());
        Ok(index)
    }
}

#[async_trait]
impl Store for SqliteStore {
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

    async fn create_tenant_with_owner(
        &self,
        tenant: NewTenant,
        owner: NewUser,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        insert_tenant_with_owner(&mut tx, &tenant, &owner, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn get_tenant(&self, tenant: TenantId) -> Result<Tenant> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
            .bind(tenant.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        tenant_from(&row)
    }

    async fn list_tenants(&self, page: Page) -> Result<Vec<Tenant>> {
        let rows = sqlx::query(
            "SELECT * FROM tenants WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(page.before)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(tenant_from).collect()
    }

    async fn set_tenant_suspended(
        &self,
        tenant: TenantId,
        suspended: bool,
        audit: NewAuditEvent,
    ) -> Result<Tenant> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let sql = if suspended {
            "UPDATE tenants SET
                 status_before_suspension = CASE WHEN status = 'suspended' THEN status_before_suspension ELSE status END,
                 status = 'suspended', updated_at = $2
             WHERE id = $1 RETURNING *"
        } else {
            "UPDATE tenants SET
                 status = CASE WHEN status = 'suspended' THEN COALESCE(status_before_suspension, 'active') ELSE status END,
                 status_before_suspension = NULL, updated_at = $2
             WHERE id = $1 RETURNING *"
        };
        let row = sqlx::query(sql)
            .bind(tenant.0)
            .bind(ms(audit.created_at))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let updated = tenant_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }

    async fn set_tenant_plan(
        &self,
        tenant: TenantId,
        plan: &str,
        audit: NewAuditEvent,
    ) -> Result<Tenant> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row =
            sqlx::query("UPDATE tenants SET plan = $2, updated_at = $3 WHERE id = $1 RETURNING *")
                .bind(tenant.0)
                .bind(plan)
                .bind(ms(Utc::now()))
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        let updated = tenant_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }

    async fn set_tenant_status(&self, tenant: TenantId, status: TenantStatus) -> Result<Tenant> {
        let row = sqlx::query(
            "UPDATE tenants SET status = $2, updated_at = $3 WHERE id = $1 RETURNING *",
        )
        .bind(tenant.0)
        .bind(status.as_str())
        .bind(ms(Utc::now()))
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        tenant_from(&row)
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(user_from).transpose()
    }

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<User> {
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(user.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        user_from(&row)
    }

    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 ORDER BY id")
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(user_from).collect()
    }

    async fn change_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
        audit: NewAuditEvent,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // One statement: the owner count it reads is the one it writes against.
        let row = sqlx::query(
            "UPDATE users SET role = $3
             WHERE tenant_id = $1 AND id = $2
               AND ($3 = 'owner' OR role <> 'owner'
                    OR (SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = 'owner') > 1)
             RETURNING *",
        )
        .bind(tenant.0)
        .bind(user.0)
        .bind(role.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            drop(tx);
            return Err(self
                .refused("users", tenant, user.0, conflict::LAST_OWNER)
                .await);
        };
        let updated = user_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }

    async fn remove_user(
        &self,
        tenant: TenantId,
        user: UserId,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "DELETE FROM users
             WHERE tenant_id = $1 AND id = $2
               AND (role <> 'owner'
                    OR (SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = 'owner') > 1)",
        )
        .bind(tenant.0)
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(self
                .refused("users", tenant, user.0, conflict::LAST_OWNER)
                .await);
        }
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn put_pending_signup(&self, p: NewPendingSignup) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM pending_signups WHERE expires_at <= $1")
            .bind(ms(p.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query(
            "INSERT INTO pending_signups
                 (id, email, company_name, name, password_hash, code_hash, attempts, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)
             ON CONFLICT (email) DO UPDATE SET
                 id = excluded.id, company_name = excluded.company_name, name = excluded.name,
                 password_hash = excluded.password_hash, code_hash = excluded.code_hash,
                 attempts = 0, expires_at = excluded.expires_at, created_at = excluded.created_at",
        )
        .bind(p.id.0)
        .bind(p.email.as_str())
        .bind(p.company_name.as_str())
        .bind(p.name.as_deref())
        .bind(&p.password_hash)
        .bind(&p.code_hash)
        .bind(ms(p.expires_at))
        .bind(ms(p.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn find_pending_signup(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingSignup>> {
        let row = sqlx::query("SELECT * FROM pending_signups WHERE email = $1 AND expires_at > $2")
            .bind(email.as_str())
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(pending_signup_from).transpose()
    }

    async fn renew_pending_signup_code(
        &self,
        signup: SignupId,
        code_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE pending_signups SET code_hash = $2, attempts = 0, expires_at = $3 WHERE id = $1",
        )
        .bind(signup.0)
        .bind(code_hash)
        .bind(ms(expires_at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn record_pending_signup_failure(&self, signup: SignupId) -> Result<u32> {
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE pending_signups SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        )
        .bind(signup.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        let attempts = attempts.ok_or(StoreError::NotFound)?;
        Ok(attempts.try_into().unwrap_or(u32::MAX))
    }

    async fn complete_pending_signup(
        &self,
        signup: SignupId,
        tenant: NewTenant,
        owner: NewUser,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let gone = sqlx::query("DELETE FROM pending_signups WHERE id = $1")
            .bind(signup.0)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_tenant_with_owner(&mut tx, &tenant, &owner, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn insert_refresh_token(&self, tenant: TenantId, t: NewRefreshToken) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at, created_at)
             SELECT $2, $1, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $3)",
        )
        .bind(tenant.0)
        .bind(t.id.as_uuid())
        .bind(t.user_id.0)
        .bind(t.family_id.0)
        .bind(&t.token_hash)
        .bind(ms(t.expires_at))
        .bind(ms(t.created_at))
        .execute(&self.pool)
        .await
        .map_err(db)
        .and_then(|r| if r.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) })
    }

    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(refresh_from).transpose()
    }

    async fn use_refresh_token(
        &self,
        tenant: TenantId,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<RefreshUse> {
        let fresh = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $3
             WHERE tenant_id = $1 AND token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL
             RETURNING *",
        )
        .bind(tenant.0)
        .bind(token_hash)
        .bind(ms(at))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        if let Some(row) = fresh {
            return Ok(RefreshUse::Fresh(refresh_from(&row)?));
        }
        let row =
            sqlx::query("SELECT * FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2")
                .bind(tenant.0)
                .bind(token_hash)
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
        Ok(RefreshUse::Reused(refresh_from(&row)?))
    }

    async fn revoke_token_family(
        &self,
        tenant: TenantId,
        family: TokenFamilyId,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $3
             WHERE tenant_id = $1 AND family_id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant.0)
        .bind(family.0)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected())
    }

    async fn create_invitation(
        &self,
        tenant: TenantId,
        inv: NewInvitation,
        audit: NewAuditEvent,
    ) -> Result<Invitation> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(
            "INSERT INTO invitations (id, tenant_id, email, role, invited_by, token_hash, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        )
        .bind(inv.id.0)
        .bind(tenant.0)
        .bind(inv.email.as_str())
        .bind(inv.role.as_str())
        .bind(inv.invited_by.0)
        .bind(&inv.token_hash)
        .bind(ms(inv.expires_at))
        .bind(ms(inv.created_at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let invitation = invitation_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(invitation)
    }

    async fn list_pending_invitations(&self, tenant: TenantId) -> Result<Vec<Invitation>> {
        let rows = sqlx::query(
            "SELECT * FROM invitations WHERE tenant_id = $1 AND accepted_at IS NULL ORDER BY id DESC",
        )
        .bind(tenant.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(invitation_from).collect()
    }

    async fn delete_invitation(&self, tenant: TenantId, invitation: InvitationId) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM invitations WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL",
        )
        .bind(tenant.0)
        .bind(invitation.0)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn find_invitation(&self, token_hash: &str) -> Result<Option<Invitation>> {
        let row = sqlx::query("SELECT * FROM invitations WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(invitation_from).transpose()
    }

    async fn accept_invitation(
        &self,
        tenant: TenantId,
        invitation: InvitationId,
        user: NewUser,
        audit: NewAuditEvent,
    ) -> Result<User> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let accepted = sqlx::query(
            "UPDATE invitations SET accepted_at = $3 WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL",
        )
        .bind(tenant.0)
        .bind(invitation.0)
        .bind(ms(user.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if accepted.rows_affected() == 0 {
            drop(tx);
            return Err(self
                .refused(
                    "invitations",
                    tenant,
                    invitation.0,
                    conflict::INVITATION_USED,
                )
                .await);
        }
        insert_user(&mut tx, tenant, &user).await?;
        sqlx::query("DELETE FROM pending_signups WHERE email = $1")
            .bind(user.email.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.0)
            .bind(user.id.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        let created = user_from(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(created)
    }

    async fn create_api_key(
        &self,
        tenant: TenantId,
        key: NewApiKey,
        audit: NewAuditEvent,
    ) -> Result<ApiKey> {
        let scopes: Vec<&str> = key.scopes.iter().map(|s| s.as_str()).collect();
        let scopes = serde_json::to_string(&scopes).map_err(StoreError::other)?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        )
        .bind(key.id.0)
        .bind(tenant.0)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(scopes)
        .bind(key.created_by.map(|u| u.0))
        .bind(ms(key.created_at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let created = api_key_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(created)
    }

    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC")
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(api_key_from).collect()
    }

    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<ApiKey> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING *",
        )
        .bind(tenant.0)
        .bind(key.0)
        .bind(ms(at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            drop(tx);
            return Err(self
                .refused("api_keys", tenant, key.0, conflict::ALREADY_REVOKED)
                .await);
        };
        let revoked = api_key_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(revoked)
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(api_key_from).transpose()
    }

    async fn touch_api_key(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let done =
            sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(key.0)
                .bind(ms(at))
                .execute(&self.pool)
                .await
                .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn create_platform_admin(&self, admin: PlatformAdmin) -> Result<()> {
        sqlx::query(
            "INSERT INTO platform_admins (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(admin.id.0)
        .bind(admin.email.as_str())
        .bind(&admin.password_hash)
        .bind(ms(admin.created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict(conflict::EMAIL_TAKEN) } else { db(e) })?;
        Ok(())
    }

    async fn find_platform_admin(&self, email: &Email) -> Result<Option<PlatformAdmin>> {
        let row = sqlx::query("SELECT * FROM platform_admins WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(admin_from).transpose()
    }

    async fn get_platform_admin(&self, id: PlatformAdminId) -> Result<PlatformAdmin> {
        let row = sqlx::query("SELECT * FROM platform_admins WHERE id = $1")
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        admin_from(&row)
    }

    async fn enqueue_job(&self, tenant: Option<TenantId>, job: NewJob) -> Result<bool> {
        let mut conn = self.pool.acquire().await.map_err(db)?;
        insert_job(&mut conn, tenant, &job).await
    }

    async fn lease_jobs(
        &self,
        now: DateTime<Utc>,
        lease_for: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<Lease>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "UPDATE jobs SET status = 'failed', finished_at = $1, updated_at = $1,
                 last_error = COALESCE(last_error || '; ', '') || 'the worker stopped before finishing (lease expired) on the last attempt'
             WHERE status = 'running' AND leased_until <= $1 AND attempts >= max_attempts",
        )
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let token = Uuid::now_v7();
        let rows = sqlx::query(LEASE_SQL)
            .bind(ms(now))
            .bind(ms(now + lease_for))
            .bind(token)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        let mut jobs = rows.iter().map(job_from).collect::<Result<Vec<_>>>()?;
        // RETURNING promises no order; hand jobs out oldest first.
        jobs.sort_by_key(|j| (j.run_at, j.id));
        tx.commit().await.map_err(db)?;
        Ok(jobs.into_iter().map(|job| Lease { job, token }).collect())
    }

    async fn extend_lease(&self, job: JobId, token: Uuid, until: DateTime<Utc>) -> Result<()> {
        self.update_leased(
            "UPDATE jobs SET leased_until = $3 WHERE id = $1 AND lease_token = $2 AND status = 'running'",
            job,
            token,
            ms(until),
        )
        .await
    }

    async fn complete_job(&self, job: JobId, token: Uuid, at: DateTime<Utc>) -> Result<()> {
        self.update_leased(
            "UPDATE jobs SET status = 'done', finished_at = $3, updated_at = $3, leased_until = NULL
             WHERE id = $1 AND lease_token = $2 AND status = 'running'",
            job,
            token,
            ms(at),
        )
        .await
    }

    async fn fail_job(
        &self,
        job: JobId,
        token: Uuid,
        error: &str,
        retry_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Job> {
        let row = sqlx::query(
            "UPDATE jobs SET
                 status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END,
                 run_at = CASE WHEN attempts < max_attempts THEN $4 ELSE run_at END,
                 finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE $5 END,
                 last_error = $3, leased_until = NULL, updated_at = $5
             WHERE id = $1 AND lease_token = $2 AND status = 'running'
             RETURNING *",
        )
        .bind(job.0)
        .bind(token)
        .bind(error)
        .bind(ms(retry_at))
        .bind(ms(at))
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        match row {
            Some(row) => job_from(&row),
            None => Err(StoreError::Conflict(conflict::LEASE_LOST)),
        }
    }

    async fn get_job(&self, job: JobId) -> Result<Job> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(job.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        job_from(&row)
    }

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
        let row = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2 RETURNING *")
            .bind(tenant.0)
            .bind(document.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound)?;
        // The cascade removes the chunks; their triggers remove the lexical entries.
        collect_vectors(&mut tx, tenant).await?;
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
        delete_chunks(&mut tx, tenant, document.0).await?;
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
        collect_vectors(&mut tx, tenant).await?;
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
        delete_chunks(&mut tx, tenant, document.0).await?;
        collect_vectors(&mut tx, tenant).await?;
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
            "SELECT e.content_hash, e.dims, e.vector, e.windows, e.windows_of
             FROM json_each($3) AS h CROSS JOIN embeddings e ON e.tenant_id = $1 AND e.model = $2 AND e.content_hash = h.value",
        )
        .bind(tenant.0)
        .bind(model)
        .bind(serde_json::to_string(hashes).map_err(StoreError::other)?)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(chunk_vectors_from).collect()
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
        let seqs: Vec<i64> = best.iter().map(|(seq, _)| *seq).collect();
        let sql = format!(
            // CROSS JOIN fixes the order: look the few rows up by seq rather than let the
            // planner walk the tenant's index over every chunk (15 ms at 100k).
            "SELECT {HIT_COLUMNS}, 0.0 AS score
             FROM json_each($2) AS j CROSS JOIN chunks c ON c.seq = j.value
             JOIN documents d ON d.id = c.document_id
             WHERE c.tenant_id = $1"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(serde_json::to_string(&seqs).map_err(StoreError::other)?)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut hits = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get("seq").map_err(db)?;
            let mut hit = hit_from(row)?;
            hit.score = best
                .iter()
                .find(|(s, _)| *s == seq)
                .map_or(f32::MIN, |(_, score)| *score);
            hits.push(hit);
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
        if k == 0 {
            return Ok(Vec::new());
        }
        let matrix = self.matrix(tenant, model, vector.len()).await?;
        // A hash may stand for several chunks with the same text; a few spare candidates
        // cover hashes whose chunks went since the matrix was loaded.
        let best = matrix.search(vector, k as usize + 8);
        if best.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<&str> = best.iter().map(|(h, _)| h.as_str()).collect();
        let sql = format!(
            "SELECT {HIT_COLUMNS}, 0.0 AS score FROM chunks c JOIN documents d ON d.id = c.document_id
             WHERE c.tenant_id = $1 AND c.content_hash IN (SELECT value FROM json_each($2))"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(serde_json::to_string(&hashes).map_err(StoreError::other)?)
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
        Ok(hits)
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
            delete_chunks(&mut tx, tenant, id).await?;
            collect_vectors(&mut tx, tenant).await?;
        }
        tx.commit().await.map_err(db)?;
        Ok(rows.len() as u64)
    }

    // ----- answer engine ------------------------------------------------------------------

    async fn get_bot_settings(
        &self,
        tenant: TenantId,
    ) -> Result<Option<cortex_core::answer::BotSettings>> {
        answer::get_bot_settings(&self.pool, tenant).await
    }

    async fn put_bot_settings(
        &self,
        tenant: TenantId,
        settings: &cortex_core::answer::BotSettings,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()> {
        answer::put_bot_settings(&self.pool, tenant, settings, at, audit).await
    }

    async fn get_conversation(
        &self,
        tenant: TenantId,
        conversation: cortex_core::ids::ConversationId,
    ) -> Result<cortex_core::answer::Conversation> {
        answer::get_conversation(&self.pool, tenant, conversation).await
    }

    async fn list_conversations(
        &self,
        tenant: TenantId,
        filter: &cortex_core::answer::ConversationFilter,
    ) -> Result<Vec<cortex_core::answer::ConversationSummary>> {
        answer::list_conversations(&self.pool, tenant, filter).await
    }

    async fn find_customer_conversation(
        &self,
        tenant: TenantId,
        connection: cortex_core::ids::ChannelConnectionId,
        customer: &str,
    ) -> Result<Option<cortex_core::answer::Conversation>> {
        answer::find_customer_conversation(&self.pool, tenant, connection, customer).await
    }

    async fn recent_messages(
        &self,
        tenant: TenantId,
        conversation: cortex_core::ids::ConversationId,
        limit: u32,
    ) -> Result<Vec<cortex_core::answer::Message>> {
        answer::recent_messages(&self.pool, tenant, conversation, limit).await
    }

    async fn record_turn(&self, tenant: TenantId, turn: cortex_core::answer::Turn) -> Result<()> {
        answer::record_turn(&self.pool, tenant, turn).await
    }

    async fn list_usage_events(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<cortex_core::answer::UsageEvent>> {
        answer::list_usage_events(&self.pool, tenant, since).await
    }

    async fn list_conversation_events(
        &self,
        tenant: TenantId,
        conversation: cortex_core::ids::ConversationId,
    ) -> Result<Vec<cortex_core::answer::ConversationEvent>> {
        answer::list_conversation_events(&self.pool, tenant, conversation).await
    }

    // ----- channels ----------------------------------------------------------------------

    async fn create_channel_connection(
        &self,
        tenant: TenantId,
        connection: cortex_core::channels::ChannelConnection,
        audit: NewAuditEvent,
    ) -> Result<cortex_core::channels::ChannelConnection> {
        channels::create(&self.pool, tenant, connection, audit).await
    }

    async fn replace_channel_claim(
        &self,
        tenant: TenantId,
        connection: cortex_core::channels::ChannelConnection,
        audit: NewAuditEvent,
        incumbent_tenant: TenantId,
        incumbent: cortex_core::ids::ChannelConnectionId,
        release_audit: NewAuditEvent,
    ) -> Result<cortex_core::channels::ChannelConnection> {
        channels::replace_claim(
            &self.pool,
            tenant,
            connection,
            audit,
            incumbent_tenant,
            incumbent,
            release_audit,
        )
        .await
    }

    async fn flag_channel_token_invalid(
        &self,
        tenant: TenantId,
        connection: cortex_core::ids::ChannelConnectionId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<bool> {
        channels::flag_token_invalid(&self.pool, tenant, connection, at, audit).await
    }

    async fn webhook_target_in_use(&self, target: &str) -> Result<bool> {
        channels::webhook_target_in_use(&self.pool, target).await
    }

    async fn list_channel_connections(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<cortex_core::channels::ChannelConnection>> {
        channels::list(&self.pool, tenant).await
    }

    async fn delete_channel_connection(
        &self,
        tenant: TenantId,
        connection: cortex_core::ids::ChannelConnectionId,
        audit: NewAuditEvent,
    ) -> Result<()> {
        channels::delete(&self.pool, tenant, connection, audit).await
    }

    async fn find_channel_connection(
        &self,
        kind: cortex_core::answer::Channel,
        asset_id: &str,
    ) -> Result<Option<cortex_core::channels::ChannelConnection>> {
        channels::find(&self.pool, kind, asset_id).await
    }

    async fn delete_customer_data(
        &self,
        provider: cortex_core::channels::Provider,
        customer: &str,
        code: &str,
        at: DateTime<Utc>,
    ) -> Result<cortex_core::channels::DataDeletion> {
        channels::delete_customer_data(&self.pool, provider, customer, code, at).await
    }

    async fn get_data_deletion(
        &self,
        code: &str,
    ) -> Result<Option<cortex_core::channels::DataDeletion>> {
        channels::get_data_deletion(&self.pool, code).await
    }

    async fn create_oauth_flow(
        &self,
        tenant: TenantId,
        flow: cortex_core::channels::OauthFlow,
    ) -> Result<()> {
        channels::create_oauth_flow(&self.pool, tenant, flow).await
    }

    async fn claim_oauth_flow(
        &self,
        state_hash: &str,
        browser_hash: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<cortex_core::channels::OauthFlow>> {
        channels::claim_oauth_flow(&self.pool, state_hash, browser_hash, at, expires_at).await
    }

    async fn set_oauth_assets(
        &self,
        tenant: TenantId,
        flow: cortex_core::ids::OauthFlowId,
        sealed_assets: &str,
    ) -> Result<()> {
        channels::set_oauth_assets(&self.pool, tenant, flow, sealed_assets).await
    }

    async fn get_oauth_flow(
        &self,
        tenant: TenantId,
        flow: cortex_core::ids::OauthFlowId,
    ) -> Result<cortex_core::channels::OauthFlow> {
        channels::get_oauth_flow(&self.pool, tenant, flow).await
    }

    async fn delete_oauth_flow(
        &self,
        tenant: TenantId,
        flow: cortex_core::ids::OauthFlowId,
    ) -> Result<bool> {
        channels::delete_oauth_flow(&self.pool, tenant, flow).await
    }

    async fn create_widget_key(
        &self,
        tenant: TenantId,
        key: cortex_core::widget::WidgetKey,
        audit: NewAuditEvent,
    ) -> Result<cortex_core::widget::WidgetKey> {
        widget::create(&self.pool, tenant, key, audit).await
    }

    async fn list_widget_keys(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<cortex_core::widget::WidgetKey>> {
        widget::list(&self.pool, tenant).await
    }

    async fn update_widget_key(
        &self,
        tenant: TenantId,
        key: cortex_core::widget::WidgetKey,
        audit: NewAuditEvent,
    ) -> Result<cortex_core::widget::WidgetKey> {
        widget::update(&self.pool, tenant, key, audit).await
    }

    async fn revoke_widget_key(
        &self,
        tenant: TenantId,
        key: cortex_core::ids::WidgetKeyId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()> {
        widget::revoke(&self.pool, tenant, key, at, audit).await
    }

    async fn find_widget_key(
        &self,
        public_key: &str,
    ) -> Result<Option<cortex_core::widget::WidgetKey>> {
        widget::find(&self.pool, public_key).await
    }

    async fn set_feedback(
        &self,
        tenant: TenantId,
        feedback: cortex_core::widget::Feedback,
    ) -> Result<()> {
        widget::set_feedback(&self.pool, tenant, feedback).await
    }

    async fn list_feedback(
        &self,
        tenant: TenantId,
        conversation: cortex_core::ids::ConversationId,
    ) -> Result<Vec<cortex_core::widget::Feedback>> {
        widget::list_feedback(&self.pool, tenant, conversation).await
    }

    async fn list_sealed_secrets(&self) -> Result<Vec<cortex_core::channels::SealedSecret>> {
        channels::sealed(&self.pool).await
    }

    async fn reseal_secret(
        &self,
        tenant: TenantId,
        connection: cortex_core::ids::ChannelConnectionId,
        old: &str,
        new: &str,
    ) -> Result<bool> {
        channels::reseal(&self.pool, tenant, connection, old, new).await
    }

    async fn record_inbound(
        &self,
        tenant: TenantId,
        message: cortex_core::channels::InboundMessage,
        job: NewJob,
    ) -> Result<bool> {
        channels::record_inbound(&self.pool, tenant, message, job).await
    }

    async fn get_inbound(
        &self,
        tenant: TenantId,
        message: cortex_core::ids::InboundMessageId,
    ) -> Result<cortex_core::channels::InboundMessage> {
        channels::get_inbound(&self.pool, tenant, message).await
    }

    async fn unanswered_inbound(
        &self,
        tenant: TenantId,
        connection: cortex_core::ids::ChannelConnectionId,
        customer: &str,
        limit: u32,
    ) -> Result<Vec<cortex_core::channels::InboundMessage>> {
        channels::unanswered_inbound(&self.pool, tenant, connection, customer, limit).await
    }

    async fn finish_inbound(
        &self,
        tenant: TenantId,
        message: cortex_core::ids::InboundMessageId,
        at: DateTime<Utc>,
        error: Option<&str>,
        usage: &[cortex_core::answer::UsageEvent],
    ) -> Result<bool> {
        channels::finish_inbound(&self.pool, tenant, message, at, error, usage).await
    }

    async fn usage_total(
        &self,
        tenant: TenantId,
        kind: cortex_core::answer::UsageKind,
        subject: &str,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        answer::usage_total(&self.pool, tenant, kind, subject, since).await
    }

    async fn record_outbound(
        &self,
        tenant: TenantId,
        message: cortex_core::channels::OutboundMessage,
    ) -> Result<()> {
        channels::record_outbound(&self.pool, tenant, message).await
    }

    async fn update_outbound_status(
        &self,
        tenant: TenantId,
        connection: cortex_core::ids::ChannelConnectionId,
        provider_message_id: &str,
        status: cortex_core::channels::DeliveryStatus,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        channels::update_outbound_status(
            &self.pool,
            tenant,
            connection,
            provider_message_id,
            status,
            error,
            at,
        )
        .await
    }

    async fn find_outbound(
        &self,
        tenant: TenantId,
        connection: cortex_core::ids::ChannelConnectionId,
        provider_message_id: &str,
    ) -> Result<Option<cortex_core::channels::OutboundMessage>> {
        channels::find_outbound(&self.pool, tenant, connection, provider_message_id).await
    }

    async fn record_audit(&self, tenant: TenantId, event: NewAuditEvent) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        insert_audit(&mut tx, tenant, &event).await?;
        tx.commit().await.map_err(db)
    }

    async fn list_audit_events(&self, tenant: TenantId, page: Page) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.0)
        .bind(page.before)
        .bind(i64::from(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(audit_from).collect()
    }
}
