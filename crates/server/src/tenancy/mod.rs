//! Tenancy and access: who the caller is and what they may do, signup and login, the team,
//! API keys and the operator's view of tenants. Depends on the core ports and `infra`; never
//! on axum (the `http` module turns these results into responses).
//!
//! The caller's scope is a type: handlers on tenant data receive a [`TenantCtx`], which only
//! [`authenticate`] can build, and whose tenant id is the only one they can pass to the store.

pub mod accounts;
pub mod api_keys;
pub mod operators;
pub mod team;

use chrono::Utc;
use cortex_core::audit::Actor;
use cortex_core::credentials::{ApiKey, ApiScope};
use cortex_core::ids::{PlatformAdminId, TenantId, UserId};
use cortex_core::tenancy::{Role, Tenant, TenantStatus, User};
use cortex_core::{StoreError, credentials::PlatformAdmin};

use crate::app::AppState;
use crate::infra::tokens::{self, API_KEY_PREFIX};

/// Everything that can go wrong in this module, each mapped to one HTTP status and one stable
/// code in `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error("{field}: {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("the email address is not verified yet")]
    EmailNotVerified,
    #[error("the code is invalid or has expired")]
    InvalidCode,
    #[error("the refresh token is invalid or has expired")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; every session of this login has been revoked")]
    RefreshTokenReused,
    #[error("the invitation is invalid, expired or already used")]
    InvitationInvalid,
    #[error("an account with this email address already exists")]
    EmailTaken,
    #[error("a tenant must keep at least one owner")]
    LastOwner,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("this tenant is suspended")]
    TenantSuspended,
    #[error("not found")]
    NotFound,
    #[error("already revoked")]
    AlreadyRevoked,
    #[error("too many attempts")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for TenancyError {
    fn from(e: StoreError) -> Self {
        use cortex_core::store::conflict;
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict(c) if c == conflict::EMAIL_TAKEN => Self::EmailTaken,
            StoreError::Conflict(c) if c == conflict::LAST_OWNER => Self::LastOwner,
            StoreError::Conflict(c) if c == conflict::INVITATION_USED => Self::InvitationInvalid,
            StoreError::Conflict(c) if c == conflict::ALREADY_REVOKED => Self::AlreadyRevoked,
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

pub type Result<T> = std::result::Result<T, TenancyError>;

pub(crate) fn invalid(field: &'static str, message: impl ToString) -> TenancyError {
    TenancyError::Validation {
        field,
        message: message.to_string(),
    }
}

/// Who is calling on behalf of a tenant.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A team member signed in with an access token.
    User(User),
    /// A server-to-server integration with an API key.
    ApiKey(ApiKey),
    /// The operator at the command line (`cortexlayer ingest`): may use the tenant's data
    /// like an integration with every scope, but is no member.
    Operator,
}

/// An authenticated caller inside one live (not suspended) tenant.
#[derive(Clone, Debug)]
pub struct TenantCtx {
    tenant: Tenant,
    caller: Caller,
}

impl TenantCtx {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant.id
    }

    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn actor(&self) -> Actor {
        match &self.caller {
            Caller::User(u) => Actor::User(u.id.to_string()),
            Caller::ApiKey(k) => Actor::ApiKey(k.id.to_string()),
            Caller::Operator => Actor::System,
        }
    }

    /// The signed-in member if their role is at least `min`. API keys never manage the team
    /// or credentials: that needs a person.
    pub fn member_with(&self, min: Role) -> Result<&User> {
        match &self.caller {
            Caller::User(u) if u.role.at_least(min) => Ok(u),
            Caller::User(_) => Err(TenancyError::Forbidden("your role does not allow this")),
            Caller::ApiKey(_) | Caller::Operator => Err(TenancyError::Forbidden(
                "this needs a signed-in team member, not an API key",
            )),
        }
    }

    /// Admins and owners, or the platform's operators; never an API key (`refusal` says what
    /// the key was trying to do).
    pub fn admin_or_operator(&self, refusal: &'static str) -> Result<()> {
        match &self.caller {
            Caller::User(_) => self.member_with(Role::Admin).map(|_| ()),
            Caller::Operator => Ok(()),
            Caller::ApiKey(_) => Err(TenancyError::Forbidden(refusal)),
        }
    }

    /// Integration endpoints (the OpenAI-compatible one): an API key with `scope`, never a
    /// member's session or an operator.
    pub fn api_key_with(&self, scope: ApiScope) -> Result<&ApiKey> {
        match &self.caller {
            Caller::ApiKey(k) if k.scopes.contains(&scope) => Ok(k),
            Caller::ApiKey(_) => Err(TenancyError::Forbidden(
                "the API key lacks the scope this needs",
            )),
            Caller::User(_) | Caller::Operator => Err(TenancyError::Forbidden(
                "this endpoint is for integrations: use an API key with the scope it needs",
            )),
        }
    }

    /// Members pass; API keys pass only with `scope`.
    pub fn require_scope(&self, scope: ApiScope) -> Result<()> {
        match &self.caller {
            Caller::User(_) | Caller::Operator => Ok(()),
            Caller::ApiKey(k) if k.scopes.contains(&scope) => Ok(()),
            Caller::ApiKey(_) => Err(TenancyError::Forbidden(
                "the API key lacks the scope this needs",
            )),
        }
    }
}

impl TenantCtx {
    /// The command line acting on a tenant for the operator (who has the machine and the
    /// database already). Suspended tenants are refused as everywhere else.
    pub async fn for_operator(state: &AppState, tenant: TenantId) -> Result<Self> {
        let tenant = state.store.get_tenant(tenant).await?;
        if tenant.status == TenantStatus::Suspended {
            return Err(TenancyError::TenantSuspended);
        }
        Ok(Self {
            tenant,
            caller: Caller::Operator,
        })
    }
}

/// An authenticated operator.
#[derive(Clone, Debug)]
pub struct OperatorCtx {
    pub admin: PlatformAdmin,
}

impl OperatorCtx {
    pub fn actor(&self) -> Actor {
        Actor::PlatformAdmin(self.admin.id.to_string())
    }
}

/// Role name carried by operator access tokens.
pub const PLATFORM_ADMIN_ROLE: &str = "platform_admin";

/// Turns a bearer credential (access JWT or API key) into a tenant context. The member and the
/// tenant are read fresh on every request, so a removal, role change or suspension takes
/// effect at once rather than when the token expires.
pub async fn authenticate(state: &AppState, bearer: &str) -> Result<TenantCtx> {
    let (tenant_id, caller) = if bearer.starts_with(API_KEY_PREFIX) {
        let key = state
            .store
            .find_api_key(&tokens::sha256_hex(bearer))
            .await?
            .filter(|k| k.revoked_at.is_none())
            .ok_or(TenancyError::Unauthenticated)?;
        (key.tenant_id, Caller::ApiKey(key))
    } else {
        let claims = state
            .keys
            .verify(bearer)
            .ok_or(TenancyError::Unauthenticated)?;
        if claims.role == PLATFORM_ADMIN_ROLE {
            return Err(TenancyError::Forbidden(
                "operator tokens cannot act inside a tenant",
            ));
        }
        let tenant: TenantId = claims
            .tid
            .as_deref()
            .and_then(|t| t.parse().ok())
            .ok_or(TenancyError::Unauthenticated)?;
        let user: UserId = claims
            .sub
            .parse()
            .map_err(|_| TenancyError::Unauthenticated)?;
        let user = match state.store.get_user(tenant, user).await {
            Ok(u) => u,
            Err(StoreError::NotFound) => return Err(TenancyError::Unauthenticated),
            Err(e) => return Err(e.into()),
        };
        (tenant, Caller::User(user))
    };
    let tenant = match state.store.get_tenant(tenant_id).await {
        Ok(t) => t,
        Err(StoreError::NotFound) => return Err(TenancyError::Unauthenticated),
        Err(e) => return Err(e.into()),
    };
    if tenant.status == TenantStatus::Suspended {
        return Err(TenancyError::TenantSuspended);
    }
    if let Caller::ApiKey(key) = &caller {
        // "Last used" is shown to the minute; writing it on every call would turn each API
        // read into a database write. Best effort: a failure must not fail the request.
        let now = Utc::now();
        let stale = key
            .last_used_at
            .is_none_or(|t| now - t >= chrono::Duration::seconds(60));
        if stale && let Err(e) = state.store.touch_api_key(tenant.id, key.id, now).await {
            tracing::warn!(error = %e, api_key.id = %key.id, "could not record API key use");
        }
    }
    Ok(TenantCtx { tenant, caller })
}

/// Turns an operator access token into an operator context.
pub async fn authenticate_operator(state: &AppState, bearer: &str) -> Result<OperatorCtx> {
    if bearer.starts_with(API_KEY_PREFIX) {
        return Err(TenancyError::Forbidden("this needs a platform admin"));
    }
    let claims = state
        .keys
        .verify(bearer)
        .ok_or(TenancyError::Unauthenticated)?;
    if claims.role != PLATFORM_ADMIN_ROLE || claims.tid.is_some() {
        return Err(TenancyError::Forbidden("this needs a platform admin"));
    }
    let id: PlatformAdminId = claims
        .sub
        .parse()
        .map_err(|_| TenancyError::Unauthenticated)?;
    match state.store.get_platform_admin(id).await {
        Ok(admin) => Ok(OperatorCtx { admin }),
        Err(StoreError::NotFound) => Err(TenancyError::Unauthenticated),
        Err(e) => Err(e.into()),
    }
}
