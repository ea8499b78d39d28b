//! The conversations domain: where a customer's message goes and how its turn is stored
//! ([`turns`]: open or join a conversation, record a turn, queue a message for an agent), and
//! conversations as the tenant's team reads them (the list, filtered and paged, and one
//! conversation with its messages, each behind the `ReadConversations` permission). The HTTP
//! handlers only turn requests into these calls and the results into views.
//!
//! Depends on the core ports and `tenancy`; never on the answer engine or the channels, which
//! call it.

pub mod turns;

pub use turns::{Customer, Destination, MAX_MESSAGE_CHARS, queue_for_agent};

use cortex_core::conversations::{Conversation, ConversationFilter, ConversationSummary, Message};
use cortex_core::ids::ConversationId;

use crate::app::AppState;
use crate::tenancy::{Action, Result, TenantCtx, invalid};

/// Messages shown with one conversation: the latest ones.
pub const MESSAGES_SHOWN: u32 = 200;

/// One conversation, its latest messages (oldest first) and the name of the channel
/// connection it came through, if any.
pub struct Detail {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    pub connection_name: Option<String>,
    /// The customer's verdicts on answers (the widget's thumbs), by message.
    pub feedback: Vec<cortex_core::widget::Feedback>,
}

/// A page of the tenant's conversations, latest activity first.
pub async fn list(
    state: &AppState,
    ctx: &TenantCtx,
    filter: &ConversationFilter,
) -> Result<Vec<ConversationSummary>> {
    ctx.require(Action::ReadConversations)?;
    if !(1..=200).contains(&filter.limit) {
        return Err(invalid("limit", "must be 1 to 200"));
    }
    Ok(state
        .store
        .list_conversations(ctx.tenant_id(), filter)
        .await?)
}

/// What happened in the tenant's conversations since `since`: by day and channel, the bot's
/// answers, abstentions and handoffs, and the median time to answer.
pub async fn activity(
    state: &AppState,
    ctx: &TenantCtx,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<cortex_core::conversations::ActivityStats> {
    ctx.require(Action::ReadConversations)?;
    Ok(state.store.activity(ctx.tenant_id(), since).await?)
}

/// One conversation of the tenant with its latest [`MESSAGES_SHOWN`] messages.
pub async fn get(state: &AppState, ctx: &TenantCtx, id: ConversationId) -> Result<Detail> {
    ctx.require(Action::ReadConversations)?;
    let tenant = ctx.tenant_id();
    let conversation = state.store.get_conversation(tenant, id).await?;
    let messages = state
        .store
        .recent_messages(tenant, id, MESSAGES_SHOWN)
        .await?;
    let connection_name = match conversation.connection_id {
        Some(cid) => state
            .store
            .list_channel_connections(tenant)
            .await?
            .into_iter()
            .find(|c| c.id == cid)
            .map(|c| c.name),
        None => None,
    };
    let feedback = state.store.list_feedback(tenant, id).await?;
    Ok(Detail {
        conversation,
        messages,
        connection_name,
        feedback,
    })
}
