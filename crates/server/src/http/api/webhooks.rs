//! `/webhooks/meta`: the one endpoint Meta calls for every tenant's WhatsApp, Messenger and
//! Instagram. `GET` answers the subscription handshake; `POST` checks the signature on the raw
//! bytes, stores each message once and acknowledges at once (answers follow from a job).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::app::AppState;
use crate::channels::inbound::{self, IntakeError};
use crate::channels::meta;
use crate::http::error::{ApiError, ErrorBody};

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
        Err(e) => {
            let message = e.to_string();
            match e {
                IntakeError::NotConfigured => {
                    ApiError::new(StatusCode::NOT_FOUND, "not_configured", message)
                }
                IntakeError::BadSignature => {
                    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", message)
                }
                IntakeError::BadPayload(_) => {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", message)
                }
                IntakeError::Storage => {
                    ApiError::internal(anyhow::anyhow!("storing a webhook delivery"))
                }
            }
            .into_response()
        }
    }
}
