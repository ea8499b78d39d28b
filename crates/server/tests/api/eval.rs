//! `cortexlayer eval` on a small two-tenant BEIR dataset (`tests/data/beir-two-tenants`), run
//! as the real binary with the real local model, on the backend under test.

use serde_json::Value;

use crate::helpers::{backend, model_dir, test_database_url};

#[tokio::test]
async fn eval_scores_retrieval_per_tenant_and_never_crosses_tenants() {
    let dataset = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/beir-two-tenants");
    let data_dir = std::env::temp_dir().join(format!("cortex-eval-{}", uuid::Uuid::now_v7()));
    let mut args = vec![
        "eval".to_owned(),
        "--dataset".to_owned(),
        dataset.to_owned(),
        "--json".to_owned(),
    ];
    if backend() == "postgres" {
        args.push("--database-url".to_owned());
        args.push(test_database_url().await);
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cortexlayer"))
        .args(&args)
        .env("CORTEX_DATA_DIR", &data_dir)
        .env("CORTEX_MODEL_DIR", model_dir())
        .output()
        .expect("run cortexlayer eval");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");

    let d = &report["dataset"];
    assert_eq!(d["documents"], 8, "{report}");
    assert_eq!(d["documents_failed"], 0, "{report}");
    assert_eq!(d["tenants"], 2, "{report}");
    // q1–q8 in their tenants; q7 also in globex, where nothing relevant lives: skipped.
    assert_eq!(d["judged_queries"], 8, "{report}");
    assert_eq!(d["skipped_queries"], 1, "{report}");
    assert_eq!(d["cross_tenant_hits"], 0, "{report}");

    for mode in ["lexical", "vector", "hybrid"] {
        let m = &report[mode];
        for metric in ["ndcg@10", "recall@10", "mrr@10"] {
            let v = m[metric].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&v), "{mode} {metric} = {v}");
        }
        // Four documents per tenant: every relevant one is within the first ten.
        assert_eq!(m["recall@10"], 1.0, "{mode}: {report}");
        let latency = &report["latency_ms"][mode];
        assert!(latency["p50"].as_f64().is_some_and(|v| v > 0.0), "{report}");
        assert!(
            latency["p99"].as_f64() >= latency["p50"].as_f64(),
            "{report}"
        );
    }
    // Each question has one clearly matching document in its tenant; the meaning-based modes
    // put it first for every question (the other tenant's refund policy never competes).
    for mode in ["vector", "hybrid"] {
        assert_eq!(report[mode]["mrr@10"], 1.0, "{mode}: {report}");
        assert_eq!(report[mode]["ndcg@10"], 1.0, "{mode}: {report}");
    }
    let _ = std::fs::remove_dir_all(data_dir);
}
