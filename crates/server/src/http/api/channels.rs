//! `/api/v1/channels`: the messaging channels a tenant connects.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use cortex_core::answer::Channel;
use cortex_core::channels::ChannelConnection;
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
    /// `whatsapp`, `messenger` or `instagram`.
    #[schema(value_type = String)]
    pub kind: Channel,
    /// The WhatsApp phone number id, Facebook page id or Instagram account id.
    pub asset_id: String,
    /// A long-lived access token for the asset; sealed at rest and never shown again.
    pub access_token: String,
    /// Defaults to "<kind> <asset id>".
    pub name: Option<String>,
    /// WhatsApp: an approved message template sent instead of free text when the customer's
    /// last message is more than 24 hours old (otherwise such replies are not sent).
    pub template: Option<TemplateRequest>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRequest {
    pub name: String,
    /// e.g. `en_US`.
    pub language: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    pub id: Uuid,
    pub kind: String,
    pub asset_id: String,
    pub name: String,
    /// The token's last four characters.
    pub token_hint: String,
    pub template: Option<TemplateRequest>,
    pub created_at: DateTime<Utc>,
}

impl From<ChannelConnection> for ChannelView {
    fn from(c: ChannelConnection) -> Self {
        Self {
            id: c.id.0,
            kind: c.kind.to_string(),
            asset_id: c.asset_id,
            name: c.name,
            token_hint: c.token_hint,
            template: c
                .template
                .map(|(name, language)| TemplateRequest { name, language }),
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
            asset_id: req.asset_id,
            access_token: req.access_token,
            name: req.name,
            template: req.template.map(|t| (t.name, t.language)),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(c.into())))
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
        data: data.into_iter().map(Into::into).collect(),
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
