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
pub mod jobs;
pub mod oauth;
pub mod policy;

pub use cortex_channels::{event, manychat, meta, twilio};

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::audit::{NewAuditEvent, action};
use cortex_core::channels::{CONNECTABLE, ChannelConnection, Provider};
use cortex_core::conversations::Channel;
use cortex_core::ids::{ChannelConnectionId, TenantId};
use cortex_core::store::conflict;

use crate::app::AppState;
use std::time::Duration;

use crate::infra::outbound::{ProofError, SendError, split_message};
use crate::infra::ratelimit::RateLimiter;
use crate::infra::secrets::{SecretBox, SecretError};
use crate::infra::twilio as twilio_api;
use crate::tenancy::Action;
use crate::tenancy::{Caller, OperatorCtx, TenancyError, TenantCtx};

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
    /// The provider did not answer the check of a credential (timeouts, 429, 5xx).
    #[error("the provider could not be reached to check the credential: {0}")]
    ProviderUnavailable(String),
    /// A call to the provider with the given credential did not show it controls the asset.
    #[error("the credential was not accepted for this asset: {0}")]
    NotVerified(String),
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
    let plan = ctx.plan();
    if !plan.meta_channels {
        return Err(ChannelError::PlanFeatureUnavailable {
            plan: plan.name.to_owned(),
        });
    }
    Ok(())
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
fn check_connect(
    state: &AppState,
    req: &Connect,
    platform_numbers: bool,
) -> Result<(Provider, String, Option<String>)> {
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
                        (Some(_), Some(_)) if !platform_numbers => Err(TenancyError::Forbidden(
                            "the platform's Twilio numbers are assigned by the operator; give your own account SID and auth token",
                        )
                        .into()),
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

/// How control of an asset is established before it is connected.
pub(crate) enum Proof {
    /// Call the provider with the credential given.
    Needed,
    /// Shown already (Meta sign-in listed the asset for the member's login), with where the
    /// app's webhook subscription lives.
    Shown { webhook_target: Option<String> },
}

/// Connects a channel for an owner or admin, once a call to the provider with the given
/// credential proved it controls the asset. The platform's Twilio numbers are not theirs to
/// claim ([`assign_platform_number`]).
pub async fn connect(state: &AppState, ctx: &TenantCtx, req: Connect) -> Result<ChannelConnection> {
    ctx.require(Action::ManageChannels)?;
    claim(state, ctx, ctx.actor(), req, Proof::Needed, false).await
}

/// The operator assigns one of the platform's own Twilio WhatsApp senders to a tenant: the
/// platform's account must list the number.
pub async fn assign_platform_number(
    state: &AppState,
    operator: &OperatorCtx,
    tenant: TenantId,
    number: String,
    name: Option<String>,
    template: Option<(String, String)>,
) -> Result<ChannelConnection> {
    let ctx = TenantCtx::for_platform_admin(state, operator, tenant).await?;
    let req = Connect {
        kind: Channel::WhatsApp,
        provider: Some(Provider::Twilio),
        asset_id: number,
        access_token: None,
        account_id: None,
        name,
        template,
        ack_text: None,
    };
    claim(state, &ctx, operator.actor(), req, Proof::Needed, true).await
}

/// Calls the provider with the connection's own credential (opened as the senders open it):
/// `Ok` with the webhook target if it controls the asset.
async fn prove(
    state: &AppState,
    c: &ChannelConnection,
) -> std::result::Result<Option<String>, ProofError> {
    let unopened = |e: SecretError| ProofError::CredentialRefused(e.to_string());
    match c.provider {
        Provider::Meta => {
            let token = access_token(&state.secrets, c).map_err(unopened)?;
            state.graph.prove_control(c.kind, &token, &c.asset_id).await
        }
        Provider::Twilio => {
            let (sid, auth_token) = twilio_account(state, c).map_err(unopened)?;
            let account = twilio_api::Account {
                sid: &sid,
                auth_token: &auth_token,
            };
            state
                .twilio
                .prove_number(&account, &c.asset_id)
                .await
                .map(|()| None)
        }
        Provider::ManyChat => {
            let key = access_token(&state.secrets, c).map_err(unopened)?;
            state
                .manychat
                .prove_page(&key, &c.asset_id)
                .await
                .map(|()| None)
        }
    }
}

/// Whether an incumbent's claim still stands: proven when it was made, its credential not
/// refused since, and still reaching the asset now (a provider that does not answer is no
/// reason to take an asset away).
async fn claim_stands(state: &AppState, incumbent: &ChannelConnection) -> bool {
    if incumbent.verified_at.is_none() || incumbent.token_invalid_at.is_some() {
        return false;
    }
    !matches!(
        prove(state, incumbent).await,
        Err(ProofError::CredentialRefused(_) | ProofError::NotReached(_))
    )
}

async fn claim(
    state: &AppState,
    ctx: &TenantCtx,
    actor: cortex_core::audit::Actor,
    req: Connect,
    proof: Proof,
    platform_numbers: bool,
) -> Result<ChannelConnection> {
    if !CONNECTABLE.contains(&req.kind) {
        return Err(invalid(
            "kind",
            "must be whatsapp, messenger, instagram or manychat",
        ));
    }
    plan_allows_channels(ctx)?;
    let (provider, token, account_id) = check_connect(state, &req, platform_numbers)?;
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
    let mut connection = ChannelConnection {
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
        verified_at: Some(now),
        webhook_target: None,
        token_invalid_at: None,
        created_by: match ctx.caller() {
            Caller::User(u) => Some(u.id),
            _ => None,
        },
        created_at: now,
        updated_at: now,
    };
    connection.webhook_target = match proof {
        Proof::Shown { webhook_target } => webhook_target,
        Proof::Needed => prove(state, &connection).await.map_err(|e| match e {
            ProofError::Unavailable(m) => ChannelError::ProviderUnavailable(m),
            refused => ChannelError::NotVerified(refused.to_string()),
        })?,
    };
    let audit = |released: bool| {
        NewAuditEvent::new(actor.clone(), action::CHANNEL_CONNECTED, now)
            .target("channel", id)
            .metadata(serde_json::json!({
                "kind": req.kind,
                "provider": provider,
                "asset_id": asset_id,
                "released_earlier_claim": released,
            }))
    };
    let taken = ChannelError::ChannelTaken { kind: req.kind };
    match state
        .store
        .create_channel_connection(tenant, connection.clone(), audit(false))
        .await
    {
        Ok(c) => return Ok(c),
        Err(StoreError::Conflict(c)) if c == conflict::CHANNEL_TAKEN => {}
        Err(other) => return Err(other.into()),
    }
    // Taken: a proven claim takes the asset from a claim that was never proven, or whose
    // credential no longer reaches it; a claim that still stands keeps it.
    let Some(incumbent) = state
        .store
        .find_channel_connection(req.kind, &asset_id)
        .await?
    else {
        return Err(taken);
    };
    if incumbent.tenant_id == tenant || claim_stands(state, &incumbent).await {
        return Err(taken);
    }
    let reason = if incumbent.verified_at.is_none() {
        "never_verified"
    } else {
        "credential_no_longer_reaches_the_asset"
    };
    let release = NewAuditEvent::new(
        cortex_core::audit::Actor::System,
        action::CHANNEL_RELEASED,
        now,
    )
    .target("channel", incumbent.id)
    .metadata(serde_json::json!({
        "kind": req.kind,
        "asset_id": asset_id,
        "reason": reason,
    }));
    match state
        .store
        .replace_channel_claim(
            tenant,
            connection,
            audit(true),
            incumbent.tenant_id,
            incumbent.id,
            release,
        )
        .await
    {
        Ok(c) => {
            tracing::warn!(
                tenant.id = %tenant,
                channel.id = %c.id,
                released.tenant_id = %incumbent.tenant_id,
                released.channel_id = %incumbent.id,
                reason,
                "an earlier claim on a channel asset was released to a proven one"
            );
            Ok(c)
        }
        // Changed meanwhile (disconnected, or released to someone else): try no further.
        Err(StoreError::NotFound | StoreError::Conflict(_)) => Err(taken),
        Err(e) => Err(e.into()),
    }
}

/// Members read the connections; API keys do not.
pub async fn list(state: &AppState, ctx: &TenantCtx) -> Result<Vec<ChannelConnection>> {
    ctx.require(Action::ReadChannels)?;
    Ok(state
        .store
        .list_channel_connections(ctx.tenant_id())
        .await?)
}

/// Most a disconnection waits for Meta to drop the app's webhook subscription.
const UNSUBSCRIBE_BUDGET: Duration = Duration::from_secs(8);

/// Disconnects the channel, then (Meta) removes the app's webhook subscription from the page
/// or business account unless another connection still uses it; a failure there is logged,
/// since the connection is gone either way and deliveries for it are no longer routed.
pub async fn disconnect(state: &AppState, ctx: &TenantCtx, id: ChannelConnectionId) -> Result<()> {
    ctx.require(Action::ManageChannels)?;
    let connection = state
        .store
        .list_channel_connections(ctx.tenant_id())
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(ChannelError::from(StoreError::NotFound))?;
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
    unsubscribe_if_unused(state, &connection).await;
    Ok(())
}

async fn unsubscribe_if_unused(state: &AppState, c: &ChannelConnection) {
    let Some(target) = c
        .webhook_target
        .as_deref()
        .filter(|_| c.provider == Provider::Meta)
    else {
        return;
    };
    match state.store.webhook_target_in_use(target).await {
        Ok(false) => {}
        Ok(true) => return,
        Err(e) => {
            tracing::error!(channel.id = %c.id, error = %e, "could not tell whether a webhook subscription is still used");
            return;
        }
    }
    let Ok(token) = access_token(&state.secrets, c) else {
        tracing::warn!(channel.id = %c.id, "the credential did not open: the webhook subscription stays");
        return;
    };
    match tokio::time::timeout(UNSUBSCRIBE_BUDGET, state.graph.unsubscribe(target, &token)).await {
        Ok(Ok(())) => {
            tracing::info!(channel.id = %c.id, "the app's webhook subscription was removed")
        }
        Ok(Err(e)) => {
            tracing::warn!(channel.id = %c.id, error = %e, "Meta did not remove the app's webhook subscription");
        }
        Err(_) => {
            tracing::warn!(channel.id = %c.id, "Meta did not answer the unsubscription in time");
        }
    }
}

/// A provider's refusal of the credential itself (not of one message): Meta's
/// OAuthException 190, Twilio's 20003, ManyChat's HTTP 401.
fn refuses_credential(provider: Provider, code: i64) -> bool {
    match provider {
        Provider::Meta => code == 190,
        Provider::Twilio => code == 20003,
        Provider::ManyChat => code == 401,
    }
}

/// Flags the connection when a send failed because its provider refused the credential, so
/// the team sees it must be connected again instead of replies silently failing.
pub async fn note_send_failure(state: &AppState, c: &ChannelConnection, code: i64) {
    if !refuses_credential(c.provider, code) {
        return;
    }
    let now = Utc::now();
    let audit = NewAuditEvent::new(
        cortex_core::audit::Actor::System,
        action::CHANNEL_TOKEN_INVALID,
        now,
    )
    .target("channel", c.id)
    .metadata(serde_json::json!({ "kind": c.kind, "provider": c.provider, "code": code }));
    match state
        .store
        .flag_channel_token_invalid(c.tenant_id, c.id, now, audit)
        .await
    {
        Ok(true) => {
            tracing::warn!(tenant.id = %c.tenant_id, channel.id = %c.id, code, "the provider refused a channel's credential")
        }
        Ok(false) => {}
        Err(e) => {
            tracing::error!(channel.id = %c.id, error = %e, "could not flag a refused channel credential")
        }
    }
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
