//! Messaging channels: a tenant admin connects a WhatsApp number, a Facebook page or an
//! Instagram account (through Meta's APIs, by asset id and token or through Meta sign-in), a
//! WhatsApp sender of a Twilio account, or a ManyChat page. Credentials are sealed at rest
//! (`infra::secrets`, bound to the tenant and the connection) and never shown again; the plan
//! decides whether these channels are available. Webhooks, senders and the 24-hour window
//! build on these connections; [`send`] speaks to each provider.
//!
//! Depends on the core ports, `infra` and `tenancy`; never on axum.
//!
//! - [`event`], [`meta`], [`twilio`], [`manychat`]: what providers send, read and verified
//!   (the `cortex-channels` crate, re-exported).
//! - [`inbound`]: the webhooks' intake and the job that answers each message.
//! - [`oauth`]: connecting Meta assets through Meta's sign-in dialog.

pub mod inbound;
pub mod oauth;

pub use cortex_channels::{event, manychat, meta, twilio};

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::answer::Channel;
use cortex_core::audit::{NewAuditEvent, action};
use cortex_core::channels::{CONNECTABLE, ChannelConnection, Provider};
use cortex_core::ids::{ChannelConnectionId, TenantId};
use cortex_core::plans;
use cortex_core::store::conflict;

use crate::app::AppState;
use std::time::Duration;

use crate::infra::outbound::{SendError, split_message};
use crate::infra::ratelimit::RateLimiter;
use crate::infra::secrets::{SecretBox, SecretError};
use crate::infra::twilio as twilio_api;
use crate::tenancy::{Caller, TenancyError, TenantCtx};

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "the {plan} plan does not include WhatsApp, Messenger or Instagram; upgrade to Growth or Scale"
    )]
    PlanFeatureUnavailable { plan: String },
    #[error("this {kind} asset is connected already (to this or another account)")]
    ChannelTaken { kind: Channel },
    #[error("Meta sign-in is not configured on this server (META_APP_ID, META_APP_SECRET)")]
    OauthNotConfigured,
    /// The callback's state is unknown, used, expired, or from another browser.
    #[error(
        "this Meta sign-in link is invalid, expired or was opened in another browser; start again"
    )]
    OauthInvalidState,
    /// Meta has not sent the member back yet.
    #[error("Meta sign-in has not finished yet")]
    OauthPending,
    #[error("Meta refused: {0}")]
    Provider(String),
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ChannelError {
    fn from(e: StoreError) -> Self {
        Self::Tenancy(e.into())
    }
}

pub type Result<T> = std::result::Result<T, ChannelError>;

fn invalid(field: &'static str, message: &str) -> ChannelError {
    TenancyError::Validation {
        field,
        message: message.to_owned(),
    }
    .into()
}

/// WhatsApp, Messenger, Instagram and ManyChat need a plan that includes them.
fn plan_allows_channels(ctx: &TenantCtx) -> Result<()> {
    let plan = plans::plan_or_default(&ctx.tenant().plan);
    if !plan.meta_channels {
        return Err(ChannelError::PlanFeatureUnavailable {
            plan: plan.name.to_owned(),
        });
    }
    Ok(())
}

/// Connecting and disconnecting is for owners and admins, not integrations.
fn may_manage(ctx: &TenantCtx) -> Result<()> {
    Ok(ctx.admin_or_operator("channels are connected by owners and admins")?)
}

/// What a sealed token is bound to: a copy in another row or tenant does not open.
pub fn token_context(tenant: TenantId, connection: ChannelConnectionId) -> String {
    format!("tenant:{tenant}/channel:{connection}/access_token")
}

pub struct Connect {
    pub kind: Channel,
    /// Meta unless said otherwise; ManyChat connections are ManyChat's.
    pub provider: Option<Provider>,
    pub asset_id: String,
    /// Meta's access token, the Twilio account's auth token (absent: the platform's Twilio
    /// account) or the ManyChat API key.
    pub access_token: Option<String>,
    /// Twilio: the account SID.
    pub account_id: Option<String>,
    pub name: Option<String>,
    /// WhatsApp: an approved template for replies outside the 24-hour window — Meta: (name,
    /// language code); Twilio: (Content SID, "").
    pub template: Option<(String, String)>,
    /// ManyChat: what the webhook answers at once.
    pub ack_text: Option<String>,
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// `prefix` followed by 32 lowercase hex digits (Twilio's SIDs).
fn is_sid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn check_token(token: &str) -> Result<()> {
    if token.len() < 20 || token.len() > 1024 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "access_token",
            "must be 20 to 1024 printable characters without spaces",
        ));
    }
    Ok(())
}

/// The provider's checks of a connection request: its asset, its credential, its template.
/// Returns the provider, the credential to seal ("" for the platform's Twilio account) and the
/// account id.
fn check_connect(state: &AppState, req: &Connect) -> Result<(Provider, String, Option<String>)> {
    let provider = match (req.kind, req.provider) {
        (Channel::ManyChat, None | Some(Provider::ManyChat)) => Provider::ManyChat,
        (Channel::ManyChat, Some(_)) | (_, Some(Provider::ManyChat)) => {
            return Err(invalid(
                "provider",
                "ManyChat connections have kind manychat",
            ));
        }
        (Channel::WhatsApp, Some(Provider::Twilio)) => Provider::Twilio,
        (_, Some(Provider::Twilio)) => {
            return Err(invalid("provider", "Twilio connections are for WhatsApp"));
        }
        (_, None | Some(Provider::Meta)) => Provider::Meta,
    };
    let asset_id = req.asset_id.trim();
    let token = req.access_token.as_deref().map(str::trim);
    if provider != Provider::ManyChat && req.ack_text.is_some() {
        return Err(invalid("ack_text", "acknowledgements are for ManyChat"));
    }
    if provider != Provider::Twilio && req.account_id.is_some() {
        return Err(invalid("account_sid", "account SIDs are for Twilio"));
    }
    if req.template.is_some() && req.kind != Channel::WhatsApp {
        return Err(invalid("template", "templates are for WhatsApp"));
    }
    match provider {
        Provider::Twilio => {
            if !is_e164(asset_id) {
                return Err(invalid(
                    "asset_id",
                    "must be the WhatsApp sender's number in E.164, like +14155238886",
                ));
            }
            if let Some((sid, _)) = &req.template
                && !is_sid(sid, "HX")
            {
                return Err(invalid(
                    "template",
                    "on Twilio, the template is its Content SID (HX and 32 hex digits)",
                ));
            }
            match (req.account_id.as_deref().map(str::trim), token) {
                (Some(sid), Some(token)) => {
                    if !is_sid(sid, "AC") {
                        return Err(invalid(
                            "account_sid",
                            "must be the Twilio account SID (AC and 32 hex digits)",
                        ));
                    }
                    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return Err(invalid(
                            "access_token",
                            "must be the Twilio account's auth token (32 characters)",
                        ));
                    }
                    Ok((provider, token.to_owned(), Some(sid.to_owned())))
                }
                (None, None) => {
                    let p = &state.settings.providers;
                    match (&p.twilio_account_sid, &p.twilio_auth_token) {
                        (Some(sid), Some(_)) => Ok((provider, String::new(), Some(sid.clone()))),
                        _ => Err(invalid(
                            "account_sid",
                            "this server has no Twilio account of its own: give your account SID and auth token",
                        )),
                    }
                }
                _ => Err(invalid(
                    "account_sid",
                    "give both the account SID and its auth token, or neither to use the platform's Twilio account",
                )),
            }
        }
        Provider::Meta | Provider::ManyChat => {
            if asset_id.is_empty()
                || asset_id.len() > 64
                || !asset_id.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid(
                    "asset_id",
                    if provider == Provider::Meta {
                        "must be Meta's numeric id, 1 to 64 digits"
                    } else {
                        "must be the ManyChat page id, 1 to 64 digits"
                    },
                ));
            }
            let Some(token) = token else {
                return Err(invalid("access_token", "is required"));
            };
            check_token(token)?;
            if let Some((template, language)) = &req.template {
                let ok_name = !template.is_empty()
                    && template.len() <= 512
                    && template
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                let ok_language = (2..=15).contains(&language.len())
                    && language
                        .bytes()
                        .all(|b| b.is_ascii_alphabetic() || b == b'_');
                if !ok_name || !ok_language {
                    return Err(invalid(
                        "template",
                        "needs the template's name (lowercase letters, digits, _) and a language code like en_US",
                    ));
                }
            }
            if let Some(ack) = &req.ack_text
                && ack.chars().count() > 640
            {
                return Err(invalid("ack_text", "must be at most 640 characters"));
            }
            Ok((provider, token.to_owned(), None))
        }
    }
}

pub async fn connect(state: &AppState, ctx: &TenantCtx, req: Connect) -> Result<ChannelConnection> {
    may_manage(ctx)?;
    if !CONNECTABLE.contains(&req.kind) {
        return Err(invalid(
            "kind",
            "must be whatsapp, messenger, instagram or manychat",
        ));
    }
    plan_allows_channels(ctx)?;
    let (provider, token, account_id) = check_connect(state, &req)?;
    let asset_id = req.asset_id.trim().to_owned();
    let name = req
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("{} {asset_id}", req.kind));
    if name.chars().count() > 100 {
        return Err(invalid("name", "must be at most 100 characters"));
    }
    let id = ChannelConnectionId::new();
    let tenant = ctx.tenant_id();
    let now = Utc::now();
    let connection = ChannelConnection {
        id,
        tenant_id: tenant,
        kind: req.kind,
        provider,
        asset_id: asset_id.clone(),
        account_id,
        name,
        sealed_token: if token.is_empty() {
            String::new()
        } else {
            state.secrets.seal(&token, &token_context(tenant, id))
        },
        token_hint: if token.is_empty() {
            "platform account".into()
        } else {
            format!("…{}", &token[token.len() - 4..])
        },
        template: req.template,
        ack_text: req
            .ack_text
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty()),
        created_by: match ctx.caller() {
            Caller::User(u) => Some(u.id),
            _ => None,
        },
        created_at: now,
        updated_at: now,
    };
    let audit = NewAuditEvent::new(ctx.actor(), action::CHANNEL_CONNECTED, now)
        .target("channel", id)
        .metadata(serde_json::json!({
            "kind": req.kind,
            "provider": provider,
            "asset_id": asset_id,
        }));
    state
        .store
        .create_channel_connection(tenant, connection, audit)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(c) if c == conflict::CHANNEL_TAKEN => {
                ChannelError::ChannelTaken { kind: req.kind }
            }
            other => other.into(),
        })
}

pub async fn list(state: &AppState, ctx: &TenantCtx) -> Result<Vec<ChannelConnection>> {
    Ok(state
        .store
        .list_channel_connections(ctx.tenant_id())
        .await?)
}

pub async fn disconnect(state: &AppState, ctx: &TenantCtx, id: ChannelConnectionId) -> Result<()> {
    may_manage(ctx)?;
    let now = Utc::now();
    state
        .store
        .delete_channel_connection(
            ctx.tenant_id(),
            id,
            NewAuditEvent::new(ctx.actor(), action::CHANNEL_DISCONNECTED, now)
                .target("channel", id),
        )
        .await?;
    Ok(())
}

/// The connection's access token, opened (for the senders).
pub fn access_token(
    secrets: &SecretBox,
    c: &ChannelConnection,
) -> std::result::Result<String, SecretError> {
    secrets.open(&c.sealed_token, &token_context(c.tenant_id, c.id))
}

/// What a key rotation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Re-sealed under the current key.
    pub resealed: usize,
    /// Under the current key already.
    pub current: usize,
    /// Changed by someone else meanwhile (sealed by them under the current key).
    pub raced: usize,
}

/// Re-seals every secret under the current key. A secret that does not open stops the
/// rotation with the error (a missing old key must be configured first).
pub async fn rotate_key(state: &AppState) -> anyhow::Result<Rotation> {
    let mut r = Rotation::default();
    for s in state.store.list_sealed_secrets().await? {
        if s.sealed.is_empty() {
            continue; // the platform's Twilio account: nothing sealed
        }
        if SecretBox::key_id_of(&s.sealed) == Some(state.secrets.current_key_id()) {
            r.current += 1;
            continue;
        }
        let context = token_context(s.tenant_id, s.connection);
        let new = state
            .secrets
            .reseal(&s.sealed, &context)
            .map_err(|e| anyhow::anyhow!("channel {}: {e}", s.connection))?;
        if state
            .store
            .reseal_secret(s.tenant_id, s.connection, &s.sealed, &new)
            .await?
        {
            r.resealed += 1;
        } else {
            r.raced += 1;
        }
    }
    Ok(r)
}

/// What goes to a customer.
pub enum Reply<'a> {
    Text(&'a str),
    /// The connection's approved template (WhatsApp, outside the 24-hour window).
    Template,
}

/// Where Twilio reports the statuses of the messages we send.
pub fn twilio_status_url(state: &AppState) -> String {
    format!(
        "{}/webhooks/twilio/status",
        state.settings.app_url.trim_end_matches('/')
    )
}

/// The Twilio account a connection sends from: its own (auth token sealed) or the platform's.
pub fn twilio_account(
    state: &AppState,
    c: &ChannelConnection,
) -> std::result::Result<(String, String), SecretError> {
    let sid = c.account_id.clone().unwrap_or_default();
    if c.sealed_token.is_empty() {
        let token = state
            .settings
            .providers
            .twilio_auth_token
            .as_ref()
            .map(|t| t.expose().to_owned())
            .unwrap_or_default();
        return Ok((sid, token));
    }
    Ok((sid, access_token(&state.secrets, c)?))
}

/// Longest text one message may carry on the connection.
fn part_limit(c: &ChannelConnection) -> usize {
    match c.provider {
        Provider::Meta => crate::infra::meta_graph::text_limit(c.kind),
        Provider::Twilio => twilio_api::TEXT_LIMIT,
        Provider::ManyChat => crate::infra::manychat::TEXT_LIMIT,
    }
}

/// Waits until `n` more messages may go out on `key` (at most `limit` a `window`), or fails
/// once waiting would pass `deadline`.
pub async fn pace(
    limiter: &dyn RateLimiter,
    key: &str,
    limit: u32,
    window: Duration,
    n: usize,
    deadline: tokio::time::Instant,
) -> std::result::Result<(), SendError> {
    for _ in 0..n {
        loop {
            let hit = limiter.hit(key, limit, window).await;
            if hit.allowed {
                break;
            }
            let wake = tokio::time::Instant::now() + hit.retry_after;
            if wake > deadline {
                return Err(SendError::Unavailable(
                    "the channel's sending rate is exhausted".into(),
                ));
            }
            tokio::time::sleep_until(wake).await;
        }
    }
    Ok(())
}

/// Sends a reply to the customer from the connection, through its provider, paced to the
/// channel's rate per connection; returns one entry per message sent: the provider's id, or
/// empty where the provider gives none (ManyChat).
pub async fn send(
    state: &AppState,
    c: &ChannelConnection,
    customer: &str,
    reply: Reply<'_>,
) -> std::result::Result<Vec<String>, SendError> {
    let parts = match reply {
        Reply::Text(text) => split_message(text, part_limit(c)).len(),
        Reply::Template => usize::from(c.template.is_some()),
    };
    let channels = &state.settings.channels;
    pace(
        state.limiter.as_ref(),
        &format!("send:{}", c.id),
        channels.per_second(c.kind),
        Duration::from_secs(1),
        parts,
        tokio::time::Instant::now() + Duration::from_secs(channels.send_wait_secs),
    )
    .await?;
    let unopened = |e: SecretError| SendError::Unavailable(format!("the channel credential: {e}"));
    match c.provider {
        Provider::Meta => {
            let token = access_token(&state.secrets, c).map_err(unopened)?;
            match (reply, &c.template) {
                (Reply::Text(text), _) => {
                    state
                        .graph
                        .send_text(c.kind, &token, &c.asset_id, customer, text)
                        .await
                }
                (Reply::Template, Some((name, language))) => state
                    .graph
                    .send_template(&token, &c.asset_id, customer, name, language)
                    .await
                    .map(|id| vec![id]),
                (Reply::Template, None) => Ok(Vec::new()),
            }
        }
        Provider::Twilio => {
            let (sid, auth_token) = twilio_account(state, c).map_err(unopened)?;
            let body = match (reply, &c.template) {
                (Reply::Text(text), _) => twilio_api::Body::Text(text),
                (Reply::Template, Some((content_sid, _))) => {
                    twilio_api::Body::Template(content_sid)
                }
                (Reply::Template, None) => return Ok(Vec::new()),
            };
            let account = twilio_api::Account {
                sid: &sid,
                auth_token: &auth_token,
            };
            state
                .twilio
                .send(
                    &account,
                    &c.asset_id,
                    customer,
                    body,
                    &twilio_status_url(state),
                )
                .await
        }
        Provider::ManyChat => {
            let Reply::Text(text) = reply else {
                return Ok(Vec::new());
            };
            let key = access_token(&state.secrets, c).map_err(unopened)?;
            let parts = state.manychat.send_text(&key, customer, text).await?;
            Ok(vec![String::new(); parts])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::ratelimit::InMemoryRateLimiter;

    #[tokio::test]
    async fn sends_are_paced_to_the_rate_and_give_up_past_the_deadline() {
        let limiter = InMemoryRateLimiter::default();
        let window = Duration::from_millis(100);
        let start = tokio::time::Instant::now();
        let far = start + Duration::from_secs(10);
        pace(&limiter, "send:a", 2, window, 5, far)
            .await
            .expect("paced");
        // Five at two a window: the fifth waits for the third window.
        assert!(start.elapsed() >= 2 * window, "{:?}", start.elapsed());
        pace(&limiter, "send:b", 2, window, 2, far)
            .await
            .expect("another connection has its own rate");
        let soon = tokio::time::Instant::now() + Duration::from_millis(10);
        assert!(matches!(
            pace(&limiter, "send:b", 2, Duration::from_secs(5), 1, soon).await,
            Err(SendError::Unavailable(_))
        ));
    }
}
