//! A tenant's bot settings: what the answer engine is told to do (model, retrieval depth,
//! abstention threshold, greeting and fallback), with their validation.

use serde::{Deserialize, Serialize};

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
