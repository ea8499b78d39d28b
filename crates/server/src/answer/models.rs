//! The operator's chat models and the fallback chain: each plan names an ordered list of model
//! ids; the first usable one answers, and when it fails (timeout, 429 or 5xx after its
//! retries, a refused request) the next one does — as long as nothing was streamed yet, so a
//! customer never sees two half answers glued together.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cortex_core::answer::BotSettings;
use cortex_core::ports::{ChatError, ChatModel, ChatRequest, ChatResponse, DeltaSink};

use crate::config::{ChatModelSettings, Settings};
use crate::infra::openai_chat::{OpenAiChat, OpenAiChatConfig, TokenCounter};

/// Every usable model of the operator's catalogue and each plan's chain.
pub struct ModelCatalog {
    models: HashMap<String, Arc<dyn ChatModel>>,
    plans: BTreeMap<String, Vec<String>>,
}

/// The key a model is called with: `Some(None)` for a keyless endpoint, `None` when the key
/// it needs is not configured (the model is left out).
fn resolve_key(settings: &Settings, m: &ChatModelSettings) -> Option<Option<String>> {
    if let Some(key) = &m.api_key {
        return Some(Some(key.expose().to_owned()));
    }
    let p = &settings.providers;
    match m.api_key_from.as_deref() {
        None => Some(None),
        Some(from) => {
            let key = match from {
                "openai" => p.openai_api_key.as_ref(),
                "groq" => p.groq_api_key.as_ref(),
                "google" => p.google_api_key.as_ref(),
                _ => None,
            }?;
            Some(Some(key.expose().to_owned()))
        }
    }
}

impl ModelCatalog {
    pub fn build(settings: &Settings, count: TokenCounter) -> anyhow::Result<Self> {
        let a = &settings.answer;
        let mut models: HashMap<String, Arc<dyn ChatModel>> = HashMap::new();
        for m in &a.models {
            let Some(api_key) = resolve_key(settings, m) else {
                continue;
            };
            let model = OpenAiChat::new(
                OpenAiChatConfig {
                    id: m.id.clone(),
                    base_url: m.base_url.clone(),
                    api_key,
                    model: m.model.clone(),
                    timeout: Duration::from_secs(a.timeout_secs),
                    attempts: a.attempts,
                    max_retry_wait: Duration::from_secs(a.max_retry_wait_secs),
                },
                count.clone(),
            )?;
            models.insert(m.id.clone(), Arc::new(model));
        }
        Ok(Self {
            models,
            plans: a.plan_models.clone(),
        })
    }

    /// The usable model ids of a plan's chain, in order.
    pub fn plan_chain(&self, plan: &str) -> Vec<String> {
        self.plans
            .get(plan)
            .map(|ids| {
                ids.iter()
                    .filter(|id| self.models.contains_key(*id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a tenant of `plan` may choose `model` (a usable model of its chain, or the
    /// extractive answerer).
    pub fn allows(&self, plan: &str, model: &str) -> bool {
        model == BotSettings::EXTRACTIVE || self.plan_chain(plan).iter().any(|id| id == model)
    }

    /// The chain a tenant's bot uses: its chosen model first, then the rest of its plan's
    /// chain. Empty means the extractive answerer.
    pub fn chain(&self, plan: &str, bot: &BotSettings) -> Vec<Arc<dyn ChatModel>> {
        let mut ids = self.plan_chain(plan);
        match bot.model.as_deref() {
            Some(BotSettings::EXTRACTIVE) => return Vec::new(),
            Some(chosen) if ids.iter().any(|id| id == chosen) => {
                ids.retain(|id| id != chosen);
                ids.insert(0, chosen.to_owned());
            }
            _ => {}
        }
        ids.iter()
            .filter_map(|id| self.models.get(id).cloned())
            .collect()
    }
}

/// What each model that failed said, for the logs.
pub struct ChainFailure {
    pub failures: Vec<(String, ChatError)>,
    /// Text was streamed before the failure.
    pub streamed: bool,
}

/// Asks the chain's models in turn until one answers, giving up at `deadline` (so an answer
/// can still be made another way within the caller's own time limit).
pub async fn complete(
    chain: &[Arc<dyn ChatModel>],
    request: &ChatRequest,
    on_delta: Option<DeltaSink<'_>>,
    deadline: tokio::time::Instant,
) -> Result<ChatResponse, ChainFailure> {
    let streamed = AtomicBool::new(false);
    let mut failures = Vec::new();
    for model in chain {
        let forward = |text: &str| {
            streamed.store(true, Ordering::Relaxed);
            if let Some(sink) = on_delta {
                sink(text);
            }
        };
        let sink: Option<DeltaSink<'_>> = on_delta.map(|_| &forward as DeltaSink<'_>);
        let outcome = match tokio::time::timeout_at(deadline, model.complete(request, sink)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::warn!(model.id = model.id(), "the answer's deadline passed");
                failures.push((
                    model.id().to_owned(),
                    ChatError::Unavailable("the answer's deadline passed".into()),
                ));
                return Err(ChainFailure {
                    failures,
                    streamed: streamed.load(Ordering::Relaxed),
                });
            }
        };
        match outcome {
            Ok(response) => return Ok(response),
            Err(e) => {
                tracing::warn!(model.id = model.id(), error = %e, "chat model failed");
                failures.push((model.id().to_owned(), e));
                if streamed.load(Ordering::Relaxed) {
                    return Err(ChainFailure {
                        failures,
                        streamed: true,
                    });
                }
            }
        }
    }
    Err(ChainFailure {
        failures,
        streamed: false,
    })
}
