//! Sessions as the web dashboard uses them. A browser's session is a refresh-token family like
//! an API client's: signing in issues one (its token becomes the `HttpOnly` cookie), and every
//! page request checks the token is still live — not used, not revoked, not expired — and
//! reads the member and the tenant fresh, as [`super::authenticate`] does for bearer tokens.
//! Signing out revokes the family; signing out everywhere revokes every family of the member.

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::audit::{NewAuditEvent, action};
use cortex_core::credentials::SessionSummary;
use cortex_core::ids::TokenFamilyId;

use super::{Action, Caller, Result, TenancyError, TenantCtx};
use crate::app::AppState;
use crate::infra::tokens;

/// A live browser session: the member's context and the family the cookie belongs to.
#[derive(Clone, Debug)]
pub struct BrowserSession {
    pub ctx: TenantCtx,
    pub family: TokenFamilyId,
}

/// Turns a session cookie's token into the member's context. A suspended tenant answers
/// `TenantSuspended` (the dashboard says so) rather than `Unauthenticated`.
pub async fn authenticate_session(state: &AppState, token: &str) -> Result<BrowserSession> {
    let now = Utc::now();
    let token = state
        .store
        .find_refresh_token(&tokens::sha256_hex(token))
        .await?
        .filter(|t| t.used_at.is_none() && t.revoked_at.is_none() && t.expires_at > now)
        .ok_or(TenancyError::Unauthenticated)?;
    let user = match state.store.get_user(token.tenant_id, token.user_id).await {
        Ok(u) => u,
        Err(StoreError::NotFound) => return Err(TenancyError::Unauthenticated),
        Err(e) => return Err(e.into()),
    };
    let tenant = match state.store.get_tenant(token.tenant_id).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Err(TenancyError::Unauthenticated),
        Err(e) => return Err(e.into()),
    };
    Ok(BrowserSession {
        ctx: TenantCtx::new(tenant, Caller::User(user))?,
        family: token.family_id,
    })
}

/// Signs the cookie's session out (its family). An unknown or dead token is ignored.
pub async fn sign_out(state: &AppState, token: &str) -> Result<()> {
    super::accounts::logout(state, token).await
}

/// Signs the member out of every session: browsers and API clients alike. Returns how many
/// tokens were still live.
pub async fn sign_out_everywhere(state: &AppState, ctx: &TenantCtx) -> Result<u64> {
    let user = ctx.require_member(Action::ManageOwnAccount)?;
    let now = Utc::now();
    let revoked = state
        .store
        .revoke_user_tokens(ctx.tenant_id(), user.id, now)
        .await?;
    let event = NewAuditEvent::new(ctx.actor(), action::SESSIONS_REVOKED, now)
        .target("user", user.id)
        .metadata(serde_json::json!({ "revoked_tokens": revoked }));
    state.store.record_audit(ctx.tenant_id(), event).await?;
    tracing::info!(tenant.id = %ctx.tenant_id(), user.id = %user.id, revoked, "signed out everywhere");
    Ok(revoked)
}

/// The member's own live sessions, most recently active first.
pub async fn list_sessions(state: &AppState, ctx: &TenantCtx) -> Result<Vec<SessionSummary>> {
    let user = ctx.require_member(Action::ManageOwnAccount)?;
    Ok(state
        .store
        .list_sessions(ctx.tenant_id(), user.id, Utc::now())
        .await?)
}

/// Ends one of the member's own sessions; `NotFound` unless it is theirs and live.
pub async fn revoke_session(
    state: &AppState,
    ctx: &TenantCtx,
    family: TokenFamilyId,
) -> Result<()> {
    let sessions = list_sessions(state, ctx).await?;
    if !sessions.iter().any(|s| s.family_id == family) {
        return Err(TenancyError::NotFound);
    }
    state
        .store
        .revoke_token_family(ctx.tenant_id(), family, Utc::now())
        .await?;
    Ok(())
}
