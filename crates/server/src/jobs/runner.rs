//! The background worker runtime: a few loops that lease due jobs from the database, run them
//! through the [registry](super::registry) while renewing the lease, and complete or retry
//! them; and one scheduler loop. Any number of processes may run workers against one database;
//! the lease decides who works on what. The runner knows no domain: what a job does, and what
//! its domain does when it fails for good, is the job's.
//!
//! Shutdown: workers stop leasing at once and finish the job in hand for up to the grace
//! period; a job cut off there is simply leased again after its lease runs out.

use std::time::Duration;

use cortex_core::StoreError;
use cortex_core::jobs::{JobStatus, Lease, backoff};
use cortex_core::store::conflict;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{JobContext, JobError, Registry, chain, registry};
use crate::app::AppState;

/// How long an idle worker waits before looking for due jobs again (a job enqueued in this
/// process wakes it at once).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Base of the exponential retry delay.
const RETRY_BASE: chrono::Duration = chrono::Duration::seconds(2);

/// Running workers; dropping this does not stop them, [`Workers::shutdown`] does.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Workers {
    /// Starts `state.settings.knowledge.workers` worker loops and the scheduler (none when 0).
    pub fn start(state: &AppState) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let n = state.settings.knowledge.workers;
        for index in 0..n {
            let state = state.clone();
            let stopped = stopped.clone();
            tasks.spawn(async move { work(state, index, stopped).await });
        }
        if n > 0 {
            let state = state.clone();
            tasks.spawn(async move { super::scheduler::run(state, registry(), stopped).await });
        }
        Self { stop, tasks }
    }

    /// Asks every loop to stop and waits up to `grace` for jobs in hand to finish.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("workers did not finish in time; their jobs resume after the lease");
            self.tasks.abort_all();
        }
    }
}

/// What [`run_pending`] did.
#[derive(Debug, Default)]
pub struct Drained {
    /// Jobs run to the end (dropped ones included).
    pub done: u32,
    /// Attempts that failed, as `(job kind, error with its causes)`; the job retries later
    /// unless it was its last attempt.
    pub failed: Vec<(String, String)>,
}

/// Enqueues the periodic jobs whose period has ended, then runs every due job in this task,
/// one after the other, until none is due (jobs that jobs enqueue included; retries wait for
/// their time). How the tests drain the queue, and what an operator can run by hand.
pub async fn run_pending(state: &AppState) -> Result<Drained, StoreError> {
    super::scheduler::enqueue_due(state, registry(), state.clock.now()).await?;
    let mut drained = Drained::default();
    while let Some(ran) = run_next(state).await? {
        match ran.failure {
            None => drained.done += 1,
            Some(why) => drained.failed.push((ran.kind, why)),
        }
    }
    Ok(drained)
}

/// A job [`run_next`] ran.
#[derive(Debug)]
pub struct Ran {
    pub kind: String,
    /// Why the attempt failed (with its causes), if it did.
    pub failure: Option<String>,
}

/// Leases the next due job and runs it in this task, as a worker would; `None` when no job is
/// due.
pub async fn run_next(state: &AppState) -> Result<Option<Ran>, StoreError> {
    let lease_for = lease_for(state);
    let Some(lease) = state
        .store
        .lease_jobs(state.clock.now(), lease_for, 1)
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let kind = lease.job.kind.clone();
    let failure = match run_one(state, registry(), lease, lease_for).await {
        Outcome::Done => None,
        Outcome::Failed(why) => Some(why),
        Outcome::LeaseLost => Some("lost the lease".to_owned()),
    };
    Ok(Some(Ran { kind, failure }))
}

fn lease_for(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(state.settings.knowledge.job_lease_secs as i64)
}

async fn work(state: AppState, index: usize, mut stopped: watch::Receiver<bool>) {
    let registry = registry();
    let lease_for = lease_for(&state);
    while !*stopped.borrow() {
        let leased = match state
            .store
            .lease_jobs(state.clock.now(), lease_for, 1)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %chain(&e), worker = index, "could not lease jobs");
                Vec::new()
            }
        };
        let Some(lease) = leased.into_iter().next() else {
            tokio::select! {
                () = state.jobs_ready.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
                _ = stopped.changed() => {}
            }
            continue;
        };
        run_one(&state, registry, lease, lease_for).await;
    }
}

enum Outcome {
    Done,
    Failed(String),
    LeaseLost,
}

/// Runs one leased job, renewing the lease at a third of its length, and records the outcome.
async fn run_one(
    state: &AppState,
    registry: &Registry,
    lease: Lease,
    lease_for: chrono::Duration,
) -> Outcome {
    let job = &lease.job;
    let span = tracing::info_span!(
        "job",
        job.id = %job.id,
        job.kind = %job.kind,
        job.attempt = job.attempts,
        tenant.id = job.tenant_id.map(|t| t.to_string()),
    );
    async {
        let started = std::time::Instant::now();
        let renew_every = (lease_for / 3).to_std().unwrap_or(Duration::from_secs(10));
        let heartbeat = async {
            let mut tick = tokio::time::interval(renew_every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match state
                    .store
                    .extend_lease(job.id, lease.token, state.clock.now() + lease_for)
                    .await
                {
                    Ok(()) => {}
                    Err(StoreError::Conflict(c)) if c == conflict::LEASE_LOST => return,
                    Err(e) => tracing::warn!(error = %chain(&e), "could not renew a lease"),
                }
            }
        };
        let ctx = JobContext {
            state: state.clone(),
            job: job.id,
            tenant: job.tenant_id,
            attempt: job.attempts,
        };
        let run = async {
            match registry.run(ctx.clone(), &job.kind, job.payload.clone()) {
                Some(f) => f.await,
                None => Err(JobError::retry(format!("no handler for job kind {}", job.kind))),
            }
        };
        let outcome = tokio::select! {
            r = run => Some(r),
            () = heartbeat => None,
        };
        let now = state.clock.now();
        let ms = started.elapsed().as_millis() as u64;
        let (recorded, outcome) = match outcome {
            None => {
                tracing::warn!("lost the lease; another worker has the job");
                return Outcome::LeaseLost;
            }
            Some(Ok(())) => {
                tracing::info!(duration_ms = ms, "job done");
                (
                    state.store.complete_job(job.id, lease.token, now).await,
                    Outcome::Done,
                )
            }
            Some(Err(JobError::Unrunnable(why))) => {
                tracing::warn!(error = %why, "job dropped");
                (
                    state.store.complete_job(job.id, lease.token, now).await,
                    Outcome::Done,
                )
            }
            Some(Err(e @ JobError::Retry { .. })) => {
                let reason = e.chain();
                let retry_at = now + backoff(job.attempts, RETRY_BASE);
                tracing::warn!(duration_ms = ms, error = %reason, "job attempt failed");
                let recorded = match state
                    .store
                    .fail_job(job.id, lease.token, &reason, retry_at, now)
                    .await
                {
                    Ok(after) if after.status == JobStatus::Failed => {
                        // Out of attempts: the job's domain settles what it worked on.
                        if let Some(settle) =
                            registry.exhausted(ctx, &job.kind, job.payload.clone(), reason.clone())
                            && let Err(e) = settle.await
                        {
                            tracing::warn!(error = %e.chain(), "could not settle a job out of attempts");
                        }
                        Ok(())
                    }
                    other => other.map(|_| ()),
                };
                (recorded, Outcome::Failed(reason))
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %chain(&e), "could not record the job's outcome");
        }
        outcome
    }
    .instrument(span)
    .await
}
