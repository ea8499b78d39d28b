//! The document pipeline as two idempotent jobs.
//!
//! `ParseDocument`: original → text blocks (bounded in time, panics caught) → token-bounded
//! chunks → stored in one transaction with the lexical index, which makes the document
//! searchable by words at once, together with the `EmbedChunks` job.
//!
//! `EmbedChunks`: embeds, in batches, the chunk texts that have no vector yet for the model,
//! then marks the document ready. A batch either lands whole or not at all, so a worker killed
//! mid-document leaves work that the next lease simply continues.
//!
//! `FetchUrl` ([`super::crawl`]) comes first for documents from the web.
//!
//! Both jobs carry the document's generation; a job whose generation is no longer current (the
//! document was reprocessed or deleted meanwhile) stops without touching it. A bad document
//! (broken, empty, too many chunks) is not an error of the job: the document is marked failed
//! with a stable code and a readable reason, and the job is done.

use std::time::Duration;

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::ids::{DocumentId, TenantId};
use cortex_core::knowledge::{
    ChunkVectors, Document, DocumentStage, DocumentStatus, NewChunk, Windows, content_hash,
};
use cortex_core::plans;
use cortex_core::ports::{BlobError, EmbedError};
use cortex_core::store::conflict;
use cortex_ingest::{ChunkOptions, DocKind, ExtractError, Extracted};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::jobs::JobError;

/// Texts per embedding call: enough for length bucketing to pay, small enough that progress
/// moves and a lost lease wastes little.
const EMBED_BATCH: u32 = 64;

/// The unit-length mean of unit vectors: a chunk's vector from its windows'.
fn mean_direction(vectors: &[Vec<f32>]) -> Vec<f32> {
    let dims = vectors.first().map_or(0, Vec::len);
    let mut mean = vec![0f32; dims];
    for v in vectors {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += x;
        }
    }
    let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    mean.iter_mut().for_each(|m| *m /= norm);
    mean
}

/// What a document's job works on: one run (generation) of the document.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct DocumentJob {
    pub document_id: DocumentId,
    pub generation: u32,
}

/// A document failure: stable code and readable message.
pub(super) struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    pub(super) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The document if the job's run is still the current one.
pub(super) async fn current(
    state: &AppState,
    tenant: TenantId,
    args: &DocumentJob,
) -> Result<Option<Document>, JobError> {
    match state.store.get_document(tenant, args.document_id).await {
        Ok(d) if d.generation == args.generation && d.status != DocumentStatus::Failed => {
            Ok(Some(d))
        }
        Ok(_) | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Treats "the run moved on" as done, other store errors as retryable.
pub(super) fn settled(r: Result<(), StoreError>) -> Result<bool, JobError> {
    match r {
        Ok(()) => Ok(true),
        Err(StoreError::NotFound) => Ok(false),
        Err(StoreError::Conflict(c)) if c == conflict::STALE_GENERATION => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn fail(
    state: &AppState,
    tenant: TenantId,
    args: &DocumentJob,
    f: Failure,
) -> Result<(), JobError> {
    tracing::info!(document.id = %args.document_id, error.code = f.code, "document failed");
    settled(
        state
            .store
            .fail_document(
                tenant,
                args.document_id,
                args.generation,
                f.code,
                &f.message,
            )
            .await,
    )?;
    Ok(())
}

pub(super) async fn parse(
    state: &AppState,
    tenant: TenantId,
    args: DocumentJob,
) -> Result<(), JobError> {
    let Some(doc) = current(state, tenant, &args).await? else {
        return Ok(());
    };
    if matches!(doc.stage, DocumentStage::Embedding | DocumentStage::Done) {
        // An earlier attempt stored the chunks and died before finishing the job.
        return Ok(());
    }
    // Chunks are counted with the model's tokenizer: have it ready (loaded, or fetched).
    warm_up(state).await?;
    if !settled(
        state
            .store
            .set_document_stage(tenant, doc.id, args.generation, DocumentStage::Parsing, 10)
            .await,
    )? {
        return Ok(());
    }
    let chunks = match parse_and_chunk(state, &doc).await? {
        Ok(chunks) => chunks,
        Err(f) => return fail(state, tenant, &args, f).await,
    };
    let plan = tenant_plan(state, tenant).await;
    if chunks.len() > plan.max_chunks_per_document as usize {
        let f = Failure::new(
            "chunk_limit_exceeded",
            format!(
                "the document makes {} chunks; the {} plan allows {} per document",
                chunks.len(),
                plan.name,
                plan.max_chunks_per_document
            ),
        );
        return fail(state, tenant, &args, f).await;
    }
    let next = super::jobs::embed_job(doc.id, args.generation);
    let count = chunks.len();
    if settled(
        state
            .store
            .replace_chunks(tenant, doc.id, args.generation, chunks, next, Utc::now())
            .await,
    )? {
        tracing::info!(document.id = %doc.id, chunks = count, "document chunked; lexically searchable");
        state.jobs_ready.notify_waiters();
    }
    Ok(())
}

/// Reads the original and turns it into chunks. The outer error is transient (retry); the
/// inner one is the document's fault.
async fn parse_and_chunk(
    state: &AppState,
    doc: &Document,
) -> Result<Result<Vec<NewChunk>, Failure>, JobError> {
    let Some(key) = &doc.blob_key else {
        return Ok(Err(Failure::new(
            "original_missing",
            "the document has no stored original",
        )));
    };
    let bytes = match state.blobs.get(key).await {
        Ok(b) => b,
        Err(BlobError::NotFound) => {
            return Ok(Err(Failure::new(
                "original_missing",
                "the stored original is gone",
            )));
        }
        Err(e) => return Err(JobError::retry_because("reading the original", e)),
    };
    if doc.kind == "qa" || doc.kind == "csv" {
        return Ok(qa_chunks(state, doc, &bytes));
    }
    let Some(kind) = kind_of(&doc.kind) else {
        return Ok(Err(Failure::new(
            "unsupported_media_type",
            format!("documents of type {} cannot be parsed", doc.kind),
        )));
    };
    let timeout = Duration::from_secs(state.settings.knowledge.parse_timeout_secs);
    let extracted = match bounded(timeout, move || cortex_ingest::extract(kind, &bytes)).await {
        Bounded::Done(Ok(e)) => e,
        Bounded::Done(Err(e)) => return Ok(Err(extract_failure(e))),
        Bounded::TimedOut => {
            return Ok(Err(Failure::new(
                "parse_timeout",
                format!(
                    "reading the document took longer than {} s",
                    timeout.as_secs()
                ),
            )));
        }
        Bounded::Panicked => {
            return Ok(Err(Failure::new(
                "parse_failed",
                "the document could not be read: the parser stopped on malformed content",
            )));
        }
    };
    let embedder = state.embedder.clone();
    let k = &state.settings.knowledge;
    let options = ChunkOptions {
        max_tokens: k.chunk_tokens.min(embedder.max_input_tokens()),
        overlap_tokens: k.chunk_overlap_tokens,
        ..ChunkOptions::default()
    };
    let chunked = bounded(timeout, move || chunk(&extracted, options, &*embedder)).await;
    match chunked {
        Bounded::Done(chunks) if chunks.is_empty() => Ok(Err(Failure::new(
            "no_text",
            "no text could be extracted from the document",
        ))),
        Bounded::Done(chunks) => Ok(Ok(chunks)),
        Bounded::TimedOut => Ok(Err(Failure::new(
            "parse_timeout",
            "cutting the document into chunks took too long",
        ))),
        Bounded::Panicked => Err(JobError::retry("the chunker stopped unexpectedly")),
    }
}

/// One chunk per pair: the question is what is indexed and embedded, the answer rides along.
fn qa_chunks(state: &AppState, doc: &Document, bytes: &[u8]) -> Result<Vec<NewChunk>, Failure> {
    let pairs = if doc.kind == "csv" {
        cortex_ingest::qa::parse_csv(bytes)
            .map_err(|e| Failure::new("parse_failed", e.to_string()))?
    } else {
        serde_json::from_slice::<Vec<cortex_ingest::qa::QaPair>>(bytes).map_err(|e| {
            Failure::new(
                "parse_failed",
                format!("the stored pairs cannot be read: {e}"),
            )
        })?
    };
    Ok(pairs
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let tokens = state.embedder.count_tokens(&p.question);
            let mut c = NewChunk::new(
                u32::try_from(i).unwrap_or(u32::MAX),
                p.question,
                u32::try_from(tokens).unwrap_or(u32::MAX),
            );
            c.answer = Some(p.answer);
            c.heading_path = vec![doc.title.clone()];
            c
        })
        .collect())
}

fn chunk(
    extracted: &Extracted,
    options: ChunkOptions,
    embedder: &dyn cortex_core::ports::Embedder,
) -> Vec<NewChunk> {
    cortex_ingest::chunk(&extracted.blocks, options, &|t| embedder.count_tokens(t))
        .into_iter()
        .map(|c| {
            let mut n = NewChunk::new(
                c.ordinal,
                c.text,
                u32::try_from(c.token_count).unwrap_or(u32::MAX),
            );
            n.heading_path = c.heading_path;
            n.page_start = c.page_start;
            n.page_end = c.page_end;
            n
        })
        .collect()
}

fn kind_of(kind: &str) -> Option<DocKind> {
    Some(match kind {
        "pdf" => DocKind::Pdf,
        "docx" => DocKind::Docx,
        "html" => DocKind::Html,
        "markdown" => DocKind::Markdown,
        "text" => DocKind::Text,
        _ => return None,
    })
}

fn extract_failure(e: ExtractError) -> Failure {
    let code = match &e {
        ExtractError::NoText => "no_text",
        ExtractError::NoTextLayer => "no_text_layer",
        ExtractError::Encrypted => "pdf_encrypted",
        ExtractError::NotUtf8 => "not_utf8",
        ExtractError::NotYetSupported(_) => "unsupported_media_type",
        ExtractError::TooDeeplyNested => "too_deeply_nested",
        ExtractError::TooLarge(_) => "too_large",
        ExtractError::Corrupt(_) => "parse_failed",
    };
    Failure::new(code, e.to_string())
}

enum Bounded<T> {
    Done(T),
    TimedOut,
    Panicked,
}

/// Runs CPU-bound `f` on the blocking pool, catching panics and giving up after `limit`. (A
/// timed-out parser thread cannot be killed; the parsers bound their own work, and the limit
/// frees the job and the worker.)
async fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Bounded<T> {
    let task = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
    });
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(Ok(v))) => Bounded::Done(v),
        Ok(Ok(Err(_)) | Err(_)) => Bounded::Panicked,
        Err(_) => Bounded::TimedOut,
    }
}

pub(super) async fn embed(
    state: &AppState,
    tenant: TenantId,
    args: DocumentJob,
) -> Result<(), JobError> {
    let Some(doc) = current(state, tenant, &args).await? else {
        return Ok(());
    };
    warm_up(state).await?;
    let model = state.embedder.model().to_owned();
    let total = doc.chunk_count.max(1);
    let mut done = 0u32;
    loop {
        let batch = state
            .store
            .pending_embeddings(tenant, doc.id, &model, EMBED_BATCH)
            .await?;
        if batch.is_empty() {
            break;
        }
        // Each chunk's windows (the sentences the answer engine reads); a chunk's own
        // vector is their mean — as good as embedding the chunk whole, better on SciFact
        // (docs/benchmarks.md), and no token is embedded twice. A chunk with no sentence
        // long enough for a window is embedded whole.
        let sources: Vec<String> = batch.iter().map(|p| p.source_text()).collect();
        let mut texts: Vec<String> = Vec::new();
        // (first text, end, whether they are windows)
        let mut spans: Vec<(usize, usize, bool)> = Vec::with_capacity(batch.len());
        for (p, source) in batch.iter().zip(&sources) {
            let start = texts.len();
            let windows = cortex_ai::extractive::windows(source);
            let has_windows = !windows.is_empty();
            if has_windows {
                texts.extend(windows);
            } else {
                texts.push(p.text.clone());
            }
            spans.push((start, texts.len(), has_windows));
        }
        let vectors = match state.embedder.embed_documents(texts.clone()).await {
            Ok(v) if v.len() == texts.len() => v,
            Ok(v) => {
                return Err(JobError::retry(format!(
                    "the embedder returned {} vectors for {} texts",
                    v.len(),
                    texts.len()
                )));
            }
            Err(EmbedError::Unavailable(m)) => return Err(JobError::retry(m)),
            Err(EmbedError::Failed(m)) => {
                return fail(state, tenant, &args, Failure::new("embedding_failed", m)).await;
            }
        };
        let mut pairs: Vec<ChunkVectors> = Vec::with_capacity(batch.len());
        for ((p, source), (start, end, has_windows)) in batch.into_iter().zip(&sources).zip(spans) {
            let own = &vectors[start..end];
            let (vector, windows) = if has_windows {
                (mean_direction(own), own.to_vec())
            } else {
                (own.first().cloned().unwrap_or_default(), Vec::new())
            };
            pairs.push(ChunkVectors {
                content_hash: p.content_hash,
                vector,
                windows: Some(Windows {
                    of: content_hash(source),
                    vectors: windows,
                }),
            });
        }
        state.store.put_embeddings(tenant, &model, &pairs).await?;
        done += pairs.len() as u32;
        let progress = 50 + (49 * done.min(total) / total) as u8;
        if !settled(
            state
                .store
                .set_document_stage(
                    tenant,
                    doc.id,
                    args.generation,
                    DocumentStage::Embedding,
                    progress,
                )
                .await,
        )? {
            return Ok(());
        }
    }
    match state
        .store
        .finish_document(tenant, doc.id, args.generation, &model, Utc::now())
        .await
    {
        Ok(_) => {
            tracing::info!(document.id = %doc.id, "document ready");
            Ok(())
        }
        Err(StoreError::NotFound) => Ok(()),
        Err(StoreError::Conflict(c)) if c == conflict::STALE_GENERATION => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The tenant's plan (the default one if the tenant or its plan cannot be read).
pub(super) async fn tenant_plan(state: &AppState, tenant: TenantId) -> plans::Plan {
    let id = state.store.get_tenant(tenant).await.map(|t| t.plan);
    plans::plan_or_default(id.as_deref().unwrap_or(plans::DEFAULT_PLAN))
}

async fn warm_up(state: &AppState) -> Result<(), JobError> {
    state
        .embedder
        .warm_up()
        .await
        .map_err(|e| JobError::retry_because("loading the embedding model", e))
}
