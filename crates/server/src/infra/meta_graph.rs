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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// Still failing after the retries (timeouts, 429, 5xx): worth a later retry.
    #[error("the Graph API is unavailable: {0}")]
    Unavailable(String),
    /// Meta refused the message; `code` is Meta's (e.g. 131047: outside the 24-hour window).
    #[error("the Graph API refused the message ({code}): {message}")]
    Rejected { code: i64, message: String },
}

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

/// Splits `text` into parts of at most `limit` characters: at sentence ends where possible,
/// else at spaces, else anywhere. Parts keep their order; whitespace between them is dropped.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > limit {
        // Byte offset just past the `limit`-th character.
        let cut = rest
            .char_indices()
            .nth(limit)
            .map_or(rest.len(), |(i, _)| i);
        let window = &rest[..cut];
        let at = window
            .rmatch_indices(['.', '!', '?', '\n'])
            .map(|(i, m)| i + m.len())
            .find(|&i| i > cut / 3)
            .or_else(|| window.rfind(' ').filter(|&i| i > 0))
            .unwrap_or(cut);
        parts.push(rest[..at].trim().to_owned());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest.to_owned());
    }
    parts.retain(|p| !p.is_empty());
    parts
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
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(250 << (attempt - 2).min(5))).await;
            }
            let response = match self
                .client
                .post(&url)
                .bearer_auth(token)
                .json(body)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = if e.is_timeout() {
                        "timed out".into()
                    } else {
                        "unreachable".into()
                    };
                    continue;
                }
            };
            let status = response.status();
            let v: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                let id = v["messages"][0]["id"]
                    .as_str()
                    .or_else(|| v["message_id"].as_str())
                    .unwrap_or_default();
                return Ok(id.to_owned());
            }
            let code = v["error"]["code"].as_i64().unwrap_or(0);
            let message: String = v["error"]["message"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect();
            // 4 / 80007 / 130429 / 131048 / 131056: Meta's rate limits.
            let throttled = matches!(code, 4 | 80007 | 130429 | 131048 | 131056);
            if status.as_u16() == 429 || status.is_server_error() || throttled {
                last = format!("HTTP {} ({code}) {message}", status.as_u16());
                continue;
            }
            return Err(SendError::Rejected { code, message });
        }
        Err(SendError::Unavailable(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_split_at_sentences_within_the_limit() {
        let text = "First sentence here. Second one is a bit longer! Third? Fourth and last.";
        let parts = split_message(text, 30);
        assert!(parts.iter().all(|p| p.chars().count() <= 30), "{parts:?}");
        assert_eq!(parts.join(" "), text, "nothing lost, order kept");
        assert_eq!(parts[0], "First sentence here.");
        // No sentence end in reach: spaces, then a hard cut.
        let words = "aaaa bbbb cccc dddd eeee";
        assert_eq!(split_message(words, 10), ["aaaa bbbb", "cccc dddd", "eeee"]);
        assert_eq!(
            split_message(&"x".repeat(25), 10),
            ["x".repeat(10), "x".repeat(10), "x".repeat(5)]
        );
        let accents = "é".repeat(9);
        assert_eq!(
            split_message(&accents, 4),
            ["éééé", "éééé", "é"],
            "characters, not bytes"
        );
        assert!(split_message("   ", 10).is_empty());
        assert_eq!(split_message("short", 4_096), ["short"]);
    }
}
