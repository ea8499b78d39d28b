//! `cortexlayer bench load`: the real HTTP server under concurrent clients, as a customer's
//! traffic reaches it. A BEIR-layout dataset (`corpus.jsonl`, whose `metadata.tenant` spreads
//! documents over tenants, and `queries.jsonl`) is uploaded through `POST /api/v1/documents`
//! — each document eval's title-and-text file, a few uploads at a time — and timed until every
//! vector is searchable; then closed-loop clients (each sends its next request when the last
//! is answered) drive `POST /api/v1/search` in each mode and `POST /api/v1/chat` for a while,
//! cycling the queries, each in its tenant. Every load runs with the question cache off, so
//! each request embeds its question (as unique questions would), and the hybrid search once
//! more with it on. The process's resident memory is printed before and after the loads.
//!
//! With `--peer URL` the same clients drive another service instead (the Python stack of
//! `../shared/bench/peer`: `POST /ingest {path}`, `GET /query?q=&k=10`), so both are
//! measured with one load generator.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use cortex_core::audit::{Actor, NewAuditEvent, action};
use cortex_core::credentials::{ApiScope, NewApiKey};
use cortex_core::ids::{ApiKeyId, DocumentId, TenantId};
use cortex_core::knowledge::DocumentStatus;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::bench::{Unlimited, percentile, scratch_state, scratch_tenant};
use crate::config::Settings;
use crate::eval::{CorpusRecord, DEFAULT_TENANT, QueryRecord, document_text, read_jsonl};

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub dataset: PathBuf,
    /// Clients at once.
    pub concurrency: usize,
    /// Seconds each load runs (after a warm-up of a fifth of it, at least 2 s).
    pub seconds: u64,
    /// Uploads at once while ingesting.
    pub uploads: usize,
    /// `lexical`, `vector`, `hybrid`, `chat`.
    pub modes: Vec<String>,
    /// Drive this service instead (the Python peer).
    pub peer: Option<String>,
    /// Ingest only, no loads.
    pub ingest_only: bool,
}

/// `(tenant, question)` for each query, in its tenant: the first of `metadata.tenants`, else
/// the default one.
fn asked_in(queries: Vec<QueryRecord>) -> Vec<(String, String)> {
    queries
        .into_iter()
        .map(|q| {
            let tenant = q
                .metadata
                .and_then(|m| m.tenants.into_iter().next())
                .unwrap_or_else(|| DEFAULT_TENANT.to_owned());
            (tenant, q.text)
        })
        .collect()
}

/// Resident memory of this process in MB: `(anonymous, file-backed)`. The file-backed part is
/// mostly SQLite's memory-mapped database, the kernel's page cache rather than the process's
/// own; growth shows in the anonymous part.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// `  anon N MB`: the process's anonymous resident memory now, after each load.
fn anon_now() -> String {
    format!("  anon {:.0} MB", rss_mb().0)
}

/// One request a client sends.
#[derive(Clone)]
enum Call {
    Post {
        path: &'static str,
        auth: String,
        body: String,
    },
    Get(String),
}

/// What a load measured.
struct Figures {
    requests: usize,
    failed: usize,
    seconds: f64,
    sorted_ms: Vec<f64>,
}

impl Figures {
    fn line(&self, label: &str) -> String {
        format!(
            "{label:<34} {:>6} requests  {:>7.1} req/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  {} failed",
            self.requests,
            self.requests as f64 / self.seconds.max(1e-9),
            percentile(&self.sorted_ms, 50.0),
            percentile(&self.sorted_ms, 90.0),
            percentile(&self.sorted_ms, 99.0),
            self.sorted_ms.last().copied().unwrap_or(0.0),
            self.failed
        )
    }
}

/// `concurrency` closed-loop clients sending `calls` (client k starts k/concurrency of the
/// way through and cycles) to `base` for a warm-up, then for `seconds`, counting only the
/// latter.
async fn drive(
    base: &str,
    calls: Arc<Vec<Call>>,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Figures> {
    anyhow::ensure!(!calls.is_empty(), "no requests to send");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .timeout(Duration::from_secs(60))
        .build()?;
    let warm = Duration::from_secs((seconds / 5).max(2));
    let started = Instant::now();
    let counted_from = started + warm;
    let until = counted_from + Duration::from_secs(seconds.max(1));
    let mut tasks = Vec::new();
    for k in 0..concurrency.max(1) {
        let client = client.clone();
        let calls = calls.clone();
        let base = base.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut i = k * calls.len() / concurrency.max(1);
            let mut ms = Vec::new();
            let mut failed = 0usize;
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let request = match &calls[i % calls.len()] {
                    Call::Post { path, auth, body } => client
                        .post(format!("{base}{path}"))
                        .header("authorization", auth)
                        .header("content-type", "application/json")
                        .body(body.clone()),
                    Call::Get(path) => client.get(format!("{base}{path}")),
                };
                i += 1;
                let ok = match request.send().await {
                    Ok(r) => {
                        let good = r.status().is_success();
                        good && r.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                if sent >= counted_from {
                    ms.push(sent.elapsed().as_secs_f64() * 1000.0);
                    failed += usize::from(!ok);
                }
            }
            (ms, failed)
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (ms, f) = t.await?;
        all.extend(ms);
        failed += f;
    }
    all.sort_by(f64::total_cmp);
    Ok(Figures {
        requests: all.len(),
        failed,
        seconds: Instant::now().duration_since(counted_from).as_secs_f64(),
        sorted_ms: all,
    })
}

pub async fn load(
    mut settings: Settings,
    options: LoadOptions,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let docs: Vec<CorpusRecord> = read_jsonl(&options.dataset.join("corpus.jsonl"))?;
    let queries = asked_in(read_jsonl(&options.dataset.join("queries.jsonl"))?);
    if let Some(peer) = &options.peer {
        return peer_load(peer, &options, &queries).await;
    }
    let workers = settings.knowledge.workers.max(1);
    let cache = settings.knowledge.query_cache;
    // Every load embeds its questions; the cache is put back for one load of its own.
    settings.knowledge.query_cache = 0;
    let (state, dir) = scratch_state(settings, database_url).await?;
    let mut with_workers = (*state.settings).clone();
    with_workers.knowledge.workers = workers;
    let state = AppState {
        limiter: Arc::new(Unlimited),
        settings: Arc::new(with_workers),
        ..state
    };
    state
        .embedder
        .warm_up()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    // A tenant (on the Scale plan) and an API key for each tenant the corpus names.
    let mut tenants: std::collections::BTreeMap<String, (TenantId, String)> = Default::default();
    for d in &docs {
        let name = d.tenant();
        if tenants.contains_key(&name) {
            continue;
        }
        let id = scratch_tenant(&state, "Load").await?;
        let (secret, prefix) = crate::infra::tokens::api_key();
        let key = ApiKeyId::new();
        let now = Utc::now();
        state
            .store
            .create_api_key(
                id,
                NewApiKey {
                    id: key,
                    name: "load".into(),
                    prefix,
                    key_hash: crate::infra::tokens::sha256_hex(&secret),
                    scopes: ApiScope::ALL.to_vec(),
                    created_by: None,
                    created_at: now,
                },
                NewAuditEvent::new(Actor::System, action::API_KEY_CREATED, now),
            )
            .await?;
        tenants.insert(name, (id, format!("Bearer {secret}")));
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let serve = |state: AppState, listener: tokio::net::TcpListener| {
        let app = crate::http::router(state);
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
        })
    };
    let server = serve(state.clone(), listener);
    let jobs = crate::jobs::Workers::start(&state);
    let rss_idle = rss_mb();

    // Ingest: every document uploaded, then waited for until ready.
    let tokens: usize = docs
        .iter()
        .map(|d| state.embedder.count_tokens(&d.text) + state.embedder.count_tokens(&d.title))
        .sum();
    let encoder = local_encoder(&state.settings);
    let passes_before = encoder.as_ref().map(|e| e.queue.passes());
    let started = Instant::now();
    let ids = upload(&base, &docs, &tenants, options.uploads).await?;
    let uploaded = started.elapsed();
    wait_ready(&state, &ids).await?;
    let ingested = started.elapsed();
    println!(
        "ingest  {} documents, {} tenants, {tokens} tokens of text, {workers} workers, {} uploads at once: uploaded in {:.1} s, every vector searchable after {:.1} s ({:.0} documents/s)",
        docs.len(),
        tenants.len(),
        options.uploads,
        uploaded.as_secs_f64(),
        ingested.as_secs_f64(),
        docs.len() as f64 / ingested.as_secs_f64()
    );
    if let (Some(e), Some(before)) = (&encoder, passes_before) {
        let now = e.queue.passes();
        let (passes, tokens) = (now.passes - before.passes, now.tokens - before.tokens);
        let busy = (now.busy - before.busy).as_secs_f64();
        println!(
            "encoder {passes} passes, {tokens} tokens ({:.0} a pass), busy {busy:.1} s ({:.0} % of the ingest, {:.0} tokens/s while busy)",
            tokens as f64 / passes.max(1) as f64,
            100.0 * busy / ingested.as_secs_f64(),
            tokens as f64 / busy.max(1e-9)
        );
    }
    if options.ingest_only {
        server.abort();
        jobs.shutdown(Duration::from_secs(5)).await;
        let _ = std::fs::remove_dir_all(dir);
        return Ok(());
    }

    let rss_before = rss_mb();
    let asked: Vec<(String, String)> = queries
        .into_iter()
        .filter_map(|(t, q)| tenants.get(&t).map(|(_, auth)| (auth.clone(), q)))
        .collect();
    anyhow::ensure!(!asked.is_empty(), "no query is in a tenant of the corpus");
    // One search per tenant builds the tenant's in-memory indexes (its BM25 statistics and
    // vectors), which stay as long as its data does; the loads' growth is measured from there.
    let client = reqwest::Client::new();
    let mut warmed = std::collections::HashSet::new();
    for (auth, q) in &asked {
        if warmed.insert(auth.as_str()) {
            client
                .post(format!("{base}/api/v1/search"))
                .header("authorization", auth)
                .header("content-type", "application/json")
                .body(json!({ "query": q, "top_k": 10, "mode": "hybrid" }).to_string())
                .send()
                .await?
                .error_for_status()?;
        }
    }
    let rss_warm = rss_mb();
    let calls = |mode: &str| -> Arc<Vec<Call>> {
        Arc::new(
            asked
                .iter()
                .map(|(auth, q)| match mode {
                    "chat" => Call::Post {
                        path: "/api/v1/chat",
                        auth: auth.clone(),
                        body: json!({ "message": q }).to_string(),
                    },
                    _ => Call::Post {
                        path: "/api/v1/search",
                        auth: auth.clone(),
                        body: json!({ "query": q, "top_k": 10, "mode": mode }).to_string(),
                    },
                })
                .collect(),
        )
    };
    // The encoder alone, one question after the other through the same queue: what a lone
    // request's embedding costs, apart from searching and HTTP.
    let mut embed_ms = Vec::new();
    for (_, q) in asked.iter().take(300) {
        let t = Instant::now();
        state
            .embedder
            .embed_query(q)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        embed_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    embed_ms.sort_by(f64::total_cmp);
    println!(
        "embed   {} questions one at a time: p50 {:.2} ms, p99 {:.2} ms",
        embed_ms.len(),
        percentile(&embed_ms, 50.0),
        percentile(&embed_ms, 99.0)
    );
    let c = options.concurrency;
    for mode in &options.modes {
        let what = if mode == "chat" {
            "chat".to_owned()
        } else {
            format!("search {mode}")
        };
        let f = drive(&base, calls(mode), c, options.seconds).await?;
        println!(
            "{}{}",
            f.line(&format!("{what}, c{c}, no cache")),
            anon_now()
        );
        if c != 1 {
            let f = drive(&base, calls(mode), 1, options.seconds).await?;
            println!("{}{}", f.line(&format!("{what}, c1, no cache")), anon_now());
        }
    }
    if options.modes.iter().any(|m| m == "hybrid") && cache > 0 {
        // The same search with the question cache on, on a server of its own.
        let cached = AppState {
            embedder: Arc::new(crate::infra::embed_cache::CachedQueries::new(
                state.embedder.clone(),
                cache,
            )),
            ..state.clone()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let cached_base = format!("http://{}", listener.local_addr()?);
        let cached_server = serve(cached, listener);
        for clients in [c, 1] {
            let f = drive(&cached_base, calls("hybrid"), clients, options.seconds).await?;
            println!(
                "{}{}",
                f.line(&format!("search hybrid, c{clients}, cache of {cache}")),
                anon_now()
            );
        }
        cached_server.abort();
    }
    let rss_after = rss_mb();
    println!(
        "memory  anonymous {:.0} MB with the model loaded, {:.0} MB after ingesting, {:.0} MB after one search per tenant, {:.0} MB after the loads ({:+.1} % from after ingesting, {:+.1} % from the first searches); file-backed (the mapped database) {:.0}, {:.0}, {:.0}, {:.0} MB",
        rss_idle.0,
        rss_before.0,
        rss_warm.0,
        rss_after.0,
        (rss_after.0 / rss_before.0.max(1e-9) - 1.0) * 100.0,
        (rss_after.0 / rss_warm.0.max(1e-9) - 1.0) * 100.0,
        rss_idle.1,
        rss_before.1,
        rss_warm.1,
        rss_after.1
    );
    server.abort();
    jobs.shutdown(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Uploads each document as a Markdown file through the API, `at_once` at a time.
async fn upload(
    base: &str,
    docs: &[CorpusRecord],
    tenants: &std::collections::BTreeMap<String, (TenantId, String)>,
    at_once: usize,
) -> anyhow::Result<Vec<(TenantId, DocumentId)>> {
    use futures_util::StreamExt;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(at_once.max(1))
        .build()?;
    let results: Vec<anyhow::Result<(TenantId, DocumentId)>> =
        futures_util::stream::iter(docs.iter().map(|d| {
            let client = client.clone();
            let (tenant, auth) = tenants[&d.tenant()].clone();
            let body = document_text(d);
            let name = format!("{}.txt", d.id);
            async move {
                let form = reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(body.into_bytes())
                        .file_name(name)
                        .mime_str("text/plain")?,
                );
                let r = client
                    .post(format!("{base}/api/v1/documents"))
                    .header("authorization", auth)
                    .multipart(form)
                    .send()
                    .await?;
                let status = r.status();
                let v: Value = r.json().await?;
                anyhow::ensure!(status.is_success(), "upload refused: {status} {v}");
                let id = v["data"][0]["id"]
                    .as_str()
                    .context("the upload's answer has no document id")?;
                Ok((
                    tenant,
                    id.parse::<DocumentId>()
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                ))
            }
        }))
        .buffer_unordered(at_once.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// Until every document is ready (an error if one failed).
async fn wait_ready(state: &AppState, ids: &[(TenantId, DocumentId)]) -> anyhow::Result<()> {
    let mut waiting: Vec<(TenantId, DocumentId)> = ids.to_vec();
    while !waiting.is_empty() {
        let mut still = Vec::with_capacity(waiting.len());
        for (i, &(tenant, id)) in waiting.iter().enumerate() {
            let d = state.store.get_document(tenant, id).await?;
            anyhow::ensure!(
                d.status != DocumentStatus::Failed,
                "{} failed: {:?}",
                d.title,
                d.error_message
            );
            if d.status != DocumentStatus::Ready {
                // Documents finish roughly in upload order: look no further this round.
                still.extend_from_slice(&waiting[i..]);
                break;
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// The same clients against the peer: its ingest timed, then its search.
async fn peer_load(
    peer: &str,
    options: &LoadOptions,
    queries: &[(String, String)],
) -> anyhow::Result<()> {
    let peer = peer.trim_end_matches('/');
    let client = reqwest::Client::new();
    let corpus = options.dataset.join("corpus.jsonl").canonicalize()?;
    let started = Instant::now();
    let r: Value = client
        .post(format!("{peer}/ingest"))
        .json(&json!({ "path": corpus }))
        .timeout(Duration::from_secs(3_600))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "peer ingest  every vector searchable after {:.1} s  ({r})",
        started.elapsed().as_secs_f64()
    );
    if options.ingest_only {
        return Ok(());
    }
    let stats = |client: reqwest::Client| async move {
        client
            .get(format!("{peer}/stats"))
            .send()
            .await
            .ok()?
            .json::<Value>()
            .await
            .ok()
    };
    let before = stats(client.clone()).await;
    let calls: Arc<Vec<Call>> = Arc::new(
        queries
            .iter()
            .map(|(tenant, q)| {
                let mut url = reqwest::Url::parse("http://peer/query").expect("a fixed URL");
                url.query_pairs_mut()
                    .append_pair("q", q)
                    .append_pair("k", "10");
                if tenant != "default" {
                    url.query_pairs_mut().append_pair("tenant", tenant);
                }
                Call::Get(format!(
                    "{}?{}",
                    url.path(),
                    url.query().unwrap_or_default()
                ))
            })
            .collect(),
    );
    let c = options.concurrency;
    let f = drive(peer, calls.clone(), c, options.seconds).await?;
    println!("{}", f.line(&format!("peer search vector, c{c}")));
    let f = drive(peer, calls, 1, options.seconds).await?;
    println!("{}", f.line("peer search vector, c1"));
    let after = stats(client).await;
    println!(
        "peer memory  before the loads {}  after {}",
        before.map(|v| v.to_string()).unwrap_or_default(),
        after.map(|v| v.to_string()).unwrap_or_default()
    );
    Ok(())
}

/// The local encoder the server's embedder shares (models are loaded once per folder and
/// precision), for its pass counters; `None` when the embedder is a remote API.
fn local_encoder(settings: &Settings) -> Option<Arc<crate::infra::embedder::Loaded>> {
    if settings.knowledge.embedding_provider == "openai" {
        return None;
    }
    crate::infra::embedder::LocalEmbedder::new(settings.model_dir())
        .with_precision(settings.knowledge.embed_precision.precision())
        .load()
        .ok()
}
