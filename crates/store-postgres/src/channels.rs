//! Channel connections, their sign-in flows and customers' data deletions, on PostgreSQL.

use async_trait::async_trait;
use cortex_core::StoreError;
use cortex_core::audit::NewAuditEvent;
use cortex_core::channels::{ChannelConnection, DataDeletion, OauthFlow, Provider};
use cortex_core::conversations::Channel;
use cortex_core::ids::{ChannelConnectionId, OauthFlowId, TenantId, UserId};
use cortex_core::store::{ChannelStore, Result, conflict};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::{PgStore, db, insert_audit, is_unique_violation, parse_enum};

fn connection_from(row: &PgRow) -> Result<ChannelConnection> {
    Ok(ChannelConnection {
        id: ChannelConnectionId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        kind: parse_enum("channel kind", row.try_get("kind").map_err(db)?)?,
        provider: parse_enum("channel provider", row.try_get("provider").map_err(db)?)?,
        asset_id: row.try_get("asset_id").map_err(db)?,
        account_id: row.try_get("account_id").map_err(db)?,
        name: row.try_get("name").map_err(db)?,
        sealed_token: row.try_get("sealed_token").map_err(db)?,
        token_hint: row.try_get("token_hint").map_err(db)?,
        template: match (
            row.try_get::<Option<String>, _>("template_name")
                .map_err(db)?,
            row.try_get::<Option<String>, _>("template_language")
                .map_err(db)?,
        ) {
            (Some(name), Some(language)) => Some((name, language)),
            _ => None,
        },
        ack_text: row.try_get("ack_text").map_err(db)?,
        verified_at: row.try_get("verified_at").map_err(db)?,
        webhook_target: row.try_get("webhook_target").map_err(db)?,
        token_invalid_at: row.try_get("token_invalid_at").map_err(db)?,
        created_by: row
            .try_get::<Option<uuid::Uuid>, _>("created_by")
            .map_err(db)?
            .map(UserId),
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
    })
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    tenant: TenantId,
    c: &ChannelConnection,
) -> Result<ChannelConnection> {
    let row = sqlx::query(
        "INSERT INTO channel_connections (id, tenant_id, kind, asset_id, name, sealed_token,
             token_hint, created_by, created_at, updated_at, template_name, template_language,
             provider, account_id, ack_text, verified_at, webhook_target, token_invalid_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         RETURNING *",
    )
    .bind(c.id.0)
    .bind(tenant.0)
    .bind(c.kind.as_str())
    .bind(&c.asset_id)
    .bind(&c.name)
    .bind(&c.sealed_token)
    .bind(&c.token_hint)
    .bind(c.created_by.map(|u| u.0))
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(c.template.as_ref().map(|t| t.0.as_str()))
    .bind(c.template.as_ref().map(|t| t.1.as_str()))
    .bind(c.provider.as_str())
    .bind(c.account_id.as_deref())
    .bind(c.ack_text.as_deref())
    .bind(c.verified_at)
    .bind(c.webhook_target.as_deref())
    .bind(c.token_invalid_at)
    .fetch_one(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(conflict::CHANNEL_TAKEN)
        } else {
            db(e)
        }
    })?;
    connection_from(&row)
}

fn deletion_from(row: &PgRow) -> Result<DataDeletion> {
    Ok(DataDeletion {
        code: row.try_get("code").map_err(db)?,
        provider: parse_enum("provider", row.try_get("provider").map_err(db)?)?,
        conversations: row.try_get::<i64, _>("conversations").map_err(db)? as u64,
        messages: row.try_get::<i64, _>("messages").map_err(db)? as u64,
        requested_at: row.try_get("requested_at").map_err(db)?,
        completed_at: row
            .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>("completed_at")
            .map_err(db)?,
    })
}

fn flow_from(row: &PgRow) -> Result<OauthFlow> {
    Ok(OauthFlow {
        id: OauthFlowId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        user_id: UserId(row.try_get("user_id").map_err(db)?),
        kind: parse_enum("channel kind", row.try_get("kind").map_err(db)?)?,
        state_hash: row.try_get("state_hash").map_err(db)?,
        browser_hash: row.try_get("browser_hash").map_err(db)?,
        return_path: row.try_get("return_path").map_err(db)?,
        sealed_assets: row.try_get("sealed_assets").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        expires_at: row.try_get("expires_at").map_err(db)?,
    })
}

#[async_trait]
impl ChannelStore for PgStore {
    async fn create_channel_connection(
        &self,
        tenant: TenantId,
        c: ChannelConnection,
        audit: NewAuditEvent,
    ) -> Result<ChannelConnection> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let created = insert(&mut tx, tenant, &c).await?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(created)
    }

    /// Deletes `incumbent` (another tenant's claim on the same asset) and inserts `c`, with an
    /// audit entry in each tenant, in one transaction.
    async fn replace_channel_claim(
        &self,
        tenant: TenantId,
        c: ChannelConnection,
        audit: NewAuditEvent,
        incumbent_tenant: TenantId,
        incumbent: ChannelConnectionId,
        release_audit: NewAuditEvent,
    ) -> Result<ChannelConnection> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let gone = sqlx::query(
            "DELETE FROM channel_connections WHERE id = $1 AND tenant_id = $2 AND kind = $3 AND asset_id = $4",
        )
        .bind(incumbent.0)
        .bind(incumbent_tenant.0)
        .bind(c.kind.as_str())
        .bind(&c.asset_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if gone.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, incumbent_tenant, &release_audit).await?;
        let created = insert(&mut tx, tenant, &c).await?;
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(created)
    }

    async fn flag_channel_token_invalid(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        at: chrono::DateTime<chrono::Utc>,
        audit: NewAuditEvent,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE channel_connections SET token_invalid_at = $3, updated_at = $3
             WHERE id = $1 AND tenant_id = $2 AND token_invalid_at IS NULL",
        )
        .bind(connection.0)
        .bind(tenant.0)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            let exists: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM channel_connections WHERE id = $1 AND tenant_id = $2",
            )
            .bind(connection.0)
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            return if exists.is_some() {
                Ok(false)
            } else {
                Err(StoreError::NotFound)
            };
        }
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn webhook_target_in_use(&self, target: &str) -> Result<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM channel_connections WHERE webhook_target = $1 LIMIT 1",
        )
        .bind(target)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        Ok(found.is_some())
    }

    async fn list_channel_connections(&self, tenant: TenantId) -> Result<Vec<ChannelConnection>> {
        let rows =
            sqlx::query("SELECT * FROM channel_connections WHERE tenant_id = $1 ORDER BY id")
                .bind(tenant.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        rows.iter().map(connection_from).collect()
    }

    async fn delete_channel_connection(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        audit: NewAuditEvent,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query("DELETE FROM channel_connections WHERE id = $1 AND tenant_id = $2")
            .bind(connection.0)
            .bind(tenant.0)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, tenant, &audit).await?;
        tx.commit().await.map_err(db)
    }

    async fn find_channel_connection(
        &self,
        kind: Channel,
        asset_id: &str,
    ) -> Result<Option<ChannelConnection>> {
        let row =
            sqlx::query("SELECT * FROM channel_connections WHERE kind = $1 AND asset_id = $2")
                .bind(kind.as_str())
                .bind(asset_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        row.as_ref().map(connection_from).transpose()
    }

    async fn delete_customer_data(
        &self,
        provider: Provider,
        customer: &str,
        code: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<DataDeletion> {
        const ON_PROVIDER: &str =
            "connection_id IN (SELECT id FROM channel_connections WHERE provider = $2)";
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(&format!(
            "DELETE FROM outbound_messages WHERE inbound_id IN
                 (SELECT id FROM inbound_messages WHERE customer = $1 AND {ON_PROVIDER})"
        ))
        .bind(customer)
        .bind(provider.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let messages = sqlx::query(&format!(
            "DELETE FROM inbound_messages WHERE customer = $1 AND {ON_PROVIDER}"
        ))
        .bind(customer)
        .bind(provider.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        let conversations = sqlx::query(&format!(
            "DELETE FROM conversations WHERE customer = $1 AND {ON_PROVIDER}"
        ))
        .bind(customer)
        .bind(provider.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        let row = sqlx::query(
            "INSERT INTO data_deletions (code, provider, conversations, messages, requested_at, completed_at)
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING *",
        )
        .bind(code)
        .bind(provider.as_str())
        .bind(conversations as i64)
        .bind(messages as i64)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(conflict::DELETION_CODE_TAKEN)
            } else {
                db(e)
            }
        })?;
        let done = deletion_from(&row)?;
        tx.commit().await.map_err(db)?;
        Ok(done)
    }

    async fn get_data_deletion(&self, code: &str) -> Result<Option<DataDeletion>> {
        let row = sqlx::query("SELECT * FROM data_deletions WHERE code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(deletion_from).transpose()
    }

    async fn create_oauth_flow(&self, tenant: TenantId, f: OauthFlow) -> Result<()> {
        sqlx::query(
            "INSERT INTO oauth_flows (id, tenant_id, user_id, kind, state_hash, browser_hash,
                 return_path, sealed_assets, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(f.id.0)
        .bind(tenant.0)
        .bind(f.user_id.0)
        .bind(f.kind.as_str())
        .bind(&f.state_hash)
        .bind(&f.browser_hash)
        .bind(&f.return_path)
        .bind(f.sealed_assets.as_deref())
        .bind(f.created_at)
        .bind(f.expires_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn claim_oauth_flow(
        &self,
        state_hash: &str,
        browser_hash: &str,
        at: chrono::DateTime<chrono::Utc>,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<OauthFlow>> {
        let row = sqlx::query(
            "UPDATE oauth_flows SET sealed_assets = '', expires_at = $4
             WHERE state_hash = $1 AND browser_hash = $2 AND sealed_assets IS NULL AND expires_at > $3
             RETURNING *",
        )
        .bind(state_hash)
        .bind(browser_hash)
        .bind(at)
        .bind(expires_at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(flow_from).transpose()
    }

    async fn set_oauth_assets(
        &self,
        tenant: TenantId,
        id: OauthFlowId,
        sealed: &str,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE oauth_flows SET sealed_assets = $3 WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id.0)
        .bind(tenant.0)
        .bind(sealed)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn get_oauth_flow(&self, tenant: TenantId, id: OauthFlowId) -> Result<OauthFlow> {
        let row = sqlx::query("SELECT * FROM oauth_flows WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or(StoreError::NotFound)?;
        flow_from(&row)
    }

    async fn delete_oauth_flow(&self, tenant: TenantId, id: OauthFlowId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM oauth_flows WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }
}
