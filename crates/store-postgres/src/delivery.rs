//! Messages in and out of channels: inbound messages and outbound deliveries, on PostgreSQL.

use async_trait::async_trait;
use cortex_core::StoreError;
use cortex_core::ids::{ChannelConnectionId, TenantId};
use cortex_core::store::{DeliveryStore, Result};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::conversations::insert_usage;
use crate::{PgStore, db, parse_enum};

fn inbound_from(row: &PgRow) -> Result<cortex_core::channels::InboundMessage> {
    Ok(cortex_core::channels::InboundMessage {
        id: cortex_core::ids::InboundMessageId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        connection_id: ChannelConnectionId(row.try_get("connection_id").map_err(db)?),
        provider_message_id: row.try_get("provider_message_id").map_err(db)?,
        customer: row.try_get("customer").map_err(db)?,
        content: row
            .try_get::<sqlx::types::Json<cortex_core::channels::InboundContent>, _>("content")
            .map_err(db)?
            .0,
        sent_at: row.try_get("sent_at").map_err(db)?,
        received_at: row.try_get("received_at").map_err(db)?,
        answered_at: row.try_get("answered_at").map_err(db)?,
        error: row.try_get("error").map_err(db)?,
    })
}

fn outbound_from(row: &PgRow) -> Result<cortex_core::channels::OutboundMessage> {
    Ok(cortex_core::channels::OutboundMessage {
        id: cortex_core::ids::OutboundMessageId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        connection_id: ChannelConnectionId(row.try_get("connection_id").map_err(db)?),
        inbound_id: row
            .try_get::<Option<uuid::Uuid>, _>("inbound_id")
            .map_err(db)?
            .map(cortex_core::ids::InboundMessageId),
        provider_message_id: row.try_get("provider_message_id").map_err(db)?,
        status: parse_enum("delivery status", row.try_get("status").map_err(db)?)?,
        error: row.try_get("error").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
    })
}

#[async_trait]
impl DeliveryStore for PgStore {
    async fn record_inbound(
        &self,
        tenant: TenantId,
        m: cortex_core::channels::InboundMessage,
        job: cortex_core::jobs::NewJob,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "INSERT INTO inbound_messages (id, tenant_id, connection_id, provider_message_id, customer,
                 content, sent_at, received_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8
             WHERE EXISTS (SELECT 1 FROM channel_connections WHERE id = $3 AND tenant_id = $2)
             ON CONFLICT (connection_id, provider_message_id) DO NOTHING",
        )
        .bind(m.id.0)
        .bind(tenant.0)
        .bind(m.connection_id.0)
        .bind(&m.provider_message_id)
        .bind(&m.customer)
        .bind(sqlx::types::Json(&m.content))
        .bind(m.sent_at)
        .bind(m.received_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            let ours: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM channel_connections WHERE id = $1 AND tenant_id = $2",
            )
            .bind(m.connection_id.0)
            .bind(tenant.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
            return if ours.is_some() {
                Ok(false)
            } else {
                Err(StoreError::NotFound)
            };
        }
        crate::insert_job(&mut tx, Some(tenant), &job).await?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn get_inbound(
        &self,
        tenant: TenantId,
        id: cortex_core::ids::InboundMessageId,
    ) -> Result<cortex_core::channels::InboundMessage> {
        let row = sqlx::query("SELECT * FROM inbound_messages WHERE id = $1 AND tenant_id = $2")
            .bind(id.0)
            .bind(tenant.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        inbound_from(&row)
    }

    async fn unanswered_inbound(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        customer: &str,
        limit: u32,
    ) -> Result<Vec<cortex_core::channels::InboundMessage>> {
        let rows = sqlx::query(
            "SELECT * FROM inbound_messages
             WHERE tenant_id = $1 AND connection_id = $2 AND customer = $3 AND answered_at IS NULL
             ORDER BY sent_at, received_at, id LIMIT $4",
        )
        .bind(tenant.0)
        .bind(connection.0)
        .bind(customer)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(inbound_from).collect()
    }

    async fn finish_inbound(
        &self,
        tenant: TenantId,
        id: cortex_core::ids::InboundMessageId,
        at: chrono::DateTime<chrono::Utc>,
        error: Option<&str>,
        usage: &[cortex_core::usage::UsageEvent],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE inbound_messages SET answered_at = $3, error = $4
             WHERE id = $1 AND tenant_id = $2 AND answered_at IS NULL",
        )
        .bind(id.0)
        .bind(tenant.0)
        .bind(at)
        .bind(error)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() == 1 {
            for u in usage {
                insert_usage(&mut tx, tenant, u).await?;
            }
            tx.commit().await.map_err(db)?;
            return Ok(true);
        }
        drop(tx);
        self.get_inbound(tenant, id).await.map(|_| false)
    }

    async fn record_outbound(
        &self,
        tenant: TenantId,
        m: cortex_core::channels::OutboundMessage,
    ) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO outbound_messages (id, tenant_id, connection_id, inbound_id,
                 provider_message_id, status, error, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
             WHERE EXISTS (SELECT 1 FROM channel_connections WHERE id = $3 AND tenant_id = $2)
             ON CONFLICT (connection_id, provider_message_id) DO NOTHING",
        )
        .bind(m.id.0)
        .bind(tenant.0)
        .bind(m.connection_id.0)
        .bind(m.inbound_id.map(|i| i.0))
        .bind(&m.provider_message_id)
        .bind(m.status.as_str())
        .bind(m.error.as_deref())
        .bind(m.created_at)
        .bind(m.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0
            && self
                .find_outbound(tenant, m.connection_id, &m.provider_message_id)
                .await?
                .is_none()
        {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn update_outbound_status(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        provider_message_id: &str,
        status: cortex_core::channels::DeliveryStatus,
        error: Option<&str>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE outbound_messages SET status = $4, error = COALESCE($5, error), updated_at = $6
             WHERE tenant_id = $1 AND connection_id = $2 AND provider_message_id = $3
               AND (CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 4 END) < $7",
        )
        .bind(tenant.0)
        .bind(connection.0)
        .bind(provider_message_id)
        .bind(status.as_str())
        .bind(error)
        .bind(at)
        .bind(status.rank())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_outbound(
        &self,
        tenant: TenantId,
        connection: cortex_core::ids::ChannelConnectionId,
        provider_message_id: &str,
    ) -> Result<Option<cortex_core::channels::OutboundMessage>> {
        let row = sqlx::query(
            "SELECT * FROM outbound_messages
             WHERE tenant_id = $1 AND connection_id = $2 AND provider_message_id = $3",
        )
        .bind(tenant.0)
        .bind(connection.0)
        .bind(provider_message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(outbound_from).transpose()
    }
}
