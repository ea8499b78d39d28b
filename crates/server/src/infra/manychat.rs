//! Sending through ManyChat's API: `POST {base}/fb/sending/sendContent` with the page's API
//! key as a bearer token and the message in ManyChat's dynamic-block format (`version: v2`).
//! The base URL is a setting (`MANYCHAT_BASE_URL`).
//!
//! ManyChat answers `{"status": "success"}` without a message id (so no delivery statuses
//! follow) or `{"status": "error", "message": …}`. Texts are split to 2,000 characters at
//! sentence boundaries; 429 and 5xx are retried with backoff.

use std::time::Duration;

use serde_json::{Value, json};

use super::outbound::{
    Attempt, Endpoint, ProofError, SendError, bounded, split_message, transport_error, with_retries,
};

/// Longest text of one ManyChat text message.
pub const TEXT_LIMIT: usize = 2_000;

pub struct ManyChatClient {
    api: Endpoint,
}

/// The body ManyChat shows as messages: in the send API's `data` and in a webhook reply.
pub fn dynamic_block(texts: &[String]) -> Value {
    let messages: Vec<Value> = texts
        .iter()
        .map(|t| json!({ "type": "text", "text": t }))
        .collect();
    json!({ "version": "v2", "content": { "messages": messages } })
}

impl ManyChatClient {
    pub fn new(base_url: &str, timeout: Duration, attempts: u32) -> anyhow::Result<Self> {
        Ok(Self {
            api: Endpoint::new(base_url, timeout, attempts)?,
        })
    }

    /// Sends `text` to the subscriber in one call (split into messages of the platform's
    /// length); returns how many messages it made.
    pub async fn send_text(
        &self,
        api_key: &str,
        subscriber_id: &str,
        text: &str,
    ) -> Result<usize, SendError> {
        let parts = split_message(text, TEXT_LIMIT);
        if parts.is_empty() {
            return Ok(0);
        }
        // ManyChat's subscriber ids are numbers; one that is not cannot be sent to.
        let subscriber: u64 = subscriber_id.parse().map_err(|_| SendError::Rejected {
            code: 0,
            message: "the subscriber id is not a number".into(),
        })?;
        let body = json!({ "subscriber_id": subscriber, "data": dynamic_block(&parts) });
        let url = format!("{}/fb/sending/sendContent", self.api.base);
        self.call(|| self.api.client.post(&url).bearer_auth(api_key).json(&body))
            .await
            .map(|_| parts.len())
    }

    /// One call of ManyChat's API, retried on 429 and 5xx: its answer when `status` is
    /// `success`, else ManyChat's message with the HTTP status as the code.
    async fn call(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, SendError> {
        with_retries(self.api.attempts, || async {
            let response = match request().send().await {
                Ok(r) => r,
                Err(e) => return Attempt::Retry(transport_error(&e)),
            };
            let status = response.status();
            let v: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() && v["status"] == "success" {
                return Attempt::Done(v);
            }
            let message = bounded(v["message"].as_str().unwrap_or(""));
            if status.as_u16() == 429 || status.is_server_error() {
                return Attempt::Retry(format!("HTTP {} {message}", status.as_u16()));
            }
            Attempt::Rejected {
                code: i64::from(status.as_u16()),
                message,
            }
        })
        .await
    }

    /// Proves that `api_key` is the key of the page `page_id`: ManyChat's `GET
    /// /fb/page/getInfo` answers for the page the key belongs to.
    pub async fn prove_page(&self, api_key: &str, page_id: &str) -> Result<(), ProofError> {
        let url = format!("{}/fb/page/getInfo", self.api.base);
        let info = self
            .call(|| self.api.client.get(&url).bearer_auth(api_key))
            .await
            .map_err(|e| match e {
                SendError::Unavailable(m) => ProofError::Unavailable(m),
                SendError::Rejected { code, message } => ProofError::CredentialRefused(format!(
                    "ManyChat refused the API key (HTTP {code}: {message})"
                )),
            })?;
        let id = match &info["data"]["id"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        if id != page_id {
            return Err(ProofError::NotReached(
                "the API key belongs to another ManyChat page".into(),
            ));
        }
        Ok(())
    }
}
