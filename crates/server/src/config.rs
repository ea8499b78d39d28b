//! Configuration: one [`Settings`] tree built from built-in defaults (which boot on SQLite with
//! no setup), then an optional `cortexlayer.toml`, then environment variables. This is the only
//! module that reads the process environment.
//!
//! The environment names of the product brief (`DATABASE_URL`, `JWT_SECRET`, `OPENAI_API_KEY`,
//! …) are honoured as they are, so an existing `.env` works; everything else is `CORTEX_*`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A secret value: `Debug` and `Serialize` print `[redacted]`, so it cannot leak into logs or
/// `cortexlayer config` output by accident.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; call only where it is used, never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "[empty]"
        } else {
            "[redacted]"
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "[redacted]" })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The JWT secret used when none is configured. Production refuses to start with it.
pub const DEV_JWT_SECRET: &str = "cortexlayer-development-jwt-secret-do-not-use-in-production";
/// The encryption key (base64 of 32 bytes) used when none is configured; refused in production.
pub const DEV_ENCRYPTION_KEY: &str = "Y29ydGV4bGF5ZXItZGV2LWtleS1ub3QtZm9yLXByb2Q=";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `development` logs verification codes instead of requiring SMTP; `production` refuses
    /// default secrets. (`CORTEX_ENV`)
    pub env: Environment,
    /// Listen address. (`CORTEX_BIND`, or `serve --bind`)
    pub bind: SocketAddr,
    /// `sqlite://…` (default, under `data_dir`) or `postgres://…`. (`DATABASE_URL`)
    pub database_url: Secret,
    /// Where the embedded deployment keeps its files. (`CORTEX_DATA_DIR`)
    pub data_dir: PathBuf,
    /// Turns on Redis for shared rate limits and fan-out. (`REDIS_URL`)
    pub redis_url: Option<Secret>,
    /// Public base URL, used in links sent by email. (`APP_URL`)
    pub app_url: String,
    /// HMAC key for access tokens. (`JWT_SECRET`)
    pub jwt_secret: Secret,
    /// 32-byte key (base64 or hex) for secrets stored at rest. (`ENCRYPTION_KEY`)
    pub encryption_key: Secret,
    /// Earlier keys, still accepted to open secrets sealed before a rotation; `cortexlayer
    /// admin rotate-key` re-seals everything under `encryption_key`. (`ENCRYPTION_OLD_KEYS`,
    /// comma-separated)
    pub encryption_old_keys: Vec<Secret>,
    /// `text` or `json`. (`LOG_FORMAT`)
    pub log_format: LogFormat,
    /// tracing filter, e.g. `info,cortexlayer=debug`. (`CORTEX_LOG`)
    pub log_level: String,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub smtp: SmtpSettings,
    pub knowledge: KnowledgeSettings,
    pub answer: AnswerSettings,
    pub channels: ChannelSettings,
    pub providers: ProviderSettings,
}

/// Messaging channels: how fast replies go out (per connection, below the providers' own
/// throughput limits, so bursts queue here rather than fail there).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSettings {
    /// Messages per second per WhatsApp number (Meta's default is 80; Twilio's senders too).
    pub whatsapp_per_second: u32,
    /// Messages per second per Facebook page.
    pub messenger_per_second: u32,
    /// Messages per second per Instagram account (Meta: 100 text messages a second).
    pub instagram_per_second: u32,
    /// Messages per second per ManyChat page.
    pub manychat_per_second: u32,
    /// Longest a reply waits for its turn before its job is retried later, in seconds.
    pub send_wait_secs: u64,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            whatsapp_per_second: 80,
            messenger_per_second: 40,
            instagram_per_second: 100,
            manychat_per_second: 25,
            send_wait_secs: 30,
        }
    }
}

impl ChannelSettings {
    pub fn per_second(&self, channel: cortex_core::conversations::Channel) -> u32 {
        use cortex_core::conversations::Channel;
        match channel {
            Channel::WhatsApp => self.whatsapp_per_second,
            Channel::Messenger => self.messenger_per_second,
            Channel::Instagram => self.instagram_per_second,
            Channel::ManyChat => self.manychat_per_second,
            _ => u32::MAX,
        }
        .max(1)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes. (`CORTEX_MAX_BODY_BYTES`)
    pub max_body_bytes: usize,
    /// Origins allowed by CORS; empty means same-origin only. (`CORTEX_CORS_ORIGINS`, comma-separated)
    pub cors_allowed_origins: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    /// (`CORTEX_TRUST_PROXY_HEADERS`)
    pub trust_proxy_headers: bool,
    /// Requests taking longer are answered 503. (`CORTEX_REQUEST_TIMEOUT_SECS`)
    pub request_timeout_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub verification_code_ttl_secs: u64,
    pub verification_max_attempts: u32,
    pub invitation_ttl_secs: u64,
    /// Login, verification and resend attempts allowed per client address per minute.
    pub attempts_per_ip_per_minute: u32,
    /// Attempts allowed per account (email) per 15 minutes.
    pub attempts_per_account_per_15_minutes: u32,
    /// Failed logins on one account within 15 minutes that make an audit entry.
    pub failure_burst_threshold: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// `smtp://user:pass@host:587` (STARTTLS), `smtps://…:465` (TLS) or `smtp://host:25` on a
    /// trusted network. Unset in development: mails are written to the log. (`SMTP_URL`)
    pub url: Option<Secret>,
    /// Sender address. (`CORTEX_SMTP_FROM`)
    pub from: String,
}

/// Documents, chunking, embedding and the background workers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// Folder of the local embedding model (`model.safetensors`, `tokenizer.json`,
    /// `config.json`); default `<data_dir>/models/all-MiniLM-L6-v2`. (`CORTEX_MODEL_DIR`)
    pub model_dir: Option<PathBuf>,
    /// The name stored with the local model's vectors; another model than the default
    /// all-MiniLM-L6-v2 needs its own (its vectors never mix with another's).
    /// (`CORTEX_MODEL_NAME`)
    pub model_name: String,
    /// A Hugging Face repository to download the model files from into `model_dir` when they
    /// are missing, e.g. `sentence-transformers/all-MiniLM-L6-v2`. (`CORTEX_MODEL_HUB_REPO`)
    pub model_hub_repo: Option<String>,
    /// The hub's address. (`HF_ENDPOINT`)
    pub model_hub_endpoint: String,
    /// `local` (a folder, `blob_dir`) or `s3` (S3-compatible object storage). (`BLOB_STORE`)
    pub blob_store: String,
    /// S3 endpoint, e.g. `https://s3.eu-west-1.amazonaws.com`. (`S3_ENDPOINT`)
    pub s3_endpoint: String,
    /// (`S3_BUCKET`)
    pub s3_bucket: String,
    /// (`S3_REGION`)
    pub s3_region: String,
    /// (`S3_ACCESS_KEY_ID`)
    pub s3_access_key_id: String,
    /// (`S3_SECRET_ACCESS_KEY`)
    pub s3_secret_access_key: Option<Secret>,
    /// Key prefix inside the bucket. (`S3_PREFIX`)
    pub s3_prefix: String,
    /// Where originals are kept; default `<data_dir>/blobs`. (`CORTEX_BLOB_DIR`)
    pub blob_dir: Option<PathBuf>,
    /// Background workers in this process; 0 runs none (another process does the work).
    /// (`CORTEX_WORKERS`)
    pub workers: usize,
    /// How long a worker holds a job before another may take it over; workers renew it while
    /// they work, so this is how quickly a crashed worker's job resumes. (`CORTEX_JOB_LEASE_SECS`)
    pub job_lease_secs: u64,
    /// Longest a parser may run on one document. (`CORTEX_PARSE_TIMEOUT_SECS`)
    pub parse_timeout_secs: u64,
    /// Target chunk size in tokens (capped at what the embedding model reads).
    pub chunk_tokens: usize,
    /// Tokens repeated from the end of one chunk at the start of the next.
    pub chunk_overlap_tokens: usize,
    /// Largest upload request, all files together. (`CORTEX_MAX_UPLOAD_BYTES`)
    pub max_upload_bytes: usize,
    /// Longest one URL fetch may take, redirects included. (`CORTEX_FETCH_TIMEOUT_SECS`)
    pub fetch_timeout_secs: u64,
    /// `host:port` pairs that may be fetched although they resolve to private addresses
    /// (an intranet wiki); everything else private is refused. (`CORTEX_FETCH_ALLOW_HOSTS`,
    /// comma-separated)
    pub fetch_allow_hosts: Vec<String>,
    /// An egress proxy for tenant URL fetches, for networks that only reach the web through
    /// one. Unset (the default), fetches connect straight to the addresses the SSRF guard
    /// approved and `HTTP(S)_PROXY` in the environment is ignored. Set, the guard still checks
    /// each host's addresses here, but the proxy resolves and connects on its own: it must
    /// refuse private, loopback, link-local and metadata addresses itself.
    /// (`CORTEX_FETCH_PROXY`, e.g. `http://proxy.internal:3128`)
    pub fetch_proxy: Option<Secret>,
    /// `local` (all-MiniLM-L6-v2 on this machine) or `openai` (any OpenAI-compatible
    /// `/embeddings` endpoint). (`EMBEDDING_PROVIDER`)
    pub embedding_provider: String,
    /// Base URL of the OpenAI-compatible API. (`EMBEDDING_BASE_URL`)
    pub embedding_base_url: String,
    /// Model name sent to it. (`EMBEDDING_MODEL`)
    pub embedding_model: String,
    /// Length of its vectors; with `embedding_send_dimensions` also asked for.
    /// (`EMBEDDING_DIMENSIONS`)
    pub embedding_dimensions: usize,
    pub embedding_send_dimensions: bool,
    /// Key for it; defaults to `OPENAI_API_KEY`. (`EMBEDDING_API_KEY`)
    pub embedding_api_key: Option<Secret>,
    /// A rerank API of the common `/rerank` shape (Cohere, Jina, Voyage, …) that orders the
    /// fused candidates, e.g. `https://api.cohere.com/v2`; none by default.
    /// (`RERANK_BASE_URL`)
    pub rerank_base_url: Option<String>,
    /// Model name sent to it. (`RERANK_MODEL`)
    pub rerank_model: String,
    /// Key for it. (`RERANK_API_KEY`)
    pub rerank_api_key: Option<Secret>,
    /// Or a cross-encoder from this folder (`model.safetensors`, `tokenizer.json`,
    /// `config.json` of a BERT sequence-classification model), run locally.
    /// (`RERANK_MODEL_DIR`)
    pub rerank_model_dir: Option<PathBuf>,
    /// Longest wait for the reranker before the fused order stands, in milliseconds.
    /// (`RERANK_TIMEOUT_MS`)
    pub rerank_timeout_ms: u64,
    /// Question vectors kept in memory, so a question asked again is not embedded again
    /// (about 1.6 KB each with the default model); 0 keeps none. (`CORTEX_QUERY_CACHE`)
    pub query_cache: usize,
    /// The local encoder's batches: most tokens in one forward pass of documents' chunks
    /// (`CORTEX_EMBED_BATCH_TOKENS`), most in a pass that carries questions
    /// (`CORTEX_EMBED_QUERY_TOKENS`), and how long, in microseconds, the encoder waits for more
    /// requests to join a pass when fewer are waiting (`CORTEX_EMBED_WAIT_MICROS`; at most
    /// 50,000).
    pub embed_batch_tokens: usize,
    pub embed_query_tokens: usize,
    pub embed_wait_micros: u64,
    /// The local encoder's number format: `auto` (the default: `f16` where the CPU has AVX-512
    /// FP16, else `bf16` where it has AVX-512 BF16, else `f32`); `f32`; `f16` (refused at start
    /// on a CPU without AVX-512 FP16); or `bf16` (refused on a CPU without AVX-512 BF16); each
    /// for every pass. (`CORTEX_EMBED_PRECISION`)
    pub embed_precision: EmbedPrecision,
}

/// `CORTEX_EMBED_PRECISION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedPrecision {
    /// f16 where the CPU has the instructions, else bf16 where it has those, else f32: as
    /// accurate (lowest cosine to sentence-transformers 0.999997 at f16, 0.99997 at bf16, the
    /// same SciFact and answer evaluations) and faster.
    Auto,
    F32,
    Bf16,
    F16,
}

impl EmbedPrecision {
    fn parse(v: &str) -> Result<Self, ConfigError> {
        match v {
            "auto" => Ok(Self::Auto),
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            other => Err(ConfigError::Env {
                name: "CORTEX_EMBED_PRECISION",
                reason: format!("{other:?} is not auto, f32, f16 or bf16"),
            }),
        }
    }

    /// The encoder's precision on this CPU.
    pub fn precision(self) -> cortex_ai::encoder::Precision {
        use cortex_ai::encoder::Precision;
        match self {
            Self::Auto if Precision::f16_available() => Precision::F16,
            Self::Auto if Precision::bf16_available() => Precision::Bf16,
            Self::Auto => Precision::F32,
            Self::F32 => Precision::F32,
            Self::Bf16 => Precision::Bf16,
            Self::F16 => Precision::F16,
        }
    }
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        Self {
            model_dir: None,
            model_hub_repo: None,
            model_hub_endpoint: "https://huggingface.co".into(),
            blob_store: "local".into(),
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: None,
            s3_prefix: String::new(),
            blob_dir: None,
            workers: 2,
            job_lease_secs: 120,
            parse_timeout_secs: 60,
            chunk_tokens: 350,
            chunk_overlap_tokens: 52,
            max_upload_bytes: 64 * 1024 * 1024,
            fetch_timeout_secs: 20,
            fetch_allow_hosts: Vec::new(),
            fetch_proxy: None,
            model_name: crate::infra::embedder::LOCAL_MODEL.into(),
            embedding_provider: "local".into(),
            embedding_base_url: "https://api.openai.com/v1".into(),
            embedding_model: "text-embedding-3-small".into(),
            embedding_dimensions: 1536,
            embedding_send_dimensions: false,
            embedding_api_key: None,
            rerank_base_url: None,
            rerank_model: "rerank-v3.5".into(),
            rerank_api_key: None,
            rerank_model_dir: None,
            rerank_timeout_ms: 2_000,
            query_cache: 4_096,
            embed_batch_tokens: crate::infra::encoder_queue::Limits::default().batch_tokens,
            embed_query_tokens: crate::infra::encoder_queue::Limits::default().query_tokens,
            embed_wait_micros: crate::infra::encoder_queue::Limits::default()
                .max_wait
                .as_micros() as u64,
            embed_precision: EmbedPrecision::Auto,
        }
    }
}

/// The answer engine: the operator's catalogue of chat models, which plans use which, and the
/// retrieval and prompt budgets.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnswerSettings {
    /// Every chat model the operator offers. A model whose key is missing is left out, so the
    /// plans fall back to the extractive answerer when none is usable.
    pub models: Vec<ChatModelSettings>,
    /// Each plan's chain of model ids: the first answers, the next takes over when it fails or
    /// times out. A tenant may put another model of its plan's chain first.
    pub plan_models: std::collections::BTreeMap<String, Vec<String>>,
    /// Longest wait for a model's first byte, and between two streamed pieces.
    /// (`CHAT_TIMEOUT_SECS`)
    pub timeout_secs: u64,
    /// Tries per model on 429/5xx (honouring `Retry-After`) before the next model answers.
    pub attempts: u32,
    /// Longest an answer may wait for models in all (rewrite and answer, every model of the
    /// chain); past it the extractive answerer replies, so a JSON answer stays within the
    /// request timeout. (`CHAT_DEADLINE_SECS`)
    pub deadline_secs: u64,
    /// Longest `Retry-After` honoured; a longer one moves on to the next model.
    pub max_retry_wait_secs: u64,
    /// Tokens of sources and earlier turns a prompt may carry.
    pub context_tokens: usize,
    /// Earlier messages read for a follow-up question and sent to the model.
    pub history_messages: u32,
    /// Hybrid retrieval scores a chunk `vector_weight × similarity + lexical_weight × (the
    /// share of the question's word weight it carries)²` (`cortex_search::hybrid::hybrid_candidates`);
    /// 0.8 and 1 were chosen on the development parts of SciFact and the short-snippet set.
    pub lexical_weight: f32,
    pub vector_weight: f32,
}

/// One chat model endpoint (any OpenAI-compatible Chat Completions API).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatModelSettings {
    /// The id tenants and plans refer to.
    pub id: String,
    /// e.g. `https://api.groq.com/openai/v1`, `http://127.0.0.1:11434/v1` (Ollama).
    pub base_url: String,
    /// The model name the API expects.
    pub model: String,
    pub api_key: Option<Secret>,
    /// Take the key from `providers.<name>_api_key` (`openai`, `groq`, `google`); without a
    /// key there the model is left out. Neither this nor `api_key`: a keyless endpoint.
    pub api_key_from: Option<String>,
}

impl AnswerSettings {
    /// The (lexical, vector) weights of hybrid retrieval.
    pub fn fusion_weights(&self) -> (f32, f32) {
        (self.lexical_weight, self.vector_weight)
    }
}

impl Default for AnswerSettings {
    fn default() -> Self {
        let model = |id: &str, base: &str, name: &str, from: &str| ChatModelSettings {
            id: id.into(),
            base_url: base.into(),
            model: name.into(),
            api_key: None,
            api_key_from: Some(from.into()),
        };
        let chain = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Self {
            models: vec![
                model(
                    "groq-mixtral",
                    "https://api.groq.com/openai/v1",
                    "mixtral-8x7b-32768",
                    "groq",
                ),
                model(
                    "gpt-4o-mini",
                    "https://api.openai.com/v1",
                    "gpt-4o-mini",
                    "openai",
                ),
                model("gpt-4o", "https://api.openai.com/v1", "gpt-4o", "openai"),
            ],
            plan_models: [
                ("starter".to_owned(), chain(&["groq-mixtral"])),
                ("growth".to_owned(), chain(&["groq-mixtral", "gpt-4o-mini"])),
                ("scale".to_owned(), chain(&["gpt-4o", "gpt-4o-mini"])),
            ]
            .into_iter()
            .collect(),
            timeout_secs: 30,
            attempts: 3,
            deadline_secs: 25,
            max_retry_wait_secs: 10,
            context_tokens: 3_000,
            history_messages: 6,
            lexical_weight: 0.8,
            vector_weight: 1.0,
        }
    }
}

/// Keys and endpoints of outside services, used by later features.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    pub openai_api_key: Option<Secret>,
    pub groq_api_key: Option<Secret>,
    pub google_api_key: Option<Secret>,
    pub meta_app_id: Option<String>,
    pub meta_app_secret: Option<Secret>,
    pub meta_verify_token: Option<Secret>,
    pub meta_whatsapp_token: Option<Secret>,
    /// The Graph API's address (default `https://graph.facebook.com`). (`META_GRAPH_BASE_URL`)
    pub meta_graph_base_url: Option<String>,
    /// The Graph API version called (default `v21.0`). (`META_GRAPH_VERSION`)
    pub meta_graph_version: Option<String>,
    /// Where members' browsers open Meta's sign-in dialog (default
    /// `https://www.facebook.com`). (`META_DIALOG_BASE_URL`)
    pub meta_dialog_base_url: Option<String>,
    /// The platform's own Twilio account, for tenants who connect a WhatsApp sender of it
    /// instead of their own account. (`TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`)
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<Secret>,
    /// Twilio's REST API address (default `https://api.twilio.com`). (`TWILIO_BASE_URL`)
    pub twilio_base_url: Option<String>,
    /// ManyChat's API address (default `https://api.manychat.com`). (`MANYCHAT_BASE_URL`)
    pub manychat_base_url: Option<String>,
    pub stripe_secret_key: Option<Secret>,
    pub stripe_webhook_secret: Option<Secret>,
    pub sentry_dsn: Option<Secret>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            env: Environment::Development,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: Secret::new("sqlite://data/cortexlayer.db"),
            data_dir: PathBuf::from("data"),
            redis_url: None,
            app_url: "http://127.0.0.1:8080".into(),
            jwt_secret: Secret::new(DEV_JWT_SECRET),
            encryption_key: Secret::new(DEV_ENCRYPTION_KEY),
            encryption_old_keys: Vec::new(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            http: HttpSettings::default(),
            auth: AuthSettings::default(),
            smtp: SmtpSettings::default(),
            knowledge: KnowledgeSettings::default(),
            answer: AnswerSettings::default(),
            channels: ChannelSettings::default(),
            providers: ProviderSettings::default(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            cors_allowed_origins: Vec::new(),
            trust_proxy_headers: false,
            request_timeout_secs: 30,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            verification_code_ttl_secs: 15 * 60,
            verification_max_attempts: 3,
            invitation_ttl_secs: 7 * 24 * 3600,
            attempts_per_ip_per_minute: 30,
            attempts_per_account_per_15_minutes: 10,
            failure_burst_threshold: 5,
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            url: None,
            from: "CortexLayer <no-reply@localhost>".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {path}: {source}")]
    Toml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("environment variable {name} is invalid: {reason}")]
    Env { name: &'static str, reason: String },
    #[error("refusing to start: {0}")]
    Unsafe(String),
}

/// Reads one environment variable; the indirection lets tests pass a map instead.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Settings {
    /// Defaults, then the TOML file (`path`, else `CORTEX_CONFIG`, else `./cortexlayer.toml`
    /// if it exists), then the environment.
    pub fn load(path: Option<&Path>, env: EnvLookup<'_>) -> Result<Self, ConfigError> {
        let explicit = path
            .map(Path::to_path_buf)
            .or_else(|| env("CORTEX_CONFIG").map(PathBuf::from));
        let file = explicit.clone().or_else(|| {
            let p = PathBuf::from("cortexlayer.toml");
            p.exists().then_some(p)
        });
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Toml { path, source })?
            }
            None => Settings::default(),
        };
        settings.apply_env(env)?;
        Ok(settings)
    }

    /// Settings from the process environment (and the TOML file it may name).
    pub fn from_process_env(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(path, &|name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    fn apply_env(&mut self, env: EnvLookup<'_>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                reason: e.to_string(),
            })
        }
        fn flag(name: &'static str, v: &str) -> Result<bool, ConfigError> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::Env {
                    name,
                    reason: "expected true or false".into(),
                }),
            }
        }
        let secret = |name: &str| env(name).map(Secret::new);

        if let Some(v) = env("CORTEX_ENV") {
            self.env = match v.trim().to_ascii_lowercase().as_str() {
                "development" | "dev" => Environment::Development,
                "production" | "prod" => Environment::Production,
                _ => {
                    return Err(ConfigError::Env {
                        name: "CORTEX_ENV",
                        reason: "expected development or production".into(),
                    });
                }
            };
        }
        if let Some(v) = env("CORTEX_BIND") {
            self.bind = parse("CORTEX_BIND", &v)?;
        }
        if let Some(v) = secret("DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = env("CORTEX_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = secret("REDIS_URL") {
            self.redis_url = Some(v);
        }
        if let Some(v) = env("APP_URL") {
            self.app_url = v;
        }
        if let Some(v) = secret("JWT_SECRET") {
            self.jwt_secret = v;
        }
        if let Some(v) = secret("ENCRYPTION_KEY") {
            self.encryption_key = v;
        }
        if let Some(v) = env("ENCRYPTION_OLD_KEYS") {
            self.encryption_old_keys = v
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(Secret::new)
                .collect();
        }
        if let Some(v) = env("LOG_FORMAT") {
            self.log_format = match v.trim().to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" | "pretty" => LogFormat::Text,
                _ => {
                    return Err(ConfigError::Env {
                        name: "LOG_FORMAT",
                        reason: "expected text or json".into(),
                    });
                }
            };
        }
        if let Some(v) = env("CORTEX_LOG") {
            self.log_level = v;
        }
        if let Some(v) = env("CORTEX_MAX_BODY_BYTES") {
            self.http.max_body_bytes = parse("CORTEX_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = env("CORTEX_CORS_ORIGINS") {
            self.http.cors_allowed_origins = v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = env("CORTEX_TRUST_PROXY_HEADERS") {
            self.http.trust_proxy_headers = flag("CORTEX_TRUST_PROXY_HEADERS", &v)?;
        }
        if let Some(v) = env("CORTEX_REQUEST_TIMEOUT_SECS") {
            self.http.request_timeout_secs = parse("CORTEX_REQUEST_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = secret("SMTP_URL") {
            self.smtp.url = Some(v);
        }
        if let Some(v) = env("CORTEX_SMTP_FROM") {
            self.smtp.from = v;
        }
        let k = &mut self.knowledge;
        if let Some(v) = env("CORTEX_MODEL_DIR") {
            k.model_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("CORTEX_MODEL_HUB_REPO") {
            k.model_hub_repo = Some(v);
        }
        if let Some(v) = env("HF_ENDPOINT") {
            k.model_hub_endpoint = v;
        }
        if let Some(v) = env("BLOB_STORE") {
            k.blob_store = v.trim().to_ascii_lowercase();
        }
        for (name, slot) in [
            ("S3_ENDPOINT", &mut k.s3_endpoint),
            ("S3_BUCKET", &mut k.s3_bucket),
            ("S3_REGION", &mut k.s3_region),
            ("S3_ACCESS_KEY_ID", &mut k.s3_access_key_id),
            ("S3_PREFIX", &mut k.s3_prefix),
        ] {
            if let Some(v) = env(name) {
                *slot = v;
            }
        }
        if let Some(v) = secret("S3_SECRET_ACCESS_KEY") {
            k.s3_secret_access_key = Some(v);
        }
        if let Some(v) = env("CORTEX_BLOB_DIR") {
            k.blob_dir = Some(PathBuf::from(v));
        }
        for (name, slot) in [
            ("CORTEX_QUERY_CACHE", &mut k.query_cache),
            ("CORTEX_EMBED_BATCH_TOKENS", &mut k.embed_batch_tokens),
            ("CORTEX_EMBED_QUERY_TOKENS", &mut k.embed_query_tokens),
        ] {
            if let Some(v) = env(name) {
                *slot = parse(name, &v)?;
            }
        }
        if let Some(v) = env("CORTEX_EMBED_PRECISION") {
            k.embed_precision = EmbedPrecision::parse(&v)?;
        }
        if let Some(v) = env("CORTEX_EMBED_WAIT_MICROS") {
            k.embed_wait_micros = parse("CORTEX_EMBED_WAIT_MICROS", &v)?;
        }
        if let Some(v) = env("CORTEX_WORKERS") {
            k.workers = parse("CORTEX_WORKERS", &v)?;
        }
        if let Some(v) = env("CORTEX_JOB_LEASE_SECS") {
            k.job_lease_secs = parse("CORTEX_JOB_LEASE_SECS", &v)?;
        }
        if let Some(v) = env("CORTEX_PARSE_TIMEOUT_SECS") {
            k.parse_timeout_secs = parse("CORTEX_PARSE_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = env("CORTEX_FETCH_TIMEOUT_SECS") {
            k.fetch_timeout_secs = parse("CORTEX_FETCH_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = env("CORTEX_FETCH_ALLOW_HOSTS") {
            k.fetch_allow_hosts = v
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
        }
        if let Some(v) = env("CORTEX_FETCH_PROXY").filter(|v| !v.trim().is_empty()) {
            k.fetch_proxy = Some(Secret::new(v.trim().to_owned()));
        }
        if let Some(v) = env("CORTEX_MODEL_NAME").filter(|v| !v.trim().is_empty()) {
            k.model_name = v.trim().to_owned();
        }
        if let Some(v) = env("EMBEDDING_PROVIDER") {
            k.embedding_provider = v.trim().to_ascii_lowercase();
        }
        if let Some(v) = env("EMBEDDING_BASE_URL") {
            k.embedding_base_url = v;
        }
        if let Some(v) = env("EMBEDDING_MODEL") {
            k.embedding_model = v;
        }
        if let Some(v) = env("EMBEDDING_DIMENSIONS") {
            k.embedding_dimensions = parse("EMBEDDING_DIMENSIONS", &v)?;
            k.embedding_send_dimensions = true;
        }
        if let Some(v) = secret("EMBEDDING_API_KEY") {
            k.embedding_api_key = Some(v);
        }
        if let Some(v) = env("RERANK_BASE_URL").filter(|v| !v.trim().is_empty()) {
            k.rerank_base_url = Some(v.trim().to_owned());
        }
        if let Some(v) = env("RERANK_MODEL") {
            k.rerank_model = v;
        }
        if let Some(v) = secret("RERANK_API_KEY") {
            k.rerank_api_key = Some(v);
        }
        if let Some(v) = env("RERANK_MODEL_DIR").filter(|v| !v.trim().is_empty()) {
            k.rerank_model_dir = Some(PathBuf::from(v.trim()));
        }
        if let Some(v) = env("RERANK_TIMEOUT_MS") {
            k.rerank_timeout_ms = parse("RERANK_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = env("CORTEX_MAX_UPLOAD_BYTES") {
            k.max_upload_bytes = parse("CORTEX_MAX_UPLOAD_BYTES", &v)?;
        }
        let a = &mut self.answer;
        if let Some(v) = env("CHAT_TIMEOUT_SECS") {
            a.timeout_secs = parse("CHAT_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = env("CHAT_DEADLINE_SECS") {
            a.deadline_secs = parse("CHAT_DEADLINE_SECS", &v)?;
        }
        for (name, id) in [("OPENAI_BASE_URL", "openai"), ("GROQ_BASE_URL", "groq")] {
            if let Some(v) = env(name) {
                for m in &mut a.models {
                    if m.api_key_from.as_deref() == Some(id) {
                        m.base_url = v.clone();
                    }
                }
            }
        }
        // One model of the operator's own (Ollama, vLLM, a proxy) at the head of every plan.
        if let Some(base_url) = env("LLM_BASE_URL") {
            let model = env("LLM_MODEL").ok_or(ConfigError::Env {
                name: "LLM_MODEL",
                reason: "LLM_BASE_URL needs LLM_MODEL too".into(),
            })?;
            a.models.retain(|m| m.id != "default");
            a.models.insert(
                0,
                ChatModelSettings {
                    id: "default".into(),
                    base_url,
                    model,
                    api_key: secret("LLM_API_KEY"),
                    api_key_from: None,
                },
            );
            for chain in a.plan_models.values_mut() {
                chain.retain(|id| id != "default");
                chain.insert(0, "default".into());
            }
        }
        let p = &mut self.providers;
        let pairs: [(&str, &mut Option<Secret>); 10] = [
            ("OPENAI_API_KEY", &mut p.openai_api_key),
            ("GROQ_API_KEY", &mut p.groq_api_key),
            ("GOOGLE_API_KEY", &mut p.google_api_key),
            ("META_APP_SECRET", &mut p.meta_app_secret),
            ("META_VERIFY_TOKEN", &mut p.meta_verify_token),
            ("META_WHATSAPP_TOKEN", &mut p.meta_whatsapp_token),
            ("TWILIO_AUTH_TOKEN", &mut p.twilio_auth_token),
            ("STRIPE_SECRET_KEY", &mut p.stripe_secret_key),
            ("STRIPE_WEBHOOK_SECRET", &mut p.stripe_webhook_secret),
            ("SENTRY_DSN", &mut p.sentry_dsn),
        ];
        for (name, slot) in pairs {
            if let Some(v) = secret(name) {
                *slot = Some(v);
            }
        }
        if let Some(v) = env("META_APP_ID") {
            p.meta_app_id = Some(v);
        }
        if let Some(v) = env("META_GRAPH_BASE_URL") {
            p.meta_graph_base_url = Some(v);
        }
        if let Some(v) = env("META_GRAPH_VERSION") {
            p.meta_graph_version = Some(v);
        }
        if let Some(v) = env("META_DIALOG_BASE_URL") {
            p.meta_dialog_base_url = Some(v);
        }
        if let Some(v) = env("TWILIO_ACCOUNT_SID") {
            p.twilio_account_sid = Some(v);
        }
        if let Some(v) = env("TWILIO_BASE_URL") {
            p.twilio_base_url = Some(v);
        }
        if let Some(v) = env("MANYCHAT_BASE_URL") {
            p.manychat_base_url = Some(v);
        }
        Ok(())
    }

    /// Checks that hold in every mode, and the stricter ones of production.
    pub fn validate(&self) -> Result<(), ConfigError> {
        decode_key(self.encryption_key.expose()).ok_or_else(|| {
            ConfigError::Unsafe("ENCRYPTION_KEY must be 32 bytes, base64 or hex encoded".into())
        })?;
        if self
            .encryption_old_keys
            .iter()
            .any(|k| decode_key(k.expose()).is_none())
        {
            return Err(ConfigError::Unsafe(
                "each of ENCRYPTION_OLD_KEYS must be 32 bytes, base64 or hex encoded".into(),
            ));
        }
        if self.jwt_secret.expose().len() < 32 {
            return Err(ConfigError::Unsafe(
                "JWT_SECRET must be at least 32 characters".into(),
            ));
        }
        let k = &self.knowledge;
        if k.job_lease_secs < 3 || k.parse_timeout_secs == 0 {
            return Err(ConfigError::Unsafe(
                "CORTEX_JOB_LEASE_SECS must be at least 3 and CORTEX_PARSE_TIMEOUT_SECS at least 1"
                    .into(),
            ));
        }
        if k.chunk_tokens < 32 || k.chunk_overlap_tokens >= k.chunk_tokens / 2 {
            return Err(ConfigError::Unsafe(
                "knowledge.chunk_tokens must be at least 32 and the overlap under half of it"
                    .into(),
            ));
        }
        if !(256..=65_536).contains(&k.embed_batch_tokens)
            || !(256..=65_536).contains(&k.embed_query_tokens)
            || k.embed_wait_micros > 50_000
        {
            return Err(ConfigError::Unsafe(
                "CORTEX_EMBED_BATCH_TOKENS and CORTEX_EMBED_QUERY_TOKENS must be 256 to 65536 and CORTEX_EMBED_WAIT_MICROS at most 50000"
                    .into(),
            ));
        }
        match k.blob_store.as_str() {
            "local" => {}
            "s3" => {
                if k.s3_endpoint.is_empty()
                    || k.s3_bucket.is_empty()
                    || k.s3_access_key_id.is_empty()
                    || k.s3_secret_access_key.is_none()
                {
                    return Err(ConfigError::Unsafe(
                        "BLOB_STORE=s3 needs S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY".into(),
                    ));
                }
            }
            _ => {
                return Err(ConfigError::Unsafe("BLOB_STORE must be local or s3".into()));
            }
        }
        if !matches!(k.embedding_provider.as_str(), "local" | "openai") {
            return Err(ConfigError::Unsafe(
                "EMBEDDING_PROVIDER must be local or openai".into(),
            ));
        }
        if k.embedding_provider == "openai" {
            url::Url::parse(&k.embedding_base_url).map_err(|e| {
                ConfigError::Unsafe(format!("EMBEDDING_BASE_URL is not a URL: {e}"))
            })?;
            if k.embedding_dimensions == 0 {
                return Err(ConfigError::Unsafe(
                    "EMBEDDING_DIMENSIONS must be positive".into(),
                ));
            }
        }
        if k.rerank_base_url.is_some() && k.rerank_model_dir.is_some() {
            return Err(ConfigError::Unsafe(
                "RERANK_BASE_URL and RERANK_MODEL_DIR name two rerankers; set one".into(),
            ));
        }
        if k.rerank_model_dir.is_some() && k.rerank_timeout_ms == 0 {
            return Err(ConfigError::Unsafe(
                "RERANK_TIMEOUT_MS must be positive".into(),
            ));
        }
        if let Some(url) = &k.rerank_base_url {
            url::Url::parse(url)
                .map_err(|e| ConfigError::Unsafe(format!("RERANK_BASE_URL is not a URL: {e}")))?;
            if k.rerank_timeout_ms == 0 || k.rerank_model.trim().is_empty() {
                return Err(ConfigError::Unsafe(
                    "RERANK_MODEL must be named and RERANK_TIMEOUT_MS positive".into(),
                ));
            }
        }
        let a = &self.answer;
        let mut ids = std::collections::HashSet::new();
        for m in &a.models {
            if !ids.insert(m.id.as_str()) || m.id == cortex_core::answer::BotSettings::EXTRACTIVE {
                return Err(ConfigError::Unsafe(format!(
                    "answer.models: the id {:?} is taken",
                    m.id
                )));
            }
            url::Url::parse(&m.base_url).map_err(|e| {
                ConfigError::Unsafe(format!(
                    "answer.models {:?}: base_url is not a URL: {e}",
                    m.id
                ))
            })?;
            if let Some(from) = &m.api_key_from
                && !matches!(from.as_str(), "openai" | "groq" | "google")
            {
                return Err(ConfigError::Unsafe(format!(
                    "answer.models {:?}: api_key_from must be openai, groq or google",
                    m.id
                )));
            }
        }
        for (plan, chain) in &a.plan_models {
            if let Some(unknown) = chain.iter().find(|id| !ids.contains(id.as_str())) {
                return Err(ConfigError::Unsafe(format!(
                    "answer.plan_models.{plan}: no model has the id {unknown:?}"
                )));
            }
        }
        if a.timeout_secs == 0 || a.attempts == 0 || a.deadline_secs == 0 || a.context_tokens < 256
        {
            return Err(ConfigError::Unsafe(
                "answer: timeout_secs, deadline_secs and attempts must be positive, context_tokens at least 256"
                    .into(),
            ));
        }
        if !(a.lexical_weight >= 0.0 && a.vector_weight >= 0.0)
            || a.lexical_weight + a.vector_weight <= 0.0
        {
            return Err(ConfigError::Unsafe(
                "answer: the fusion weights must be non-negative and not both zero".into(),
            ));
        }
        url::Url::parse(&self.app_url)
            .map_err(|e| ConfigError::Unsafe(format!("APP_URL is not a URL: {e}")))?;
        if self.env == Environment::Production {
            if self.jwt_secret.expose() == DEV_JWT_SECRET {
                return Err(ConfigError::Unsafe(
                    "production mode needs JWT_SECRET set to a random value of 32+ characters"
                        .into(),
                ));
            }
            if self.encryption_key.expose() == DEV_ENCRYPTION_KEY {
                return Err(ConfigError::Unsafe(
                    "production mode needs ENCRYPTION_KEY set (e.g. `openssl rand -base64 32`)"
                        .into(),
                ));
            }
            if self.smtp.url.is_none() {
                return Err(ConfigError::Unsafe(
                    "production mode needs SMTP_URL: verification codes and invitations go out by email".into(),
                ));
            }
        }
        Ok(())
    }

    /// The local embedding model's folder.
    pub fn model_dir(&self) -> PathBuf {
        self.knowledge
            .model_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("models").join("all-MiniLM-L6-v2"))
    }

    /// The folder of the local blob store.
    pub fn blob_dir(&self) -> PathBuf {
        self.knowledge
            .blob_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
    }

    pub fn is_production(&self) -> bool {
        self.env == Environment::Production
    }

    /// The effective configuration as TOML with every secret redacted.
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

/// `KEY=value` lines of a `.env` file: `#` comments, optional `export `, optional quotes.
pub fn parse_dotenv(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

/// A 32-byte key from base64 (standard or URL-safe) or 64 hex digits.
impl ProviderSettings {
    pub fn graph_base_url(&self) -> &str {
        self.meta_graph_base_url
            .as_deref()
            .unwrap_or("https://graph.facebook.com")
    }

    pub fn graph_version(&self) -> &str {
        self.meta_graph_version.as_deref().unwrap_or("v21.0")
    }

    pub fn meta_dialog_base_url(&self) -> &str {
        self.meta_dialog_base_url
            .as_deref()
            .unwrap_or("https://www.facebook.com")
    }

    pub fn twilio_base_url(&self) -> &str {
        self.twilio_base_url
            .as_deref()
            .unwrap_or("https://api.twilio.com")
    }

    pub fn manychat_base_url(&self) -> &str {
        self.manychat_base_url
            .as_deref()
            .unwrap_or("https://api.manychat.com")
    }
}

impl Settings {
    /// The box that seals secrets at rest under `encryption_key` (and opens those sealed under
    /// the old keys). Call after [`Settings::validate`].
    pub fn secret_box(&self) -> Result<crate::infra::secrets::SecretBox, ConfigError> {
        let bad = || {
            ConfigError::Unsafe("ENCRYPTION_KEY or ENCRYPTION_OLD_KEYS is not a 32-byte key".into())
        };
        let current = decode_key(self.encryption_key.expose()).ok_or_else(bad)?;
        let old = self
            .encryption_old_keys
            .iter()
            .map(|k| decode_key(k.expose()).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::infra::secrets::SecretBox::new(current, &old))
    }
}

pub fn decode_key(s: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let s = s.trim();
    let bytes = if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(s).ok()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s))
            .ok()?
    };
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load(None, &|k| map.get(k).cloned())
    }

    #[test]
    fn the_readme_model_catalogue_example_loads() {
        let readme = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
        )
        .expect("README");
        let start = readme.find("```toml\n[answer]").expect("the example") + "```toml\n".len();
        let example = &readme[start..start + readme[start..].find("```").expect("its end")];
        let s: Settings = toml::from_str(example).expect("the example parses");
        s.validate().expect("the example is valid");
        assert_eq!(s.answer.models.len(), 2);
        assert_eq!(
            s.answer.plan_models["growth"],
            ["llama-local", "gpt-4o-mini"]
        );
    }

    #[test]
    fn an_own_model_heads_every_chain_and_unknown_ids_are_refused() {
        let s = load(&[
            ("LLM_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("LLM_MODEL", "llama3.1:8b"),
        ])
        .expect("loads");
        s.validate().expect("valid");
        assert_eq!(s.answer.models[0].id, "default");
        assert!(s.answer.models[0].api_key_from.is_none(), "keyless");
        for chain in s.answer.plan_models.values() {
            assert_eq!(chain[0], "default");
        }
        assert!(matches!(
            load(&[("LLM_BASE_URL", "http://127.0.0.1:11434/v1")]),
            Err(ConfigError::Env {
                name: "LLM_MODEL",
                ..
            })
        ));
        let mut bad = load(&[]).expect("defaults");
        bad.answer
            .plan_models
            .insert("starter".into(), vec!["no-such-model".into()]);
        assert!(bad.validate().is_err());
        let mut bad = load(&[]).expect("defaults");
        bad.answer.models[1].id = "extractive".into();
        assert!(bad.validate().is_err(), "extractive is reserved");
    }

    #[test]
    fn defaults_boot_on_sqlite_on_loopback() {
        let s = load(&[]).expect("defaults load");
        s.validate().expect("defaults are valid in development");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert!(s.database_url.expose().starts_with("sqlite://data/"));
    }

    #[test]
    fn the_brief_environment_names_are_honoured() {
        let s = load(&[
            ("DATABASE_URL", "postgres://u:p@db/cortex"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("OPENAI_API_KEY", "sk-test"),
            ("META_APP_ID", "123"),
            (
                "CORTEX_CORS_ORIGINS",
                "https://a.example, https://b.example",
            ),
            ("LOG_FORMAT", "json"),
        ])
        .expect("loads");
        assert_eq!(s.database_url.expose(), "postgres://u:p@db/cortex");
        assert_eq!(
            s.providers.openai_api_key.as_ref().map(Secret::expose),
            Some("sk-test")
        );
        assert_eq!(s.providers.meta_app_id.as_deref(), Some("123"));
        assert_eq!(
            s.http.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn production_refuses_default_or_missing_secrets() {
        let err = load(&[("CORTEX_ENV", "production"), ("SMTP_URL", "smtp://mail:25")])
            .expect("loads")
            .validate()
            .expect_err("default JWT secret refused");
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");

        let err = load(&[
            ("CORTEX_ENV", "production"),
            ("SMTP_URL", "smtp://mail:25"),
            ("JWT_SECRET", "a-real-random-secret-of-enough-length!"),
        ])
        .expect("loads")
        .validate()
        .expect_err("default encryption key refused");
        assert!(err.to_string().contains("ENCRYPTION_KEY"), "{err}");

        load(&[
            ("CORTEX_ENV", "production"),
            ("SMTP_URL", "smtp://mail:25"),
            ("JWT_SECRET", "a-real-random-secret-of-enough-length!"),
            ("ENCRYPTION_KEY", &"ab".repeat(32)),
        ])
        .expect("loads")
        .validate()
        .expect("fully configured production starts");
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let err = load(&[("CORTEX_BIND", "not-an-address")]).expect_err("refused");
        assert!(err.to_string().contains("CORTEX_BIND"));
        let err = load(&[("ENCRYPTION_KEY", "too-short")])
            .expect("loads")
            .validate()
            .expect_err("refused");
        assert!(err.to_string().contains("ENCRYPTION_KEY"));
    }

    #[test]
    fn the_encoder_precision_is_f16_or_bf16_where_the_cpu_has_it_unless_another_is_asked_for() {
        use cortex_ai::encoder::Precision;
        let default = load(&[]).expect("loads");
        assert_eq!(default.knowledge.embed_precision, EmbedPrecision::Auto);
        let native = if Precision::f16_available() {
            Precision::F16
        } else if Precision::bf16_available() {
            Precision::Bf16
        } else {
            Precision::F32
        };
        assert_eq!(default.knowledge.embed_precision.precision(), native);
        let f32 = load(&[("CORTEX_EMBED_PRECISION", "f32")]).expect("loads");
        assert_eq!(f32.knowledge.embed_precision.precision(), Precision::F32);
        let bf16 = load(&[("CORTEX_EMBED_PRECISION", "bf16")]).expect("loads");
        assert_eq!(bf16.knowledge.embed_precision.precision(), Precision::Bf16);
        let f16 = load(&[("CORTEX_EMBED_PRECISION", "f16")]).expect("loads");
        assert_eq!(f16.knowledge.embed_precision.precision(), Precision::F16);
        let err = load(&[("CORTEX_EMBED_PRECISION", "int8")]).expect_err("refused");
        assert!(err.to_string().contains("CORTEX_EMBED_PRECISION"), "{err}");
        let toml: Settings =
            toml::from_str("[knowledge]\nembed_precision = \"bf16\"\n").expect("parses");
        assert_eq!(toml.knowledge.embed_precision, EmbedPrecision::Bf16);
    }

    #[test]
    fn printed_configuration_redacts_secrets() {
        let s = load(&[
            ("JWT_SECRET", "super-secret-value-that-must-not-print"),
            ("STRIPE_SECRET_KEY", "sk_live_x"),
        ])
        .expect("loads");
        let out = s.redacted_toml();
        assert!(!out.contains("super-secret-value"), "{out}");
        assert!(!out.contains("sk_live_x"), "{out}");
        assert!(out.contains("[redacted]"));
        assert!(!format!("{s:?}").contains("super-secret-value"));
    }

    #[test]
    fn dotenv_files_are_read_like_a_shell_would() {
        let env = parse_dotenv(
            "# comment\nexport JWT_SECRET=\"abc def\"\nDATABASE_URL='postgres://x'\nEMPTY=\n\nBAD LINE\n",
        );
        assert_eq!(env.get("JWT_SECRET").map(String::as_str), Some("abc def"));
        assert_eq!(
            env.get("DATABASE_URL").map(String::as_str),
            Some("postgres://x")
        );
        assert_eq!(env.get("EMPTY").map(String::as_str), Some(""));
        assert_eq!(env.len(), 3);
    }

    #[test]
    fn a_toml_file_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("cortex-cfg-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("cortexlayer.toml");
        std::fs::write(&path, "app_url = \"https://support.example\"\nbind = \"0.0.0.0:9000\"\n[auth]\nverification_max_attempts = 5\n")
            .expect("write");
        let s = Settings::load(Some(&path), &|k| {
            (k == "CORTEX_BIND").then(|| "127.0.0.1:9100".to_owned())
        })
        .expect("loads");
        assert_eq!(s.app_url, "https://support.example");
        assert_eq!(s.auth.verification_max_attempts, 5);
        assert_eq!(
            s.bind.to_string(),
            "127.0.0.1:9100",
            "environment wins over the file"
        );
    }
}
