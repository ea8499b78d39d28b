//! Team: the members with their roles, and for owners and admins the invitations, inviting,
//! changing a role and removing a member. A member is offered only what `Role::may_manage`
//! lets them do; anything forced is refused by the same domain functions the API calls.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use cortex_core::ids::{InvitationId, UserId};
use cortex_core::tenancy::Role;
use serde::Deserialize;

use super::forms::{Empty, sentence};
use super::pages::{Chrome, ConfirmPage, error_page, page, page_with_status};
use super::session::{Member, PageForm};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::tenancy::{Action, Caller, TenancyError, team};

pub struct MemberRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub joined: String,
    pub me: bool,
    /// The roles the viewer may give this member (empty: the viewer may not manage them).
    pub roles: Vec<(&'static str, bool)>,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    chrome: Chrome,
    members: Vec<MemberRow>,
    can_manage: bool,
    invitations: Vec<InvitationRow>,
    /// The roles the viewer may invite with.
    invite_roles: Vec<&'static str>,
    notice: String,
    error: String,
    email: String,
}

const ROLES: [Role; 3] = [Role::Owner, Role::Admin, Role::Agent];

async fn render(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    notice: String,
    error: String,
    email: String,
) -> Response {
    let ctx = &member.ctx;
    let Caller::User(me) = ctx.caller() else {
        return error_page(ApiError::from(TenancyError::Forbidden("members only")));
    };
    let members = match team::list_members(state, ctx).await {
        Ok(m) => m,
        Err(e) => return error_page(e.into()),
    };
    let can_manage = ctx.require(Action::ManageTeam).is_ok();
    let invitations = if can_manage {
        match team::list_invitations(state, ctx).await {
            Ok(i) => i,
            Err(e) => return error_page(e.into()),
        }
    } else {
        Vec::new()
    };
    let grantable: Vec<Role> = ROLES
        .into_iter()
        .filter(|r| can_manage && me.role.may_manage(*r))
        .collect();
    page_with_status(
        status,
        &TeamPage {
            chrome: Chrome::member(member, "/team"),
            members: members
                .into_iter()
                .map(|u| MemberRow {
                    id: u.id.to_string(),
                    name: u.name.clone().unwrap_or_default(),
                    email: u.email.to_string(),
                    role: u.role.as_str(),
                    joined: u.created_at.format("%Y-%m-%d").to_string(),
                    me: u.id == me.id,
                    roles: if u.id != me.id && can_manage && me.role.may_manage(u.role) {
                        grantable
                            .iter()
                            .map(|r| (r.as_str(), *r == u.role))
                            .collect()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            can_manage,
            invitations: invitations
                .into_iter()
                .map(|i| InvitationRow {
                    id: i.id.to_string(),
                    email: i.email.to_string(),
                    role: i.role.as_str(),
                    expires: i.expires_at.format("%Y-%m-%d").to_string(),
                })
                .collect(),
            invite_roles: grantable.iter().map(|r| r.as_str()).collect(),
            notice,
            error,
            email,
        },
    )
}

#[derive(Deserialize, Default)]
pub struct TeamQuery {
    done: Option<String>,
}

pub async fn team_page(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<TeamQuery>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("invited") => "The invitation is on its way. It works for 7 days.",
        Some("withdrawn") => "The invitation is withdrawn; its link no longer works.",
        Some("role") => "The role is changed.",
        Some("removed") => "The member is removed and signed out.",
        _ => "",
    };
    render(
        &state,
        &member,
        StatusCode::OK,
        notice.into(),
        String::new(),
        String::new(),
    )
    .await
}

#[derive(Deserialize)]
pub struct InviteForm {
    email: String,
    role: String,
}

fn role(raw: &str) -> Result<Role, TenancyError> {
    raw.parse().map_err(|_| TenancyError::Validation {
        field: "role",
        message: "choose owner, admin or agent".into(),
    })
}

/// Re-renders the page with a domain error, or the error page when it is a refusal.
async fn failed(state: &AppState, member: &Member, e: TenancyError, email: String) -> Response {
    let e = ApiError::from(e);
    if e.status == StatusCode::FORBIDDEN
        || e.status.is_server_error()
        || e.status == StatusCode::NOT_FOUND
    {
        return error_page(e);
    }
    let status = e.status;
    render(
        state,
        member,
        status,
        String::new(),
        sentence(&e.message),
        email,
    )
    .await
}

pub async fn invite(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<InviteForm>,
) -> Response {
    let result = match role(&f.role) {
        Ok(r) => team::invite(&state, &member.ctx, &f.email, r)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/team?done=invited").into_response(),
        Err(e) => failed(&state, &member, e, f.email).await,
    }
}

pub async fn withdraw(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    let Ok(id) = id.parse::<InvitationId>() else {
        return error_page(ApiError::not_found());
    };
    match team::revoke_invitation(&state, &member.ctx, id).await {
        Ok(()) => Redirect::to("/team?done=withdrawn").into_response(),
        Err(e) => error_page(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn change_role(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(f): PageForm<RoleForm>,
) -> Response {
    let Ok(id) = id.parse::<UserId>() else {
        return error_page(ApiError::not_found());
    };
    let result = match role(&f.role) {
        Ok(r) => team::change_role(&state, &member.ctx, id, r)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/team?done=role").into_response(),
        Err(e) => failed(&state, &member, e, String::new()).await,
    }
}

pub async fn remove_page(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    let Ok(uid) = id.parse::<UserId>() else {
        return error_page(ApiError::not_found());
    };
    if let Err(e) = member.ctx.require(Action::ManageTeam) {
        return error_page(e.into());
    }
    let members = match team::list_members(&state, &member.ctx).await {
        Ok(m) => m,
        Err(e) => return error_page(e.into()),
    };
    let Some(target) = members.into_iter().find(|u| u.id == uid) else {
        return error_page(ApiError::not_found());
    };
    page(&ConfirmPage {
        chrome: Chrome::member(&member, "/team"),
        title: format!("Remove {}?", target.email),
        message: "They are signed out at once and can no longer open this workspace. Their past replies stay in the conversations.".into(),
        action: format!("/team/members/{id}/remove"),
        confirm: "Remove the member",
        cancel: "/team".into(),
    })
}

pub async fn remove(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    let Ok(id) = id.parse::<UserId>() else {
        return error_page(ApiError::not_found());
    };
    match team::remove_member(&state, &member.ctx, id).await {
        Ok(()) => Redirect::to("/team?done=removed").into_response(),
        Err(e) => failed(&state, &member, e, String::new()).await,
    }
}
