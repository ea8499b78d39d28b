//! Any rerank API of the common `/rerank` shape behind the [`Reranker`] port (Cohere, Jina,
//! Voyage, Mixedbread, and self-hosted servers that copy them): `POST {base}/rerank` with
//! `{"model", "query", "documents": [..], "top_n"}` and a bearer key; the answer's
//! `results` (or `data`) list `{index, relevance_score}`, best first. Every passage must come
//! back scored exactly once, or the answer is refused.
//!
//! The base URL is the operator's configuration, never a tenant's, so it does not pass the
//! SSRF guard. One attempt under a short timeout: a slow or failing reranker leaves the fused
//! order in place rather than holding the customer up.

use std::time::Duration;

use async_trait::async_trait;
use cortex_core::ports::{RerankError, Reranker};
use serde::Deserialize;

/// Longest answer accepted from the API.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

pub struct RemoteReranker {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    model: String,
    name: String,
}

impl RemoteReranker {
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            model: model.to_owned(),
            name: format!("remote:{model}"),
        })
    }
}

#[derive(Deserialize)]
struct Scored {
    index: usize,
    relevance_score: f32,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(alias = "data")]
    results: Vec<Scored>,
}

#[async_trait]
impl Reranker for RemoteReranker {
    fn name(&self) -> &str {
        &self.name
    }

    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, RerankError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let body = serde_json::json!({
            "model": self.model,
            "query": query,
            "documents": passages,
            "top_n": passages.len(),
        });
        let mut request = self
            .client
            .post(format!("{}/rerank", self.base_url))
            .json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RerankError(format!("request failed: {e}")))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RerankError(format!("reading the answer: {e}")))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(RerankError("the answer is too large".into()));
        }
        if !status.is_success() {
            // Only the status: a provider's error text may quote the query back.
            return Err(RerankError(format!("HTTP {status}")));
        }
        let answer: Answer = serde_json::from_slice(&bytes)
            .map_err(|e| RerankError(format!("unexpected answer: {e}")))?;
        let mut scores = vec![None; passages.len()];
        for r in answer.results {
            match scores.get_mut(r.index) {
                Some(slot @ None) if r.relevance_score.is_finite() => {
                    *slot = Some(r.relevance_score);
                }
                _ => {
                    return Err(RerankError(format!(
                        "index {} is out of range, repeated or scored {}",
                        r.index, r.relevance_score
                    )));
                }
            }
        }
        scores
            .into_iter()
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| RerankError("not every passage was scored".into()))
    }
}
