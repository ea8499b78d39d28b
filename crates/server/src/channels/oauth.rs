//! Connecting Meta assets through Meta's sign-in dialog, when the operator configured a Meta
//! app (`META_APP_ID`, `META_APP_SECRET`):
//!
//! 1. [`start`]: an owner or admin asks for the dialog's address. The flow gets a single-use
//!    `state` (against CSRF: only its SHA-256 is stored) and a secret cookie for the member's
//!    browser (its SHA-256 too), so that a dialog someone else started cannot connect assets
//!    to their account. Ten minutes to finish.
//! 2. [`callback`]: Meta sends the browser back with a code. The state must be unused and
//!    unexpired and the cookie the one set at the start; the code is exchanged for a
//!    long-lived token, the assets it reaches (pages, Instagram accounts, WhatsApp numbers)
//!    are listed and kept sealed with their tokens; the browser returns to the dashboard.
//! 3. [`offer`] / [`choose`]: the member sees the assets (names and ids, never tokens) and
//!    connects some; the app is subscribed to their webhooks and the flow is spent.

use chrono::{Duration, Utc};
use cortex_core::StoreError;
use cortex_core::channels::{ChannelConnection, OauthFlow};
use cortex_core::conversations::Channel;
use cortex_core::ids::OauthFlowId;

use super::{ChannelError, Connect, Result, invalid};
use crate::app::AppState;
use crate::infra::meta_graph::MetaAsset;
use crate::infra::tokens::{random_token, sha256_hex};
use crate::tenancy::Action;
use crate::tenancy::TenantCtx;

/// The cookie that binds a flow to the browser that started it.
pub const BROWSER_COOKIE: &str = "cortex_meta_oauth";
/// Where the cookie is sent: the callback only.
pub const CALLBACK_PATH: &str = "/api/v1/channels/meta/oauth/callback";
const START_MINUTES: i64 = 10;
const CHOOSE_MINUTES: i64 = 30;

/// What each kind of asset needs Meta to grant.
fn scopes(kind: Channel) -> &'static str {
    match kind {
        Channel::WhatsApp => {
            "whatsapp_business_management,whatsapp_business_messaging,business_management"
        }
        Channel::Instagram => {
            "instagram_basic,instagram_manage_messages,pages_show_list,pages_manage_metadata,business_management"
        }
        _ => "pages_show_list,pages_messaging,pages_manage_metadata,business_management",
    }
}

fn app(state: &AppState) -> Result<(String, String)> {
    let p = &state.settings.providers;
    match (&p.meta_app_id, &p.meta_app_secret) {
        (Some(id), Some(secret)) if !id.is_empty() => Ok((id.clone(), secret.expose().to_owned())),
        _ => Err(ChannelError::OauthNotConfigured),
    }
}

fn redirect_uri(state: &AppState) -> String {
    format!(
        "{}{CALLBACK_PATH}",
        state.settings.app_url.trim_end_matches('/')
    )
}

fn assets_context(flow: &OauthFlow) -> String {
    format!("tenant:{}/oauth:{}/assets", flow.tenant_id, flow.id)
}

/// The member who started a flow (operators cannot: the flow is a person's browser).
fn member(ctx: &TenantCtx) -> Result<cortex_core::ids::UserId> {
    Ok(ctx.require_member(Action::ConnectChannelsWithMeta)?.id)
}

pub struct Started {
    pub flow: OauthFlowId,
    /// Meta's dialog, to open in the member's browser.
    pub authorize_url: String,
    /// The value of [`BROWSER_COOKIE`] to set in that browser.
    pub browser_secret: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// The `Set-Cookie` value that binds a started flow to the member's browser: sent only to
/// the callback, for the flow's ten minutes.
pub fn browser_cookie(started: &Started) -> String {
    format!(
        "{BROWSER_COOKIE}={}; Path={CALLBACK_PATH}; Max-Age=600; HttpOnly; Secure; SameSite=Lax",
        started.browser_secret
    )
}

/// Starts a flow for `kind` assets; the member comes back to `return_path` (a path of this
/// site, `/channels` by default) after Meta.
pub async fn start(
    state: &AppState,
    ctx: &TenantCtx,
    kind: Channel,
    return_path: Option<String>,
) -> Result<Started> {
    let user = member(ctx)?;
    if !super::CONNECTABLE.contains(&kind) || kind == Channel::ManyChat {
        return Err(invalid("kind", "must be whatsapp, messenger or instagram"));
    }
    super::plan_allows_channels(ctx)?;
    let (app_id, _) = app(state)?;
    let return_path = return_path.unwrap_or_else(|| "/channels".into());
    // A path of this site only: no scheme, no host, no `//`, nothing to escape.
    let safe = return_path.starts_with('/')
        && !return_path.starts_with("//")
        && return_path.len() <= 200
        && return_path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
    if !safe {
        return Err(invalid(
            "return_path",
            "must be a path of this site, like /channels",
        ));
    }
    let secret_state = random_token(32);
    let browser_secret = random_token(32);
    let now = Utc::now();
    let flow = OauthFlow {
        id: OauthFlowId::new(),
        tenant_id: ctx.tenant_id(),
        user_id: user,
        kind,
        state_hash: sha256_hex(&secret_state),
        browser_hash: sha256_hex(&browser_secret),
        return_path,
        sealed_assets: None,
        created_at: now,
        expires_at: now + Duration::minutes(START_MINUTES),
    };
    state
        .store
        .create_oauth_flow(ctx.tenant_id(), flow.clone())
        .await?;
    let p = &state.settings.providers;
    let authorize_url = format!(
        "{}/{}/dialog/oauth?{}",
        p.meta_dialog_base_url().trim_end_matches('/'),
        p.graph_version(),
        form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &app_id)
            .append_pair("redirect_uri", &redirect_uri(state))
            .append_pair("state", &secret_state)
            .append_pair("response_type", "code")
            .append_pair("scope", scopes(kind))
            .finish()
    );
    Ok(Started {
        flow: flow.id,
        authorize_url,
        browser_secret,
        expires_at: flow.expires_at,
    })
}

/// Meta sent the browser back with `code` for `state_param`; `browser` is the cookie it
/// carries. Returns where to send the browser next: the flow's return path with the flow id.
pub async fn callback(
    state: &AppState,
    code: &str,
    state_param: &str,
    browser: Option<&str>,
) -> Result<String> {
    let (app_id, app_secret) = app(state)?;
    let (Some(browser), false) = (browser, code.is_empty() || code.len() > 2_048) else {
        return Err(ChannelError::OauthInvalidState);
    };
    let now = Utc::now();
    let Some(flow) = state
        .store
        .claim_oauth_flow(
            &sha256_hex(state_param),
            &sha256_hex(browser),
            now,
            now + Duration::minutes(CHOOSE_MINUTES),
        )
        .await?
    else {
        return Err(ChannelError::OauthInvalidState);
    };
    let found = async {
        let token = state
            .graph
            .exchange_code(&app_id, &app_secret, &redirect_uri(state), code)
            .await?;
        state
            .graph
            .assets(flow.kind, &app_id, &app_secret, &token)
            .await
    }
    .await;
    let assets = match found {
        Ok(assets) => assets,
        Err(e) => {
            let _ = state.store.delete_oauth_flow(flow.tenant_id, flow.id).await;
            return Err(ChannelError::Provider(e.to_string()));
        }
    };
    let sealed = state.secrets.seal(
        &serde_json::to_string(&assets).map_err(|e| ChannelError::Internal(e.into()))?,
        &assets_context(&flow),
    );
    state
        .store
        .set_oauth_assets(flow.tenant_id, flow.id, &sealed)
        .await?;
    tracing::info!(oauth.flow = %flow.id, oauth.assets = assets.len(), "meta sign-in finished");
    Ok(format!(
        "{}{}?meta_oauth={}",
        state.settings.app_url.trim_end_matches('/'),
        flow.return_path,
        flow.id
    ))
}

/// The member's own flow, still alive.
async fn own_flow(state: &AppState, ctx: &TenantCtx, id: OauthFlowId) -> Result<OauthFlow> {
    let user = member(ctx)?;
    let flow = state.store.get_oauth_flow(ctx.tenant_id(), id).await?;
    if flow.user_id != user || flow.expires_at <= Utc::now() {
        return Err(ChannelError::from(StoreError::NotFound));
    }
    Ok(flow)
}

fn opened(state: &AppState, flow: &OauthFlow) -> Result<Vec<MetaAsset>> {
    match flow.sealed_assets.as_deref() {
        None | Some("") => Err(ChannelError::OauthPending),
        Some(sealed) => {
            let json = state
                .secrets
                .open(sealed, &assets_context(flow))
                .map_err(|e| ChannelError::Internal(anyhow::anyhow!("opening the assets: {e}")))?;
            serde_json::from_str(&json).map_err(|e| ChannelError::Internal(e.into()))
        }
    }
}

/// An asset the member may connect (no token).
pub struct Offered {
    pub asset_id: String,
    pub name: String,
    /// Connected already (here or elsewhere).
    pub connected: bool,
}

/// What the member's login reaches, to choose from; `None` until Meta sent the browser back.
pub async fn offer(
    state: &AppState,
    ctx: &TenantCtx,
    id: OauthFlowId,
) -> Result<(OauthFlow, Option<Vec<Offered>>)> {
    let flow = own_flow(state, ctx, id).await?;
    let assets = match opened(state, &flow) {
        Ok(assets) => assets,
        Err(ChannelError::OauthPending) => return Ok((flow, None)),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for a in assets {
        let connected = state
            .store
            .find_channel_connection(flow.kind, &a.asset_id)
            .await?
            .is_some();
        out.push(Offered {
            asset_id: a.asset_id,
            name: a.name,
            connected,
        });
    }
    Ok((flow, Some(out)))
}

/// A connected asset, and whether Meta took the webhook subscription (the error if not).
pub type Chosen = (ChannelConnection, std::result::Result<(), String>);

/// Connects the chosen assets of the flow (each as [`super::connect`] would, with its token
/// from Meta), subscribes the app to their webhooks, and consumes the flow.
pub async fn choose(
    state: &AppState,
    ctx: &TenantCtx,
    id: OauthFlowId,
    asset_ids: &[String],
    template: Option<(String, String)>,
) -> Result<Vec<Chosen>> {
    let flow = own_flow(state, ctx, id).await?;
    let assets = opened(state, &flow)?;
    if asset_ids.is_empty() || asset_ids.len() > 20 {
        return Err(invalid("asset_ids", "choose 1 to 20 assets"));
    }
    let mut chosen = Vec::new();
    for wanted in asset_ids {
        let Some(asset) = assets.iter().find(|a| &a.asset_id == wanted) else {
            return Err(invalid(
                "asset_ids",
                "names an asset this sign-in did not offer",
            ));
        };
        chosen.push(asset.clone());
    }
    let mut out = Vec::new();
    for asset in chosen {
        ctx.require(Action::ManageChannels)?;
        let connection = super::claim(
            state,
            ctx,
            ctx.actor(),
            Connect {
                kind: flow.kind,
                provider: None,
                asset_id: asset.asset_id.clone(),
                access_token: Some(asset.token.clone()),
                account_id: None,
                name: Some(asset.name.chars().take(100).collect())
                    .filter(|n: &String| !n.trim().is_empty()),
                template: template.clone().filter(|_| flow.kind == Channel::WhatsApp),
                ack_text: None,
            },
            // Meta listed the asset for the member's own login: control is shown.
            super::Proof::Shown {
                webhook_target: Some(asset.subscribe_to.clone()),
            },
            false,
        )
        .await?;
        let subscribed = state
            .graph
            .subscribe(flow.kind, &asset)
            .await
            .map_err(|e| e.to_string());
        out.push((connection, subscribed));
    }
    // Spent once everything chosen is connected (a failure above leaves it to try again).
    state
        .store
        .delete_oauth_flow(ctx.tenant_id(), flow.id)
        .await?;
    Ok(out)
}
