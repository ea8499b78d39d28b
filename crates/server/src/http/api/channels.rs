//! `/api/v1/channels`: the messaging channels a tenant connects.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use cortex_core::answer::Channel;
use cortex_core::channels::{ChannelConnection, Provider};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::channels::{self, Connect};
use crate::http::error::{ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, Auth, path_id};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectChannelRequest {
    /// `whatsapp`, `messenger`, `instagram` or `manychat`.
    #[schema(value_type = String)]
    pub kind: Channel,
    /// `meta` (default) or `twilio` (WhatsApp through a Twilio sender); `manychat` for kind
    /// `manychat`.
    #[schema(value_type = Option<String>)]
    pub provider: Option<Provider>,
    /// Meta: the WhatsApp phone number id, Facebook page id or Instagram account id. Twilio:
    /// the WhatsApp sender's number in E.164 (`+14155238886`). ManyChat: the page id.
    pub asset_id: String,
    /// Meta: a long-lived access token for the asset. Twilio: the account's auth token (leave
    /// out, with `account_sid`, to use the platform's Twilio account). ManyChat: the API key,
    /// which also authenticates ManyChat's calls to the webhook. Sealed at rest, never shown
    /// again.
    pub access_token: Option<String>,
    /// Twilio: the account SID (`AC…`).
    pub account_sid: Option<String>,
    /// Defaults to "<kind> <asset id>".
    pub name: Option<String>,
    /// WhatsApp: an approved message template sent instead of free text when the customer's
    /// last message is more than 24 hours old (otherwise such replies are not sent).
    pub template: Option<TemplateRequest>,
    /// ManyChat: what the webhook answers at once, before the answer follows (e.g. "OK, bien
    /// reçu"); nothing when absent.
    pub ack_text: Option<String>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRequest {
    /// Meta: the template's name. Twilio: its Content SID (`HX…`).
    pub name: String,
    /// Meta: the language code, e.g. `en_US`. Not used on Twilio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    pub id: Uuid,
    pub kind: String,
    pub provider: String,
    pub asset_id: String,
    /// Twilio: the account SID.
    pub account_sid: Option<String>,
    pub name: String,
    /// The credential's last four characters (`platform account` for the platform's Twilio
    /// account).
    pub token_hint: String,
    pub template: Option<TemplateRequest>,
    pub ack_text: Option<String>,
    /// ManyChat: the address to call from the flow's External Request, with the API key as
    /// `Authorization: Bearer …`.
    pub webhook_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl ChannelView {
    fn new(c: ChannelConnection, app_url: &str) -> Self {
        Self {
            id: c.id.0,
            kind: c.kind.to_string(),
            provider: c.provider.to_string(),
            webhook_url: (c.provider == Provider::ManyChat).then(|| {
                format!(
                    "{}/webhooks/manychat/{}",
                    app_url.trim_end_matches('/'),
                    c.asset_id
                )
            }),
            asset_id: c.asset_id,
            account_sid: c.account_id,
            name: c.name,
            token_hint: c.token_hint,
            template: c.template.map(|(name, language)| TemplateRequest {
                name,
                language: Some(language).filter(|l| !l.is_empty()),
            }),
            ack_text: c.ack_text,
            created_at: c.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ChannelsView {
    pub data: Vec<ChannelView>,
}

/// Connect a channel
///
/// Owners and admins; WhatsApp, Messenger and Instagram need the Growth or Scale plan.
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", security(("bearer" = [])),
    request_body = ConnectChannelRequest,
    responses(
        (status = 201, description = "Connected", body = ChannelView),
        (status = 403, description = "`plan_feature_unavailable` or `forbidden`", body = ErrorBody),
        (status = 409, description = "`channel_taken`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
pub async fn connect_channel(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<ConnectChannelRequest>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    let c = channels::connect(
        &state,
        &ctx,
        Connect {
            kind: req.kind,
            provider: req.provider,
            asset_id: req.asset_id,
            access_token: req.access_token,
            account_id: req.account_sid,
            name: req.name,
            template: req
                .template
                .map(|t| (t.name, t.language.unwrap_or_default())),
            ack_text: req.ack_text,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ChannelView::new(c, &state.settings.app_url)),
    ))
}

/// List connected channels
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels", security(("bearer" = [])),
    responses((status = 200, description = "Oldest first", body = ChannelsView)))]
pub async fn list_channels(
    State(state): State<AppState>,
    Auth(ctx): Auth,
) -> ApiResult<Json<ChannelsView>> {
    let data = channels::list(&state, &ctx).await?;
    Ok(Json(ChannelsView {
        data: data
            .into_iter()
            .map(|c| ChannelView::new(c, &state.settings.app_url))
            .collect(),
    }))
}

/// Disconnect a channel
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Channel id")),
    responses(
        (status = 204, description = "Disconnected"),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn disconnect_channel(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    channels::disconnect(&state, &ctx, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
