//! A tenant's bot settings.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::answer::BotSettings;
use crate::audit::NewAuditEvent;
use crate::ids::TenantId;

#[async_trait]
pub trait BotStore: Send + Sync {
    /// The tenant's bot settings; `None` until an admin saves some (the defaults apply).
    async fn get_bot_settings(&self, tenant: TenantId) -> Result<Option<BotSettings>>;

    /// Replaces the bot settings and records the audit entry, atomically.
    async fn put_bot_settings(
        &self,
        tenant: TenantId,
        settings: &BotSettings,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()>;
}
