//! A tenant's bot settings, on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cortex_core::answer::BotSettings;
use cortex_core::audit::NewAuditEvent;
use cortex_core::ids::TenantId;
use cortex_core::store::{BotStore, Result};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::{PgStore, db, insert_audit};

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(row: &PgRow, column: &str) -> Result<T> {
    let value: sqlx::types::Json<T> = row.try_get(column).map_err(db)?;
    Ok(value.0)
}

#[async_trait]
impl BotStore for PgStore {
    async fn get_bot_settings(&self, tenant: TenantId) -> Result<Option<BotSettings>> {
        let row = sqlx::query("SELECT settings FROM bot_settings WHERE tenant_id = $1")
            .bind(tenant.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.map(|r| from_json(&r, "settings")).transpose()
    }

    async fn put_bot_settings(
        &self,
        tenant: TenantId,
        settings: &BotSettings,
        at: DateTime<Utc>,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO bot_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(tenant.0)
        .bind(sqlx::types::Json(settings))
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }
}
