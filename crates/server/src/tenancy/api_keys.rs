//! Tenant API keys: created by owners and admins with a name and scopes, shown in full once,
//! stored as a SHA-256 hash with a visible prefix, revocable.

use std::collections::BTreeSet;

use chrono::Utc;
use cortex_core::audit::{NewAuditEvent, action};
use cortex_core::credentials::{ApiKey, ApiScope, NewApiKey};
use cortex_core::ids::ApiKeyId;

use super::{Result, TenantCtx, invalid};
use crate::app::AppState;
use crate::infra::tokens;
use crate::tenancy::Action;

/// A key just created, with the only copy of its secret.
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

pub async fn create(
    state: &AppState,
    ctx: &TenantCtx,
    name: &str,
    scopes: Vec<ApiScope>,
) -> Result<CreatedKey> {
    let creator = ctx.require_member(Action::ManageApiKeys)?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("name", "must be 1 to 100 printable characters"));
    }
    let scopes: Vec<ApiScope> = scopes
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if scopes.is_empty() {
        return Err(invalid("scopes", "name at least one scope"));
    }
    let (secret, prefix) = tokens::api_key();
    let id = ApiKeyId::new();
    let now = Utc::now();
    let key = state
        .store
        .create_api_key(
            ctx.tenant_id(),
            NewApiKey {
                id,
                name: name.to_owned(),
                prefix: prefix.clone(),
                key_hash: tokens::sha256_hex(&secret),
                scopes: scopes.clone(),
                created_by: Some(creator.id),
                created_at: now,
            },
            NewAuditEvent::new(ctx.actor(), action::API_KEY_CREATED, now).target("api_key", id).metadata(
                serde_json::json!({ "prefix": prefix, "scopes": scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>() }),
            ),
        )
        .await?;
    Ok(CreatedKey { key, secret })
}

pub async fn list(state: &AppState, ctx: &TenantCtx) -> Result<Vec<ApiKey>> {
    ctx.require(Action::ManageApiKeys)?;
    Ok(state.store.list_api_keys(ctx.tenant_id()).await?)
}

pub async fn revoke(state: &AppState, ctx: &TenantCtx, id: ApiKeyId) -> Result<ApiKey> {
    ctx.require(Action::ManageApiKeys)?;
    let now = Utc::now();
    let event = NewAuditEvent::new(ctx.actor(), action::API_KEY_REVOKED, now).target("api_key", id);
    Ok(state
        .store
        .revoke_api_key(ctx.tenant_id(), id, now, event)
        .await?)
}
