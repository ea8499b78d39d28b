//! `/api/v1/channels`: the messaging channels a tenant connects.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cortex_core::channels::{ChannelConnection, Provider};
use cortex_core::conversations::Channel;
use cortex_core::ids::OauthFlowId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::app::AppState;
use crate::channels::{self, Connect, oauth};
use crate::http::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::http::extract::{ApiJson, ApiQuery, Auth, path_id};

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
    #[schema(min_length = 1, max_length = 64, pattern = r"^\+?[0-9]{1,64}$")]
    pub asset_id: String,
    /// Meta: a long-lived access token for the asset. Twilio: the account's auth token (leave
    /// out, with `account_sid`, to use the platform's Twilio account). ManyChat: the API key,
    /// which also authenticates ManyChat's calls to the webhook. Sealed at rest, never shown
    /// again.
    #[schema(min_length = 20, max_length = 1024)]
    pub access_token: Option<String>,
    /// Twilio: the account SID (`AC…`).
    pub account_sid: Option<String>,
    /// Defaults to the kind and the asset id (`whatsapp 1065…`).
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// WhatsApp: an approved message template sent instead of free text when the customer's
    /// last message is more than 24 hours old (otherwise such replies are not sent).
    pub template: Option<TemplateRequest>,
    /// ManyChat: what the webhook answers at once, before the answer follows (e.g. "OK, bien
    /// reçu"); nothing when absent.
    #[schema(max_length = 640)]
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
    /// `active`; `token_invalid` once the provider refused the credential on a send (connect
    /// the channel again with a working one); `unverified` for a connection made before
    /// control of assets was checked (it gives way to a tenant who proves control).
    pub status: &'static str,
    /// When a call to the provider with the credential proved it controls the asset.
    pub verified_at: Option<DateTime<Utc>>,
    /// When the provider refused the credential.
    pub token_invalid_at: Option<DateTime<Utc>>,
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
            status: if c.token_invalid_at.is_some() {
                "token_invalid"
            } else if c.verified_at.is_none() {
                "unverified"
            } else {
                "active"
            },
            verified_at: c.verified_at,
            token_invalid_at: c.token_invalid_at,
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
/// Owners and admins; WhatsApp, Messenger and Instagram need the Growth or Scale plan. The
/// connection is stored only after a call to the provider with the given credential proves
/// it controls the asset: Meta reads the phone number by id, or the token must be the page's
/// own (Instagram: the linked page's); Twilio's account must list the number as its own;
/// ManyChat's API key must belong to the page. An asset held by another tenant's claim that
/// was never proven, or whose credential no longer reaches it, is released to the proven
/// claim (audited in both tenants). The platform's Twilio numbers are assigned by the
/// operator (`POST /api/v1/admin/tenants/{id}/channels`).
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", security(("bearer" = [])),
    request_body = ConnectChannelRequest,
    responses(
        (status = 201, description = "Connected", body = ChannelView),
        (status = 403, description = "`plan_feature_unavailable` or `forbidden`", body = ErrorBody),
        (status = 409, description = "`channel_taken`", body = ErrorBody),
        (status = 422, description = "`validation_failed`, or `channel_not_verified`: the provider did not accept the credential for this asset (the message says why)", body = ErrorBody),
        (status = 502, description = "`provider_error`: the provider did not answer the check", body = ErrorBody),
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignNumberRequest {
    /// A WhatsApp sender of the platform's Twilio account (`TWILIO_ACCOUNT_SID`), in E.164.
    pub number: String,
    pub name: Option<String>,
    /// An approved template's Content SID (`HX…`) for replies outside the 24-hour window.
    pub template: Option<String>,
}

/// Assign one of the platform's Twilio numbers to a tenant
///
/// Operators only. The platform's Twilio account must list the number as its own; tenants
/// cannot claim these numbers themselves.
#[utoipa::path(post, path = "/api/v1/admin/tenants/{id}/channels", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    request_body = AssignNumberRequest,
    responses(
        (status = 201, description = "Connected to the tenant", body = ChannelView),
        (status = 403, description = "`forbidden` for anyone but a platform admin, `plan_feature_unavailable`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`channel_taken`", body = ErrorBody),
        (status = 422, description = "`validation_failed`, `channel_not_verified`", body = ErrorBody),
    ))]
pub async fn assign_platform_number(
    State(state): State<AppState>,
    crate::http::extract::Operator(op): crate::http::extract::Operator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignNumberRequest>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    let c = channels::assign_platform_number(
        &state,
        &op,
        path_id(&id)?,
        req.number,
        req.name,
        req.template.map(|sid| (sid, String::new())),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ChannelView::new(c, &state.settings.app_url)),
    ))
}

/// Disconnect a channel
///
/// Removes the app's webhook subscription from the page or WhatsApp Business Account at
/// Meta unless another connection still uses it.
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartOauthRequest {
    /// `whatsapp`, `messenger` or `instagram`.
    #[schema(value_type = String)]
    pub kind: Channel,
    /// Where the browser returns after Meta, a path of this site (default `/channels`); it
    /// gets `?meta_oauth=<flow id>`.
    pub return_path: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OauthStartView {
    pub flow_id: Uuid,
    /// Meta's sign-in dialog: open it in the same browser (it carries the cookie this response
    /// sets).
    pub authorize_url: String,
    pub expires_at: DateTime<Utc>,
}

/// Connect through Meta's sign-in
///
/// Owners and admins, Growth or Scale, when the operator configured a Meta app. Returns Meta's
/// dialog address and sets a cookie binding the flow to this browser.
#[utoipa::path(post, path = "/api/v1/channels/meta/oauth", tag = "channels", security(("bearer" = [])),
    request_body = StartOauthRequest,
    responses(
        (status = 201, description = "Started: open `authorize_url`", body = OauthStartView),
        (status = 403, description = "`plan_feature_unavailable` or `forbidden`", body = ErrorBody),
        (status = 404, description = "`not_configured`", body = ErrorBody),
    ))]
pub async fn start_meta_oauth(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    ApiJson(req): ApiJson<StartOauthRequest>,
) -> ApiResult<Response> {
    let started = oauth::start(&state, &ctx, req.kind, req.return_path).await?;
    let cookie = oauth::browser_cookie(&started);
    let mut response = (
        StatusCode::CREATED,
        Json(OauthStartView {
            flow_id: started.flow.0,
            authorize_url: started.authorize_url,
            expires_at: started.expires_at,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Deserialize, IntoParams)]
pub struct OauthCallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by Meta when the person declined.
    pub error: Option<String>,
    pub error_reason: Option<String>,
    pub error_description: Option<String>,
}

/// Meta's sign-in comes back
///
/// Where Meta's dialog sends the browser. Checks the state (single use, ten minutes) and the
/// browser's cookie, exchanges the code for a long-lived token, lists the assets it reaches
/// (kept sealed) and sends the browser back to the return path with `?meta_oauth=<flow id>`.
#[utoipa::path(get, path = "/api/v1/channels/meta/oauth/callback", tag = "channels",
    params(OauthCallbackParams),
    responses(
        (status = 303, description = "Back to the dashboard"),
        (status = 400, description = "`invalid_state` or `oauth_denied`", body = ErrorBody),
        (status = 502, description = "`provider_error`: Meta refused the code or the listing", body = ErrorBody),
    ))]
pub async fn meta_oauth_callback(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<OauthCallbackParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(error) = q.error {
        let reason: String = q
            .error_reason
            .or(q.error_description)
            .unwrap_or(error)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ' ')
            .take(100)
            .collect();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::OauthDenied,
            format!("Meta sign-in was not completed: {reason}"),
        ));
    }
    let browser = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == oauth::BROWSER_COOKIE)
        .map(|(_, v)| v.to_owned());
    let location = oauth::callback(
        &state,
        q.code.as_deref().unwrap_or(""),
        q.state.as_deref().unwrap_or(""),
        browser.as_deref(),
    )
    .await?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    // The cookie has done its work.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{}=; Path={}; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
        oauth::BROWSER_COOKIE,
        oauth::CALLBACK_PATH
    )) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Serialize, ToSchema)]
pub struct OfferedAssetView {
    pub asset_id: String,
    pub name: String,
    /// Connected already, here or to another account.
    pub connected: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OauthFlowView {
    pub flow_id: Uuid,
    pub kind: String,
    /// `pending` until Meta sent the browser back, then `ready`.
    pub status: String,
    pub assets: Vec<OfferedAssetView>,
    pub expires_at: DateTime<Utc>,
}

/// What a Meta sign-in reaches
///
/// The member who started it: the pages, Instagram accounts or WhatsApp numbers to choose from
/// (never their tokens).
#[utoipa::path(get, path = "/api/v1/channels/meta/oauth/{flow_id}", tag = "channels", security(("bearer" = [])),
    params(("flow_id" = Uuid, Path, description = "The flow")),
    responses(
        (status = 200, description = "The flow", body = OauthFlowView),
        (status = 404, description = "`not_found`: unknown, expired, or another member's", body = ErrorBody),
    ))]
pub async fn get_meta_oauth(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OauthFlowView>> {
    let id: OauthFlowId = path_id(&id)?;
    let (flow, assets) = oauth::offer(&state, &ctx, id).await?;
    Ok(Json(OauthFlowView {
        flow_id: flow.id.0,
        kind: flow.kind.to_string(),
        status: if assets.is_some() { "ready" } else { "pending" }.into(),
        assets: assets
            .into_iter()
            .flatten()
            .map(|a| OfferedAssetView {
                asset_id: a.asset_id,
                name: a.name,
                connected: a.connected,
            })
            .collect(),
        expires_at: flow.expires_at,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseAssetsRequest {
    /// 1 to 20 of the flow's assets.
    pub asset_ids: Vec<String>,
    /// WhatsApp: the approved template for replies past the 24-hour window.
    pub template: Option<TemplateRequest>,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectedAssetView {
    #[serde(flatten)]
    pub channel: ChannelView,
    /// Whether Meta took the webhook subscription for it.
    pub subscribed: bool,
    pub subscribe_error: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectedAssetsView {
    pub data: Vec<ConnectedAssetView>,
}

/// Connect assets from a Meta sign-in
///
/// Connects the chosen assets with the tokens Meta gave, subscribes the app to their webhooks
/// and ends the flow.
#[utoipa::path(post, path = "/api/v1/channels/meta/oauth/{flow_id}/connect", tag = "channels", security(("bearer" = [])),
    params(("flow_id" = Uuid, Path, description = "The flow")),
    request_body = ChooseAssetsRequest,
    responses(
        (status = 201, description = "Connected", body = ConnectedAssetsView),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`oauth_pending` or `channel_taken`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ))]
pub async fn choose_meta_assets(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ChooseAssetsRequest>,
) -> ApiResult<(StatusCode, Json<ConnectedAssetsView>)> {
    let id: OauthFlowId = path_id(&id)?;
    let chosen = oauth::choose(
        &state,
        &ctx,
        id,
        &req.asset_ids,
        req.template
            .map(|t| (t.name, t.language.unwrap_or_default())),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(ConnectedAssetsView {
            data: chosen
                .into_iter()
                .map(|(c, subscribed)| ConnectedAssetView {
                    channel: ChannelView::new(c, &state.settings.app_url),
                    subscribed: subscribed.is_ok(),
                    subscribe_error: subscribed.err(),
                })
                .collect(),
        }),
    ))
}
