//! A cross-encoder from a model folder behind the [`Reranker`] port (`RERANK_MODEL_DIR`): a
//! BERT-family sequence-classification model such as `cross-encoder/ms-marco-MiniLM-L-6-v2`,
//! run by `cortex-ai`'s own encoder on the blocking pool. It reads question and passage
//! together, which a bi-encoder cannot. Loaded once at start-up, so a wrong folder stops the
//! server with the reason instead of failing every answer.
//!
//! It costs a forward pass over every (question, passage) pair, up to 512 tokens each, so it
//! runs under the same `RERANK_TIMEOUT_MS` as a remote one: past it the fused order stands
//! (docs/benchmarks.md has what a pool costs).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cortex_ai::CrossEncoder;
use cortex_core::ports::{RerankError, Reranker};

pub struct LocalReranker {
    model: Arc<CrossEncoder>,
    name: String,
    timeout: Duration,
}

impl LocalReranker {
    pub fn load(dir: &Path, timeout: Duration) -> anyhow::Result<Self> {
        let model = CrossEncoder::load(dir)
            .map_err(|e| anyhow::anyhow!("RERANK_MODEL_DIR {}: {e}", dir.display()))?;
        let folder = dir.file_name().map_or_else(
            || "cross-encoder".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self {
            model: Arc::new(model),
            name: format!("local:{folder}"),
            timeout,
        })
    }
}

#[async_trait]
impl Reranker for LocalReranker {
    fn name(&self) -> &str {
        &self.name
    }

    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, RerankError> {
        let model = self.model.clone();
        let query = query.to_owned();
        let passages = passages.to_vec();
        let run = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
            model.score(&query, &refs)
        });
        match tokio::time::timeout(self.timeout, run).await {
            Err(_) => Err(RerankError(format!(
                "no scores within {} ms",
                self.timeout.as_millis()
            ))),
            Ok(Err(e)) => Err(RerankError(format!("the scoring task failed: {e}"))),
            Ok(Ok(Err(e))) => Err(RerankError(e.to_string())),
            Ok(Ok(Ok(scores))) => Ok(scores),
        }
    }
}
