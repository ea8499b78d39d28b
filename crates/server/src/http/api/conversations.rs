//! `/api/v1/conversations`: every channel's conversations in one list (the channel marked on
//! each), and one conversation with its messages — for the tenant's team.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, TimeZone, Utc};
use cortex_core::conversations::{
    Channel, Conversation, ConversationFilter, ConversationStatus, ConversationSummary, Message,
};
use cortex_core::ids::ConversationId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::chat::CitationView;
use crate::app::AppState;
use crate::conversations;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{ApiQuery, Auth, path_id};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConversationParams {
    /// Only this channel: `widget`, `api`, `whatsapp`, `messenger`, `instagram`, `manychat`,
    /// `openai`, `dashboard`, `email`.
    pub channel: Option<String>,
    /// Only this status: `bot`, `handed_off`, `resolved`.
    pub status: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The previous page's `next_before`.
    pub before: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LastMessageView {
    /// `user`, `assistant` or `agent`.
    pub role: String,
    /// Its first 200 characters.
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationView {
    pub id: Uuid,
    /// Where it takes place.
    pub channel: String,
    /// `bot`, `handed_off` or `resolved`.
    pub status: String,
    /// The channel connection it came through, with its name.
    pub connection_id: Option<Uuid>,
    pub connection_name: Option<String>,
    /// The customer's id on the channel (a phone number, a page-scoped id, a subscriber id).
    pub customer: Option<String>,
    pub message_count: u32,
    pub last_message: Option<LastMessageView>,
    pub created_at: DateTime<Utc>,
    /// The last activity.
    pub updated_at: DateTime<Utc>,
}

impl ConversationView {
    fn new(c: Conversation, connection_name: Option<String>) -> Self {
        Self {
            id: c.id.0,
            channel: c.channel.to_string(),
            status: c.status.to_string(),
            connection_id: c.connection_id.map(|id| id.0),
            connection_name,
            customer: c.customer,
            message_count: 0,
            last_message: None,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

impl From<ConversationSummary> for ConversationView {
    fn from(s: ConversationSummary) -> Self {
        Self {
            message_count: s.message_count,
            last_message: s.last_message.map(|(role, text)| LastMessageView {
                role: role.to_string(),
                text,
            }),
            ..Self::new(s.conversation, s.connection_name)
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConversationsView {
    pub data: Vec<ConversationView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    /// `user`, `assistant` or `agent`.
    pub role: String,
    pub text: String,
    pub citations: Vec<CitationView>,
    /// Answers: 0–1.
    pub confidence: Option<f32>,
    pub abstained: bool,
    pub model: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        Self {
            id: m.id.0,
            role: m.role.to_string(),
            text: m.content,
            citations: m.citations.into_iter().map(Into::into).collect(),
            confidence: m.confidence,
            abstained: m.abstained,
            model: m.model,
            created_at: m.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConversationDetailView {
    #[serde(flatten)]
    pub conversation: ConversationView,
    /// Oldest first; the latest 200.
    pub messages: Vec<MessageView>,
}

/// `<updated_at in µs>_<id>`: where a page ends (stores keep at most microseconds).
pub(crate) fn cursor(c: &Conversation) -> String {
    format!("{}_{}", c.updated_at.timestamp_micros(), c.id)
}

pub(crate) fn parse_cursor(raw: &str) -> Option<(DateTime<Utc>, ConversationId)> {
    let (micros, id) = raw.split_once('_')?;
    let at = Utc.timestamp_micros(micros.parse().ok()?).single()?;
    Some((at, id.parse().ok()?))
}

/// Conversations on every channel
///
/// Team members (agents, admins, owners). Latest activity first, the channel marked on each;
/// filter by `channel` and `status`; page with `before`.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", security(("bearer" = [])),
    params(ConversationParams),
    responses(
        (status = 200, description = "One page", body = ConversationsView),
        (status = 403, description = "`forbidden` for API keys without `conversations:read`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: an unknown channel or status, a bad cursor", body = ErrorBody),
    ))]
pub async fn list_conversations(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiQuery(q): ApiQuery<ConversationParams>,
) -> ApiResult<Json<ConversationsView>> {
    // Before the parameters: a refused caller learns nothing from their validation.
    ctx.require(crate::tenancy::Action::ReadConversations)?;
    let channel = q
        .channel
        .as_deref()
        .map(|c| {
            c.parse::<Channel>()
                .map_err(|_| ApiError::validation("channel", "is not a channel"))
        })
        .transpose()?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<ConversationStatus>()
                .map_err(|_| ApiError::validation("status", "must be bot, handed_off or resolved"))
        })
        .transpose()?;
    let before = q
        .before
        .as_deref()
        .map(|b| {
            parse_cursor(b)
                .ok_or_else(|| ApiError::validation("before", "is not a cursor from this list"))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(50);
    let rows = conversations::list(
        &state,
        &ctx,
        &ConversationFilter {
            channel,
            status,
            before,
            limit,
            ..ConversationFilter::default()
        },
    )
    .await?;
    let next_before = (rows.len() == limit as usize)
        .then(|| rows.last().map(|s| cursor(&s.conversation)))
        .flatten();
    Ok(Json(ConversationsView {
        data: rows.into_iter().map(Into::into).collect(),
        next_before,
    }))
}

/// One conversation with its messages
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Conversation id")),
    responses(
        (status = 200, description = "The conversation and its latest 200 messages", body = ConversationDetailView),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get_conversation(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ConversationDetailView>> {
    // Before the id: a refused caller gets 403 whatever the id.
    ctx.require(crate::tenancy::Action::ReadConversations)?;
    let id: ConversationId = path_id(&id)?;
    let conversations::Detail {
        conversation,
        messages,
        connection_name,
        ..
    } = conversations::get(&state, &ctx, id).await?;
    let mut view = ConversationView::new(conversation, connection_name);
    view.message_count = messages.len() as u32;
    view.last_message = messages.last().map(|m| LastMessageView {
        role: m.role.to_string(),
        text: m.content.chars().take(200).collect(),
    });
    Ok(Json(ConversationDetailView {
        conversation: view,
        messages: messages.into_iter().map(Into::into).collect(),
    }))
}
