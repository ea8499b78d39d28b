//! Channel connections, their sign-in flows and customers' data deletions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::audit::NewAuditEvent;
use crate::channels::ChannelConnection;
use crate::ids::{ChannelConnectionId, TenantId};

#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Connects a channel and records the audit entry, atomically.
    /// `Conflict(channel_taken)` when its (kind, asset id) is connected to any tenant.
    async fn create_channel_connection(
        &self,
        tenant: TenantId,
        connection: ChannelConnection,
        audit: NewAuditEvent,
    ) -> Result<ChannelConnection>;

    /// Connects a channel in place of another tenant's claim on the same asset, which is
    /// released: the incumbent row goes (its messages with it) and each tenant gets its audit
    /// entry, atomically. `NotFound` if the incumbent is no longer that row.
    async fn replace_channel_claim(
        &self,
        tenant: TenantId,
        connection: ChannelConnection,
        audit: NewAuditEvent,
        incumbent_tenant: TenantId,
        incumbent: ChannelConnectionId,
        release_audit: NewAuditEvent,
    ) -> Result<ChannelConnection>;

    /// Marks the connection's credential as refused by its provider, once, with the audit
    /// entry; `true` if this call marked it (`false`: marked already).
    async fn flag_channel_token_invalid(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<bool>;

    /// Whether any connection, of any tenant, still has its webhook subscription at `target`
    /// (so disconnecting one does not unsubscribe another's page or business account).
    async fn webhook_target_in_use(&self, target: &str) -> Result<bool>;

    /// Oldest first.
    async fn list_channel_connections(&self, tenant: TenantId) -> Result<Vec<ChannelConnection>>;

    async fn delete_channel_connection(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        audit: NewAuditEvent,
    ) -> Result<()>;

    /// Routing lookup for webhooks (the asset id says which tenant); returns the row with its
    /// `tenant_id`.
    async fn find_channel_connection(
        &self,
        kind: crate::conversations::Channel,
        asset_id: &str,
    ) -> Result<Option<ChannelConnection>>;

    /// A provider's request on behalf of a person: deletes, in every tenant, the conversations
    /// and delivered messages of `customer` on the provider's connections, and records what
    /// was deleted under `code`, atomically.
    async fn delete_customer_data(
        &self,
        provider: crate::channels::Provider,
        customer: &str,
        code: &str,
        at: DateTime<Utc>,
    ) -> Result<crate::channels::DataDeletion>;

    async fn get_data_deletion(&self, code: &str) -> Result<Option<crate::channels::DataDeletion>>;

    async fn create_oauth_flow(
        &self,
        tenant: TenantId,
        flow: crate::channels::OauthFlow,
    ) -> Result<()>;

    /// Meta sent the member back: claims the flow whose state and browser cookie hash to
    /// these, if still unclaimed and not expired at `at` (once: a second callback finds
    /// nothing; another browser finds nothing and leaves it), with an empty asset list, and
    /// lets it live until `expires_at`. Returns it, with its tenant.
    async fn claim_oauth_flow(
        &self,
        state_hash: &str,
        browser_hash: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<crate::channels::OauthFlow>>;

    /// The assets Meta's token reaches, sealed, on a claimed flow.
    async fn set_oauth_assets(
        &self,
        tenant: TenantId,
        flow: crate::ids::OauthFlowId,
        sealed_assets: &str,
    ) -> Result<()>;

    /// The tenant's flow, authorized or not, expired or not.
    async fn get_oauth_flow(
        &self,
        tenant: TenantId,
        flow: crate::ids::OauthFlowId,
    ) -> Result<crate::channels::OauthFlow>;

    /// Consumes the flow: returns whether this call deleted it.
    async fn delete_oauth_flow(
        &self,
        tenant: TenantId,
        flow: crate::ids::OauthFlowId,
    ) -> Result<bool>;
}
