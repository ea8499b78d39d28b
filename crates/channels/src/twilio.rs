//! Twilio's WhatsApp webhooks: form-encoded messages (`POST /webhooks/twilio`) and delivery
//! statuses of the messages we sent (`POST /webhooks/twilio/status`), each signed with
//! `X-Twilio-Signature`: base64 HMAC-SHA1, under the auth token of the account the number
//! belongs to, of the URL Twilio called followed by every form parameter's name and value,
//! sorted by name.
//!
//! Untrusted input: the body and the number of parameters are bounded before anything else,
//! texts are cut, and messages of other kinds (SMS, unknown media) are taken as unsupported
//! rather than refused.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use cortex_core::conversations::Channel;

use crate::event::{Delivery, Event, Inbound, Status};
use cortex_core::channels::InboundContent;

/// Largest webhook body read (Twilio's are a few KiB).
pub const MAX_BODY_BYTES: usize = 64 << 10;
/// Most form parameters read (a message with ten media has about 60).
pub const MAX_PARAMS: usize = 200;
/// Longest text kept of one message, in characters.
pub const MAX_TEXT_CHARS: usize = 4_096;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("more than {MAX_PARAMS} form parameters")]
    TooManyParams,
    #[error("`{0}` is missing")]
    Missing(&'static str),
}

/// The form's parameters in order of arrival.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Result<Self, FormError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(FormError::TooLarge);
        }
        let mut params = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            if params.len() == MAX_PARAMS {
                return Err(FormError::TooManyParams);
            }
            params.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(params))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &'static str) -> Result<&str, FormError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or(FormError::Missing(name))
    }

    /// The sender or recipient as an E.164 number, when it is a WhatsApp address
    /// (`whatsapp:+14155238886`).
    pub fn whatsapp(&self, name: &str) -> Option<&str> {
        self.get(name)?.strip_prefix("whatsapp:")
    }

    /// The account the message belongs to.
    pub fn account_sid(&self) -> Option<&str> {
        self.get("AccountSid")
    }
}

/// Twilio's signature of a request: base64 HMAC-SHA1 of the URL and the sorted parameters.
pub fn signature(auth_token: &str, url: &str, form: &Form) -> String {
    let mut params: Vec<&(String, String)> = form.0.iter().collect();
    params.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (k, v) in params {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is Twilio's signature of the request, compared in constant time.
pub fn signature_ok(auth_token: &str, url: &str, form: &Form, header: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return false;
    };
    if auth_token.is_empty() {
        return false;
    }
    signature(auth_token, url, form)
        .as_bytes()
        .ct_eq(header.as_bytes())
        .into()
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_TEXT_CHARS).collect()
}

/// A customer's message. Twilio gives no send time: the time of receipt stands for it.
pub fn message(form: &Form, now: i64) -> Result<Inbound, FormError> {
    let provider_id = form.require("MessageSid")?.to_owned();
    let asset_id = form.whatsapp("To").ok_or(FormError::Missing("To"))?;
    let from = form.whatsapp("From").ok_or(FormError::Missing("From"))?;
    let media: usize = form
        .get("NumMedia")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let body = form.get("Body").unwrap_or("");
    let content = if let Some(payload) = form.get("ButtonPayload").filter(|p| !p.is_empty()) {
        InboundContent::Reply {
            payload: cut(payload),
            text: cut(form.get("ButtonText").unwrap_or("")),
        }
    } else if media > 0 {
        InboundContent::Media {
            kind: form
                .get("MediaContentType0")
                .unwrap_or("media")
                .chars()
                .take(100)
                .collect(),
            reference: form
                .get("MediaUrl0")
                .unwrap_or("")
                .chars()
                .take(2_000)
                .collect(),
            caption: Some(cut(body)).filter(|c| !c.is_empty()),
        }
    } else if let Some(lat) = form.get("Latitude") {
        InboundContent::Media {
            kind: "location".into(),
            reference: format!("{lat},{}", form.get("Longitude").unwrap_or("")),
            caption: None,
        }
    } else if body.is_empty() {
        InboundContent::Unsupported {
            kind: "empty".into(),
        }
    } else {
        InboundContent::Text { text: cut(body) }
    };
    Ok(Inbound {
        channel: Channel::WhatsApp,
        asset_id: asset_id.to_owned(),
        from: from.to_owned(),
        provider_id,
        timestamp: now,
        content,
    })
}

/// A delivery status of a message we sent; `None` for the statuses before sending (queued,
/// accepted, sending…), which move nothing.
pub fn status(form: &Form) -> Result<Option<Status>, FormError> {
    let provider_id = form.require("MessageSid")?.to_owned();
    let asset_id = form.whatsapp("From").ok_or(FormError::Missing("From"))?;
    let status = match form.require("MessageStatus")? {
        "sent" => Delivery::Sent,
        "delivered" => Delivery::Delivered,
        "read" => Delivery::Read,
        "failed" | "undelivered" => Delivery::Failed,
        _ => return Ok(None),
    };
    let error = (status == Delivery::Failed).then(|| {
        let code = form
            .get("ErrorCode")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let message = form
            .get("ErrorMessage")
            .unwrap_or("undelivered")
            .chars()
            .take(300)
            .collect();
        (code, message)
    });
    Ok(Some(Status {
        channel: Channel::WhatsApp,
        asset_id: asset_id.to_owned(),
        provider_id,
        status,
        error,
    }))
}

/// The events of a verified delivery, `status` telling which webhook it came to.
pub fn events(form: &Form, status_callback: bool, now: i64) -> Result<Vec<Event>, FormError> {
    Ok(if status_callback {
        status(form)?.map(Event::Status).into_iter().collect()
    } else {
        vec![Event::Message(message(form, now)?)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's documented example (twilio.com/docs/usage/security): this URL, these
    /// parameters and the auth token `12345` sign as `0/KCTR6DLpKmkAf8muzZqo1nDgQ=`.
    #[test]
    fn signatures_match_twilios_documented_example() {
        let body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
        let form = Form::parse(body.as_bytes()).expect("form");
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature("12345", url, &form),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(signature_ok(
            "12345",
            url,
            &form,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        ));
        assert!(!signature_ok(
            "12345",
            url,
            &form,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgR=")
        ));
        assert!(!signature_ok(
            "12345",
            "https://mycompany.com/myapp.php",
            &form,
            Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
        ));
        assert!(!signature_ok("", url, &form, Some("")));
        assert!(!signature_ok("12345", url, &form, None));
    }

    #[test]
    fn messages_media_buttons_and_statuses_are_read() {
        let text = Form::parse(
            b"SmsMessageSid=SM11&NumMedia=0&ProfileName=Ana&MessageType=text&SmsSid=SM11&WaId=34600111222&SmsStatus=received&Body=Where+is+my+order%3F&To=whatsapp%3A%2B14155238886&NumSegments=1&MessageSid=SM11&AccountSid=AC00&From=whatsapp%3A%2B34600111222&ApiVersion=2010-04-01",
        )
        .expect("form");
        let m = message(&text, 1_700_000_000).expect("message");
        assert_eq!(
            (m.asset_id.as_str(), m.from.as_str(), m.provider_id.as_str()),
            ("+14155238886", "+34600111222", "SM11")
        );
        assert_eq!(
            m.content,
            InboundContent::Text {
                text: "Where is my order?".into()
            }
        );
        let media = Form::parse(
            b"MessageSid=MM2&NumMedia=1&MediaContentType0=image%2Fjpeg&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC00%2FMessages%2FMM2%2FMedia%2FME1&Body=&To=whatsapp%3A%2B14155238886&From=whatsapp%3A%2B34600111222",
        )
        .expect("form");
        assert!(matches!(
            message(&media, 0).expect("media").content,
            InboundContent::Media { ref kind, .. } if kind == "image/jpeg"
        ));
        let button = Form::parse(
            b"MessageSid=SM3&ButtonPayload=track&ButtonText=Track+my+order&Body=Track+my+order&To=whatsapp%3A%2B1415&From=whatsapp%3A%2B3460",
        )
        .expect("form");
        assert_eq!(
            message(&button, 0).expect("button").content,
            InboundContent::Reply {
                payload: "track".into(),
                text: "Track my order".into()
            }
        );
        let sms = Form::parse(b"MessageSid=SM4&Body=hi&To=%2B1415&From=%2B3460").expect("form");
        assert_eq!(message(&sms, 0), Err(FormError::Missing("To")));

        let failed = Form::parse(
            b"MessageSid=SM5&MessageStatus=undelivered&ErrorCode=63016&From=whatsapp%3A%2B14155238886&To=whatsapp%3A%2B3460",
        )
        .expect("form");
        let s = status(&failed).expect("status").expect("moves");
        assert_eq!(
            (s.status, s.error.map(|e| e.0)),
            (Delivery::Failed, Some(63016))
        );
        let queued = Form::parse(b"MessageSid=SM5&MessageStatus=queued&From=whatsapp%3A%2B1415")
            .expect("form");
        assert_eq!(status(&queued), Ok(None));
    }

    #[test]
    fn hostile_forms_are_bounded() {
        assert_eq!(
            Form::parse(&vec![b'a'; MAX_BODY_BYTES + 1]).err(),
            Some(FormError::TooLarge)
        );
        let many = "a=1&".repeat(MAX_PARAMS + 1);
        assert_eq!(
            Form::parse(many.as_bytes()).err(),
            Some(FormError::TooManyParams)
        );
        let long = format!(
            "MessageSid=SM1&To=whatsapp%3A%2B1&From=whatsapp%3A%2B2&Body={}",
            "x".repeat(10_000)
        );
        let m = message(&Form::parse(long.as_bytes()).expect("form"), 0).expect("message");
        assert!(
            matches!(m.content, InboundContent::Text { text: t } if t.chars().count() == MAX_TEXT_CHARS)
        );
        // Broken percent-encoding and bare keys are read, not refused.
        assert!(Form::parse(b"%zz=%&&=&Body").is_ok());
    }
}
