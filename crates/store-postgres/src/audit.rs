//! The audit log, on PostgreSQL.

use async_trait::async_trait;
use cortex_core::audit::{Actor, AuditEvent, AuditFilter, NewAuditEvent};
use cortex_core::ids::TenantId;
use cortex_core::store::{AuditStore, Page, Result};
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::{PgStore, db, insert_audit};

fn audit_from(row: &PgRow) -> Result<AuditEvent> {
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
        metadata: row.try_get("metadata").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

#[async_trait]
impl AuditStore for PgStore {
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
            "SELECT * FROM audit_events WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)
               AND ($4::text IS NULL OR action = $4)
               AND ($5::text IS NULL OR (actor_type = 'user' AND actor_id = $5))
               AND ($6::timestamptz IS NULL OR created_at >= $6)
               AND ($7::timestamptz IS NULL OR created_at < $7)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.0)
        .bind(page.before)
        .bind(i64::from(page.limit))
        .bind(filter.action.as_deref())
        .bind(filter.actor_user.map(|u| u.to_string()))
        .bind(filter.from)
        .bind(filter.until)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(audit_from).collect()
    }
}
