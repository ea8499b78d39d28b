//! The knowledge base: adding documents (checked against the tenant's plan, typed by their
//! content), watching them, deleting and reprocessing them, and searching their chunks.
//! Processing itself happens in background jobs ([`pipeline`]).
//!
//! Depends on the core ports, `cortex-ingest` and `tenancy`; never on axum.

pub mod crawl;
pub mod jobs;
pub mod pipeline;
pub mod search;

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::ids::{DocumentId, TenantId};
use cortex_core::knowledge::{Chunk, Document, DocumentSource, NewDocument};
use cortex_core::plans::Plan;
use cortex_core::ports::BlobError;
use cortex_core::store::{Page, conflict};
use cortex_ingest::qa::{self, QaPair};
use cortex_ingest::{DocKind, SniffError, sanitize_filename, sniff};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::tenancy::Action;
use crate::tenancy::{TenancyError, TenantCtx};

/// What can go wrong, each mapped to one status and stable code in `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("{file} is {size} bytes; the {plan} plan accepts files up to {limit} bytes")]
    FileTooLarge {
        file: String,
        size: u64,
        limit: u64,
        plan: String,
    },
    #[error("the upload is larger than the server accepts ({limit} bytes per request)")]
    UploadTooLarge { limit: usize },
    #[error("the {plan} plan holds up to {limit} documents; delete some or upgrade")]
    DocumentLimitReached { limit: u32, plan: String },
    #[error("{file}: {reason}")]
    UnsupportedMediaType { file: String, reason: String },
    #[error("the original of this document is no longer stored")]
    OriginalMissing,
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for KnowledgeError {
    fn from(e: StoreError) -> Self {
        Self::Tenancy(e.into())
    }
}

pub type Result<T> = std::result::Result<T, KnowledgeError>;

/// A file as received.
pub struct IncomingFile {
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

/// A file that passed every check, ready to store.
struct CheckedFile {
    filename: String,
    kind: DocKind,
    bytes: Vec<u8>,
}

/// Refuses a file larger than `plan` allows, before it is read any further.
pub fn check_size(plan: &Plan, file: &str, size: u64) -> Result<()> {
    if size > plan.max_file_bytes {
        return Err(KnowledgeError::FileTooLarge {
            file: file.to_owned(),
            size,
            limit: plan.max_file_bytes,
            plan: plan.name.to_owned(),
        });
    }
    Ok(())
}

fn check_file(plan: &Plan, file: IncomingFile) -> Result<CheckedFile> {
    let filename = sanitize_filename(file.filename.as_deref().unwrap_or(""));
    check_size(plan, &filename, file.bytes.len() as u64)?;
    let kind =
        sniff(&file.bytes, Some(&filename)).map_err(|e| KnowledgeError::UnsupportedMediaType {
            file: filename.clone(),
            reason: match e {
                SniffError::Empty => "the file is empty".to_owned(),
                other => other.to_string(),
            },
        })?;
    Ok(CheckedFile {
        filename,
        kind,
        bytes: file.bytes,
    })
}

/// Where a document's original is kept.
fn blob_key(tenant: TenantId, document: DocumentId) -> String {
    format!("documents/{tenant}/{document}")
}

fn title_of(filename: &str) -> String {
    let stem = filename
        .rsplit_once('.')
        .map_or(filename, |(stem, _)| stem)
        .trim();
    if stem.is_empty() {
        "Untitled".to_owned()
    } else {
        stem.to_owned()
    }
}

/// Adds uploaded files. Every file is checked (size, type) before any is stored, so a bad
/// file refuses the whole request; each stored file gets its document row and its parse job
/// in one transaction. Returns the documents, `pending`.
pub async fn add_files(
    state: &AppState,
    ctx: &TenantCtx,
    files: Vec<IncomingFile>,
) -> Result<Vec<Document>> {
    ctx.require(Action::WriteKnowledge)?;
    if files.is_empty() {
        return Err(invalid("file", "attach at least one file"));
    }
    let plan = ctx.plan();
    let checked = files
        .into_iter()
        .map(|f| check_file(plan, f))
        .collect::<Result<Vec<_>>>()?;
    if let Some(max) = plan.max_documents {
        let have = state.store.count_documents(ctx.tenant_id()).await?;
        if have + checked.len() as u64 > u64::from(max) {
            return Err(KnowledgeError::DocumentLimitReached {
                limit: max,
                plan: plan.name.to_owned(),
            });
        }
    }
    let mut created = Vec::with_capacity(checked.len());
    for file in checked {
        let id = DocumentId::new();
        let key = blob_key(ctx.tenant_id(), id);
        let doc = NewDocument {
            id,
            title: title_of(&file.filename),
            filename: Some(file.filename),
            source: DocumentSource::Upload,
            source_url: None,
            kind: file.kind.as_str().to_owned(),
            size_bytes: file.bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&file.bytes)),
            blob_key: Some(key.clone()),
            created_at: Utc::now(),
        };
        created.push(store_new_document(state, ctx, plan, doc, file.bytes).await?);
    }
    state.jobs_ready.notify_waiters();
    Ok(created)
}

/// Stores the original, then the row and its first job; removes the original again when the
/// row is refused, so nothing is left half-written.
async fn store_new_document(
    state: &AppState,
    ctx: &TenantCtx,
    plan: &Plan,
    doc: NewDocument,
    bytes: Vec<u8>,
) -> Result<Document> {
    let key = doc.blob_key.clone();
    if let Some(key) = &key {
        state
            .blobs
            .put(key, bytes)
            .await
            .map_err(|e| anyhow::anyhow!("storing the original: {e}"))?;
    }
    let job = jobs::parse_job(doc.id, 1);
    match state
        .store
        .create_document(ctx.tenant_id(), doc, job, plan.max_documents)
        .await
    {
        Ok(d) => {
            tracing::info!(document.id = %d.id, document.kind = %d.kind, document.bytes = d.size_bytes, "document added");
            Ok(d)
        }
        Err(e) => {
            if let Some(key) = &key {
                let _ = state.blobs.delete(key).await;
            }
            Err(limit_or(e, plan))
        }
    }
}

/// The store's refusal at the plan's document limit, in the plan's words; other errors as
/// they are.
fn limit_or(e: StoreError, plan: &Plan) -> KnowledgeError {
    match e {
        StoreError::Conflict(c) if c == conflict::DOCUMENT_LIMIT_REACHED => {
            KnowledgeError::DocumentLimitReached {
                limit: plan.max_documents.unwrap_or(0),
                plan: plan.name.to_owned(),
            }
        }
        other => other.into(),
    }
}

/// Adds Q&A pairs as one document: each pair becomes one chunk that is found by its question
/// and carries its answer. `original` is what is kept for download: the JSON of the pairs, or
/// the CSV they were imported from (`kind` `qa` or `csv`).
pub async fn add_qa(
    state: &AppState,
    ctx: &TenantCtx,
    title: &str,
    pairs: &[QaPair],
    kind: &'static str,
    original: Vec<u8>,
) -> Result<Document> {
    ctx.require(Action::WriteKnowledge)?;
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(invalid("title", "must be 1 to 200 characters"));
    }
    if pairs.is_empty() {
        return Err(invalid("pairs", "add at least one question and answer"));
    }
    let plan = ctx.plan();
    check_size(plan, title, original.len() as u64)?;
    let id = DocumentId::new();
    let doc = NewDocument {
        id,
        title: title.to_owned(),
        filename: None,
        source: DocumentSource::Qa,
        source_url: None,
        kind: kind.to_owned(),
        size_bytes: original.len() as u64,
        sha256: hex::encode(Sha256::digest(&original)),
        blob_key: Some(blob_key(ctx.tenant_id(), id)),
        created_at: Utc::now(),
    };
    let created = store_new_document(state, ctx, plan, doc, original).await?;
    state.jobs_ready.notify_waiters();
    Ok(created)
}

/// Checks pairs given as JSON (the same rules as a CSV import).
pub fn check_pairs(pairs: &[(String, String)]) -> Result<Vec<QaPair>> {
    if pairs.len() > qa::MAX_PAIRS {
        return Err(invalid("pairs", format!("at most {} pairs", qa::MAX_PAIRS)));
    }
    pairs
        .iter()
        .enumerate()
        .map(|(i, (q, a))| qa::check_pair(i + 1, q, a))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid("pairs", e))
}

fn invalid(field: &'static str, message: impl ToString) -> KnowledgeError {
    TenancyError::Validation {
        field,
        message: message.to_string(),
    }
    .into()
}

pub async fn list(state: &AppState, ctx: &TenantCtx, page: Page) -> Result<Vec<Document>> {
    ctx.require(Action::ReadKnowledge)?;
    Ok(state.store.list_documents(ctx.tenant_id(), page).await?)
}

/// How many documents the tenant has, and how many its plan holds (`None`: no limit).
pub async fn document_count(state: &AppState, ctx: &TenantCtx) -> Result<(u64, Option<u32>)> {
    ctx.require(Action::ReadKnowledge)?;
    let have = state.store.count_documents(ctx.tenant_id()).await?;
    Ok((have, ctx.plan().max_documents))
}

pub async fn get(state: &AppState, ctx: &TenantCtx, id: DocumentId) -> Result<Document> {
    ctx.require(Action::ReadKnowledge)?;
    Ok(state.store.get_document(ctx.tenant_id(), id).await?)
}

/// Deletes the document, its chunks, lexical entries and unused vectors (one transaction),
/// then its original.
pub async fn delete(state: &AppState, ctx: &TenantCtx, id: DocumentId) -> Result<()> {
    ctx.require(Action::WriteKnowledge)?;
    let doc = state.store.delete_document(ctx.tenant_id(), id).await?;
    if let Some(key) = &doc.blob_key
        && let Err(e) = state.blobs.delete(key).await
    {
        // The row is gone, so the blob is unreachable; log it for the operator to sweep.
        tracing::warn!(document.id = %id, error = %e, "could not delete a document's original");
    }
    tracing::info!(document.id = %id, "document deleted");
    Ok(())
}

/// Processes the document again from its original (after a model or chunking change, or a
/// failure); its current chunks answer until the new ones replace them.
pub async fn reprocess(state: &AppState, ctx: &TenantCtx, id: DocumentId) -> Result<Document> {
    ctx.require(Action::WriteKnowledge)?;
    let current = state.store.get_document(ctx.tenant_id(), id).await?;
    let next = current.generation + 1;
    // A page whose fetch failed has nothing stored to parse: fetch it again.
    let job = if current.blob_key.is_none() && current.source == DocumentSource::Url {
        jobs::fetch_job(id, next, 0, 1)
    } else {
        jobs::parse_job(id, next)
    };
    let doc = state
        .store
        .restart_document(ctx.tenant_id(), id, job)
        .await?;
    state.jobs_ready.notify_waiters();
    Ok(doc)
}

/// The stored original, with the type it was sniffed as.
pub async fn original(
    state: &AppState,
    ctx: &TenantCtx,
    id: DocumentId,
) -> Result<(Document, Vec<u8>)> {
    ctx.require(Action::ReadKnowledge)?;
    let doc = state.store.get_document(ctx.tenant_id(), id).await?;
    let key = doc
        .blob_key
        .clone()
        .ok_or(KnowledgeError::OriginalMissing)?;
    match state.blobs.get(&key).await {
        Ok(bytes) => Ok((doc, bytes)),
        Err(BlobError::NotFound) => Err(KnowledgeError::OriginalMissing),
        Err(e) => Err(anyhow::anyhow!("reading the original: {e}").into()),
    }
}

pub async fn chunks(
    state: &AppState,
    ctx: &TenantCtx,
    id: DocumentId,
    offset: u32,
    limit: u32,
) -> Result<Vec<Chunk>> {
    ctx.require(Action::ReadKnowledge)?;
    if !(1..=500).contains(&limit) {
        return Err(invalid("limit", "must be 1 to 500"));
    }
    // A missing document is a 404, not an empty list.
    state.store.get_document(ctx.tenant_id(), id).await?;
    Ok(state
        .store
        .list_chunks(ctx.tenant_id(), id, offset, limit)
        .await?)
}

/// MIME type to serve an original of `kind` with.
pub fn mime_of(kind: &str) -> &'static str {
    match kind {
        "pdf" => DocKind::Pdf.mime(),
        "docx" => DocKind::Docx.mime(),
        "html" => DocKind::Html.mime(),
        "markdown" => DocKind::Markdown.mime(),
        "text" => DocKind::Text.mime(),
        "qa" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_file_names() {
        assert_eq!(title_of("Refund policy.pdf"), "Refund policy");
        assert_eq!(title_of("notes"), "notes");
        assert_eq!(title_of(".md"), "Untitled");
    }
}
