//! The JSON API under `/api/v1`, one file per resource. Handlers extract the caller and a
//! typed request, call one domain function and return a view; views are the API's own types,
//! so storage rows never leak fields (password hashes, token hashes) by accident.

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod channels;
pub mod chat;
pub mod conversations;
pub mod documents;
pub mod members;
pub mod tenant;
pub mod webhooks;
pub mod widget;

use chrono::{DateTime, Utc};
use cortex_core::audit::AuditEvent;
use cortex_core::credentials::ApiKey;
use cortex_core::tenancy::{Invitation, Role, Tenant, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Roles as the API names them.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Owner,
    Admin,
    Agent,
}

impl From<RoleName> for Role {
    fn from(r: RoleName) -> Self {
        match r {
            RoleName::Owner => Role::Owner,
            RoleName::Admin => Role::Admin,
            RoleName::Agent => Role::Agent,
        }
    }
}

impl From<Role> for RoleName {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => RoleName::Owner,
            Role::Admin => RoleName::Admin,
            Role::Agent => RoleName::Agent,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub id: Uuid,
    pub name: String,
    /// Plan id in the catalogue: `starter`, `growth` or `scale`.
    pub plan: String,
    /// `trial`, `active`, `past_due` or `suspended`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id.0,
            name: t.name,
            plan: t.plan,
            status: t.status.as_str().to_owned(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: RoleName,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<User> for MemberView {
    fn from(u: User) -> Self {
        Self {
            id: u.id.0,
            tenant_id: u.tenant_id.0,
            email: u.email.to_string(),
            name: u.name,
            role: u.role.into(),
            email_verified_at: u.email_verified_at,
            created_at: u.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    pub id: Uuid,
    pub email: String,
    pub role: RoleName,
    pub invited_by: Uuid,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<Invitation> for InvitationView {
    fn from(i: Invitation) -> Self {
        Self {
            id: i.id.0,
            email: i.email.to_string(),
            role: i.role.into(),
            invited_by: i.invited_by.0,
            expires_at: i.expires_at,
            created_at: i.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The visible start of the key, to tell keys apart.
    pub prefix: String,
    /// e.g. `chat`, `knowledge:read`.
    pub scopes: Vec<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.0,
            name: k.name,
            prefix: k.prefix,
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_by: k.created_by.map(|u| u.0),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: Uuid,
    /// `user`, `api_key`, `platform_admin` or `system`.
    pub actor_type: String,
    pub actor_id: Option<String>,
    /// e.g. `member.role_changed`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id.as_uuid(),
            actor_type: e.actor.kind().to_owned(),
            actor_id: e.actor.id().map(str::to_owned),
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            metadata: e.metadata,
            created_at: e.created_at,
        }
    }
}

/// A page of a list, newest first.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The id of the last item of the previous page.
    pub before: Option<Uuid>,
}

impl PageParams {
    /// The page asked for; a `limit` outside 1–200 is refused (`422`, naming it), as
    /// documented, rather than quietly changed.
    pub fn page(&self) -> Result<cortex_core::store::Page, crate::http::error::ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=cortex_core::store::Page::MAX_LIMIT).contains(&limit) {
            return Err(crate::http::error::ApiError::validation(
                "limit",
                "must be 1 to 200",
            ));
        }
        Ok(cortex_core::store::Page {
            limit,
            before: self.before,
        })
    }
}

/// A list with the cursor of its next page.
#[derive(Serialize, ToSchema)]
pub struct ListView<T: ToSchema> {
    pub data: Vec<T>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_before: Option<Uuid>,
}

impl<T: ToSchema> ListView<T> {
    /// One page of `rows` fetched with `page`: a full page points at its last row's id, a short
    /// one is the last page.
    pub fn page<R: Into<T>>(
        rows: Vec<R>,
        page: cortex_core::store::Page,
        id: impl Fn(&R) -> Uuid,
    ) -> Self {
        let next_before = (rows.len() == page.limit as usize)
            .then(|| rows.last().map(&id))
            .flatten();
        Self {
            data: rows.into_iter().map(Into::into).collect(),
            next_before,
        }
    }
}
