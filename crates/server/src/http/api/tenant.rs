//! `/api/v1/tenant`, `/api/v1/me` and `/api/v1/audit-events`: the caller's own tenant.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AuditEventView, ListView, MemberView, PageParams, TenantView};
use crate::app::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiQuery, Auth};
use crate::tenancy::Caller;

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
    let events = crate::tenancy::audit_events(&state, &ctx, page).await?;
    Ok(Json(ListView::page(events, page, |e| e.id.as_uuid())))
}
