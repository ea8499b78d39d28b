//! Sending WhatsApp messages through Twilio's Messages API:
//! `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, HTTP basic auth
//! with the account SID and auth token. The base URL is a setting (`TWILIO_BASE_URL`).
//!
//! Twilio takes at most 1,600 characters per WhatsApp body; longer answers are split at
//! sentence boundaries and sent in order. Each message asks Twilio to report its delivery
//! statuses to our status webhook. 429 and 5xx (and Twilio's 20429) are retried with backoff;
//! other errors come back with Twilio's code and message.

use std::time::Duration;

use serde_json::Value;

use super::outbound::{
    Attempt, Endpoint, ProofError, SendError, bounded, split_message, transport_error, with_retries,
};

/// Longest WhatsApp body Twilio accepts.
pub const TEXT_LIMIT: usize = 1_600;

pub struct TwilioClient {
    api: Endpoint,
}

/// The account a message is sent from.
pub struct Account<'a> {
    pub sid: &'a str,
    pub auth_token: &'a str,
}

/// What to send: free text, or an approved template by its Content SID (`HX…`).
pub enum Body<'a> {
    Text(&'a str),
    Template(&'a str),
}

impl TwilioClient {
    pub fn new(base_url: &str, timeout: Duration, attempts: u32) -> anyhow::Result<Self> {
        Ok(Self {
            api: Endpoint::new(base_url, timeout, attempts)?,
        })
    }

    /// Sends from the WhatsApp sender `from` (E.164) to `to` (E.164); returns Twilio's message
    /// SIDs (one per part). `status_callback` is where Twilio reports delivery statuses.
    pub async fn send(
        &self,
        account: &Account<'_>,
        from: &str,
        to: &str,
        body: Body<'_>,
        status_callback: &str,
    ) -> Result<Vec<String>, SendError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api.base, account.sid
        );
        let from = format!("whatsapp:{from}");
        let to = format!("whatsapp:{to}");
        let parts: Vec<(&str, String)> = match body {
            Body::Text(text) => split_message(text, TEXT_LIMIT)
                .into_iter()
                .map(|p| ("Body", p))
                .collect(),
            Body::Template(sid) => vec![("ContentSid", sid.to_owned())],
        };
        let mut sids = Vec::new();
        for (field, value) in parts {
            let form = [
                ("To", to.as_str()),
                ("From", from.as_str()),
                (field, value.as_str()),
                ("StatusCallback", status_callback),
            ];
            let sid = with_retries(self.api.attempts, || async {
                let response = match self
                    .api
                    .client
                    .post(&url)
                    .basic_auth(account.sid, Some(account.auth_token))
                    .form(&form)
                    .send()
                    .await
                {
                    Ok(r) => r,
                    Err(e) => return Attempt::Retry(transport_error(&e)),
                };
                let status = response.status();
                let v: Value = response.json().await.unwrap_or(Value::Null);
                if status.is_success() {
                    return Attempt::Done(v["sid"].as_str().unwrap_or_default().to_owned());
                }
                let code = v["code"].as_i64().unwrap_or(0);
                let message = bounded(v["message"].as_str().unwrap_or(""));
                if status.as_u16() == 429 || status.is_server_error() || code == 20429 {
                    return Attempt::Retry(format!("HTTP {} ({code}) {message}", status.as_u16()));
                }
                Attempt::Rejected { code, message }
            })
            .await?;
            sids.push(sid);
        }
        Ok(sids)
    }

    /// Proves that `number` (E.164) is a sender of the account: the account's own
    /// `IncomingPhoneNumbers` list, read with its SID and auth token, holds it.
    pub async fn prove_number(
        &self,
        account: &Account<'_>,
        number: &str,
    ) -> Result<(), ProofError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/IncomingPhoneNumbers.json?{}",
            self.api.base,
            account.sid,
            form_urlencoded::Serializer::new(String::new())
                .append_pair("PhoneNumber", number)
                .finish()
        );
        let listed = with_retries(self.api.attempts, || async {
            let response = match self
                .api
                .client
                .get(&url)
                .basic_auth(account.sid, Some(account.auth_token))
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => return Attempt::Retry(transport_error(&e)),
            };
            let status = response.status();
            let v: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Attempt::Done(v);
            }
            let code = v["code"].as_i64().unwrap_or(i64::from(status.as_u16()));
            let message = bounded(v["message"].as_str().unwrap_or(""));
            if status.as_u16() == 429 || status.is_server_error() || code == 20429 {
                return Attempt::Retry(format!("HTTP {} ({code}) {message}", status.as_u16()));
            }
            Attempt::Rejected { code, message }
        })
        .await
        .map_err(|e| match e {
            SendError::Unavailable(m) => ProofError::Unavailable(m),
            SendError::Rejected { code, message }
                if code == 20003 || code == 401 || code == 20404 =>
            {
                ProofError::CredentialRefused(format!(
                    "Twilio refused the account SID and auth token ({code}: {message})"
                ))
            }
            SendError::Rejected { code, message } => ProofError::NotReached(format!(
                "Twilio did not list the account's numbers ({code}: {message})"
            )),
        })?;
        let holds = listed["incoming_phone_numbers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["phone_number"].as_str() == Some(number));
        if !holds {
            return Err(ProofError::NotReached(
                "this number is not a sender of the Twilio account".into(),
            ));
        }
        Ok(())
    }
}
