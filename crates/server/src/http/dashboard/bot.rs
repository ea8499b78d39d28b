//! The bot: every setting of `GET/PUT /api/v1/bot` with the domain's validation message next
//! to its field, and a test console that streams an answer and shows what it rests on (its
//! sources with their scores, confidence, whether it abstained, the model, tokens, latency).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cortex_core::answer::BotSettings;
use cortex_core::conversations::Channel;
use cortex_core::ids::ConversationId;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::forms::sentence;
use super::pages::{Chrome, error_page, page_with_status};
use super::session::{Member, PageForm};
use crate::answer::{self, AnswerError, BotView, Question};
use crate::app::AppState;
use crate::http::api::chat::{ChatView, json_event, sse_response, stream_answer, wants_stream};
use crate::http::error::ApiError;
use crate::tenancy::{Action, TenancyError};

/// The settings form's values as typed (numbers stay text until they parse).
#[derive(Deserialize, Default, Clone)]
pub struct BotForm {
    enabled: Option<String>,
    model: Option<String>,
    temperature: String,
    max_answer_tokens: String,
    top_k: String,
    system_prompt: String,
    greeting: String,
    fallback_message: String,
    answer_in_customer_language: Option<String>,
    abstention_threshold: String,
}

impl BotForm {
    fn of(s: &BotSettings) -> Self {
        Self {
            enabled: s.enabled.then(|| "on".into()),
            model: Some(s.model.clone().unwrap_or_default()),
            temperature: s.temperature.to_string(),
            max_answer_tokens: s.max_answer_tokens.to_string(),
            top_k: s.top_k.to_string(),
            system_prompt: s.system_prompt.clone(),
            greeting: s.greeting.clone(),
            fallback_message: s.fallback_message.clone(),
            answer_in_customer_language: s.answer_in_customer_language.then(|| "on".into()),
            abstention_threshold: s.abstention_threshold.to_string(),
        }
    }

    /// The settings, or the first field that is not a number.
    fn settings(&self) -> Result<BotSettings, (&'static str, String)> {
        fn number<T: std::str::FromStr>(
            field: &'static str,
            raw: &str,
        ) -> Result<T, (&'static str, String)> {
            raw.trim()
                .parse()
                .map_err(|_| (field, "must be a number".to_owned()))
        }
        Ok(BotSettings {
            enabled: self.enabled.is_some(),
            model: self.model.clone().filter(|m| !m.is_empty()),
            temperature: number("temperature", &self.temperature)?,
            max_answer_tokens: number("max_answer_tokens", &self.max_answer_tokens)?,
            top_k: number("top_k", &self.top_k)?,
            system_prompt: self.system_prompt.clone(),
            greeting: self.greeting.clone(),
            fallback_message: self.fallback_message.clone(),
            answer_in_customer_language: self.answer_in_customer_language.is_some(),
            abstention_threshold: number("abstention_threshold", &self.abstention_threshold)?,
        })
    }
}

/// One field of the settings form with its value and the error that names it.
pub struct SettingField {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub step: &'static str,
    pub value: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "bot.html")]
struct BotPage {
    chrome: Chrome,
    form: BotForm,
    numbers: Vec<SettingField>,
    texts: Vec<SettingField>,
    models: Vec<(String, bool)>,
    default_chain: String,
    can_manage: bool,
    notice: String,
    error: String,
    /// (field, message) of the field the error names.
    field_error: (String, String),
    console: Option<ConsoleResult>,
}

impl BotPage {
    /// The error message of `field`, if it is the one refused.
    fn error_of(&self, field: &str) -> &str {
        if self.field_error.0 == field {
            &self.field_error.1
        } else {
            ""
        }
    }
}

/// An answer of the console, as shown without the page's script.
pub struct ConsoleResult {
    pub question: String,
    pub view: ChatView,
}

fn models(view: &BotView, chosen: Option<&str>) -> Vec<(String, bool)> {
    view.available_models
        .iter()
        .map(|m| (m.clone(), chosen == Some(m.as_str())))
        .collect()
}

async fn render(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    form: Option<BotForm>,
    notice: String,
    failure: Option<(String, String)>,
    console: Option<ConsoleResult>,
) -> Response {
    let view = match answer::get_bot(state, &member.ctx).await {
        Ok(v) => v,
        Err(e) => return error_page(e.into()),
    };
    let form = form.unwrap_or_else(|| BotForm::of(&view.settings));
    let (error, field_error) = match failure {
        Some((field, message)) => (
            format!("{}: {}.", label(&field), message.trim_end_matches('.')),
            (field, sentence(&message)),
        ),
        None => (String::new(), (String::new(), String::new())),
    };
    let field = |name: &'static str, step: &'static str, value: &str| SettingField {
        name,
        label: label(name),
        hint: hint(name),
        step,
        value: value.to_owned(),
        error: if field_error.0 == name {
            field_error.1.clone()
        } else {
            String::new()
        },
    };
    let numbers = vec![
        field("temperature", "0.05", &form.temperature),
        field("max_answer_tokens", "1", &form.max_answer_tokens),
        field("top_k", "1", &form.top_k),
        field("abstention_threshold", "0.01", &form.abstention_threshold),
    ];
    let texts = vec![
        field("system_prompt", "", &form.system_prompt),
        field("greeting", "", &form.greeting),
        field("fallback_message", "", &form.fallback_message),
    ];
    page_with_status(
        status,
        &BotPage {
            chrome: Chrome::member(member, "/bot"),
            numbers,
            texts,
            models: models(&view, form.model.as_deref()),
            default_chain: if view.chain.is_empty() {
                "are quoted from your documents (no language model is set up)".into()
            } else {
                format!("are written by {}", view.chain.join(", then "))
            },
            form,
            can_manage: member.ctx.require(Action::ManageBot).is_ok(),
            notice,
            error,
            field_error,
            console,
        },
    )
}

fn hint(field: &str) -> &'static str {
    match field {
        "temperature" => "0 to 1: higher varies the wording more.",
        "max_answer_tokens" => "16 to 4,096.",
        "top_k" => "3 to 10 passages are read for each question.",
        "abstention_threshold" => {
            "0 to 1: below this relevance of the best source the bot says it does not know. Higher is stricter."
        }
        "system_prompt" => {
            "Up to 2,000 characters, e.g. your tone or what to recommend. They come after the platform's own rules and cannot lift them."
        }
        "greeting" => "Said when a conversation opens and to a hello.",
        "fallback_message" => "Said instead of guessing.",
        _ => "",
    }
}

/// A field's label, for the field and the summary above the form.
fn label(field: &str) -> &'static str {
    match field {
        "model" => "Model",
        "temperature" => "Temperature",
        "max_answer_tokens" => "Longest answer (tokens)",
        "top_k" => "Sources per question",
        "system_prompt" => "Instructions",
        "greeting" => "Greeting",
        "fallback_message" => "When the documents do not answer",
        "abstention_threshold" => "Abstention threshold",
        _ => "A field",
    }
}

#[derive(Deserialize, Default)]
pub struct BotQuery {
    saved: Option<String>,
}

pub async fn bot_page(
    State(state): State<AppState>,
    member: Member,
    axum::extract::Query(q): axum::extract::Query<BotQuery>,
) -> Response {
    let notice = if q.saved.is_some() {
        "The bot settings are saved."
    } else {
        ""
    };
    render(
        &state,
        &member,
        StatusCode::OK,
        None,
        notice.into(),
        None,
        None,
    )
    .await
}

pub async fn save(
    State(state): State<AppState>,
    member: Member,
    PageForm(form): PageForm<BotForm>,
) -> Response {
    let settings = match form.settings() {
        Ok(s) => s,
        Err((field, message)) => {
            return render(
                &state,
                &member,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(form),
                String::new(),
                Some((field.into(), message)),
                None,
            )
            .await;
        }
    };
    match answer::put_bot(&state, &member.ctx, settings).await {
        Ok(_) => Redirect::to("/bot?saved=1").into_response(),
        Err(AnswerError::Tenancy(TenancyError::Validation { field, message })) => {
            render(
                &state,
                &member,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(form),
                String::new(),
                Some((field.into(), message)),
                None,
            )
            .await
        }
        Err(e) => error_page(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ConsoleForm {
    message: String,
    conversation_id: Option<String>,
}

/// `POST /bot/console`: the test console's question, answered as the API answers a member
/// (a dashboard conversation). The page's script asks for server-sent events (`token`,
/// `citations`, `done` with the whole answer, or `error`); without it the page comes back
/// with the answer.
pub async fn console(
    State(state): State<AppState>,
    member: Member,
    headers: HeaderMap,
    PageForm(f): PageForm<ConsoleForm>,
) -> Response {
    let question = Question {
        message: f.message.clone(),
        conversation_id: f
            .conversation_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .and_then(|c| c.parse().ok())
            .map(ConversationId),
        channel: Channel::Dashboard,
        history: Vec::new(),
        customer: None,
    };
    if wants_stream(&headers) {
        let (tx, rx) = mpsc::unbounded_channel();
        stream_answer(
            state,
            member.ctx,
            question,
            tx,
            |text| json_event("token", json!({ "text": text })),
            |result| match result {
                Ok(answer) => {
                    let view = ChatView::from(answer);
                    vec![json_event(
                        "done",
                        serde_json::to_value(&view).unwrap_or_default(),
                    )]
                }
                Err(e) => vec![json_event("error", e.into_body_json())],
            },
        );
        return sse_response(rx);
    }
    match answer::ask(&state, &member.ctx, question, None).await {
        Ok(a) => {
            let console = ConsoleResult {
                question: f.message,
                view: ChatView::from(a),
            };
            render(
                &state,
                &member,
                StatusCode::OK,
                None,
                String::new(),
                None,
                Some(console),
            )
            .await
        }
        Err(e) => {
            let e = ApiError::from(e);
            let status = e.status;
            render(
                &state,
                &member,
                status,
                None,
                String::new(),
                Some(("message".into(), e.message)),
                None,
            )
            .await
        }
    }
}
