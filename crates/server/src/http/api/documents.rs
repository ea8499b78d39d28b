//! `/api/v1/documents` and `/api/v1/search`: the knowledge base.

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use cortex_core::knowledge::{Chunk, ChunkHit, Document, SearchMode, Searchable};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ListView, PageParams};
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::http::extract::{ApiJson, ApiQuery, Auth, path_id};
use crate::knowledge::{self, IncomingFile, KnowledgeError, search};
use crate::tenancy::Action;
use crate::tenancy::TenantCtx;

/// Why a document failed.
#[derive(Serialize, ToSchema)]
pub struct DocumentErrorView {
    /// Stable code: `parse_failed`, `no_text`, `no_text_layer`, `pdf_encrypted`, `not_utf8`,
    /// `too_deeply_nested`, `too_large`, `parse_timeout`, `chunk_limit_exceeded`,
    /// `embedding_failed`, `original_missing`, `unsupported_media_type`,
    /// `processing_abandoned`, `invalid_url`, `url_blocked`, `fetch_failed`,
    /// `blocked_by_robots`, `file_too_large`.
    pub code: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct DocumentView {
    pub id: Uuid,
    pub title: String,
    pub filename: Option<String>,
    /// `upload`, `url` or `qa`.
    pub source: String,
    pub source_url: Option<String>,
    /// Sniffed from the content: `pdf`, `docx`, `html`, `markdown`, `text`, `qa`.
    pub kind: String,
    pub size_bytes: u64,
    /// SHA-256 of the original, hex.
    pub sha256: String,
    /// `pending`, `processing`, `ready` or `failed`.
    pub status: String,
    /// `queued`, `fetching`, `parsing`, `embedding` or `done`.
    pub stage: String,
    /// 0–100.
    pub progress: u8,
    pub chunk_count: u32,
    /// `no`, `lexical` (found by words; vectors still coming) or `full`.
    pub searchable: String,
    pub error: Option<DocumentErrorView>,
    /// Bumped by each reprocessing.
    pub generation: u32,
    pub embedding_model: Option<String>,
    pub lexical_ready_at: Option<DateTime<Utc>>,
    pub vectors_ready_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Document> for DocumentView {
    fn from(d: Document) -> Self {
        Self {
            id: d.id.0,
            searchable: match d.searchable() {
                Searchable::No => "no",
                Searchable::Lexical => "lexical",
                Searchable::Full => "full",
            }
            .into(),
            title: d.title,
            filename: d.filename,
            source: d.source.to_string(),
            source_url: d.source_url,
            kind: d.kind,
            size_bytes: d.size_bytes,
            sha256: d.sha256,
            status: d.status.to_string(),
            stage: d.stage.to_string(),
            progress: d.progress,
            chunk_count: d.chunk_count,
            error: d.error_code.map(|code| DocumentErrorView {
                code,
                message: d.error_message.unwrap_or_default(),
            }),
            generation: d.generation,
            embedding_model: d.embedding_model,
            lexical_ready_at: d.lexical_ready_at,
            vectors_ready_at: d.vectors_ready_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChunkView {
    pub id: Uuid,
    pub document_id: Uuid,
    /// 0-based position in the document.
    pub ordinal: u32,
    pub text: String,
    /// For a Q&A pair: the answer the question carries.
    pub answer: Option<String>,
    /// Headings the chunk sits under, outermost first.
    pub heading_path: Vec<String>,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub token_count: u32,
}

impl From<Chunk> for ChunkView {
    fn from(c: Chunk) -> Self {
        Self {
            id: c.id.0,
            document_id: c.document_id.0,
            ordinal: c.ordinal,
            text: c.text,
            answer: c.answer,
            heading_path: c.heading_path,
            page_start: c.page_start,
            page_end: c.page_end,
            token_count: c.token_count,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DocumentsView {
    pub data: Vec<DocumentView>,
}

#[derive(Serialize, ToSchema)]
pub struct ChunksView {
    pub data: Vec<ChunkView>,
}

/// Upload documents
///
/// `multipart/form-data` with one or more `file` parts (PDF, DOCX, TXT, Markdown, HTML; the
/// type is read from the content, and the extension must agree). Every file is checked before
/// any is stored. Answers at once with the documents, `pending`; processing runs in the
/// background (watch `GET /api/v1/documents/{id}`).
#[utoipa::path(post, path = "/api/v1/documents", tag = "knowledge", security(("bearer" = [])),
    request_body(content_type = "multipart/form-data", description = "`file` parts"),
    responses(
        (status = 202, description = "Accepted for processing", body = DocumentsView),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 409, description = "`document_limit_reached`", body = ErrorBody),
        (status = 413, description = "`file_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    ))]
pub async fn upload_documents(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<DocumentsView>)> {
    ctx.require(Action::WriteKnowledge)?;
    let mut multipart = multipart.map_err(|_| not_multipart())?;
    let limit = state.settings.knowledge.max_upload_bytes;
    let mut total = 0usize;
    let mut files = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().map(str::to_owned);
        let bytes = read_field(&ctx, field, filename.as_deref(), limit - total.min(limit)).await?;
        total += bytes.len();
        files.push(IncomingFile { filename, bytes });
    }
    let docs = knowledge::add_files(&state, &ctx, files).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(DocumentsView {
            data: docs.into_iter().map(Into::into).collect(),
        }),
    ))
}

pub(crate) fn bad_multipart(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidMultipart,
        format!("the multipart body could not be read: {}", e.body_text()),
    )
}

/// Reads one part, refusing it as soon as it passes the plan's file size or what is left of
/// the request allowance: nothing larger is ever held in memory.
pub(crate) async fn read_field(
    ctx: &TenantCtx,
    mut field: Field<'_>,
    filename: Option<&str>,
    remaining: usize,
) -> ApiResult<Vec<u8>> {
    let name = cortex_ingest::sanitize_filename(filename.unwrap_or(""));
    let plan = ctx.plan();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        bytes.extend_from_slice(&chunk);
        knowledge::check_size(plan, &name, bytes.len() as u64)?;
        if bytes.len() > remaining {
            return Err(KnowledgeError::UploadTooLarge { limit: remaining }.into());
        }
    }
    Ok(bytes)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QaPairInput {
    /// 1–1,000 characters; what customers' questions are matched against.
    #[schema(min_length = 1, max_length = 1000)]
    pub question: String,
    /// 1–10,000 characters.
    #[schema(min_length = 1, max_length = 10000)]
    pub answer: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddQaRequest {
    /// The document's title, e.g. "Shipping FAQ".
    pub title: String,
    pub pairs: Vec<QaPairInput>,
}

/// Add Q&A pairs
///
/// One document whose every pair is one chunk: found by its question, carrying its answer.
#[utoipa::path(post, path = "/api/v1/documents/qa", tag = "knowledge", security(("bearer" = [])),
    request_body = AddQaRequest,
    responses(
        (status = 202, description = "Accepted for processing", body = DocumentView),
        (status = 409, description = "`document_limit_reached`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
pub async fn add_qa(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<AddQaRequest>,
) -> ApiResult<(StatusCode, Json<DocumentView>)> {
    let raw: Vec<(String, String)> = req
        .pairs
        .into_iter()
        .map(|p| (p.question, p.answer))
        .collect();
    let pairs = knowledge::check_pairs(&raw)?;
    let original = serde_json::to_vec(&pairs).map_err(|e| ApiError::internal(e.into()))?;
    let doc = knowledge::add_qa(&state, &ctx, &req.title, &pairs, "qa", original).await?;
    Ok((StatusCode::ACCEPTED, Json(doc.into())))
}

/// Import Q&A pairs from CSV
///
/// `multipart/form-data` with one `file` part: CSV with `question` and `answer` columns (a
/// header row naming them, in any order; without one, the first two columns), and an optional
/// `title` part (default: the file name). Rows are checked before anything is stored; a bad
/// row is named in the error.
#[utoipa::path(post, path = "/api/v1/documents/qa/import", tag = "knowledge", security(("bearer" = [])),
    request_body(content_type = "multipart/form-data", description = "`file` (CSV) and optional `title`"),
    responses(
        (status = 202, description = "Accepted for processing", body = DocumentView),
        (status = 413, description = "`file_too_large`", body = ErrorBody),
        (status = 422, description = "`validation_failed` (names the row)", body = ErrorBody),
    ))]
pub async fn import_qa(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<DocumentView>)> {
    ctx.require(Action::WriteKnowledge)?;
    let mut multipart = multipart.map_err(|_| not_multipart())?;
    let limit = state.settings.knowledge.max_upload_bytes;
    let (mut title, mut csv) = (None, None);
    while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
        match field.name() {
            Some("title") => title = Some(field.text().await.map_err(bad_multipart)?),
            Some("file") => {
                let name = field.file_name().map(str::to_owned);
                let bytes = read_field(&ctx, field, name.as_deref(), limit).await?;
                csv = Some((name, bytes));
            }
            _ => {}
        }
    }
    let (name, bytes) =
        csv.ok_or_else(|| ApiError::validation("file", "attach the CSV as a `file` part"))?;
    let pairs = cortex_ingest::qa::parse_csv(&bytes)
        .map_err(|e| ApiError::validation("file", e.to_string()))?;
    let title = title.unwrap_or_else(|| {
        let n = cortex_ingest::sanitize_filename(name.as_deref().unwrap_or("Q&A"));
        n.rsplit_once('.')
            .map_or(n.clone(), |(stem, _)| stem.to_owned())
    });
    let doc = knowledge::add_qa(&state, &ctx, &title, &pairs, "csv", bytes).await?;
    Ok((StatusCode::ACCEPTED, Json(doc.into())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUrlRequest {
    /// An http(s) URL of a public site.
    pub url: String,
    /// 0 (default) adds the page alone; 1–3 also follows the same site's links that deep.
    #[schema(minimum = 0, maximum = 3)]
    pub max_depth: Option<u32>,
    /// Most documents the crawl creates, the start page included: 1–100, default 20.
    #[schema(minimum = 1, maximum = 100)]
    pub max_pages: Option<u32>,
}

/// Add a web page or crawl a site
///
/// The page is fetched in the background through the SSRF guard (public addresses only,
/// checked again on every redirect, size and time capped) and honouring robots.txt. With
/// `max_depth`, the same site's linked pages become documents too.
#[utoipa::path(post, path = "/api/v1/documents/url", tag = "knowledge", security(("bearer" = [])),
    request_body = AddUrlRequest,
    responses(
        (status = 202, description = "Accepted; status `pending`, stage `queued` then `fetching`", body = DocumentView),
        (status = 409, description = "`document_limit_reached`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
pub async fn add_url(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<AddUrlRequest>,
) -> ApiResult<(StatusCode, Json<DocumentView>)> {
    let doc = knowledge::crawl::add_url(
        &state,
        &ctx,
        &req.url,
        req.max_depth.unwrap_or(0),
        req.max_pages.unwrap_or(20),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(doc.into())))
}

fn not_multipart() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::UnsupportedMediaType,
        "send the files as multipart/form-data",
    )
}

/// List documents
#[utoipa::path(get, path = "/api/v1/documents", tag = "knowledge", security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, description = "Documents, newest first", body = ListView<DocumentView>)))]
pub async fn list_documents(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListView<DocumentView>>> {
    let page = params.page()?;
    let docs = knowledge::list(&state, &ctx, page).await?;
    Ok(Json(ListView::page(docs, page, |d| d.id.0)))
}

/// Get a document
///
/// Status, stage, progress, chunk count and, when it failed, why.
#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Document id")),
    responses(
        (status = 200, description = "The document", body = DocumentView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get_document(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<DocumentView>> {
    Ok(Json(
        knowledge::get(&state, &ctx, path_id(&id)?).await?.into(),
    ))
}

/// Delete a document
///
/// Its chunks, vectors, lexical entries and stored original go with it.
#[utoipa::path(delete, path = "/api/v1/documents/{id}", tag = "knowledge", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Document id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn delete_document(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    knowledge::delete(&state, &ctx, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reprocess a document
///
/// Parses, chunks and embeds the stored original again (after a model or chunking change, or
/// a failure). The current chunks answer until the new ones replace them.
#[utoipa::path(post, path = "/api/v1/documents/{id}/reprocess", tag = "knowledge", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Document id")),
    responses(
        (status = 202, description = "Queued", body = DocumentView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn reprocess_document(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<DocumentView>)> {
    let doc = knowledge::reprocess(&state, &ctx, path_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(doc.into())))
}

/// Download a document's original
///
/// Served as an attachment with the sniffed type (never rendered inline).
#[utoipa::path(get, path = "/api/v1/documents/{id}/original", tag = "knowledge", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Document id")),
    responses(
        (status = 200, description = "The bytes as uploaded"),
        (status = 404, description = "`not_found` or `original_missing`", body = ErrorBody),
    ))]
pub async fn download_original(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (doc, bytes) = knowledge::original(&state, &ctx, path_id(&id)?).await?;
    Ok(original_response(doc, bytes))
}

/// A document's stored original as a download: its sniffed type, its name as an attachment,
/// `nosniff`.
pub(crate) fn original_response(doc: Document, bytes: Vec<u8>) -> Response {
    let name = doc.filename.unwrap_or_else(|| "document".into());
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(knowledge::mime_of(&doc.kind)),
    );
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&name)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / 5987).
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChunkParams {
    /// First ordinal to return (default 0).
    pub offset: Option<u32>,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// List a document's chunks
///
/// What the bot reads: each chunk with its position, headings and pages.
#[utoipa::path(get, path = "/api/v1/documents/{id}/chunks", tag = "knowledge", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Document id"), ChunkParams),
    responses(
        (status = 200, description = "Chunks in order", body = ChunksView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn list_chunks(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<ChunkParams>,
) -> ApiResult<Json<ChunksView>> {
    let chunks = knowledge::chunks(
        &state,
        &ctx,
        path_id(&id)?,
        params.offset.unwrap_or(0),
        params.limit.unwrap_or(100),
    )
    .await?;
    Ok(Json(ChunksView {
        data: chunks.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// 1–2,000 characters.
    #[schema(min_length = 1, max_length = 2000)]
    pub query: String,
    /// 1–50, default 5.
    #[schema(minimum = 1, maximum = 50)]
    pub top_k: Option<u32>,
    /// `lexical`, `vector` or `hybrid` (default).
    #[schema(value_type = Option<String>)]
    pub mode: Option<SearchMode>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchHitView {
    pub chunk: ChunkView,
    pub document_title: String,
    /// Higher is better. Vector: cosine similarity; hybrid: fused reciprocal-rank score;
    /// lexical: the backend's full-text rank.
    pub score: f32,
}

impl From<ChunkHit> for SearchHitView {
    fn from(h: ChunkHit) -> Self {
        Self {
            chunk: h.chunk.into(),
            document_title: h.document_title,
            score: h.score,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SearchView {
    pub mode: String,
    pub results: Vec<SearchHitView>,
    pub took_ms: f64,
}

/// Search the knowledge base
///
/// The caller's tenant only. Documents are found by words as soon as they are chunked, and by
/// meaning once their vectors are computed.
#[utoipa::path(post, path = "/api/v1/search", tag = "knowledge", security(("bearer" = [])),
    request_body = SearchRequest,
    responses(
        (status = 200, description = "Best chunks first", body = SearchView),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
pub async fn search_chunks(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<SearchRequest>,
) -> ApiResult<Json<SearchView>> {
    let result = search::search(
        &state,
        &ctx,
        &req.query,
        req.top_k.unwrap_or(5),
        req.mode.unwrap_or(SearchMode::Hybrid),
    )
    .await?;
    Ok(Json(SearchView {
        mode: result.mode.to_string(),
        results: result.hits.into_iter().map(Into::into).collect(),
        took_ms: result.took_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_names_survive_quotes_and_unicode() {
        assert_eq!(
            content_disposition("Guide \"v2\" é.pdf"),
            "attachment; filename=\"Guide _v2_ _.pdf\"; filename*=UTF-8''Guide%20%22v2%22%20%C3%A9.pdf"
        );
    }
}
