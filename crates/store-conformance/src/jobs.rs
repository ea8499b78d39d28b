//! Conformance: The durable job queue.

use chrono::Duration;
use cortex_core::jobs::JobStatus;
use cortex_core::store::conflict;

use crate::{DynStore, assert_conflict, assert_not_found, job, now, tenant_with_owner};

pub async fn jobs_are_leased_once_and_completed_once(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let t0 = now();
    for n in 0..3 {
        assert!(
            store
                .enqueue_job(Some(t), job("ParseDocument", n, t0))
                .await
                .expect("enqueue")
        );
    }
    let lease = Duration::seconds(60);
    let first = store.lease_jobs(t0, lease, 2).await.expect("lease");
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|l| l.job.status == JobStatus::Running
        && l.job.attempts == 1
        && l.job.tenant_id == Some(t)));
    assert_eq!(
        first
            .iter()
            .map(|l| l.job.payload["n"].as_i64())
            .collect::<Vec<_>>(),
        vec![Some(0), Some(1)],
        "oldest first"
    );
    let second = store.lease_jobs(t0, lease, 10).await.expect("lease");
    assert_eq!(second.len(), 1);
    assert!(
        store
            .lease_jobs(t0, lease, 10)
            .await
            .expect("lease")
            .is_empty(),
        "nothing left to lease"
    );

    let l = &first[0];
    store
        .complete_job(l.job.id, l.token, now())
        .await
        .expect("complete");
    let done = store.get_job(l.job.id).await.expect("get");
    assert_eq!(done.status, JobStatus::Done);
    assert!(done.finished_at.is_some());
    assert_conflict(
        store.complete_job(l.job.id, l.token, now()).await,
        conflict::LEASE_LOST,
    );
    assert_conflict(
        store
            .complete_job(second[0].job.id, uuid::Uuid::now_v7(), now())
            .await,
        conflict::LEASE_LOST,
    );
    assert_not_found(
        store.get_job(cortex_core::ids::JobId::new()).await,
        "unknown job",
    );
}

pub async fn unique_keys_make_enqueueing_idempotent(store: DynStore) {
    let t0 = now();
    assert!(
        store
            .enqueue_job(
                None,
                job("DailyRollup", 1, t0).unique("DailyRollup:2026-11-22")
            )
            .await
            .expect("enqueue")
    );
    assert!(
        !store
            .enqueue_job(
                None,
                job("DailyRollup", 2, t0).unique("DailyRollup:2026-11-22")
            )
            .await
            .expect("enqueue")
    );
    let leased = store
        .lease_jobs(t0, Duration::seconds(60), 10)
        .await
        .expect("lease");
    assert_eq!(leased.len(), 1);
    assert_eq!(
        (leased[0].job.tenant_id, leased[0].job.payload["n"].as_i64()),
        (None, Some(1))
    );
    store
        .complete_job(leased[0].job.id, leased[0].token, now())
        .await
        .expect("complete");
    assert!(
        !store
            .enqueue_job(
                None,
                job("DailyRollup", 3, t0).unique("DailyRollup:2026-11-22")
            )
            .await
            .expect("enqueue"),
        "a key that ran stays used: scheduled work runs once"
    );
    assert!(
        store
            .enqueue_job(
                None,
                job("DailyRollup", 4, t0).unique("DailyRollup:2026-11-23")
            )
            .await
            .expect("enqueue")
    );
}

pub async fn failed_attempts_wait_for_their_retry_time_then_fail_for_good(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let t0 = now();
    let mut new = job("EmbedChunks", 1, t0);
    new.max_attempts = 2;
    store.enqueue_job(Some(t), new).await.expect("enqueue");
    let lease = Duration::seconds(60);
    let l = store
        .lease_jobs(t0, lease, 1)
        .await
        .expect("lease")
        .remove(0);
    let retry_at = t0 + Duration::seconds(2);
    let after = store
        .fail_job(l.job.id, l.token, "model timed out", retry_at, t0)
        .await
        .expect("fail");
    assert_eq!(
        (after.status, after.run_at, after.last_error.as_deref()),
        (JobStatus::Queued, retry_at, Some("model timed out"))
    );
    assert!(
        store
            .lease_jobs(t0 + Duration::seconds(1), lease, 1)
            .await
            .expect("lease")
            .is_empty(),
        "not due yet"
    );
    let l2 = store
        .lease_jobs(retry_at, lease, 1)
        .await
        .expect("lease")
        .remove(0);
    assert_eq!(l2.job.attempts, 2);
    assert_conflict(
        store
            .fail_job(l.job.id, l.token, "stale", retry_at, retry_at)
            .await,
        conflict::LEASE_LOST,
    );
    let last = store
        .fail_job(
            l2.job.id,
            l2.token,
            "model timed out again",
            retry_at + Duration::seconds(9),
            retry_at,
        )
        .await
        .expect("fail");
    assert_eq!(
        (last.status, last.last_error.as_deref()),
        (JobStatus::Failed, Some("model timed out again"))
    );
    assert!(last.finished_at.is_some());
    assert!(
        store
            .lease_jobs(retry_at + Duration::hours(1), lease, 1)
            .await
            .expect("lease")
            .is_empty(),
        "failed jobs stay failed"
    );
}

pub async fn an_expired_lease_passes_to_the_next_worker(store: DynStore) {
    let t0 = now();
    store
        .enqueue_job(None, job("ParseDocument", 1, t0))
        .await
        .expect("enqueue");
    let crashed = store
        .lease_jobs(t0, Duration::seconds(30), 1)
        .await
        .expect("lease")
        .remove(0);
    store
        .extend_lease(crashed.job.id, crashed.token, t0 + Duration::seconds(60))
        .await
        .expect("heartbeat");
    assert!(
        store
            .lease_jobs(t0 + Duration::seconds(45), Duration::seconds(30), 1)
            .await
            .expect("lease")
            .is_empty(),
        "the heartbeat kept it"
    );
    let taken = store
        .lease_jobs(t0 + Duration::seconds(61), Duration::seconds(30), 1)
        .await
        .expect("lease")
        .remove(0);
    assert_eq!((taken.job.id, taken.job.attempts), (crashed.job.id, 2));
    assert_ne!(taken.token, crashed.token);
    assert_conflict(
        store
            .complete_job(crashed.job.id, crashed.token, now())
            .await,
        conflict::LEASE_LOST,
    );
    assert_conflict(
        store
            .extend_lease(crashed.job.id, crashed.token, t0 + Duration::hours(1))
            .await,
        conflict::LEASE_LOST,
    );
    store
        .complete_job(taken.job.id, taken.token, now())
        .await
        .expect("the new holder completes");
}

pub async fn a_lease_running_out_on_the_last_attempt_fails_the_job(store: DynStore) {
    let t0 = now();
    let mut new = job("ParseDocument", 1, t0);
    new.max_attempts = 1;
    let id = new.id;
    store.enqueue_job(None, new).await.expect("enqueue");
    store
        .lease_jobs(t0, Duration::seconds(10), 1)
        .await
        .expect("lease");
    assert!(
        store
            .lease_jobs(t0 + Duration::seconds(11), Duration::seconds(10), 1)
            .await
            .expect("lease")
            .is_empty()
    );
    let j = store.get_job(id).await.expect("get");
    assert_eq!(j.status, JobStatus::Failed);
    assert!(j.last_error.expect("reason").contains("lease expired"));
}

pub async fn concurrent_workers_never_share_a_job(store: DynStore) {
    let t0 = now();
    for n in 0..20 {
        store
            .enqueue_job(None, job("ParseDocument", n, t0))
            .await
            .expect("enqueue");
    }
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = s
                        .lease_jobs(t0, Duration::seconds(60), 3)
                        .await
                        .expect("lease");
                    if got.is_empty() {
                        break mine;
                    }
                    mine.extend(got.into_iter().map(|l| l.job.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("join"));
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (total, all.len()),
        (20, 20),
        "every job leased exactly once"
    );
}

/// Fair turns: a tenant's long line of queued jobs of one kind does not hold back another
/// tenant's job, nor the same tenant's job of another kind; within a line, oldest first.
pub async fn a_long_line_of_one_tenants_jobs_does_not_hold_back_anothers(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "importer").await;
    let (b, _) = tenant_with_owner(&store, "small").await;
    let t0 = now();
    for n in 0..5 {
        store
            .enqueue_job(Some(a), job("ParseDocument", n, t0))
            .await
            .expect("enqueue");
    }
    // Later arrivals: another tenant's upload, the importer's own channel reply.
    store
        .enqueue_job(
            Some(b),
            job("ParseDocument", 100, t0 + Duration::seconds(1)),
        )
        .await
        .expect("enqueue");
    store
        .enqueue_job(Some(a), job("ChannelReply", 200, t0 + Duration::seconds(2)))
        .await
        .expect("enqueue");
    let at = t0 + Duration::seconds(3);
    let lease = Duration::seconds(60);
    let mut order = Vec::new();
    for _ in 0..3 {
        let one = store.lease_jobs(at, lease, 1).await.expect("lease");
        order.extend(one.iter().map(|l| l.job.payload["n"].as_i64().expect("n")));
    }
    assert_eq!(
        order,
        vec![0, 100, 200],
        "each line's first job goes before the importer's second"
    );
    // The importer's line goes on where it was; a job joining it queues at its end.
    store
        .enqueue_job(Some(a), job("ParseDocument", 5, at))
        .await
        .expect("enqueue");
    // And a line that has emptied starts again at the front.
    store
        .enqueue_job(
            Some(b),
            job("ParseDocument", 101, at + Duration::seconds(1)),
        )
        .await
        .expect("enqueue");
    let rest = store
        .lease_jobs(at + Duration::seconds(2), lease, 10)
        .await
        .expect("lease");
    assert_eq!(
        rest.iter()
            .map(|l| l.job.payload["n"].as_i64().expect("n"))
            .collect::<Vec<_>>(),
        vec![101, 1, 2, 3, 4, 5],
        "the emptied line's job is at turn 0, the importer's next at turn 1"
    );
}
