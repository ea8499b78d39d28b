//! ManyChat's webhook: a flow's External Request action calls
//! `POST /webhooks/manychat/{page_id}` with the page's API key as `Authorization: Bearer …`
//! and a JSON body naming the subscriber and their text — either the fields set by hand
//! (`{"subscriber_id": "{{user_id}}", "text": "{{last_input_text}}"}`, optionally
//! `message_id`) or ManyChat's "Full Contact Data" (`id`, `last_input_text`,
//! `last_interaction`). The webhook answers at once with the connection's acknowledgement as
//! a dynamic block; the answer follows through ManyChat's send API.
//!
//! ManyChat gives messages no id. The deduplication key is `message_id` when the flow sends
//! one, else the subscriber's `last_interaction` time, else a digest of the subscriber, the
//! text and the minute of receipt — so a retried request is taken once.

use serde_json::Value;
use sha2::{Digest, Sha256};

use cortex_core::conversations::Channel;

use crate::event::Inbound;
use cortex_core::channels::InboundContent;

/// Largest webhook body read (a full contact record is a few KiB).
pub const MAX_BODY_BYTES: usize = 64 << 10;
/// Longest text kept of one message, in characters.
pub const MAX_TEXT_CHARS: usize = 4_096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the body is not a JSON object")]
    NotJson,
    #[error("`subscriber_id` (or `id`) is missing or not a number")]
    NoSubscriber,
}

/// Whether `header` is `Bearer <api key>`, compared in constant time.
pub fn key_ok(api_key: &str, header: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    let Some(given) = header.and_then(|h| h.trim().strip_prefix("Bearer ")) else {
        return false;
    };
    !api_key.is_empty() && bool::from(given.trim().as_bytes().ct_eq(api_key.as_bytes()))
}

fn field(v: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match &v[*n] {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The subscriber's message, sent to the page `page_id` and received at `now` (Unix seconds).
pub fn message(page_id: &str, body: &[u8], now: i64) -> Result<Inbound, BodyError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| BodyError::NotJson)?;
    if !v.is_object() {
        return Err(BodyError::NotJson);
    }
    let subscriber = field(&v, &["subscriber_id", "id"])
        .filter(|s| s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(BodyError::NoSubscriber)?;
    let text: String = field(&v, &["text", "last_input_text"])
        .unwrap_or_default()
        .chars()
        .take(MAX_TEXT_CHARS)
        .collect();
    let provider_id = match (field(&v, &["message_id"]), field(&v, &["last_interaction"])) {
        (Some(id), _) => format!("mc:{}", id.chars().take(200).collect::<String>()),
        (None, Some(at)) => format!(
            "mc:{subscriber}:{}",
            at.chars().take(64).collect::<String>()
        ),
        (None, None) => {
            let digest = Sha256::new()
                .chain_update(subscriber.as_bytes())
                .chain_update([0])
                .chain_update(text.as_bytes())
                .chain_update((now / 60).to_le_bytes())
                .finalize();
            format!("mc:{subscriber}:{}", hex::encode(&digest[..12]))
        }
    };
    Ok(Inbound {
        channel: Channel::ManyChat,
        asset_id: page_id.to_owned(),
        from: subscriber,
        provider_id,
        timestamp: now,
        content: if text.is_empty() {
            InboundContent::Unsupported {
                kind: "empty".into(),
            }
        } else {
            InboundContent::Text { text }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_set_fields_and_full_contact_data_are_read() {
        let m = message(
            "1065",
            br#"{"subscriber_id": "4711", "text": "Where is my order?"}"#,
            1_700_000_000,
        )
        .expect("message");
        assert_eq!((m.from.as_str(), m.asset_id.as_str()), ("4711", "1065"));
        assert_eq!(
            m.content,
            InboundContent::Text {
                text: "Where is my order?".into()
            }
        );
        let again = message(
            "1065",
            br#"{"subscriber_id": 4711, "text": "Where is my order?"}"#,
            1_700_000_010,
        )
        .expect("again");
        assert_eq!(
            m.provider_id, again.provider_id,
            "a retry within the minute"
        );
        let contact = message(
            "1065",
            br#"{"id": "4711", "page_id": "1065", "first_name": "Ana", "last_input_text": "Hi", "last_interaction": "2026-11-26T10:00:00+00:00"}"#,
            0,
        )
        .expect("contact data");
        assert_eq!(contact.provider_id, "mc:4711:2026-11-26T10:00:00+00:00");
        let with_id = message(
            "1065",
            br#"{"subscriber_id": "4711", "text": "Hi", "message_id": "abc"}"#,
            0,
        )
        .expect("message id");
        assert_eq!(with_id.provider_id, "mc:abc");
    }

    #[test]
    fn bad_bodies_and_keys_are_refused() {
        assert_eq!(message("1", b"[1]", 0).err(), Some(BodyError::NotJson));
        assert_eq!(message("1", b"{", 0).err(), Some(BodyError::NotJson));
        assert_eq!(
            message("1", br#"{"text": "hi"}"#, 0).err(),
            Some(BodyError::NoSubscriber)
        );
        assert_eq!(
            message("1", br#"{"subscriber_id": "../x", "text": "hi"}"#, 0).err(),
            Some(BodyError::NoSubscriber)
        );
        assert_eq!(
            message("1", &vec![b' '; MAX_BODY_BYTES + 1], 0).err(),
            Some(BodyError::TooLarge)
        );
        assert!(key_ok("1065:abcdef", Some("Bearer 1065:abcdef")));
        assert!(!key_ok("1065:abcdef", Some("Bearer 1065:abcdeg")));
        assert!(!key_ok("1065:abcdef", Some("1065:abcdef")));
        assert!(!key_ok("", Some("Bearer ")));
        assert!(!key_ok("1065:abcdef", None));
    }
}
