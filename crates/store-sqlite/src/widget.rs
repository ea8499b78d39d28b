//! Web widget keys, on SQLite.

use async_trait::async_trait;
use cortex_core::StoreError;
use cortex_core::audit::NewAuditEvent;
use cortex_core::ids::{TenantId, WidgetKeyId};
use cortex_core::store::{Result, WidgetStore, conflict};
use cortex_core::widget::{WidgetKey, WidgetTheme};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::{SqliteStore, db, insert_audit, ms, ts};

fn key_from(row: &SqliteRow) -> Result<WidgetKey> {
    let origins: String = row.try_get("allowed_origins").map_err(db)?;
    let theme: String = row.try_get("theme").map_err(db)?;
    Ok(WidgetKey {
        id: WidgetKeyId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        public_key: row.try_get("public_key").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        allowed_origins: serde_json::from_str(&origins).map_err(StoreError::other)?,
        theme: serde_json::from_str::<WidgetTheme>(&theme).map_err(StoreError::other)?,
        created_at: ts(row.try_get("created_at").map_err(db)?),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")
            .map_err(db)?
            .map(ts),
    })
}

fn to_json(v: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(StoreError::other)
}

/// `NotFound` for a key not the tenant's, `Conflict(already_revoked)` for a revoked one.
pub(crate) async fn missing(pool: &SqlitePool, tenant: TenantId, id: WidgetKeyId) -> StoreError {
    match sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM widget_keys WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.0)
    .bind(id.0)
    .fetch_one(pool)
    .await
    {
        Ok(n) if n > 0 => StoreError::Conflict(conflict::ALREADY_REVOKED),
        Ok(_) => StoreError::NotFound,
        Err(e) => db(e),
    }
}

#[async_trait]
impl WidgetStore for SqliteStore {
    async fn create_widget_key(
        &self,
        tenant: TenantId,
        k: WidgetKey,
        audit: NewAuditEvent,
    ) -> Result<WidgetKey> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(
            "INSERT INTO widget_keys (id, tenant_id, public_key, name, allowed_origins, theme,
                 created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) RETURNING *",
        )
        .bind(k.id.0)
        .bind(tenant.0)
        .bind(&k.public_key)
        .bind(&k.name)
        .bind(to_json(&k.allowed_origins)?)
        .bind(to_json(&k.theme)?)
        .bind(ms(k.created_at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let created = key_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(created)
    }

    async fn list_widget_keys(&self, tenant: TenantId) -> Result<Vec<WidgetKey>> {
        let rows = sqlx::query("SELECT * FROM widget_keys WHERE tenant_id = $1 ORDER BY id")
            .bind(tenant.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(key_from).collect()
    }

    async fn update_widget_key(
        &self,
        tenant: TenantId,
        k: WidgetKey,
        audit: NewAuditEvent,
    ) -> Result<WidgetKey> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query(
            "UPDATE widget_keys SET name = $3, allowed_origins = $4, theme = $5
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING *",
        )
        .bind(tenant.0)
        .bind(k.id.0)
        .bind(&k.name)
        .bind(to_json(&k.allowed_origins)?)
        .bind(to_json(&k.theme)?)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some(row) = row else {
            drop(tx);
            return Err(missing(&self.pool, tenant, k.id).await);
        };
        let updated = key_from(&row)?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(updated)
    }

    async fn revoke_widget_key(
        &self,
        tenant: TenantId,
        id: WidgetKeyId,
        at: chrono::DateTime<chrono::Utc>,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE widget_keys SET revoked_at = $3
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(ms(at))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            drop(tx);
            return Err(missing(&self.pool, tenant, id).await);
        }
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn find_widget_key(&self, public_key: &str) -> Result<Option<WidgetKey>> {
        let row = sqlx::query("SELECT * FROM widget_keys WHERE public_key = $1")
            .bind(public_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(key_from).transpose()
    }
}
