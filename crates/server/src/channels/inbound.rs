//! Customers' messages from Meta's channels: taken in by the webhook (signature checked on
//! the raw bytes, each message routed to its tenant by asset id, stored once per provider id
//! with its answer job in one transaction, then acknowledged — no model call inline), and
//! answered by the `AnswerInbound` job through the answer engine and the Graph API.

use chrono::{TimeZone, Utc};
use cortex_core::StoreError;
use cortex_core::channels::{
    DeliveryStatus, InboundMessage, OutboundMessage, SERVICE_WINDOW_HOURS,
};
use cortex_core::ids::{InboundMessageId, OutboundMessageId, TenantId};
use cortex_core::jobs::NewJob;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::meta::{self, Content, Event};
use crate::app::AppState;
use crate::infra::meta_graph::SendError;
use crate::knowledge::pipeline::JobError;

pub const ANSWER_INBOUND: &str = "AnswerInbound";

/// Said to media, stickers and the like, which the bot does not read.
const MEDIA_REPLY: &str =
    "Thanks! I can only read text messages for now — could you describe it in words?";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IntakeError {
    #[error("Meta webhooks are not configured (META_APP_SECRET)")]
    NotConfigured,
    #[error("the X-Hub-Signature-256 header does not match the body")]
    BadSignature,
    #[error("{0}")]
    BadPayload(String),
    #[error("storage failure")]
    Storage,
}

/// What one delivery brought.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Intake {
    pub stored: usize,
    pub duplicates: usize,
    pub unrouted: usize,
    pub statuses: usize,
}

#[derive(Serialize, Deserialize)]
struct AnswerArgs {
    message_id: InboundMessageId,
}

fn content_json(c: &Content) -> serde_json::Value {
    match c {
        Content::Text(t) => json!({ "type": "text", "text": t }),
        Content::Reply { payload, text } => {
            json!({ "type": "reply", "payload": payload, "text": text })
        }
        Content::Media {
            kind,
            reference,
            caption,
        } => json!({ "type": "media", "kind": kind, "reference": reference, "caption": caption }),
        Content::Unsupported(kind) => json!({ "type": "unsupported", "kind": kind }),
    }
}

/// Verifies and stores one webhook delivery.
pub async fn intake(
    state: &AppState,
    body: &[u8],
    signature: Option<&str>,
) -> Result<Intake, IntakeError> {
    let secret = state
        .settings
        .providers
        .meta_app_secret
        .as_ref()
        .ok_or(IntakeError::NotConfigured)?;
    if !meta::signature_ok(secret.expose().as_bytes(), body, signature) {
        return Err(IntakeError::BadSignature);
    }
    let events = meta::parse(body).map_err(|e| IntakeError::BadPayload(e.to_string()))?;
    let mut out = Intake::default();
    for event in events {
        let m = match event {
            Event::Status(status) => {
                out.statuses += 1;
                apply_status(state, status).await?;
                continue;
            }
            Event::Message(m) => m,
        };
        let connection = match state
            .store
            .find_channel_connection(m.channel, &m.asset_id)
            .await
        {
            Ok(Some(c)) => c,
            Ok(None) => {
                out.unrouted += 1;
                continue;
            }
            Err(_) => return Err(IntakeError::Storage),
        };
        let id = InboundMessageId::new();
        let message = InboundMessage {
            id,
            tenant_id: connection.tenant_id,
            connection_id: connection.id,
            provider_message_id: m.provider_id.clone(),
            customer: m.from,
            content: content_json(&m.content),
            sent_at: Utc
                .timestamp_opt(m.timestamp, 0)
                .single()
                .unwrap_or_else(Utc::now),
            received_at: Utc::now(),
            answered_at: None,
            error: None,
        };
        let job = NewJob::now(ANSWER_INBOUND, json!(AnswerArgs { message_id: id })).unique(
            format!("{ANSWER_INBOUND}:{}:{}", connection.id, m.provider_id),
        );
        match state
            .store
            .record_inbound(connection.tenant_id, message, job)
            .await
        {
            Ok(true) => out.stored += 1,
            Ok(false) => out.duplicates += 1,
            Err(StoreError::NotFound) => out.unrouted += 1,
            Err(_) => return Err(IntakeError::Storage),
        }
    }
    if out.stored > 0 {
        state.jobs_ready.notify_waiters();
    }
    tracing::info!(
        webhook.stored = out.stored,
        webhook.duplicates = out.duplicates,
        webhook.unrouted = out.unrouted,
        webhook.statuses = out.statuses,
        "meta webhook taken in"
    );
    Ok(out)
}

/// The connection's template, to a customer outside the 24-hour window.
async fn send_template(
    state: &AppState,
    connection: &cortex_core::channels::ChannelConnection,
    message: &InboundMessage,
    token: &str,
) -> Result<Vec<String>, SendError> {
    let Some((name, language)) = &connection.template else {
        return Ok(Vec::new());
    };
    state
        .graph
        .send_template(
            token,
            &connection.asset_id,
            &message.customer,
            name,
            language,
        )
        .await
        .map(|id| vec![id])
}

/// Moves the sent message the status names forward (statuses of unknown messages — sent by
/// another system on the same number — are ignored).
async fn apply_status(state: &AppState, s: meta::Status) -> Result<(), IntakeError> {
    let connection = match state
        .store
        .find_channel_connection(s.channel, &s.asset_id)
        .await
    {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(()),
        Err(_) => return Err(IntakeError::Storage),
    };
    let status = match s.status {
        meta::Delivery::Sent => DeliveryStatus::Sent,
        meta::Delivery::Delivered => DeliveryStatus::Delivered,
        meta::Delivery::Read => DeliveryStatus::Read,
        meta::Delivery::Failed => DeliveryStatus::Failed,
    };
    let error = s.error.map(|(code, title)| format!("{code} {title}"));
    state
        .store
        .update_outbound_status(
            connection.tenant_id,
            connection.id,
            &s.provider_id,
            status,
            error.as_deref(),
            Utc::now(),
        )
        .await
        .map_err(|_| IntakeError::Storage)?;
    Ok(())
}

/// The `AnswerInbound` job: answers the message through the answer engine and sends the reply
/// from the asset it came to. Runs once per message (the message is marked answered after).
pub async fn run(
    state: &AppState,
    tenant: TenantId,
    payload: &serde_json::Value,
) -> Result<(), JobError> {
    let Ok(args) = serde_json::from_value::<AnswerArgs>(payload.clone()) else {
        tracing::warn!("AnswerInbound with an unreadable payload; dropped");
        return Ok(());
    };
    let message = match state.store.get_inbound(tenant, args.message_id).await {
        Ok(m) => m,
        Err(StoreError::NotFound) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if message.answered_at.is_some() {
        return Ok(());
    }
    let Some(connection) = state
        .store
        .list_channel_connections(tenant)
        .await?
        .into_iter()
        .find(|c| c.id == message.connection_id)
    else {
        return Ok(()); // disconnected meanwhile
    };
    // WhatsApp takes free text only within 24 hours of the customer's last message; past it,
    // the connection's approved template goes instead (no answer is composed), or nothing:
    // the message waits for an agent.
    let outside_window = connection.kind == cortex_core::answer::Channel::WhatsApp
        && Utc::now() - message.sent_at > chrono::Duration::hours(SERVICE_WINDOW_HOURS);
    if outside_window && connection.template.is_none() {
        state
            .store
            .finish_inbound(
                tenant,
                message.id,
                Utc::now(),
                Some("outside the 24-hour window and no template is configured"),
            )
            .await?;
        return Ok(());
    }
    let text = match message.content["type"].as_str() {
        Some("text") => message.content["text"].as_str().map(str::to_owned),
        Some("reply") => message.content["text"]
            .as_str()
            .filter(|t| !t.is_empty())
            .or(message.content["payload"].as_str())
            .map(str::to_owned),
        _ => None,
    };
    let reply = match (&text, message.content["type"].as_str()) {
        _ if outside_window => String::new(),
        (Some(question), _) => {
            let ctx = crate::tenancy::TenantCtx::for_operator(state, tenant)
                .await
                .map_err(|e| JobError::Retry(format!("tenant: {e}")))?;
            let answer = crate::answer::ask(
                state,
                &ctx,
                crate::answer::Question {
                    message: question.clone(),
                    conversation_id: None,
                    channel: connection.kind,
                    history: Vec::new(),
                    customer: Some((connection.id, message.customer.clone())),
                },
                None,
            )
            .await
            .map_err(|e| JobError::Retry(format!("answering: {e}")))?;
            answer.text
        }
        (None, Some("media")) => MEDIA_REPLY.to_owned(),
        _ => {
            state
                .store
                .finish_inbound(tenant, message.id, Utc::now(), None)
                .await?;
            return Ok(());
        }
    };
    let token = super::access_token(&state.secrets, &connection)
        .map_err(|e| JobError::Retry(format!("opening the channel token: {e}")))?;
    let sent = if outside_window {
        send_template(state, &connection, &message, &token).await
    } else {
        state
            .graph
            .send_text(
                connection.kind,
                &token,
                &connection.asset_id,
                &message.customer,
                &reply,
            )
            .await
    };
    let error = match sent {
        Ok(ids) => {
            let now = Utc::now();
            for provider_message_id in ids.into_iter().filter(|id| !id.is_empty()) {
                state
                    .store
                    .record_outbound(
                        tenant,
                        OutboundMessage {
                            id: OutboundMessageId::new(),
                            tenant_id: tenant,
                            connection_id: connection.id,
                            inbound_id: Some(message.id),
                            provider_message_id,
                            status: DeliveryStatus::Sent,
                            error: None,
                            created_at: now,
                            updated_at: now,
                        },
                    )
                    .await?;
            }
            None
        }
        Err(SendError::Unavailable(e)) => return Err(JobError::Retry(format!("sending: {e}"))),
        Err(SendError::Rejected { code, message }) => Some(format!("{code} {message}")),
    };
    state
        .store
        .finish_inbound(tenant, message.id, Utc::now(), error.as_deref())
        .await?;
    tracing::info!(
        inbound.id = %message.id,
        channel = connection.kind.as_str(),
        delivered = error.is_none(),
        "channel message answered"
    );
    Ok(())
}
