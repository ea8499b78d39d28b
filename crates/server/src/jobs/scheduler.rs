//! Periodic jobs. Each period of a periodic job is one job under the unique key
//! `name:period-start` (e.g. `SweepAbandonedDocuments:2026-12-02T07:40:00Z`), enqueued once
//! the period has ended: every instance's scheduler may enqueue it, the key makes sure it
//! exists once, so it runs once per period across every instance. After a downtime the
//! scheduler also enqueues the last [`Periodic::CATCH_UP`] periods before the latest, so a
//! missed period still runs (once).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use cortex_core::StoreError;
use cortex_core::jobs::NewJob;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Job, Registry};
use crate::app::AppState;

/// How often the scheduler looks for ended periods.
const TICK: Duration = Duration::from_secs(5);

/// A span of time a periodic job works for: `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    /// The job key of this period of the job `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{name}:{}", self.start.format("%Y-%m-%dT%H:%M:%SZ"))
    }
}

/// A job that runs once per period of [`Periodic::EVERY_SECS`] (aligned to the Unix epoch, so
/// a day is a UTC day).
pub trait Periodic: Job {
    const EVERY_SECS: i64;
    /// Periods before the latest ended one that are enqueued too, if they never were.
    const CATCH_UP: u32 = 1;

    /// The job for one period.
    fn for_period(period: Period) -> Self;
}

/// One periodic job's schedule, as the registry keeps it.
pub struct Schedule {
    pub name: &'static str,
    pub every_secs: i64,
    pub catch_up: u32,
    pub(super) make: fn(Period, DateTime<Utc>) -> NewJob,
}

impl Schedule {
    /// Index of the latest period that has ended by `now`.
    fn latest_ended(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(self.every_secs) - 1
    }

    fn period(&self, index: i64) -> Option<Period> {
        let start = Utc.timestamp_opt(index * self.every_secs, 0).single()?;
        let end = Utc
            .timestamp_opt((index + 1) * self.every_secs, 0)
            .single()?;
        Some(Period { start, end })
    }

    /// The periods to enqueue at `now`: the latest ended one and the `catch_up` before it,
    /// oldest first.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<Period> {
        let latest = self.latest_ended(now);
        (latest - i64::from(self.catch_up)..=latest)
            .filter_map(|i| self.period(i))
            .collect()
    }
}

/// Enqueues every periodic job's due periods (those enqueued before are left as they are).
/// Returns how many jobs were new.
pub async fn enqueue_due(
    state: &AppState,
    registry: &Registry,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let mut added = 0;
    for schedule in registry.schedules() {
        added += enqueue_schedule(state, schedule, now).await?;
    }
    if added > 0 {
        state.jobs_ready.notify_waiters();
    }
    Ok(added)
}

/// Enqueues one schedule's due periods; returns how many were new.
async fn enqueue_schedule(
    state: &AppState,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Result<u32, StoreError> {
    let mut added = 0;
    for period in schedule.due(now) {
        if state
            .store
            .enqueue_job(None, (schedule.make)(period, now))
            .await?
        {
            added += 1;
        }
    }
    Ok(added)
}

/// The scheduler loop of one instance: enqueues due periods whenever a period ends.
pub(super) async fn run(state: AppState, registry: &Registry, mut stopped: watch::Receiver<bool>) {
    // The latest period enqueued, by job: skips the store between periods.
    let mut done: HashMap<&str, i64> = HashMap::new();
    while !*stopped.borrow() {
        let now = state.clock.now();
        for schedule in registry.schedules() {
            let latest = schedule.latest_ended(now);
            if done.get(schedule.name) == Some(&latest) {
                continue;
            }
            match enqueue_schedule(&state, schedule, now).await {
                Ok(_) => {
                    done.insert(schedule.name, latest);
                    state.jobs_ready.notify_waiters();
                }
                Err(e) => {
                    tracing::warn!(error = %super::chain(&e), job.kind = schedule.name, "could not enqueue a periodic job");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stopped.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(every_secs: i64, catch_up: u32) -> Schedule {
        Schedule {
            name: "Test",
            every_secs,
            catch_up,
            make: |_, _| NewJob::now("Test", serde_json::Value::Null),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    #[test]
    fn the_latest_ended_period_and_the_one_before_are_due() {
        let due = schedule(60, 1).due(at("2026-12-02T07:41:30Z"));
        assert_eq!(
            due,
            [
                Period {
                    start: at("2026-12-02T07:39:00Z"),
                    end: at("2026-12-02T07:40:00Z")
                },
                Period {
                    start: at("2026-12-02T07:40:00Z"),
                    end: at("2026-12-02T07:41:00Z")
                },
            ]
        );
        assert_eq!(due[1].key("Sweep"), "Sweep:2026-12-02T07:40:00Z");
    }

    #[test]
    fn days_are_utc_days() {
        let due = schedule(86_400, 0).due(at("2026-12-02T00:00:00Z"));
        assert_eq!(
            due,
            [Period {
                start: at("2026-12-01T00:00:00Z"),
                end: at("2026-12-02T00:00:00Z")
            }]
        );
    }
}
