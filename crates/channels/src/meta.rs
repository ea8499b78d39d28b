//! Meta's webhooks (WhatsApp Cloud API, Messenger, Instagram), read but not yet served: the
//! subscription challenge, the `X-Hub-Signature-256` check on the raw body, and the payload
//! turned into channel-neutral events — messages (text, quick replies and postbacks, media)
//! and delivery statuses — each naming the asset (phone number id, page id, Instagram
//! account id) that routes it to its tenant.
//!
//! Untrusted input: the body is size-bounded before parsing, the number of events is capped,
//! texts are cut, and anything unexpected becomes `Unsupported` rather than an error, so one
//! odd entry never makes Meta retry a whole batch.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use cortex_core::conversations::Channel;

pub use crate::event::{Delivery, Event, Inbound, Status};
use cortex_core::channels::InboundContent;

/// Largest webhook body read.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most events taken from one delivery (Meta batches up to 1,000 changes).
pub const MAX_EVENTS: usize = 1_000;
/// Longest text kept of one message, in characters (WhatsApp allows 4,096).
pub const MAX_TEXT_CHARS: usize = 4_096;

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under the app secret,
/// compared in constant time.
pub fn signature_ok(app_secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The person a `signed_request` (Meta's data-deletion callback) names: `<signature>.<payload>`,
/// both base64url, the signature being HMAC-SHA256 of the payload's text under the app secret
/// (constant-time compare) and the payload JSON with `algorithm: HMAC-SHA256` and `user_id`.
pub fn signed_request_user(app_secret: &[u8], signed_request: &str) -> Option<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    if signed_request.len() > 8_192 {
        return None;
    }
    let (signature, payload) = signed_request.trim().split_once('.')?;
    let signature = b64.decode(signature.trim_end_matches('=')).ok()?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC takes keys of any length");
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature).ok()?;
    let v: Value = serde_json::from_slice(&b64.decode(payload.trim_end_matches('=')).ok()?).ok()?;
    if !v["algorithm"]
        .as_str()
        .is_some_and(|a| a.eq_ignore_ascii_case("HMAC-SHA256"))
    {
        return None;
    }
    match &v["user_id"] {
        Value::String(s) if !s.is_empty() && s.len() <= 64 => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The subscription handshake: `hub.challenge` to echo when the mode is `subscribe` and the
/// verify token matches (constant time).
pub fn challenge<'a>(
    mode: Option<&str>,
    token: Option<&str>,
    challenge: Option<&'a str>,
    verify_token: &str,
) -> Option<&'a str> {
    use subtle::ConstantTimeEq;
    let token = token?;
    let matches: bool = token.as_bytes().ct_eq(verify_token.as_bytes()).into();
    (mode == Some("subscribe") && matches && !verify_token.is_empty())
        .then_some(challenge?)
        .filter(|c| !c.is_empty() && c.len() <= 256)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the body is not a JSON object")]
    NotJson,
    #[error("unknown webhook object {0:?}")]
    UnknownObject(String),
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(|s| s.chars().take(MAX_TEXT_CHARS).collect())
}

fn id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && s.len() <= 256 => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn seconds(v: &Value) -> i64 {
    let t = match v {
        Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_i64().unwrap_or(0),
    };
    // Messenger and Instagram send milliseconds.
    if t > 100_000_000_000 { t / 1000 } else { t }
}

/// Reads a webhook body into events.
pub fn parse(body: &[u8]) -> Result<Vec<Event>, PayloadError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(PayloadError::TooLarge);
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| PayloadError::NotJson)?;
    let object = v["object"].as_str().ok_or(PayloadError::NotJson)?;
    let entries = v["entry"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    match object {
        "whatsapp_business_account" => {
            for entry in &entries {
                for change in entry["changes"].as_array().into_iter().flatten() {
                    whatsapp_change(&change["value"], &mut out);
                }
            }
        }
        "page" => messaging(Channel::Messenger, &entries, &mut out),
        "instagram" => messaging(Channel::Instagram, &entries, &mut out),
        other => {
            return Err(PayloadError::UnknownObject(
                other.chars().take(64).collect(),
            ));
        }
    }
    out.truncate(MAX_EVENTS);
    Ok(out)
}

fn whatsapp_change(value: &Value, out: &mut Vec<Event>) {
    let Some(asset_id) = id(&value["metadata"]["phone_number_id"]) else {
        return;
    };
    for m in value["messages"].as_array().into_iter().flatten() {
        let (Some(from), Some(provider_id)) = (id(&m["from"]), id(&m["id"])) else {
            continue;
        };
        let kind = m["type"].as_str().unwrap_or("");
        let content = match kind {
            "text" => text(&m["text"]["body"]).map(|text| InboundContent::Text { text }),
            "button" => Some(InboundContent::Reply {
                payload: text(&m["button"]["payload"]).unwrap_or_default(),
                text: text(&m["button"]["text"]).unwrap_or_default(),
            }),
            "interactive" => {
                let i = &m["interactive"];
                let reply = if i["type"] == "list_reply" {
                    &i["list_reply"]
                } else {
                    &i["button_reply"]
                };
                Some(InboundContent::Reply {
                    payload: text(&reply["id"]).unwrap_or_default(),
                    text: text(&reply["title"]).unwrap_or_default(),
                })
            }
            "image" | "audio" | "video" | "document" | "sticker" => Some(InboundContent::Media {
                kind: kind.to_owned(),
                reference: id(&m[kind]["id"]).unwrap_or_default(),
                caption: text(&m[kind]["caption"]),
            }),
            "location" => Some(InboundContent::Media {
                kind: "location".into(),
                reference: format!(
                    "{},{}",
                    m["location"]["latitude"].as_f64().unwrap_or_default(),
                    m["location"]["longitude"].as_f64().unwrap_or_default()
                ),
                caption: text(&m["location"]["name"]),
            }),
            _ => None,
        }
        .unwrap_or_else(|| InboundContent::Unsupported {
            kind: kind.chars().take(32).collect(),
        });
        out.push(Event::Message(Inbound {
            channel: Channel::WhatsApp,
            asset_id: asset_id.clone(),
            from,
            provider_id,
            timestamp: seconds(&m["timestamp"]),
            content,
        }));
    }
    for s in value["statuses"].as_array().into_iter().flatten() {
        let Some(provider_id) = id(&s["id"]) else {
            continue;
        };
        let status = match s["status"].as_str() {
            Some("sent") => Delivery::Sent,
            Some("delivered") => Delivery::Delivered,
            Some("read") => Delivery::Read,
            Some("failed") => Delivery::Failed,
            _ => continue,
        };
        let error = s["errors"][0].as_object().map(|e| {
            (
                e.get("code").and_then(Value::as_i64).unwrap_or(0),
                e.get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(200)
                    .collect(),
            )
        });
        out.push(Event::Status(Status {
            channel: Channel::WhatsApp,
            asset_id: asset_id.clone(),
            provider_id,
            status,
            error,
        }));
    }
}

/// Messenger (`object: page`) and Instagram (`object: instagram`) share the `messaging` shape.
fn messaging(channel: Channel, entries: &[Value], out: &mut Vec<Event>) {
    for entry in entries {
        for m in entry["messaging"].as_array().into_iter().flatten() {
            let (Some(from), Some(asset_id)) = (id(&m["sender"]["id"]), id(&m["recipient"]["id"]))
            else {
                continue;
            };
            let timestamp = seconds(&m["timestamp"]);
            if let Some(message) = m.get("message") {
                if message["is_echo"] == true {
                    continue; // our own reply, echoed back
                }
                let Some(provider_id) = id(&message["mid"]) else {
                    continue;
                };
                let content = if let Some(q) = message.get("quick_reply") {
                    InboundContent::Reply {
                        payload: text(&q["payload"]).unwrap_or_default(),
                        text: text(&message["text"]).unwrap_or_default(),
                    }
                } else if let Some(t) = text(&message["text"]) {
                    InboundContent::Text { text: t }
                } else if let Some(a) = message["attachments"].get(0) {
                    InboundContent::Media {
                        kind: text(&a["type"]).unwrap_or_else(|| "file".into()),
                        reference: text(&a["payload"]["url"]).unwrap_or_default(),
                        caption: None,
                    }
                } else {
                    InboundContent::Unsupported {
                        kind: "message".into(),
                    }
                };
                out.push(Event::Message(Inbound {
                    channel,
                    asset_id,
                    from,
                    provider_id,
                    timestamp,
                    content,
                }));
            } else if let Some(p) = m.get("postback") {
                // Postbacks carry an `mid` on current API versions; older ones do not, and
                // then the sender and time identify the tap.
                let provider_id =
                    id(&p["mid"]).unwrap_or_else(|| format!("postback:{from}:{timestamp}"));
                out.push(Event::Message(Inbound {
                    channel,
                    asset_id,
                    from,
                    provider_id,
                    timestamp,
                    content: InboundContent::Reply {
                        payload: text(&p["payload"]).unwrap_or_default(),
                        text: text(&p["title"]).unwrap_or_default(),
                    },
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signed(secret: &[u8], payload: &Value) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = b64.encode(payload.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("key");
        mac.update(payload.as_bytes());
        format!("{}.{payload}", b64.encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signed_requests_name_the_person_only_when_signed_by_the_app() {
        let payload = json!({ "algorithm": "HMAC-SHA256", "expires": 1291840400, "issued_at": 1291836800, "user_id": "218471" });
        let good = signed(b"app-secret", &payload);
        assert_eq!(
            signed_request_user(b"app-secret", &good).as_deref(),
            Some("218471")
        );
        assert_eq!(signed_request_user(b"other-secret", &good), None);
        let (sig, body) = good.split_once('.').expect("dot");
        let mut tampered = body.to_owned();
        tampered.push('A');
        assert_eq!(
            signed_request_user(b"app-secret", &format!("{sig}.{tampered}")),
            None
        );
        let other_algorithm = signed(
            b"app-secret",
            &json!({ "algorithm": "none", "user_id": "1" }),
        );
        assert_eq!(signed_request_user(b"app-secret", &other_algorithm), None);
        let no_user = signed(b"app-secret", &json!({ "algorithm": "HMAC-SHA256" }));
        assert_eq!(signed_request_user(b"app-secret", &no_user), None);
        for junk in ["", ".", "abc", "a.b.c", &"x".repeat(10_000)] {
            assert_eq!(signed_request_user(b"app-secret", junk), None, "{junk}");
        }
    }

    fn sign(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("key");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_on_the_raw_bytes() {
        let body = br#"{"object":"page","entry":[]}"#;
        let good = sign(b"app-secret", body);
        assert!(signature_ok(b"app-secret", body, Some(&good)));
        assert!(!signature_ok(b"other-secret", body, Some(&good)));
        let reformatted = br#"{"object": "page", "entry": []}"#;
        assert!(
            !signature_ok(b"app-secret", reformatted, Some(&good)),
            "the same JSON, other bytes"
        );
        assert!(!signature_ok(b"app-secret", body, None));
        assert!(!signature_ok(b"app-secret", body, Some("sha1=abcd")));
        assert!(!signature_ok(b"app-secret", body, Some("sha256=zz")));
        assert!(!signature_ok(
            b"app-secret",
            body,
            Some(&good[..good.len() - 2])
        ));
    }

    #[test]
    fn the_challenge_is_echoed_only_for_the_right_token() {
        assert_eq!(
            challenge(Some("subscribe"), Some("tok"), Some("1158201444"), "tok"),
            Some("1158201444")
        );
        assert_eq!(
            challenge(Some("subscribe"), Some("bad"), Some("1"), "tok"),
            None
        );
        assert_eq!(
            challenge(Some("unsubscribe"), Some("tok"), Some("1"), "tok"),
            None
        );
        assert_eq!(
            challenge(Some("subscribe"), Some(""), Some("1"), ""),
            None,
            "no token configured"
        );
        assert_eq!(challenge(Some("subscribe"), Some("tok"), None, "tok"), None);
    }

    /// Shaped like the examples of Meta's WhatsApp Cloud API webhook reference.
    #[test]
    fn whatsapp_messages_and_statuses() {
        let body = json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": "102290129340398",
                "changes": [{
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
                        "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": "16505551234" }],
                        "messages": [
                            { "from": "16505551234", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                              "timestamp": "1749416383", "type": "text", "text": { "body": "Does it come in another color?" } },
                            { "from": "16505551234", "id": "wamid.2", "timestamp": "1749416390", "type": "interactive",
                              "interactive": { "type": "button_reply", "button_reply": { "id": "talk_to_agent", "title": "Talk to a person" } } },
                            { "from": "16505551234", "id": "wamid.3", "timestamp": "1749416400", "type": "image",
                              "image": { "caption": "this one", "mime_type": "image/jpeg", "sha256": "abc", "id": "1003383421387256" } },
                            { "from": "16505551234", "id": "wamid.4", "timestamp": "1749416401", "type": "reaction",
                              "reaction": { "message_id": "wamid.1", "emoji": "👍" } }
                        ],
                        "statuses": [
                            { "id": "wamid.out1", "status": "delivered", "timestamp": "1750263773", "recipient_id": "16505551234" },
                            { "id": "wamid.out2", "status": "failed", "timestamp": "1750263774", "recipient_id": "16505551234",
                              "errors": [{ "code": 131047, "title": "Re-engagement message", "message": "More than 24 hours have passed" }] }
                        ]
                    }
                }]
            }]
        });
        let events = parse(body.to_string().as_bytes()).expect("parse");
        assert_eq!(events.len(), 6);
        let Event::Message(first) = &events[0] else {
            panic!("a message")
        };
        assert_eq!(first.channel, Channel::WhatsApp);
        assert_eq!(first.asset_id, "106540352242922");
        assert_eq!(first.from, "16505551234");
        assert_eq!(first.timestamp, 1_749_416_383);
        assert_eq!(
            first.content,
            InboundContent::Text {
                text: "Does it come in another color?".into()
            }
        );
        let Event::Message(reply) = &events[1] else {
            panic!("a message")
        };
        assert_eq!(
            reply.content,
            InboundContent::Reply {
                payload: "talk_to_agent".into(),
                text: "Talk to a person".into()
            }
        );
        let Event::Message(image) = &events[2] else {
            panic!("a message")
        };
        assert_eq!(
            image.content,
            InboundContent::Media {
                kind: "image".into(),
                reference: "1003383421387256".into(),
                caption: Some("this one".into())
            }
        );
        let Event::Message(reaction) = &events[3] else {
            panic!("a message")
        };
        assert_eq!(
            reaction.content,
            InboundContent::Unsupported {
                kind: "reaction".into()
            }
        );
        assert_eq!(
            events[5],
            Event::Status(Status {
                channel: Channel::WhatsApp,
                asset_id: "106540352242922".into(),
                provider_id: "wamid.out2".into(),
                status: Delivery::Failed,
                error: Some((131_047, "Re-engagement message".into())),
            })
        );
    }

    /// Shaped like the examples of the Messenger Platform and Instagram webhook references.
    #[test]
    fn messenger_and_instagram_messages_postbacks_and_echoes() {
        let page = json!({
            "object": "page",
            "entry": [{ "id": "1234567890", "time": 1458692752478u64, "messaging": [
                { "sender": { "id": "6789012345" }, "recipient": { "id": "1234567890" }, "timestamp": 1458692752478u64,
                  "message": { "mid": "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM", "text": "hello, world!" } },
                { "sender": { "id": "6789012345" }, "recipient": { "id": "1234567890" }, "timestamp": 1458692752479u64,
                  "message": { "mid": "m_2", "text": "Red", "quick_reply": { "payload": "COLOR_RED" } } },
                { "sender": { "id": "6789012345" }, "recipient": { "id": "1234567890" }, "timestamp": 1458692752480u64,
                  "postback": { "mid": "m_3", "title": "Get Started", "payload": "GET_STARTED" } },
                { "sender": { "id": "1234567890" }, "recipient": { "id": "6789012345" }, "timestamp": 1458692752481u64,
                  "message": { "mid": "m_4", "is_echo": true, "text": "our reply" } },
                { "sender": { "id": "6789012345" }, "recipient": { "id": "1234567890" }, "timestamp": 1458692752482u64,
                  "message": { "mid": "m_5", "attachments": [{ "type": "image", "payload": { "url": "https://scontent.example/x.jpg" } }] } }
            ]}]
        });
        let events = parse(page.to_string().as_bytes()).expect("parse");
        assert_eq!(events.len(), 4, "the echo of our own reply is skipped");
        let Event::Message(m) = &events[0] else {
            panic!("a message")
        };
        assert_eq!(
            (m.channel, m.asset_id.as_str(), m.from.as_str()),
            (Channel::Messenger, "1234567890", "6789012345")
        );
        assert_eq!(m.timestamp, 1_458_692_752, "milliseconds become seconds");
        assert_eq!(
            m.content,
            InboundContent::Text {
                text: "hello, world!".into()
            }
        );
        let Event::Message(q) = &events[1] else {
            panic!("a message")
        };
        assert_eq!(
            q.content,
            InboundContent::Reply {
                payload: "COLOR_RED".into(),
                text: "Red".into()
            }
        );
        let Event::Message(p) = &events[2] else {
            panic!("a message")
        };
        assert_eq!(
            p.content,
            InboundContent::Reply {
                payload: "GET_STARTED".into(),
                text: "Get Started".into()
            }
        );
        let Event::Message(a) = &events[3] else {
            panic!("a message")
        };
        assert!(matches!(&a.content, InboundContent::Media { kind, .. } if kind == "image"));

        let ig = json!({ "object": "instagram", "entry": [{ "id": "17841400000000000", "time": 1569262486134u64, "messaging": [
            { "sender": { "id": "9000" }, "recipient": { "id": "17841400000000000" }, "timestamp": 1569262485349u64,
              "message": { "mid": "aWdfZAG1faWQ", "text": "Is the shop open on Sunday?" } } ] }] });
        let events = parse(ig.to_string().as_bytes()).expect("parse");
        let Event::Message(m) = &events[0] else {
            panic!("a message")
        };
        assert_eq!(m.channel, Channel::Instagram);
        assert_eq!(m.asset_id, "17841400000000000");
    }

    #[test]
    fn hostile_bodies_are_refused_or_bounded() {
        assert_eq!(parse(b"not json"), Err(PayloadError::NotJson));
        assert_eq!(parse(b"[1,2]"), Err(PayloadError::NotJson));
        assert_eq!(
            parse(br#"{"object":"user","entry":[]}"#),
            Err(PayloadError::UnknownObject("user".into()))
        );
        assert_eq!(
            parse(&vec![b' '; MAX_BODY_BYTES + 1]),
            Err(PayloadError::TooLarge)
        );
        // Wrong types and missing fields are skipped, not fatal.
        let odd = json!({ "object": "whatsapp_business_account", "entry": [
            { "changes": [{ "value": { "metadata": { "phone_number_id": "1" }, "messages": [
                { "from": 5, "id": null, "type": "text" }, { "id": "wamid.x", "type": "text" },
                { "from": "1", "id": "wamid.y", "type": "text", "text": { "body": "é".repeat(5000) } } ] } }] },
            { "changes": "nope" }, "junk" ] });
        let events = parse(odd.to_string().as_bytes()).expect("parse");
        assert_eq!(events.len(), 1);
        let Event::Message(m) = &events[0] else {
            panic!("a message")
        };
        assert_eq!(
            m.content,
            InboundContent::Text {
                text: "é".repeat(MAX_TEXT_CHARS)
            }
        );
        let many: Vec<Value> = (0..1_500)
            .map(|i| json!({ "from": "1", "id": format!("wamid.{i}"), "type": "text", "text": { "body": "hi" } }))
            .collect();
        let big = json!({ "object": "whatsapp_business_account", "entry": [{ "changes": [{ "value": {
            "metadata": { "phone_number_id": "1" }, "messages": many } }] }] });
        assert_eq!(
            parse(big.to_string().as_bytes()).expect("parse").len(),
            MAX_EVENTS
        );
    }
}
