//! A customer's message into its conversation: opening a new conversation or joining the one
//! it continues, recording the turn (the question with its answer, or the question alone kept
//! for a person), and queueing a message for an agent with the reason.
//!
//! The answer engine composes the reply; this module decides where it goes and stores it. A
//! channel customer has at most one open conversation per connection (the store enforces it),
//! so two of their first messages answered at once end up in the same conversation.

use chrono::{DateTime, Utc};
use cortex_core::StoreError;
use cortex_core::conversations::{
    Channel, Conversation, ConversationEvent, ConversationEventKind, ConversationStatus,
    HandoffReason, Message, MessageRole, Turn,
};
use cortex_core::ids::{
    ChannelConnectionId, ConversationEventId, ConversationId, MessageId, TenantId,
};
use cortex_core::store::conflict::CONVERSATION_EXISTS;

use crate::app::AppState;
use crate::tenancy::{Result, TenantCtx};

/// Longest customer message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4_000;

/// A customer as a channel knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The channel connection, on messaging channels; none on the widget.
    pub connection: Option<ChannelConnectionId>,
    /// Their id there: a phone number, a page-scoped id, a widget visitor id.
    pub id: String,
}

/// Where a customer's message goes: the conversation named (a known customer's own only),
/// else the channel customer's open one, else a new one on `channel`.
#[derive(Clone, Copy, Debug)]
pub struct Destination<'a> {
    pub conversation_id: Option<ConversationId>,
    pub channel: Channel,
    pub customer: Option<&'a Customer>,
}

/// The conversation a message goes to.
pub struct Opened {
    pub conversation_id: ConversationId,
    /// Set when the message opens a new conversation (stored with its first turn).
    pub new_conversation: Option<Conversation>,
    /// The stored conversation's last messages (empty unless asked for).
    pub history: Vec<(MessageRole, String)>,
}

/// Finds the conversation `to` names or makes a new one (stored only with its first turn).
/// With `read_history`, the stored conversation's last messages come with it.
pub async fn open(
    state: &AppState,
    ctx: &TenantCtx,
    to: Destination<'_>,
    read_history: bool,
) -> Result<Opened> {
    let tenant = ctx.tenant_id();
    let existing = match (to.conversation_id, to.customer) {
        (Some(id), _) => Some(id),
        (
            None,
            Some(Customer {
                connection: Some(connection),
                id: customer,
            }),
        ) => state
            .store
            .find_customer_conversation(tenant, *connection, customer)
            .await?
            .map(|c| c.id),
        (None, _) => None,
    };
    if let Some(id) = existing {
        let conversation = state.store.get_conversation(tenant, id).await?;
        // A known customer continues only their own conversation.
        if let Some(customer) = to.customer
            && conversation.customer.as_deref() != Some(customer.id.as_str())
        {
            return Err(StoreError::NotFound.into());
        }
        let history = if read_history {
            state
                .store
                .recent_messages(tenant, id, state.settings.answer.history_messages)
                .await?
                .into_iter()
                .map(|m| (m.role, m.content))
                .collect()
        } else {
            Vec::new()
        };
        return Ok(Opened {
            conversation_id: id,
            new_conversation: None,
            history,
        });
    }
    let now = Utc::now();
    let c = Conversation {
        id: ConversationId::new(),
        tenant_id: tenant,
        channel: to.channel,
        status: ConversationStatus::Bot,
        connection_id: to.customer.and_then(|c| c.connection),
        customer: to.customer.map(|c| c.id.clone()),
        created_at: now,
        updated_at: now,
    };
    Ok(Opened {
        conversation_id: c.id,
        new_conversation: Some(c),
        history: Vec::new(),
    })
}

/// Stores the turn. When it opens a channel customer's conversation and another message of
/// theirs opened one meanwhile (the store keeps one open per customer and connection), the
/// turn joins that one instead; returns the conversation it went to.
pub async fn record(state: &AppState, tenant: TenantId, mut turn: Turn) -> Result<ConversationId> {
    let id = turn.conversation_id;
    let Some((connection, customer)) = turn
        .new_conversation
        .as_ref()
        .and_then(|c| Some((c.connection_id?, c.customer.clone()?)))
    else {
        // Not a channel customer's new conversation: nothing to join, no copy needed.
        state.store.record_turn(tenant, turn).await?;
        return Ok(id);
    };
    match state.store.record_turn(tenant, turn.clone()).await {
        Ok(()) => return Ok(id),
        Err(StoreError::Conflict(c)) if c == CONVERSATION_EXISTS => {}
        Err(e) => return Err(e.into()),
    }
    let Some(existing) = state
        .store
        .find_customer_conversation(tenant, connection, &customer)
        .await?
    else {
        return Err(StoreError::Conflict(CONVERSATION_EXISTS).into());
    };
    let id = existing.id;
    turn.new_conversation = None;
    turn.conversation_id = id;
    turn.question.conversation_id = id;
    if let Some(a) = turn.answer.as_mut() {
        a.conversation_id = id;
    }
    for u in &mut turn.usage {
        u.conversation_id = Some(id);
    }
    for e in &mut turn.events {
        e.conversation_id = id;
    }
    state.store.record_turn(tenant, turn).await?;
    Ok(id)
}

/// The customer's message as stored.
pub fn customer_message(
    tenant: TenantId,
    conversation_id: ConversationId,
    text: String,
) -> Message {
    Message {
        id: MessageId::new(),
        tenant_id: tenant,
        conversation_id,
        role: MessageRole::User,
        content: text,
        citations: Vec::new(),
        context: Vec::new(),
        confidence: None,
        abstained: false,
        model: None,
        prompt_tokens: 0,
        completion_tokens: 0,
        latency_ms: 0,
        created_at: Utc::now(),
    }
}

/// The event that tells the inbox a person should take the conversation, and why.
pub fn handoff_event(
    tenant: TenantId,
    conversation_id: ConversationId,
    reason: HandoffReason,
    at: DateTime<Utc>,
) -> ConversationEvent {
    ConversationEvent {
        id: ConversationEventId::new(),
        tenant_id: tenant,
        conversation_id,
        kind: ConversationEventKind::HandoffRequested,
        reason,
        created_at: at,
    }
}

/// Keeps a customer's message for a person, unanswered: it goes into their conversation with
/// a `handoff_requested` event saying why, for the inbox. Used when the bot may not answer (a
/// channel's window has closed, the plan's messages are used up).
pub async fn queue_for_agent(
    state: &AppState,
    ctx: &TenantCtx,
    to: Destination<'_>,
    text: &str,
    reason: HandoffReason,
) -> Result<ConversationId> {
    let tenant = ctx.tenant_id();
    let Opened {
        conversation_id,
        new_conversation,
        ..
    } = open(state, ctx, to, false).await?;
    let text: String = text.trim().chars().take(MAX_MESSAGE_CHARS).collect();
    let message = customer_message(tenant, conversation_id, text);
    let at = message.created_at;
    let conversation_id = record(
        state,
        tenant,
        Turn {
            new_conversation,
            conversation_id,
            question: message,
            answer: None,
            usage: Vec::new(),
            events: vec![handoff_event(tenant, conversation_id, reason, at)],
        },
    )
    .await?;
    tracing::info!(conversation.id = %conversation_id, handoff.reason = reason.as_str(), "queued for an agent");
    Ok(conversation_id)
}
