//! The bot over HTTP: `/api/v1/chat` (JSON, or server-sent events with
//! `Accept: text/event-stream`), the bot settings at `/api/v1/bot`, and the OpenAI-compatible
//! `/v1/chat/completions` so any OpenAI SDK or chat UI can talk to a tenant's bot.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use cortex_core::answer::BotSettings;
use cortex_core::conversations::{Channel, Citation, MessageRole};
use cortex_core::ids::ConversationId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::answer::{self, Answer, AnswerUsage, BotView, Question};
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Auth};
use crate::tenancy::TenantCtx;

// ----- views ---------------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct CitationView {
    /// The number the answer's text cites (`[1]`).
    pub index: u32,
    pub document_id: Uuid,
    pub chunk_id: Uuid,
    pub title: String,
    /// Headings above the passage, outermost first.
    pub section: Vec<String>,
    pub page: Option<u32>,
    pub snippet: String,
    /// Relevance of the passage to the question (cosine similarity when known).
    pub score: f32,
}

impl From<Citation> for CitationView {
    fn from(c: Citation) -> Self {
        Self {
            index: c.index,
            document_id: c.document_id.0,
            chunk_id: c.chunk_id.0,
            title: c.title,
            section: c.heading_path,
            page: c.page,
            snippet: c.snippet,
            score: c.score,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UsageView {
    pub embedding_tokens: u32,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl From<AnswerUsage> for UsageView {
    fn from(u: AnswerUsage) -> Self {
        Self {
            embedding_tokens: u.embedding_tokens,
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChatView {
    pub conversation_id: Uuid,
    pub message_id: Uuid,
    /// `answer`, `greeting`, `small_talk` or `handoff`.
    pub kind: String,
    /// The reply, citing its sources as `[n]`.
    pub answer: String,
    pub citations: Vec<CitationView>,
    /// 0–1: how relevant the sources were and how much of the answer they support.
    pub confidence: f32,
    /// The sources did not answer the question; the reply is the tenant's fallback message.
    pub abstained: bool,
    /// The conversation was passed to the inbox (the customer asked for a person, or the bot
    /// abstained).
    pub handoff_requested: bool,
    /// The model that wrote the answer; `extractive` when quoted from the sources, `none`
    /// for replies made without retrieval.
    pub model: String,
    pub usage: UsageView,
    pub latency_ms: u32,
}

impl From<Answer> for ChatView {
    fn from(a: Answer) -> Self {
        let (abstained, handoff_requested) = (a.abstained(), a.handoff_requested());
        Self {
            conversation_id: a.conversation_id.0,
            message_id: a.message_id.0,
            kind: a.kind.as_str().to_owned(),
            answer: a.text,
            citations: a.citations.into_iter().map(Into::into).collect(),
            confidence: a.confidence,
            abstained,
            handoff_requested,
            model: a.model,
            usage: a.usage.into(),
            latency_ms: a.latency_ms,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// The customer's message, 1–4,000 characters.
    #[schema(min_length = 1, max_length = 4000)]
    pub message: String,
    /// Continue this conversation; omit to open a new one.
    pub conversation_id: Option<Uuid>,
}

/// Whether the client asked for server-sent events.
pub(crate) fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// Runs the answer in a task that feeds `tx`: each piece of text via `on_delta`, then
/// whatever `finish` makes of the result.
pub(crate) fn stream_answer<T: Send + 'static>(
    state: AppState,
    ctx: TenantCtx,
    question: Question,
    tx: mpsc::UnboundedSender<T>,
    delta: impl Fn(&str) -> T + Send + Sync + 'static,
    finish: impl FnOnce(Result<Answer, ApiError>) -> Vec<T> + Send + 'static,
) {
    // The task ends with the answer (the model calls are bounded by their timeouts); a client
    // that leaves early still gets its turn stored.
    let request_id = crate::http::error::current_request_id();
    tokio::spawn(
        crate::http::error::REQUEST_ID.scope(request_id, async move {
            let sink_tx = tx.clone();
            let sink = move |text: &str| {
                let _ = sink_tx.send(delta(text));
            };
            let result = answer::ask(&state, &ctx, question, Some(&sink))
                .await
                .map_err(ApiError::from);
            for item in finish(result) {
                let _ = tx.send(item);
            }
        }),
    );
}

pub(crate) fn sse_response(rx: mpsc::UnboundedReceiver<Event>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

pub(crate) fn json_event(name: &str, value: serde_json::Value) -> Event {
    Event::default().event(name).data(value.to_string())
}

/// Ask the bot
///
/// With `Accept: text/event-stream` the answer streams as server-sent events: `token`
/// (`{"text"}`, a piece of the answer), `citations` (`{"citations": [...]}`), then `done`
/// (the whole response as in the JSON case, whose `answer` is authoritative); or `error`
/// (`{"error": {"code", "message"}}`). API keys need the `chat` scope.
#[utoipa::path(post, path = "/api/v1/chat", tag = "chat", security(("bearer" = [])),
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The answer (JSON, or an event stream)", body = ChatView),
        (status = 404, description = "`not_found`: no such conversation", body = ErrorBody),
        (status = 409, description = "`bot_disabled`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the plan's requests per minute", body = ErrorBody),
    ))]
pub async fn chat(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatRequest>,
) -> ApiResult<Response> {
    let channel = match ctx.caller() {
        crate::tenancy::Caller::User(_) => Channel::Dashboard,
        _ => Channel::Api,
    };
    let question = Question {
        message: req.message,
        conversation_id: req.conversation_id.map(ConversationId),
        channel,
        history: Vec::new(),
        customer: None,
    };
    if !wants_stream(&headers) {
        let answer = answer::ask(&state, &ctx, question, None).await?;
        return Ok(Json(ChatView::from(answer)).into_response());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    stream_answer(
        state,
        ctx,
        question,
        tx,
        |text| json_event("token", json!({ "text": text })),
        |result| match result {
            Ok(answer) => {
                let view = ChatView::from(answer);
                vec![
                    json_event("citations", json!({ "citations": view.citations })),
                    json_event("done", serde_json::to_value(&view).unwrap_or_default()),
                ]
            }
            Err(e) => vec![json_event("error", e.into_body_json())],
        },
    );
    Ok(sse_response(rx))
}

// ----- bot settings --------------------------------------------------------------------------

#[derive(Serialize, ToSchema)]
pub struct BotSettingsView {
    pub enabled: bool,
    /// A model id of `available_models`, or null for the plan's default chain.
    pub model: Option<String>,
    pub temperature: f32,
    pub max_answer_tokens: u32,
    pub top_k: u32,
    pub system_prompt: String,
    pub greeting: String,
    pub fallback_message: String,
    pub answer_in_customer_language: bool,
    pub abstention_threshold: f32,
    /// What the tenant's plan offers (`extractive` quotes the sources without a model).
    pub available_models: Vec<String>,
    /// The models that answer now, in fallback order; empty means extractive answers.
    pub model_chain: Vec<String>,
}

impl From<BotView> for BotSettingsView {
    fn from(v: BotView) -> Self {
        let s = v.settings;
        Self {
            enabled: s.enabled,
            model: s.model,
            temperature: s.temperature,
            max_answer_tokens: s.max_answer_tokens,
            top_k: s.top_k,
            system_prompt: s.system_prompt,
            greeting: s.greeting,
            fallback_message: s.fallback_message,
            answer_in_customer_language: s.answer_in_customer_language,
            abstention_threshold: s.abstention_threshold,
            available_models: v.available_models,
            model_chain: v.chain,
        }
    }
}

/// Every field; omitted ones take their defaults.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotSettingsRequest {
    pub enabled: Option<bool>,
    pub model: Option<String>,
    /// 0–1.
    pub temperature: Option<f32>,
    /// 16–4,096.
    pub max_answer_tokens: Option<u32>,
    /// 3–10.
    pub top_k: Option<u32>,
    /// Up to 2,000 characters.
    pub system_prompt: Option<String>,
    pub greeting: Option<String>,
    pub fallback_message: Option<String>,
    pub answer_in_customer_language: Option<bool>,
    /// 0–1; the best source's relevance below which the bot says it does not know.
    pub abstention_threshold: Option<f32>,
}

impl From<BotSettingsRequest> for BotSettings {
    fn from(r: BotSettingsRequest) -> Self {
        let d = BotSettings::default();
        Self {
            enabled: r.enabled.unwrap_or(d.enabled),
            model: r.model,
            temperature: r.temperature.unwrap_or(d.temperature),
            max_answer_tokens: r.max_answer_tokens.unwrap_or(d.max_answer_tokens),
            top_k: r.top_k.unwrap_or(d.top_k),
            system_prompt: r.system_prompt.unwrap_or(d.system_prompt),
            greeting: r.greeting.unwrap_or(d.greeting),
            fallback_message: r.fallback_message.unwrap_or(d.fallback_message),
            answer_in_customer_language: r
                .answer_in_customer_language
                .unwrap_or(d.answer_in_customer_language),
            abstention_threshold: r.abstention_threshold.unwrap_or(d.abstention_threshold),
        }
    }
}

/// Read the bot settings
#[utoipa::path(get, path = "/api/v1/bot", tag = "chat", security(("bearer" = [])),
    responses((status = 200, description = "The settings and the plan's models", body = BotSettingsView)))]
pub async fn get_bot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<BotSettingsView>> {
    Ok(Json(answer::get_bot(&state, &ctx).await?.into()))
}

/// Replace the bot settings
///
/// Owners and admins.
#[utoipa::path(put, path = "/api/v1/bot", tag = "chat", security(("bearer" = [])),
    request_body = BotSettingsRequest,
    responses(
        (status = 200, description = "Saved", body = BotSettingsView),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
pub async fn put_bot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<BotSettingsRequest>,
) -> ApiResult<Json<BotSettingsView>> {
    Ok(Json(
        answer::put_bot(&state, &ctx, req.into()).await?.into(),
    ))
}

// ----- OpenAI-compatible ---------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
pub struct CompletionMessage {
    /// `system`, `user`, `assistant` (others are ignored).
    pub role: String,
    /// Text, or an array of content parts of which the `text` ones are read.
    #[schema(value_type = Object)]
    pub content: Option<serde_json::Value>,
}

/// The Chat Completions request. `model`, `temperature` and the like are accepted and
/// ignored: the tenant's bot settings decide.
#[derive(Deserialize, ToSchema)]
pub struct CompletionRequest {
    pub messages: Vec<CompletionMessage>,
    #[serde(default)]
    pub stream: bool,
    pub model: Option<String>,
    /// Continue a stored conversation (an extension; OpenAI clients send the history instead).
    pub conversation_id: Option<Uuid>,
}

fn content_text(v: &Option<serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(|t| t.as_str()) == Some("text"))
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn completion_id(a: &Answer) -> String {
    format!("chatcmpl-{}", a.message_id.0.simple())
}

/// The references appended to the text, for clients that show only the text.
fn references(citations: &[Citation]) -> String {
    if citations.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n\nSources:");
    for c in citations {
        out.push_str(&format!("\n[{}] {}", c.index, c.title));
        if !c.heading_path.is_empty() {
            out.push_str(&format!(" — {}", c.heading_path.join(" > ")));
        }
        if let Some(p) = c.page {
            out.push_str(&format!(", page {p}"));
        }
    }
    out
}

fn cortex_extension(a: &Answer) -> serde_json::Value {
    json!({
        "conversation_id": a.conversation_id.0,
        "kind": a.kind.as_str(),
        "citations": a.citations.iter().cloned().map(CitationView::from).collect::<Vec<_>>(),
        "confidence": a.confidence,
        "abstained": a.abstained(),
        "handoff_requested": a.handoff_requested(),
        "model": a.model,
    })
}

fn usage_json(a: &Answer) -> serde_json::Value {
    json!({
        "prompt_tokens": a.usage.prompt_tokens,
        "completion_tokens": a.usage.completion_tokens,
        "total_tokens": a.usage.prompt_tokens + a.usage.completion_tokens,
    })
}

/// OpenAI-compatible chat completions
///
/// Authenticated by a tenant API key with the `chat` scope (`Authorization: Bearer ck_…`).
/// The last `user` message is the question; earlier `user`/`assistant` messages are the
/// history (`system` messages are ignored: the tenant's bot settings decide). Citations
/// travel as `[n]` in the text, as a "Sources:" list after it, and in the `cortexlayer` field.
/// With `stream: true` the answer comes as `chat.completion.chunk` events, then `[DONE]`.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "chat", security(("bearer" = [])),
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "A `chat.completion` (or its chunks as server-sent events)", body = Object),
        (status = 403, description = "`forbidden`: not an API key with the `chat` scope", body = ErrorBody),
        (status = 422, description = "`validation_failed`: no user message", body = ErrorBody),
    ))]
pub async fn chat_completions(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> ApiResult<Response> {
    ctx.require(crate::tenancy::Action::ChatCompletions)?;
    let mut turns: Vec<(MessageRole, String)> = req
        .messages
        .iter()
        .filter_map(|m| {
            let role = match m.role.as_str() {
                "user" => MessageRole::User,
                "assistant" => MessageRole::Assistant,
                _ => return None,
            };
            Some((role, content_text(&m.content)))
        })
        .collect();
    let message = match turns.pop() {
        Some((MessageRole::User, text)) => text,
        _ => {
            return Err(ApiError::validation(
                "messages",
                "the last user or assistant message must be the user's",
            ));
        }
    };
    let model_name = req.model.clone().unwrap_or_else(|| "cortexlayer".into());
    let question = Question {
        message,
        conversation_id: req.conversation_id.map(ConversationId),
        channel: Channel::OpenAi,
        history: turns,
        customer: None,
    };
    if !req.stream {
        let a = answer::ask(&state, &ctx, question, None).await?;
        let body = json!({
            "id": completion_id(&a),
            "object": "chat.completion",
            "created": chrono::Utc::now().timestamp(),
            "model": model_name,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": format!("{}{}", a.text, references(&a.citations)) },
                "finish_reason": "stop",
            }],
            "usage": usage_json(&a),
            "cortexlayer": cortex_extension(&a),
        });
        return Ok(Json(body).into_response());
    }
    let (tx, rx) = mpsc::unbounded_channel::<Event>();
    let id = format!("chatcmpl-{}", Uuid::now_v7().simple());
    let created = chrono::Utc::now().timestamp();
    let chunk = move |delta: serde_json::Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model_name,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        })
    };
    let first = chunk.clone();
    let _ = tx.send(
        Event::default()
            .data(first(json!({ "role": "assistant", "content": "" }), None).to_string()),
    );
    let piece = chunk.clone();
    stream_answer(
        state,
        ctx,
        question,
        tx,
        move |text| Event::default().data(piece(json!({ "content": text }), None).to_string()),
        move |result| match result {
            Ok(a) => {
                let mut last = chunk(json!({ "content": references(&a.citations) }), Some("stop"));
                last["usage"] = usage_json(&a);
                last["cortexlayer"] = cortex_extension(&a);
                vec![
                    Event::default().data(last.to_string()),
                    Event::default().data("[DONE]"),
                ]
            }
            Err(e) => vec![
                Event::default().data(json!({ "error": e.into_body_json()["error"] }).to_string()),
            ],
        },
    );
    Ok(sse_response(rx))
}
