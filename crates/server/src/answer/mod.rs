//! The answer engine: a customer's message in, a cited answer (or an honest "I don't know")
//! out, stored with the context it was built from, what it cost and what the inbox must do.
//!
//! For each message: greetings and small talk are answered at once; a request for a person is
//! handed off; anything else is a question. A follow-up is rewritten into a standalone query
//! (by the model when the tenant has one, else by rule), the tenant's chunks are retrieved by
//! words and by meaning and fused, and the bot abstains when the best source is not relevant
//! enough. Then the plan's model chain writes the answer from numbered sources (falling back
//! model by model, and to the extractive answerer when every model fails), or the extractive
//! answerer quotes the sources directly when no model is configured. Each answer sentence is
//! checked against the sources it cites; unsupported claims lower the confidence.
//!
//! Depends on the core ports, `cortex-ai`'s extractive answerer and `tenancy`; never on axum.

pub mod intents;
pub mod models;
pub mod prompt;

use std::time::Instant;

use chrono::Utc;
use cortex_ai::extractive;
use cortex_core::answer::{
    BotSettings, Channel, Citation, Conversation, ConversationEvent, ConversationEventKind,
    ConversationStatus, Message, MessageRole, RetrievedChunk, Turn, UsageEvent, UsageKind,
};
use cortex_core::audit::{NewAuditEvent, action};
use cortex_core::ids::{
    ChannelConnectionId, ConversationEventId, ConversationId, MessageId, UsageEventId,
};
use cortex_core::knowledge::dot;
use cortex_core::ports::{ChatMessage, ChatRequest, ChatRole, DeltaSink};
use cortex_search::lexical::Analyzer;

use crate::app::AppState;
use crate::knowledge::search::{self, Candidate, source_text};
use crate::tenancy::Action;
use crate::tenancy::{TenancyError, TenantCtx};
use intents::Intent;

/// Longest customer message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4_000;
/// Sentences the extractive answerer quotes at most.
const EXTRACTIVE_SENTENCES: usize = 3;
/// Cosine similarity of a source that counts as fully relevant for the confidence value.
const FULL_RELEVANCE: f32 = 0.6;
/// Sentences of the sources the extractive answerer compares with the question by meaning.
const MAX_SCORED_SENTENCES: usize = 64;
/// Longest snippet of a source shown with a citation, in characters.
const SNIPPET_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("this bot is switched off; an admin can switch it on in the bot settings")]
    BotDisabled,
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<cortex_core::StoreError> for AnswerError {
    fn from(e: cortex_core::StoreError) -> Self {
        Self::Tenancy(e.into())
    }
}

pub type Result<T> = std::result::Result<T, AnswerError>;

fn validation(field: &'static str, message: impl Into<String>) -> AnswerError {
    TenancyError::Validation {
        field,
        message: message.into(),
    }
    .into()
}

// ----- bot settings ------------------------------------------------------------------------

/// The bot's settings with what the tenant's plan offers.
pub struct BotView {
    pub settings: BotSettings,
    /// Model ids the tenant may choose (`extractive` always among them).
    pub available_models: Vec<String>,
    /// The models that would answer now, in order; empty means extractive answers.
    pub chain: Vec<String>,
}

fn bot_view(state: &AppState, ctx: &TenantCtx, settings: BotSettings) -> BotView {
    let plan = &ctx.tenant().plan;
    let mut available_models = state.models.plan_chain(plan);
    available_models.push(BotSettings::EXTRACTIVE.to_owned());
    let chain = state
        .models
        .chain(plan, &settings)
        .iter()
        .map(|m| m.id().to_owned())
        .collect();
    BotView {
        settings,
        available_models,
        chain,
    }
}

pub(crate) async fn settings_of(state: &AppState, ctx: &TenantCtx) -> Result<BotSettings> {
    Ok(state
        .store
        .get_bot_settings(ctx.tenant_id())
        .await?
        .unwrap_or_default())
}

pub async fn get_bot(state: &AppState, ctx: &TenantCtx) -> Result<BotView> {
    ctx.require(Action::ReadBot)?;
    let settings = settings_of(state, ctx).await?;
    Ok(bot_view(state, ctx, settings))
}

/// Replaces the bot settings (admins and owners).
pub async fn put_bot(state: &AppState, ctx: &TenantCtx, settings: BotSettings) -> Result<BotView> {
    ctx.require(Action::ManageBot)?;
    settings
        .validate()
        .map_err(|(field, message)| validation(field, message))?;
    if let Some(model) = &settings.model
        && !state.models.allows(&ctx.tenant().plan, model)
    {
        let view = bot_view(state, ctx, BotSettings::default());
        return Err(validation(
            "model",
            format!(
                "not available on the {} plan; choose one of: {}",
                ctx.tenant().plan,
                view.available_models.join(", ")
            ),
        ));
    }
    let now = Utc::now();
    state
        .store
        .put_bot_settings(
            ctx.tenant_id(),
            &settings,
            now,
            NewAuditEvent::new(ctx.actor(), action::BOT_SETTINGS_UPDATED, now).metadata(
                serde_json::json!({ "model": settings.model, "enabled": settings.enabled }),
            ),
        )
        .await?;
    Ok(bot_view(state, ctx, settings))
}

// ----- asking --------------------------------------------------------------------------------

/// A customer's message.
pub struct Question {
    pub message: String,
    /// Continue this conversation (else a new one opens).
    pub conversation_id: Option<ConversationId>,
    pub channel: Channel,
    /// Earlier turns the caller carries itself (the OpenAI-compatible endpoint); when empty
    /// the stored conversation's are read.
    pub history: Vec<(MessageRole, String)>,
    /// Who asks, when the channel knows them: a messaging channel's customer (their open
    /// conversation continues without a conversation id) or a widget visitor (only their own
    /// conversation may be continued).
    pub customer: Option<Customer>,
}

/// A customer as a channel knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The channel connection, on messaging channels; none on the widget.
    pub connection: Option<ChannelConnectionId>,
    /// Their id there: a phone number, a page-scoped id, a widget visitor id.
    pub id: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AnswerUsage {
    pub embedding_tokens: u32,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// What kind of reply this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    Answer,
    Greeting,
    SmallTalk,
    Handoff,
}

impl ReplyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Greeting => "greeting",
            Self::SmallTalk => "small_talk",
            Self::Handoff => "handoff",
        }
    }
}

pub struct Answer {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub kind: ReplyKind,
    pub text: String,
    pub citations: Vec<Citation>,
    /// 0–1.
    pub confidence: f32,
    pub abstained: bool,
    pub handoff_requested: bool,
    /// The model that wrote the answer; `extractive` for quoted answers, `none` for replies
    /// made without retrieval.
    pub model: String,
    pub usage: AnswerUsage,
    pub latency_ms: u32,
    /// The query retrieval ran with (the question, or its standalone rewrite).
    pub query: Option<String>,
    /// How well the best sentence of the sources matched the query (what the abstention
    /// threshold is compared with); `None` for replies made without retrieval.
    pub relevance: Option<f32>,
}

/// The working state of one answer.
struct Draft {
    kind: ReplyKind,
    text: String,
    citations: Vec<Citation>,
    context: Vec<RetrievedChunk>,
    confidence: f32,
    abstained: bool,
    handoff: Option<&'static str>,
    model: String,
    usage: AnswerUsage,
    /// Tokens per model, for the ledger.
    model_usage: Vec<(String, u32, u32)>,
    query: Option<String>,
    relevance: Option<f32>,
}

impl Draft {
    fn reply(kind: ReplyKind, text: String) -> Self {
        Self {
            kind,
            text,
            citations: Vec::new(),
            context: Vec::new(),
            confidence: 1.0,
            abstained: false,
            handoff: None,
            model: "none".into(),
            usage: AnswerUsage::default(),
            model_usage: Vec::new(),
            query: None,
            relevance: None,
        }
    }
}

/// The conversation a question goes to: the one named (a known customer's own only), the
/// channel customer's open one, or a new one.
struct Opened {
    conversation_id: ConversationId,
    new_conversation: Option<Conversation>,
    /// The stored conversation's last messages.
    history: Vec<(MessageRole, String)>,
}

async fn open_conversation(
    state: &AppState,
    ctx: &TenantCtx,
    question: &Question,
) -> Result<Opened> {
    let tenant = ctx.tenant_id();
    let existing = match (question.conversation_id, &question.customer) {
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
        if let Some(customer) = &question.customer
            && conversation.customer.as_deref() != Some(customer.id.as_str())
        {
            return Err(AnswerError::from(cortex_core::StoreError::NotFound));
        }
        let history = if question.history.is_empty() {
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
    let (connection_id, customer) = match &question.customer {
        Some(c) => (c.connection, Some(c.id.clone())),
        None => (None, None),
    };
    let c = Conversation {
        id: ConversationId::new(),
        tenant_id: tenant,
        channel: question.channel,
        status: ConversationStatus::Bot,
        connection_id,
        customer,
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
async fn record_in_conversation(
    state: &AppState,
    tenant: cortex_core::ids::TenantId,
    mut turn: Turn,
) -> Result<ConversationId> {
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
        Err(cortex_core::StoreError::Conflict(c))
            if c == cortex_core::store::conflict::CONVERSATION_EXISTS => {}
        Err(e) => return Err(e.into()),
    }
    let Some(existing) = state
        .store
        .find_customer_conversation(tenant, connection, &customer)
        .await?
    else {
        return Err(AnswerError::from(cortex_core::StoreError::Conflict(
            cortex_core::store::conflict::CONVERSATION_EXISTS,
        )));
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

fn user_message(
    tenant: cortex_core::ids::TenantId,
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

/// Keeps a customer's message for a person, unanswered: it goes into their conversation with
/// a `handoff_requested` event saying why (`reason`), for the inbox. Used when the bot may not
/// answer (a channel's window has closed, the plan's messages are used up).
pub async fn queue_for_agent(
    state: &AppState,
    ctx: &TenantCtx,
    question: Question,
    reason: &'static str,
) -> Result<ConversationId> {
    let tenant = ctx.tenant_id();
    let Opened {
        conversation_id,
        new_conversation,
        ..
    } = open_conversation(state, ctx, &question).await?;
    let text: String = question
        .message
        .trim()
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .collect();
    let message = user_message(tenant, conversation_id, text);
    let at = message.created_at;
    let conversation_id = record_in_conversation(
        state,
        tenant,
        Turn {
            new_conversation,
            conversation_id,
            question: message,
            answer: None,
            usage: Vec::new(),
            events: vec![ConversationEvent {
                id: ConversationEventId::new(),
                tenant_id: tenant,
                conversation_id,
                kind: ConversationEventKind::HandoffRequested,
                reason: reason.to_owned(),
                created_at: at,
            }],
        },
    )
    .await?;
    tracing::info!(conversation.id = %conversation_id, handoff.reason = reason, "queued for an agent");
    Ok(conversation_id)
}

/// Answers one message and stores the turn. With `on_delta` the answer's text is passed on
/// as it is produced.
pub async fn ask(
    state: &AppState,
    ctx: &TenantCtx,
    question: Question,
    on_delta: Option<DeltaSink<'_>>,
) -> Result<Answer> {
    ctx.require(Action::Chat)?;
    let started = Instant::now();
    let message = question.message.trim().to_owned();
    if message.is_empty() || message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(validation(
            "message",
            format!("must be 1 to {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    let bot = settings_of(state, ctx).await?;
    if !bot.enabled {
        return Err(AnswerError::BotDisabled);
    }
    // The plan's request rate, per tenant.
    let plan = ctx.plan();
    let hit = state
        .limiter
        .hit(
            &format!("chat:{}", ctx.tenant_id()),
            plan.requests_per_minute,
            std::time::Duration::from_secs(60),
        )
        .await;
    if !hit.allowed {
        return Err(TenancyError::RateLimited {
            retry_after_secs: hit.retry_after.as_secs().max(1),
        }
        .into());
    }
    let tenant = ctx.tenant_id();
    let Opened {
        conversation_id,
        new_conversation,
        history,
    } = open_conversation(state, ctx, &question).await?;
    let history = if question.history.is_empty() {
        history
    } else {
        question.history
    };
    let question_message = user_message(tenant, conversation_id, message.clone());

    let draft = match intents::classify(&message) {
        Intent::Greeting => Draft::reply(ReplyKind::Greeting, bot.greeting.clone()),
        Intent::Thanks => Draft::reply(
            ReplyKind::SmallTalk,
            "You're welcome! Is there anything else I can help you with?".into(),
        ),
        Intent::Goodbye => Draft::reply(
            ReplyKind::SmallTalk,
            "Goodbye, and thank you for reaching out!".into(),
        ),
        Intent::Human => Draft {
            handoff: Some("customer_asked"),
            ..Draft::reply(
                ReplyKind::Handoff,
                "I'm connecting you with a member of our team. They will reply in this \
                 conversation as soon as they can."
                    .into(),
            )
        },
        Intent::Question => {
            let deadline = tokio::time::Instant::from_std(started)
                + std::time::Duration::from_secs(state.settings.answer.deadline_secs);
            answer_question(state, ctx, &bot, &message, &history, on_delta, deadline).await?
        }
    };
    if draft.kind != ReplyKind::Answer
        && let Some(sink) = on_delta
    {
        sink(&draft.text);
    }

    let latency_ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
    let now = Utc::now();
    let answer_message = Message {
        id: MessageId::new(),
        tenant_id: tenant,
        conversation_id,
        role: MessageRole::Assistant,
        content: draft.text.clone(),
        citations: draft.citations.clone(),
        context: draft.context,
        confidence: Some(draft.confidence),
        abstained: draft.abstained,
        model: Some(draft.model.clone()),
        prompt_tokens: draft.usage.prompt_tokens,
        completion_tokens: draft.usage.completion_tokens,
        latency_ms,
        created_at: now,
    };
    let usage_event = |kind: UsageKind, subject: &str, quantity: u64| UsageEvent {
        id: UsageEventId::new(),
        tenant_id: tenant,
        kind,
        subject: subject.to_owned(),
        quantity,
        conversation_id: Some(conversation_id),
        created_at: now,
    };
    let mut usage = vec![usage_event(
        UsageKind::Message,
        question.channel.as_str(),
        1,
    )];
    if draft.usage.embedding_tokens > 0 {
        usage.push(usage_event(
            UsageKind::EmbeddingTokens,
            state.embedder.model(),
            u64::from(draft.usage.embedding_tokens),
        ));
    }
    for (model, prompt, completion) in &draft.model_usage {
        usage.push(usage_event(
            UsageKind::PromptTokens,
            model,
            u64::from(*prompt),
        ));
        usage.push(usage_event(
            UsageKind::CompletionTokens,
            model,
            u64::from(*completion),
        ));
    }
    let events = draft
        .handoff
        .map(|reason| ConversationEvent {
            id: ConversationEventId::new(),
            tenant_id: tenant,
            conversation_id,
            kind: ConversationEventKind::HandoffRequested,
            reason: reason.to_owned(),
            created_at: now,
        })
        .into_iter()
        .collect();
    let message_id = answer_message.id;
    let conversation_id = record_in_conversation(
        state,
        tenant,
        Turn {
            new_conversation,
            conversation_id,
            question: question_message,
            answer: Some(answer_message),
            usage,
            events,
        },
    )
    .await?;
    tracing::info!(
        conversation.id = %conversation_id,
        answer.kind = draft.kind.as_str(),
        answer.model = %draft.model,
        answer.abstained = draft.abstained,
        answer.handoff = draft.handoff.is_some(),
        answer.confidence = draft.confidence,
        duration_ms = latency_ms,
        "answered"
    );
    Ok(Answer {
        conversation_id,
        message_id,
        kind: draft.kind,
        text: draft.text,
        citations: draft.citations,
        confidence: draft.confidence,
        abstained: draft.abstained,
        handoff_requested: draft.handoff.is_some(),
        model: draft.model,
        usage: draft.usage,
        latency_ms,
        query: draft.query,
        relevance: draft.relevance,
    })
}

/// What retrieval found, with the query's vector and the tokens embedded.
struct Retrieved {
    sources: Vec<Candidate>,
    vector: Vec<f32>,
    embedding_tokens: u32,
}

async fn retrieve(state: &AppState, ctx: &TenantCtx, query: &str, k: u32) -> Result<Retrieved> {
    let tenant = ctx.tenant_id();
    let embedding_tokens = state.embedder.count_tokens(query) as u32;
    let vector = state
        .embedder
        .embed(vec![query.to_owned()])
        .await
        .map_err(|e| anyhow::anyhow!("embedding the query: {e}"))?
        .pop()
        .unwrap_or_default();
    let candidates = search::hybrid_candidates(
        state.store.as_ref(),
        tenant,
        query,
        state.embedder.model(),
        &vector,
        k,
        state.settings.answer.fusion_weights(),
    )
    .await?;
    let sources = search::reranked(state, query, candidates, k).await;
    Ok(Retrieved {
        sources,
        vector,
        embedding_tokens,
    })
}

/// The cosine similarity of each sentence of each source to the query: its stored window's
/// (windows are embedded with the chunk), else — for a chunk embedded before windows existed —
/// the sentence embedded now, for the first [`MAX_SCORED_SENTENCES`] such sentences (the rest
/// are judged by words). Returns them with the tokens embedded now.
async fn sentence_similarity(
    state: &AppState,
    query_vector: &[f32],
    sources: &[Candidate],
    texts: &[&str],
) -> Result<(Vec<Vec<f32>>, u32)> {
    let mut out = vec![Vec::new(); texts.len()];
    let mut owners: Vec<usize> = Vec::new();
    let mut batch: Vec<String> = Vec::new();
    for (i, (source, text)) in sources.iter().zip(texts).enumerate() {
        if let Some(windows) = &source.windows {
            out[i].clone_from(windows);
            continue;
        }
        for s in extractive::windows(text) {
            if batch.len() == MAX_SCORED_SENTENCES {
                break;
            }
            owners.push(i);
            batch.push(s);
        }
    }
    if batch.is_empty() {
        return Ok((out, 0));
    }
    let tokens = batch
        .iter()
        .map(|s| state.embedder.count_tokens(s) as u32)
        .sum();
    let vectors = state
        .embedder
        .embed(batch)
        .await
        .map_err(|e| anyhow::anyhow!("embedding the sources' sentences: {e}"))?;
    for (owner, v) in owners.into_iter().zip(vectors) {
        out[owner].push(dot(&v, query_vector));
    }
    Ok((out, tokens))
}

/// The part of a source worth showing beside a citation: its sentences that best cover
/// `focus` (the question, or the answer's text), else its opening.
fn snippet(text: &str, focus: &str, analyzer: &Analyzer) -> String {
    let best = extractive::extract(focus, &[text], analyzer, 2, None);
    let chosen = if best.abstained() {
        text.to_owned()
    } else {
        best.quotes
            .iter()
            .map(|q| q.text.as_str())
            .collect::<Vec<_>>()
            .join(" … ")
    };
    let mut out: String = chosen.chars().take(SNIPPET_CHARS).collect();
    if out.len() < chosen.len() {
        out.push('…');
    }
    out
}

fn citation(
    number: usize,
    source: &Candidate,
    text: &str,
    focus: &str,
    analyzer: &Analyzer,
) -> Citation {
    let snippet = snippet(text, focus, analyzer);
    Citation {
        index: number as u32,
        document_id: source.hit.chunk.document_id,
        chunk_id: source.hit.chunk.id,
        title: source.hit.document_title.clone(),
        heading_path: source.hit.chunk.heading_path.clone(),
        page: source.hit.chunk.page_start,
        snippet,
        score: source.similarity.unwrap_or(source.hit.score),
    }
}

async fn answer_question(
    state: &AppState,
    ctx: &TenantCtx,
    bot: &BotSettings,
    message: &str,
    history: &[(MessageRole, String)],
    on_delta: Option<DeltaSink<'_>>,
    deadline: tokio::time::Instant,
) -> Result<Draft> {
    let analyzer = Analyzer::default();
    let chain = state.models.chain(&ctx.tenant().plan, bot);
    let mut draft = Draft::reply(ReplyKind::Answer, String::new());

    // A follow-up becomes a standalone query.
    let previous = history
        .iter()
        .rev()
        .find(|(role, _)| *role == MessageRole::User)
        .map(|(_, text)| text.as_str());
    let mut query = intents::merge_follow_up(message, previous, &analyzer);
    if query != message && !chain.is_empty() {
        let mut messages = vec![ChatMessage::new(
            ChatRole::System,
            "Rewrite the customer's last message as one standalone question for a search \
             engine, using the conversation for context. Reply with the question only.",
        )];
        for (role, text) in history.iter().rev().take(4).rev() {
            let role = if *role == MessageRole::User {
                ChatRole::User
            } else {
                ChatRole::Assistant
            };
            messages.push(ChatMessage::new(role, text.clone()));
        }
        messages.push(ChatMessage::new(ChatRole::User, message));
        let request = ChatRequest {
            messages,
            temperature: 0.0,
            max_tokens: 128,
            tools: Vec::new(),
        };
        if let Ok(r) = models::complete(&chain, &request, None, deadline).await {
            draft.model_usage.push((
                r.model.clone(),
                r.usage.prompt_tokens,
                r.usage.completion_tokens,
            ));
            draft.usage.prompt_tokens += r.usage.prompt_tokens;
            draft.usage.completion_tokens += r.usage.completion_tokens;
            let rewritten: String = r.content.trim().chars().take(500).collect();
            if !rewritten.is_empty() {
                query = rewritten;
            }
        }
    }

    let Retrieved {
        sources,
        vector: query_vector,
        embedding_tokens,
    } = retrieve(state, ctx, &query, bot.top_k).await?;
    draft.usage.embedding_tokens = embedding_tokens;
    draft.context = sources
        .iter()
        .map(|s| RetrievedChunk {
            chunk_id: s.hit.chunk.id,
            document_id: s.hit.chunk.document_id,
            score: s.hit.score,
            similarity: s.similarity,
        })
        .collect();
    draft.query = Some(query.clone());
    let texts: Vec<String> = sources.iter().map(|s| source_text(&s.hit)).collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    // Relevance, judged where the answer would be: the best sentence of the sources, scored by
    // its meaning (its window's cosine similarity to the query) and the share of the query's
    // rarity-weighted words it covers. A whole chunk's vector is diluted by its other
    // sentences, and shared words alone miss a paraphrase; the threshold is calibrated on the
    // answer development set (docs/benchmarks.md).
    let similarity = if query_vector.is_empty() {
        None
    } else {
        let (similarity, tokens) =
            sentence_similarity(state, &query_vector, &sources, &text_refs).await?;
        draft.usage.embedding_tokens += tokens;
        Some(similarity)
    };
    // The threshold decides whether the sources answer (below); which of their sentences are
    // quoted is relative to the best one (at least 70 % of its score, `RELATIVE_FLOOR`), not
    // to the threshold: the sentence holding the fact is often not the best-scoring one, and
    // quoting it beside the best lifted held-out answers with the fact from 75.9 % to 82.8 %
    // (dev 65.7 % to 67.1 %) without changing a single abstention (docs/benchmarks.md).
    let extract = extractive::extract_above(
        &query,
        &text_refs,
        &analyzer,
        EXTRACTIVE_SENTENCES,
        similarity.as_deref(),
        0.0,
    );
    let relevance = extract.confidence;
    draft.relevance = Some(relevance);
    let retrieval_confidence = (relevance / FULL_RELEVANCE).clamp(0.0, 1.0);

    // In the customer's language while the tenant keeps the default.
    let fallback = bot.fallback_for(message);
    let abstain = |mut draft: Draft| {
        draft.text = fallback.to_owned();
        draft.abstained = true;
        draft.confidence = 0.0;
        draft.handoff = Some("abstained");
        draft.citations.clear();
        draft
    };
    if sources.is_empty() || extract.abstained() || relevance < bot.abstention_threshold {
        if let Some(sink) = on_delta {
            sink(fallback);
        }
        return Ok(abstain(draft));
    }

    if !chain.is_empty() {
        let prompt_sources: Vec<prompt::PromptSource<'_>> = sources
            .iter()
            .zip(&texts)
            .enumerate()
            .map(|(i, (s, text))| prompt::PromptSource {
                number: i + 1,
                title: &s.hit.document_title,
                section: s.hit.chunk.heading_path.join(" > "),
                page: s.hit.chunk.page_start,
                text,
            })
            .collect();
        let count = |t: &str| state.embedder.count_tokens(t);
        let (messages, kept) = prompt::build(
            &ctx.tenant().name,
            bot,
            prompt_sources,
            history,
            message,
            state.settings.answer.context_tokens,
            &count,
        );
        let request = ChatRequest {
            messages,
            temperature: bot.temperature,
            max_tokens: bot.max_answer_tokens,
            tools: Vec::new(),
        };
        match models::complete(&chain, &request, on_delta, deadline).await {
            Ok(r) => {
                draft.model_usage.push((
                    r.model.clone(),
                    r.usage.prompt_tokens,
                    r.usage.completion_tokens,
                ));
                draft.usage.prompt_tokens += r.usage.prompt_tokens;
                draft.usage.completion_tokens += r.usage.completion_tokens;
                draft.model = r.model;
                let text = r.content.trim().to_owned();
                if text.is_empty()
                    || said_fallback(&text, &bot.fallback_message)
                    || said_fallback(&text, fallback)
                {
                    return Ok(abstain(draft));
                }
                let kept_texts = &text_refs[..kept];
                let grounding = prompt::grounding(&text, kept_texts, &analyzer);
                draft.citations = prompt::cited_numbers(&text, kept)
                    .into_iter()
                    .map(|n| citation(n, &sources[n - 1], kept_texts[n - 1], &text, &analyzer))
                    .collect();
                draft.confidence = retrieval_confidence * grounding.ratio();
                draft.text = text;
                return Ok(draft);
            }
            Err(failure) => {
                tracing::warn!(
                    models = failure.failures.len(),
                    streamed = failure.streamed,
                    "every chat model failed; answering extractively"
                );
                if failure.streamed
                    && let Some(sink) = on_delta
                {
                    // Separates the broken-off text from the extractive answer that follows.
                    sink("\n\n");
                }
            }
        }
    }

    // The extractive answerer: the sources' own sentences that answer the question best by
    // words and by meaning, cited.
    draft.model = BotSettings::EXTRACTIVE.to_owned();
    let mut cited: Vec<usize> = extract.quotes.iter().map(|q| q.source).collect();
    cited.dedup();
    draft.citations = cited
        .into_iter()
        .map(|i| citation(i + 1, &sources[i], &texts[i], &query, &analyzer))
        .collect();
    draft.text = extract.text();
    draft.confidence = 0.5 * retrieval_confidence + 0.5 * extract.confidence;
    if let Some(sink) = on_delta {
        for (i, q) in extract.quotes.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            sink(&format!("{sep}{} [{}]", q.text, q.source + 1));
        }
    }
    Ok(draft)
}

/// Whether the model answered with the fallback message (as told to when the sources do not
/// answer), allowing for quotes and punctuation around it.
fn said_fallback(text: &str, fallback: &str) -> bool {
    let a = intents::fold(text);
    let b = intents::fold(fallback);
    !b.is_empty() && (a == b || (a.len() < b.len() + 40 && a.contains(&b)))
}
