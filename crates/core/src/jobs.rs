//! The durable job queue's data: jobs live in the same database as everything else, are
//! enqueued in the same transaction as the change they follow, leased by workers for a while
//! (a crashed worker's lease simply runs out and another worker takes the job), retried with
//! exponential backoff, and failed for good after their last attempt.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::ids::{JobId, TenantId};
use crate::tenancy::UnknownVariant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for `run_at`.
    Queued,
    /// Leased by a worker until `leased_until`.
    Running,
    Done,
    /// Out of attempts; `last_error` says why.
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for JobStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            _ => return Err(UnknownVariant(s.to_owned())),
        })
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub id: JobId,
    /// The job's stable name (`ParseDocument`); never changes once jobs of it exist.
    pub kind: String,
    pub payload: serde_json::Value,
    /// At most one job per key ever exists: enqueueing a key again is a no-op. Scheduled jobs
    /// use `name:period`; jobs that may legitimately run again put a version in the key.
    pub unique_key: Option<String>,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl NewJob {
    /// A job of `kind` to run now, with the default 3 attempts.
    pub fn now(kind: &str, payload: serde_json::Value) -> Self {
        let now = Utc::now();
        Self {
            id: JobId::new(),
            kind: kind.to_owned(),
            payload,
            unique_key: None,
            max_attempts: 3,
            run_at: now,
            created_at: now,
        }
    }

    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
}

/// A stored job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Job {
    pub id: JobId,
    /// The tenant the job works for; `None` for platform jobs (scheduler, roll-ups).
    pub tenant_id: Option<TenantId>,
    pub kind: String,
    pub payload: serde_json::Value,
    pub unique_key: Option<String>,
    pub status: JobStatus,
    /// Leases taken so far, the current one included.
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub leased_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A job held by a worker. The token proves the lease is still this worker's: completing or
/// failing with a token whose lease ran out (and was taken by another worker) is refused.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    pub job: Job,
    pub token: uuid::Uuid,
}

/// Delay before retry number `attempt` (1-based): 2^attempt × `base`, capped at one hour.
pub fn backoff(attempt: u32, base: Duration) -> Duration {
    let factor = 1i64.checked_shl(attempt.min(20)).unwrap_or(i64::MAX);
    let delay = base.num_milliseconds().saturating_mul(factor);
    Duration::milliseconds(delay.min(3_600_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::seconds(1);
        assert_eq!(backoff(1, base), Duration::seconds(2));
        assert_eq!(backoff(2, base), Duration::seconds(4));
        assert_eq!(backoff(3, base), Duration::seconds(8));
        assert_eq!(backoff(40, base), Duration::hours(1));
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Failed,
        ] {
            assert_eq!(s.as_str().parse::<JobStatus>().expect("known"), s);
        }
    }
}
