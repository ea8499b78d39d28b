//! Conversations: every channel's conversations with filters (channel, last active from / to,
//! handed off, abstained), paged by their last activity, and one conversation's thread with
//! each answer's sources, confidence, model and latency, and the customer's verdict. Taking
//! over and replying come with the inbox.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::Utc;
use cortex_core::conversations::{
    Channel, ConversationFilter, ConversationStatus, ConversationSummary, MessageRole,
};
use cortex_core::ids::ConversationId;
use serde::Deserialize;

use super::forms::{next_page_query, utc_day};
use super::pages::{Chrome, error_page, page};
use super::session::Member;
use crate::app::AppState;
use crate::conversations;
use crate::http::api::conversations::{cursor, parse_cursor};
use crate::http::error::ApiError;

const PAGE: u32 = 50;

/// The channels a filter offers, with their names.
const CHANNELS: [(Channel, &str); 9] = [
    (Channel::Widget, "Web widget"),
    (Channel::WhatsApp, "WhatsApp"),
    (Channel::Messenger, "Messenger"),
    (Channel::Instagram, "Instagram"),
    (Channel::ManyChat, "ManyChat"),
    (Channel::Email, "Email"),
    (Channel::Api, "API"),
    (Channel::OpenAi, "OpenAI-compatible API"),
    (Channel::Dashboard, "Test console"),
];

fn channel_name(c: Channel) -> &'static str {
    CHANNELS
        .iter()
        .find(|(k, _)| *k == c)
        .map_or("Other", |(_, n)| n)
}

fn status_name(s: ConversationStatus) -> &'static str {
    match s {
        ConversationStatus::Bot => "Bot",
        ConversationStatus::HandedOff => "Handed off",
        ConversationStatus::Resolved => "Resolved",
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    channel: Option<String>,
    handed_off: Option<String>,
    abstained: Option<String>,
    from: Option<String>,
    until: Option<String>,
    before: Option<String>,
}

pub struct Row {
    pub id: String,
    pub channel: &'static str,
    pub via: String,
    pub status: &'static str,
    pub status_key: &'static str,
    pub messages: u32,
    pub last: String,
    pub active: String,
}

impl From<&ConversationSummary> for Row {
    fn from(s: &ConversationSummary) -> Self {
        let c = &s.conversation;
        Self {
            id: c.id.to_string(),
            channel: channel_name(c.channel),
            via: s.connection_name.clone().unwrap_or_default(),
            status: status_name(c.status),
            status_key: c.status.as_str(),
            messages: s.message_count,
            last: s
                .last_message
                .as_ref()
                .map(|(role, text)| {
                    let who = match role {
                        MessageRole::User => "Customer",
                        MessageRole::Assistant => "Bot",
                        MessageRole::Agent => "Agent",
                    };
                    format!("{who}: {text}")
                })
                .unwrap_or_default(),
            active: c.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "conversations.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<Row>,
    channels: Vec<(&'static str, &'static str, bool)>,
    handed_off: bool,
    abstained: bool,
    from: String,
    until: String,
    filtered: bool,
    next: Option<String>,
}

fn day(raw: Option<&str>, field: &'static str) -> Result<Option<chrono::DateTime<Utc>>, ApiError> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(r) => utc_day(r)
            .map(Some)
            .ok_or_else(|| ApiError::validation(field, "is not a date (YYYY-MM-DD)")),
    }
}

pub async fn list(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<ListQuery>,
) -> Response {
    let channel = q
        .channel
        .as_deref()
        .filter(|c| !c.is_empty())
        .and_then(|c| c.parse::<Channel>().ok());
    let (from, until) = match (
        day(q.from.as_deref(), "from"),
        day(q.until.as_deref(), "until"),
    ) {
        (Ok(f), Ok(u)) => (f, u),
        (Err(e), _) | (_, Err(e)) => return error_page(e),
    };
    let filter = ConversationFilter {
        channel,
        status: None,
        handed_off: q.handed_off.is_some(),
        before: q.before.as_deref().and_then(parse_cursor),
        // "Until" a day includes that day.
        active_from: from,
        active_until: until.map(|u| u + chrono::Duration::days(1)),
        abstained: q.abstained.is_some(),
        limit: PAGE,
    };
    let rows = match conversations::list(&state, &member.ctx, &filter).await {
        Ok(r) => r,
        Err(e) => return error_page(e.into()),
    };
    let next = (rows.len() == PAGE as usize)
        .then(|| rows.last())
        .flatten()
        .map(|s| {
            next_page_query(
                cursor(&s.conversation),
                &[
                    ("channel", q.channel.as_deref()),
                    ("from", q.from.as_deref()),
                    ("until", q.until.as_deref()),
                    ("handed_off", q.handed_off.is_some().then_some("on")),
                    ("abstained", q.abstained.is_some().then_some("on")),
                ],
            )
        });
    page(&ListPage {
        chrome: Chrome::member(&member, "/conversations"),
        rows: rows.iter().map(Row::from).collect(),
        channels: CHANNELS
            .iter()
            .map(|(c, n)| (c.as_str(), *n, Some(*c) == channel))
            .collect(),
        handed_off: q.handed_off.is_some(),
        abstained: q.abstained.is_some(),
        filtered: channel.is_some()
            || q.handed_off.is_some()
            || q.abstained.is_some()
            || from.is_some()
            || until.is_some(),
        from: q.from.unwrap_or_default(),
        until: q.until.unwrap_or_default(),
        next,
    })
}

pub struct SourceRow {
    pub index: u32,
    pub title: String,
    pub section: String,
    pub score: String,
}

pub struct MessageRow {
    pub who: &'static str,
    pub role: &'static str,
    pub text: String,
    pub at: String,
    pub facts: Vec<(&'static str, String)>,
    pub sources: Vec<SourceRow>,
    pub verdict: &'static str,
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ThreadPage {
    chrome: Chrome,
    title: String,
    facts: Vec<(&'static str, String)>,
    messages: Vec<MessageRow>,
}

pub async fn thread(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<ConversationId>() else {
        return error_page(ApiError::not_found());
    };
    let detail = match conversations::get(&state, &member.ctx, id).await {
        Ok(d) => d,
        Err(e) => return error_page(e.into()),
    };
    let c = &detail.conversation;
    let mut facts = vec![
        ("Channel", channel_name(c.channel).to_owned()),
        ("Status", status_name(c.status).to_owned()),
        (
            "Started",
            c.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        (
            "Last active",
            c.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
    ];
    if let Some(name) = &detail.connection_name {
        facts.insert(1, ("Through", name.clone()));
    }
    let messages = detail
        .messages
        .iter()
        .map(|m| {
            let answer = m.role == MessageRole::Assistant;
            let mut facts = Vec::new();
            if answer {
                if let Some(conf) = m.confidence {
                    facts.push(("Confidence", format!("{conf:.2}")));
                }
                facts.push((
                    "Abstained",
                    if m.abstained {
                        "Yes".into()
                    } else {
                        "No".into()
                    },
                ));
                if let Some(model) = &m.model {
                    facts.push(("Model", model.clone()));
                }
                facts.push(("Latency", format!("{} ms", m.latency_ms)));
            }
            MessageRow {
                who: match m.role {
                    MessageRole::User => "Customer",
                    MessageRole::Assistant => "Bot",
                    MessageRole::Agent => "Agent",
                },
                role: m.role.as_str(),
                text: m.content.clone(),
                at: m.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                facts,
                sources: m
                    .citations
                    .iter()
                    .map(|s| SourceRow {
                        index: s.index,
                        title: s.title.clone(),
                        section: s.heading_path.join(" › "),
                        score: format!("{:.3}", s.score),
                    })
                    .collect(),
                verdict: match detail.feedback.iter().find(|f| f.message_id == m.id) {
                    Some(f) if f.helpful => "The customer found this helpful",
                    Some(_) => "The customer found this unhelpful",
                    None => "",
                },
            }
        })
        .collect();
    page(&ThreadPage {
        chrome: Chrome::member(&member, "/conversations"),
        title: format!("{} conversation", channel_name(c.channel)),
        facts,
        messages,
    })
}
