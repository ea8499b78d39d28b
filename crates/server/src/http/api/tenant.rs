//! `/api/v1/tenant`, `/api/v1/me` and `/api/v1/audit-events`: the caller's own tenant.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AuditEventView, ListView, MemberView, PageParams, TenantView};
use crate::app::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, ApiQuery, Auth, ClientIp};
use crate::tenancy::{Caller, passwords, profile, sessions};

#[derive(Serialize, ToSchema)]
pub struct CurrentTenantView {
    #[serde(flatten)]
    pub tenant: TenantView,
    /// How the caller is authenticated: `user` or `api_key`.
    pub authenticated_as: &'static str,
}

/// The caller's tenant
///
/// Works with a member's access token or with an API key.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenant", security(("bearer" = [])),
    responses(
        (status = 200, description = "The tenant", body = CurrentTenantView),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 403, description = "`tenant_suspended`", body = ErrorBody),
    ))]
pub async fn get_tenant(Auth(ctx): Auth) -> Json<CurrentTenantView> {
    Json(CurrentTenantView {
        tenant: ctx.tenant().clone().into(),
        authenticated_as: authenticated_as(ctx.caller()),
    })
}

fn authenticated_as(caller: &Caller) -> &'static str {
    match caller {
        Caller::User(_) => "user",
        Caller::ApiKey(_) => "api_key",
        Caller::Operator | Caller::PlatformAdmin(_) => "operator",
        Caller::Visitor { .. } => "visitor",
        Caller::System { .. } => "system",
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenantRequest {
    /// The company's name, as the team and the operator see it.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

/// Change the company's profile
///
/// Owners and admins (and the operator). The change is in the audit log as
/// `tenant.renamed` with the old and the new name.
#[utoipa::path(patch, path = "/api/v1/tenant", tag = "tenant", security(("bearer" = [])), request_body = UpdateTenantRequest,
    responses(
        (status = 200, description = "The tenant as it is now", body = CurrentTenantView),
        (status = 403, description = "`forbidden` for agents and API keys", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `name`", body = ErrorBody),
    ))]
pub async fn update_tenant(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<UpdateTenantRequest>,
) -> ApiResult<Json<CurrentTenantView>> {
    let tenant = profile::rename_company(&state, &ctx, &req.name).await?;
    Ok(Json(CurrentTenantView {
        tenant: tenant.into(),
        authenticated_as: authenticated_as(ctx.caller()),
    }))
}

/// The signed-in member
#[utoipa::path(get, path = "/api/v1/me", tag = "tenant", security(("bearer" = [])),
    responses(
        (status = 200, description = "The member", body = MemberView),
        (status = 403, description = "`forbidden` for API keys", body = ErrorBody),
    ))]
pub async fn get_me(Auth(ctx): Auth) -> ApiResult<Json<MemberView>> {
    let me = ctx.require_member(crate::tenancy::Action::ReadOwnProfile)?;
    Ok(Json(me.clone().into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// At least 12 characters.
    #[schema(min_length = 12, max_length = 1024)]
    pub new_password: String,
}

/// Change the signed-in member's password
///
/// Needs the current password. Every session of the member ends, the caller's refresh token
/// included (an access token has no session of its own): sign in again. The dashboard's
/// Settings page keeps its own browser session.
#[utoipa::path(put, path = "/api/v1/me/password", tag = "tenant", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every session signed out"),
        (status = 403, description = "`forbidden` for API keys", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `current_password` is wrong or `new_password` too weak", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    passwords::change_password(&state, &ctx, None, req.current_password, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeEmailRequest {
    /// The address to sign in with from now on.
    pub new_email: String,
    /// The member's current password.
    pub password: String,
}

/// A new sign-in address waiting for the code mailed to it.
#[derive(Serialize, ToSchema)]
pub struct PendingEmailView {
    pub new_email: String,
    /// Until when the mailed code works.
    pub expires_at: DateTime<Utc>,
}

impl From<profile::PendingEmail> for PendingEmailView {
    fn from(p: profile::PendingEmail) -> Self {
        Self {
            new_email: p.new_email.to_string(),
            expires_at: p.expires_at,
        }
    }
}

/// Change the signed-in member's sign-in address
///
/// Needs the current password. A 6-digit code goes to the new address; the address changes
/// only when the code is entered (`POST /api/v1/me/email/confirm`). The answer is the same
/// whether or not the new address already has an account (that mailbox gets a notice, never a
/// code). A newer request replaces the pending one. Rate limited as sign-in is.
#[utoipa::path(post, path = "/api/v1/me/email", tag = "tenant", security(("bearer" = [])), request_body = ChangeEmailRequest,
    responses(
        (status = 202, description = "The code is on its way to the new address", body = PendingEmailView),
        (status = 403, description = "`forbidden` for API keys", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `new_email` (malformed or the current one) or `password` (wrong)", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
pub async fn request_email_change(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<ChangeEmailRequest>,
) -> ApiResult<(StatusCode, Json<PendingEmailView>)> {
    let pending =
        profile::request_email_change(&state, ip, &ctx, &req.new_email, req.password).await?;
    Ok((StatusCode::ACCEPTED, Json(pending.into())))
}

/// The signed-in member's pending change of address
#[utoipa::path(get, path = "/api/v1/me/email", tag = "tenant", security(("bearer" = [])),
    responses(
        (status = 200, description = "The change waiting for its code", body = PendingEmailView),
        (status = 403, description = "`forbidden` for API keys", body = ErrorBody),
        (status = 404, description = "`not_found`: no change is waiting", body = ErrorBody),
    ))]
pub async fn get_email_change(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<PendingEmailView>> {
    let pending = profile::pending_email_change(&state, &ctx)
        .await?
        .ok_or(crate::tenancy::TenancyError::NotFound)?;
    Ok(Json(pending.into()))
}

/// Withdraw the pending change of address
///
/// Its code stops working. Answers 204 whether or not a change was waiting.
#[utoipa::path(delete, path = "/api/v1/me/email", tag = "tenant", security(("bearer" = [])),
    responses(
        (status = 204, description = "No change is waiting"),
        (status = 403, description = "`forbidden` for API keys", body = ErrorBody),
    ))]
pub async fn cancel_email_change(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<StatusCode> {
    profile::cancel_email_change(&state, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmEmailRequest {
    /// The 6 digits mailed to the new address.
    pub code: String,
}

/// Confirm the new sign-in address with its code
///
/// The address becomes the member's; the old one is told and no longer signs in. Sessions
/// stay signed in.
#[utoipa::path(post, path = "/api/v1/me/email/confirm", tag = "tenant", security(("bearer" = [])), request_body = ConfirmEmailRequest,
    responses(
        (status = 200, description = "The member with the new address", body = MemberView),
        (status = 400, description = "`invalid_code`: wrong, expired, used or tried too often", body = ErrorBody),
        (status = 403, description = "`forbidden` for API keys", body = ErrorBody),
        (status = 409, description = "`email_taken`: the address got an account meanwhile; the change is dropped", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody),
    ))]
pub async fn confirm_email_change(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<ConfirmEmailRequest>,
) -> ApiResult<Json<MemberView>> {
    let user = profile::confirm_email_change(&state, ip, &ctx, &req.code).await?;
    Ok(Json(user.into()))
}

/// One signed-in session of the member.
#[derive(Serialize, ToSchema)]
pub struct SessionSummaryView {
    pub id: uuid::Uuid,
    pub started_at: DateTime<Utc>,
    /// When its newest token was issued (the sign-in or the latest refresh).
    pub refreshed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The signed-in member's sessions
///
/// Every login (browser or API client) that can still refresh, most recently active first.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "tenant", security(("bearer" = [])),
    responses(
        (status = 200, description = "Sessions", body = Vec<SessionSummaryView>),
        (status = 403, description = "`forbidden` for API keys", body = ErrorBody),
    ))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<Vec<SessionSummaryView>>> {
    let sessions = sessions::list_sessions(&state, &ctx).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|s| SessionSummaryView {
                id: s.family_id.0,
                started_at: s.started_at,
                refreshed_at: s.refreshed_at,
                expires_at: s.expires_at,
            })
            .collect(),
    ))
}

/// Sign out everywhere
///
/// Revokes every session of the member, browsers and API clients alike; access tokens
/// already issued run out within 15 minutes.
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "tenant", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session signed out"),
        (status = 403, description = "`forbidden` for API keys", body = ErrorBody),
    ))]
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<StatusCode> {
    sessions::sign_out_everywhere(&state, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The tenant's audit log
///
/// Owners and admins. Newest first; page with `before`.
#[utoipa::path(get, path = "/api/v1/audit-events", tag = "tenant", security(("bearer" = [])), params(PageParams),
    responses(
        (status = 200, description = "Events", body = ListView<AuditEventView>),
        (status = 403, description = "`forbidden`", body = ErrorBody),
    ))]
pub async fn list_audit_events(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListView<AuditEventView>>> {
    ctx.require(crate::tenancy::Action::ReadAuditLog)?;
    let page = params.page()?;
    let events = crate::tenancy::audit_events(
        &state,
        &ctx,
        &cortex_core::audit::AuditFilter::default(),
        page,
    )
    .await?;
    Ok(Json(ListView::page(events, page, |e| e.id.as_uuid())))
}
