//! The answer engine: a customer's message, its conversation's history and the bot's settings
//! in, a draft out — a cited answer or an honest "I don't know", with a typed outcome
//! (`Answer`, `Abstain`, `Handoff { reason }`) that the inbox acts on ([`compose`]).
//! [`ask`] wraps it for every channel: the message goes to its conversation, the draft is
//! composed, and the turn is stored with its ledger lines and handoff event.
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
//! Depends on the core ports, `cortex-ai`'s extractive answerer, `tenancy`, `knowledge`'s
//! search, `conversations` (where a turn goes and how it is stored) and `metering` (its
//! ledger lines); never on axum.

pub mod intents;
pub mod models;
pub mod prompt;

use std::time::Instant;

use chrono::Utc;
use cortex_ai::extractive;
use cortex_core::answer::BotSettings;
use cortex_core::audit::{NewAuditEvent, action};
use cortex_core::conversations::{
    Channel, Citation, HandoffReason, Message, MessageRole, RetrievedChunk, Turn,
};
use cortex_core::ids::{ConversationId, MessageId};
use cortex_core::knowledge::dot;
use cortex_core::ports::{ChatMessage, ChatRequest, ChatRole, DeltaSink};
use cortex_search::lexical::Analyzer;

use crate::app::AppState;
use crate::conversations::turns::{self, Destination, Opened};
use crate::conversations::{Customer, MAX_MESSAGE_CHARS};
use crate::knowledge::search::{self, Candidate, source_text};
use crate::metering::{self, TokenUse};
use crate::tenancy::Action;
use crate::tenancy::{TenancyError, TenantCtx};
use intents::Intent;

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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AnswerUsage {
    pub embedding_tokens: u32,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl From<&TokenUse> for AnswerUsage {
    fn from(t: &TokenUse) -> Self {
        Self {
            embedding_tokens: t.embedding_tokens,
            prompt_tokens: t.prompt_tokens(),
            completion_tokens: t.completion_tokens(),
        }
    }
}

/// What kind of reply this is, as the API shows it.
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

/// What a reply does for the conversation: the bot answered (a greeting and small talk
/// included), abstained (the sources do not answer: the fallback is said and a person should
/// take over), or handed the conversation to a person for `reason`. The inbox acts on this,
/// never on the reply's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Answer,
    Abstain,
    Handoff { reason: HandoffReason },
}

impl Outcome {
    /// Why a person should take the conversation, if one should.
    pub fn handoff(self) -> Option<HandoffReason> {
        match self {
            Self::Answer => None,
            Self::Abstain => Some(HandoffReason::Abstained),
            Self::Handoff { reason } => Some(reason),
        }
    }
}

/// An answered message, as stored.
pub struct Answer {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub kind: ReplyKind,
    pub outcome: Outcome,
    pub text: String,
    pub citations: Vec<Citation>,
    /// 0–1.
    pub confidence: f32,
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

impl Answer {
    pub fn abstained(&self) -> bool {
        self.outcome == Outcome::Abstain
    }

    pub fn handoff_requested(&self) -> bool {
        self.outcome.handoff().is_some()
    }
}

/// A reply composed from a message, its conversation's history and the bot's settings,
/// before it is stored: what the engine returns.
pub struct Draft {
    pub kind: ReplyKind,
    pub outcome: Outcome,
    pub text: String,
    pub citations: Vec<Citation>,
    /// Every chunk retrieved, cited or not.
    pub context: Vec<RetrievedChunk>,
    /// 0–1.
    pub confidence: f32,
    pub model: String,
    pub tokens: TokenUse,
    pub query: Option<String>,
    pub relevance: Option<f32>,
}

impl Draft {
    fn reply(kind: ReplyKind, text: String) -> Self {
        Self {
            kind,
            outcome: Outcome::Answer,
            text,
            citations: Vec::new(),
            context: Vec::new(),
            confidence: 1.0,
            model: "none".into(),
            tokens: TokenUse::default(),
            query: None,
            relevance: None,
        }
    }

    fn model_call(&mut self, r: &cortex_core::ports::ChatResponse) {
        self.tokens
            .model_call(&r.model, r.usage.prompt_tokens, r.usage.completion_tokens);
    }
}

/// Composes the reply to `message` (already trimmed and checked): greetings, thanks and
/// goodbyes at once, a request for a person handed off, anything else answered from the
/// tenant's sources (or abstained on). With `on_delta` the reply's text is passed on as it is
/// produced. Stores nothing.
pub async fn compose(
    state: &AppState,
    ctx: &TenantCtx,
    bot: &BotSettings,
    message: &str,
    history: &[(MessageRole, String)],
    on_delta: Option<DeltaSink<'_>>,
    deadline: tokio::time::Instant,
) -> Result<Draft> {
    let draft = match intents::classify(message) {
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
            outcome: Outcome::Handoff {
                reason: HandoffReason::CustomerAsked,
            },
            ..Draft::reply(
                ReplyKind::Handoff,
                "I'm connecting you with a member of our team. They will reply in this \
                 conversation as soon as they can."
                    .into(),
            )
        },
        Intent::Question => {
            return answer_question(state, ctx, bot, message, history, on_delta, deadline).await;
        }
    };
    if let Some(sink) = on_delta {
        sink(&draft.text);
    }
    Ok(draft)
}

/// Answers one message and stores the turn: the message goes to its conversation
/// (`conversations::turns`), the reply is composed ([`compose`]), and the turn is recorded
/// with its usage (`metering`) and, when a person should take over, a handoff event. With
/// `on_delta` the answer's text is passed on as it is produced.
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
    } = turns::open(
        state,
        ctx,
        Destination {
            conversation_id: question.conversation_id,
            channel: question.channel,
            customer: question.customer.as_ref(),
        },
        question.history.is_empty(),
    )
    .await?;
    let history = if question.history.is_empty() {
        history
    } else {
        question.history
    };
    let question_message = turns::customer_message(tenant, conversation_id, message.clone());

    let deadline = tokio::time::Instant::from_std(started)
        + std::time::Duration::from_secs(state.settings.answer.deadline_secs);
    let draft = compose(state, ctx, &bot, &message, &history, on_delta, deadline).await?;

    let latency_ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
    let now = Utc::now();
    let usage = AnswerUsage::from(&draft.tokens);
    let answer_message = Message {
        id: MessageId::new(),
        tenant_id: tenant,
        conversation_id,
        role: MessageRole::Assistant,
        content: draft.text.clone(),
        citations: draft.citations.clone(),
        context: draft.context,
        confidence: Some(draft.confidence),
        abstained: draft.outcome == Outcome::Abstain,
        model: Some(draft.model.clone()),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        latency_ms,
        created_at: now,
    };
    let ledger = metering::answered(
        tenant,
        conversation_id,
        question.channel,
        state.embedder.model(),
        &draft.tokens,
        now,
    );
    let events = draft
        .outcome
        .handoff()
        .map(|reason| turns::handoff_event(tenant, conversation_id, reason, now))
        .into_iter()
        .collect();
    let message_id = answer_message.id;
    let conversation_id = turns::record(
        state,
        tenant,
        Turn {
            new_conversation,
            conversation_id,
            question: question_message,
            answer: Some(answer_message),
            usage: ledger,
            events,
        },
    )
    .await?;
    tracing::info!(
        conversation.id = %conversation_id,
        answer.kind = draft.kind.as_str(),
        answer.model = %draft.model,
        answer.abstained = draft.outcome == Outcome::Abstain,
        answer.handoff = draft.outcome.handoff().is_some(),
        answer.confidence = draft.confidence,
        duration_ms = latency_ms,
        "answered"
    );
    Ok(Answer {
        conversation_id,
        message_id,
        kind: draft.kind,
        outcome: draft.outcome,
        text: draft.text,
        citations: draft.citations,
        confidence: draft.confidence,
        model: draft.model,
        usage,
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
        .embed_query(query)
        .await
        .map_err(|e| anyhow::anyhow!("embedding the query: {e}"))?;
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
            draft.model_call(&r);
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
    draft.tokens.embedding_tokens = embedding_tokens;
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
        draft.tokens.embedding_tokens += tokens;
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
        draft.outcome = Outcome::Abstain;
        draft.confidence = 0.0;
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
                draft.model_call(&r);
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
