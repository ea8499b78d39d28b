//! The knowledge base through the API, with the real local embedding model: upload, watch,
//! search by words and by meaning, delete, reprocess, download, limits and bad input, and
//! tenants kept apart.

use std::time::{Duration, Instant};

use cortexlayer_server::jobs::Job;
use cortexlayer_server::knowledge::jobs::{EmbedChunks, ParseDocument};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::helpers::knowledge::{FAQ, GUIDE, spawn_site};
use crate::helpers::{Member, TestApp, error_code, spawn_app, spawn_app_with};

fn first_text(results: &[Value]) -> &str {
    results
        .first()
        .and_then(|r| r["chunk"]["text"].as_str())
        .unwrap_or("")
}

#[tokio::test]
async fn uploaded_documents_become_ready_and_searchable_by_words_and_meaning() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let r = app
        .upload(
            &owner.access,
            &[
                ("help-center.md", GUIDE.as_bytes().to_vec()),
                ("faq.txt", FAQ.as_bytes().to_vec()),
            ],
        )
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.expect("json");
    let docs = v["data"].as_array().expect("data");
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["status"], "pending");
    assert_eq!(docs[0]["kind"], "markdown");
    assert_eq!(docs[0]["title"], "help-center");
    assert_eq!(docs[1]["kind"], "text");
    assert_eq!(docs[0]["size_bytes"], GUIDE.len());
    let guide = docs[0]["id"].as_str().expect("id").to_owned();
    let faq = docs[1]["id"].as_str().expect("id").to_owned();

    let d = app.settled(&owner.access, &guide).await;
    assert_eq!(d["status"], "ready", "{d}");
    assert_eq!(
        (d["stage"].as_str(), d["progress"].as_u64()),
        (Some("done"), Some(100))
    );
    assert_eq!(d["searchable"], "full");
    assert_eq!(d["embedding_model"], "all-MiniLM-L6-v2");
    assert!(d["chunk_count"].as_u64().expect("count") >= 1);
    assert!(d["error"].is_null());
    assert_eq!(app.settled(&owner.access, &faq).await["status"], "ready");

    let listed: Value = app
        .get_as("/api/v1/documents", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"].as_array().expect("data").len(), 2);

    // By words: the lexical index, with citation metadata.
    let hits = app
        .search(&owner.access, "refund payment method", "lexical", 3)
        .await;
    assert!(first_text(&hits).contains("Refunds are issued"), "{hits:?}");
    assert_eq!(hits[0]["document_title"], "help-center");
    assert_eq!(hits[0]["chunk"]["document_id"], guide.as_str());
    assert!(
        hits[0]["chunk"]["heading_path"]
            .as_array()
            .expect("path")
            .iter()
            .any(|h| h == "Acme Help Center"),
        "{hits:?}"
    );

    // By meaning: no word of the question is in the answer's paragraph.
    let hits = app
        .search(
            &owner.access,
            "what is the name of the pet at the workplace",
            "vector",
            3,
        )
        .await;
    assert!(first_text(&hits).contains("Biscuit"), "{hits:?}");
    let score = hits[0]["score"].as_f64().expect("score");
    assert!(
        score > 0.2 && score <= 1.0,
        "cosine similarity, got {score}"
    );

    let hits = app
        .search(
            &owner.access,
            "how long until my parcel arrives in Canada",
            "hybrid",
            5,
        )
        .await;
    assert!(first_text(&hits).contains("five business days"), "{hits:?}");

    // What the bot read.
    let r = app
        .get_as(&format!("/api/v1/documents/{guide}/chunks"), &owner.access)
        .await;
    assert_eq!(r.status(), 200);
    let chunks: Value = r.json().await.expect("json");
    let chunks = chunks["data"].as_array().expect("data");
    assert_eq!(
        chunks.len() as u64,
        d["chunk_count"].as_u64().expect("count")
    );
    assert_eq!(chunks[0]["ordinal"], 0);
    assert!(
        chunks
            .iter()
            .any(|c| c["text"].as_str().unwrap_or("").contains("Two-factor"))
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["token_count"].as_u64().expect("tokens") <= 254)
    );
}

#[tokio::test]
async fn a_document_is_found_by_words_before_its_vectors_exist() {
    // No background workers: the test runs each job itself and looks in between.
    let app = spawn_app_with(|s| s.knowledge.workers = 0).await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let id = app
        .upload_one(&owner.access, "guide.md", GUIDE.as_bytes())
        .await;
    assert_eq!(app.document(&owner.access, &id).await["searchable"], "no");

    app.run_next_job(ParseDocument::NAME).await;
    let d = app.document(&owner.access, &id).await;
    assert_eq!(
        (
            d["status"].as_str(),
            d["stage"].as_str(),
            d["searchable"].as_str()
        ),
        (Some("processing"), Some("embedding"), Some("lexical"))
    );
    assert!(!d["lexical_ready_at"].is_null() && d["vectors_ready_at"].is_null());
    let words = app
        .search(&owner.access, "password security", "lexical", 3)
        .await;
    assert!(
        first_text(&words).contains("change your password"),
        "{words:?}"
    );
    assert!(
        app.search(&owner.access, "password security", "vector", 3)
            .await
            .is_empty(),
        "no vectors yet"
    );
    let hybrid = app
        .search(&owner.access, "password security", "hybrid", 3)
        .await;
    assert!(
        first_text(&hybrid).contains("change your password"),
        "hybrid works on words alone"
    );

    app.run_next_job(EmbedChunks::NAME).await;
    let d = app.document(&owner.access, &id).await;
    assert_eq!(
        (d["status"].as_str(), d["searchable"].as_str()),
        (Some("ready"), Some("full"))
    );
    assert!(
        !app.search(&owner.access, "password security", "vector", 3)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn limits_and_bad_files_are_refused_with_stable_codes() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;

    let big = vec![b'a'; 5_000_001];
    let r = app.upload(t, &[("big.txt", big)]).await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "file_too_large");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(msg.contains("Starter") && msg.contains("5000000"), "{msg}");

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    assert_eq!(
        error_code(app.upload(t, &[("logo.png", png)]).await).await,
        (415, "unsupported_media_type".into())
    );
    assert_eq!(
        error_code(
            app.upload(t, &[("report.pdf", b"plain words".to_vec())])
                .await
        )
        .await,
        (415, "unsupported_media_type".into()),
        "the extension must agree with the content"
    );
    assert_eq!(
        error_code(app.upload(t, &[("empty.txt", Vec::new())]).await).await,
        (415, "unsupported_media_type".into())
    );
    // One bad file refuses the whole request: nothing is stored.
    let r = app
        .upload(
            t,
            &[
                ("ok.txt", b"fine".to_vec()),
                ("bad.png", b"\x89PNG\r\n\x1a\n".to_vec()),
            ],
        )
        .await;
    assert_eq!(r.status(), 415);
    let r = app
        .client
        .post(app.url("/api/v1/documents"))
        .bearer_auth(t)
        .json(&json!({ "file": "nope" }))
        .send()
        .await
        .expect("send");
    assert_eq!(error_code(r).await, (415, "unsupported_media_type".into()));
    let r = app
        .client
        .post(app.url("/api/v1/documents"))
        .bearer_auth(t)
        .multipart(Form::new().text("note", "no file part"))
        .send()
        .await
        .expect("send");
    assert_eq!(error_code(r).await, (422, "validation_failed".into()));
    let listed: Value = app
        .get_as("/api/v1/documents", t)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        listed["data"].as_array().expect("data").is_empty(),
        "{listed}"
    );
}

#[tokio::test]
async fn the_starter_plan_holds_ten_documents_and_says_so_at_the_eleventh() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    let files: Vec<(&str, Vec<u8>)> = (0..10)
        .map(|_| ("note.txt", b"A short note.".to_vec()))
        .collect();
    assert_eq!(app.upload(t, &files).await.status(), 202);
    let r = app
        .upload(t, &[("one-more.txt", b"Too many.".to_vec())])
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "document_limit_reached");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("10 documents")
    );
}

#[tokio::test]
async fn broken_and_hostile_documents_fail_with_a_readable_reason() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;

    let deep = format!(
        "<html><body>{}deep{}</body></html>",
        "<div>".repeat(5_000),
        "</div>".repeat(5_000)
    );
    let nested = app.upload_one(t, "deep.html", deep.as_bytes()).await;
    // A DOCX whose ZIP central directory is cut off.
    let mut docx = b"PK\x03\x04".to_vec();
    docx.extend_from_slice(&[0u8; 60]);
    let broken = app.upload(t, &[("broken.docx", docx)]).await;
    let broken_status = broken.status();
    let truncated_pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog".to_vec();
    let pdf = app.upload_one(t, "scan.pdf", &truncated_pdf).await;
    // 300 paragraphs of ~200 tokens each: more chunks than Starter's 250 per document.
    let para = "Every paragraph of this manual explains one more setting of the device in detail. "
        .repeat(12);
    let long: String = (0..300)
        .map(|i| format!("Section {i}. {para}\n\n"))
        .collect();
    let many = app.upload_one(t, "manual.txt", long.as_bytes()).await;

    let d = app.settled(t, &nested).await;
    assert_eq!(
        (d["status"].as_str(), d["error"]["code"].as_str()),
        (Some("failed"), Some("too_deeply_nested"))
    );
    assert!(
        d["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("2048")
    );
    assert_eq!(d["searchable"], "no");

    if broken_status == 202 {
        let v: Value = broken.json().await.expect("json");
        let id = v["data"][0]["id"].as_str().expect("id").to_owned();
        let d = app.settled(t, &id).await;
        assert_eq!(
            (d["status"].as_str(), d["error"]["code"].as_str()),
            (Some("failed"), Some("parse_failed")),
            "{d}"
        );
    } else {
        assert_eq!(
            broken_status, 415,
            "refused at the door or failed, never half-stored"
        );
    }

    let d = app.settled(t, &pdf).await;
    assert_eq!(
        (d["status"].as_str(), d["error"]["code"].as_str()),
        (Some("failed"), Some("parse_failed")),
        "{d}"
    );
    assert!(
        d["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("PDF cannot be read"),
        "{d}"
    );

    let d = app.settled(t, &many).await;
    assert_eq!(
        (d["status"].as_str(), d["error"]["code"].as_str()),
        (Some("failed"), Some("chunk_limit_exceeded")),
        "{d}"
    );
    let msg = d["error"]["message"].as_str().expect("msg");
    assert!(msg.contains("Starter") && msg.contains("250"), "{msg}");
    assert!(
        app.search(t, "device setting manual", "lexical", 5)
            .await
            .is_empty(),
        "a failed document answers nothing"
    );
}

#[tokio::test]
async fn deleting_removes_everything_and_reprocessing_replaces_chunks() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    let keep = app.upload_one(t, "faq.txt", FAQ.as_bytes()).await;
    let id = app.upload_one(t, "guide.md", GUIDE.as_bytes()).await;
    let first = app.settled(t, &id).await;
    app.settled(t, &keep).await;

    // Download: the bytes as uploaded, as an attachment of the sniffed type.
    let r = app
        .get_as(&format!("/api/v1/documents/{id}/original"), t)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/markdown; charset=utf-8");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment; filename=\"guide.md\"")
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.expect("body").as_ref(), GUIDE.as_bytes());

    // Reprocess: a new generation, the same chunks again, none twice.
    let r = app
        .post_as(&format!("/api/v1/documents/{id}/reprocess"), t, &json!({}))
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["status"].as_str(), v["generation"].as_u64()),
        (Some("pending"), Some(2))
    );
    let again = app.settled(t, &id).await;
    assert_eq!(
        (again["status"].as_str(), again["generation"].as_u64()),
        (Some("ready"), Some(2))
    );
    assert_eq!(again["chunk_count"], first["chunk_count"]);
    let chunks: Value = app
        .get_as(&format!("/api/v1/documents/{id}/chunks"), t)
        .await
        .json()
        .await
        .expect("json");
    let ordinals: Vec<u64> = chunks["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|c| c["ordinal"].as_u64().expect("n"))
        .collect();
    assert_eq!(ordinals, (0..ordinals.len() as u64).collect::<Vec<_>>());

    // Delete: the row, chunks, lexical entries, vectors and the original go.
    let r = app.delete_as(&format!("/api/v1/documents/{id}"), t).await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        error_code(app.get_as(&format!("/api/v1/documents/{id}"), t).await).await,
        (404, "not_found".into())
    );
    assert_eq!(
        error_code(
            app.get_as(&format!("/api/v1/documents/{id}/original"), t)
                .await
        )
        .await,
        (404, "not_found".into())
    );
    assert_eq!(
        error_code(
            app.get_as(&format!("/api/v1/documents/{id}/chunks"), t)
                .await
        )
        .await,
        (404, "not_found".into())
    );
    assert!(app.search(t, "refund", "lexical", 5).await.is_empty());
    let meaning = app
        .search(t, "refund to the original payment method", "vector", 5)
        .await;
    assert!(
        meaning
            .iter()
            .all(|h| h["chunk"]["document_id"] == keep.as_str()),
        "{meaning:?}"
    );
    let blob = app.state.settings.blob_dir().join("documents");
    let stored: Vec<_> = walk(&blob);
    assert_eq!(
        stored.len(),
        1,
        "only the kept document's original remains: {stored:?}"
    );
    assert_eq!(
        error_code(app.delete_as(&format!("/api/v1/documents/{id}"), t).await).await,
        (404, "not_found".into())
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test]
async fn another_tenant_can_neither_see_nor_touch_the_documents() {
    let app = spawn_app().await;
    let alice = app.owner("alice@acme.example", "Acme").await;
    let bob = app.owner("bob@globex.example", "Globex").await;
    let id = app
        .upload_one(&alice.access, "guide.md", GUIDE.as_bytes())
        .await;
    app.settled(&alice.access, &id).await;

    for path in [
        format!("/api/v1/documents/{id}"),
        format!("/api/v1/documents/{id}/original"),
        format!("/api/v1/documents/{id}/chunks"),
    ] {
        assert_eq!(
            error_code(app.get_as(&path, &bob.access).await).await,
            (404, "not_found".into()),
            "{path}"
        );
    }
    assert_eq!(
        error_code(
            app.post_as(
                &format!("/api/v1/documents/{id}/reprocess"),
                &bob.access,
                &json!({})
            )
            .await
        )
        .await,
        (404, "not_found".into())
    );
    assert_eq!(
        error_code(
            app.delete_as(&format!("/api/v1/documents/{id}"), &bob.access)
                .await
        )
        .await,
        (404, "not_found".into())
    );
    let listed: Value = app
        .get_as("/api/v1/documents", &bob.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(listed["data"].as_array().expect("data").is_empty());
    for mode in ["lexical", "vector", "hybrid"] {
        assert!(
            app.search(&bob.access, "refunds shipping password", mode, 10)
                .await
                .is_empty(),
            "{mode}"
        );
    }
    // Still all there for its owner.
    assert_eq!(app.document(&alice.access, &id).await["status"], "ready");
}

#[tokio::test]
async fn roles_and_api_key_scopes_decide_who_reads_and_who_writes() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let agent: Member = app.member(&owner, "agent@acme.example", "agent").await;
    let id = app
        .upload_one(&owner.access, "faq.txt", FAQ.as_bytes())
        .await;
    app.settled(&owner.access, &id).await;

    assert_eq!(
        error_code(app.upload(&agent.access, &[("x.txt", b"x".to_vec())]).await).await,
        (403, "forbidden".into())
    );
    assert_eq!(
        app.search(&agent.access, "support phone hours", "lexical", 3)
            .await
            .len(),
        1
    );

    let (_, reader) = app.api_key(&owner, &["knowledge:read"]).await;
    let (_, writer) = app
        .api_key(&owner, &["knowledge:write", "knowledge:read"])
        .await;
    let (_, chat_only) = app.api_key(&owner, &["chat"]).await;
    assert_eq!(
        error_code(app.upload(&reader, &[("x.txt", b"x".to_vec())]).await).await,
        (403, "forbidden".into())
    );
    assert_eq!(
        app.upload(&writer, &[("x.txt", b"written by a key".to_vec())])
            .await
            .status(),
        202
    );
    assert_eq!(
        app.search(&reader, "office dog", "hybrid", 3)
            .await
            .len()
            .min(1),
        1
    );
    let r = app
        .post_as("/api/v1/search", &chat_only, &json!({ "query": "dog" }))
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
}

#[tokio::test]
async fn search_requests_are_validated() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    for (body, field) in [
        (json!({ "query": "  " }), "query"),
        (json!({ "query": "x".repeat(2_001) }), "query"),
        (json!({ "query": "ok", "top_k": 0 }), "top_k"),
        (json!({ "query": "ok", "top_k": 51 }), "top_k"),
    ] {
        let r = app.post_as("/api/v1/search", t, &body).await;
        let v: Value = r.json().await.expect("json");
        assert_eq!(
            (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
            (Some("validation_failed"), Some(field)),
            "{body}"
        );
    }
    let r = app
        .post_as(
            "/api/v1/search",
            t,
            &json!({ "query": "ok", "mode": "psychic" }),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(
        app.search(t, "nothing uploaded yet", "hybrid", 5)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_server_killed_mid_document_resumes_it_after_restart_without_duplicates() {
    // The test's own app (no workers) shares the database and data folder with the binary.
    let app = spawn_app_with(|s| s.knowledge.workers = 0).await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    // ~200 chunks of ~240 tokens: long enough to be caught halfway through embedding.
    let body: String = (0..200)
        .map(|i| {
            format!(
                "## Topic {i}\n\nArticle {i} describes configuration option number {i} of the router, how it interacts with the firewall, which defaults apply after a factory reset and what the status light shows while it is active. {}\n\n",
                "Operators should read the whole article before changing the option in production. ".repeat(10)
            )
        })
        .collect();
    let id = app.upload_one(t, "router-manual.md", body.as_bytes()).await;

    let settings = &app.state.settings;
    let data_dir = settings.data_dir.display().to_string();
    let model_dir = crate::helpers::model_dir().display().to_string();
    let env = [
        ("CORTEX_DATA_DIR", data_dir.as_str()),
        ("CORTEX_MODEL_DIR", model_dir.as_str()),
        ("CORTEX_WORKERS", "1"),
        ("CORTEX_JOB_LEASE_SECS", "3"),
        ("JWT_SECRET", crate::helpers::JWT_SECRET),
    ];
    let server = crate::helpers::serve::start_on(settings.database_url.expose(), &env);
    // Wait until embedding is under way, then pull the plug.
    let start = Instant::now();
    let before_kill = loop {
        let d = app.document(t, &id).await;
        if d["stage"] == "embedding" && d["progress"].as_u64().unwrap_or(0) >= 60 {
            break d;
        }
        assert!(
            d["status"] != "ready",
            "finished before it could be interrupted; make the document longer"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no progress: {d}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.kill_hard();
    let chunk_count = before_kill["chunk_count"].as_u64().expect("count");
    assert!(chunk_count > 150, "{before_kill}");
    let tenant: cortex_core::ids::TenantId = owner.tenant_id.parse().expect("tenant id");
    let pending = app
        .state
        .store
        .pending_embeddings(tenant, id.parse().expect("id"), "all-MiniLM-L6-v2", 10_000)
        .await
        .expect("pending")
        .len() as u64;
    assert!(
        pending > 0 && pending < chunk_count,
        "killed halfway: {pending} of {chunk_count} chunks still need vectors"
    );
    assert_eq!(app.document(t, &id).await["status"], "processing");

    // A new process takes the job over once the dead one's lease runs out.
    let server = crate::helpers::serve::start_on(settings.database_url.expose(), &env);
    let done = app.settled_by_the_server(t, &id).await;
    drop(server);
    assert_eq!(done["status"], "ready", "{done}");
    assert_eq!(done["chunk_count"].as_u64(), Some(chunk_count));
    let chunks: Value = app
        .get_as(&format!("/api/v1/documents/{id}/chunks?limit=500"), t)
        .await
        .json()
        .await
        .expect("json");
    let chunks = chunks["data"].as_array().expect("data");
    let mut ordinals: Vec<u64> = chunks
        .iter()
        .map(|c| c["ordinal"].as_u64().expect("n"))
        .collect();
    ordinals.dedup();
    assert_eq!(
        ordinals,
        (0..chunk_count).collect::<Vec<_>>(),
        "every chunk once"
    );
    let mut texts: Vec<&str> = chunks
        .iter()
        .map(|c| c["text"].as_str().expect("text"))
        .collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len() as u64, chunk_count, "no chunk stored twice");
    let hits = app
        .search(
            t,
            "what does the status light show for option 137",
            "hybrid",
            3,
        )
        .await;
    assert!(first_text(&hits).contains("option number 137"), "{hits:?}");
}

fn ingest_fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../ingest/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

#[tokio::test]
async fn pdfs_are_read_page_by_page_and_scans_fail_with_the_reason() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    let handbook = app
        .upload_one(t, "handbook.pdf", &ingest_fixture("handbook.pdf"))
        .await;
    let scan = app
        .upload_one(t, "scan.pdf", &ingest_fixture("scan.pdf"))
        .await;

    let d = app.settled(t, &handbook).await;
    assert_eq!(
        (d["status"].as_str(), d["kind"].as_str()),
        (Some("ready"), Some("pdf")),
        "{d}"
    );
    let hits = app
        .search(t, "when are travel expenses paid back", "hybrid", 1)
        .await;
    assert!(
        first_text(&hits).contains("reimbursed within 30 days"),
        "{hits:?}"
    );
    assert_eq!(hits[0]["chunk"]["page_end"], 2, "{hits:?}");

    let d = app.settled(t, &scan).await;
    assert_eq!(
        (d["status"].as_str(), d["error"]["code"].as_str()),
        (Some("failed"), Some("no_text_layer")),
        "{d}"
    );
    assert!(d["error"]["message"].as_str().expect("msg").contains("OCR"));
}

#[tokio::test]
async fn qa_pairs_are_found_by_their_question_and_carry_their_answer() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    let r = app
        .post_as(
            "/api/v1/documents/qa",
            t,
            &json!({ "title": "Store FAQ", "pairs": [
                { "question": "Are you open on Sundays?", "answer": "No, we are closed on Sundays and public holidays." },
                { "question": "Do you sell gift cards?", "answer": "Yes, in amounts from 10 to 200 euros." },
            ]}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["source"].as_str(), v["kind"].as_str()),
        (Some("qa"), Some("qa"))
    );
    let id = v["id"].as_str().expect("id").to_owned();

    let csv = "question,answer\r\n\"Can I pay by invoice?\",\"Yes, for orders above 500 euros.\"\r\nWhere is the shop?,\"Main Street 5, Springfield\"\r\n";
    let form = Form::new().text("title", "Payments").part(
        "file",
        Part::bytes(csv.as_bytes().to_vec()).file_name("payments.csv"),
    );
    let r = app
        .client
        .post(app.url("/api/v1/documents/qa/import"))
        .bearer_auth(t)
        .multipart(form)
        .send()
        .await
        .expect("import");
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let v: Value = r.json().await.expect("json");
    let imported = v["id"].as_str().expect("id").to_owned();
    assert_eq!(v["title"], "Payments");

    let d = app.settled(t, &id).await;
    assert_eq!(
        (d["status"].as_str(), d["chunk_count"].as_u64()),
        (Some("ready"), Some(2))
    );
    assert_eq!(app.settled(t, &imported).await["chunk_count"], 2);
    let hits = app
        .search(t, "is the store open on sunday", "hybrid", 1)
        .await;
    assert_eq!(hits[0]["chunk"]["text"], "Are you open on Sundays?");
    assert_eq!(
        hits[0]["chunk"]["answer"],
        "No, we are closed on Sundays and public holidays."
    );
    assert_eq!(hits[0]["chunk"]["heading_path"], json!(["Store FAQ"]));
    let hits = app.search(t, "paying with an invoice", "vector", 1).await;
    assert_eq!(
        hits[0]["chunk"]["answer"],
        "Yes, for orders above 500 euros."
    );
    // The original comes back as it was given.
    let r = app
        .get_as(&format!("/api/v1/documents/{imported}/original"), t)
        .await;
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(r.text().await.expect("body"), csv);
}

#[tokio::test]
async fn bad_qa_pairs_are_refused_with_the_row_named_and_nothing_is_stored() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    let r = app
        .post_as(
            "/api/v1/documents/qa",
            t,
            &json!({ "title": "x", "pairs": [{ "question": "q?", "answer": " " }] }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (Some("validation_failed"), Some("pairs"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("row 1")
    );
    let form = Form::new().part(
        "file",
        Part::bytes(b"question,answer\nok?,fine\n\"broken".to_vec()).file_name("bad.csv"),
    );
    let r = app
        .client
        .post(app.url("/api/v1/documents/qa/import"))
        .bearer_auth(t)
        .multipart(form)
        .send()
        .await
        .expect("send");
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (Some("validation_failed"), Some("file"))
    );
    let listed: Value = app
        .get_as("/api/v1/documents", t)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        listed["data"].as_array().expect("data").is_empty(),
        "{listed}"
    );
}

#[tokio::test]
async fn a_site_is_crawled_within_depth_budget_and_robots_txt() {
    let (site, hits) = spawn_site().await;
    let allowed = site.clone();
    let app = spawn_app_with(move |s| s.knowledge.fetch_allow_hosts = vec![allowed]).await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    let r = app
        .post_as(
            "/api/v1/documents/url",
            t,
            &json!({ "url": format!("http://{site}/"), "max_depth": 1, "max_pages": 10 }),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["source"].as_str(), v["status"].as_str()),
        (Some("url"), Some("pending"))
    );
    let root = v["id"].as_str().expect("id").to_owned();
    let d = app.settled(t, &root).await;
    assert_eq!(
        (
            d["status"].as_str(),
            d["kind"].as_str(),
            d["title"].as_str()
        ),
        (Some("ready"), Some("html"), Some("Acme Docs")),
        "{d}"
    );

    // The crawl adds the guide (depth 1) and nothing else.
    app.run_pending_jobs().await;
    let listed: Value = app
        .get_as("/api/v1/documents", t)
        .await
        .json()
        .await
        .expect("json");
    let urls: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["source_url"].as_str().expect("url"))
        .collect();
    assert_eq!(urls.len(), 2, "{listed}");
    assert!(
        listed["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|d| d["status"] == "ready" || d["status"] == "failed"),
        "{listed}"
    );
    assert!(
        urls.contains(&format!("http://{site}/guide").as_str()),
        "{urls:?}"
    );
    let fetched = hits.lock().expect("lock").clone();
    assert!(
        !fetched.iter().any(|p| p.starts_with("/private")),
        "robots.txt honoured: {fetched:?}"
    );
    assert!(
        !fetched.contains(&"/deep".to_owned()),
        "depth honoured: {fetched:?}"
    );
    assert!(!fetched.contains(&"/logo.png".to_owned()), "{fetched:?}");
    assert_eq!(
        fetched.iter().filter(|p| *p == "/guide").count(),
        1,
        "each page once: {fetched:?}"
    );
    let hits = app
        .search(t, "how many screws hold the bracket", "hybrid", 1)
        .await;
    assert_eq!(hits[0]["document_title"], "Installation guide", "{hits:?}");
}

#[tokio::test]
async fn with_an_egress_proxy_configured_url_fetches_go_through_it() {
    let (site, hits) = spawn_site().await;
    let (proxy, proxied) = crate::helpers::spawn_recording_proxy().await;
    let allowed = site.clone();
    let app = spawn_app_with(move |s| {
        s.knowledge.fetch_allow_hosts = vec![allowed];
        s.knowledge.fetch_proxy = Some(cortexlayer_server::config::Secret::new(proxy));
    })
    .await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    let r = app
        .post_as(
            "/api/v1/documents/url",
            t,
            &json!({ "url": format!("http://{site}/guide") }),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let d = app.settled(t, &id).await;
    assert_eq!(d["status"], "ready", "{d}");
    assert_eq!(d["title"], "Through the proxy");
    let seen = proxied.lock().expect("lock").clone();
    assert!(
        seen.iter()
            .any(|l| l.starts_with(&format!("GET http://{site}/guide "))),
        "the proxy was asked for the page: {seen:?}"
    );
    assert!(
        !hits.lock().expect("lock").contains(&"/guide".to_owned()),
        "nothing went straight to the site"
    );
}

#[tokio::test]
async fn urls_into_private_networks_fail_and_bad_urls_are_refused() {
    let (site, _) = spawn_site().await;
    let (unlisted, _) = spawn_site().await;
    let allowed = site.clone();
    let app = spawn_app_with(move |s| s.knowledge.fetch_allow_hosts = vec![allowed]).await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    let add = |url: String| {
        let app = &app;
        async move {
            let r = app
                .post_as("/api/v1/documents/url", t, &json!({ "url": url }))
                .await;
            assert_eq!(r.status(), 202);
            let v: Value = r.json().await.expect("json");
            v["id"].as_str().expect("id").to_owned()
        }
    };
    // An allowed site that redirects to the cloud metadata address.
    let redirect = add(format!("http://{site}/to-metadata")).await;
    // Loopback that the operator did not allow, and the metadata address directly.
    let loopback = add(format!("http://{unlisted}/")).await;
    let metadata = add("http://169.254.169.254/latest/meta-data/".into()).await;
    let mapped = add("http://[::ffff:127.0.0.1]/".into()).await;
    for id in [&redirect, &loopback, &metadata, &mapped] {
        let d = app.settled(t, id).await;
        assert_eq!(
            (d["status"].as_str(), d["error"]["code"].as_str()),
            (Some("failed"), Some("url_blocked")),
            "{d}"
        );
        assert!(
            d["error"]["message"]
                .as_str()
                .expect("msg")
                .contains("not a public address"),
            "{d}"
        );
    }
    let missing = add(format!("http://{site}/missing")).await;
    let d = app.settled(t, &missing).await;
    assert_eq!(
        (d["error"]["code"].as_str(), d["error"]["message"].as_str()),
        (Some("fetch_failed"), Some("the server answered HTTP 404"))
    );

    for (body, field) in [
        (json!({ "url": "ftp://example.com/file" }), "url"),
        (json!({ "url": "https://user:pw@example.com/" }), "url"),
        (
            json!({ "url": "https://example.com/", "max_depth": 4 }),
            "max_depth",
        ),
        (
            json!({ "url": "https://example.com/", "max_pages": 0 }),
            "max_pages",
        ),
    ] {
        let v: Value = app
            .post_as("/api/v1/documents/url", t, &body)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(
            (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
            (Some("validation_failed"), Some(field)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_ingest_command_adds_files_and_waits_until_they_are_ready() {
    let app = spawn_app_with(|s| s.knowledge.workers = 0).await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let dir = std::env::temp_dir().join(format!("cortex-ingest-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("nested")).expect("dir");
    std::fs::write(dir.join("guide.md"), GUIDE).expect("write");
    std::fs::write(dir.join("nested/faq.txt"), FAQ).expect("write");
    std::fs::write(dir.join(".hidden.txt"), "skipped").expect("write");
    let settings = &app.state.settings;
    let run = |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cortexlayer"))
            .args(args)
            .env("DATABASE_URL", settings.database_url.expose())
            .env("CORTEX_DATA_DIR", &settings.data_dir)
            .env("CORTEX_MODEL_DIR", crate::helpers::model_dir())
            .output()
            .expect("run cortexlayer ingest")
    };
    let out = run(vec![
        "ingest".into(),
        dir.display().to_string(),
        "--tenant".into(),
        owner.tenant_id.clone(),
        "--wait".into(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("100%") && stderr.contains("2/2 documents"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("ready  ").count(), 2, "{stderr}");
    let listed: Value = app
        .get_as("/api/v1/documents", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    let docs = listed["data"].as_array().expect("data");
    assert_eq!(docs.len(), 2);
    assert!(docs.iter().all(|d| d["status"] == "ready"), "{docs:?}");
    let hits = app
        .search(&owner.access, "office dog name", "hybrid", 1)
        .await;
    assert!(first_text(&hits).contains("Biscuit"));

    std::fs::write(dir.join("logo.png"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").expect("write");
    let out = run(vec![
        "ingest".into(),
        dir.join("logo.png").display().to_string(),
        "--tenant".into(),
        owner.tenant_id.clone(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unsupported file type"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(vec![
        "ingest".into(),
        dir.join("guide.md").display().to_string(),
        "--tenant".into(),
        "not-a-tenant".into(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tenant must be a tenant id"));
}

/// A stand-in for an OpenAI-compatible embeddings API: checks each request as the real one
/// would (path, bearer key, JSON body with `model` and `input`) and answers in its documented
/// shape, with bag-of-words vectors. The first request is refused with 429 to exercise retry.
async fn spawn_embeddings_api(
    key: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/v1/embeddings",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {key}")) {
                    return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": { "message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key" } })));
                }
                let Ok(req) = serde_json::from_slice::<Value>(&body) else {
                    return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": { "message": "bad json" } })));
                };
                let inputs = req["input"].as_array().cloned().unwrap_or_default();
                if req["model"] != "text-embedding-3-small" || inputs.is_empty() || !inputs.iter().all(Value::is_string) {
                    return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": { "message": "invalid input" } })));
                }
                if n == 0 {
                    return (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({ "error": { "message": "Rate limit reached", "type": "requests" } })));
                }
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        let mut v = vec![0.0f32; 64];
                        for w in text.as_str().unwrap_or("").to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2) {
                            let h = w.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
                            v[(h % 64) as usize] += 1.0;
                        }
                        v[0] += 0.01;
                        json!({ "object": "embedding", "index": i, "embedding": v })
                    })
                    .rev() // the API promises `index`, not order
                    .collect();
                (StatusCode::OK, axum::Json(json!({ "object": "list", "data": data, "model": "text-embedding-3-small", "usage": { "prompt_tokens": 8, "total_tokens": 8 } })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("api") });
    (format!("http://{addr}/v1"), calls)
}

/// Settings that embed through the OpenAI-compatible API at `url` with `key`.
fn openai_embeddings(
    url: String,
    key: &'static str,
) -> impl FnOnce(&mut cortexlayer_server::config::Settings) {
    move |s| {
        s.knowledge.embedding_provider = "openai".into();
        s.knowledge.embedding_base_url = url;
        s.knowledge.embedding_dimensions = 64;
        s.knowledge.embedding_api_key = Some(cortexlayer_server::config::Secret::new(key));
    }
}

#[tokio::test]
async fn an_openai_compatible_embeddings_api_can_replace_the_local_model() {
    let (base, calls) = spawn_embeddings_api("sk-test").await;
    let url = base.clone();
    let app = spawn_app_with(openai_embeddings(url, "sk-test")).await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let id = app
        .upload_one(&owner.access, "guide.md", GUIDE.as_bytes())
        .await;
    let d = app.settled(&owner.access, &id).await;
    assert_eq!(
        (d["status"].as_str(), d["embedding_model"].as_str()),
        (Some("ready"), Some("openai:text-embedding-3-small")),
        "{d}"
    );
    assert!(
        calls.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "retried after the 429"
    );
    let hits = app
        .search(&owner.access, "password security settings", "vector", 1)
        .await;
    assert!(
        first_text(&hits).contains("change your password"),
        "{hits:?}"
    );

    // A wrong key fails the document with a reason that does not echo the provider's text.
    let url = base.clone();
    let bad = spawn_app_with(openai_embeddings(url, "sk-wrong")).await;
    let owner = bad.owner("owner@acme.example", "Acme").await;
    let id = bad
        .upload_one(&owner.access, "guide.md", GUIDE.as_bytes())
        .await;
    let d = bad.settled(&owner.access, &id).await;
    assert_eq!(
        (d["status"].as_str(), d["error"]["code"].as_str()),
        (Some("failed"), Some("embedding_failed")),
        "{d}"
    );
    let msg = d["error"]["message"].as_str().expect("msg");
    assert!(msg.contains("rejected the configured credentials"), "{d}");
    assert!(
        !msg.contains("sk-"),
        "the operator's key never reaches a tenant: {msg}"
    );
}

#[tokio::test]
async fn the_model_is_downloaded_from_a_hugging_face_hub_when_its_folder_is_empty() {
    use axum::extract::Path as UrlPath;
    use axum::http::StatusCode;
    use axum::routing::get;
    let served = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = served.clone();
    let hub = axum::Router::new().route(
        "/{owner}/{repo}/resolve/{revision}/{*file}",
        get(
            move |UrlPath((owner, repo, revision, file)): UrlPath<(
                String,
                String,
                String,
                String,
            )>| {
                let log = log.clone();
                async move {
                    log.lock().expect("lock").push(file.clone());
                    if (owner.as_str(), repo.as_str(), revision.as_str())
                        != ("sentence-transformers", "all-MiniLM-L6-v2", "main")
                    {
                        return Err(StatusCode::NOT_FOUND);
                    }
                    // sentence-transformers' settings, as the model's repository has them.
                    match file.as_str() {
                        "model.safetensors" | "tokenizer.json" | "config.json" => {
                            std::fs::read(crate::helpers::model_dir().join(&file))
                                .map_err(|_| StatusCode::NOT_FOUND)
                        }
                        "sentence_bert_config.json" => {
                            Ok(br#"{"max_seq_length": 256, "do_lower_case": false}"#.to_vec())
                        }
                        "1_Pooling/config.json" => Ok(br#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}"#.to_vec()),
                        _ => Err(StatusCode::NOT_FOUND),
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, hub).await.expect("hub") });
    let empty = std::env::temp_dir().join(format!("cortex-hub-model-{}", uuid::Uuid::now_v7()));
    let dir = empty.clone();
    let app = spawn_app_with(move |s| {
        s.knowledge.model_dir = Some(dir);
        s.knowledge.model_hub_repo = Some("sentence-transformers/all-MiniLM-L6-v2".into());
        s.knowledge.model_hub_endpoint = endpoint;
    })
    .await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let id = app
        .upload_one(&owner.access, "faq.txt", FAQ.as_bytes())
        .await;
    let d = app.settled(&owner.access, &id).await;
    assert_eq!(d["status"], "ready", "{d}");
    let mut files = served.lock().expect("lock").clone();
    files.sort();
    assert_eq!(
        files,
        [
            "1_Pooling/config.json",
            "config.json",
            "model.safetensors",
            "sentence_bert_config.json",
            "tokenizer.json"
        ],
        "each file fetched once, sentence-transformers' settings with the weights"
    );
    assert!(empty.join("1_Pooling/config.json").is_file());
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert_eq!(
            std::fs::metadata(empty.join(f)).expect("saved").len(),
            std::fs::metadata(crate::helpers::model_dir().join(f))
                .expect("source")
                .len()
        );
    }
    let hits = app
        .search(&owner.access, "name of the office dog", "vector", 1)
        .await;
    assert!(first_text(&hits).contains("Biscuit"));
}

/// Signature Version 4 as the stand-in S3 checks it, written apart from the product's signer.
fn sigv4_expected(
    secret: &str,
    method: &str,
    path: &str,
    headers: &axum::http::HeaderMap,
    signed: &str,
    date: &str,
    region: &str,
) -> String {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let mac = |key: &[u8], data: &str| {
        let mut m = <Hmac<Sha256>>::new_from_slice(key).expect("key");
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    let canonical_headers: String = signed
        .split(';')
        .map(|h| {
            format!(
                "{h}:{}\n",
                headers
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .trim()
            )
        })
        .collect();
    let payload = headers["x-amz-content-sha256"].to_str().expect("hash");
    let request = format!("{method}\n{path}\n\n{canonical_headers}\n{signed}\n{payload}");
    let amz_date = headers["x-amz-date"].to_str().expect("date");
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(request.as_bytes()))
    );
    let mut key = mac(format!("AWS4{secret}").as_bytes(), date);
    for part in [region, "s3", "aws4_request"] {
        key = mac(&key, part);
    }
    hex::encode(mac(&key, &to_sign))
}

#[tokio::test]
async fn originals_can_live_in_s3_compatible_object_storage() {
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;
    type Objects = std::sync::Arc<std::sync::Mutex<HashMap<String, Vec<u8>>>>;
    let objects: Objects = Default::default();
    let store = objects.clone();
    let s3 = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 Credential=AKIDTEST/") else {
                    return (StatusCode::FORBIDDEN, Vec::new());
                };
                let date = &rest[..8];
                let signed = rest
                    .split("SignedHeaders=")
                    .nth(1)
                    .and_then(|s| s.split(',').next())
                    .unwrap_or("");
                let signature = rest.split("Signature=").nth(1).unwrap_or("");
                let hash = hex::encode(Sha256::digest(&body));
                if headers
                    .get("x-amz-content-sha256")
                    .and_then(|v| v.to_str().ok())
                    != Some(hash.as_str())
                    || !rest.contains("/eu-test-1/s3/aws4_request")
                    || signature
                        != sigv4_expected(
                            "s3cr3t",
                            method.as_str(),
                            uri.path(),
                            &headers,
                            signed,
                            date,
                            "eu-test-1",
                        )
                {
                    return (
                        StatusCode::FORBIDDEN,
                        b"<Error><Code>SignatureDoesNotMatch</Code></Error>".to_vec(),
                    );
                }
                let Some(key) = uri.path().strip_prefix("/kb-bucket/") else {
                    return (
                        StatusCode::NOT_FOUND,
                        b"<Error><Code>NoSuchBucket</Code></Error>".to_vec(),
                    );
                };
                let mut objects = store.lock().expect("lock");
                match method {
                    Method::PUT => {
                        objects.insert(key.to_owned(), body.to_vec());
                        (StatusCode::OK, Vec::new())
                    }
                    Method::GET => match objects.get(key) {
                        Some(b) => (StatusCode::OK, b.clone()),
                        None => (
                            StatusCode::NOT_FOUND,
                            b"<Error><Code>NoSuchKey</Code></Error>".to_vec(),
                        ),
                    },
                    Method::DELETE => {
                        objects.remove(key);
                        (StatusCode::NO_CONTENT, Vec::new())
                    }
                    _ => (StatusCode::METHOD_NOT_ALLOWED, Vec::new()),
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, s3).await.expect("s3") });
    let app = spawn_app_with(move |s| {
        let k = &mut s.knowledge;
        k.blob_store = "s3".into();
        k.s3_endpoint = endpoint;
        k.s3_bucket = "kb-bucket".into();
        k.s3_region = "eu-test-1".into();
        k.s3_access_key_id = "AKIDTEST".into();
        k.s3_secret_access_key = Some(cortexlayer_server::config::Secret::new("s3cr3t"));
        k.s3_prefix = "cortex/".into();
    })
    .await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let t = &owner.access;
    let id = app.upload_one(t, "guide.md", GUIDE.as_bytes()).await;
    assert_eq!(app.settled(t, &id).await["status"], "ready");
    let key = format!("cortex/documents/{}/{id}", owner.tenant_id);
    assert_eq!(
        objects.lock().expect("lock").get(&key).map(Vec::as_slice),
        Some(GUIDE.as_bytes())
    );
    let r = app
        .get_as(&format!("/api/v1/documents/{id}/original"), t)
        .await;
    assert_eq!(r.bytes().await.expect("body").as_ref(), GUIDE.as_bytes());
    assert_eq!(
        app.delete_as(&format!("/api/v1/documents/{id}"), t)
            .await
            .status(),
        204
    );
    assert!(
        objects.lock().expect("lock").is_empty(),
        "the original left the bucket"
    );
}

/// Sends the headers of a `size`-byte multipart upload and its first 64 KiB only, then reads
/// what the server answers without the rest: a server that read the body first would wait.
async fn upload_headers_only(app: &TestApp, path: &str, token: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let boundary = "cortexboundary";
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: multipart/form-data; boundary={boundary}\r\ncontent-length: {size}\r\n\r\n\
         --{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\
         content-type: text/plain\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("headers");
    stream
        .write_all(&vec![b'a'; 64 * 1024])
        .await
        .expect("first chunk");
    let mut answer = vec![0u8; 4096];
    // A liveness bound, not a speed assertion: the rest of the body never comes.
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut answer))
        .await
        .expect("answered without the rest of the body")
        .expect("read");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn callers_who_may_not_upload_are_refused_before_the_body_is_read() {
    let app = spawn_app_with(|s| s.knowledge.max_upload_bytes = 64 * 1024 * 1024).await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let agent = app.member(&owner, "agent@acme.example", "agent").await;
    let (_, chat_key) = app.api_key(&owner, &["chat"]).await;
    let size = 15 * 1024 * 1024;
    for (who, token) in [
        ("agent", agent.access.as_str()),
        ("chat-only key", chat_key.as_str()),
    ] {
        for path in ["/api/v1/documents", "/api/v1/documents/qa/import"] {
            let answer = upload_headers_only(&app, path, token, size).await;
            assert!(
                answer.starts_with("HTTP/1.1 403"),
                "{who} on {path}: {answer}"
            );
            assert!(
                answer.contains("\"forbidden\""),
                "{who} on {path}: {answer}"
            );
        }
    }
    let docs: Value = app
        .get_as("/api/v1/documents", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        docs["data"].as_array().expect("data").len(),
        0,
        "nothing stored"
    );
}

#[tokio::test]
async fn a_word_the_question_shares_with_the_wrong_snippet_does_not_outrank_the_meaning() {
    // A knowledge base of one-sentence snippets, as FAQ imports are: the customer's only
    // word that appears in one ("free") is in the gluten-free one, while the snippet that
    // answers shares no word with the question.
    let app = spawn_app().await;
    let owner = app.owner("owner@pizza.example", "Pizza").await;
    let t = &owner.access;
    let snippets = [
        (
            "vegan.txt",
            "Vegan cheese can be added to any pizza for one pound.",
        ),
        (
            "gluten.txt",
            "Our gluten-free base is baked in the same oven as wheat, so traces are possible.",
        ),
        (
            "delivery.txt",
            "We deliver within three miles until half past ten.",
        ),
        (
            "tuesday.txt",
            "Tuesday is two-for-one on all pizzas when you eat in.",
        ),
        (
            "children.txt",
            "Children's menu: a small pizza, a drink and an ice cream for eight pounds.",
        ),
    ];
    for (name, text) in snippets {
        let id = app.upload_one(t, name, text.as_bytes()).await;
        assert_eq!(app.settled(t, &id).await["status"], "ready");
    }
    let question = "dairy free options?";
    let by_words = app.search(t, question, "lexical", 5).await;
    assert!(
        first_text(&by_words).contains("gluten-free"),
        "{by_words:?}"
    );
    let by_meaning = app.search(t, question, "vector", 5).await;
    assert!(first_text(&by_meaning).contains("Vegan"), "{by_meaning:?}");
    let hybrid = app.search(t, question, "hybrid", 5).await;
    assert!(
        first_text(&hybrid).contains("Vegan"),
        "hybrid keeps the answer first: {hybrid:?}"
    );
    // The word evidence still counts where most of the question's words are there.
    let hybrid = app.search(t, "gluten free base", "hybrid", 5).await;
    assert!(first_text(&hybrid).contains("gluten-free"), "{hybrid:?}");
}
