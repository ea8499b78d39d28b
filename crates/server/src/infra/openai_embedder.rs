//! Any OpenAI-compatible `/embeddings` endpoint behind the [`Embedder`] port: OpenAI itself,
//! Azure-style proxies, Together, Mistral, vLLM, Ollama, llama.cpp's server, text-embeddings-
//! inference. The request is `POST {base}/embeddings` with `{"model", "input": [..]}` and a
//! bearer key; the answer's `data[].embedding` come back in `index` order.
//!
//! 429 and 5xx are retried a few times here (honouring `Retry-After`, at most 20 s each) and
//! then reported as unavailable, so the job retries later with backoff; other errors fail the
//! document with the provider's message.

use std::time::Duration;

use async_trait::async_trait;
use cortex_core::ports::{EmbedError, Embedder};
use serde::Deserialize;

/// Texts per request: providers cap batches (OpenAI at 2,048 inputs); 128 keeps requests
/// small enough to retry cheaply.
const BATCH: usize = 128;
const ATTEMPTS: u32 = 3;

pub struct OpenAiEmbedder {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    /// The model name the API expects.
    api_model: String,
    /// `openai:<model>`, stored with the vectors.
    model_id: String,
    dimensions: usize,
    /// Sent as `dimensions` (models that can shorten their vectors).
    request_dimensions: Option<usize>,
}

impl OpenAiEmbedder {
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        dimensions: usize,
        request_dimensions: Option<usize>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            model_id: format!("openai:{model}"),
            api_model: model.to_owned(),
            dimensions,
            request_dimensions,
        })
    }

    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut body = serde_json::json!({ "model": self.api_model, "input": texts });
        if let Some(d) = self.request_dimensions {
            body["dimensions"] = d.into();
        }
        let url = format!("{}/embeddings", self.base_url);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let mut req = self.client.post(&url).json(&body);
            if let Some(key) = &self.api_key {
                req = req.bearer_auth(key);
            }
            let response = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = if e.is_timeout() {
                        "the embedding service timed out".into()
                    } else {
                        "the embedding service could not be reached".into()
                    };
                    continue;
                }
            };
            let status = response.status();
            if status.as_u16() == 429 || status.is_server_error() {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1 << attempt)
                    .min(20);
                last = format!("the embedding service answered HTTP {}", status.as_u16());
                if attempt < ATTEMPTS {
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                continue;
            }
            if status.as_u16() == 401 || status.as_u16() == 403 {
                // The provider's text may quote part of the operator's key; tenants see this
                // message, so it is not passed on.
                return Err(EmbedError::Failed(format!(
                    "the embedding service rejected the configured credentials (HTTP {}); the operator must check EMBEDDING_API_KEY",
                    status.as_u16()
                )));
            }
            if !status.is_success() {
                let message = response
                    .json::<ErrorBody>()
                    .await
                    .ok()
                    .map(|e| redact(&e.error.message))
                    .unwrap_or_default();
                return Err(EmbedError::Failed(format!(
                    "the embedding service refused the request (HTTP {}): {message}",
                    status.as_u16()
                )));
            }
            let parsed: EmbeddingsResponse = response.json().await.map_err(|e| {
                EmbedError::Failed(format!(
                    "the embedding service's answer is not readable: {e}"
                ))
            })?;
            return self.vectors(parsed, texts.len());
        }
        Err(EmbedError::Unavailable(last))
    }

    fn vectors(
        &self,
        mut parsed: EmbeddingsResponse,
        n: usize,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if parsed.data.len() != n {
            return Err(EmbedError::Failed(format!(
                "the embedding service returned {} vectors for {n} texts",
                parsed.data.len()
            )));
        }
        parsed.data.sort_by_key(|d| d.index);
        parsed
            .data
            .into_iter()
            .map(|d| {
                if d.embedding.len() != self.dimensions {
                    return Err(EmbedError::Failed(format!(
                        "the embedding service returned {} dimensions; configured {}",
                        d.embedding.len(),
                        self.dimensions
                    )));
                }
                let norm = d.embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
                if !norm.is_finite() || norm == 0.0 {
                    return Err(EmbedError::Failed(
                        "the embedding service returned a zero vector".into(),
                    ));
                }
                Ok(d.embedding.into_iter().map(|x| x / norm).collect())
            })
            .collect()
    }
}

/// A provider message fit to show a tenant: at most 300 characters, words that look like
/// keys or tokens replaced.
pub(crate) fn redact(message: &str) -> String {
    message
        .split_whitespace()
        .map(|w| {
            let alnum = w.chars().filter(char::is_ascii_alphanumeric).count();
            if w.starts_with("sk-") || w.starts_with("Bearer") || (alnum >= 20 && w.len() >= 24) {
                "[redacted]"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect()
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingData>,
}

#[derive(Deserialize)]
struct EmbeddingData {
    embedding: Vec<f32>,
    #[serde(default)]
    index: usize,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_input_tokens(&self) -> usize {
        8_191
    }

    /// The provider's tokenizer is not at hand; this over-estimates (a BPE token is ~4
    /// characters of English, never less than a word), so chunks stay under the target.
    fn count_tokens(&self, text: &str) -> usize {
        (text.chars().count() / 3).max(text.split_whitespace().count())
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(self.request(batch).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn provider_messages_lose_anything_key_like() {
        assert_eq!(
            super::redact(
                "Invalid input for key sk-proj-abc123 near token AbCdEfGhIjKlMnOpQrStUvWxYz012345"
            ),
            "Invalid input for key [redacted] near token [redacted]"
        );
    }
}
