//! The operator's side: platform admin accounts (created on the command line), their sign-in
//! and the tenant list with suspension and reactivation.

use std::net::IpAddr;

use chrono::Utc;
use cortex_core::audit::{Actor, NewAuditEvent, action};
use cortex_core::credentials::PlatformAdmin;
use cortex_core::ids::{PlatformAdminId, TenantId};
use cortex_core::store::Page;
use cortex_core::tenancy::{Email, Tenant, check_password};

use super::accounts::check_attempts;
use super::{OperatorCtx, PLATFORM_ADMIN_ROLE, Result, TenancyError, invalid};
use crate::app::AppState;
use crate::infra::passwords;

/// Creates an operator account (`cortexlayer admin create`).
pub async fn create_admin(
    state: &AppState,
    email: &str,
    password: String,
) -> Result<PlatformAdmin> {
    let email = Email::parse(email).map_err(|e| invalid("email", e))?;
    check_password(&password).map_err(|e| invalid("password", e))?;
    let admin = PlatformAdmin {
        id: PlatformAdminId::new(),
        email,
        password_hash: passwords::hash(password).await?,
        created_at: Utc::now(),
    };
    state.store.create_platform_admin(admin.clone()).await?;
    Ok(admin)
}

/// An operator access token. Operators get no refresh token: they sign in again.
pub async fn login(
    state: &AppState,
    ip: IpAddr,
    email: &str,
    password: String,
) -> Result<(PlatformAdmin, String)> {
    check_attempts(state, "admin-login", ip, Some(email)).await?;
    let admin = match Email::parse(email) {
        Ok(e) => state.store.find_platform_admin(&e).await?,
        Err(_) => None,
    };
    let Some(admin) = admin else {
        passwords::verify(password, passwords::DUMMY_HASH.clone()).await;
        return Err(TenancyError::InvalidCredentials);
    };
    if !passwords::verify(password, admin.password_hash.clone()).await {
        return Err(TenancyError::InvalidCredentials);
    }
    let token = state.keys.sign(
        &admin.id.to_string(),
        None,
        PLATFORM_ADMIN_ROLE,
        Utc::now(),
        state.settings.auth.access_token_ttl_secs,
    )?;
    tracing::info!(platform_admin.id = %admin.id, "operator signed in");
    Ok((admin, token))
}

pub async fn list_tenants(state: &AppState, _ctx: &OperatorCtx, page: Page) -> Result<Vec<Tenant>> {
    Ok(state.store.list_tenants(page).await?)
}

/// The operator console's list: the tenants `filter` lets through, newest first, with their
/// documents and the conversations they opened this month (UTC).
pub async fn tenant_summaries(
    state: &AppState,
    _ctx: &OperatorCtx,
    filter: &cortex_core::tenancy::TenantFilter,
    page: Page,
) -> Result<Vec<cortex_core::tenancy::TenantSummary>> {
    let month = cortex_core::usage::month_start(Utc::now());
    Ok(state
        .store
        .list_tenant_summaries(filter, month, page)
        .await?)
}

pub async fn get_tenant(state: &AppState, _ctx: &OperatorCtx, id: TenantId) -> Result<Tenant> {
    Ok(state.store.get_tenant(id).await?)
}

/// Suspends (`true`) or reactivates (`false`) a tenant; the audit entry lands in that tenant's
/// log, naming the operator (`Actor::System` when done from the command line).
pub async fn set_suspended(
    state: &AppState,
    by: Actor,
    id: TenantId,
    suspended: bool,
) -> Result<Tenant> {
    let what = if suspended {
        action::TENANT_SUSPENDED
    } else {
        action::TENANT_REACTIVATED
    };
    let event = NewAuditEvent::new(by, what, Utc::now()).target("tenant", id);
    let tenant = state
        .store
        .set_tenant_suspended(id, suspended, event)
        .await?;
    tracing::info!(tenant.id = %id, suspended, "tenant status changed by operator");
    Ok(tenant)
}

/// Moves a tenant to another plan of the catalogue (until billing does it from Stripe).
pub async fn set_plan(state: &AppState, by: Actor, id: TenantId, plan: &str) -> Result<Tenant> {
    let Some(p) = cortex_core::plans::plan(plan) else {
        return Err(super::invalid("plan", "must be starter, growth or scale"));
    };
    let before = state.store.get_tenant(id).await?;
    let event = NewAuditEvent::new(by, action::TENANT_PLAN_CHANGED, Utc::now())
        .target("tenant", id)
        .metadata(serde_json::json!({ "from": before.plan, "to": p.id }));
    let tenant = state.store.set_tenant_plan(id, p.id, event).await?;
    tracing::info!(tenant.id = %id, plan = p.id, "tenant plan changed by operator");
    Ok(tenant)
}
