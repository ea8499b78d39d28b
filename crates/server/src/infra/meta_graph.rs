//! Sending through Meta's Graph API: WhatsApp Cloud API messages
//! (`POST {base}/{version}/{phone-number-id}/messages`) and the Messenger / Instagram Send API
//! (`POST {base}/{version}/{page-or-account-id}/messages`), with the connection's access token
//! as a bearer token. Base URL and version are settings (`META_GRAPH_BASE_URL`,
//! `META_GRAPH_VERSION`).
//!
//! Texts longer than the platform takes (WhatsApp 4,096 characters, Messenger 2,000,
//! Instagram 1,000) are split at sentence boundaries and sent in order. 429 and 5xx (and
//! Meta's throttling codes) are retried with backoff; other errors come back with Meta's code
//! and message, to be recorded on the message.

use std::time::Duration;

use serde_json::{Value, json};

use cortex_core::answer::Channel;

pub use super::outbound::SendError;
use super::outbound::{Attempt, bounded, split_message, transport_error, with_retries};

pub struct GraphClient {
    client: reqwest::Client,
    base: String,
    attempts: u32,
}

/// Longest text one message may carry on `channel`.
pub fn text_limit(channel: Channel) -> usize {
    match channel {
        Channel::Messenger => 2_000,
        Channel::Instagram => 1_000,
        _ => 4_096,
    }
}

impl GraphClient {
    pub fn new(
        base_url: &str,
        version: &str,
        timeout: Duration,
        attempts: u32,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            base: format!(
                "{}/{}",
                base_url.trim_end_matches('/'),
                version.trim_matches('/')
            ),
            attempts: attempts.max(1),
        })
    }

    /// Sends `text` from the asset to the customer, split to the channel's limit; returns
    /// Meta's ids of the messages sent.
    pub async fn send_text(
        &self,
        channel: Channel,
        token: &str,
        asset_id: &str,
        to: &str,
        text: &str,
    ) -> Result<Vec<String>, SendError> {
        let mut ids = Vec::new();
        for part in split_message(text, text_limit(channel)) {
            let body = match channel {
                Channel::WhatsApp => json!({
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": to,
                    "type": "text",
                    "text": { "preview_url": false, "body": part },
                }),
                _ => json!({
                    "recipient": { "id": to },
                    "messaging_type": "RESPONSE",
                    "message": { "text": part },
                }),
            };
            ids.push(self.post(token, asset_id, &body).await?);
        }
        Ok(ids)
    }

    /// Sends an approved WhatsApp template (outside the 24-hour window).
    pub async fn send_template(
        &self,
        token: &str,
        phone_number_id: &str,
        to: &str,
        name: &str,
        language: &str,
    ) -> Result<String, SendError> {
        let body = json!({
            "messaging_product": "whatsapp",
            "to": to,
            "type": "template",
            "template": { "name": name, "language": { "code": language } },
        });
        self.post(token, phone_number_id, &body).await
    }

    async fn post(&self, token: &str, asset_id: &str, body: &Value) -> Result<String, SendError> {
        let url = format!("{}/{}/messages", self.base, asset_id);
        with_retries(self.attempts, || async {
            let response = match self
                .client
                .post(&url)
                .bearer_auth(token)
                .json(body)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => return Attempt::Retry(transport_error(&e)),
            };
            let status = response.status();
            let v: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                let id = v["messages"][0]["id"]
                    .as_str()
                    .or_else(|| v["message_id"].as_str())
                    .unwrap_or_default();
                return Attempt::Done(id.to_owned());
            }
            let code = v["error"]["code"].as_i64().unwrap_or(0);
            let message = bounded(v["error"]["message"].as_str().unwrap_or(""));
            // 4 / 80007 / 130429 / 131048 / 131056: Meta's rate limits.
            let throttled = matches!(code, 4 | 80007 | 130429 | 131048 | 131056);
            if status.as_u16() == 429 || status.is_server_error() || throttled {
                return Attempt::Retry(format!("HTTP {} ({code}) {message}", status.as_u16()));
            }
            Attempt::Rejected { code, message }
        })
        .await
    }
}
