//! `/api/v1/api-keys`: keys for server-to-server calls as the tenant.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cortex_core::credentials::ApiScope;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiKeyView;
use crate::app::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Auth, path_id};
use crate::tenancy::api_keys;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// What the key is for, e.g. "CRM sync".
    pub name: String,
    /// Any of `chat`, `knowledge:read`, `knowledge:write`, `conversations:read`.
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<ApiScope>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKeyView {
    /// The full key. Shown this once; store it now.
    pub key: String,
    pub api_key: ApiKeyView,
}

/// Create an API key
///
/// Owners and admins. The full key is in this response only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api keys", security(("bearer" = [])), request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "Created", body = CreatedApiKeyView),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedApiKeyView>)> {
    let created = api_keys::create(&state, &ctx, &req.name, req.scopes).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyView {
            key: created.secret,
            api_key: created.key.into(),
        }),
    ))
}

/// List API keys
///
/// Revoked keys are listed too, with their revocation time.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api keys", security(("bearer" = [])),
    responses((status = 200, description = "Keys, newest first", body = Vec<ApiKeyView>)))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<Vec<ApiKeyView>>> {
    let keys = api_keys::list(&state, &ctx).await?;
    Ok(Json(keys.into_iter().map(Into::into).collect()))
}

/// Revoke an API key
///
/// The key stops working at once.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api keys", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`already_revoked`", body = ErrorBody),
    ))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    api_keys::revoke(&state, &ctx, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
