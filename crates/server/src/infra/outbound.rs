//! What the channel senders (Meta's Graph API, Twilio, ManyChat) share: the error they report,
//! splitting long answers to a platform's length limit, and the retry loop (429, 5xx and the
//! provider's throttling codes retried with backoff; refusals returned at once with the
//! provider's code and message, to be recorded on the message).

use std::future::Future;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// Still failing after the retries (timeouts, 429, 5xx): worth a later retry.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the message; `code` is the provider's (e.g. Meta's 131047:
    /// outside the 24-hour window; Twilio's 63016).
    #[error("the provider refused the message ({code}): {message}")]
    Rejected { code: i64, message: String },
}

/// Why a credential was not accepted as controlling an asset.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The provider refused the credential itself (expired, revoked, mistyped).
    #[error("{0}")]
    CredentialRefused(String),
    /// The credential works, but not for this asset.
    #[error("{0}")]
    NotReached(String),
    /// No answer worth judging (timeouts, 429, 5xx after the retries).
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
}

/// A provider's API: the HTTP client, the base address calls go to, and how many attempts a
/// call gets.
pub struct Endpoint {
    pub client: reqwest::Client,
    pub base: String,
    pub attempts: u32,
}

impl Endpoint {
    pub fn new(base: &str, timeout: Duration, attempts: u32) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            base: base.trim_end_matches('/').to_owned(),
            attempts: attempts.max(1),
        })
    }
}

/// How one attempt went.
pub enum Attempt<T> {
    Done(T),
    /// Worth another try; says why.
    Retry(String),
    Rejected {
        code: i64,
        message: String,
    },
}

/// Runs `attempt` up to `attempts` times, 250 ms, 500 ms, 1 s … apart, while it asks for a
/// retry.
pub async fn with_retries<T, F, Fut>(attempts: u32, mut attempt: F) -> Result<T, SendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut last = String::new();
    for n in 1..=attempts.max(1) {
        if n > 1 {
            tokio::time::sleep(Duration::from_millis(250 << (n - 2).min(5))).await;
        }
        match attempt().await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Retry(why) => last = why,
            Attempt::Rejected { code, message } => {
                return Err(SendError::Rejected { code, message });
            }
        }
    }
    Err(SendError::Unavailable(last))
}

/// Why a request that got no answer failed (never the URL, which may carry ids).
pub fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else {
        "unreachable".into()
    }
}

/// A provider's error message, bounded for storage.
pub fn bounded(message: &str) -> String {
    message.chars().take(300).collect()
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

    #[tokio::test]
    async fn retries_stop_at_a_refusal_or_after_the_attempts() {
        let mut calls = 0;
        let r: Result<(), _> = with_retries(3, || {
            calls += 1;
            async { Attempt::Retry("HTTP 503".into()) }
        })
        .await;
        assert_eq!(r, Err(SendError::Unavailable("HTTP 503".into())));
        assert_eq!(calls, 3);
        let mut calls = 0;
        let r: Result<(), _> = with_retries(3, || {
            calls += 1;
            async {
                Attempt::Rejected {
                    code: 21211,
                    message: "invalid To".into(),
                }
            }
        })
        .await;
        assert!(matches!(r, Err(SendError::Rejected { code: 21211, .. })));
        assert_eq!(calls, 1);
    }
}
