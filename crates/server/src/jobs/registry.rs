//! The one list of the jobs this binary runs.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use cortex_core::jobs::NewJob;

use super::scheduler::{Period, Periodic, Schedule};
use super::{Job, JobContext, JobError};

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send>>;
type RunFn = fn(JobContext, serde_json::Value) -> BoxFuture;
type ExhaustedFn = fn(JobContext, serde_json::Value, String) -> BoxFuture;

struct Entry {
    run: RunFn,
    exhausted: ExhaustedFn,
}

/// Every job kind by its stored name, and the periodic ones' schedules.
#[derive(Default)]
pub struct Registry {
    jobs: BTreeMap<&'static str, Entry>,
    schedules: Vec<Schedule>,
}

/// The jobs of this binary. A job is added here and nowhere else.
pub fn registry() -> &'static Registry {
    static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
        use crate::channels::jobs as channels;
        use crate::knowledge::jobs as knowledge;
        Registry::default()
            .job::<knowledge::FetchUrl>()
            .job::<knowledge::ParseDocument>()
            .job::<knowledge::EmbedChunks>()
            .periodic::<knowledge::SweepAbandonedDocuments>()
            .job::<channels::AnswerInbound>()
    });
    &REGISTRY
}

impl Registry {
    /// Adds a job kind. A second kind under the same name is ignored (the unit test below
    /// keeps the names distinct).
    pub fn job<J: Job>(mut self) -> Self {
        self.jobs.entry(J::NAME).or_insert(Entry {
            run: run::<J>,
            exhausted: exhausted::<J>,
        });
        self
    }

    /// Adds a periodic job kind: a job, and its schedule.
    pub fn periodic<J: Periodic>(mut self) -> Self {
        self.schedules.push(Schedule {
            name: J::NAME,
            every_secs: J::EVERY_SECS,
            catch_up: J::CATCH_UP,
            make: make::<J>,
        });
        self.job::<J>()
    }

    /// The stored names of every job kind, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.jobs.keys().copied()
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    /// Runs a stored job; `None` when no kind of that name exists.
    pub(super) fn run(
        &self,
        ctx: JobContext,
        kind: &str,
        payload: serde_json::Value,
    ) -> Option<BoxFuture> {
        self.jobs.get(kind).map(|e| (e.run)(ctx, payload))
    }

    /// The owning domain's hook for a job that failed for good.
    pub(super) fn exhausted(
        &self,
        ctx: JobContext,
        kind: &str,
        payload: serde_json::Value,
        reason: String,
    ) -> Option<BoxFuture> {
        self.jobs
            .get(kind)
            .map(|e| (e.exhausted)(ctx, payload, reason))
    }
}

fn decode<J: Job>(payload: serde_json::Value) -> Result<J, JobError> {
    serde_json::from_value(payload)
        .map_err(|e| JobError::Unrunnable(format!("{} with an unreadable payload: {e}", J::NAME)))
}

fn run<J: Job>(ctx: JobContext, payload: serde_json::Value) -> BoxFuture {
    Box::pin(async move { decode::<J>(payload)?.run(ctx).await })
}

fn exhausted<J: Job>(ctx: JobContext, payload: serde_json::Value, reason: String) -> BoxFuture {
    Box::pin(async move { decode::<J>(payload)?.exhausted(ctx, reason).await })
}

fn make<J: Periodic>(period: Period, now: DateTime<Utc>) -> NewJob {
    let mut job = super::new_job(&J::for_period(period), now);
    job.unique_key = Some(period.key(J::NAME));
    job
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_is_listed_once_under_its_stored_name() {
        // Stored jobs carry these names: renaming one strands every job of it in the queue.
        assert_eq!(
            registry().names().collect::<Vec<_>>(),
            [
                "AnswerInbound",
                "EmbedChunks",
                "FetchUrl",
                "ParseDocument",
                "SweepAbandonedDocuments"
            ]
        );
        assert_eq!(
            registry()
                .schedules()
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>(),
            ["SweepAbandonedDocuments"]
        );
    }
}
