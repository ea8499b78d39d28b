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

use cortex_core::conversations::Channel;

use super::outbound::{Attempt, Endpoint, bounded, split_message, transport_error, with_retries};
pub use super::outbound::{ProofError, SendError};

pub struct GraphClient {
    api: Endpoint,
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
        let base = format!(
            "{}/{}",
            base_url.trim_end_matches('/'),
            version.trim_matches('/')
        );
        Ok(Self {
            api: Endpoint::new(&base, timeout, attempts)?,
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
        let url = format!("{}/{}/messages", self.api.base, asset_id);
        with_retries(self.api.attempts, || async {
            let response = match self
                .api
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

/// An asset a member's Meta login reaches: a page (Messenger), an Instagram account (through
/// its page) or a WhatsApp phone number (in a WhatsApp Business Account).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MetaAsset {
    /// The page id, Instagram account id or phone number id.
    pub asset_id: String,
    pub name: String,
    /// The token that sends from it: the page's token, or the member's long-lived token for
    /// WhatsApp.
    pub token: String,
    /// Where the webhook subscription is made: the page (Messenger, Instagram) or the WhatsApp
    /// Business Account.
    pub subscribe_to: String,
}

/// Most pages of a Graph list followed.
const MAX_PAGES: usize = 10;

impl GraphClient {
    /// A GET of the Graph API (`path` after the version, or a full `paging.next` URL), with
    /// the token as a bearer; retried like sends.
    async fn get(&self, path_or_url: &str, token: Option<&str>) -> Result<Value, SendError> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}/{}", self.api.base, path_or_url.trim_start_matches('/'))
        };
        with_retries(self.api.attempts, || async {
            let mut request = self.api.client.get(&url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => return Attempt::Retry(transport_error(&e)),
            };
            let status = response.status();
            let v: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Attempt::Done(v);
            }
            let code = v["error"]["code"].as_i64().unwrap_or(0);
            let message = bounded(v["error"]["message"].as_str().unwrap_or(""));
            if status.as_u16() == 429 || status.is_server_error() || matches!(code, 4 | 17 | 32) {
                return Attempt::Retry(format!("HTTP {} ({code}) {message}", status.as_u16()));
            }
            Attempt::Rejected { code, message }
        })
        .await
    }

    /// A list's `data`, following `paging.next` up to [`MAX_PAGES`] pages. Only pages of this
    /// Graph API (same base) are followed.
    async fn list(&self, path: &str, token: &str) -> Result<Vec<Value>, SendError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_owned());
        for _ in 0..MAX_PAGES {
            let Some(at) = next.take() else { break };
            let v = self.get(&at, Some(token)).await?;
            out.extend(v["data"].as_array().cloned().unwrap_or_default());
            next = v["paging"]["next"]
                .as_str()
                .filter(|n| n.starts_with(&self.api.base))
                .map(str::to_owned);
        }
        Ok(out)
    }

    /// Meta's OAuth: the code from the dialog for a user token, then that token for a
    /// long-lived one.
    pub async fn exchange_code(
        &self,
        app_id: &str,
        app_secret: &str,
        redirect_uri: &str,
        code: &str,
    ) -> Result<String, SendError> {
        let query = |pairs: &[(&str, &str)]| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        };
        let short = self
            .get(
                &format!(
                    "oauth/access_token?{}",
                    query(&[
                        ("client_id", app_id),
                        ("redirect_uri", redirect_uri),
                        ("client_secret", app_secret),
                        ("code", code),
                    ])
                ),
                None,
            )
            .await?;
        let short = short["access_token"].as_str().unwrap_or_default();
        if short.is_empty() {
            return Err(SendError::Rejected {
                code: 0,
                message: "no access_token in the code exchange".into(),
            });
        }
        let long = self
            .get(
                &format!(
                    "oauth/access_token?{}",
                    query(&[
                        ("grant_type", "fb_exchange_token"),
                        ("client_id", app_id),
                        ("client_secret", app_secret),
                        ("fb_exchange_token", short),
                    ])
                ),
                None,
            )
            .await?;
        Ok(long["access_token"].as_str().unwrap_or(short).to_owned())
    }

    /// The assets of `kind` the user token reaches.
    pub async fn assets(
        &self,
        kind: Channel,
        app_id: &str,
        app_secret: &str,
        user_token: &str,
    ) -> Result<Vec<MetaAsset>, SendError> {
        let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        match kind {
            Channel::Messenger => Ok(self
                .list("me/accounts?fields=id,name,access_token", user_token)
                .await?
                .iter()
                .filter(|p| p["id"].is_string() && p["access_token"].is_string())
                .map(|p| MetaAsset {
                    asset_id: text(p, "id"),
                    name: text(p, "name"),
                    token: text(p, "access_token"),
                    subscribe_to: text(p, "id"),
                })
                .collect()),
            Channel::Instagram => Ok(self
                .list(
                    "me/accounts?fields=id,name,access_token,instagram_business_account%7Bid,username%7D",
                    user_token,
                )
                .await?
                .iter()
                .filter(|p| p["instagram_business_account"]["id"].is_string())
                .map(|p| {
                    let ig = &p["instagram_business_account"];
                    MetaAsset {
                        asset_id: text(ig, "id"),
                        name: ig["username"]
                            .as_str()
                            .map(|u| format!("@{u}"))
                            .unwrap_or_else(|| text(p, "name")),
                        token: text(p, "access_token"),
                        subscribe_to: text(p, "id"),
                    }
                })
                .collect()),
            _ => {
                // The WhatsApp Business Accounts the user granted, then their numbers.
                let debug = self
                    .get(
                        &format!(
                            "debug_token?{}",
                            form_urlencoded::Serializer::new(String::new())
                                .append_pair("input_token", user_token)
                                .finish()
                        ),
                        Some(&format!("{app_id}|{app_secret}")),
                    )
                    .await?;
                let accounts: Vec<String> = debug["data"]["granular_scopes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| s["scope"] == "whatsapp_business_management")
                    .flat_map(|s| s["target_ids"].as_array().cloned().unwrap_or_default())
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                    .take(50)
                    .collect();
                let mut out = Vec::new();
                for waba in accounts {
                    for n in self
                        .list(
                            &format!("{waba}/phone_numbers?fields=id,display_phone_number,verified_name"),
                            user_token,
                        )
                        .await?
                    {
                        if !n["id"].is_string() {
                            continue;
                        }
                        out.push(MetaAsset {
                            asset_id: text(&n, "id"),
                            name: format!(
                                "{} {}",
                                text(&n, "verified_name"),
                                text(&n, "display_phone_number")
                            )
                            .trim()
                            .to_owned(),
                            token: user_token.to_owned(),
                            subscribe_to: waba.clone(),
                        });
                    }
                }
                Ok(out)
            }
        }
    }

    /// Subscribes the app to the asset's webhooks: the page's messages and postbacks
    /// (Messenger, Instagram) or the WhatsApp Business Account's.
    pub async fn subscribe(&self, kind: Channel, asset: &MetaAsset) -> Result<(), SendError> {
        let path = match kind {
            Channel::WhatsApp => {
                format!("{}/{}/subscribed_apps", self.api.base, asset.subscribe_to)
            }
            _ => format!(
                "{}/{}/subscribed_apps?subscribed_fields=messages,messaging_postbacks",
                self.api.base, asset.subscribe_to
            ),
        };
        self.subscription(reqwest::Method::POST, &path, &asset.token)
            .await
    }

    /// A call to an asset's `subscribed_apps` edge, which answers `{"success": true}`.
    async fn subscription(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &str,
    ) -> Result<(), SendError> {
        with_retries(self.api.attempts, || async {
            let request = self.api.client.request(method.clone(), url);
            let response = match request.bearer_auth(token).send().await {
                Ok(r) => r,
                Err(e) => return Attempt::Retry(transport_error(&e)),
            };
            let status = response.status();
            let v: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() && v["success"] == true {
                return Attempt::Done(());
            }
            let code = v["error"]["code"].as_i64().unwrap_or(0);
            let message = bounded(v["error"]["message"].as_str().unwrap_or(""));
            if status.as_u16() == 429 || status.is_server_error() {
                return Attempt::Retry(format!("HTTP {} ({code}) {message}", status.as_u16()));
            }
            Attempt::Rejected { code, message }
        })
        .await
    }

    /// Proves that `token` controls the asset, by reading it through the Graph API with that
    /// token: a WhatsApp phone number id must come back as itself; for Messenger the token
    /// must be the page's own token (`/me` is the page), for Instagram the token of the page
    /// the account is linked to. Returns where the app's webhook subscription for the asset
    /// lives, when that is known (the page; a phone number's business account is not
    /// readable from the number).
    pub async fn prove_control(
        &self,
        kind: Channel,
        token: &str,
        asset_id: &str,
    ) -> Result<Option<String>, ProofError> {
        let what = match kind {
            Channel::WhatsApp => "WhatsApp phone number id",
            Channel::Messenger => "page",
            _ => "Instagram account",
        };
        let refused = |e: SendError| match e {
            SendError::Unavailable(m) => ProofError::Unavailable(m),
            SendError::Rejected { code: 190, message } => ProofError::CredentialRefused(format!(
                "Meta refused the access token (OAuthException 190: {message})"
            )),
            SendError::Rejected { code, message } => ProofError::NotReached(format!(
                "the access token does not reach this {what} (Meta {code}: {message})"
            )),
        };
        match kind {
            Channel::WhatsApp => {
                let v = self
                    .get(
                        &format!("{asset_id}?fields=id,display_phone_number,verified_name"),
                        Some(token),
                    )
                    .await
                    .map_err(refused)?;
                if v["id"].as_str() != Some(asset_id) {
                    return Err(ProofError::NotReached(
                        "the access token does not reach this WhatsApp phone number id".into(),
                    ));
                }
                Ok(None)
            }
            Channel::Messenger => {
                let v = self
                    .get("me?fields=id,name", Some(token))
                    .await
                    .map_err(refused)?;
                if v["id"].as_str() != Some(asset_id) {
                    return Err(ProofError::NotReached(
                        "the access token is not a page token of this page".into(),
                    ));
                }
                Ok(Some(asset_id.to_owned()))
            }
            Channel::Instagram => {
                let v = self
                    .get("me?fields=id,instagram_business_account", Some(token))
                    .await
                    .map_err(refused)?;
                if v["instagram_business_account"]["id"].as_str() != Some(asset_id) {
                    return Err(ProofError::NotReached(
                        "the access token is not a page token of the page this Instagram account is linked to".into(),
                    ));
                }
                Ok(v["id"].as_str().map(str::to_owned))
            }
            _ => Err(ProofError::NotReached(format!(
                "{kind} assets are not Meta's"
            ))),
        }
    }

    /// Removes the app's webhook subscription from a page or WhatsApp Business Account
    /// (`DELETE /{target}/subscribed_apps`).
    pub async fn unsubscribe(&self, target: &str, token: &str) -> Result<(), SendError> {
        let url = format!("{}/{}/subscribed_apps", self.api.base, target);
        self.subscription(reqwest::Method::DELETE, &url, token)
            .await
    }
}
