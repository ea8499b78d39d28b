//! Knowledge: what the bot answers from. Upload files (a small script sends each on its own
//! request with a progress bar; without it the form posts them together), add a page or
//! crawl a site, add a Q&A pair or import them from CSV; the table of documents refreshes
//! itself while any is being processed; a document's page shows what the bot read (its
//! chunks, with headings and pages), and offers reprocessing, the original and deletion.

use askama::Template;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cortex_core::ids::DocumentId;
use cortex_core::knowledge::{Chunk, Document, DocumentStage, DocumentStatus, Searchable};
use cortex_core::store::Page;
use serde::Deserialize;

use super::forms::{Empty, sentence};
use super::pages::{Chrome, ConfirmPage, error_page, page, page_with_status};
use super::session::{self, Member, PageForm};
use crate::app::AppState;
use crate::http::api::documents::{bad_multipart, original_response, read_field};
use crate::http::error::{ApiError, ErrorCode};
use crate::knowledge::{self, IncomingFile};
use crate::tenancy::Action;

/// How many documents the table shows at once.
const TABLE_ROWS: u32 = 100;

/// One row of the documents table.
pub struct DocRow {
    pub id: String,
    pub title: String,
    pub meta: String,
    pub status: &'static str,
    pub label: String,
    pub working: bool,
    pub progress: u8,
    pub error: String,
    pub chunks: u32,
    pub added: String,
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{} KB", b.div_ceil(1 << 10)),
        b => format!("{b} bytes"),
    }
}

fn stage_label(stage: DocumentStage) -> &'static str {
    match stage {
        DocumentStage::Queued => "Queued",
        DocumentStage::Fetching => "Fetching",
        DocumentStage::Parsing => "Reading",
        DocumentStage::Embedding => "Embedding",
        DocumentStage::Done => "Done",
    }
}

impl From<&Document> for DocRow {
    fn from(d: &Document) -> Self {
        let working = matches!(
            d.status,
            DocumentStatus::Pending | DocumentStatus::Processing
        );
        let label = match (d.status, d.searchable()) {
            (DocumentStatus::Failed, _) => "Failed".to_owned(),
            (DocumentStatus::Ready, _) => "Ready".to_owned(),
            (_, Searchable::Lexical) => {
                format!("{} · found by words already", stage_label(d.stage))
            }
            _ => stage_label(d.stage).to_owned(),
        };
        let kind = match d.kind.as_str() {
            "qa" => "Q&A",
            "pdf" => "PDF",
            "docx" => "Word",
            "html" => "Web page",
            "markdown" => "Markdown",
            "text" => "Text",
            other => other,
        };
        Self {
            id: d.id.to_string(),
            title: d.title.clone(),
            meta: match &d.source_url {
                Some(url) => format!("{kind} · {url}"),
                None => format!("{kind} · {}", size(d.size_bytes)),
            },
            status: d.status.as_str(),
            label,
            working,
            progress: d.progress,
            error: d
                .error_message
                .clone()
                .map(|m| sentence(&m))
                .unwrap_or_default(),
            chunks: d.chunk_count,
            added: d.created_at.format("%Y-%m-%d %H:%M").to_string(),
        }
    }
}

/// The documents table, refreshing itself every 2 s while any document is being processed
/// (and whenever the page says documents changed).
pub struct DocTable {
    /// "3 of 10 documents on the Starter plan."
    pub usage: String,
    pub rows: Vec<DocRow>,
    pub trigger: &'static str,
    pub more: bool,
}

impl DocTable {
    fn new(docs: &[Document], usage: String) -> Self {
        let rows: Vec<DocRow> = docs.iter().map(DocRow::from).collect();
        let trigger = if rows.iter().any(|r| r.working) {
            "every 2s, documents-changed from:body"
        } else {
            "documents-changed from:body"
        };
        Self {
            usage,
            more: rows.len() as u32 == TABLE_ROWS,
            rows,
            trigger,
        }
    }
}

#[derive(Template)]
#[template(path = "knowledge.html")]
struct KnowledgePage {
    chrome: Chrome,
    near_limit: bool,
    can_write: bool,
    max_file: String,
    notice: String,
    error: String,
    table: DocTable,
}

#[derive(Template)]
#[template(path = "knowledge_table.html")]
struct TableFragment {
    table: DocTable,
}

#[derive(Deserialize, Default)]
pub struct KnowledgeQuery {
    added: Option<u32>,
    deleted: Option<String>,
}

/// The newest documents and the plan's count of them, as the table shows them.
async fn table(state: &AppState, member: &Member) -> Result<(DocTable, bool), Response> {
    let ctx = &member.ctx;
    let (docs, (have, max)) = tokio::try_join!(
        knowledge::list(state, ctx, Page::first(TABLE_ROWS)),
        knowledge::document_count(state, ctx)
    )
    .map_err(|e| error_page(e.into()))?;
    let plan = ctx.plan().name;
    let usage = match max {
        Some(max) => format!("{have} of {max} documents on the {plan} plan."),
        None => format!(
            "{have} document{} on the {plan} plan (no limit).",
            if have == 1 { "" } else { "s" }
        ),
    };
    let near_limit = max.is_some_and(|m| have + 2 >= u64::from(m));
    Ok((DocTable::new(&docs, usage), near_limit))
}

async fn render(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    notice: String,
    error: String,
) -> Response {
    let ctx = &member.ctx;
    let (table, near_limit) = match table(state, member).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    page_with_status(
        status,
        &KnowledgePage {
            chrome: Chrome::member(member, "/knowledge"),
            near_limit,
            can_write: ctx.require(Action::WriteKnowledge).is_ok(),
            max_file: size(ctx.plan().max_file_bytes),
            notice,
            error,
            table,
        },
    )
}

pub async fn knowledge_page(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<KnowledgeQuery>,
) -> Response {
    let notice = match (q.added, q.deleted) {
        (Some(1), _) => {
            "Added: it is being processed and becomes searchable in a moment.".to_owned()
        }
        (Some(n), _) => format!("Added {n} documents: they are being processed."),
        (None, Some(_)) => "The document is deleted.".to_owned(),
        _ => String::new(),
    };
    render(&state, &member, StatusCode::OK, notice, String::new()).await
}

/// `GET /knowledge/documents`: the table alone, for htmx.
pub async fn documents_fragment(State(state): State<AppState>, member: Member) -> Response {
    match table(&state, &member).await {
        Ok((table, _)) => page(&TableFragment { table }),
        Err(r) => r,
    }
}

/// Whether the request came from the page's script (which wants a short answer, not a page).
fn from_script(headers: &HeaderMap) -> bool {
    headers
        .get("x-requested-with")
        .is_some_and(|v| v == "XMLHttpRequest")
}

/// The answer to a script: the message in plain text, with the status.
fn script_answer(status: StatusCode, message: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        message,
    )
        .into_response()
}

/// Reads a multipart form whose CSRF token is the `X-CSRF-Token` header or its first part.
async fn csrf_multipart(
    state: &AppState,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Multipart, Response> {
    let mut multipart = multipart.map_err(|_| {
        error_page(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "Send the files from the upload form.",
        ))
    })?;
    if headers.contains_key("x-csrf-token") {
        session::check_csrf(state, "/knowledge", headers, None).map_err(session::csrf_refused)?;
        return Ok(multipart);
    }
    let first = multipart
        .next_field()
        .await
        .map_err(|e| error_page(bad_multipart(e)))?;
    let token = match first {
        Some(f) if f.name() == Some("csrf") => f.text().await.ok(),
        _ => None,
    };
    session::check_csrf(state, "/knowledge", headers, token.as_deref())
        .map_err(session::csrf_refused)?;
    Ok(multipart)
}

pub async fn upload(
    State(state): State<AppState>,
    member: Member,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let script = from_script(&headers);
    let mut multipart = match csrf_multipart(&state, &headers, multipart).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let result: Result<Vec<Document>, ApiError> = async {
        member.ctx.require(Action::WriteKnowledge)?;
        let limit = state.settings.knowledge.max_upload_bytes;
        let (mut total, mut files) = (0usize, Vec::new());
        while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
            if field.name() != Some("file") {
                continue;
            }
            let filename = field
                .file_name()
                .map(str::to_owned)
                .filter(|n| !n.is_empty());
            let bytes = read_field(
                &member.ctx,
                field,
                filename.as_deref(),
                limit - total.min(limit),
            )
            .await?;
            if filename.is_none() && bytes.is_empty() {
                continue; // the empty part a form sends when no file was chosen
            }
            total += bytes.len();
            files.push(IncomingFile { filename, bytes });
        }
        if files.is_empty() {
            return Err(ApiError::validation("file", "choose at least one file"));
        }
        Ok(knowledge::add_files(&state, &member.ctx, files).await?)
    }
    .await;
    match (result, script) {
        (Ok(docs), true) => script_answer(
            StatusCode::ACCEPTED,
            format!(
                "Uploaded: {} is being processed.",
                docs.first().map_or("", |d| d.title.as_str())
            ),
        ),
        (Ok(docs), false) => {
            Redirect::to(&format!("/knowledge?added={}", docs.len())).into_response()
        }
        (Err(e), true) => script_answer(e.status, sentence(&e.message)),
        (Err(e), false) => {
            let status = e.status;
            render(&state, &member, status, String::new(), sentence(&e.message)).await
        }
    }
}

#[derive(Deserialize)]
pub struct UrlForm {
    url: String,
    max_depth: Option<u32>,
    max_pages: Option<u32>,
}

pub async fn add_url(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<UrlForm>,
) -> Response {
    let result = knowledge::crawl::add_url(
        &state,
        &member.ctx,
        f.url.trim(),
        f.max_depth.unwrap_or(0),
        f.max_pages.unwrap_or(20),
    )
    .await;
    added_or_error(&state, &member, result.map(|_| 1).map_err(Into::into)).await
}

#[derive(Deserialize)]
pub struct QaForm {
    title: String,
    question: String,
    answer: String,
}

pub async fn add_qa(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<QaForm>,
) -> Response {
    let result: Result<u32, ApiError> = async {
        let pairs = knowledge::check_pairs(&[(f.question, f.answer)])?;
        let original = serde_json::to_vec(&pairs).map_err(|e| ApiError::internal(e.into()))?;
        knowledge::add_qa(&state, &member.ctx, &f.title, &pairs, "qa", original).await?;
        Ok(1)
    }
    .await;
    added_or_error(&state, &member, result).await
}

pub async fn import_qa(
    State(state): State<AppState>,
    member: Member,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let mut multipart = match csrf_multipart(&state, &headers, multipart).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let result: Result<u32, ApiError> = async {
        member.ctx.require(Action::WriteKnowledge)?;
        let limit = state.settings.knowledge.max_upload_bytes;
        let (mut title, mut csv) = (None, None);
        while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
            match field.name() {
                Some("title") => title = Some(field.text().await.map_err(bad_multipart)?),
                Some("file") => {
                    let name = field.file_name().map(str::to_owned);
                    csv = Some((
                        name.clone(),
                        read_field(&member.ctx, field, name.as_deref(), limit).await?,
                    ));
                }
                _ => {}
            }
        }
        let (name, bytes) = csv
            .filter(|(_, b)| !b.is_empty())
            .ok_or_else(|| ApiError::validation("file", "choose a CSV file"))?;
        let pairs = cortex_ingest::qa::parse_csv(&bytes)
            .map_err(|e| ApiError::validation("file", e.to_string()))?;
        let title = title.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| {
            let n = cortex_ingest::sanitize_filename(name.as_deref().unwrap_or("Q&A"));
            n.rsplit_once('.')
                .map_or(n.clone(), |(stem, _)| stem.to_owned())
        });
        knowledge::add_qa(&state, &member.ctx, &title, &pairs, "csv", bytes).await?;
        Ok(1)
    }
    .await;
    added_or_error(&state, &member, result).await
}

async fn added_or_error(
    state: &AppState,
    member: &Member,
    result: Result<u32, ApiError>,
) -> Response {
    match result {
        Ok(n) => Redirect::to(&format!("/knowledge?added={n}")).into_response(),
        Err(e) => render(state, member, e.status, String::new(), sentence(&e.message)).await,
    }
}

pub struct ChunkRow {
    pub number: u32,
    pub place: String,
    pub text: String,
    pub answer: String,
}

impl From<Chunk> for ChunkRow {
    fn from(c: Chunk) -> Self {
        let mut place = Vec::new();
        if !c.heading_path.is_empty() {
            place.push(c.heading_path.join(" › "));
        }
        match (c.page_start, c.page_end) {
            (Some(a), Some(b)) if a != b => place.push(format!("pages {a}–{b}")),
            (Some(a), _) => place.push(format!("page {a}")),
            _ => {}
        }
        place.push(format!("{} tokens", c.token_count));
        Self {
            number: c.ordinal + 1,
            place: place.join(" · "),
            text: c.text,
            answer: c.answer.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "document.html")]
struct DocumentPage {
    chrome: Chrome,
    doc: DocRow,
    details: Vec<(&'static str, String)>,
    has_original: bool,
    can_write: bool,
    chunks: Vec<ChunkRow>,
    next_offset: Option<u32>,
    notice: String,
}

#[derive(Deserialize, Default)]
pub struct DocumentQuery {
    offset: Option<u32>,
    reprocessing: Option<String>,
}

const CHUNKS_PER_PAGE: u32 = 50;

/// A document id from the path; one that cannot exist is simply not found.
fn document_id(raw: &str) -> Option<DocumentId> {
    raw.parse().ok()
}

pub async fn document_page(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    Query(q): Query<DocumentQuery>,
) -> Response {
    let Some(id) = document_id(&id) else {
        return error_page(ApiError::not_found());
    };
    let offset = q.offset.unwrap_or(0);
    let (doc, chunks) = match tokio::try_join!(
        knowledge::get(&state, &member.ctx, id),
        knowledge::chunks(&state, &member.ctx, id, offset, CHUNKS_PER_PAGE)
    ) {
        Ok(v) => v,
        Err(e) => return error_page(e.into()),
    };
    let mut details = vec![
        (
            "Source",
            doc.source_url
                .clone()
                .or_else(|| doc.filename.clone())
                .unwrap_or_else(|| doc.source.to_string()),
        ),
        ("Size", size(doc.size_bytes)),
        ("Chunks", doc.chunk_count.to_string()),
        (
            "Added",
            doc.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
    ];
    if let Some(model) = &doc.embedding_model {
        details.push(("Embedding model", model.clone()));
    }
    let full = chunks.len() as u32 == CHUNKS_PER_PAGE;
    page(&DocumentPage {
        chrome: Chrome::member(&member, "/knowledge"),
        has_original: doc.blob_key.is_some(),
        can_write: member.ctx.require(Action::WriteKnowledge).is_ok(),
        doc: DocRow::from(&doc),
        details,
        chunks: chunks.into_iter().map(ChunkRow::from).collect(),
        next_offset: full.then_some(offset + CHUNKS_PER_PAGE),
        notice: if q.reprocessing.is_some() {
            "Processing it again: its current chunks answer until the new ones are ready.".into()
        } else {
            String::new()
        },
    })
}

pub async fn reprocess(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    let Some(id) = document_id(&id) else {
        return error_page(ApiError::not_found());
    };
    match knowledge::reprocess(&state, &member.ctx, id).await {
        Ok(_) => Redirect::to(&format!("/knowledge/{id}?reprocessing=1")).into_response(),
        Err(e) => error_page(e.into()),
    }
}

pub async fn delete_page(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = document_id(&id) else {
        return error_page(ApiError::not_found());
    };
    match knowledge::get(&state, &member.ctx, id).await {
        Ok(doc) => page(&ConfirmPage {
            chrome: Chrome::member(&member, "/knowledge"),
            title: format!("Delete “{}”?", doc.title),
            message: "The bot stops answering from it at once, and its original is removed. This cannot be undone.".into(),
            action: format!("/knowledge/{id}/delete"),
            confirm: "Delete the document",
            cancel: format!("/knowledge/{id}"),
        }),
        Err(e) => error_page(e.into()),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    let Some(id) = document_id(&id) else {
        return error_page(ApiError::not_found());
    };
    match knowledge::delete(&state, &member.ctx, id).await {
        Ok(()) => Redirect::to("/knowledge?deleted=1").into_response(),
        Err(e) => error_page(e.into()),
    }
}

pub async fn original(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = document_id(&id) else {
        return error_page(ApiError::not_found());
    };
    match knowledge::original(&state, &member.ctx, id).await {
        Ok((doc, bytes)) => {
            let mut response = original_response(doc, bytes);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => error_page(e.into()),
    }
}
