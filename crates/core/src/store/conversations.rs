//! Conversations, their messages and turns, and feedback on answers.

use async_trait::async_trait;

use super::Result;
use crate::conversations::{Conversation, ConversationEvent, Message, Turn};
use crate::ids::{ChannelConnectionId, ConversationId, TenantId};

#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn get_conversation(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Conversation>;

    /// The tenant's conversations on every channel, latest activity first.
    async fn list_conversations(
        &self,
        tenant: TenantId,
        filter: &crate::conversations::ConversationFilter,
    ) -> Result<Vec<crate::conversations::ConversationSummary>>;

    /// The customer's latest conversation on a channel connection that is not resolved.
    async fn find_customer_conversation(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        customer: &str,
    ) -> Result<Option<Conversation>>;

    /// The conversation's last `limit` messages, oldest first.
    async fn recent_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> Result<Vec<Message>>;

    /// Stores a question with its answer (opening the conversation when the turn says so),
    /// their usage events and conversation events, in one transaction. `NotFound` when the
    /// conversation is not the tenant's; `Conflict(conversation_exists)` when a new
    /// conversation's id is taken.
    async fn record_turn(&self, tenant: TenantId, turn: Turn) -> Result<()>;

    /// What happened in the tenant's conversations since `since`.
    async fn activity(
        &self,
        tenant: TenantId,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::conversations::ActivityStats>;

    /// A conversation's events, oldest first.
    async fn list_conversation_events(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<ConversationEvent>>;

    /// Records (or changes) the verdict on an assistant message of the conversation.
    /// `NotFound` when the message is not an answer in that conversation of the tenant.
    async fn set_feedback(&self, tenant: TenantId, feedback: crate::widget::Feedback)
    -> Result<()>;

    /// The verdicts given in a conversation, by message.
    async fn list_feedback(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<crate::widget::Feedback>>;
}
