//! Tenants, their members, invitations and pending signups.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Page, Result};
use crate::audit::NewAuditEvent;
use crate::ids::{EmailChangeId, InvitationId, SignupId, TenantId, UserId};
use crate::tenancy::{
    CompanyName, Email, EmailChange, Invitation, NewEmailChange, NewInvitation, NewPendingSignup,
    NewTenant, NewUser, PendingSignup, Role, Tenant, TenantStatus, User,
};

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// A tenant, its first owner and the audit entry, all or nothing.
    /// `Conflict(email_taken)` if the email already has an account.
    async fn create_tenant_with_owner(
        &self,
        tenant: NewTenant,
        owner: NewUser,
        audit: NewAuditEvent,
    ) -> Result<()>;

    async fn get_tenant(&self, tenant: TenantId) -> Result<Tenant>;

    /// Operator view: every tenant, newest first.
    async fn list_tenants(&self, page: Page) -> Result<Vec<Tenant>>;

    /// Operator view: the tenants `filter` lets through, newest first, each with its document
    /// count and the conversations it opened since `since`.
    async fn list_tenant_summaries(
        &self,
        filter: &crate::tenancy::TenantFilter,
        since: DateTime<Utc>,
        page: Page,
    ) -> Result<Vec<crate::tenancy::TenantSummary>>;

    /// Suspends (remembering the status to return to) or reactivates a tenant.
    /// Reactivating restores the remembered status. `Conflict(already_revoked)` is not used
    /// here; setting the status it already has is a no-op that still returns the tenant.
    async fn set_tenant_suspended(
        &self,
        tenant: TenantId,
        suspended: bool,
        audit: NewAuditEvent,
    ) -> Result<Tenant>;

    /// Moves the tenant to another plan of the catalogue, with the audit entry, atomically.
    async fn set_tenant_plan(
        &self,
        tenant: TenantId,
        plan: &str,
        audit: NewAuditEvent,
    ) -> Result<Tenant>;

    /// Renames the company, with the audit entry, atomically.
    async fn rename_tenant(
        &self,
        tenant: TenantId,
        name: &CompanyName,
        audit: NewAuditEvent,
    ) -> Result<Tenant>;

    /// Sets the commercial status directly (billing moves trial → active → past_due).
    async fn set_tenant_status(&self, tenant: TenantId, status: TenantStatus) -> Result<Tenant>;

    /// Credential lookup for login and signup deduplication.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>>;

    async fn get_user(&self, tenant: TenantId, user: UserId) -> Result<User>;

    /// Team members, oldest first.
    async fn list_users(&self, tenant: TenantId) -> Result<Vec<User>>;

    /// Changes a member's role. `Conflict(last_owner)` if it would leave no owner.
    async fn change_role(
        &self,
        tenant: TenantId,
        user: UserId,
        role: Role,
        audit: NewAuditEvent,
    ) -> Result<User>;

    /// Removes a member and every refresh token they hold. `Conflict(last_owner)` if they are
    /// the only owner.
    async fn remove_user(&self, tenant: TenantId, user: UserId, audit: NewAuditEvent)
    -> Result<()>;

    /// Keeps a signup until its code is verified, replacing any pending signup of the same
    /// address (its code stops working); pending signups past their expiry are deleted.
    async fn put_pending_signup(&self, signup: NewPendingSignup) -> Result<()>;

    /// Credential lookup: the address's pending signup, if one has not expired.
    async fn find_pending_signup(
        &self,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingSignup>>;

    /// A fresh code for the same signup (resend): attempts start again. `NotFound` if the
    /// signup was replaced or completed meanwhile.
    async fn renew_pending_signup_code(
        &self,
        signup: SignupId,
        code_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;

    /// Counts a wrong guess; returns the attempts made so far. `NotFound` if it is gone.
    async fn record_pending_signup_failure(&self, signup: SignupId) -> Result<u32>;

    /// Verification: deletes the pending signup and creates its tenant and owner with the
    /// audit entry, all or nothing. `NotFound` if the signup was replaced or completed
    /// meanwhile, `Conflict(email_taken)` if the address got an account.
    async fn complete_pending_signup(
        &self,
        signup: SignupId,
        tenant: NewTenant,
        owner: NewUser,
        audit: NewAuditEvent,
    ) -> Result<()>;

    async fn create_invitation(
        &self,
        tenant: TenantId,
        invitation: NewInvitation,
        audit: NewAuditEvent,
    ) -> Result<Invitation>;

    /// Invitations not yet accepted, newest first (expired ones included, marked by date).
    async fn list_pending_invitations(&self, tenant: TenantId) -> Result<Vec<Invitation>>;

    async fn delete_invitation(&self, tenant: TenantId, invitation: InvitationId) -> Result<()>;

    /// Credential lookup by the token's hash.
    async fn find_invitation(&self, token_hash: &str) -> Result<Option<Invitation>>;

    /// Marks the invitation accepted and creates the member, atomically; a pending signup of
    /// the same address goes (the invitation proved the mailbox).
    /// `Conflict(invitation_used)` if it was accepted already, `Conflict(email_taken)` if the
    /// email got an account meanwhile.
    async fn accept_invitation(
        &self,
        tenant: TenantId,
        invitation: InvitationId,
        user: NewUser,
        audit: NewAuditEvent,
    ) -> Result<User>;

    /// Keeps a member's new address until the code mailed to it is entered, replacing the
    /// member's pending change (its code stops working); changes past their expiry are
    /// deleted. `NotFound` if the member is not in the tenant.
    async fn put_email_change(&self, tenant: TenantId, change: NewEmailChange) -> Result<()>;

    /// The member's pending change, if it has not expired at `now`.
    async fn find_email_change(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<EmailChange>>;

    /// Counts a wrong code; returns the attempts made so far. `NotFound` if it is gone.
    async fn record_email_change_failure(
        &self,
        tenant: TenantId,
        change: EmailChangeId,
    ) -> Result<u32>;

    /// Drops the member's pending change, if any.
    async fn cancel_email_change(&self, tenant: TenantId, user: UserId) -> Result<()>;

    /// In one transaction: uses the change if it has not expired at `at` (`NotFound`
    /// otherwise: of concurrent uses exactly one wins), makes its address the member's,
    /// verified at `at`, drops a pending signup of that address (the code proved the mailbox)
    /// and writes `audit`. `Conflict(email_taken)` if the address got an account meanwhile;
    /// nothing changes then.
    async fn complete_email_change(
        &self,
        tenant: TenantId,
        change: EmailChangeId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<User>;
}
