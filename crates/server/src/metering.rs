//! Metering: every line of the usage ledger is built here, from what a turn cost (an answered
//! message, the tokens embedded, each model's prompt and completion tokens) and from what a
//! channel sent; and the ledger is read back here for a plan's monthly allowances.
//!
//! The ledger is append-only; the store writes these lines in the same transaction as what
//! they count (the turn, the inbound message marked answered), so nothing is counted twice or
//! lost. Depends on the core ports only.

use chrono::{DateTime, Utc};
use cortex_core::conversations::Channel;
use cortex_core::ids::{ConversationId, TenantId, UsageEventId};
use cortex_core::usage::{UsageEvent, UsageKind};

use crate::app::AppState;

/// What one reply cost in tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenUse {
    /// Tokens embedded (the query, and source sentences embedded for the answer).
    pub embedding_tokens: u32,
    /// Per model that was called: (model id, prompt tokens, completion tokens).
    pub models: Vec<(String, u32, u32)>,
}

impl TokenUse {
    /// Adds one model call.
    pub fn model_call(&mut self, model: &str, prompt_tokens: u32, completion_tokens: u32) {
        self.models
            .push((model.to_owned(), prompt_tokens, completion_tokens));
    }

    pub fn prompt_tokens(&self) -> u32 {
        self.models.iter().map(|m| m.1).sum()
    }

    pub fn completion_tokens(&self) -> u32 {
        self.models.iter().map(|m| m.2).sum()
    }
}

fn event(
    tenant: TenantId,
    kind: UsageKind,
    subject: &str,
    quantity: u64,
    conversation_id: Option<ConversationId>,
    at: DateTime<Utc>,
) -> UsageEvent {
    UsageEvent {
        id: UsageEventId::new(),
        tenant_id: tenant,
        kind,
        subject: subject.to_owned(),
        quantity,
        conversation_id,
        created_at: at,
    }
}

/// The ledger lines of one answered message on `channel`: the message itself (`message` by
/// channel), the tokens embedded (by embedding model, when any) and each model call's prompt
/// and completion tokens (by model).
pub fn answered(
    tenant: TenantId,
    conversation_id: ConversationId,
    channel: Channel,
    embedding_model: &str,
    tokens: &TokenUse,
    at: DateTime<Utc>,
) -> Vec<UsageEvent> {
    let line = |kind, subject: &str, quantity| {
        event(tenant, kind, subject, quantity, Some(conversation_id), at)
    };
    let mut usage = vec![line(UsageKind::Message, channel.as_str(), 1)];
    if tokens.embedding_tokens > 0 {
        usage.push(line(
            UsageKind::EmbeddingTokens,
            embedding_model,
            u64::from(tokens.embedding_tokens),
        ));
    }
    for (model, prompt, completion) in &tokens.models {
        usage.push(line(UsageKind::PromptTokens, model, u64::from(*prompt)));
        usage.push(line(
            UsageKind::CompletionTokens,
            model,
            u64::from(*completion),
        ));
    }
    usage
}

/// The ledger line of `sent` messages sent to a customer on a messaging channel
/// (`channel_message` by channel); none when nothing was sent.
pub fn channel_messages(
    tenant: TenantId,
    channel: Channel,
    sent: usize,
    at: DateTime<Utc>,
) -> Option<UsageEvent> {
    (sent > 0).then(|| {
        event(
            tenant,
            UsageKind::ChannelMessage,
            channel.as_str(),
            sent as u64,
            None,
            at,
        )
    })
}

pub use cortex_core::usage::month_start;

/// How many messages the tenant has sent on `channel` since the month began.
pub async fn channel_messages_this_month(
    state: &AppState,
    tenant: TenantId,
    channel: Channel,
) -> Result<u64, cortex_core::StoreError> {
    state
        .store
        .usage_total(
            tenant,
            UsageKind::ChannelMessage,
            channel.as_str(),
            month_start(Utc::now()),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_answered_message_counts_the_message_its_embedding_and_each_model_call() {
        let tenant = TenantId::new();
        let conversation = ConversationId::new();
        let mut tokens = TokenUse {
            embedding_tokens: 12,
            ..TokenUse::default()
        };
        tokens.model_call("small", 40, 10);
        tokens.model_call("large", 300, 80);
        let lines = answered(
            tenant,
            conversation,
            Channel::Widget,
            "all-MiniLM-L6-v2",
            &tokens,
            Utc::now(),
        );
        let seen: Vec<(UsageKind, &str, u64)> = lines
            .iter()
            .map(|l| (l.kind, l.subject.as_str(), l.quantity))
            .collect();
        assert_eq!(
            seen,
            [
                (UsageKind::Message, "widget", 1),
                (UsageKind::EmbeddingTokens, "all-MiniLM-L6-v2", 12),
                (UsageKind::PromptTokens, "small", 40),
                (UsageKind::CompletionTokens, "small", 10),
                (UsageKind::PromptTokens, "large", 300),
                (UsageKind::CompletionTokens, "large", 80),
            ]
        );
        assert!(
            lines
                .iter()
                .all(|l| l.tenant_id == tenant && l.conversation_id == Some(conversation))
        );
        assert_eq!(
            (tokens.prompt_tokens(), tokens.completion_tokens()),
            (340, 90)
        );
        // A greeting embeds nothing and calls no model: one line.
        let greeting = answered(
            tenant,
            conversation,
            Channel::Api,
            "m",
            &TokenUse::default(),
            Utc::now(),
        );
        assert_eq!(greeting.len(), 1);
    }

    #[test]
    fn sends_count_by_channel_and_nothing_sent_counts_nothing() {
        let tenant = TenantId::new();
        let line = channel_messages(tenant, Channel::WhatsApp, 2, Utc::now()).expect("a line");
        assert_eq!(
            (line.kind, line.subject.as_str(), line.quantity),
            (UsageKind::ChannelMessage, "whatsapp", 2)
        );
        assert_eq!(line.conversation_id, None);
        assert!(channel_messages(tenant, Channel::WhatsApp, 0, Utc::now()).is_none());
    }

    #[test]
    fn allowances_start_at_the_first_instant_of_the_month_in_utc() {
        let at = Utc
            .with_ymd_and_hms(2026, 3, 17, 22, 5, 9)
            .single()
            .expect("date");
        assert_eq!(
            month_start(at),
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
                .single()
                .expect("date")
        );
    }
}
