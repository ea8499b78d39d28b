//! The audit log.

use async_trait::async_trait;

use super::{Page, Result};
use crate::audit::{AuditEvent, AuditFilter, NewAuditEvent};
use crate::ids::TenantId;

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, tenant: TenantId, event: NewAuditEvent) -> Result<()>;

    /// The entries `filter` lets through, newest first.
    async fn list_audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Vec<AuditEvent>>;
}
