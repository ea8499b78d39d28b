//! The web widget: tenant admins make public keys bound to the origins of their sites and
//! themed; visitors' pages use them through `/widget/v1/*` with the key, an anonymous visitor
//! id and their page's `Origin`, which must be one the key allows. Visitors are rate limited
//! one by one and by address (visitor ids are the page's to choose, so the address bounds
//! what one client can send) before the plan's limit applies to the tenant as a whole.
//!
//! Depends on the core ports, `tenancy` and the answer engine; never on axum.

use std::time::Duration;

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::audit::{NewAuditEvent, action};
use cortex_core::ids::WidgetKeyId;
use cortex_core::widget::{WidgetKey, WidgetTheme};

use crate::app::AppState;
use crate::infra::tokens::random_token;
use crate::tenancy::Action;
use crate::tenancy::{TenancyError, TenantCtx};

/// Messages one visitor may send a minute.
pub const VISITOR_MESSAGES_PER_MINUTE: u32 = 10;
/// Messages one address may send a minute, whatever visitor ids it claims (they are the
/// page's to choose).
pub const ADDRESS_MESSAGES_PER_MINUTE: u32 = 30;
/// Widget requests of any kind one address may make a minute (page loads fetch the
/// configuration; every visitor behind one address counts).
pub const ADDRESS_REQUESTS_PER_MINUTE: u32 = 300;
const MAX_ORIGINS: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum WidgetError {
    /// Unknown or revoked key.
    #[error("this widget key is unknown or was revoked")]
    InvalidKey,
    #[error("this page's origin is not allowed to use this widget key")]
    OriginNotAllowed,
    #[error("too many messages; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
}

impl From<StoreError> for WidgetError {
    fn from(e: StoreError) -> Self {
        Self::Tenancy(e.into())
    }
}

pub type Result<T> = std::result::Result<T, WidgetError>;

fn invalid(field: &'static str, message: &str) -> WidgetError {
    TenancyError::Validation {
        field,
        message: message.to_owned(),
    }
    .into()
}

/// An origin as browsers send it: `scheme://host[:port]`, lowercase, no path. `None` if `raw`
/// is not one.
pub fn normalize_origin(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

fn check_origins(origins: &[String]) -> Result<Vec<String>> {
    if origins.is_empty() || origins.len() > MAX_ORIGINS {
        return Err(invalid("allowed_origins", "list 1 to 20 origins"));
    }
    let mut out = Vec::new();
    for o in origins {
        let Some(n) = normalize_origin(o) else {
            return Err(invalid(
                "allowed_origins",
                "each must be an origin like https://shop.example or http://localhost:3000",
            ));
        };
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

fn check_theme(t: &WidgetTheme) -> Result<()> {
    let hex = t.color.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("theme.color", "must be a colour like #2563eb"));
    }
    let title = t.title.trim();
    if title.is_empty() || title.chars().count() > 60 {
        return Err(invalid("theme.title", "must be 1 to 60 characters"));
    }
    Ok(())
}

fn check_name(name: Option<String>, default: &str) -> Result<String> {
    let name = name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| default.to_owned());
    if name.chars().count() > 100 {
        return Err(invalid("name", "must be at most 100 characters"));
    }
    Ok(name)
}

pub struct NewKey {
    pub name: Option<String>,
    pub allowed_origins: Vec<String>,
    pub theme: Option<WidgetTheme>,
}

pub async fn create_key(state: &AppState, ctx: &TenantCtx, req: NewKey) -> Result<WidgetKey> {
    ctx.require(Action::ManageWidgetKeys)?;
    let allowed_origins = check_origins(&req.allowed_origins)?;
    let theme = req.theme.unwrap_or_default();
    check_theme(&theme)?;
    let name = check_name(req.name, "Website")?;
    let key = WidgetKey {
        id: WidgetKeyId::new(),
        tenant_id: ctx.tenant_id(),
        public_key: format!("wk_{}", random_token(18)),
        name,
        allowed_origins,
        theme,
        created_at: Utc::now(),
        revoked_at: None,
    };
    let audit = NewAuditEvent::new(ctx.actor(), action::WIDGET_KEY_CREATED, key.created_at)
        .target("widget_key", key.id)
        .metadata(serde_json::json!({ "origins": key.allowed_origins }));
    Ok(state
        .store
        .create_widget_key(ctx.tenant_id(), key, audit)
        .await?)
}

/// Members read the keys; API keys do not.
pub async fn list_keys(state: &AppState, ctx: &TenantCtx) -> Result<Vec<WidgetKey>> {
    ctx.require(Action::ReadWidgetKeys)?;
    Ok(state.store.list_widget_keys(ctx.tenant_id()).await?)
}

pub struct KeyChange {
    pub name: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub theme: Option<WidgetTheme>,
}

pub async fn update_key(
    state: &AppState,
    ctx: &TenantCtx,
    id: WidgetKeyId,
    change: KeyChange,
) -> Result<WidgetKey> {
    ctx.require(Action::ManageWidgetKeys)?;
    let current = state
        .store
        .list_widget_keys(ctx.tenant_id())
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(WidgetError::Tenancy(TenancyError::NotFound))?;
    let allowed_origins = match change.allowed_origins {
        Some(o) => check_origins(&o)?,
        None => current.allowed_origins.clone(),
    };
    let theme = change.theme.unwrap_or_else(|| current.theme.clone());
    check_theme(&theme)?;
    let name = check_name(change.name, &current.name)?;
    let audit = NewAuditEvent::new(ctx.actor(), action::WIDGET_KEY_UPDATED, Utc::now())
        .target("widget_key", id)
        .metadata(serde_json::json!({ "origins": allowed_origins }));
    Ok(state
        .store
        .update_widget_key(
            ctx.tenant_id(),
            WidgetKey {
                name,
                allowed_origins,
                theme,
                ..current
            },
            audit,
        )
        .await?)
}

pub async fn revoke_key(state: &AppState, ctx: &TenantCtx, id: WidgetKeyId) -> Result<()> {
    ctx.require(Action::ManageWidgetKeys)?;
    let now = Utc::now();
    state
        .store
        .revoke_widget_key(
            ctx.tenant_id(),
            id,
            now,
            NewAuditEvent::new(ctx.actor(), action::WIDGET_KEY_REVOKED, now)
                .target("widget_key", id),
        )
        .await?;
    Ok(())
}

/// A visitor's request let through: the key, its tenant, and the page's origin (for CORS).
pub struct Visit {
    pub key: WidgetKey,
    pub ctx: TenantCtx,
    pub origin: String,
}

/// The gate of every visitor request: a live key, a page origin it allows, and the address's
/// allowance.
pub async fn admit(
    state: &AppState,
    public_key: &str,
    origin: Option<&str>,
    address: std::net::IpAddr,
) -> Result<Visit> {
    if public_key.len() > 64 || !public_key.starts_with("wk_") {
        return Err(WidgetError::InvalidKey);
    }
    let key = state
        .store
        .find_widget_key(public_key)
        .await?
        .filter(|k| k.revoked_at.is_none())
        .ok_or(WidgetError::InvalidKey)?;
    let origin = origin
        .and_then(normalize_origin)
        .filter(|o| key.allowed_origins.contains(o))
        .ok_or(WidgetError::OriginNotAllowed)?;
    let hit = state
        .limiter
        .hit(
            &format!("widget-ip:{address}"),
            ADDRESS_REQUESTS_PER_MINUTE,
            Duration::from_secs(60),
        )
        .await;
    if !hit.allowed {
        return Err(WidgetError::RateLimited {
            retry_after_secs: hit.retry_after.as_secs().max(1),
        });
    }
    let ctx = TenantCtx::for_visitor(state, key.tenant_id, key.id).await?;
    Ok(Visit { key, ctx, origin })
}

/// A visitor id as the widget makes them: 8 to 64 of `A–Z a–z 0–9 - _`.
pub fn check_visitor(visitor: &str) -> Result<()> {
    if !(8..=64).contains(&visitor.len())
        || !visitor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "visitor_id",
            "must be 8 to 64 letters, digits, - or _",
        ));
    }
    Ok(())
}

/// Counts one message of the visitor, and of their address, against their allowances.
pub async fn visitor_message(
    state: &AppState,
    key: &WidgetKey,
    visitor: &str,
    address: std::net::IpAddr,
) -> Result<()> {
    for (counter, limit) in [
        (
            format!("widget-visitor:{}:{visitor}", key.id),
            VISITOR_MESSAGES_PER_MINUTE,
        ),
        (
            format!("widget-ip-messages:{address}"),
            ADDRESS_MESSAGES_PER_MINUTE,
        ),
    ] {
        let hit = state
            .limiter
            .hit(&counter, limit, Duration::from_secs(60))
            .await;
        if !hit.allowed {
            return Err(WidgetError::RateLimited {
                retry_after_secs: hit.retry_after.as_secs().max(1),
            });
        }
    }
    Ok(())
}

/// The latest 50 messages of the visitor's own conversation, with the verdicts they gave.
pub async fn history(
    state: &AppState,
    visit: &Visit,
    visitor: &str,
    id: cortex_core::ids::ConversationId,
) -> Result<(
    Vec<cortex_core::conversations::Message>,
    Vec<cortex_core::widget::Feedback>,
)> {
    own_conversation(state, visit, visitor, id).await?;
    let tenant = visit.key.tenant_id;
    let feedback = state.store.list_feedback(tenant, id).await?;
    let messages = state.store.recent_messages(tenant, id, 50).await?;
    Ok((messages, feedback))
}

/// Records the visitor's verdict on an answer of their own conversation (`NotFound` for any
/// other message).
pub async fn feedback(
    state: &AppState,
    visit: &Visit,
    visitor: &str,
    conversation: cortex_core::ids::ConversationId,
    message: cortex_core::ids::MessageId,
    helpful: bool,
) -> Result<()> {
    own_conversation(state, visit, visitor, conversation).await?;
    let tenant = visit.key.tenant_id;
    let verdict = cortex_core::widget::Feedback {
        tenant_id: tenant,
        conversation_id: conversation,
        message_id: message,
        helpful,
        at: chrono::Utc::now(),
    };
    Ok(state.store.set_feedback(tenant, verdict).await?)
}

/// The visitor's own widget conversation; anyone else's is `NotFound`.
pub async fn own_conversation(
    state: &AppState,
    visit: &Visit,
    visitor: &str,
    id: cortex_core::ids::ConversationId,
) -> Result<cortex_core::conversations::Conversation> {
    let c = state
        .store
        .get_conversation(visit.key.tenant_id, id)
        .await?;
    if c.channel != cortex_core::conversations::Channel::Widget
        || c.customer.as_deref() != Some(visitor)
    {
        return Err(WidgetError::Tenancy(TenancyError::NotFound));
    }
    Ok(c)
}
