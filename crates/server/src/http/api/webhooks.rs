//! The providers' webhooks. `/webhooks/meta`: the one endpoint Meta calls for every tenant's
//! WhatsApp, Messenger and Instagram (`GET` answers the subscription handshake).
//! `/webhooks/twilio` and `/webhooks/twilio/status`: Twilio's WhatsApp messages and delivery
//! statuses. `/webhooks/manychat/{page_id}`: a ManyChat page's flows. Each checks the request
//! on its raw bytes, stores each message once and acknowledges at once (answers follow from a
//! job).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::channels::inbound::{self, IntakeError};
use crate::channels::meta;
use crate::http::error::{ApiError, ErrorBody};
use crate::infra::manychat;

#[derive(Deserialize, IntoParams)]
pub struct HubParams {
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode")]
    pub mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// Meta's subscription handshake
///
/// Echoes `hub.challenge` when `hub.verify_token` is `META_VERIFY_TOKEN`.
#[utoipa::path(get, path = "/webhooks/meta", tag = "webhooks", params(HubParams),
    responses(
        (status = 200, description = "The challenge, as text"),
        (status = 403, description = "`forbidden`: wrong verify token", body = ErrorBody),
    ))]
pub async fn meta_verify(State(state): State<AppState>, Query(q): Query<HubParams>) -> Response {
    let expected = state
        .settings
        .providers
        .meta_verify_token
        .as_ref()
        .map(|t| t.expose().to_owned())
        .unwrap_or_default();
    match meta::challenge(
        q.mode.as_deref(),
        q.verify_token.as_deref(),
        q.challenge.as_deref(),
        &expected,
    ) {
        Some(challenge) => (StatusCode::OK, challenge.to_owned()).into_response(),
        None => {
            ApiError::new(StatusCode::FORBIDDEN, "forbidden", "verification failed").into_response()
        }
    }
}

/// Meta's webhook deliveries
///
/// Verified with `X-Hub-Signature-256` (HMAC-SHA256 of the raw body under `META_APP_SECRET`);
/// each message is routed by its asset id, stored once per provider message id, and answered
/// by a background job.
#[utoipa::path(post, path = "/webhooks/meta", tag = "webhooks",
    request_body(content = Object, description = "Meta's webhook payload (`object`, `entry`)"),
    responses(
        (status = 200, description = "Taken in (`EVENT_RECEIVED`)"),
        (status = 400, description = "`invalid_payload`", body = ErrorBody),
        (status = 401, description = "`invalid_signature`: nothing was stored", body = ErrorBody),
        (status = 404, description = "`not_configured`", body = ErrorBody),
    ))]
pub async fn meta_deliver(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    match inbound::intake(&state, &body, signature).await {
        Ok(_) => (StatusCode::OK, "EVENT_RECEIVED").into_response(),
        Err(e) => refusal(e),
    }
}

fn refusal(e: IntakeError) -> Response {
    let message = e.to_string();
    match e {
        IntakeError::NotConfigured => {
            ApiError::new(StatusCode::NOT_FOUND, "not_configured", message)
        }
        IntakeError::BadSignature => {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", message)
        }
        IntakeError::BadKey => ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message),
        IntakeError::BadPayload(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", message)
        }
        IntakeError::Storage => ApiError::internal(anyhow::anyhow!("storing a webhook delivery")),
    }
    .into_response()
}

/// The empty TwiML document: Twilio sends nothing more on its own.
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

async fn twilio(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    status_callback: bool,
) -> Response {
    // The signature covers the address Twilio called: the public base URL, path and query.
    let url = format!(
        "{}{}",
        state.settings.app_url.trim_end_matches('/'),
        uri.path_and_query().map_or(uri.path(), |p| p.as_str())
    );
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    match inbound::intake_twilio(state, &url, body, signature, status_callback).await {
        Ok(_) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            EMPTY_TWIML,
        )
            .into_response(),
        Err(e) => refusal(e),
    }
}

/// Twilio's WhatsApp messages
///
/// Form-encoded, verified with `X-Twilio-Signature` (HMAC-SHA1 of `APP_URL` + path + query and
/// the sorted parameters, under the auth token of the account the number `To` belongs to);
/// routed by that number, stored once per `MessageSid`, answered by a background job.
#[utoipa::path(post, path = "/webhooks/twilio", tag = "webhooks",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's message parameters (`MessageSid`, `AccountSid`, `From`, `To`, `Body`, `NumMedia`, …)"),
    responses(
        (status = 200, description = "Taken in (or not ours): an empty TwiML `<Response>`"),
        (status = 400, description = "`invalid_payload`", body = ErrorBody),
        (status = 401, description = "`invalid_signature`: nothing was stored", body = ErrorBody),
    ))]
pub async fn twilio_deliver(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    twilio(&state, &uri, &headers, &body, false).await
}

/// Twilio's delivery statuses
///
/// The `StatusCallback` of the messages CortexLayer sends: `MessageStatus` (sent, delivered,
/// read, failed, undelivered) moves the sent message forward. Signed like messages.
#[utoipa::path(post, path = "/webhooks/twilio/status", tag = "webhooks",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Twilio's status parameters (`MessageSid`, `MessageStatus`, `ErrorCode`, `From`, …)"),
    responses(
        (status = 200, description = "Applied (or not ours)"),
        (status = 400, description = "`invalid_payload`", body = ErrorBody),
        (status = 401, description = "`invalid_signature`", body = ErrorBody),
    ))]
pub async fn twilio_status(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    twilio(&state, &uri, &headers, &body, true).await
}

/// ManyChat's External Request
///
/// Per connection: authenticated by the page's ManyChat API key (`Authorization: Bearer …`),
/// the subscriber's message is stored and answered by a background job through ManyChat's
/// send API; the reply at once is the connection's acknowledgement as a dynamic block.
#[utoipa::path(post, path = "/webhooks/manychat/{page_id}", tag = "webhooks",
    params(("page_id" = String, Path, description = "The connection's ManyChat page id")),
    request_body(content = Object,
        description = "`{subscriber_id, text, message_id?}` or ManyChat's Full Contact Data (`id`, `last_input_text`, `last_interaction`)"),
    responses(
        (status = 200, description = "Taken in: `{version: v2, content: {messages}}` with the acknowledgement"),
        (status = 400, description = "`invalid_payload`", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: unknown page or wrong key", body = ErrorBody),
    ))]
pub async fn manychat_deliver(
    State(state): State<AppState>,
    Path(page_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match inbound::intake_manychat(&state, &page_id, &body, authorization).await {
        Ok(ack) => {
            let texts: Vec<String> = ack.into_iter().collect();
            Json(manychat::dynamic_block(&texts)).into_response()
        }
        Err(e) => refusal(e),
    }
}
