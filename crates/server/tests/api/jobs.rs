//! The job layer as the product shows it: periodic jobs run once per period whoever schedules
//! them, a missed period is caught up after a downtime, and the abandoned-document sweep they
//! carry fails a document whose workers all died on it.

use cortexlayer_server::jobs::{Clock, registry, scheduler::enqueue_due};

use crate::helpers::knowledge::GUIDE;
use crate::helpers::spawn_app;

/// Moves the app's clock to five seconds into the next minute, so that a test has most of a
/// minute before the next period ends.
fn to_start_of_a_minute(app: &crate::helpers::TestApp) {
    let into = app.clock.now().timestamp().rem_euclid(60);
    app.advance(chrono::Duration::seconds(65 - into));
}

#[tokio::test]
async fn periodic_jobs_run_once_per_period_and_catch_up_one_missed_period_after_a_downtime() {
    let app = spawn_app().await;
    to_start_of_a_minute(&app);
    let now = app.clock.now();
    // Two instances' schedulers look at the same moment: the minute that ended and the one
    // before it are enqueued once.
    let first = enqueue_due(&app.state, registry(), now)
        .await
        .expect("enqueue");
    let second = enqueue_due(&app.state, registry(), now)
        .await
        .expect("enqueue");
    assert_eq!((first, second), (2, 0));
    assert_eq!(app.run_pending_jobs().await, 2, "the two sweeps ran");
    assert_eq!(app.run_pending_jobs().await, 0, "nothing more this minute");

    app.advance(chrono::Duration::minutes(1));
    assert_eq!(
        app.run_pending_jobs().await,
        1,
        "the minute that just ended"
    );

    // Ten minutes with no instance running: the latest period and the one before run, not
    // all ten.
    app.advance(chrono::Duration::minutes(10));
    assert_eq!(app.run_pending_jobs().await, 2);
}

#[tokio::test]
async fn a_document_whose_workers_all_died_on_it_fails_at_the_next_sweep() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let id = app
        .upload_one(&owner.access, "guide.md", GUIDE.as_bytes())
        .await;
    // Three workers take the parse job in turn and die with it: each lease runs out.
    for _ in 0..3 {
        let leased = app
            .state
            .store
            .lease_jobs(app.clock.now(), chrono::Duration::seconds(60), 10)
            .await
            .expect("lease");
        assert_eq!(leased.len(), 1, "{leased:?}");
        app.advance(chrono::Duration::minutes(2));
    }
    assert_eq!(app.document(&owner.access, &id).await["status"], "pending");

    // The queue fails the job (no attempt left) and the minute's sweep fails its document.
    app.run_pending_jobs().await;
    let d = app.document(&owner.access, &id).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["error"]["code"], "processing_abandoned", "{d}");
}

#[tokio::test]
async fn the_jobs_run_command_works_through_the_queue_and_says_what_ran() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let id = app
        .upload_one(&owner.access, "guide.md", GUIDE.as_bytes())
        .await;
    let settings = &app.state.settings;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cortexlayer"))
        .args(["jobs", "run"])
        .env("DATABASE_URL", settings.database_url.expose())
        .env("CORTEX_DATA_DIR", &settings.data_dir)
        .env("CORTEX_MODEL_DIR", crate::helpers::model_dir())
        .output()
        .expect("run cortexlayer jobs run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Parsing, embedding, and the sweeps of the minute that ended and the one before.
    assert!(
        stdout.starts_with("4 job(s) done, 0 attempt(s) failed"),
        "{stdout}"
    );
    assert_eq!(app.document(&owner.access, &id).await["status"], "ready");
}

/// Fair turns as a customer sees them: while one company's import of many documents waits in
/// the queue, another company's single upload is searchable by meaning after a handful of
/// jobs, not after the whole import.
#[tokio::test]
async fn another_companys_upload_is_searchable_by_meaning_while_an_import_waits() {
    // No background workers: the test runs each job itself, as one worker would.
    let app = crate::helpers::spawn_app_with(|s| s.knowledge.workers = 0).await;
    let importer = app.owner("owner@importer.example", "Importer").await;
    let small = app.owner("owner@small.example", "Small").await;
    // Nine: the Starter plan holds ten documents.
    let files: Vec<(String, Vec<u8>)> = (0..9)
        .map(|n| {
            (
                format!("article-{n}.md"),
                format!("# Article {n}\n\nShipping to region {n} takes {n} working days.\n")
                    .into_bytes(),
            )
        })
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let r = app.upload(&importer.access, &refs).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let id = app
        .upload_one(
            &small.access,
            "returns.md",
            b"# Returns\n\nUnused items can be sent back within thirty days for a full refund.\n",
        )
        .await;

    let mut ran = 0;
    while app.document(&small.access, &id).await["status"] != "ready" {
        assert!(
            ran < 6,
            "the small upload is still waiting after {ran} jobs"
        );
        cortexlayer_server::jobs::run_next(&app.state)
            .await
            .expect("lease")
            .expect("a job is due");
        ran += 1;
    }
    let hits = app
        .search(&small.access, "can I get my money back", "vector", 3)
        .await;
    assert!(
        hits.iter()
            .any(|h| h["chunk"]["document_id"] == id.as_str()),
        "{hits:?}"
    );
    // The import is still mostly waiting, and all of it completes afterwards.
    let ready = |listed: serde_json::Value| {
        listed["data"]
            .as_array()
            .expect("documents")
            .iter()
            .filter(|d| d["status"] == "ready")
            .count()
    };
    let listed = app.get_as("/api/v1/documents", &importer.access).await;
    let before = ready(listed.json().await.expect("json"));
    assert!(before <= 2, "{before} of the import's documents went first");
    app.run_pending_jobs().await;
    let listed = app.get_as("/api/v1/documents", &importer.access).await;
    assert_eq!(ready(listed.json().await.expect("json")), 9);
}
