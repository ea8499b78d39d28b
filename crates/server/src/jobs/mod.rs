//! The job layer: work that runs after the request that caused it, durably.
//!
//! - A [`Job`] is a typed payload with a persisted [`Job::NAME`] (never renamed: stored jobs
//!   carry it), an optional unique key, [`Job::run`], and [`Job::exhausted`], the hook that
//!   lets the owning domain settle its state when the job's attempts run out.
//! - [`registry()`] is the one list of every job the binary runs (and of the periodic ones).
//! - The [runner](runner) leases due jobs, runs them through the registry, renews leases and
//!   retries with backoff; it knows no domain.
//! - The [scheduler](scheduler) enqueues each periodic job once per period under the key
//!   `name:period`, so it runs once per period across every instance, and catches up the
//!   periods missed while no instance ran.
//! - Time comes from [`Clock`] (the system clock in production, one the tests move).
//!
//! Each domain keeps its jobs next to it: `knowledge/jobs.rs`, `channels/jobs.rs`.

mod clock;
mod registry;
pub mod runner;
pub mod scheduler;

use std::future::Future;

use chrono::{DateTime, Utc};
use cortex_core::StoreError;
use cortex_core::ids::{JobId, TenantId};
use cortex_core::jobs::NewJob;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use clock::{Clock, SystemClock};
pub use registry::{Registry, registry};
pub use runner::{Drained, Ran, Workers, run_next, run_pending};
pub use scheduler::{Period, Periodic};

use crate::app::AppState;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One kind of background work.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The name jobs of this kind are stored under. Never renamed once jobs of it exist.
    const NAME: &'static str;
    /// Leases a job may take before it fails for good.
    const MAX_ATTEMPTS: u32 = 3;

    /// At most one job with a given key ever exists; enqueueing it again changes nothing.
    fn unique_key(&self) -> Option<String> {
        None
    }

    /// Does the work. Must be idempotent: a job whose worker died runs again.
    fn run(self, ctx: JobContext) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Called once when the job failed for good (its last attempt failed or its last lease ran
    /// out), so the owning domain can settle what the job was working on.
    fn exhausted(
        self,
        ctx: JobContext,
        reason: String,
    ) -> impl Future<Output = Result<(), JobError>> + Send {
        let _ = (ctx, reason);
        async { Ok(()) }
    }
}

/// What a running job knows about itself.
#[derive(Clone)]
pub struct JobContext {
    pub state: AppState,
    pub job: JobId,
    /// The tenant the job works for; `None` for platform jobs.
    pub tenant: Option<TenantId>,
    /// This attempt, 1-based.
    pub attempt: u32,
}

impl JobContext {
    /// The job's tenant; a tenant's job stored without one can never run.
    pub fn tenant(&self) -> Result<TenantId, JobError> {
        self.tenant
            .ok_or_else(|| JobError::Unrunnable("a tenant's job stored without a tenant".into()))
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.state.clock.now()
    }
}

/// Why a job attempt did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A transient cause: the runner retries with backoff. The cause chain is kept (see
    /// [`JobError::chain`]) and recorded as the job's `last_error`.
    #[error("{context}")]
    Retry {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The job can never run (no tenant, an unreadable payload): it is dropped with a warning.
    #[error("{0}")]
    Unrunnable(String),
}

impl JobError {
    /// A transient failure described by `context` alone.
    pub fn retry(context: impl Into<String>) -> Self {
        Self::Retry {
            context: context.into(),
            source: None,
        }
    }

    /// A transient failure while doing `context`, caused by `source` (kept with its own causes).
    pub fn retry_because(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Retry {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The error and every cause under it, joined by `": "`.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

/// `e` and every cause under it, joined by `": "` (a cause already quoted by its parent's
/// message is not repeated).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        Self::retry_because("storage", e)
    }
}

/// The queue row for `job`, due now, under the job's name, key and attempts.
pub fn new_job<J: Job>(job: &J, now: DateTime<Utc>) -> NewJob {
    let mut new = NewJob::now(
        J::NAME,
        serde_json::to_value(job).unwrap_or(serde_json::Value::Null),
    );
    new.unique_key = job.unique_key();
    new.max_attempts = J::MAX_ATTEMPTS;
    new.run_at = now;
    new.created_at = now;
    new
}

/// Enqueues `job` for `tenant` (or the platform) and wakes this process's idle workers.
/// Returns `false`, changing nothing, when a job with the same unique key exists.
pub async fn enqueue<J: Job>(
    state: &AppState,
    tenant: Option<TenantId>,
    job: &J,
) -> Result<bool, StoreError> {
    let added = state
        .store
        .enqueue_job(tenant, new_job(job, state.clock.now()))
        .await?;
    if added {
        state.jobs_ready.notify_waiters();
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("error returned from database: disk I/O error")]
    struct Io;

    #[test]
    fn a_retry_keeps_the_cause_chain() {
        let e: JobError = StoreError::other(Io).into();
        assert_eq!(
            e.chain(),
            "storage: storage failure: error returned from database: disk I/O error"
        );
        assert_eq!(JobError::retry("sending").chain(), "sending");
    }
}
