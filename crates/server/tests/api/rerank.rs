//! A rerank API of the common `/rerank` shape (Cohere's, Jina's) orders the fused candidates,
//! through a local stand-in that checks each request as the real API would (bearer key,
//! `model`, `query`, `documents` as strings, `top_n`) and answers with the documented
//! `{"results": [{"index", "relevance_score"}]}`, best first. A failing reranker leaves the
//! fused order in place.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::helpers::knowledge::{FAQ, GUIDE};
use crate::helpers::spawn_app_with;

const KEY: &str = "rr-test-key";

#[derive(Clone, Default)]
struct Shared {
    requests: Arc<Mutex<Vec<Value>>>,
    failing: Arc<Mutex<bool>>,
}

/// Scores a document 0.9 when it mentions the office dog, else 0.1 minus its position's
/// hundredth: an order no retrieval list gives for these questions.
async fn rerank(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "invalid api token" })),
        )
            .into_response();
    }
    if *s.failing.lock().expect("lock") {
        return (StatusCode::SERVICE_UNAVAILABLE, "overloaded").into_response();
    }
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid json").into_response();
    };
    let (Some(model), Some(_query), Some(documents), Some(top_n)) = (
        v["model"].as_str(),
        v["query"].as_str(),
        v["documents"].as_array(),
        v["top_n"].as_u64(),
    ) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "model, query, documents and top_n are required",
        )
            .into_response();
    };
    if model != "rerank-test"
        || documents.iter().any(|d| !d.is_string())
        || top_n as usize > documents.len()
    {
        return (StatusCode::UNPROCESSABLE_ENTITY, "bad request").into_response();
    }
    s.requests.lock().expect("lock").push(v.clone());
    let mut results: Vec<(usize, f64)> = documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let text = d.as_str().unwrap_or("");
            let score = if text.contains("dog") {
                0.9
            } else {
                0.1 - i as f64 / 100.0
            };
            (i, score)
        })
        .collect();
    results.sort_by(|a, b| b.1.total_cmp(&a.1));
    results.truncate(top_n as usize);
    Json(json!({
        "id": "07734bd2-2473-4f07-94e1-0d9f0e6843cf",
        "results": results
            .into_iter()
            .map(|(index, relevance_score)| json!({ "index": index, "relevance_score": relevance_score }))
            .collect::<Vec<_>>(),
        "meta": { "billed_units": { "search_units": 1 } }
    }))
    .into_response()
}

async fn stand_in() -> (String, Shared) {
    let shared = Shared::default();
    let app = axum::Router::new()
        .route("/v2/rerank", post(rerank))
        .with_state(shared.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}/v2"), shared)
}

async fn first_text(app: &crate::helpers::TestApp, token: &str, query: &str) -> String {
    let r = app
        .post_as(
            "/api/v1/search",
            token,
            &json!({ "query": query, "mode": "hybrid", "top_k": 3 }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["results"][0]["chunk"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_rerank_api_orders_the_fused_candidates_and_a_failing_one_changes_nothing() {
    let (url, shared) = stand_in().await;
    let app = spawn_app_with(|s| {
        s.knowledge.rerank_base_url = Some(url.clone());
        s.knowledge.rerank_model = "rerank-test".into();
        s.knowledge.rerank_api_key = Some(cortexlayer_server::config::Secret::new(KEY));
    })
    .await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    for (name, text) in [("guide.md", GUIDE), ("faq.md", FAQ)] {
        let doc = app.upload_one(&owner.access, name, text.as_bytes()).await;
        assert_eq!(app.settled(&owner.access, &doc).await["status"], "ready");
    }
    let question = "How long do refunds take?";

    // The stand-in puts the office dog first, whatever the question.
    let first = first_text(&app, &owner.access, question).await;
    assert!(first.contains("Biscuit"), "{first}");
    let sent = shared.requests.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["query"], question);
    let documents = sent[0]["documents"].as_array().expect("documents");
    assert!(documents.len() >= 2, "the fused candidates: {documents:?}");
    assert_eq!(sent[0]["top_n"], documents.len());

    // The answer engine quotes from the reranked sources too.
    let r = app
        .post_as(
            "/api/v1/chat",
            &owner.access,
            &json!({ "message": question }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(shared.requests.lock().expect("lock").len(), 2);

    // Down: the fused order stands and nothing fails.
    *shared.failing.lock().expect("lock") = true;
    let first = first_text(&app, &owner.access, question).await;
    assert!(first.contains("within 14 days"), "{first}");
    let r = app
        .post_as(
            "/api/v1/chat",
            &owner.access,
            &json!({ "message": question }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(
        v["answer"]
            .as_str()
            .expect("answer")
            .contains("within 14 days"),
        "{v}"
    );
}

/// A cross-encoder folder: the embedding model's BERT body and pooler with a generated
/// one-label classifier — the model `cortex-ai`'s reference test checks against an
/// independent implementation. Its scores mean nothing; the test checks that they, and
/// only they, order what the search returns.
fn cross_encoder_folder() -> std::path::PathBuf {
    use candle_core::{Device, Tensor};
    let model = crate::helpers::model_dir();
    let dir = std::env::temp_dir().join(format!("cortex-api-cross-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("folder");
    for f in ["tokenizer.json", "config.json"] {
        std::fs::copy(model.join(f), dir.join(f)).expect("copy");
    }
    let mut tensors = candle_core::safetensors::load(model.join("model.safetensors"), &Device::Cpu)
        .expect("weights");
    let row: Vec<f32> = (0..384)
        .map(|j| 0.5 * (0.37 * (j as f32 + 1.0)).sin())
        .collect();
    tensors.insert(
        "classifier.weight".into(),
        Tensor::from_vec(row, (1, 384), &Device::Cpu).expect("tensor"),
    );
    tensors.insert(
        "classifier.bias".into(),
        Tensor::from_vec(vec![0.1f32], 1, &Device::Cpu).expect("tensor"),
    );
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).expect("save");
    dir
}

#[tokio::test]
async fn a_cross_encoder_from_a_model_folder_orders_the_candidates_by_its_scores() {
    let folder = cross_encoder_folder();
    let app = spawn_app_with(|s| s.knowledge.rerank_model_dir = Some(folder.clone())).await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    for (name, text) in [("guide.md", GUIDE), ("faq.md", FAQ)] {
        let doc = app.upload_one(&owner.access, name, text.as_bytes()).await;
        assert_eq!(app.settled(&owner.access, &doc).await["status"], "ready");
    }
    let question = "How long do refunds take?";
    let r = app
        .post_as(
            "/api/v1/search",
            &owner.access,
            &json!({ "query": question, "mode": "hybrid", "top_k": 3 }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    let hits = v["results"].as_array().expect("results");
    assert!(hits.len() >= 2, "{v}");
    let texts: Vec<&str> = hits
        .iter()
        .map(|h| h["chunk"]["text"].as_str().expect("text"))
        .collect();
    let model = cortex_ai::CrossEncoder::load(&folder).expect("load");
    let want = model.score(question, &texts).expect("score");
    for (hit, want) in hits.iter().zip(&want) {
        let got = hit["score"].as_f64().expect("score") as f32;
        assert!((got - want).abs() < 1e-5, "{got} against {want}");
    }
    assert!(
        want.windows(2).all(|w| w[0] >= w[1]),
        "best first by the cross-encoder: {want:?}"
    );

    // The answer engine reads the same order, and answers.
    let r = app
        .post_as(
            "/api/v1/chat",
            &owner.access,
            &json!({ "message": question }),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_model_folder_that_is_no_cross_encoder_stops_the_start_with_the_reason() {
    let mut settings = cortexlayer_server::config::Settings {
        database_url: cortexlayer_server::config::Secret::new(
            crate::helpers::test_database_url().await,
        ),
        ..Default::default()
    };
    settings.knowledge.model_dir = Some(crate::helpers::model_dir());
    // The embedding model: no classifier.
    settings.knowledge.rerank_model_dir = Some(crate::helpers::model_dir());
    settings.data_dir =
        std::env::temp_dir().join(format!("cortex-api-data-{}", uuid::Uuid::now_v7()));
    let err = cortexlayer_server::app::AppState::build(settings)
        .await
        .err()
        .expect("refused");
    let message = format!("{err:#}");
    assert!(
        message.contains("RERANK_MODEL_DIR") && message.contains("classifier"),
        "{message}"
    );

    let mut settings = cortexlayer_server::config::Settings::default();
    settings.knowledge.rerank_model_dir = Some(crate::helpers::model_dir());
    settings.knowledge.rerank_base_url = Some("https://api.cohere.com/v2".into());
    assert!(settings.validate().is_err(), "two rerankers at once");
}
