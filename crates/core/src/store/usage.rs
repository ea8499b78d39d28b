//! Usage events: what a tenant consumed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::ids::TenantId;
use crate::usage::UsageEvent;

#[async_trait]
pub trait UsageStore: Send + Sync {
    /// The tenant's usage events since `since`, oldest first.
    async fn list_usage_events(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageEvent>>;

    /// The sum of the tenant's usage events of `kind` about `subject` (a model, a channel)
    /// since `since`.
    async fn usage_total(
        &self,
        tenant: TenantId,
        kind: crate::usage::UsageKind,
        subject: &str,
        since: DateTime<Utc>,
    ) -> Result<u64>;
}
