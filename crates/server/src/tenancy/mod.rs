//! Tenancy and access: who the caller is and what they may do, signup and login, the team,
//! API keys and the operator's view of tenants. Depends on the core ports and `infra`; never
//! on axum (the `http` module turns these results into responses).
//!
//! The caller's scope is a type: handlers on tenant data receive a [`TenantCtx`], which only
//! [`authenticate`] can build, and whose tenant id is the only one they can pass to the store.

pub mod accounts;
pub mod api_keys;
pub mod operators;
pub mod passwords;
pub mod permissions;
pub mod profile;
pub mod sessions;
pub mod team;

use chrono::Utc;
use cortex_core::audit::Actor;
use cortex_core::credentials::ApiKey;
use cortex_core::ids::{PlatformAdminId, TenantId, UserId, WidgetKeyId};
use cortex_core::plans::{self, Plan};
use cortex_core::tenancy::{Tenant, TenantStatus, User};
use cortex_core::{StoreError, credentials::PlatformAdmin};

use crate::app::AppState;
use crate::infra::tokens::{self, API_KEY_PREFIX};
pub use permissions::Action;

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
    #[error("the password reset link is invalid, expired or already used")]
    InvalidResetToken,
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
    /// The operator at the command line (`cortexlayer ingest`, `ask`, `eval`): may use the
    /// tenant's data like an integration with every scope, but is no member.
    Operator,
    /// A platform admin acting in the tenant through the operator API (e.g. assigning a
    /// platform number): the operator's rights.
    PlatformAdmin(PlatformAdminId),
    /// An anonymous visitor of the tenant's site, through a live widget key; the widget keeps
    /// them to their own conversation.
    Visitor { key: WidgetKeyId },
    /// A job acting for the tenant (answering a channel customer).
    System { job: &'static str },
}

/// An authenticated caller inside one live (not suspended) tenant, with the tenant's plan.
#[derive(Clone, Debug)]
pub struct TenantCtx {
    tenant: Tenant,
    plan: Plan,
    caller: Caller,
}

impl TenantCtx {
    /// The context of `caller` in `tenant`; a suspended tenant is refused.
    fn new(tenant: Tenant, caller: Caller) -> Result<Self> {
        if tenant.status == TenantStatus::Suspended {
            return Err(TenancyError::TenantSuspended);
        }
        Ok(Self {
            plan: plans::plan_or_default(&tenant.plan),
            tenant,
            caller,
        })
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant.id
    }

    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The tenant's plan (the default one if its plan left the catalogue), resolved once.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub fn actor(&self) -> Actor {
        match &self.caller {
            Caller::User(u) => Actor::User(u.id.to_string()),
            Caller::ApiKey(k) => Actor::ApiKey(k.id.to_string()),
            Caller::PlatformAdmin(id) => Actor::PlatformAdmin(id.to_string()),
            Caller::Operator | Caller::Visitor { .. } | Caller::System { .. } => Actor::System,
        }
    }

    /// The one permission check: whether this caller may take `action` (the table in
    /// [`permissions`]).
    pub fn require(&self, action: Action) -> Result<()> {
        permissions::check(&self.caller, action)
    }

    /// [`TenantCtx::require`] for actions only a signed-in member may take, handing back the
    /// member.
    pub fn require_member(&self, action: Action) -> Result<&User> {
        self.require(action)?;
        match &self.caller {
            Caller::User(u) => Ok(u),
            _ => Err(TenancyError::Forbidden(permissions::MEMBERS_ONLY)),
        }
    }
}

impl TenantCtx {
    /// The command line acting on a tenant for the operator (who has the machine and the
    /// database already). Suspended tenants are refused as everywhere else. Only the command
    /// line builds one (a CI rule holds it there).
    pub async fn for_operator(state: &AppState, tenant: TenantId) -> Result<Self> {
        Self::new(state.store.get_tenant(tenant).await?, Caller::Operator)
    }

    /// A platform admin, signed in to the operator API, acting in `tenant`.
    pub async fn for_platform_admin(
        state: &AppState,
        operator: &OperatorCtx,
        tenant: TenantId,
    ) -> Result<Self> {
        Self::new(
            state.store.get_tenant(tenant).await?,
            Caller::PlatformAdmin(operator.admin.id),
        )
    }

    /// A visitor of the tenant's site through the widget key `key` (checked live by the
    /// caller).
    pub async fn for_visitor(state: &AppState, tenant: TenantId, key: WidgetKeyId) -> Result<Self> {
        Self::new(
            state.store.get_tenant(tenant).await?,
            Caller::Visitor { key },
        )
    }

    /// The job `job` acting for `tenant`.
    pub async fn for_job(state: &AppState, tenant: TenantId, job: &'static str) -> Result<Self> {
        Self::new(
            state.store.get_tenant(tenant).await?,
            Caller::System { job },
        )
    }
}

/// A page of the tenant's audit log that `filter` lets through, newest first (owners and
/// admins).
pub async fn audit_events(
    state: &AppState,
    ctx: &TenantCtx,
    filter: &cortex_core::audit::AuditFilter,
    page: cortex_core::store::Page,
) -> Result<Vec<cortex_core::audit::AuditEvent>> {
    ctx.require(Action::ReadAuditLog)?;
    Ok(state
        .store
        .list_audit_events(ctx.tenant_id(), filter, page)
        .await?)
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
    let ctx = TenantCtx::new(tenant, caller)?;
    if let Caller::ApiKey(key) = &ctx.caller {
        // "Last used" is shown to the minute; writing it on every call would turn each API
        // read into a database write. Best effort: a failure must not fail the request.
        let now = Utc::now();
        let stale = key
            .last_used_at
            .is_none_or(|t| now - t >= chrono::Duration::seconds(60));
        if stale && let Err(e) = state.store.touch_api_key(ctx.tenant.id, key.id, now).await {
            tracing::warn!(error = %e, api_key.id = %key.id, "could not record API key use");
        }
    }
    Ok(ctx)
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
