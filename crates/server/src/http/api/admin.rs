//! `/api/v1/admin/…`: the operator's tenant list, suspension and reactivation.

use axum::Json;
use axum::extract::{Path, State};

use super::{ListView, PageParams, TenantView};
use crate::app::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiQuery, Operator, path_id};
use crate::tenancy::operators;

/// List tenants
#[utoipa::path(get, path = "/api/v1/admin/tenants", tag = "admin", security(("bearer" = [])), params(PageParams),
    responses(
        (status = 200, description = "Tenants, newest first", body = ListView<TenantView>),
        (status = 403, description = "`forbidden` for anyone but a platform admin", body = ErrorBody),
    ))]
pub async fn list_tenants(
    State(state): State<AppState>,
    Operator(op): Operator,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<ListView<TenantView>>> {
    let page = params.page()?;
    let tenants = operators::list_tenants(&state, &op, page).await?;
    Ok(Json(ListView::page(tenants, page, |t| t.id.0)))
}

/// One tenant
#[utoipa::path(get, path = "/api/v1/admin/tenants/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant", body = TenantView), (status = 404, description = "`not_found`", body = ErrorBody)))]
pub async fn get_tenant(
    State(state): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(
        operators::get_tenant(&state, &op, path_id(&id)?)
            .await?
            .into(),
    ))
}

/// Suspend a tenant
///
/// Its members and API keys get `403 tenant_suspended` until it is reactivated.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{id}/suspend", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "Suspended", body = TenantView), (status = 404, description = "`not_found`", body = ErrorBody)))]
pub async fn suspend_tenant(
    State(state): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(
        operators::set_suspended(&state, op.actor(), path_id(&id)?, true)
            .await?
            .into(),
    ))
}

/// Reactivate a tenant
///
/// Restores the status it had before the suspension.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{id}/reactivate", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Tenant id")),
    responses((status = 200, description = "Reactivated", body = TenantView), (status = 404, description = "`not_found`", body = ErrorBody)))]
pub async fn reactivate_tenant(
    State(state): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(
        operators::set_suspended(&state, op.actor(), path_id(&id)?, false)
            .await?
            .into(),
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPlanRequest {
    /// `starter`, `growth` or `scale`.
    pub plan: String,
}

/// Change a tenant's plan
#[utoipa::path(post, path = "/api/v1/admin/tenants/{id}/plan", tag = "admin", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Tenant id")),
    request_body = SetPlanRequest,
    responses(
        (status = 200, description = "Moved", body = TenantView),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: no such plan", body = ErrorBody),
    ))]
pub async fn set_tenant_plan(
    State(state): State<AppState>,
    Operator(op): Operator,
    Path(id): Path<String>,
    crate::http::extract::ApiJson(req): crate::http::extract::ApiJson<SetPlanRequest>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(
        operators::set_plan(&state, op.actor(), path_id(&id)?, &req.plan)
            .await?
            .into(),
    ))
}
