//! The answer engine's data: a tenant's bot settings, conversations and their messages (each
//! answer with the citations and the retrieved context it was built from), the usage ledger's
//! events and the conversation events the inbox consumes (a customer asking for a person, an
//! answer the bot could not give).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{
    ChannelConnectionId, ChunkId, ConversationEventId, ConversationId, DocumentId, MessageId,
    TenantId, UsageEventId,
};
use crate::knowledge::string_enum;

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
    /// What a usage event counts.
    UsageKind {
        EmbeddingTokens => "embedding_tokens",
        PromptTokens => "prompt_tokens",
        CompletionTokens => "completion_tokens",
        Message => "message",
        ChannelMessage => "channel_message",
    }
);

string_enum!(
    /// What happened in a conversation that the inbox must act on.
    ConversationEventKind { HandoffRequested => "handoff_requested" }
);

/// A tenant's bot, as its admins configure it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BotSettings {
    /// Off: the chat endpoints refuse with `bot_disabled`.
    pub enabled: bool,
    /// A model id of the operator's catalogue allowed by the tenant's plan, `extractive` for
    /// answers quoted from the sources without a language model, or `None` for the plan's
    /// default chain.
    pub model: Option<String>,
    /// 0–1.
    pub temperature: f32,
    /// 16–4,096.
    pub max_answer_tokens: u32,
    /// Sources retrieved per question, 3–10.
    pub top_k: u32,
    /// The tenant's instructions to the bot, up to 2,000 characters. They come after the
    /// platform's own rules and cannot lift them.
    pub system_prompt: String,
    /// Said when a conversation opens, and to greetings.
    pub greeting: String,
    /// Said when the sources do not answer the question.
    pub fallback_message: String,
    /// Answer in the language the customer writes in (else in the sources' language).
    pub answer_in_customer_language: bool,
    /// 0–1. The bot abstains when the retrieved sources' relevance is below this: the score
    /// of their best sentence, 70 % its cosine similarity to the question and 30 % the share
    /// of the question's words (weighted by rarity) it covers. Higher is stricter; the default
    /// is calibrated on the answer development set ([`Self::CALIBRATED_THRESHOLD`]).
    pub abstention_threshold: f32,
}

impl BotSettings {
    pub const MAX_SYSTEM_PROMPT_CHARS: usize = 2_000;
    pub const MAX_TEXT_CHARS: usize = 1_000;
    /// The model id that asks for the extractive answerer.
    pub const EXTRACTIVE: &'static str = "extractive";
    /// The default abstention threshold: on the `dev` split of the answer development set
    /// (`cortexlayer eval --answers … --calibrate`), the one that answers with the fact and
    /// abstains on unanswerable questions best at once (docs/benchmarks.md).
    pub const CALIBRATED_THRESHOLD: f32 = 0.46;

    /// The first rule the settings break, as (field, message).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(0.0..=1.0).contains(&self.temperature) {
            return Err(("temperature", "must be between 0 and 1".into()));
        }
        if !(16..=4_096).contains(&self.max_answer_tokens) {
            return Err(("max_answer_tokens", "must be between 16 and 4096".into()));
        }
        if !(3..=10).contains(&self.top_k) {
            return Err(("top_k", "must be between 3 and 10".into()));
        }
        if self.system_prompt.chars().count() > Self::MAX_SYSTEM_PROMPT_CHARS {
            return Err((
                "system_prompt",
                format!(
                    "must be at most {} characters",
                    Self::MAX_SYSTEM_PROMPT_CHARS
                ),
            ));
        }
        for (field, text) in [
            ("greeting", &self.greeting),
            ("fallback_message", &self.fallback_message),
        ] {
            if text.chars().count() > Self::MAX_TEXT_CHARS {
                return Err((
                    field,
                    format!("must be at most {} characters", Self::MAX_TEXT_CHARS),
                ));
            }
        }
        if self.fallback_message.trim().is_empty() {
            return Err(("fallback_message", "must not be empty".into()));
        }
        if !(0.0..=1.0).contains(&self.abstention_threshold) {
            return Err(("abstention_threshold", "must be between 0 and 1".into()));
        }
        if let Some(m) = &self.model
            && (m.is_empty() || m.len() > 100)
        {
            return Err(("model", "must be 1 to 100 characters".into()));
        }
        Ok(())
    }
}

/// The default fallback message (English).
const DEFAULT_FALLBACK: &str = "I'm sorry, I don't know the answer to that. Would you like me \
    to connect you with a member of our team?";

impl BotSettings {
    /// The fallback message for a customer who wrote `message`: the tenant's own, or — while
    /// it is still the default and the bot answers in the customer's language — the default
    /// in the language the customer writes in (English when it cannot be told).
    pub fn fallback_for(&self, message: &str) -> &str {
        use crate::language::{Language, detect};
        if self.fallback_message != DEFAULT_FALLBACK || !self.answer_in_customer_language {
            return &self.fallback_message;
        }
        match detect(message) {
            Some(Language::French) => {
                "Je suis désolé, je ne connais pas la réponse à cette question. Voulez-vous que \
                 je vous mette en relation avec un membre de notre équipe ?"
            }
            Some(Language::Spanish) => {
                "Lo siento, no sé la respuesta a eso. ¿Quiere que le ponga en contacto con un \
                 miembro de nuestro equipo?"
            }
            Some(Language::German) => {
                "Das weiß ich leider nicht. Möchten Sie, dass ich Sie mit jemandem aus unserem \
                 Team verbinde?"
            }
            Some(Language::Italian) => {
                "Mi dispiace, non conosco la risposta. Vuole che la metta in contatto con un \
                 membro del nostro team?"
            }
            Some(Language::Portuguese) => {
                "Lamento, não sei a resposta. Quer que o ponha em contacto com um membro da \
                 nossa equipa?"
            }
            Some(Language::Dutch) => {
                "Sorry, daar weet ik het antwoord niet op. Zal ik u in contact brengen met \
                 iemand van ons team?"
            }
            Some(Language::English) | None => &self.fallback_message,
        }
    }
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            model: None,
            temperature: 0.2,
            max_answer_tokens: 512,
            top_k: 5,
            system_prompt: String::new(),
            greeting: "Hello! How can I help you today?".into(),
            fallback_message: DEFAULT_FALLBACK.into(),
            answer_in_customer_language: true,
            abstention_threshold: Self::CALIBRATED_THRESHOLD,
        }
    }
}

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
    /// 1–200.
    pub limit: u32,
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

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConversationEvent {
    pub id: ConversationEventId,
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub kind: ConversationEventKind,
    /// Why (`customer_asked`, `abstained`).
    pub reason: String,
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
    fn the_default_fallback_speaks_the_customers_language_and_a_tenants_own_stays() {
        let bot = BotSettings::default();
        assert!(
            bot.fallback_for("Est-ce que vous avez le wifi dans le restaurant ?")
                .starts_with("Je suis désolé")
        );
        assert!(
            bot.fallback_for("¿Tienen wifi en el restaurante?")
                .starts_with("Lo siento")
        );
        assert_eq!(bot.fallback_for("Do you have wifi?"), bot.fallback_message);
        assert_eq!(
            bot.fallback_for("wifi"),
            bot.fallback_message,
            "too short to tell"
        );
        let own = BotSettings {
            fallback_message: "Désolé, notre équipe vous répond bientôt.".into(),
            ..BotSettings::default()
        };
        assert_eq!(
            own.fallback_for("Is there wifi in the restaurant?"),
            own.fallback_message
        );
        let sources_language = BotSettings {
            answer_in_customer_language: false,
            ..BotSettings::default()
        };
        assert_eq!(
            sources_language.fallback_for("Est-ce que vous avez le wifi ?"),
            sources_language.fallback_message
        );
    }

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

    #[test]
    fn the_defaults_are_valid_and_each_bound_is_checked() {
        assert_eq!(BotSettings::default().validate(), Ok(()));
        type Breaker = fn(&mut BotSettings);
        let cases: [(&str, Breaker); 6] = [
            ("temperature", |s| s.temperature = 1.5),
            ("top_k", |s| s.top_k = 2),
            ("top_k", |s| s.top_k = 11),
            ("max_answer_tokens", |s| s.max_answer_tokens = 0),
            ("system_prompt", |s| s.system_prompt = "x".repeat(2_001)),
            ("fallback_message", |s| s.fallback_message = " ".into()),
        ];
        for (field, break_it) in cases {
            let mut s = BotSettings::default();
            break_it(&mut s);
            assert_eq!(s.validate().map_err(|e| e.0), Err(field));
        }
        let s = BotSettings {
            system_prompt: "é".repeat(2_000),
            ..BotSettings::default()
        };
        assert_eq!(s.validate(), Ok(()), "characters are counted, not bytes");
    }
}
