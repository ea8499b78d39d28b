//! The background worker runtime: a few loops that lease due jobs from the database, run them
//! while renewing the lease, and complete or retry them. Any number of processes may run
//! workers against one database; the lease decides who works on what.
//!
//! Shutdown: workers stop leasing at once and finish the job in hand for up to the grace
//! period; a job cut off there is simply leased again after its lease runs out.

use std::time::Duration;

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::jobs::{Lease, backoff};
use cortex_core::store::conflict;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::app::AppState;
use crate::knowledge::pipeline::{self, JobError};

/// How long an idle worker waits before looking for due jobs again (a job enqueued in this
/// process wakes it at once).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Base of the exponential retry delay.
const RETRY_BASE: chrono::Duration = chrono::Duration::seconds(2);
/// How often one worker sweeps documents whose job failed for good.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Running workers; dropping this does not stop them, [`Workers::shutdown`] does.
pub struct Workers {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Workers {
    /// Starts `state.settings.knowledge.workers` worker loops (none when 0).
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
            tasks.spawn(async move { sweep(state, stopped).await });
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

async fn work(state: AppState, index: usize, mut stopped: watch::Receiver<bool>) {
    let lease_for = chrono::Duration::seconds(state.settings.knowledge.job_lease_secs as i64);
    while !*stopped.borrow() {
        let leased = match state.store.lease_jobs(Utc::now(), lease_for, 1).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, worker = index, "could not lease jobs");
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
        let span = tracing::info_span!("job", job.id = %lease.job.id, job.kind = %lease.job.kind, job.attempt = lease.job.attempts);
        run_one(&state, lease, lease_for).instrument(span).await;
    }
}

/// Runs one leased job, renewing the lease at a third of its length, and records the outcome.
async fn run_one(state: &AppState, lease: Lease, lease_for: chrono::Duration) {
    let job = &lease.job;
    let started = std::time::Instant::now();
    let renew_every = (lease_for / 3).to_std().unwrap_or(Duration::from_secs(10));
    let heartbeat = async {
        let mut tick = tokio::time::interval(renew_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            match state
                .store
                .extend_lease(job.id, lease.token, Utc::now() + lease_for)
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict(c)) if c == conflict::LEASE_LOST => return,
                Err(e) => tracing::warn!(error = %e, "could not renew a lease"),
            }
        }
    };
    let outcome = tokio::select! {
        r = pipeline::run(state, job) => Some(r),
        () = heartbeat => None,
    };
    let now = Utc::now();
    let ms = started.elapsed().as_millis() as u64;
    let recorded = match outcome {
        None => {
            tracing::warn!("lost the lease; another worker has the job");
            return;
        }
        Some(Ok(true)) => {
            tracing::info!(duration_ms = ms, "job done");
            state
                .store
                .complete_job(job.id, lease.token, now)
                .await
                .map(|_| ())
        }
        Some(Ok(false)) => {
            let reason = format!("no handler for job kind {}", job.kind);
            state
                .store
                .fail_job(job.id, lease.token, &reason, now, now)
                .await
                .map(|_| ())
        }
        Some(Err(JobError::Retry(reason))) => {
            let retry_at = now + backoff(job.attempts, RETRY_BASE);
            tracing::warn!(duration_ms = ms, error = %reason, "job attempt failed");
            match state
                .store
                .fail_job(job.id, lease.token, &reason, retry_at, now)
                .await
            {
                Ok(after) if after.status == cortex_core::jobs::JobStatus::Failed => {
                    // Out of attempts: the document it worked for fails with the reason.
                    state.store.fail_abandoned_documents(now).await.map(|_| ())
                }
                other => other.map(|_| ()),
            }
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record the job's outcome");
    }
}

/// Fails documents whose job died on its last attempt (a worker killed three times over).
async fn sweep(state: AppState, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        match state.store.fail_abandoned_documents(Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                documents = n,
                "documents failed after their job ran out of attempts"
            ),
            Err(e) => tracing::warn!(error = %e, "could not sweep abandoned documents"),
        }
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stopped.changed() => {}
        }
    }
}
