//! The company's profile (its name) and a member's own sign-in address.
//!
//! A new address becomes the member's only once the 6-digit code mailed to it is entered, so
//! nobody can move an account onto a mailbox they do not read. Asking for the change takes the
//! current password (a session left open in someone else's browser cannot take the account
//! over), answers the same whether or not the new address already has an account (that
//! mailbox gets a notice instead of a code), and counts attempts as signup does. Once changed,
//! the old address is told.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use cortex_core::StoreError;
use cortex_core::audit::{NewAuditEvent, action};
use cortex_core::ids::EmailChangeId;
use cortex_core::store::conflict;
use cortex_core::tenancy::{CompanyName, Email, NewEmailChange, Tenant, User};

use super::accounts::{check_attempts, deliver, ttl, well_formed_code};
use super::{Action, Result, TenancyError, TenantCtx, invalid};
use crate::app::AppState;
use crate::infra::mailer::Mail;
use crate::infra::passwords;
use crate::infra::tokens::{self, hashes_equal};

/// Renames the company (owners, admins and the operator), with an audit entry that keeps the
/// old and the new name. The same name again changes nothing.
pub async fn rename_company(state: &AppState, ctx: &TenantCtx, name: &str) -> Result<Tenant> {
    ctx.require(Action::ManageCompany)?;
    let name = CompanyName::parse(name).map_err(|e| invalid("name", e))?;
    let current = ctx.tenant();
    if current.name == name.as_str() {
        return Ok(current.clone());
    }
    let event = NewAuditEvent::new(ctx.actor(), action::TENANT_RENAMED, Utc::now())
        .target("tenant", ctx.tenant_id())
        .metadata(serde_json::json!({ "from": current.name, "to": name.as_str() }));
    let tenant = state
        .store
        .rename_tenant(ctx.tenant_id(), &name, event)
        .await?;
    tracing::info!(tenant.id = %ctx.tenant_id(), "company renamed");
    Ok(tenant)
}

/// A member's new address waiting for its code.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEmail {
    pub new_email: Email,
    pub expires_at: DateTime<Utc>,
}

/// The member's pending change of address, if one is waiting.
pub async fn pending_email_change(
    state: &AppState,
    ctx: &TenantCtx,
) -> Result<Option<PendingEmail>> {
    let user = ctx.require_member(Action::ManageOwnAccount)?;
    Ok(state
        .store
        .find_email_change(ctx.tenant_id(), user.id, Utc::now())
        .await?
        .map(|c| PendingEmail {
            new_email: c.new_email,
            expires_at: c.expires_at,
        }))
}

/// Starts moving the member's sign-in address to `new_email`: checks the current password and
/// mails a code to the new address (or, if it already has an account, a notice that nothing
/// changed). The answer is the same either way. A newer request replaces the pending one.
pub async fn request_email_change(
    state: &AppState,
    ip: IpAddr,
    ctx: &TenantCtx,
    new_email: &str,
    password: String,
) -> Result<PendingEmail> {
    let user = ctx.require_member(Action::ManageOwnAccount)?;
    check_attempts(state, "email-change", ip, Some(&user.id.to_string())).await?;
    let new_email = Email::parse(new_email).map_err(|e| invalid("new_email", e))?;
    if new_email == user.email {
        return Err(invalid("new_email", "this is already your address"));
    }
    if !passwords::verify(password, user.password_hash.clone()).await {
        return Err(invalid("password", "this is not your current password"));
    }
    let taken = state.store.find_user_by_email(&new_email).await?.is_some();
    let now = Utc::now();
    let id = EmailChangeId::new();
    // An address with an account gets a notice, never a code: the stored hash is of a secret
    // nobody is sent, so the change can never complete.
    let code = tokens::verification_code();
    let secret = if taken {
        tokens::random_token(32)
    } else {
        code.clone()
    };
    let expires_at = now + ttl(state.settings.auth.verification_code_ttl_secs);
    state
        .store
        .put_email_change(
            ctx.tenant_id(),
            NewEmailChange {
                id,
                user_id: user.id,
                new_email: new_email.clone(),
                code_hash: state.keys.hash_code(&id.to_string(), &secret),
                expires_at,
                created_at: now,
            },
        )
        .await?;
    tracing::info!(tenant.id = %ctx.tenant_id(), user.id = %user.id, "email change requested");
    let mail = if taken {
        address_taken_mail(state, new_email.clone())
    } else {
        code_mail(state, new_email.clone(), &code)
    };
    // From a task of its own, so a slow mail server does not tell which mail went out.
    let state = state.clone();
    tokio::spawn(async move { deliver(&state, mail).await });
    Ok(PendingEmail {
        new_email,
        expires_at,
    })
}

fn code_mail(state: &AppState, to: Email, code: &str) -> Mail {
    let minutes = state.settings.auth.verification_code_ttl_secs / 60;
    Mail {
        to,
        kind: "email_change_code",
        about: "email change".into(),
        subject: format!("Your CortexLayer verification code: {code}"),
        body: format!(
            "Someone signed in to CortexLayer asked to make this address their sign-in address.\n\nYour verification code is {code}\n\nIt expires in {minutes} minutes. If this was not you, ignore this message: nothing changes without the code.\n"
        ),
    }
}

fn address_taken_mail(state: &AppState, to: Email) -> Mail {
    let login = format!("{}/login", state.settings.app_url.trim_end_matches('/'));
    Mail {
        to,
        kind: "email_change_taken",
        about: "email change".into(),
        subject: "This address already has a CortexLayer account".into(),
        body: format!(
            "Someone signed in to another CortexLayer account asked to make this address their sign-in address. It already belongs to your account, so nothing changed.\nYour account is at {login}. If this was not you, ignore this message.\n"
        ),
    }
}

fn changed_mail(state: &AppState, old: Email, new: &Email) -> Mail {
    let login = format!("{}/login", state.settings.app_url.trim_end_matches('/'));
    Mail {
        to: old,
        kind: "email_changed",
        about: "email change".into(),
        subject: "Your CortexLayer sign-in address changed".into(),
        body: format!(
            "The sign-in address of your CortexLayer account is now {new}. This address no longer signs in.\nSign in at {login} with the new address. If you did not make this change, tell your team's owner at once: they can remove the account from the team.\n"
        ),
    }
}

/// Enters the code mailed to the new address: the address becomes the member's (verified),
/// and the old address is told. A wrong, expired or used code answers `InvalidCode` and
/// counts against the change's attempts; `EmailTaken` if the address got an account since.
pub async fn confirm_email_change(
    state: &AppState,
    ip: IpAddr,
    ctx: &TenantCtx,
    code: &str,
) -> Result<User> {
    let user = ctx.require_member(Action::ManageOwnAccount)?;
    check_attempts(state, "email-confirm", ip, Some(&user.id.to_string())).await?;
    let code = code.trim();
    let now = Utc::now();
    let pending = state
        .store
        .find_email_change(ctx.tenant_id(), user.id, now)
        .await?
        .filter(|c| {
            well_formed_code(code) && c.attempts < state.settings.auth.verification_max_attempts
        })
        .ok_or(TenancyError::InvalidCode)?;
    if !hashes_equal(
        &state.keys.hash_code(&pending.id.to_string(), code),
        &pending.code_hash,
    ) {
        match state
            .store
            .record_email_change_failure(ctx.tenant_id(), pending.id)
            .await
        {
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        return Err(TenancyError::InvalidCode);
    }
    let event = NewAuditEvent::new(ctx.actor(), action::EMAIL_CHANGED, now).target("user", user.id);
    let changed = match state
        .store
        .complete_email_change(ctx.tenant_id(), pending.id, now, event)
        .await
    {
        Ok(u) => u,
        Err(StoreError::NotFound) => return Err(TenancyError::InvalidCode),
        Err(StoreError::Conflict(c)) if c == conflict::EMAIL_TAKEN => {
            state
                .store
                .cancel_email_change(ctx.tenant_id(), user.id)
                .await?;
            return Err(TenancyError::EmailTaken);
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(tenant.id = %ctx.tenant_id(), user.id = %user.id, "email changed");
    let mail = changed_mail(state, user.email.clone(), &changed.email);
    let state = state.clone();
    tokio::spawn(async move { deliver(&state, mail).await });
    Ok(changed)
}

/// Drops the member's pending change of address, if any (its code stops working).
pub async fn cancel_email_change(state: &AppState, ctx: &TenantCtx) -> Result<()> {
    let user = ctx.require_member(Action::ManageOwnAccount)?;
    state
        .store
        .cancel_email_change(ctx.tenant_id(), user.id)
        .await?;
    Ok(())
}
