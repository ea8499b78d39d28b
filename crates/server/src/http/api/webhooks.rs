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
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::channels::inbound::{self, IntakeError};
use crate::channels::meta;
use crate::http::error::{ApiError, ErrorBody, ErrorCode};
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
        None => ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "verification failed",
        )
        .into_response(),
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
            ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotConfigured, message)
        }
        IntakeError::BadSignature => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidSignature,
            message,
        ),
        IntakeError::BadKey => ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            message,
        ),
        IntakeError::BadPayload(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidPayload, message)
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

#[derive(Deserialize, ToSchema)]
pub struct DataDeletionForm {
    /// `<signature>.<payload>`, base64url: HMAC-SHA256 of the payload under `META_APP_SECRET`.
    pub signed_request: String,
}

#[derive(Serialize, ToSchema)]
pub struct DataDeletionReceipt {
    /// Where the person can see what was deleted.
    pub url: String,
    pub confirmation_code: String,
}

/// Meta's data-deletion callback
///
/// Verifies `signed_request` with the app secret, deletes that person's conversations and
/// messages on Meta's channels in every tenant, and answers with the status page and its code.
#[utoipa::path(post, path = "/webhooks/meta/data-deletion", tag = "webhooks",
    request_body(content = DataDeletionForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Deleted", body = DataDeletionReceipt),
        (status = 400, description = "`invalid_payload`: no `signed_request`", body = ErrorBody),
        (status = 401, description = "`invalid_signature`", body = ErrorBody),
        (status = 404, description = "`not_configured`", body = ErrorBody),
    ))]
pub async fn meta_data_deletion(State(state): State<AppState>, body: Bytes) -> Response {
    let Some(signed_request) = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "signed_request")
        .map(|(_, v)| v.into_owned())
    else {
        return refusal(IntakeError::BadPayload(
            "the form has no signed_request".into(),
        ));
    };
    match inbound::delete_meta_user(&state, &signed_request).await {
        Ok(done) => Json(DataDeletionReceipt {
            url: format!(
                "{}/data-deletion/{}",
                state.settings.app_url.trim_end_matches('/'),
                done.code
            ),
            confirmation_code: done.code,
        })
        .into_response(),
        Err(e) => refusal(e),
    }
}

#[derive(Serialize, ToSchema)]
pub struct DataDeletionStatus {
    pub confirmation_code: String,
    /// `completed`.
    pub status: String,
    pub conversations_deleted: u64,
    pub messages_deleted: u64,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A data-deletion request's status
///
/// Public (the code is unguessable): HTML for people, JSON with `Accept: application/json`.
#[utoipa::path(get, path = "/data-deletion/{code}", tag = "webhooks",
    params(("code" = String, Path, description = "The confirmation code")),
    responses(
        (status = 200, description = "What was deleted", body = DataDeletionStatus),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn data_deletion_status(
    State(state): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Response {
    let found = match crate::channels::inbound::data_deletion(&state, &code).await {
        Ok(found) => found,
        Err(e) => return ApiError::internal(e.into()).into_response(),
    };
    let Some(d) = found else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "no deletion request has this code",
        )
        .into_response();
    };
    let status = DataDeletionStatus {
        confirmation_code: d.code,
        status: if d.completed_at.is_some() {
            "completed"
        } else {
            "pending"
        }
        .into(),
        conversations_deleted: d.conversations,
        messages_deleted: d.messages,
        requested_at: d.requested_at,
        completed_at: d.completed_at,
    };
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        return Json(status).into_response();
    }
    let when = status
        .completed_at
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "not yet".into());
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Data deletion {code}</title></head>\
         <body><main><h1>Data deletion request {code}</h1>\
         <p>Status: <strong>{state}</strong> ({when}).</p>\
         <p>Conversations deleted: {c}. Messages deleted: {m}.</p></main></body></html>",
        code = status.confirmation_code,
        state = status.status,
        c = status.conversations_deleted,
        m = status.messages_deleted,
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}
