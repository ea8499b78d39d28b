//! The knowledge base: the test documents, uploading and waiting for documents, searching,
//! and a small website to crawl.

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::TestApp;

pub const GUIDE: &str = "# Acme Help Center

## Refunds

Refunds are issued to the original payment method within 14 days of receiving the returned item. Items must be unused and in their original packaging.

## Shipping

We ship to Canada, Mexico and the United States. Standard delivery takes five business days; express delivery takes two.

## Account security

To change your password, open Settings, choose Security and follow the link we email you. Two-factor authentication can be turned on in the same place.
";

pub const FAQ: &str = "Our support team answers phone calls from 9 am to 5 pm on weekdays.\n\nThe office dog is called Biscuit and visits on Fridays.\n";

impl TestApp {
    pub async fn upload(&self, token: &str, files: &[(&str, Vec<u8>)]) -> reqwest::Response {
        let mut form = Form::new();
        for (name, bytes) in files {
            form = form.part(
                "file",
                Part::bytes(bytes.clone())
                    .file_name((*name).to_owned())
                    .mime_str("application/octet-stream")
                    .expect("mime"),
            );
        }
        self.client
            .post(self.url("/api/v1/documents"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload")
    }

    /// Uploads one file and returns its document id.
    pub async fn upload_one(&self, token: &str, name: &str, bytes: &[u8]) -> String {
        let r = self.upload(token, &[(name, bytes.to_vec())]).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());
        let v: Value = r.json().await.expect("json");
        v["data"][0]["id"].as_str().expect("id").to_owned()
    }

    pub async fn document(&self, token: &str, id: &str) -> Value {
        let r = self.get_as(&format!("/api/v1/documents/{id}"), token).await;
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }

    /// For the crash tests, where a `cortexlayer serve` process does the work: polls the document
    /// until it is `ready` or `failed` (two minutes at most).
    pub async fn settled_by_the_server(&self, token: &str, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let d = self.document(token, id).await;
            let status = d["status"].as_str().expect("status");
            if status == "ready" || status == "failed" {
                return d;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "document still {status} after two minutes: {d}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs the due jobs, then returns the document, which must be `ready` or `failed` by then.
    pub async fn settled(&self, token: &str, id: &str) -> Value {
        self.run_pending_jobs().await;
        let d = self.document(token, id).await;
        let status = d["status"].as_str().expect("status");
        assert!(
            status == "ready" || status == "failed",
            "document still {status} with no job due: {d}"
        );
        d
    }

    pub async fn search(&self, token: &str, query: &str, mode: &str, k: u32) -> Vec<Value> {
        let r = self
            .post_as(
                "/api/v1/search",
                token,
                &json!({ "query": query, "mode": mode, "top_k": k }),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
        let v: Value = r.json().await.expect("json");
        assert_eq!(v["mode"], mode);
        v["results"].as_array().expect("results").clone()
    }

    /// Leases the next due job, checks its kind, runs it as a worker would and completes it.
    pub async fn run_next_job(&self, kind: &str) {
        let ran = cortexlayer_server::jobs::run_next(&self.state)
            .await
            .expect("lease")
            .expect("a job is due");
        assert_eq!(ran.kind, kind);
        assert_eq!(ran.failure, None, "the {kind} job runs");
    }
}

/// A small website on loopback: robots.txt, pages linking to each other, a private area, a
/// redirect into the cloud metadata address and a missing page.
pub async fn spawn_site() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::response::{Html, Redirect};
    use axum::routing::get;
    let hits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = hits.clone();
    let app = axum::Router::new()
        .route("/robots.txt", get(|| async { "User-agent: *\nDisallow: /private\n" }))
        .route("/", get(|| async {
            Html("<html><head><title>Acme Docs</title></head><body><nav><a href='/guide'>Guide</a></nav>
                <p>Welcome to the Acme documentation. Our warranty lasts three years.</p>
                <a href='/guide#install'>again</a> <a href='/private/keys'>keys</a>
                <a href='https://elsewhere.example/page'>elsewhere</a> <a href='/missing'>missing</a>
                <a href='/logo.png'>logo</a></body></html>")
        }))
        .route("/guide", get(|| async {
            Html("<html><head><title>Installation guide</title></head><body><h1>Install</h1>
                <p>Mount the bracket with four screws before connecting the power cable.</p>
                <a href='/deep'>deeper</a></body></html>")
        }))
        .route("/deep", get(|| async { Html("<html><body><p>Too deep to be crawled at depth one.</p></body></html>") }))
        .route("/private/keys", get(|| async { Html("<p>secret</p>") }))
        .route("/to-metadata", get(|| async { Redirect::temporary("http://169.254.169.254/latest/meta-data/") }))
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            let log = log.clone();
            async move {
                log.lock().expect("lock").push(req.uri().path().to_owned());
                next.run(req).await
            }
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("site") });
    (format!("127.0.0.1:{}", addr.port()), hits)
}
