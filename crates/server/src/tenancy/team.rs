//! The team: invitations by email with a one-time token, the member list, role changes and
//! removals. Owners manage everyone; admins manage admins and agents; agents manage nobody;
//! a tenant always keeps one owner (the store enforces that atomically).

use std::net::IpAddr;

use chrono::Utc;
use cortex_core::audit::{Actor, NewAuditEvent, action};
use cortex_core::ids::{InvitationId, TokenFamilyId, UserId};
use cortex_core::tenancy::{
    Email, Invitation, NewInvitation, NewUser, Role, TenantStatus, User, check_password,
};

use super::accounts::{Session, check_attempts, issue_session, optional_name, ttl};
use super::{Result, TenancyError, TenantCtx, invalid};
use crate::app::AppState;
use crate::infra::mailer::Mail;
use crate::infra::{passwords, tokens};
use crate::tenancy::Action;

/// Invites `email` with `role` and mails the one-time link.
pub async fn invite(
    state: &AppState,
    ctx: &TenantCtx,
    email: &str,
    role: Role,
) -> Result<Invitation> {
    let inviter = ctx.require_member(Action::ManageTeam)?;
    if !inviter.role.may_manage(role) {
        return Err(TenancyError::Forbidden("only owners can invite owners"));
    }
    let email = Email::parse(email).map_err(|e| invalid("email", e))?;
    let now = Utc::now();
    let token = tokens::random_token(32);
    let id = InvitationId::new();
    let ttl = ttl(state.settings.auth.invitation_ttl_secs);
    let invitation = state
        .store
        .create_invitation(
            ctx.tenant_id(),
            NewInvitation {
                id,
                email: email.clone(),
                role,
                invited_by: inviter.id,
                token_hash: tokens::sha256_hex(&token),
                expires_at: now + ttl,
                created_at: now,
            },
            NewAuditEvent::new(ctx.actor(), action::MEMBER_INVITED, now)
                .target("invitation", id)
                .metadata(serde_json::json!({ "role": role.as_str() })),
        )
        .await?;
    let link = format!(
        "{}/accept-invitation?token={token}",
        state.settings.app_url.trim_end_matches('/')
    );
    let mail = Mail {
        to: email,
        kind: "invitation",
        about: format!("invitation {id}"),
        subject: format!(
            "You are invited to join {} on CortexLayer",
            ctx.tenant().name
        ),
        body: format!(
            "You have been invited to join {} on CortexLayer as {role}.\n\nAccept the invitation: {link}\n\nOr use this token in the API: {token}\n\nThe invitation works once and expires in {} days.\n",
            ctx.tenant().name,
            state.settings.auth.invitation_ttl_secs / 86_400
        ),
    };
    if let Err(e) = state.mailer.send(mail).await {
        tracing::error!(error = %e, invitation.id = %id, "invitation mail could not be sent");
    }
    Ok(invitation)
}

pub async fn list_invitations(state: &AppState, ctx: &TenantCtx) -> Result<Vec<Invitation>> {
    ctx.require(Action::ManageTeam)?;
    Ok(state
        .store
        .list_pending_invitations(ctx.tenant_id())
        .await?)
}

pub async fn revoke_invitation(state: &AppState, ctx: &TenantCtx, id: InvitationId) -> Result<()> {
    ctx.require(Action::ManageTeam)?;
    Ok(state.store.delete_invitation(ctx.tenant_id(), id).await?)
}

pub struct AcceptInput {
    pub token: String,
    pub password: String,
    pub name: Option<String>,
}

/// Creates the invited member (their email is proven by the link) and signs them in.
pub async fn accept_invitation(
    state: &AppState,
    ip: IpAddr,
    input: AcceptInput,
) -> Result<Session> {
    check_attempts(state, "accept-invitation", ip, None).await?;
    check_password(&input.password).map_err(|e| invalid("password", e))?;
    let name = optional_name(input.name)?;
    let invitation = state
        .store
        .find_invitation(&tokens::sha256_hex(input.token.trim()))
        .await?
        .ok_or(TenancyError::InvitationInvalid)?;
    let now = Utc::now();
    if invitation.accepted_at.is_some() || invitation.expires_at <= now {
        return Err(TenancyError::InvitationInvalid);
    }
    if state.store.get_tenant(invitation.tenant_id).await?.status == TenantStatus::Suspended {
        return Err(TenancyError::TenantSuspended);
    }
    let user_id = UserId::new();
    let user = state
        .store
        .accept_invitation(
            invitation.tenant_id,
            invitation.id,
            NewUser {
                id: user_id,
                email: invitation.email.clone(),
                name,
                role: invitation.role,
                password_hash: passwords::hash(input.password).await?,
                email_verified_at: Some(now),
                created_at: now,
            },
            NewAuditEvent::new(Actor::User(user_id.to_string()), action::MEMBER_JOINED, now)
                .target("user", user_id)
                .metadata(serde_json::json!({ "invitation": invitation.id, "role": invitation.role.as_str() })),
        )
        .await?;
    tracing::info!(tenant.id = %user.tenant_id, user.id = %user.id, "invitation accepted");
    issue_session(state, user, TokenFamilyId::new()).await
}

pub async fn list_members(state: &AppState, ctx: &TenantCtx) -> Result<Vec<User>> {
    ctx.require(Action::ReadTeam)?;
    Ok(state.store.list_users(ctx.tenant_id()).await?)
}

/// The member `target` if the caller may manage them.
async fn manageable(state: &AppState, ctx: &TenantCtx, target: UserId) -> Result<(Role, User)> {
    let me = ctx.require_member(Action::ManageTeam)?;
    let member = state.store.get_user(ctx.tenant_id(), target).await?;
    if !me.role.may_manage(member.role) {
        return Err(TenancyError::Forbidden(
            "only owners can change or remove owners",
        ));
    }
    Ok((me.role, member))
}

pub async fn change_role(
    state: &AppState,
    ctx: &TenantCtx,
    target: UserId,
    role: Role,
) -> Result<User> {
    let (my_role, member) = manageable(state, ctx, target).await?;
    if !my_role.may_manage(role) {
        return Err(TenancyError::Forbidden(
            "only owners can make someone an owner",
        ));
    }
    let event = NewAuditEvent::new(ctx.actor(), action::MEMBER_ROLE_CHANGED, Utc::now())
        .target("user", target)
        .metadata(serde_json::json!({ "from": member.role.as_str(), "to": role.as_str() }));
    Ok(state
        .store
        .change_role(ctx.tenant_id(), target, role, event)
        .await?)
}

pub async fn remove_member(state: &AppState, ctx: &TenantCtx, target: UserId) -> Result<()> {
    let (_, member) = manageable(state, ctx, target).await?;
    let event = NewAuditEvent::new(ctx.actor(), action::MEMBER_REMOVED, Utc::now())
        .target("user", target)
        .metadata(serde_json::json!({ "role": member.role.as_str() }));
    Ok(state
        .store
        .remove_user(ctx.tenant_id(), target, event)
        .await?)
}
