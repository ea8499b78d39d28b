//! The durable job queue, on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cortex_core::StoreError;
use cortex_core::ids::{JobId, TenantId};
use cortex_core::jobs::{Job, Lease, NewJob};
use cortex_core::store::{JobStore, Result, conflict};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::{SqliteStore, corrupt, db, insert_job, ms, opt_ts, parse_enum, ts};

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

/// Leases due jobs: one statement, so two workers cannot take the same job (SQLite runs one
/// writer at a time).
const LEASE_SQL: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1,
        leased_until = $2, lease_token = $3, updated_at = $1
    WHERE id IN (
        SELECT id FROM jobs
        WHERE ((status = 'queued' AND run_at <= $1) OR (status = 'running' AND leased_until <= $1))
          AND attempts < max_attempts
        ORDER BY turn, run_at, id LIMIT $4)
    RETURNING *";

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
}

#[async_trait]
impl JobStore for SqliteStore {
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
        let mut jobs = rows
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>("turn").map_err(db)?, job_from(r)?)))
            .collect::<Result<Vec<_>>>()?;
        // RETURNING promises no order; hand jobs out in the order they were chosen.
        jobs.sort_by_key(|(turn, j)| (*turn, j.run_at, j.id));
        let jobs = jobs.into_iter().map(|(_, j)| j);
        tx.commit().await.map_err(db)?;
        Ok(jobs.map(|job| Lease { job, token }).collect())
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
}
