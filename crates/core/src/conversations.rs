//! Conversations and their messages: where they take place, who answers them, each answer with
//! the citations and the retrieved context it was built from, and the conversation events the
//! inbox consumes (a customer asking for a person, an answer the bot could not give).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{
    ChannelConnectionId, ChunkId, ConversationEventId, ConversationId, DocumentId, MessageId,
    TenantId,
};
use crate::knowledge::string_enum;
use crate::usage::UsageEvent;

string_enum!(
    /// Where a conversation takes place.
    Channel {
        Api => "api",
        Dashboard => "dashboard",
        OpenAi => "openai",
        Widget => "widget",
        WhatsApp => "whatsapp",
        Messenger => "messenger",
        Instagram => "instagram",
        ManyChat => "manychat",
        Email => "email",
    }
);

string_enum!(
    /// Who is answering a conversation.
    ConversationStatus { Bot => "bot", HandedOff => "handed_off", Resolved => "resolved" }
);

string_enum!(
    /// Who wrote a message.
    MessageRole { User => "user", Assistant => "assistant", Agent => "agent" }
);

string_enum!(
    /// What happened in a conversation that the inbox must act on.
    ConversationEventKind { HandoffRequested => "handoff_requested" }
);

string_enum!(
    /// Why a conversation is handed to a person: the customer asked for one, the sources did
    /// not answer the question, the channel's service window had closed (the message is kept
    /// for a person rather than answered by template), or the plan's messages on the channel
    /// this month are used.
    HandoffReason {
        CustomerAsked => "customer_asked",
        Abstained => "abstained",
        OutsideWindow => "outside_window",
        AllowanceUsed => "allowance_used",
    }
);

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub tenant_id: TenantId,
    pub channel: Channel,
    pub status: ConversationStatus,
    /// The channel connection and the customer's id on it, for channel conversations.
    pub connection_id: Option<ChannelConnectionId>,
    #[serde(skip)]
    pub customer: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which conversations a list shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConversationFilter {
    pub channel: Option<Channel>,
    pub status: Option<ConversationStatus>,
    /// Only those last active strictly before this (the previous page's last row): newest
    /// activity first.
    pub before: Option<(DateTime<Utc>, ConversationId)>,
    /// Only those last active at or after this.
    pub active_from: Option<DateTime<Utc>>,
    /// Only those last active strictly before this.
    pub active_until: Option<DateTime<Utc>>,
    /// Only those where the bot abstained at least once.
    pub abstained: bool,
    /// Only those handed to a person at least once (a handoff was requested).
    pub handed_off: bool,
    /// 1–200.
    pub limit: u32,
}

/// One day's conversations on one channel.
#[derive(Clone, Debug, PartialEq)]
pub struct DailyActivity {
    /// The UTC day.
    pub day: chrono::NaiveDate,
    pub channel: Channel,
    /// Conversations opened that day.
    pub conversations: u64,
}

/// A tenant's activity since a moment, as the Overview shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivityStats {
    /// Conversations by day and channel, oldest first; days without any are absent.
    pub daily: Vec<DailyActivity>,
    /// Messages (the customers', the bot's and the agents') by UTC day, oldest first.
    pub daily_messages: Vec<(chrono::NaiveDate, u64)>,
    /// The bot's replies.
    pub answers: u64,
    /// Replies where the sources did not answer.
    pub abstained: u64,
    /// Conversations handed to a person (a handoff was requested).
    pub handed_off: u64,
    /// The median time to answer (the lower middle value).
    pub median_latency_ms: Option<u32>,
}

/// A conversation as the inbox lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    /// The channel connection's name, for channel conversations.
    pub connection_name: Option<String>,
    pub message_count: u32,
    /// The latest message: who wrote it and its first 200 characters.
    pub last_message: Option<(MessageRole, String)>,
}

/// A source an answer cites, numbered as in the answer's text (`[1]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    pub index: u32,
    pub document_id: DocumentId,
    pub chunk_id: ChunkId,
    pub title: String,
    pub heading_path: Vec<String>,
    pub page: Option<u32>,
    pub snippet: String,
    pub score: f32,
}

/// A chunk retrieved for an answer, whether cited or not: what the answer was built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrievedChunk {
    pub chunk_id: ChunkId,
    pub document_id: DocumentId,
    /// The fused rank score.
    pub score: f32,
    /// Cosine similarity to the question, when the chunk has a vector.
    pub similarity: Option<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub role: MessageRole,
    pub content: String,
    pub citations: Vec<Citation>,
    pub context: Vec<RetrievedChunk>,
    /// 0–1, answers only.
    pub confidence: Option<f32>,
    pub abstained: bool,
    /// The model that wrote the answer (`extractive` without one).
    pub model: Option<String>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub latency_ms: u32,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversationEvent {
    pub id: ConversationEventId,
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub kind: ConversationEventKind,
    pub reason: HandoffReason,
    pub created_at: DateTime<Utc>,
}

/// A question and its answer (or the question alone, left for a person), stored together with
/// what they cost and caused.
#[derive(Clone, Debug)]
pub struct Turn {
    /// Set when the question opens a new conversation.
    pub new_conversation: Option<Conversation>,
    pub conversation_id: ConversationId,
    pub question: Message,
    /// None when the message is kept for a person instead (with a handoff event).
    pub answer: Option<Message>,
    pub usage: Vec<UsageEvent>,
    pub events: Vec<ConversationEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_read_and_write_as_their_names() {
        assert_eq!(
            serde_json::to_string(&Channel::WhatsApp).ok().as_deref(),
            Some("\"whatsapp\"")
        );
        assert_eq!(
            serde_json::from_str::<Channel>("\"openai\"").ok(),
            Some(Channel::OpenAi)
        );
        assert_eq!(
            serde_json::to_string(&ConversationStatus::HandedOff)
                .ok()
                .as_deref(),
            Some("\"handed_off\"")
        );
    }
}
