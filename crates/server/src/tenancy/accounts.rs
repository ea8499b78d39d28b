//! Accounts: signup with an emailed 6-digit code, login, rotating refresh tokens and logout.
//!
//! Every endpoint that takes an email answers in the same shape whether or not an account
//! exists (and spends the same argon2 time), and counts attempts per client address and per
//! account before doing any work.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use cortex_core::audit::{Actor, NewAuditEvent, action};
use cortex_core::credentials::NewRefreshToken;
use cortex_core::ids::{RefreshTokenId, SignupId, TenantId, TokenFamilyId, UserId};
use cortex_core::plans::DEFAULT_PLAN;
use cortex_core::store::RefreshUse;
use cortex_core::tenancy::{
    CompanyName, Email, NewPendingSignup, NewTenant, NewUser, Role, TenantStatus, User,
    check_password,
};

use super::{Result, TenancyError, invalid};
use crate::app::AppState;
use crate::infra::mailer::Mail;
use crate::infra::passwords;
use crate::infra::tokens::{self, hashes_equal};

const FIFTEEN_MINUTES: Duration = Duration::from_secs(15 * 60);

/// Tokens handed to a member who signed in.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub access_expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

pub struct SignupInput {
    pub email: String,
    pub password: String,
    pub company_name: String,
    pub name: Option<String>,
}

/// Counts an attempt of `what` against the client address and, when given, the account.
pub(crate) async fn check_attempts(
    state: &AppState,
    what: &str,
    ip: IpAddr,
    account: Option<&str>,
) -> Result<()> {
    let auth = &state.settings.auth;
    let by_ip = state
        .limiter
        .hit(
            &format!("{what}:ip:{ip}"),
            auth.attempts_per_ip_per_minute,
            Duration::from_secs(60),
        )
        .await;
    if !by_ip.allowed {
        return Err(TenancyError::RateLimited {
            retry_after_secs: by_ip.retry_after.as_secs().max(1),
        });
    }
    if let Some(account) = account {
        // Keys hold a hash, never the address itself.
        let key = format!(
            "{what}:account:{}",
            tokens::sha256_hex(&account.trim().to_lowercase())
        );
        let by_account = state
            .limiter
            .hit(
                &key,
                auth.attempts_per_account_per_15_minutes,
                FIFTEEN_MINUTES,
            )
            .await;
        if !by_account.allowed {
            return Err(TenancyError::RateLimited {
                retry_after_secs: by_account.retry_after.as_secs().max(1),
            });
        }
    }
    Ok(())
}

pub(crate) fn optional_name(raw: Option<String>) -> Result<Option<String>> {
    raw.filter(|n| !n.trim().is_empty())
        .map(|n| {
            CompanyName::parse(&n)
                .map(|n| n.as_str().to_owned())
                .map_err(|e| invalid("name", e))
        })
        .transpose()
}

/// Keeps a signup pending and mails its verification code; the tenant and its owner are
/// created only when the code is verified (with the password of the same signup). A new
/// signup for an address that is not verified yet replaces the pending one. Answers the same
/// whether or not the email already has an account (that account's owner gets a notice).
pub async fn signup(state: &AppState, ip: IpAddr, input: SignupInput) -> Result<()> {
    check_attempts(state, "signup", ip, None).await?;
    let email = Email::parse(&input.email).map_err(|e| invalid("email", e))?;
    check_password(&input.password).map_err(|e| invalid("password", e))?;
    let company =
        CompanyName::parse(&input.company_name).map_err(|e| invalid("company_name", e))?;
    let name = optional_name(input.name)?;
    let password_hash = passwords::hash(input.password).await?;

    if state.store.find_user_by_email(&email).await?.is_some() {
        send_account_exists(state, email).await;
        return Ok(());
    }
    let now = Utc::now();
    let signup = SignupId::new();
    let code = tokens::verification_code();
    state
        .store
        .put_pending_signup(NewPendingSignup {
            id: signup,
            email: email.clone(),
            company_name: company,
            name,
            password_hash,
            code_hash: state.keys.hash_code(&signup.to_string(), &code),
            expires_at: now + ttl(state.settings.auth.verification_code_ttl_secs),
            created_at: now,
        })
        .await?;
    tracing::info!(signup.id = %signup, "signup pending verification");
    send_code(state, email, &code).await;
    Ok(())
}

/// Whether `code` looks like a mailed verification code (6 digits).
pub(crate) fn well_formed_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// A configured lifetime in seconds as a duration (absurd values saturate, never wrap).
pub(crate) fn ttl(secs: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// Mail failures are logged, not returned: the answer must not depend on the account, and
/// the person can ask for the code again.
pub(crate) async fn deliver(state: &AppState, mail: Mail) {
    let kind = mail.kind;
    if let Err(e) = state.mailer.send(mail).await {
        tracing::error!(mail.kind = kind, error = %e, "mail could not be sent");
    }
}

async fn send_code(state: &AppState, to: Email, code: &str) {
    let minutes = state.settings.auth.verification_code_ttl_secs / 60;
    deliver(
        state,
        Mail {
            to,
            kind: "verification_code",
            about: "pending signup".into(),
            subject: format!("Your CortexLayer verification code: {code}"),
            body: format!(
                "Your verification code is {code}\n\nIt expires in {minutes} minutes. If you did not sign up for CortexLayer, ignore this message.\n"
            ),
        },
    )
    .await;
}

async fn send_account_exists(state: &AppState, to: Email) {
    let login = format!("{}/login", state.settings.app_url.trim_end_matches('/'));
    deliver(
        state,
        Mail {
            to,
            kind: "account_exists",
            about: "existing account".into(),
            subject: "You already have a CortexLayer account".into(),
            body: format!(
                "Someone tried to sign up with this address, which already has an account.\nSign in at {login}. If this was not you, ignore this message.\n"
            ),
        },
    )
    .await;
}

/// Checks a signup's code and password. Only the signup whose code was mailed, with the
/// password chosen in that same signup, becomes an account: the tenant and its owner are
/// created now, already verified, and the owner is signed in. A wrong code or password
/// counts against the code's attempts; every failure answers `InvalidCode` after the same
/// argon2 work, so the answer does not tell whether a signup is pending.
pub async fn verify_email(
    state: &AppState,
    ip: IpAddr,
    email: &str,
    code: &str,
    password: String,
) -> Result<Session> {
    check_attempts(state, "verify", ip, Some(email)).await?;
    let code = code.trim();
    let now = Utc::now();
    let pending = match Email::parse(email) {
        Ok(e) => state.store.find_pending_signup(&e, now).await?,
        Err(_) => None,
    };
    let usable = pending.filter(|p| {
        well_formed_code(code) && p.attempts < state.settings.auth.verification_max_attempts
    });
    let Some(pending) = usable else {
        passwords::verify(password, passwords::DUMMY_HASH.clone()).await;
        return Err(TenancyError::InvalidCode);
    };
    let code_ok = hashes_equal(
        &state.keys.hash_code(&pending.id.to_string(), code),
        &pending.code_hash,
    );
    let password_ok = passwords::verify(password, pending.password_hash.clone()).await;
    if !(code_ok && password_ok) {
        match state.store.record_pending_signup_failure(pending.id).await {
            Ok(_) | Err(cortex_core::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        return Err(TenancyError::InvalidCode);
    }
    let tenant = TenantId::new();
    let user = UserId::new();
    let owner = NewUser {
        id: user,
        email: pending.email.clone(),
        name: pending.name.clone(),
        role: Role::Owner,
        password_hash: pending.password_hash.clone(),
        email_verified_at: Some(now),
        created_at: now,
    };
    let result = state
        .store
        .complete_pending_signup(
            pending.id,
            NewTenant {
                id: tenant,
                name: pending.company_name.clone(),
                plan: DEFAULT_PLAN.into(),
                status: TenantStatus::Trial,
                created_at: now,
            },
            owner,
            NewAuditEvent::new(Actor::User(user.to_string()), action::TENANT_CREATED, now)
                .target("tenant", tenant)
                .metadata(serde_json::json!({ "plan": DEFAULT_PLAN })),
        )
        .await;
    match result {
        Ok(()) => {}
        // Replaced by a newer signup, or the address got an account (an invitation) meanwhile.
        Err(cortex_core::StoreError::NotFound | cortex_core::StoreError::Conflict(_)) => {
            return Err(TenancyError::InvalidCode);
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(tenant.id = %tenant, user.id = %user, "tenant signed up");
    let user = state.store.get_user(tenant, user).await?;
    issue_session(state, user, TokenFamilyId::new()).await
}

/// Sends a fresh code for the address's pending signup, if it has one. Always answers `Ok`.
pub async fn resend_verification(state: &AppState, ip: IpAddr, email: &str) -> Result<()> {
    check_attempts(state, "resend", ip, Some(email)).await?;
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    let now = Utc::now();
    let Some(pending) = state.store.find_pending_signup(&email, now).await? else {
        return Ok(());
    };
    let code = tokens::verification_code();
    match state
        .store
        .renew_pending_signup_code(
            pending.id,
            &state.keys.hash_code(&pending.id.to_string(), &code),
            now + ttl(state.settings.auth.verification_code_ttl_secs),
        )
        .await
    {
        Ok(()) => send_code(state, email, &code).await,
        // Replaced or completed meanwhile: that signup's own mail is the one to use.
        Err(cortex_core::StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

async fn ensure_tenant_live(state: &AppState, tenant: TenantId) -> Result<()> {
    if state.store.get_tenant(tenant).await?.status == TenantStatus::Suspended {
        return Err(TenancyError::TenantSuspended);
    }
    Ok(())
}

/// Email and password sign-in.
pub async fn login(state: &AppState, ip: IpAddr, email: &str, password: String) -> Result<Session> {
    check_attempts(state, "login", ip, Some(email)).await?;
    let user = match Email::parse(email) {
        Ok(e) => state.store.find_user_by_email(&e).await?,
        Err(_) => None,
    };
    let Some(user) = user else {
        // Same work as a wrong password, so timing does not tell which emails exist. Whoever
        // gives the password of the address's pending signup learns it still needs its code.
        let pending = match Email::parse(email) {
            Ok(e) => state.store.find_pending_signup(&e, Utc::now()).await?,
            Err(_) => None,
        };
        return Err(match pending {
            Some(p) => {
                if passwords::verify(password, p.password_hash).await {
                    TenancyError::EmailNotVerified
                } else {
                    TenancyError::InvalidCredentials
                }
            }
            None => {
                passwords::verify(password, passwords::DUMMY_HASH.clone()).await;
                TenancyError::InvalidCredentials
            }
        });
    };
    if !passwords::verify(password, user.password_hash.clone()).await {
        note_failed_login(state, &user).await;
        return Err(TenancyError::InvalidCredentials);
    }
    ensure_tenant_live(state, user.tenant_id).await?;
    if user.email_verified_at.is_none() {
        return Err(TenancyError::EmailNotVerified);
    }
    tracing::info!(tenant.id = %user.tenant_id, user.id = %user.id, "member signed in");
    issue_session(state, user, TokenFamilyId::new()).await
}

/// Counts failures per account; the failure that reaches the threshold writes one audit entry.
async fn note_failed_login(state: &AppState, user: &User) {
    let threshold = state.settings.auth.failure_burst_threshold;
    let hit = state
        .limiter
        .hit(
            &format!("login-failures:{}", user.id),
            threshold,
            FIFTEEN_MINUTES,
        )
        .await;
    if hit.count == threshold {
        let event = NewAuditEvent::new(Actor::System, action::LOGIN_FAILURE_BURST, Utc::now())
            .target("user", user.id)
            .metadata(serde_json::json!({ "failures": hit.count, "window_minutes": 15 }));
        if let Err(e) = state.store.record_audit(user.tenant_id, event).await {
            tracing::error!(error = %e, "could not record a login failure burst");
        }
        tracing::warn!(tenant.id = %user.tenant_id, user.id = %user.id, failures = hit.count, "login failure burst");
    }
}

/// A new access token and a refresh token in `family`.
pub async fn issue_session(state: &AppState, user: User, family: TokenFamilyId) -> Result<Session> {
    let auth = &state.settings.auth;
    let now = Utc::now();
    let access_token = state.keys.sign(
        &user.id.to_string(),
        Some(&user.tenant_id.to_string()),
        user.role.as_str(),
        now,
        auth.access_token_ttl_secs,
    )?;
    let refresh_token = tokens::random_token(32);
    state
        .store
        .insert_refresh_token(
            user.tenant_id,
            NewRefreshToken {
                id: RefreshTokenId::new(),
                user_id: user.id,
                family_id: family,
                token_hash: tokens::sha256_hex(&refresh_token),
                expires_at: now + ttl(auth.refresh_token_ttl_secs),
                created_at: now,
            },
        )
        .await?;
    Ok(Session {
        user,
        access_token,
        access_expires_in: auth.access_token_ttl_secs,
        refresh_token,
        refresh_expires_in: auth.refresh_token_ttl_secs,
    })
}

/// Trades a refresh token for a new session in the same family. A token presented a second
/// time means a copy is in someone else's hands: the whole family is revoked.
pub async fn refresh(state: &AppState, refresh_token: &str) -> Result<Session> {
    let hash = tokens::sha256_hex(refresh_token);
    let token = state
        .store
        .find_refresh_token(&hash)
        .await?
        .ok_or(TenancyError::InvalidRefreshToken)?;
    let now = Utc::now();
    match state
        .store
        .use_refresh_token(token.tenant_id, &hash, now)
        .await?
    {
        RefreshUse::Fresh(t) if t.expires_at > now => {
            let user = match state.store.get_user(t.tenant_id, t.user_id).await {
                Ok(u) => u,
                Err(cortex_core::StoreError::NotFound) => {
                    return Err(TenancyError::InvalidRefreshToken);
                }
                Err(e) => return Err(e.into()),
            };
            ensure_tenant_live(state, user.tenant_id).await?;
            issue_session(state, user, t.family_id).await
        }
        RefreshUse::Fresh(_) => Err(TenancyError::InvalidRefreshToken),
        RefreshUse::Reused(t) if t.used_at.is_some() => {
            let revoked = state
                .store
                .revoke_token_family(t.tenant_id, t.family_id, now)
                .await?;
            let event = NewAuditEvent::new(
                Actor::User(t.user_id.to_string()),
                action::REFRESH_TOKEN_REUSED,
                now,
            )
            .target("user", t.user_id)
            .metadata(serde_json::json!({ "revoked_tokens": revoked }));
            state.store.record_audit(t.tenant_id, event).await?;
            tracing::warn!(tenant.id = %t.tenant_id, user.id = %t.user_id, "refresh token reuse: family revoked");
            Err(TenancyError::RefreshTokenReused)
        }
        // Revoked by logout or by an earlier reuse.
        RefreshUse::Reused(_) => Err(TenancyError::InvalidRefreshToken),
    }
}

/// Revokes the family of the presented refresh token. Unknown tokens are ignored.
pub async fn logout(state: &AppState, refresh_token: &str) -> Result<()> {
    if let Some(t) = state
        .store
        .find_refresh_token(&tokens::sha256_hex(refresh_token))
        .await?
    {
        state
            .store
            .revoke_token_family(t.tenant_id, t.family_id, Utc::now())
            .await?;
    }
    Ok(())
}
