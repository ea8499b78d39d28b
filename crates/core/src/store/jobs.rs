//! The durable job queue. Jobs are leased across all tenants by the workers, so the queue
//! methods are platform methods; each job carries its tenant and the job body continues scoped
//! to it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::ids::{JobId, TenantId};
use crate::jobs::{Job, Lease, NewJob};

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Enqueues a job (for `tenant`, or a platform job with `None`). Returns `false`, and
    /// changes nothing, when a job with the same unique key exists.
    async fn enqueue_job(&self, tenant: Option<TenantId>, job: NewJob) -> Result<bool>;

    /// Leases up to `limit` jobs that are due (queued with `run_at <= now`, or running with a
    /// lease that ran out) until `now + lease_for`, counting an attempt for each. Jobs whose
    /// lease ran out on their last attempt are marked failed instead. Concurrent callers never
    /// get the same job.
    async fn lease_jobs(
        &self,
        now: DateTime<Utc>,
        lease_for: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<Lease>>;

    /// Extends a lease still held (a heartbeat for long jobs). `Conflict(lease_lost)` otherwise.
    async fn extend_lease(&self, job: JobId, token: uuid::Uuid, until: DateTime<Utc>)
    -> Result<()>;

    /// Marks a leased job done. `Conflict(lease_lost)` if the lease is no longer this token's.
    async fn complete_job(&self, job: JobId, token: uuid::Uuid, at: DateTime<Utc>) -> Result<()>;

    /// Records a failed attempt: back to `queued` at `retry_at` while attempts remain,
    /// otherwise `failed` for good. `Conflict(lease_lost)` if the lease is gone.
    async fn fail_job(
        &self,
        job: JobId,
        token: uuid::Uuid,
        error: &str,
        retry_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Job>;

    /// One job, for the worker runtime and operators.
    async fn get_job(&self, job: JobId) -> Result<Job>;
}
