//! Conversations, their messages and turns, and feedback on answers, on PostgreSQL.

use async_trait::async_trait;
use cortex_core::StoreError;
use cortex_core::conversations::{
    Conversation, ConversationEvent, ConversationFilter, ConversationSummary, Message, Turn,
};
use cortex_core::ids::{ConversationId, MessageId, TenantId};
use cortex_core::store::{ConversationStore, Result, conflict};
use cortex_core::usage::UsageEvent;
use cortex_core::widget::Feedback;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::bot::from_json;
use crate::{PgStore, db, is_unique_violation, parse_enum};

fn conversation_from(row: &PgRow) -> Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        channel: parse_enum("channel", row.try_get("channel").map_err(db)?)?,
        status: parse_enum("conversation status", row.try_get("status").map_err(db)?)?,
        connection_id: row
            .try_get::<Option<uuid::Uuid>, _>("connection_id")
            .map_err(db)?
            .map(cortex_core::ids::ChannelConnectionId),
        customer: row.try_get("customer").map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        updated_at: row.try_get("updated_at").map_err(db)?,
    })
}

fn message_from(row: &PgRow) -> Result<Message> {
    let tokens =
        |c: &str| -> Result<u32> { Ok(row.try_get::<i32, _>(c).map_err(db)?.max(0) as u32) };
    Ok(Message {
        id: cortex_core::ids::MessageId(row.try_get("id").map_err(db)?),
        tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
        conversation_id: ConversationId(row.try_get("conversation_id").map_err(db)?),
        role: parse_enum("message role", row.try_get("role").map_err(db)?)?,
        content: row.try_get("content").map_err(db)?,
        citations: from_json(row, "citations")?,
        context: from_json(row, "context")?,
        confidence: row.try_get::<Option<f32>, _>("confidence").map_err(db)?,
        abstained: row.try_get("abstained").map_err(db)?,
        model: row.try_get("model").map_err(db)?,
        prompt_tokens: tokens("prompt_tokens")?,
        completion_tokens: tokens("completion_tokens")?,
        latency_ms: tokens("latency_ms")?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

async fn insert_message(conn: &mut PgConnection, tenant: TenantId, m: &Message) -> Result<()> {
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, role, content, citations, context,
             confidence, abstained, model, prompt_tokens, completion_tokens, latency_ms, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(m.id.0)
    .bind(tenant.0)
    .bind(m.conversation_id.0)
    .bind(m.role.as_str())
    .bind(&m.content)
    .bind(sqlx::types::Json(&m.citations))
    .bind(sqlx::types::Json(&m.context))
    .bind(m.confidence)
    .bind(m.abstained)
    .bind(m.model.as_deref())
    .bind(m.prompt_tokens.min(i32::MAX as u32) as i32)
    .bind(m.completion_tokens.min(i32::MAX as u32) as i32)
    .bind(m.latency_ms.min(i32::MAX as u32) as i32)
    .bind(m.created_at)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

const LAST_MESSAGE: &str =
    "FROM messages m WHERE m.tenant_id = c.tenant_id AND m.conversation_id = c.id";

/// Appends one line to the usage ledger.
pub(crate) async fn insert_usage(
    conn: &mut PgConnection,
    tenant: TenantId,
    u: &UsageEvent,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO usage_events (id, tenant_id, kind, subject, quantity, conversation_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(u.id.0)
    .bind(tenant.0)
    .bind(u.kind.as_str())
    .bind(&u.subject)
    .bind(u.quantity as i64)
    .bind(u.conversation_id.map(|c| c.0))
    .bind(u.created_at)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

#[async_trait]
impl ConversationStore for PgStore {
    async fn get_conversation(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Conversation> {
        let row = sqlx::query("SELECT * FROM conversations WHERE id = $1 AND tenant_id = $2")
            .bind(conversation.0)
            .bind(tenant.0)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        conversation_from(&row)
    }

    async fn list_conversations(
        &self,
        tenant: TenantId,
        filter: &ConversationFilter,
    ) -> Result<Vec<ConversationSummary>> {
        let sql = format!(
            "SELECT c.*, cc.name AS connection_name,
                    (SELECT COUNT(*) {LAST_MESSAGE}) AS message_count,
                    (SELECT m.role {LAST_MESSAGE} ORDER BY m.id DESC LIMIT 1) AS last_role,
                    (SELECT substr(m.content, 1, 200) {LAST_MESSAGE} ORDER BY m.id DESC LIMIT 1)
                        AS last_content
             FROM conversations c
             LEFT JOIN channel_connections cc ON cc.id = c.connection_id AND cc.tenant_id = c.tenant_id
             WHERE c.tenant_id = $1
               AND ($2::text IS NULL OR c.channel = $2)
               AND ($3::text IS NULL OR c.status = $3)
               AND ($4::timestamptz IS NULL OR c.updated_at < $4
                    OR (c.updated_at = $4 AND c.id < $5))
               AND ($7::timestamptz IS NULL OR c.updated_at >= $7)
               AND ($8::timestamptz IS NULL OR c.updated_at < $8)
               AND (NOT $9 OR EXISTS (SELECT 1 {LAST_MESSAGE} AND m.abstained))
               AND (NOT $10 OR EXISTS (SELECT 1 FROM conversation_events e
                    WHERE e.tenant_id = c.tenant_id AND e.conversation_id = c.id
                      AND e.kind = 'handoff_requested'))
             ORDER BY c.updated_at DESC, c.id DESC
             LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.0)
            .bind(filter.channel.map(|c| c.as_str()))
            .bind(filter.status.map(|s| s.as_str()))
            .bind(filter.before.map(|(at, _)| at))
            .bind(filter.before.map(|(_, id)| id.0))
            .bind(i64::from(filter.limit.clamp(1, 200)))
            .bind(filter.active_from)
            .bind(filter.active_until)
            .bind(filter.abstained)
            .bind(filter.handed_off)
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row: &PgRow| {
                let role: Option<String> = row.try_get("last_role").map_err(db)?;
                let content: Option<String> = row.try_get("last_content").map_err(db)?;
                Ok(ConversationSummary {
                    conversation: conversation_from(row)?,
                    connection_name: row.try_get("connection_name").map_err(db)?,
                    message_count: row.try_get::<i64, _>("message_count").map_err(db)? as u32,
                    last_message: match (role, content) {
                        (Some(role), Some(content)) => {
                            Some((parse_enum("message role", role)?, content))
                        }
                        _ => None,
                    },
                })
            })
            .collect()
    }

    async fn find_customer_conversation(
        &self,
        tenant: TenantId,
        connection: cortex_core::ids::ChannelConnectionId,
        customer: &str,
    ) -> Result<Option<Conversation>> {
        let row = sqlx::query(
            "SELECT * FROM conversations
             WHERE tenant_id = $1 AND connection_id = $2 AND customer = $3 AND status <> 'resolved'
             ORDER BY updated_at DESC, id DESC LIMIT 1",
        )
        .bind(tenant.0)
        .bind(connection.0)
        .bind(customer)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.as_ref().map(conversation_from).transpose()
    }

    async fn recent_messages(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        limit: u32,
    ) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT * FROM messages WHERE tenant_id = $1 AND conversation_id = $2
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.0)
        .bind(conversation.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut messages = rows.iter().map(message_from).collect::<Result<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }

    async fn record_turn(&self, tenant: TenantId, turn: Turn) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let at = turn
            .answer
            .as_ref()
            .map_or(turn.question.created_at, |a| a.created_at);
        if let Some(c) = &turn.new_conversation {
            sqlx::query(
                "INSERT INTO conversations (id, tenant_id, channel, status, created_at, updated_at,
                     connection_id, customer)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(c.id.0)
            .bind(tenant.0)
            .bind(c.channel.as_str())
            .bind(c.status.as_str())
            .bind(c.created_at)
            .bind(at)
            .bind(c.connection_id.map(|x| x.0))
            .bind(c.customer.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(conflict::CONVERSATION_EXISTS)
                } else {
                    db(e)
                }
            })?;
        } else {
            let done = sqlx::query(
                "UPDATE conversations SET updated_at = $3 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(turn.conversation_id.0)
            .bind(tenant.0)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        }
        insert_message(&mut tx, tenant, &turn.question).await?;
        if let Some(answer) = &turn.answer {
            insert_message(&mut tx, tenant, answer).await?;
        }
        for u in &turn.usage {
            insert_usage(&mut tx, tenant, u).await?;
        }
        for e in &turn.events {
            sqlx::query(
                "INSERT INTO conversation_events (id, tenant_id, conversation_id, kind, reason, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(e.id.0)
            .bind(tenant.0)
            .bind(e.conversation_id.0)
            .bind(e.kind.as_str())
            .bind(e.reason.as_str())
            .bind(e.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn activity(
        &self,
        tenant: TenantId,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<cortex_core::conversations::ActivityStats> {
        let rows = sqlx::query(
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, channel, COUNT(*) AS conversations
             FROM conversations WHERE tenant_id = $1 AND created_at >= $2
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(tenant.0)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut daily = Vec::with_capacity(rows.len());
        for row in &rows {
            daily.push(cortex_core::conversations::DailyActivity {
                day: row.try_get("day").map_err(db)?,
                channel: parse_enum("channel", row.try_get::<String, _>("channel").map_err(db)?)?,
                conversations: row.try_get::<i64, _>("conversations").map_err(db)? as u64,
            });
        }
        let rows = sqlx::query(
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, COUNT(*) AS messages
             FROM messages WHERE tenant_id = $1 AND created_at >= $2
             GROUP BY 1 ORDER BY 1",
        )
        .bind(tenant.0)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut daily_messages = Vec::with_capacity(rows.len());
        for row in &rows {
            daily_messages.push((
                row.try_get("day").map_err(db)?,
                row.try_get::<i64, _>("messages").map_err(db)? as u64,
            ));
        }
        // One pass over the week's answers: how many, how many abstained, and the lower
        // median latency (percentile_disc takes the first value at or past the middle).
        let answers = sqlx::query(
            "SELECT COUNT(*) AS answers,
                    COUNT(*) FILTER (WHERE abstained) AS abstained,
                    (percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms))::bigint AS median
             FROM messages WHERE tenant_id = $1 AND role = 'assistant' AND created_at >= $2",
        )
        .bind(tenant.0)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let answered = answers.try_get::<i64, _>("answers").map_err(db)?;
        let abstained = answers.try_get::<i64, _>("abstained").map_err(db)?;
        let median_latency_ms = answers
            .try_get::<Option<i64>, _>("median")
            .map_err(db)?
            .map(|ms| u32::try_from(ms).unwrap_or(u32::MAX));
        let handed_off: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT conversation_id) FROM conversation_events
             WHERE tenant_id = $1 AND kind = 'handoff_requested' AND created_at >= $2",
        )
        .bind(tenant.0)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        Ok(cortex_core::conversations::ActivityStats {
            daily,
            daily_messages,
            answers: answered as u64,
            abstained: abstained as u64,
            handed_off: handed_off as u64,
            median_latency_ms,
        })
    }

    async fn list_conversation_events(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<ConversationEvent>> {
        let rows = sqlx::query(
            "SELECT * FROM conversation_events WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY id",
        )
        .bind(tenant.0)
        .bind(conversation.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(ConversationEvent {
                    id: cortex_core::ids::ConversationEventId(row.try_get("id").map_err(db)?),
                    tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
                    conversation_id: ConversationId(row.try_get("conversation_id").map_err(db)?),
                    kind: parse_enum("event kind", row.try_get("kind").map_err(db)?)?,
                    reason: parse_enum("handoff reason", row.try_get("reason").map_err(db)?)?,
                    created_at: row.try_get("created_at").map_err(db)?,
                })
            })
            .collect()
    }

    async fn set_feedback(&self, tenant: TenantId, f: Feedback) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO message_feedback (message_id, tenant_id, conversation_id, helpful, at)
             SELECT m.id, m.tenant_id, m.conversation_id, $4, $5 FROM messages m
             WHERE m.id = $1 AND m.tenant_id = $2 AND m.conversation_id = $3 AND m.role = 'assistant'
             ON CONFLICT (message_id) DO UPDATE SET helpful = excluded.helpful, at = excluded.at",
        )
        .bind(f.message_id.0)
        .bind(tenant.0)
        .bind(f.conversation_id.0)
        .bind(f.helpful)
        .bind(f.at)
        .execute(&self.pool)
        .await
        .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn list_feedback(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> Result<Vec<Feedback>> {
        let rows = sqlx::query(
            "SELECT * FROM message_feedback WHERE tenant_id = $1 AND conversation_id = $2
             ORDER BY message_id",
        )
        .bind(tenant.0)
        .bind(conversation.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok(Feedback {
                    tenant_id: TenantId(row.try_get("tenant_id").map_err(db)?),
                    conversation_id: ConversationId(row.try_get("conversation_id").map_err(db)?),
                    message_id: MessageId(row.try_get("message_id").map_err(db)?),
                    helpful: row.try_get("helpful").map_err(db)?,
                    at: row.try_get("at").map_err(db)?,
                })
            })
            .collect()
    }
}
