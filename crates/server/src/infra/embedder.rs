//! The local embedding model behind the [`Embedder`] port: all-MiniLM-L6-v2 by default, or
//! any BERT-architecture sentence-transformers model from a folder (its pooling and length
//! read from the folder), on the CPU (`cortex-ai`'s own encoder). Loading takes a moment and ~90 MB, so a process loads each
//! model folder once and shares it, with one [encoder queue](super::encoder_queue) whose thread
//! runs every forward pass: questions and documents' chunks from every caller are packed into
//! shared passes, questions first. Texts are tokenised by the caller (short questions in place,
//! longer batches on the blocking pool), never on the async workers' time for long.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use cortex_ai::encoder::Precision;
use cortex_ai::{MiniLm, Sequence};
use cortex_core::ports::{EmbedError, Embedder};

use super::encoder_queue::{EncoderQueue, Limits, Priority};

/// The stable name stored with the default model's vectors.
pub const LOCAL_MODEL: &str = "all-MiniLM-L6-v2";

/// Files the model folder must hold.
pub const MODEL_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];
/// sentence-transformers' settings beside them, fetched too when the hub has them: the
/// pooling and the longest input (without them: mean pooling over 256 tokens).
pub const SENTENCE_FILES: [&str; 2] = ["sentence_bert_config.json", "1_Pooling/config.json"];

pub struct LocalEmbedder {
    dir: PathBuf,
    /// Stored with every vector: vectors of different models never mix.
    name: String,
    model: OnceLock<Arc<Loaded>>,
    hub: Option<Hub>,
    limits: Limits,
    precision: Precision,
}

/// A model in memory and the queue of its encoder thread.
pub struct Loaded {
    pub model: Arc<MiniLm>,
    pub queue: EncoderQueue,
}

/// Texts up to this many bytes in all are tokenised in place (a question: tens of
/// microseconds); longer batches on the blocking pool.
const TOKENIZE_IN_PLACE_BYTES: usize = 1_024;

/// Where to download the model from when the folder lacks it: a Hugging Face hub (or a
/// mirror speaking its `/{repo}/resolve/{revision}/{file}` paths).
#[derive(Clone, Debug)]
pub struct Hub {
    pub endpoint: String,
    pub repo: String,
    pub revision: String,
}

/// Models already loaded in this process, by folder and precision.
type LoadedModels = Mutex<HashMap<(PathBuf, Precision), Arc<Loaded>>>;

fn loaded() -> &'static LoadedModels {
    static LOADED: OnceLock<LoadedModels> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

impl LocalEmbedder {
    /// An embedder for the model in `dir`, loaded on first use (or by [`Self::load`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            name: LOCAL_MODEL.to_owned(),
            model: OnceLock::new(),
            hub: None,
            limits: Limits::default(),
            precision: Precision::F32,
        }
    }

    /// Runs the encoder's linear layers in `precision` (the folder's model is loaded once per
    /// precision).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// How the encoder thread forms its passes (the first embedder to load a folder sets
    /// them for the process).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Names the model (another model than the default must have its own name).
    pub fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }

    /// Also download the files from `hub` into the folder when they are missing.
    pub fn with_hub(mut self, hub: Option<Hub>) -> Self {
        self.hub = hub;
        self
    }

    fn missing(&self) -> Vec<&'static str> {
        MODEL_FILES
            .iter()
            .copied()
            .filter(|f| !self.dir.join(f).is_file())
            .collect()
    }

    /// Fetches the missing model files from the hub into the folder (each written to a
    /// temporary name and renamed, so a cut download is never mistaken for a model).
    async fn download(&self, hub: &Hub) -> Result<(), EmbedError> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(600))
            .build()
            .map_err(|e| EmbedError::Failed(e.to_string()))?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| EmbedError::Failed(format!("creating {}: {e}", self.dir.display())))?;
        let optional = SENTENCE_FILES
            .iter()
            .copied()
            .filter(|f| !self.dir.join(f).is_file());
        let wanted: Vec<(&str, bool)> = self
            .missing()
            .into_iter()
            .map(|f| (f, true))
            .chain(optional.map(|f| (f, false)))
            .collect();
        for (file, required) in wanted {
            let url = format!(
                "{}/{}/resolve/{}/{file}",
                hub.endpoint.trim_end_matches('/'),
                hub.repo,
                hub.revision
            );
            let response = client
                .get(&url)
                .send()
                .await
                .map_err(|e| EmbedError::Unavailable(format!("downloading {file}: {e}")))?;
            if !required && response.status() == reqwest::StatusCode::NOT_FOUND {
                continue;
            }
            if !response.status().is_success() {
                return Err(EmbedError::Failed(format!(
                    "downloading {file} from {url}: HTTP {}",
                    response.status().as_u16()
                )));
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| EmbedError::Unavailable(format!("downloading {file}: {e}")))?;
            let part = self.dir.join(format!("{file}.partial"));
            if let Some(parent) = part.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|e| {
                    EmbedError::Failed(format!("creating {}: {e}", parent.display()))
                })?;
            }
            tokio::fs::write(&part, &bytes)
                .await
                .and(tokio::fs::rename(&part, self.dir.join(file)).await)
                .map_err(|e| EmbedError::Failed(format!("saving {file}: {e}")))?;
            tracing::info!(file, bytes = bytes.len(), "embedding model file downloaded");
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the model now (blocking) and starts its encoder thread, with a message that says
    /// how to get it when missing.
    pub fn load(&self) -> anyhow::Result<Arc<Loaded>> {
        if let Some(m) = self.model.get() {
            return Ok(m.clone());
        }
        let missing = self.missing();
        if !missing.is_empty() {
            anyhow::bail!(
                "the embedding model is not in {} (missing {}): run scripts/fetch-model.sh, or set CORTEX_MODEL_DIR to a folder with model.safetensors, tokenizer.json and config.json",
                self.dir.display(),
                missing.join(", ")
            );
        }
        let key = (
            self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone()),
            self.precision,
        );
        let mut cache = loaded().lock().unwrap_or_else(|e| e.into_inner());
        let model = match cache.get(&key) {
            Some(m) => m.clone(),
            None => {
                let model =
                    Arc::new(MiniLm::load_with(&self.dir, self.precision).map_err(|e| {
                        anyhow::anyhow!(
                            "loading the embedding model from {}: {e}",
                            self.dir.display()
                        )
                    })?);
                let encoder = model.clone();
                let queue = EncoderQueue::start(
                    self.limits,
                    Box::new(move |seqs| encoder.encode(seqs).map_err(|e| e.to_string())),
                )
                .map_err(|e| anyhow::anyhow!("starting the encoder thread: {e}"))?;
                let m = Arc::new(Loaded { model, queue });
                cache.insert(key, m.clone());
                m
            }
        };
        drop(cache);
        Ok(self.model.get_or_init(|| model).clone())
    }

    fn loaded(&self) -> Result<Arc<Loaded>, EmbedError> {
        self.load()
            .map_err(|e| EmbedError::Failed(format!("{e:#}")))
    }

    /// `texts` tokenised (in place when short, else on the blocking pool) and embedded through
    /// the encoder queue at `priority`.
    async fn queued(
        &self,
        texts: Vec<String>,
        priority: Priority,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let loaded = self.loaded()?;
        let bytes: usize = texts.iter().map(String::len).sum();
        let tokenize = |model: &MiniLm, texts: &[String]| -> Result<Vec<Sequence>, EmbedError> {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            model
                .tokenize(&refs)
                .map_err(|e| EmbedError::Failed(e.to_string()))
        };
        let seqs = if bytes <= TOKENIZE_IN_PLACE_BYTES {
            tokenize(&loaded.model, &texts)?
        } else {
            let model = loaded.model.clone();
            tokio::task::spawn_blocking(move || tokenize(&model, &texts))
                .await
                .map_err(|e| EmbedError::Failed(format!("the tokenizer task stopped: {e}")))??
        };
        loaded
            .queue
            .embed(seqs, priority)
            .await
            .map_err(EmbedError::Failed)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        &self.name
    }

    fn dimensions(&self) -> usize {
        self.model.get().map_or(384, |m| m.model.dimensions())
    }

    fn max_input_tokens(&self) -> usize {
        // [CLS] and [SEP] take two of the model's positions.
        self.loaded()
            .map_or(cortex_ai::minilm::MAX_TOKENS, |m| m.model.max_tokens())
            .saturating_sub(2)
    }

    fn count_tokens(&self, text: &str) -> usize {
        match self.loaded() {
            Ok(m) => m.model.count_tokens(text),
            Err(_) => text.split_whitespace().count(),
        }
    }

    async fn warm_up(&self) -> Result<(), EmbedError> {
        if self.model.get().is_some() {
            return Ok(());
        }
        if let Some(hub) = &self.hub
            && !self.missing().is_empty()
        {
            self.download(hub).await?;
        }
        let loader = LocalEmbedder::new(self.dir.clone())
            .with_limits(self.limits)
            .with_precision(self.precision);
        let model = tokio::task::spawn_blocking(move || loader.load())
            .await
            .map_err(|e| EmbedError::Failed(format!("loading stopped: {e}")))?
            .map_err(|e| EmbedError::Failed(format!("{e:#}")))?;
        let _ = self.model.set(model);
        Ok(())
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.queued(texts, Priority::Query).await
    }

    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        self.queued(vec![text.to_owned()], Priority::Query)
            .await?
            .pop()
            .ok_or_else(|| EmbedError::Failed("no vector for the question".into()))
    }

    async fn embed_documents(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.queued(texts, Priority::Document).await
    }
}
