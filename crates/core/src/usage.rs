//! The usage ledger: what each tenant used (tokens by model, messages by channel), one
//! append-only line per event, from which plans' allowances and invoices are counted.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{ConversationId, TenantId, UsageEventId};
use crate::knowledge::string_enum;

string_enum!(
    /// What a usage event counts.
    UsageKind {
        EmbeddingTokens => "embedding_tokens",
        PromptTokens => "prompt_tokens",
        CompletionTokens => "completion_tokens",
        Message => "message",
        ChannelMessage => "channel_message",
    }
);

/// One line of the append-only usage ledger.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UsageEvent {
    pub id: UsageEventId,
    pub tenant_id: TenantId,
    pub kind: UsageKind,
    /// The model for token counts; the channel for messages (`message`: answered turns;
    /// `channel_message`: messages sent to a customer on a messaging channel).
    pub subject: String,
    pub quantity: u64,
    pub conversation_id: Option<ConversationId>,
    pub created_at: DateTime<Utc>,
}

/// The first instant of the month `at` falls in (UTC): where monthly allowances and the
/// operator's monthly counts start.
pub fn month_start(at: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{Datelike, TimeZone};
    Utc.with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(at)
}
