//! `/api/v1/members` and `/api/v1/invitations`: the tenant's team.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{InvitationView, MemberView, RoleName};
use crate::app::AppState;
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Auth, path_id};
use crate::tenancy::team;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub email: String,
    pub role: RoleName,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    pub role: RoleName,
}

/// List the team's members
#[utoipa::path(get, path = "/api/v1/members", tag = "team", security(("bearer" = [])),
    responses((status = 200, description = "Members, oldest first", body = Vec<MemberView>)))]
pub async fn list_members(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<Vec<MemberView>>> {
    let members = team::list_members(&state, &ctx).await?;
    Ok(Json(members.into_iter().map(Into::into).collect()))
}

/// Change a member's role
///
/// Owners and admins; only owners change owners or make owners. The last owner keeps the role.
#[utoipa::path(patch, path = "/api/v1/members/{id}", tag = "team", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Member id")), request_body = ChangeRoleRequest,
    responses(
        (status = 200, description = "The member with the new role", body = MemberView),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`last_owner`", body = ErrorBody),
    ))]
pub async fn change_role(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ChangeRoleRequest>,
) -> ApiResult<Json<MemberView>> {
    let member = team::change_role(&state, &ctx, path_id(&id)?, req.role.into()).await?;
    Ok(Json(member.into()))
}

/// Remove a member
///
/// Their sessions end at once. The last owner cannot be removed.
#[utoipa::path(delete, path = "/api/v1/members/{id}", tag = "team", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Member id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`last_owner`", body = ErrorBody),
    ))]
pub async fn remove_member(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    team::remove_member(&state, &ctx, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invite someone to the team
///
/// Mails a one-time link valid for 7 days. Admins invite admins and agents; owners anyone.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "team", security(("bearer" = [])), request_body = InviteRequest,
    responses(
        (status = 201, description = "Invitation sent", body = InvitationView),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
pub async fn create_invitation(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, Json<InvitationView>)> {
    let invitation = team::invite(&state, &ctx, &req.email, req.role.into()).await?;
    Ok((StatusCode::CREATED, Json(invitation.into())))
}

/// List pending invitations
#[utoipa::path(get, path = "/api/v1/invitations", tag = "team", security(("bearer" = [])),
    responses((status = 200, description = "Invitations not yet accepted, newest first", body = Vec<InvitationView>)))]
pub async fn list_invitations(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<Vec<InvitationView>>> {
    let list = team::list_invitations(&state, &ctx).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// Withdraw a pending invitation
#[utoipa::path(delete, path = "/api/v1/invitations/{id}", tag = "team", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Withdrawn; its link no longer works"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn delete_invitation(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    team::revoke_invitation(&state, &ctx, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
