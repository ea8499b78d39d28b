//! The audit log, on SQLite.

use async_trait::async_trait;
use cortex_core::audit::{Actor, AuditEvent, AuditFilter, NewAuditEvent};
use cortex_core::ids::TenantId;
use cortex_core::store::{AuditStore, Page, Result};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::{SqliteStore, corrupt, db, insert_audit, ts};

fn audit_from(row: &SqliteRow) -> Result<AuditEvent> {
    let metadata: String = row.try_get("metadata").map_err(db)?;
    Ok(AuditEvent {
        id: row.try_get::<Uuid, _>("id").map_err(db)?.into(),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        actor: Actor::from_parts(
            &row.try_get::<String, _>("actor_type").map_err(db)?,
            row.try_get("actor_id").map_err(db)?,
        ),
        action: row.try_get("action").map_err(db)?,
        target_type: row.try_get("target_type").map_err(db)?,
        target_id: row.try_get("target_id").map_err(db)?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|_| corrupt("audit metadata", &metadata))?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn record_audit(&self, tenant: TenantId, event: NewAuditEvent) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        insert_audit(&mut tx, tenant, &event).await?;
        tx.commit().await.map_err(db)
    }

    async fn list_audit_events(
        &self,
        tenant: TenantId,
        filter: &AuditFilter,
        page: Page,
    ) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_events WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2)
               AND ($4 IS NULL OR action = $4)
               AND ($5 IS NULL OR (actor_type = 'user' AND actor_id = $5))
               AND ($6 IS NULL OR created_at >= $6)
               AND ($7 IS NULL OR created_at < $7)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.0)
        .bind(page.before)
        .bind(i64::from(page.limit))
        .bind(filter.action.as_deref())
        .bind(filter.actor_user.map(|u| u.to_string()))
        .bind(filter.from.map(crate::ms))
        .bind(filter.until.map(crate::ms))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(audit_from).collect()
    }
}
