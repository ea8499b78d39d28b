//! Customers' messages from the channels: taken in by the webhooks (verified on the raw bytes,
//! each message routed to its tenant by asset id, stored once per provider id with its answer
//! job in one transaction, then acknowledged — no model call inline), and answered by the
//! `AnswerInbound` job through the answer engine and the connection's provider (Meta's Graph
//! API, Twilio, ManyChat).

use chrono::{TimeZone, Utc};
use cortex_core::StoreError;
use cortex_core::channels::{
    ChannelConnection, DeliveryStatus, InboundContent, InboundMessage, OutboundMessage, Provider,
};
use cortex_core::conversations::Channel;
use cortex_core::ids::{InboundMessageId, OutboundMessageId, TenantId};

use super::event::{self, Delivery, Event};
use super::policy::Policy;
use super::{manychat, meta, twilio};
use crate::app::AppState;
use crate::conversations::{self, Customer, Destination};
use crate::infra::outbound::SendError;
use crate::jobs::JobError;
use crate::metering;

/// Said to media, stickers and the like, which the bot does not read.
const MEDIA_REPLY: &str =
    "Thanks! I can only read text messages for now — could you describe it in words?";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IntakeError {
    #[error("Meta webhooks are not configured (META_APP_SECRET)")]
    NotConfigured,
    #[error("the signature does not match the request")]
    BadSignature,
    /// The ManyChat key in `Authorization` is not the connection's.
    #[error("the Authorization header does not carry this connection's ManyChat API key")]
    BadKey,
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

impl Intake {
    /// A delivery for no connection of ours.
    fn unrouted() -> Self {
        Self {
            unrouted: 1,
            ..Self::default()
        }
    }
}

/// Verifies and stores one Meta webhook delivery.
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
    take_in(state, Provider::Meta, events).await
}

/// Verifies and stores one Twilio webhook delivery: a message (to `/webhooks/twilio`) or, with
/// `status_callback`, a delivery status. `url` is the address Twilio called (the public
/// `APP_URL` with the path and query), which the signature covers.
pub async fn intake_twilio(
    state: &AppState,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
    status_callback: bool,
) -> Result<Intake, IntakeError> {
    let form = twilio::Form::parse(body).map_err(|e| IntakeError::BadPayload(e.to_string()))?;
    let asset = if status_callback {
        form.whatsapp("From")
    } else {
        form.whatsapp("To")
    };
    let connection = match asset {
        Some(asset) => route(state, Provider::Twilio, Channel::WhatsApp, asset).await?,
        None => None,
    };
    // Without a connection there is no auth token to check the signature with: nothing is
    // stored, and Twilio is told all is well so that it does not retry.
    let Some(connection) = connection else {
        tracing::info!(
            webhook.provider = "twilio",
            webhook.unrouted = 1,
            "webhook taken in"
        );
        return Ok(Intake::unrouted());
    };
    let (account, token) =
        super::twilio_account(state, &connection).map_err(|_| IntakeError::Storage)?;
    if !twilio::signature_ok(&token, url, &form, signature) {
        return Err(IntakeError::BadSignature);
    }
    if form.account_sid() != Some(account.as_str()) {
        return Ok(Intake::unrouted());
    }
    let events = twilio::events(&form, status_callback, Utc::now().timestamp())
        .map_err(|e| IntakeError::BadPayload(e.to_string()))?;
    take_in(state, Provider::Twilio, events).await
}

/// Verifies and stores one ManyChat request to the page's webhook; returns the connection's
/// acknowledgement text. An unknown page and a wrong key are refused alike.
pub async fn intake_manychat(
    state: &AppState,
    page_id: &str,
    body: &[u8],
    authorization: Option<&str>,
) -> Result<Option<String>, IntakeError> {
    let connection = route(state, Provider::ManyChat, Channel::ManyChat, page_id).await?;
    let Some(connection) = connection else {
        return Err(IntakeError::BadKey);
    };
    let key = super::access_token(&state.secrets, &connection).map_err(|_| IntakeError::Storage)?;
    if !manychat::key_ok(&key, authorization) {
        return Err(IntakeError::BadKey);
    }
    let m = manychat::message(page_id, body, Utc::now().timestamp())
        .map_err(|e| IntakeError::BadPayload(e.to_string()))?;
    take_in(state, Provider::ManyChat, vec![Event::Message(m)]).await?;
    Ok(connection.ack_text)
}

/// The connection an event names, if `provider` carries it.
async fn route(
    state: &AppState,
    provider: Provider,
    channel: Channel,
    asset_id: &str,
) -> Result<Option<ChannelConnection>, IntakeError> {
    match state.store.find_channel_connection(channel, asset_id).await {
        Ok(c) => Ok(c.filter(|c| c.provider == provider)),
        Err(_) => Err(IntakeError::Storage),
    }
}

/// Stores a verified delivery's events: each message once per provider id with its answer
/// job (in one transaction), each status applied; events for assets no tenant connected
/// through `provider` are counted and dropped.
pub async fn take_in(
    state: &AppState,
    provider: Provider,
    events: Vec<Event>,
) -> Result<Intake, IntakeError> {
    let mut out = Intake::default();
    for event in events {
        let m = match event {
            Event::Status(status) => {
                out.statuses += 1;
                apply_status(state, provider, status).await?;
                continue;
            }
            Event::Message(m) => m,
        };
        let Some(connection) = route(state, provider, m.channel, &m.asset_id).await? else {
            out.unrouted += 1;
            continue;
        };
        let id = InboundMessageId::new();
        let message = InboundMessage {
            id,
            tenant_id: connection.tenant_id,
            connection_id: connection.id,
            provider_message_id: m.provider_id.clone(),
            customer: m.from,
            content: m.content,
            sent_at: Utc
                .timestamp_opt(m.timestamp, 0)
                .single()
                .unwrap_or_else(Utc::now),
            received_at: Utc::now(),
            answered_at: None,
            error: None,
        };
        let job = super::jobs::answer_job(id, connection.id, &m.provider_id);
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
        webhook.provider = provider.as_str(),
        webhook.stored = out.stored,
        webhook.duplicates = out.duplicates,
        webhook.unrouted = out.unrouted,
        webhook.statuses = out.statuses,
        "webhook taken in"
    );
    Ok(out)
}

/// Moves the sent message the status names forward (statuses of unknown messages — sent by
/// another system on the same number — are ignored).
async fn apply_status(
    state: &AppState,
    provider: Provider,
    s: event::Status,
) -> Result<(), IntakeError> {
    let Some(connection) = route(state, provider, s.channel, &s.asset_id).await? else {
        return Ok(());
    };
    let status = match s.status {
        Delivery::Sent => DeliveryStatus::Sent,
        Delivery::Delivered => DeliveryStatus::Delivered,
        Delivery::Read => DeliveryStatus::Read,
        Delivery::Failed => DeliveryStatus::Failed,
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

/// Why a message got no reply, when the plan's monthly WhatsApp messages are used up.
async fn allowance_used(
    state: &AppState,
    ctx: &crate::tenancy::TenantCtx,
    channel: Channel,
) -> Result<Option<String>, JobError> {
    if channel != Channel::WhatsApp {
        return Ok(None);
    }
    let plan = ctx.plan();
    let Some(allowance) = plan.whatsapp_messages_per_month else {
        return Ok(None);
    };
    let used = metering::channel_messages_this_month(state, ctx.tenant_id(), channel).await?;
    Ok((used >= u64::from(allowance)).then(|| {
        format!(
            "the {} plan's {allowance} WhatsApp messages this month are used",
            plan.name
        )
    }))
}

/// The `AnswerInbound` job: answers the message through the answer engine and sends the reply
/// from the asset it came to. Runs once per message: the message is marked answered after,
/// with the messages sent counted on the usage ledger (`channel_message` by channel) in the
/// same transaction.
pub(super) async fn answer(
    state: &AppState,
    tenant: TenantId,
    message_id: InboundMessageId,
) -> Result<(), JobError> {
    let message = match state.store.get_inbound(tenant, message_id).await {
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
    let ctx = crate::tenancy::TenantCtx::for_job(
        state,
        tenant,
        <super::jobs::AnswerInbound as crate::jobs::Job>::NAME,
    )
    .await
    .map_err(|e| JobError::retry_because("tenant", e))?;
    // One customer's messages are answered one at a time, oldest first: their earlier
    // messages still waiting go before this one (each is finished once, whichever job gets
    // to it), so answers arrive in order and each sees the turns before it.
    let _turn = state
        .customer_turns
        .lock(&format!("{}:{}", connection.id, message.customer))
        .await;
    let waiting = state
        .store
        .unanswered_inbound(tenant, connection.id, &message.customer, 20)
        .await?;
    for earlier in waiting.into_iter().take_while(|m| m.id != message.id) {
        let id = earlier.id;
        if let Err(e) = answer_one(state, &ctx, &connection, earlier).await {
            let why = e.chain();
            // Its own job retries it; this one does not wait for it.
            tracing::warn!(inbound.id = %id, error = %why, "an earlier message could not be answered yet");
            break;
        }
    }
    match state.store.get_inbound(tenant, message.id).await {
        Ok(m) if m.answered_at.is_none() => answer_one(state, &ctx, &connection, m).await,
        Ok(_) | Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Answers one customer message (or queues it for a person) and sends the reply.
async fn answer_one(
    state: &AppState,
    ctx: &crate::tenancy::TenantCtx,
    connection: &ChannelConnection,
    message: InboundMessage,
) -> Result<(), JobError> {
    let tenant = ctx.tenant_id();
    let finish = |error: Option<String>, sent: usize| {
        let usage: Vec<_> = metering::channel_messages(tenant, connection.kind, sent, Utc::now())
            .into_iter()
            .collect();
        let id = message.id;
        async move {
            state
                .store
                .finish_inbound(tenant, id, Utc::now(), error.as_deref(), &usage)
                .await
        }
    };
    // The channel's rules (service window, template, allowance): `super::policy`.
    let policy = super::policy::decide(
        connection,
        message.sent_at,
        Utc::now(),
        allowance_used(state, ctx, connection.kind),
    )
    .await?;
    let outside_window = policy == Policy::Template;
    let text = message.content.text().map(str::to_owned);
    let customer = Customer {
        connection: Some(connection.id),
        id: message.customer.clone(),
    };
    let question = |text: String| crate::answer::Question {
        message: text,
        conversation_id: None,
        channel: connection.kind,
        history: Vec::new(),
        customer: Some(customer.clone()),
    };
    if let Policy::Queue { reason, why } = policy {
        // The bot may not answer: the message goes to the inbox with the reason.
        if let Some(text) = message
            .content
            .for_a_person()
            .filter(|t| !t.trim().is_empty())
        {
            let to = Destination {
                conversation_id: None,
                channel: connection.kind,
                customer: Some(&customer),
            };
            conversations::queue_for_agent(state, ctx, to, &text, reason)
                .await
                .map_err(|e| JobError::retry_because("queueing for an agent", e))?;
        }
        finish(Some(why), 0).await?;
        return Ok(());
    }
    let reply = match (&text, &message.content) {
        _ if outside_window => String::new(),
        (Some(text), _) => {
            let answer = crate::answer::ask(state, ctx, question(text.clone()), None)
                .await
                .map_err(|e| JobError::retry_because("answering", e))?;
            answer.text
        }
        (None, InboundContent::Media { .. }) => MEDIA_REPLY.to_owned(),
        _ => {
            finish(None, 0).await?;
            return Ok(());
        }
    };
    let sent = super::send(
        state,
        connection,
        &message.customer,
        if outside_window {
            super::Reply::Template
        } else {
            super::Reply::Text(&reply)
        },
    )
    .await;
    let (error, count) = match sent {
        Ok(ids) => {
            let now = Utc::now();
            let count = ids.len();
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
            (None, count)
        }
        Err(SendError::Unavailable(e)) => return Err(JobError::retry(format!("sending: {e}"))),
        Err(SendError::Rejected { code, message }) => {
            super::note_send_failure(state, connection, code).await;
            (Some(format!("{code} {message}")), 0)
        }
    };
    let delivered = error.is_none();
    finish(error, count).await?;
    tracing::info!(
        inbound.id = %message.id,
        channel = connection.kind.as_str(),
        delivered,
        parts = count,
        "channel message answered"
    );
    Ok(())
}

/// Meta's data-deletion callback: deletes, in every tenant, the conversations and messages of
/// the person the verified `signed_request` names on Meta's channels, and records what was
/// deleted under a fresh confirmation code.
pub async fn delete_meta_user(
    state: &AppState,
    signed_request: &str,
) -> Result<cortex_core::channels::DataDeletion, IntakeError> {
    let secret = state
        .settings
        .providers
        .meta_app_secret
        .as_ref()
        .ok_or(IntakeError::NotConfigured)?;
    let user = meta::signed_request_user(secret.expose().as_bytes(), signed_request)
        .ok_or(IntakeError::BadSignature)?;
    for _ in 0..3 {
        let code = deletion_code();
        match state
            .store
            .delete_customer_data(Provider::Meta, &user, &code, Utc::now())
            .await
        {
            Ok(done) => {
                tracing::info!(
                    deletion.conversations = done.conversations,
                    deletion.messages = done.messages,
                    "meta data deletion done"
                );
                return Ok(done);
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(_) => return Err(IntakeError::Storage),
        }
    }
    Err(IntakeError::Storage)
}

/// 20 characters of A–Z and 0–9 (≈ 103 bits): unguessable, as the status page is public.
/// The data deletion a provider asked for under `code` (the confirmation code it showed the
/// person, 20 letters and digits), for its public status page; `None` for any other code.
pub async fn data_deletion(
    state: &AppState,
    code: &str,
) -> Result<Option<cortex_core::channels::DataDeletion>, StoreError> {
    if code.len() != 20 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    state.store.get_data_deletion(code).await
}

fn deletion_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}
