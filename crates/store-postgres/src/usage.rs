//! Usage events: what a tenant consumed, on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cortex_core::ids::{ConversationId, TenantId};
use cortex_core::store::{Result, UsageStore};
use cortex_core::usage::{UsageEvent, UsageKind};
use sqlx::Row;

use crate::{PgStore, db, parse_enum};

#[async_trait]
impl UsageStore for PgStore {
    async fn list_usage_events(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM usage_events WHERE tenant_id = $1 AND created_at >= $2 ORDER BY created_at, id",
        )
        .bind(tenant.0)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(UsageEvent {
                    id: cortex_core::ids::UsageEventId(row.try_get("id").map_err(db)?),
                    tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
                    kind: parse_enum("usage kind", row.try_get("kind").map_err(db)?)?,
                    subject: row.try_get("subject").map_err(db)?,
                    quantity: row.try_get::<i64, _>("quantity").map_err(db)? as u64,
                    conversation_id: row
                        .try_get::<Option<uuid::Uuid>, _>("conversation_id")
                        .map_err(db)?
                        .map(ConversationId),
                    created_at: row.try_get("created_at").map_err(db)?,
                })
            })
            .collect()
    }

    /// The sum of the tenant's `kind` events about `subject` since `since`.
    async fn usage_total(
        &self,
        tenant: TenantId,
        kind: UsageKind,
        subject: &str,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(quantity) AS BIGINT) FROM usage_events
             WHERE tenant_id = $1 AND kind = $2 AND subject = $3 AND created_at >= $4",
        )
        .bind(tenant.0)
        .bind(kind.as_str())
        .bind(subject)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(total.unwrap_or(0).max(0) as u64)
    }
}
