//! `cortexlayer bench`: the speed figures in docs/benchmarks.md, measured through the same code
//! the server runs (the store's search, the pipeline's jobs), on a scratch database.
//!
//! - `bench search --chunks N`: vector, lexical and hybrid search latency (the query vector
//!   given, so without the model) over one tenant's N chunks
//!   (random unit vectors, so the scan does real work; text from a fixed vocabulary), and the
//!   first hybrid search after each of ten documents of 100 new chunks (as during ingestion).
//! - `bench ingest FILE…`: seconds per MB until the files are lexically searchable and until
//!   they are fully embedded, with the real local model.
//! - `bench answer --questions Q.jsonl FILE…`: the answer engine end to end (retrieval, the
//!   extractive answerer or the configured models, storing the turn) over the files, with
//!   its latency percentiles and how many known answers it got right.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use cortex_core::audit::{Actor, NewAuditEvent, action};
use cortex_core::ids::{DocumentId, TenantId, UserId};
use cortex_core::knowledge::{
    ChunkVectors, DocumentSource, DocumentStatus, NewChunk, NewDocument, Windows,
};
use cortex_core::tenancy::{CompanyName, Email, NewTenant, NewUser, Role, TenantStatus};
use rand::{Rng, SeedableRng};

use crate::app::AppState;
use crate::config::{Secret, Settings};

/// A fresh scratch setup: SQLite in a temporary folder unless `database_url` names another
/// (empty) database, e.g. a PostgreSQL one to measure pgvector.
async fn scratch(
    settings: Settings,
    database_url: Option<String>,
) -> anyhow::Result<(AppState, TenantId, PathBuf)> {
    let (state, dir) = scratch_state(settings, database_url).await?;
    let tenant = scratch_tenant(&state, "Benchmark").await?;
    Ok((state, tenant, dir))
}

/// The app on a scratch database (SQLite in a new temporary folder, which the caller removes,
/// unless `database_url` names another empty database), with no workers running.
pub(crate) async fn scratch_state(
    mut settings: Settings,
    database_url: Option<String>,
) -> anyhow::Result<(AppState, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("cortex-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    settings.database_url = Secret::new(
        database_url.unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display())),
    );
    settings.knowledge.blob_dir = Some(dir.join("blobs"));
    settings.knowledge.workers = 0;
    Ok((AppState::build(settings).await?, dir))
}

/// A new active tenant on the Scale plan (no document limit) with an owner who cannot sign in.
pub(crate) async fn scratch_tenant(state: &AppState, name: &str) -> anyhow::Result<TenantId> {
    let tenant = TenantId::new();
    let owner = UserId::new();
    let now = Utc::now();
    state
        .store
        .create_tenant_with_owner(
            NewTenant {
                id: tenant,
                name: CompanyName::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?,
                plan: "scale".into(),
                status: TenantStatus::Active,
                created_at: now,
            },
            NewUser {
                id: owner,
                email: Email::parse(&format!("bench-{tenant}@example.com"))
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                name: None,
                role: Role::Owner,
                password_hash: String::new(),
                email_verified_at: Some(now),
                created_at: now,
            },
            NewAuditEvent::new(Actor::System, action::TENANT_CREATED, now),
        )
        .await?;
    Ok(tenant)
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    println!(
        "{name:<8} queries {:>5}  p50 {:>7.2} ms  p99 {:>7.2} ms  mean {:>7.2} ms  max {:>7.2} ms",
        ms.len(),
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        mean,
        ms.last().copied().unwrap_or(0.0)
    );
}

/// Windows per chunk in the benchmarks: a ~250-token chunk of help-centre prose holds about
/// this many sentences.
const BENCH_WINDOWS: usize = 10;

/// A benchmark chunk's vectors: its own and its windows', random.
fn bench_vectors(rng: &mut impl Rng, chunk: &NewChunk) -> ChunkVectors {
    ChunkVectors {
        content_hash: chunk.content_hash.clone(),
        vector: random_unit(rng, 384),
        windows: Some(Windows {
            of: cortex_core::knowledge::content_hash(&chunk.text),
            vectors: (0..BENCH_WINDOWS).map(|_| random_unit(rng, 384)).collect(),
        }),
    }
}

fn random_unit(rng: &mut impl Rng, dims: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dims).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let n = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.into_iter().map(|x| x / n).collect()
}

const WORDS: &[&str] = &[
    "refund",
    "shipping",
    "invoice",
    "password",
    "account",
    "delivery",
    "warranty",
    "return",
    "order",
    "payment",
    "subscription",
    "plan",
    "upgrade",
    "cancel",
    "support",
    "billing",
    "address",
    "tracking",
    "discount",
    "coupon",
    "login",
    "security",
    "profile",
    "email",
    "phone",
    "store",
    "product",
    "size",
    "color",
    "stock",
    "exchange",
    "damaged",
    "missing",
    "package",
    "courier",
    "customs",
    "tax",
    "receipt",
    "card",
    "bank",
];

/// A word from a 20,000-word vocabulary with a Zipf-like (log-uniform rank) distribution, as
/// in natural text: a few words everywhere, most words rare. The commonest are real support
/// words so the text reads a little like a help centre.
fn word(rng: &mut impl Rng) -> String {
    let rank = (20_000f64.powf(rng.gen_range(0.0..1.0)) as usize).saturating_sub(1);
    match WORDS.get(rank) {
        Some(w) => (*w).to_owned(),
        None => format!("term{rank}"),
    }
}

/// Search latency over `chunks` chunks of one tenant.
pub async fn search(
    settings: Settings,
    chunks: usize,
    queries: usize,
    k: u32,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let (state, tenant, dir) = scratch(settings, database_url).await?;
    let store = &state.store;
    let model = "bench-random-384";
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let started = Instant::now();
    // Documents of 1,000 chunks each, as a large knowledge base would hold them.
    let per_doc = 1_000;
    for d in 0..chunks.div_ceil(per_doc) {
        let id = DocumentId::new();
        let n = per_doc.min(chunks - d * per_doc);
        store
            .create_document(
                tenant,
                NewDocument {
                    id,
                    title: format!("doc {d}"),
                    filename: None,
                    source: DocumentSource::Upload,
                    source_url: None,
                    kind: "text".into(),
                    size_bytes: 0,
                    sha256: String::new(),
                    blob_key: None,
                    created_at: Utc::now(),
                },
                cortex_core::jobs::NewJob::now("BenchNoop", serde_json::json!({}))
                    .unique(format!("bench:{id}")),
                None,
            )
            .await?;
        let new: Vec<NewChunk> = (0..n)
            .map(|i| {
                let text: Vec<String> = (0..60).map(|_| word(&mut rng)).collect();
                NewChunk::new(i as u32, format!("{} {d}-{i}.", text.join(" ")), 60)
            })
            .collect();
        let vectors: Vec<ChunkVectors> = new.iter().map(|c| bench_vectors(&mut rng, c)).collect();
        store
            .replace_chunks(
                tenant,
                id,
                1,
                new,
                cortex_core::jobs::NewJob::now("BenchNoop", serde_json::json!({}))
                    .unique(format!("bench:{id}:e")),
                Utc::now(),
            )
            .await?;
        store.put_embeddings(tenant, model, &vectors).await?;
    }
    println!(
        "backend {}  chunks {chunks}  dims 384  k {k}  (loaded in {:.1} s)",
        store.backend(),
        started.elapsed().as_secs_f64()
    );
    // The first search loads the tenant's vectors into memory (SQLite); report it apart.
    let q = random_unit(&mut rng, 384);
    let t = Instant::now();
    store.vector_search(tenant, model, &q, k).await?;
    println!(
        "first vector search (cold cache): {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let mut vector_ms = Vec::with_capacity(queries);
    for _ in 0..queries {
        let q = random_unit(&mut rng, 384);
        let t = Instant::now();
        let hits = store.vector_search(tenant, model, &q, k).await?;
        vector_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            hits.len() == k as usize,
            "vector search returned {} of {k}",
            hits.len()
        );
    }
    report("vector", vector_ms);
    // The first lexical search builds the tenant's index; report it apart.
    let t = Instant::now();
    store.lexical_search(tenant, &word(&mut rng), k).await?;
    println!(
        "first lexical search (index build): {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let mut lexical_ms = Vec::with_capacity(queries);
    let mut hybrid_ms = Vec::with_capacity(queries);
    for _ in 0..queries {
        let query: Vec<String> = (0..4).map(|_| word(&mut rng)).collect();
        let query = query.join(" ");
        let t = Instant::now();
        store.lexical_search(tenant, &query, k).await?;
        lexical_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let v = random_unit(&mut rng, 384);
        let t = Instant::now();
        crate::knowledge::search::hybrid(store.as_ref(), tenant, &query, model, &v, k, (1.0, 1.0))
            .await?;
        hybrid_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report("lexical", lexical_ms);
    report("hybrid", hybrid_ms);
    // During an ingestion: a document of 100 more chunks with their vectors, then the next
    // hybrid search (both indexes catch up), ten times.
    let mut after_add_ms = Vec::with_capacity(10);
    for round in 0..10 {
        let id = DocumentId::new();
        store
            .create_document(
                tenant,
                NewDocument {
                    id,
                    title: format!("added {round}"),
                    filename: None,
                    source: DocumentSource::Upload,
                    source_url: None,
                    kind: "text".into(),
                    size_bytes: 0,
                    sha256: String::new(),
                    blob_key: None,
                    created_at: Utc::now(),
                },
                cortex_core::jobs::NewJob::now("BenchNoop", serde_json::json!({}))
                    .unique(format!("bench:{id}")),
                None,
            )
            .await?;
        let new: Vec<NewChunk> = (0..100)
            .map(|i| {
                let text: Vec<String> = (0..60).map(|_| word(&mut rng)).collect();
                NewChunk::new(
                    i as u32,
                    format!("{} added {round}-{i}.", text.join(" ")),
                    60,
                )
            })
            .collect();
        let vectors: Vec<ChunkVectors> = new.iter().map(|c| bench_vectors(&mut rng, c)).collect();
        store
            .replace_chunks(
                tenant,
                id,
                1,
                new,
                cortex_core::jobs::NewJob::now("BenchNoop", serde_json::json!({}))
                    .unique(format!("bench:{id}:e")),
                Utc::now(),
            )
            .await?;
        store.put_embeddings(tenant, model, &vectors).await?;
        let query: Vec<String> = (0..4).map(|_| word(&mut rng)).collect();
        let v = random_unit(&mut rng, 384);
        let t = Instant::now();
        crate::knowledge::search::hybrid(
            store.as_ref(),
            tenant,
            &query.join(" "),
            model,
            &v,
            k,
            (1.0, 1.0),
        )
        .await?;
        after_add_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report("after+100", after_add_ms);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// The model loaded, and the scratch tenant acted on by the operator.
async fn warm_operator(
    state: &AppState,
    tenant: TenantId,
) -> anyhow::Result<crate::tenancy::TenantCtx> {
    state
        .embedder
        .warm_up()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::tenancy::TenantCtx::for_operator(state, tenant)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn read_files(files: &[PathBuf]) -> anyhow::Result<Vec<crate::knowledge::IncomingFile>> {
    files
        .iter()
        .map(|f| {
            Ok(crate::knowledge::IncomingFile {
                filename: f.file_name().map(|n| n.to_string_lossy().into_owned()),
                bytes: std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
            })
        })
        .collect()
}

/// Ingestion speed of `files` with the real pipeline and model.
pub async fn ingest(
    settings: Settings,
    files: &[PathBuf],
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let (state, tenant, dir) = scratch(settings, database_url).await?;
    let ctx = warm_operator(&state, tenant).await?;
    let mut text_bytes = 0usize;
    let incoming = read_files(files)?;
    let total_bytes: usize = incoming.iter().map(|f| f.bytes.len()).sum();
    let started = Instant::now();
    let docs = crate::knowledge::add_files(&state, &ctx, incoming)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut settings_workers = (*state.settings).clone();
    settings_workers.knowledge.workers = state.settings.knowledge.workers.max(1);
    let worker_state = AppState {
        settings: std::sync::Arc::new(settings_workers),
        ..state.clone()
    };
    let workers = crate::jobs::Workers::start(&worker_state);
    let mut lexical_at: Option<Duration> = None;
    let (chunks, tokens) = loop {
        let mut all_lexical = true;
        let mut all_done = true;
        let mut chunks = 0u64;
        for d in &docs {
            let d = state.store.get_document(tenant, d.id).await?;
            anyhow::ensure!(
                d.status != DocumentStatus::Failed,
                "{} failed: {:?}",
                d.title,
                d.error_message
            );
            all_lexical &= d.lexical_ready_at.is_some();
            all_done &= d.status == DocumentStatus::Ready;
            chunks += u64::from(d.chunk_count);
        }
        if all_lexical && lexical_at.is_none() {
            lexical_at = Some(started.elapsed());
        }
        if all_done {
            let mut tokens = 0u64;
            for d in &docs {
                let mut offset = 0;
                loop {
                    let page = state.store.list_chunks(tenant, d.id, offset, 500).await?;
                    if page.is_empty() {
                        break;
                    }
                    offset += page.len() as u32;
                    for c in &page {
                        tokens += u64::from(c.token_count);
                        text_bytes += c.text.len();
                    }
                }
            }
            break (chunks, tokens);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let total = started.elapsed();
    workers.shutdown(Duration::from_secs(5)).await;
    let mb = total_bytes as f64 / 1e6;
    let text_mb = text_bytes as f64 / 1e6;
    let lexical = lexical_at.unwrap_or(total).as_secs_f64();
    println!(
        "files {}  {:.2} MB on disk  {:.2} MB of chunk text  {chunks} chunks  {tokens} tokens",
        docs.len(),
        mb,
        text_mb
    );
    println!(
        "lexically searchable after {lexical:.2} s ({:.2} s per MB of file)",
        lexical / mb.max(1e-9)
    );
    println!(
        "fully embedded after {:.2} s ({:.2} s per MB of file, {:.2} s per MB of chunk text, {:.0} tokens/s)",
        total.as_secs_f64(),
        total.as_secs_f64() / mb.max(1e-9),
        total.as_secs_f64() / text_mb.max(1e-9),
        tokens as f64 / total.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Counts nothing: the benchmark measures the answer engine, not the plan's request rate.
pub(crate) struct Unlimited;

#[async_trait::async_trait]
impl crate::infra::ratelimit::RateLimiter for Unlimited {
    async fn hit(
        &self,
        _key: &str,
        _limit: u32,
        _window: Duration,
    ) -> crate::infra::ratelimit::Hit {
        crate::infra::ratelimit::Hit {
            count: 1,
            allowed: true,
            retry_after: Duration::ZERO,
        }
    }
}

/// Uploads `files` as the tenant's documents and runs workers until each is ready.
async fn ingested(
    state: &AppState,
    ctx: &crate::tenancy::TenantCtx,
    files: &[PathBuf],
) -> anyhow::Result<Vec<cortex_core::knowledge::Document>> {
    let tenant = ctx.tenant_id();
    let incoming = read_files(files)?;
    let docs = crate::knowledge::add_files(state, ctx, incoming)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut with_workers = (*state.settings).clone();
    with_workers.knowledge.workers = with_workers.knowledge.workers.max(1);
    let workers = crate::jobs::Workers::start(&AppState {
        settings: std::sync::Arc::new(with_workers),
        ..state.clone()
    });
    for d in &docs {
        loop {
            let d = state.store.get_document(tenant, d.id).await?;
            anyhow::ensure!(d.status != DocumentStatus::Failed, "{} failed", d.title);
            if d.status == DocumentStatus::Ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    workers.shutdown(Duration::from_secs(5)).await;
    Ok(docs)
}

/// JSON lines `{"question", "expect"}`: each question and what its answer must contain
/// (`None`: it must abstain).
fn read_questions(path: &std::path::Path) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut asked = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).context("a line of the questions")?;
        let q = v["question"]
            .as_str()
            .context("a question without \"question\"")?;
        asked.push((q.to_owned(), v["expect"].as_str().map(str::to_owned)));
    }
    Ok(asked)
}

/// The configured reranker's latency (`RERANK_MODEL_DIR` or `RERANK_BASE_URL`) on the pools
/// hybrid retrieval gives for each question over `files`: `top` candidates a call, as the
/// search API and the answer engine pass them.
pub async fn rerank(
    settings: Settings,
    questions: &std::path::Path,
    files: &[PathBuf],
    top: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let (state, tenant, dir) = scratch(settings, None).await?;
    let reranker = state
        .reranker
        .clone()
        .context("no reranker: set RERANK_MODEL_DIR or RERANK_BASE_URL")?;
    let ctx = warm_operator(&state, tenant).await?;
    let docs = ingested(&state, &ctx, files).await?;
    let asked = read_questions(questions)?;
    let mut pools = Vec::with_capacity(asked.len());
    for (question, _) in &asked {
        let v = state
            .embedder
            .embed_query(question)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut pool = crate::knowledge::search::hybrid_candidates(
            state.store.as_ref(),
            tenant,
            question,
            state.embedder.model(),
            &v,
            (top as u32).div_ceil(2).max(1),
            state.settings.answer.fusion_weights(),
        )
        .await?;
        pool.truncate(top);
        let passages: Vec<String> = pool
            .iter()
            .map(|c| crate::knowledge::search::source_text(&c.hit))
            .collect();
        pools.push((question.clone(), passages));
    }
    let mut latencies = Vec::new();
    let mut passages = 0;
    for _ in 0..rounds.max(1) {
        for (question, pool) in &pools {
            let t = Instant::now();
            reranker
                .rerank(question, pool)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {}", reranker.name(), e.0))?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            passages += pool.len();
        }
    }
    println!(
        "{} documents, {} questions × {} rounds, reranker {}, {:.1} passages a call",
        docs.len(),
        pools.len(),
        rounds.max(1),
        reranker.name(),
        passages as f64 / latencies.len().max(1) as f64
    );
    report("rerank", latencies);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

pub async fn answer(
    settings: Settings,
    questions: &std::path::Path,
    files: &[PathBuf],
    rounds: usize,
    concurrency: usize,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let (state, tenant, dir) = scratch(settings, database_url).await?;
    let state = AppState {
        limiter: std::sync::Arc::new(Unlimited),
        ..state
    };
    let ctx = warm_operator(&state, tenant).await?;
    let docs = ingested(&state, &ctx, files).await?;
    let asked = read_questions(questions)?;
    // Every (round, question), asked by `concurrency` customers at once, each in a new
    // conversation; the first round's answers are judged.
    let jobs: Vec<(usize, usize)> = (0..rounds.max(1))
        .flat_map(|round| (0..asked.len()).map(move |q| (round, q)))
        .collect();
    let started = Instant::now();
    let results: Vec<anyhow::Result<(f64, bool)>> =
        futures_util::stream::iter(jobs.into_iter().map(|(round, q)| {
            let (question, expect) = &asked[q];
            let (state, ctx) = (&state, &ctx);
            async move {
                let t = Instant::now();
                let a = crate::answer::ask(
                    state,
                    ctx,
                    crate::answer::Question {
                        message: question.clone(),
                        conversation_id: None,
                        channel: cortex_core::conversations::Channel::Api,
                        history: Vec::new(),
                        customer: None,
                    },
                    None,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                let ok = round == 0
                    && match expect {
                        Some(e) => !a.abstained() && a.text.contains(e.as_str()),
                        None => a.abstained(),
                    };
                Ok((t.elapsed().as_secs_f64() * 1000.0, ok))
            }
        }))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let wall = started.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(results.len());
    let mut right = 0;
    for r in results {
        let (ms, ok) = r?;
        latencies.push(ms);
        right += usize::from(ok);
    }
    println!(
        "{} documents, {} questions × {} rounds, model chain {:?}",
        docs.len(),
        asked.len(),
        rounds.max(1),
        state
            .models
            .chain("scale", &cortex_core::answer::BotSettings::default())
            .iter()
            .map(|m| m.id().to_owned())
            .collect::<Vec<_>>()
    );
    println!("right {right}/{}", asked.len());
    println!(
        "concurrency {}  {:.1} answers/s",
        concurrency.max(1),
        latencies.len() as f64 / wall
    );
    report("answer", latencies);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// The webhook's acknowledgement latency under a steady load: signed WhatsApp deliveries, each
/// a new message, sent over loopback HTTP at `rate` a second for `seconds` (open loop: each
/// request leaves at its scheduled time whatever the earlier ones do, and its latency counts
/// from that time, so a stall shows in the figures instead of slowing the load). The server
/// is the real router: signature check, routing, one transaction storing the message and its
/// job, the answer. No workers run, so answering does not compete with it.
pub async fn webhook(
    mut settings: Settings,
    rate: u32,
    seconds: u32,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    use hmac::Mac;
    let secret = format!("bench-{}", uuid::Uuid::now_v7());
    settings.providers.meta_app_secret = Some(Secret::new(&secret));
    let (state, tenant, dir) = scratch(settings, database_url).await?;
    let state = AppState {
        limiter: std::sync::Arc::new(Unlimited),
        ..state
    };
    let connection = cortex_core::ids::ChannelConnectionId::new();
    let now = Utc::now();
    state
        .store
        .create_channel_connection(
            tenant,
            cortex_core::channels::ChannelConnection {
                id: connection,
                tenant_id: tenant,
                kind: cortex_core::conversations::Channel::WhatsApp,
                provider: cortex_core::channels::Provider::Meta,
                asset_id: "106540352242922".into(),
                account_id: None,
                name: "bench".into(),
                sealed_token: state.secrets.seal(
                    "EAAG-bench-token-000000",
                    &crate::channels::token_context(tenant, connection),
                ),
                token_hint: "…0000".into(),
                template: None,
                ack_text: None,
                verified_at: Some(now),
                webhook_target: None,
                token_invalid_at: None,
                created_by: None,
                created_at: now,
                updated_at: now,
            },
            NewAuditEvent::new(Actor::System, action::CHANNEL_CONNECTED, now),
        )
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/meta", listener.local_addr()?);
    let app = crate::http::router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    // Bodies and signatures are made before the clock starts.
    let rate = rate.max(1);
    let warmup = rate as usize; // one second
    let total = warmup + (rate * seconds.max(1)) as usize;
    let sent_at = Utc::now().timestamp();
    let requests: Vec<(Vec<u8>, String)> = (0..total)
        .map(|i| {
            let body = serde_json::json!({
                "object": "whatsapp_business_account",
                "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
                    "contacts": [{ "profile": { "name": "Bench" }, "wa_id": format!("1650555{:04}", i % 10_000) }],
                    "messages": [{ "from": format!("1650555{:04}", i % 10_000), "id": format!("wamid.BENCH{i:08}"),
                                   "timestamp": sent_at.to_string(), "type": "text",
                                   "text": { "body": "Where is my order? It was due yesterday." } }]
                } }] }]
            })
            .to_string()
            .into_bytes();
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(&body);
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            (body, signature)
        })
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1_024)
        .build()?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for (i, (body, signature)) in requests.into_iter().enumerate() {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let ok = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", signature)
                .body(body)
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            (i, due.elapsed().as_secs_f64() * 1000.0, ok)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0;
    for t in tasks {
        let (i, ms, ok) = t.await?;
        failed += usize::from(!ok);
        if i >= warmup {
            latencies.push(ms);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    server.abort();
    latencies.sort_by(f64::total_cmp);
    println!(
        "webhook  {} requests at {rate}/s over {seconds} s (after a 1 s warm-up; sent {:.0}/s), {} backend, {failed} failed",
        latencies.len(),
        total as f64 / elapsed,
        state.store.backend(),
    );
    println!(
        "webhook  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(0.0)
    );
    let _ = std::fs::remove_dir_all(dir);
    anyhow::ensure!(failed == 0, "{failed} deliveries were not acknowledged");
    Ok(())
}

/// Every dashboard page rendered server-side for a tenant with `documents` documents and
/// `conversations` conversations (spread over the last 30 days across the widget, WhatsApp
/// and the API, each with a question and a cited answer), over loopback HTTP through the real
/// router with a member's session cookie (and an operator's for the operator console):
/// `requests` sequential requests a page after a warm-up, p50 / p95 / max, and the
/// JavaScript each page loads, gzipped.
pub async fn dashboard(
    settings: Settings,
    documents: usize,
    conversations: usize,
    requests: usize,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    use cortex_core::conversations::{
        Channel, Citation, Conversation, ConversationStatus, Message, MessageRole, Turn,
    };
    use cortex_core::ids::{ChunkId, ConversationId, MessageId, TokenFamilyId};
    use std::io::Write;

    let (state, dir) = scratch_state(settings, database_url).await?;
    let state = AppState {
        limiter: std::sync::Arc::new(Unlimited),
        ..state
    };
    let store = &state.store;
    let tenant = TenantId::new();
    let owner = UserId::new();
    let now = Utc::now();
    store
        .create_tenant_with_owner(
            NewTenant {
                id: tenant,
                name: CompanyName::parse("Dashboard Bench").map_err(|e| anyhow::anyhow!("{e}"))?,
                plan: "scale".into(),
                status: TenantStatus::Active,
                created_at: now,
            },
            NewUser {
                id: owner,
                email: Email::parse("owner@bench.example").map_err(|e| anyhow::anyhow!("{e}"))?,
                name: Some("Bench Owner".into()),
                role: Role::Owner,
                password_hash: String::new(),
                email_verified_at: Some(now),
                created_at: now,
            },
            NewAuditEvent::new(Actor::System, action::TENANT_CREATED, now).target("tenant", tenant),
        )
        .await?;
    let started = Instant::now();
    let mut first_doc = None;
    for d in 0..documents {
        let id = DocumentId::new();
        first_doc.get_or_insert(id);
        store
            .create_document(
                tenant,
                NewDocument {
                    id,
                    title: format!("Help article {d}"),
                    filename: Some(format!("article-{d}.md")),
                    source: DocumentSource::Upload,
                    source_url: None,
                    kind: "markdown".into(),
                    size_bytes: 4_096,
                    sha256: String::new(),
                    blob_key: None,
                    created_at: Utc::now(),
                },
                cortex_core::jobs::NewJob::now("BenchNoop", serde_json::json!({}))
                    .unique(format!("bench:{id}")),
                None,
            )
            .await?;
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let channels = [Channel::Widget, Channel::WhatsApp, Channel::Api];
    let mut last_conversation = None;
    for i in 0..conversations {
        let c = ConversationId::new();
        last_conversation = Some(c);
        let at = now - chrono::Duration::seconds(rng.gen_range(0..30 * 24 * 3600));
        let message = |role, content: String, abstained| Message {
            id: MessageId::new(),
            tenant_id: tenant,
            conversation_id: c,
            role,
            content,
            citations: Vec::new(),
            context: Vec::new(),
            confidence: None,
            abstained,
            model: None,
            prompt_tokens: 0,
            completion_tokens: 0,
            latency_ms: 0,
            created_at: at,
        };
        let abstained = i % 5 == 0;
        let mut answer = message(
            MessageRole::Assistant,
            format!("Refunds take 14 days [1]. (answer {i})"),
            abstained,
        );
        answer.latency_ms = rng.gen_range(5..80);
        answer.confidence = Some(0.7);
        answer.model = Some("extractive".into());
        if !abstained {
            answer.citations = vec![Citation {
                index: 1,
                document_id: first_doc.unwrap_or_default(),
                chunk_id: ChunkId::new(),
                title: "Help article 0".into(),
                heading_path: vec!["Refunds".into()],
                page: None,
                snippet: "Refunds take 14 days.".into(),
                score: 0.7,
            }];
        }
        let channel = channels[i % channels.len()];
        store
            .record_turn(
                tenant,
                Turn {
                    new_conversation: Some(Conversation {
                        id: c,
                        tenant_id: tenant,
                        channel,
                        status: ConversationStatus::Bot,
                        connection_id: None,
                        customer: None,
                        created_at: at,
                        updated_at: at,
                    }),
                    conversation_id: c,
                    question: message(
                        MessageRole::User,
                        format!("How long do refunds take? ({i})"),
                        false,
                    ),
                    answer: Some(answer),
                    usage: Vec::new(),
                    events: Vec::new(),
                },
            )
            .await?;
        if i % 10_000 == 9_999 {
            print!(".");
            let _ = std::io::stdout().flush();
        }
    }
    println!(
        "\nbackend {}  documents {documents}  conversations {conversations}  (loaded in {:.1} s)",
        store.backend(),
        started.elapsed().as_secs_f64()
    );

    // A member's browser session and an operator's.
    let user = store.get_user(tenant, owner).await?;
    let session = crate::tenancy::accounts::issue_session(&state, user, TokenFamilyId::new())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let admin_password = format!("bench-operator-{}", uuid::Uuid::now_v7());
    crate::tenancy::operators::create_admin(&state, "ops@bench.example", admin_password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (_, operator_token) = crate::tenancy::operators::login(
        &state,
        std::net::IpAddr::from([127, 0, 0, 1]),
        "ops@bench.example",
        admin_password,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (member_cookie, operator_cookie) = crate::http::dashboard::cookie_names(&state);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = crate::http::router(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let doc = first_doc.map(|d| d.to_string()).unwrap_or_default();
    let conversation = last_conversation.map(|c| c.to_string()).unwrap_or_default();
    let pages: Vec<(String, &str)> = vec![
        ("/sign-in".into(), ""),
        ("/overview".into(), member_cookie),
        ("/knowledge".into(), member_cookie),
        ("/knowledge/documents".into(), member_cookie),
        (format!("/knowledge/{doc}"), member_cookie),
        ("/bot".into(), member_cookie),
        ("/conversations".into(), member_cookie),
        (
            "/conversations?abstained=on&channel=widget".into(),
            member_cookie,
        ),
        (format!("/conversations/{conversation}"), member_cookie),
        ("/channels".into(), member_cookie),
        ("/team".into(), member_cookie),
        ("/api-keys".into(), member_cookie),
        ("/audit".into(), member_cookie),
        ("/settings".into(), member_cookie),
        ("/operator".into(), operator_cookie),
        (format!("/operator/tenants/{tenant}"), operator_cookie),
    ];
    println!(
        "{:<46} {:>9} {:>9} {:>9} {:>13}",
        "page", "p50 ms", "p95 ms", "max ms", "JS gzip KB"
    );
    let mut worst_p95: f64 = 0.0;
    let mut worst_js: f64 = 0.0;
    for (path, cookie) in &pages {
        let header = match *cookie {
            "" => String::new(),
            name if name == operator_cookie => format!("{name}={operator_token}"),
            name => format!("{name}={}", session.refresh_token),
        };
        let get = |path: String| {
            let (client, header) = (client.clone(), header.clone());
            let url = format!("{base}{path}");
            async move { client.get(url).header("cookie", header).send().await }
        };
        let mut html = String::new();
        for _ in 0..5 {
            let r = get(path.clone()).await?;
            anyhow::ensure!(r.status() == 200, "{path} answered {}", r.status());
            html = r.text().await?;
        }
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let t = Instant::now();
            let r = get(path.clone()).await?;
            let status = r.status();
            let _ = r.bytes().await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status == 200, "{path} answered {status}");
        }
        times.sort_by(f64::total_cmp);
        // The scripts the page loads, as a browser would download them compressed.
        let mut js_gzip = 0usize;
        for src in html.split("<script src=\"").skip(1) {
            let Some(src) = src.split('"').next() else {
                continue;
            };
            let bytes = client
                .get(format!("{base}{src}"))
                .send()
                .await?
                .bytes()
                .await?;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&bytes)?;
            js_gzip += gz.finish()?.len();
        }
        let (p50, p95, max) = (
            percentile(&times, 50.0),
            percentile(&times, 95.0),
            times.last().copied().unwrap_or(0.0),
        );
        worst_p95 = worst_p95.max(p95);
        worst_js = worst_js.max(js_gzip as f64 / 1024.0);
        let shown = if path.len() > 46 {
            format!("{}…", &path[..45])
        } else {
            path.clone()
        };
        println!(
            "{shown:<46} {p50:>9.2} {p95:>9.2} {max:>9.2} {:>13.1}",
            js_gzip as f64 / 1024.0
        );
    }
    println!(
        "slowest page p95 {worst_p95:.2} ms; most JavaScript on a page {worst_js:.1} KB gzipped"
    );
    server.abort();
    drop(state);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
