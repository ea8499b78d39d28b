//! Passwords: a reset by emailed link for whoever forgot theirs, and a change for a signed-in
//! member. Both end other sessions: a reset every session of the member (whoever knew the old
//! password is signed out), a change every session but the one that made it.
//!
//! Asking for a reset answers the same whether or not the address has an account, after the
//! same work: the mail goes out from a task of its own, so a slow mail server does not tell.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::audit::{Actor, NewAuditEvent, action};
use cortex_core::credentials::NewPasswordReset;
use cortex_core::ids::{PasswordResetId, TokenFamilyId};
use cortex_core::tenancy::{Email, check_password};

use super::accounts::check_attempts;
use super::{Action, Result, TenancyError, TenantCtx, invalid};
use crate::app::AppState;
use crate::infra::mailer::Mail;
use crate::infra::passwords;
use crate::infra::tokens;

/// How long an emailed reset link works.
pub const RESET_TTL: Duration = Duration::from_secs(30 * 60);

/// Mails a reset link to the address if it belongs to a verified member. Always `Ok` (after
/// the rate limits), whatever the address.
pub async fn request_reset(state: &AppState, ip: IpAddr, email: &str) -> Result<()> {
    check_attempts(state, "reset", ip, Some(email)).await?;
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    let Some(user) = state.store.find_user_by_email(&email).await? else {
        return Ok(());
    };
    if user.email_verified_at.is_none() {
        return Ok(());
    }
    let token = tokens::random_token(32);
    let now = Utc::now();
    let id = PasswordResetId::new();
    match state
        .store
        .insert_password_reset(
            user.tenant_id,
            NewPasswordReset {
                id,
                user_id: user.id,
                token_hash: tokens::sha256_hex(&token),
                expires_at: now + super::accounts::ttl(RESET_TTL.as_secs()),
                created_at: now,
            },
        )
        .await
    {
        Ok(()) => {}
        // Removed from the team meanwhile.
        Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(tenant.id = %user.tenant_id, user.id = %user.id, "password reset requested");
    let link = format!(
        "{}/reset-password?token={token}",
        state.settings.app_url.trim_end_matches('/')
    );
    let mail = Mail {
        to: email,
        kind: "password_reset",
        about: format!("user {}", user.id),
        subject: "Reset your CortexLayer password".into(),
        body: format!(
            "Someone asked to reset the password of your CortexLayer account.\n\nSet a new password here (the link works once, for 30 minutes):\n{link}\n\nSetting it signs you out everywhere. If this was not you, ignore this message: your password stays as it is.\n"
        ),
    };
    let state = state.clone();
    tokio::spawn(async move { super::accounts::deliver(&state, mail).await });
    Ok(())
}

/// Sets a new password with an emailed reset token and signs the member out of every session.
/// Any token that is unknown, used, expired or raced by another use answers
/// `InvalidResetToken`.
pub async fn complete_reset(
    state: &AppState,
    ip: IpAddr,
    token: &str,
    password: String,
) -> Result<()> {
    check_attempts(state, "reset-confirm", ip, None).await?;
    check_password(&password).map_err(|e| invalid("password", e))?;
    let now = Utc::now();
    let reset = state
        .store
        .find_password_reset(&tokens::sha256_hex(token.trim()))
        .await?
        .filter(|r| r.used_at.is_none() && r.expires_at > now)
        .ok_or(TenancyError::InvalidResetToken)?;
    let hash = passwords::hash(password).await?;
    let event = NewAuditEvent::new(
        Actor::User(reset.user_id.to_string()),
        action::PASSWORD_RESET,
        now,
    )
    .target("user", reset.user_id);
    match state
        .store
        .complete_password_reset(reset.tenant_id, reset.id, &hash, now, event)
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(TenancyError::InvalidResetToken),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(tenant.id = %reset.tenant_id, user.id = %reset.user_id, "password reset: every session signed out");
    Ok(())
}

/// A signed-in member changes their password, giving the current one. Every other session of
/// the member ends; `keep` (the browser session making the change) stays signed in.
pub async fn change_password(
    state: &AppState,
    ctx: &TenantCtx,
    keep: Option<TokenFamilyId>,
    current: String,
    new: String,
) -> Result<()> {
    let user = ctx.require_member(Action::ManageOwnAccount)?;
    check_password(&new).map_err(|e| invalid("new_password", e))?;
    if !passwords::verify(current, user.password_hash.clone()).await {
        return Err(invalid(
            "current_password",
            "this is not your current password",
        ));
    }
    let hash = passwords::hash(new).await?;
    let now = Utc::now();
    let event =
        NewAuditEvent::new(ctx.actor(), action::PASSWORD_CHANGED, now).target("user", user.id);
    state
        .store
        .change_password(ctx.tenant_id(), user.id, &hash, keep, now, event)
        .await?;
    tracing::info!(tenant.id = %ctx.tenant_id(), user.id = %user.id, "password changed");
    Ok(())
}
