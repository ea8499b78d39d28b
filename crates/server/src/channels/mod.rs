//! Messaging channels: a tenant admin connects a WhatsApp number, a Facebook page or an
//! Instagram account by its asset id and access token. The token is sealed at rest
//! (`infra::secrets`, bound to the tenant and the connection) and never shown again; the
//! plan decides whether Meta channels are available. Webhooks, senders and the 24-hour
//! window build on these connections.
//!
//! Depends on the core ports, `infra::secrets` and `tenancy`; never on axum.
//!
//! - [`meta`]: Meta's webhook handshake, signatures and payloads.
//! - [`inbound`]: the webhook's intake and the job that answers each message.

pub mod inbound;
pub mod meta;

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::answer::Channel;
use cortex_core::audit::{NewAuditEvent, action};
use cortex_core::channels::{CONNECTABLE, ChannelConnection};
use cortex_core::ids::{ChannelConnectionId, TenantId};
use cortex_core::plans;
use cortex_core::store::conflict;
use cortex_core::tenancy::Role;

use crate::app::AppState;
use crate::infra::secrets::{SecretBox, SecretError};
use crate::tenancy::{Caller, TenancyError, TenantCtx};

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error(
        "the {plan} plan does not include WhatsApp, Messenger or Instagram; upgrade to Growth or Scale"
    )]
    PlanFeatureUnavailable { plan: String },
    #[error("this {kind} asset is connected already (to this or another account)")]
    ChannelTaken { kind: Channel },
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

/// Connecting and disconnecting is for owners and admins, not integrations.
fn may_manage(ctx: &TenantCtx) -> Result<()> {
    match ctx.caller() {
        Caller::User(_) => {
            ctx.member_with(Role::Admin)?;
            Ok(())
        }
        Caller::Operator => Ok(()),
        Caller::ApiKey(_) => {
            Err(TenancyError::Forbidden("channels are connected by owners and admins").into())
        }
    }
}

/// What a sealed token is bound to: a copy in another row or tenant does not open.
pub fn token_context(tenant: TenantId, connection: ChannelConnectionId) -> String {
    format!("tenant:{tenant}/channel:{connection}/access_token")
}

pub struct Connect {
    pub kind: Channel,
    pub asset_id: String,
    pub access_token: String,
    pub name: Option<String>,
    /// WhatsApp: an approved template (name, language code) for replies outside the 24-hour
    /// window.
    pub template: Option<(String, String)>,
}

pub async fn connect(state: &AppState, ctx: &TenantCtx, req: Connect) -> Result<ChannelConnection> {
    may_manage(ctx)?;
    if !CONNECTABLE.contains(&req.kind) {
        return Err(invalid("kind", "must be whatsapp, messenger or instagram"));
    }
    let plan = plans::plan_or_default(&ctx.tenant().plan);
    if !plan.meta_channels {
        return Err(ChannelError::PlanFeatureUnavailable {
            plan: plan.name.to_owned(),
        });
    }
    let asset_id = req.asset_id.trim().to_owned();
    if asset_id.is_empty() || asset_id.len() > 64 || !asset_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "asset_id",
            "must be Meta's numeric id, 1 to 64 digits",
        ));
    }
    let token = req.access_token.trim();
    if token.len() < 20 || token.len() > 1024 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "access_token",
            "must be 20 to 1024 printable characters without spaces",
        ));
    }
    let name = req
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("{} {asset_id}", req.kind));
    if name.chars().count() > 100 {
        return Err(invalid("name", "must be at most 100 characters"));
    }
    if let Some((template, language)) = &req.template {
        if req.kind != Channel::WhatsApp {
            return Err(invalid("template", "templates are for WhatsApp"));
        }
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
    let id = ChannelConnectionId::new();
    let tenant = ctx.tenant_id();
    let now = Utc::now();
    let connection = ChannelConnection {
        id,
        tenant_id: tenant,
        kind: req.kind,
        asset_id: asset_id.clone(),
        name,
        sealed_token: state.secrets.seal(token, &token_context(tenant, id)),
        token_hint: format!("…{}", &token[token.len() - 4..]),
        template: req.template,
        created_by: match ctx.caller() {
            Caller::User(u) => Some(u.id),
            _ => None,
        },
        created_at: now,
        updated_at: now,
    };
    let audit = NewAuditEvent::new(ctx.actor(), action::CHANNEL_CONNECTED, now)
        .target("channel", id)
        .metadata(serde_json::json!({ "kind": req.kind, "asset_id": asset_id }));
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
