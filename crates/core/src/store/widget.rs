//! Web widget keys.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::audit::NewAuditEvent;
use crate::ids::TenantId;

#[async_trait]
pub trait WidgetStore: Send + Sync {
    /// Creates the key and records the audit entry, atomically.
    async fn create_widget_key(
        &self,
        tenant: TenantId,
        key: crate::widget::WidgetKey,
        audit: NewAuditEvent,
    ) -> Result<crate::widget::WidgetKey>;

    /// Oldest first, revoked ones included.
    async fn list_widget_keys(&self, tenant: TenantId) -> Result<Vec<crate::widget::WidgetKey>>;

    /// Replaces the name, origins and theme of a key not revoked, with the audit entry.
    async fn update_widget_key(
        &self,
        tenant: TenantId,
        key: crate::widget::WidgetKey,
        audit: NewAuditEvent,
    ) -> Result<crate::widget::WidgetKey>;

    /// `NotFound` for another tenant's key; `Conflict(already_revoked)` the second time.
    async fn revoke_widget_key(
        &self,
        tenant: TenantId,
        key: crate::ids::WidgetKeyId,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;

    /// Lookup of a public key from a visitor's page (revoked keys included; the caller
    /// refuses them); returns the row with its `tenant_id`.
    async fn find_widget_key(&self, public_key: &str) -> Result<Option<crate::widget::WidgetKey>>;
}
