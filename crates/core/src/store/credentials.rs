//! Credentials: refresh tokens, API keys, platform admins and sealed secrets.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{RefreshUse, Result};
use crate::audit::NewAuditEvent;
use crate::channels::SealedSecret;
use crate::credentials::{
    ApiKey, NewApiKey, NewPasswordReset, NewRefreshToken, PasswordReset, PlatformAdmin,
    RefreshToken, SessionSummary,
};
use crate::ids::{
    ApiKeyId, ChannelConnectionId, PasswordResetId, PlatformAdminId, TenantId, TokenFamilyId,
    UserId,
};
use crate::tenancy::Email;

#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn insert_refresh_token(&self, tenant: TenantId, token: NewRefreshToken) -> Result<()>;

    /// Credential lookup by the token's hash.
    async fn find_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>>;

    /// Atomically marks the token used. Exactly one of any number of concurrent callers gets
    /// `Fresh`; every other (and every later) caller gets `Reused`.
    async fn use_refresh_token(
        &self,
        tenant: TenantId,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<RefreshUse>;

    /// Revokes every token of the family; returns how many were still live.
    async fn revoke_token_family(
        &self,
        tenant: TenantId,
        family: TokenFamilyId,
        at: DateTime<Utc>,
    ) -> Result<u64>;

    /// Revokes every live token of the member (every session); returns how many were live.
    async fn revoke_user_tokens(
        &self,
        tenant: TenantId,
        user: UserId,
        at: DateTime<Utc>,
    ) -> Result<u64>;

    /// The member's sessions: each token family with a token neither used, revoked nor
    /// expired at `now`, most recently refreshed first.
    async fn list_sessions(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionSummary>>;

    /// `NotFound` if the member is not in the tenant.
    async fn insert_password_reset(&self, tenant: TenantId, reset: NewPasswordReset) -> Result<()>;

    /// Credential lookup by the reset token's hash (used and expired ones are returned too;
    /// the caller refuses them).
    async fn find_password_reset(&self, token_hash: &str) -> Result<Option<PasswordReset>>;

    /// In one transaction: uses the reset if it is still unused and not expired at `at`
    /// (`NotFound` otherwise: of concurrent uses exactly one wins), sets the member's
    /// password hash, uses up the member's other resets, revokes every token of the member
    /// and writes `audit`.
    async fn complete_password_reset(
        &self,
        tenant: TenantId,
        reset: PasswordResetId,
        password_hash: &str,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;

    /// In one transaction: sets the member's password hash, revokes every token of the member
    /// outside the family `keep` (the session that changed it) and writes `audit`.
    async fn change_password(
        &self,
        tenant: TenantId,
        user: UserId,
        password_hash: &str,
        keep: Option<TokenFamilyId>,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;

    async fn create_api_key(
        &self,
        tenant: TenantId,
        key: NewApiKey,
        audit: NewAuditEvent,
    ) -> Result<ApiKey>;

    /// Every key of the tenant, revoked ones included, newest first.
    async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>>;

    /// `Conflict(already_revoked)` if it was revoked before.
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        key: ApiKeyId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<ApiKey>;

    /// Credential lookup by the key's hash (revoked keys are returned too; the caller refuses).
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKey>>;

    async fn touch_api_key(&self, tenant: TenantId, key: ApiKeyId, at: DateTime<Utc>)
    -> Result<()>;

    /// `Conflict(email_taken)` if an operator with this email exists.
    async fn create_platform_admin(&self, admin: PlatformAdmin) -> Result<()>;

    async fn find_platform_admin(&self, email: &Email) -> Result<Option<PlatformAdmin>>;

    async fn get_platform_admin(&self, id: PlatformAdminId) -> Result<PlatformAdmin>;

    /// Platform maintenance (key rotation): every sealed secret, of every tenant.
    async fn list_sealed_secrets(&self) -> Result<Vec<SealedSecret>>;

    /// Replaces a sealed secret if it is still `old` (a concurrent change wins); returns
    /// whether it was replaced.
    async fn reseal_secret(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        old: &str,
        new: &str,
    ) -> Result<bool>;
}
