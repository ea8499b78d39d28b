//! The web widget over HTTP: `/api/v1/widget-keys` for tenant admins; `/widget.js` and
//! `/widget/v1/*` for visitors' pages (public: a widget key, the page's `Origin`, a visitor id).
//!
//! Visitor endpoints take their JSON as `text/plain` too: browsers post that across origins
//! without a preflight. Their answers carry `Access-Control-Allow-Origin` for the page's
//! origin only when the key allows it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cortex_core::conversations::Channel;
use cortex_core::ids::{ConversationId, MessageId, WidgetKeyId};
use cortex_core::widget::{WidgetKey, WidgetPosition, WidgetTheme};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::chat::{json_event, sse_response, stream_answer, wants_stream};
use crate::answer::{self, Answer, Question};
use crate::app::AppState;
use crate::conversations::Customer;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, ApiQuery, Auth, ClientIp, parse_json_bytes, path_id};
use crate::widget::{self, KeyChange, NewKey, Visit};

/// The script pasted into tenants' pages.
const WIDGET_JS: &str = include_str!("../../../assets/widget.js");

// ----- keys ----------------------------------------------------------------------------------

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThemeView {
    /// `#rrggbb`.
    pub color: String,
    /// The panel's title, 1–60 characters.
    pub title: String,
    /// `right` (default) or `left`.
    #[schema(value_type = String)]
    pub position: WidgetPosition,
}

impl From<ThemeView> for WidgetTheme {
    fn from(t: ThemeView) -> Self {
        Self {
            color: t.color,
            title: t.title,
            position: t.position,
        }
    }
}

impl From<WidgetTheme> for ThemeView {
    fn from(t: WidgetTheme) -> Self {
        Self {
            color: t.color,
            title: t.title,
            position: t.position,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWidgetKeyRequest {
    /// Defaults to "Website".
    pub name: Option<String>,
    /// The origins whose pages may use the key (1–20), e.g. `https://shop.example`.
    #[schema(min_items = 1, max_items = 20)]
    pub allowed_origins: Vec<String>,
    pub theme: Option<ThemeView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWidgetKeyRequest {
    pub name: Option<String>,
    #[schema(min_items = 1, max_items = 20)]
    pub allowed_origins: Option<Vec<String>>,
    pub theme: Option<ThemeView>,
}

#[derive(Serialize, ToSchema)]
pub struct WidgetKeyView {
    pub id: Uuid,
    /// `wk_…`: public, it goes in the page.
    pub public_key: String,
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub theme: ThemeView,
    /// The tag to paste before `</body>`.
    pub snippet: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl WidgetKeyView {
    fn new(k: WidgetKey, app_url: &str) -> Self {
        Self {
            snippet: format!(
                "<script src=\"{}/widget.js\" data-key=\"{}\" async></script>",
                app_url.trim_end_matches('/'),
                k.public_key
            ),
            id: k.id.0,
            public_key: k.public_key,
            name: k.name,
            allowed_origins: k.allowed_origins,
            theme: k.theme.into(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WidgetKeysView {
    pub data: Vec<WidgetKeyView>,
}

/// Create a widget key
///
/// Owners and admins. The key is public and works only on pages of the allowed origins.
#[utoipa::path(post, path = "/api/v1/widget-keys", tag = "widget", security(("bearer" = [])),
    request_body = CreateWidgetKeyRequest,
    responses(
        (status = 201, description = "Created, with the snippet to paste", body = WidgetKeyView),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
pub async fn create_widget_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<CreateWidgetKeyRequest>,
) -> ApiResult<(StatusCode, Json<WidgetKeyView>)> {
    let key = widget::create_key(
        &state,
        &ctx,
        NewKey {
            name: req.name,
            allowed_origins: req.allowed_origins,
            theme: req.theme.map(Into::into),
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(WidgetKeyView::new(key, &state.settings.app_url)),
    ))
}

/// List widget keys
#[utoipa::path(get, path = "/api/v1/widget-keys", tag = "widget", security(("bearer" = [])),
    responses((status = 200, description = "Oldest first, revoked ones included", body = WidgetKeysView)))]
pub async fn list_widget_keys(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<WidgetKeysView>> {
    let keys = widget::list_keys(&state, &ctx).await?;
    Ok(Json(WidgetKeysView {
        data: keys
            .into_iter()
            .map(|k| WidgetKeyView::new(k, &state.settings.app_url))
            .collect(),
    }))
}

/// Change a widget key
///
/// Its name, origins or theme; the public key stays.
#[utoipa::path(patch, path = "/api/v1/widget-keys/{id}", tag = "widget", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Widget key id")),
    request_body = UpdateWidgetKeyRequest,
    responses(
        (status = 200, description = "Changed", body = WidgetKeyView),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`already_revoked`", body = ErrorBody),
    ))]
pub async fn update_widget_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateWidgetKeyRequest>,
) -> ApiResult<Json<WidgetKeyView>> {
    let key = widget::update_key(
        &state,
        &ctx,
        path_id(&id)?,
        KeyChange {
            name: req.name,
            allowed_origins: req.allowed_origins,
            theme: req.theme.map(Into::into),
        },
    )
    .await?;
    Ok(Json(WidgetKeyView::new(key, &state.settings.app_url)))
}

/// Revoke a widget key
#[utoipa::path(delete, path = "/api/v1/widget-keys/{id}", tag = "widget", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Widget key id")),
    responses(
        (status = 204, description = "Revoked: pages using it stop working"),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`already_revoked`", body = ErrorBody),
    ))]
pub async fn revoke_widget_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: WidgetKeyId = path_id(&id)?;
    widget::revoke_key(&state, &ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- visitors ------------------------------------------------------------------------------

/// The widget script
///
/// Dependency-free; paste `<script src="…/widget.js" data-key="wk_…" async></script>`.
#[utoipa::path(get, path = "/widget.js", tag = "widget",
    responses((status = 200, description = "JavaScript")))]
pub async fn widget_js() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

/// `response` readable by the page of `origin` (the key allowed it).
fn for_page(mut response: Response, origin: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(origin) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

async fn admit(
    state: &AppState,
    key: &str,
    headers: &HeaderMap,
    ip: std::net::IpAddr,
) -> ApiResult<Visit> {
    let visit = widget::admit(state, key, origin(headers), ip).await?;
    crate::http::middleware::record_tenant(visit.key.tenant_id);
    Ok(visit)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeyParams {
    /// The widget key (`wk_…`).
    pub key: String,
}

#[derive(Serialize, ToSchema)]
pub struct WidgetConfigView {
    pub title: String,
    pub color: String,
    pub position: String,
    /// Said when the panel opens.
    pub greeting: String,
    /// Whether the bot answers (when off, the widget says so instead of offering a chat).
    pub enabled: bool,
}

/// The widget's look and greeting
#[utoipa::path(get, path = "/widget/v1/config", tag = "widget", params(KeyParams),
    responses(
        (status = 200, description = "For the page of an allowed origin", body = WidgetConfigView),
        (status = 401, description = "`invalid_widget_key`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
    ))]
pub async fn widget_config(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<KeyParams>,
) -> ApiResult<Response> {
    let visit = admit(&state, &q.key, &headers, ip).await?;
    let bot = answer::settings_of(&state, &visit.ctx).await?;
    let theme = &visit.key.theme;
    let view = WidgetConfigView {
        title: theme.title.clone(),
        color: theme.color.clone(),
        position: theme.position.to_string(),
        greeting: bot.greeting,
        enabled: bot.enabled,
    };
    Ok(for_page(Json(view).into_response(), &visit.origin))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetMessageRequest {
    pub key: String,
    /// The visitor's anonymous id (8–64 of `A–Z a–z 0–9 - _`), kept by the page.
    pub visitor_id: String,
    /// Continue the visitor's conversation.
    pub conversation_id: Option<Uuid>,
    /// 1–4,000 characters.
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct WidgetCitationView {
    pub index: u32,
    pub title: String,
    pub section: Vec<String>,
    pub page: Option<u32>,
    pub snippet: String,
}

impl From<cortex_core::conversations::Citation> for WidgetCitationView {
    fn from(c: cortex_core::conversations::Citation) -> Self {
        Self {
            index: c.index,
            title: c.title,
            section: c.heading_path,
            page: c.page,
            snippet: c.snippet,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WidgetAnswerView {
    pub conversation_id: Uuid,
    /// The answer's id, for feedback.
    pub message_id: Uuid,
    pub answer: String,
    pub citations: Vec<WidgetCitationView>,
    pub abstained: bool,
    pub handoff_requested: bool,
}

impl From<Answer> for WidgetAnswerView {
    fn from(a: Answer) -> Self {
        let (abstained, handoff_requested) = (a.abstained(), a.handoff_requested());
        Self {
            conversation_id: a.conversation_id.0,
            message_id: a.message_id.0,
            answer: a.text,
            citations: a.citations.into_iter().map(Into::into).collect(),
            abstained,
            handoff_requested,
        }
    }
}

/// A visitor's message
///
/// Streams with `Accept: text/event-stream`: `token` (`{"text"}`) … `citations` → `done` (the
/// answer as in the JSON case) or `error`. Limits: 10 messages a minute per visitor and 30 per
/// address (300 widget requests of any kind), then the plan's rate for the tenant.
#[utoipa::path(post, path = "/widget/v1/messages", tag = "widget",
    request_body(content = WidgetMessageRequest, description = "JSON, sent as `text/plain` or `application/json`"),
    responses(
        (status = 200, description = "The answer (JSON, or an event stream)", body = WidgetAnswerView),
        (status = 401, description = "`invalid_widget_key`", body = ErrorBody),
        (status = 403, description = "`origin_not_allowed`", body = ErrorBody),
        (status = 404, description = "`not_found`: not this visitor's conversation", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
pub async fn widget_message(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let page = origin(&headers).unwrap_or("").to_owned();
    match widget_message_inner(state, ip, &headers, &body).await {
        Ok(r) => r,
        // Errors readable by the page too, when its origin is allowed (the message says why).
        Err((e, allowed)) => {
            let r = e.into_response();
            if allowed { for_page(r, &page) } else { r }
        }
    }
}

async fn widget_message_inner(
    state: AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, (ApiError, bool)> {
    let req: WidgetMessageRequest = parse_json_bytes(body).map_err(|e| (e, false))?;
    let visit = admit(&state, &req.key, headers, ip)
        .await
        .map_err(|e| (e, false))?;
    let fail = |e: ApiError| (e, true);
    widget::check_visitor(&req.visitor_id).map_err(|e| fail(e.into()))?;
    if let Some(id) = req.conversation_id {
        widget::own_conversation(&state, &visit, &req.visitor_id, ConversationId(id))
            .await
            .map_err(|e| fail(e.into()))?;
    }
    widget::visitor_message(&state, &visit.key, &req.visitor_id, ip)
        .await
        .map_err(|e| fail(e.into()))?;
    let question = Question {
        message: req.message,
        conversation_id: req.conversation_id.map(ConversationId),
        channel: Channel::Widget,
        history: Vec::new(),
        customer: Some(Customer {
            connection: None,
            id: req.visitor_id,
        }),
    };
    let Visit { ctx, origin, .. } = visit;
    if !wants_stream(headers) {
        let answer = answer::ask(&state, &ctx, question, None)
            .await
            .map_err(|e| fail(e.into()))?;
        return Ok(for_page(
            Json(WidgetAnswerView::from(answer)).into_response(),
            &origin,
        ));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    stream_answer(
        state,
        ctx,
        question,
        tx,
        |text| json_event("token", serde_json::json!({ "text": text })),
        |result| match result {
            Ok(answer) => {
                let view = WidgetAnswerView::from(answer);
                vec![
                    json_event(
                        "citations",
                        serde_json::json!({ "citations": view.citations }),
                    ),
                    json_event("done", serde_json::to_value(&view).unwrap_or_default()),
                ]
            }
            Err(e) => vec![json_event("error", e.into_body_json())],
        },
    );
    Ok(for_page(sse_response(rx), &origin))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    pub key: String,
    pub visitor_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct WidgetMessageView {
    pub id: Uuid,
    /// `user`, `assistant` or `agent`.
    pub role: String,
    pub text: String,
    pub citations: Vec<WidgetCitationView>,
    /// The visitor's verdict on an answer, if given.
    pub helpful: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct WidgetHistoryView {
    pub conversation_id: Uuid,
    /// Oldest first, the latest 50.
    pub messages: Vec<WidgetMessageView>,
}

/// A visitor's conversation so far
///
/// So that it survives page loads: only the visitor who holds it may read it.
#[utoipa::path(get, path = "/widget/v1/conversations/{id}", tag = "widget",
    params(("id" = Uuid, Path, description = "Conversation id"), HistoryParams),
    responses(
        (status = 200, description = "Its messages", body = WidgetHistoryView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn widget_history(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryParams>,
) -> ApiResult<Response> {
    let visit = admit(&state, &q.key, &headers, ip).await?;
    widget::check_visitor(&q.visitor_id)?;
    let id: ConversationId = path_id(&id)?;
    let (messages, feedback) = widget::history(&state, &visit, &q.visitor_id, id).await?;
    let view = WidgetHistoryView {
        conversation_id: id.0,
        messages: messages
            .into_iter()
            .map(|m| WidgetMessageView {
                id: m.id.0,
                role: m.role.to_string(),
                helpful: feedback
                    .iter()
                    .find(|f| f.message_id == m.id)
                    .map(|f| f.helpful),
                text: m.content,
                citations: m.citations.into_iter().map(Into::into).collect(),
            })
            .collect(),
    };
    Ok(for_page(Json(view).into_response(), &visit.origin))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetFeedbackRequest {
    pub key: String,
    pub visitor_id: String,
    pub conversation_id: Uuid,
    /// The answer rated.
    pub message_id: Uuid,
    pub helpful: bool,
}

/// Helpful / not helpful
///
/// The visitor's verdict on an answer of their conversation (a second one replaces the first).
#[utoipa::path(post, path = "/widget/v1/feedback", tag = "widget",
    request_body(content = WidgetFeedbackRequest, description = "JSON, sent as `text/plain` or `application/json`"),
    responses(
        (status = 204, description = "Recorded"),
        (status = 404, description = "`not_found`: not an answer of this visitor's conversation", body = ErrorBody),
    ))]
pub async fn widget_feedback(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req: WidgetFeedbackRequest = parse_json_bytes(&body)?;
    let visit = admit(&state, &req.key, &headers, ip).await?;
    widget::check_visitor(&req.visitor_id)?;
    let conversation = ConversationId(req.conversation_id);
    widget::feedback(
        &state,
        &visit,
        &req.visitor_id,
        conversation,
        MessageId(req.message_id),
        req.helpful,
    )
    .await?;
    Ok(for_page(
        StatusCode::NO_CONTENT.into_response(),
        &visit.origin,
    ))
}
