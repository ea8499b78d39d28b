//! The application's shared state: settings and every port, built once at start and cloned
//! (cheaply, all `Arc`s) into handlers and jobs.

use std::sync::Arc;

use anyhow::Context;
use cortex_core::Store;
use cortex_core::ports::{BlobStore, Embedder};
use cortex_store_postgres::PgStore;
use cortex_store_sqlite::SqliteStore;

use crate::answer::models::ModelCatalog;
use crate::config::Settings;
use crate::infra::blobs::LocalBlobStore;
use crate::infra::embedder::{Hub, LocalEmbedder};
use crate::infra::fetch::Fetcher;
use crate::infra::mailer::{LogMailer, Mailer, SmtpMailer};
use crate::infra::openai_embedder::OpenAiEmbedder;
use crate::infra::ratelimit::{InMemoryRateLimiter, RateLimiter};
use crate::infra::s3::{S3BlobStore, S3Config};
use crate::infra::tokens::TokenKeys;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub limiter: Arc<dyn RateLimiter>,
    pub keys: Arc<TokenKeys>,
    pub blobs: Arc<dyn BlobStore>,
    pub embedder: Arc<dyn Embedder>,
    /// Orders the fused candidates, when the operator configured one.
    pub reranker: Option<Arc<dyn cortex_core::ports::Reranker>>,
    /// The operator's chat models and each plan's fallback chain.
    pub models: Arc<ModelCatalog>,
    /// Seals and opens secrets at rest (channel tokens).
    pub secrets: Arc<crate::infra::secrets::SecretBox>,
    /// Sends WhatsApp, Messenger and Instagram messages.
    pub graph: Arc<crate::infra::meta_graph::GraphClient>,
    pub twilio: Arc<crate::infra::twilio::TwilioClient>,
    /// One channel customer's messages are answered one at a time, in order.
    pub customer_turns: Arc<crate::infra::keyed_lock::KeyedLocks>,
    pub manychat: Arc<crate::infra::manychat::ManyChatClient>,
    /// Fetches tenant-given URLs through the SSRF guard.
    pub fetcher: Fetcher,
    /// Wakes idle workers when a job is enqueued in this process (others poll).
    pub jobs_ready: Arc<tokio::sync::Notify>,
    /// What the job layer takes the time from.
    pub clock: Arc<dyn crate::jobs::Clock>,
}

impl AppState {
    /// Opens the database named by the settings, applies migrations and wires the ports.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        // One TLS crypto provider for every client (reqwest, lettre); set once per process.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let store = open_store(&settings, true).await?;
        let mailer: Arc<dyn Mailer> = match &settings.smtp.url {
            Some(url) => {
                Arc::new(SmtpMailer::new(url.expose(), &settings.smtp.from).context("SMTP_URL")?)
            }
            None => Arc::new(LogMailer::default()),
        };
        let k = &settings.knowledge;
        let blobs: Arc<dyn BlobStore> = if k.blob_store == "s3" {
            Arc::new(S3BlobStore::new(S3Config {
                endpoint: k.s3_endpoint.clone(),
                bucket: k.s3_bucket.clone(),
                region: k.s3_region.clone(),
                access_key_id: k.s3_access_key_id.clone(),
                secret_access_key: k
                    .s3_secret_access_key
                    .as_ref()
                    .map(|s| s.expose().to_owned())
                    .unwrap_or_default(),
                prefix: k.s3_prefix.clone(),
            })?)
        } else {
            Arc::new(LocalBlobStore::new(settings.blob_dir()))
        };
        let inner: Arc<dyn Embedder> = if k.embedding_provider == "openai" {
            Arc::new(OpenAiEmbedder::new(
                &k.embedding_base_url,
                k.embedding_api_key
                    .as_ref()
                    .or(settings.providers.openai_api_key.as_ref())
                    .map(|s| s.expose().to_owned()),
                &k.embedding_model,
                k.embedding_dimensions,
                k.embedding_send_dimensions
                    .then_some(k.embedding_dimensions),
                std::time::Duration::from_secs(60),
            )?)
        } else {
            Arc::new(
                LocalEmbedder::new(settings.model_dir())
                    .named(&k.model_name)
                    .with_limits(crate::infra::encoder_queue::Limits {
                        batch_tokens: k.embed_batch_tokens,
                        query_tokens: k.embed_query_tokens,
                        max_wait: std::time::Duration::from_micros(k.embed_wait_micros),
                    })
                    .with_precision(k.embed_precision.precision())
                    .with_hub(k.model_hub_repo.as_ref().map(|repo| Hub {
                        endpoint: k.model_hub_endpoint.clone(),
                        repo: repo.clone(),
                        revision: "main".into(),
                    })),
            )
        };
        let embedder: Arc<dyn Embedder> = Arc::new(crate::infra::embed_cache::CachedQueries::new(
            inner,
            k.query_cache,
        ));
        let rerank_timeout = std::time::Duration::from_millis(k.rerank_timeout_ms);
        let reranker: Option<Arc<dyn cortex_core::ports::Reranker>> =
            match (&k.rerank_base_url, &k.rerank_model_dir) {
                (Some(url), _) => Some(Arc::new(
                    crate::infra::remote_reranker::RemoteReranker::new(
                        url,
                        k.rerank_api_key.as_ref().map(|s| s.expose().to_owned()),
                        &k.rerank_model,
                        rerank_timeout,
                    )?,
                )),
                (None, Some(dir)) => {
                    let dir = dir.clone();
                    Some(Arc::new(
                        tokio::task::spawn_blocking(move || {
                            crate::infra::local_reranker::LocalReranker::load(&dir, rerank_timeout)
                        })
                        .await??,
                    ))
                }
                (None, None) => None,
            };
        // Providers that report no usage have their tokens counted with the local tokenizer.
        let counter = embedder.clone();
        let models = Arc::new(ModelCatalog::build(
            &settings,
            Arc::new(move |text: &str| counter.count_tokens(text)),
        )?);
        let mut fetcher = Fetcher::new(
            k.fetch_allow_hosts.clone(),
            std::time::Duration::from_secs(k.fetch_timeout_secs),
            format!(
                "CortexLayerBot/{} (+{})",
                env!("CARGO_PKG_VERSION"),
                settings.app_url
            ),
        );
        if let Some(proxy) = &k.fetch_proxy {
            fetcher = fetcher
                .with_proxy(proxy.expose())
                .map_err(|e| anyhow::anyhow!("CORTEX_FETCH_PROXY: {e}"))?;
        }
        Ok(Self {
            graph: Arc::new(crate::infra::meta_graph::GraphClient::new(
                settings.providers.graph_base_url(),
                settings.providers.graph_version(),
                std::time::Duration::from_secs(20),
                3,
            )?),
            customer_turns: Arc::default(),
            twilio: Arc::new(crate::infra::twilio::TwilioClient::new(
                settings.providers.twilio_base_url(),
                std::time::Duration::from_secs(20),
                3,
            )?),
            manychat: Arc::new(crate::infra::manychat::ManyChatClient::new(
                settings.providers.manychat_base_url(),
                std::time::Duration::from_secs(20),
                3,
            )?),
            secrets: Arc::new(settings.secret_box()?),
            models,
            keys: Arc::new(TokenKeys::new(settings.jwt_secret.expose())),
            blobs,
            embedder,
            reranker,
            fetcher,
            jobs_ready: Arc::new(tokio::sync::Notify::new()),
            clock: Arc::new(crate::jobs::SystemClock),
            settings: Arc::new(settings),
            store,
            mailer,
            limiter: Arc::new(InMemoryRateLimiter::default()),
        })
    }
}

impl AppState {
    /// The database backend's name, and whether it answers with every migration applied.
    pub async fn readiness(&self) -> (&'static str, cortex_core::store::Result<()>) {
        (self.store.backend(), self.store.readiness().await)
    }
}

/// The store the `DATABASE_URL` scheme chooses, optionally migrated.
pub async fn open_store(settings: &Settings, migrate: bool) -> anyhow::Result<Arc<dyn Store>> {
    let url = settings.database_url.expose();
    if url.starts_with("sqlite:") {
        let store = SqliteStore::connect(url)
            .await
            .context("opening the SQLite database")?;
        if migrate {
            store
                .migrate()
                .await
                .context("migrating the SQLite database")?;
        }
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PgStore::connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        if migrate {
            store
                .migrate()
                .await
                .context("migrating the PostgreSQL database")?;
        }
        Ok(Arc::new(store))
    } else {
        anyhow::bail!("DATABASE_URL must start with sqlite: or postgres://")
    }
}
