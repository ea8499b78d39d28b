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
use crate::http::extract::{ApiJson, ApiQuery, Auth};
use crate::tenancy::{Caller, passwords, sessions};

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
    let authenticated_as = match ctx.caller() {
        Caller::User(_) => "user",
        Caller::ApiKey(_) => "api_key",
        Caller::Operator | Caller::PlatformAdmin(_) => "operator",
        Caller::Visitor { .. } => "visitor",
        Caller::System { .. } => "system",
    };
    Json(CurrentTenantView {
        tenant: ctx.tenant().clone().into(),
        authenticated_as,
    })
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
