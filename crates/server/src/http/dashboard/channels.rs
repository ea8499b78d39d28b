//! Channels: the web widget's keys (allowed origins, theme with a live preview, the snippet to
//! copy, revocation) and the messaging channels — WhatsApp, Messenger and Instagram by Meta's
//! sign-in or by asset id and token, WhatsApp through Twilio, ManyChat — each with its status,
//! the address its provider calls, and the plan gate when the plan lacks it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cortex_core::channels::{ChannelConnection, Provider};
use cortex_core::conversations::Channel;
use cortex_core::ids::{ChannelConnectionId, OauthFlowId, WidgetKeyId};
use cortex_core::widget::{WidgetKey, WidgetPosition, WidgetTheme};
use serde::Deserialize;

use super::forms::{Empty, sentence};
use super::pages::{Chrome, ConfirmPage, error_page, page, page_with_status};
use super::session::{Member, PageForm};
use crate::app::AppState;
use crate::channels::{self, Connect, oauth};
use crate::http::error::ApiError;
use crate::tenancy::Action;
use crate::widget::{self, NewKey};

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub origins: String,
    pub color: String,
    pub title: String,
    pub position: &'static str,
    pub snippet: String,
    pub revoked: bool,
}

fn snippet(state: &AppState, k: &WidgetKey) -> String {
    format!(
        "<script src=\"{}/widget.js\" data-key=\"{}\" async></script>",
        state.settings.app_url.trim_end_matches('/'),
        k.public_key
    )
}

pub struct ConnectionRow {
    pub id: String,
    pub kind: &'static str,
    pub provider: &'static str,
    pub name: String,
    pub asset: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub token_hint: String,
    pub webhook: String,
}

fn kind_name(c: Channel) -> &'static str {
    match c {
        Channel::WhatsApp => "WhatsApp",
        Channel::Messenger => "Messenger",
        Channel::Instagram => "Instagram",
        Channel::ManyChat => "ManyChat",
        _ => "Other",
    }
}

fn connection_row(state: &AppState, c: &ChannelConnection) -> ConnectionRow {
    let base = state.settings.app_url.trim_end_matches('/');
    let (status, status_label) = if c.token_invalid_at.is_some() {
        (
            "failed",
            "The provider refused its credential: connect it again",
        )
    } else if c.verified_at.is_none() {
        ("pending", "Not verified")
    } else {
        ("ready", "Active")
    };
    ConnectionRow {
        id: c.id.to_string(),
        kind: kind_name(c.kind),
        provider: match c.provider {
            Provider::Meta => "Meta",
            Provider::Twilio => "Twilio",
            Provider::ManyChat => "ManyChat",
        },
        name: c.name.clone(),
        asset: c.asset_id.clone(),
        status,
        status_label,
        token_hint: c.token_hint.clone(),
        webhook: match c.provider {
            Provider::ManyChat => format!("{base}/webhooks/manychat/{}", c.asset_id),
            Provider::Twilio => format!("{base}/webhooks/twilio"),
            // Meta calls the operator's app webhook: nothing to set up per tenant.
            Provider::Meta => String::new(),
        },
    }
}

pub struct Offer {
    pub flow: String,
    pub kind: &'static str,
    pub assets: Vec<(String, String, bool)>,
    pub pending: bool,
}

#[derive(Template)]
#[template(path = "channels.html")]
struct ChannelsPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    connections: Vec<ConnectionRow>,
    can_manage: bool,
    meta_on_plan: bool,
    meta_app: bool,
    plan: String,
    twilio_status: String,
    offer: Option<Offer>,
    notice: String,
    error: String,
    new_key: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ChannelsQuery {
    done: Option<String>,
    meta_oauth: Option<String>,
    key: Option<String>,
}

async fn render(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    q: ChannelsQuery,
    error: String,
) -> Response {
    let ctx = &member.ctx;
    let (keys, connections) =
        match tokio::join!(widget::list_keys(state, ctx), channels::list(state, ctx)) {
            (Ok(k), Ok(c)) => (k, c),
            (Err(e), _) => return error_page(e.into()),
            (_, Err(e)) => return error_page(e.into()),
        };
    let offer = match q
        .meta_oauth
        .as_deref()
        .and_then(|f| f.parse::<OauthFlowId>().ok())
    {
        Some(flow) => match oauth::offer(state, ctx, flow).await {
            Ok((f, assets)) => Some(Offer {
                flow: flow.to_string(),
                kind: kind_name(f.kind),
                pending: assets.is_none(),
                assets: assets
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| (a.asset_id, a.name, a.connected))
                    .collect(),
            }),
            Err(e) => return error_page(e.into()),
        },
        None => None,
    };
    let notice = match q.done.as_deref() {
        Some("key") => {
            "The widget key is created. Paste its snippet into your site's pages, before </body>."
        }
        Some("key-revoked") => {
            "The widget key is revoked: pages using it no longer show the widget."
        }
        Some("connected") => "The channel is connected: its customers' messages now reach the bot.",
        Some("disconnected") => "The channel is disconnected.",
        _ => "",
    };
    let plan = ctx.plan();
    page_with_status(
        status,
        &ChannelsPage {
            chrome: Chrome::member(member, "/channels"),
            new_key: q.key.filter(|_| q.done.as_deref() == Some("key")),
            keys: keys
                .iter()
                .map(|k| KeyRow {
                    id: k.id.to_string(),
                    name: k.name.clone(),
                    origins: k.allowed_origins.join(", "),
                    color: k.theme.color.clone(),
                    title: k.theme.title.clone(),
                    position: k.theme.position.as_str(),
                    snippet: snippet(state, k),
                    revoked: k.revoked_at.is_some(),
                })
                .collect(),
            connections: connections
                .iter()
                .map(|c| connection_row(state, c))
                .collect(),
            can_manage: ctx.require(Action::ManageChannels).is_ok(),
            meta_on_plan: plan.meta_channels,
            meta_app: state.settings.providers.meta_app_id.is_some(),
            plan: plan.name.to_owned(),
            twilio_status: channels::twilio_status_url(state),
            offer,
            notice: notice.into(),
            error,
        },
    )
}

pub async fn channels_page(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<ChannelsQuery>,
) -> Response {
    render(&state, &member, StatusCode::OK, q, String::new()).await
}

async fn failed(state: &AppState, member: &Member, e: ApiError) -> Response {
    if e.status == StatusCode::FORBIDDEN && e.code.as_str() == "forbidden" {
        return error_page(e);
    }
    let status = e.status;
    render(
        state,
        member,
        status,
        ChannelsQuery::default(),
        sentence(&e.message),
    )
    .await
}

#[derive(Deserialize)]
pub struct KeyForm {
    name: Option<String>,
    origins: String,
    color: String,
    title: String,
    position: String,
}

pub async fn create_key(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<KeyForm>,
) -> Response {
    let origins: Vec<String> = f
        .origins
        .split(|c: char| c == '\n' || c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    let theme = WidgetTheme {
        color: f.color.trim().to_owned(),
        title: f.title.trim().to_owned(),
        position: f.position.parse().unwrap_or(WidgetPosition::Right),
    };
    match widget::create_key(
        &state,
        &member.ctx,
        NewKey {
            name: f.name,
            allowed_origins: origins,
            theme: Some(theme),
        },
    )
    .await
    {
        Ok(k) => Redirect::to(&format!("/channels?done=key&key={}", k.id)).into_response(),
        Err(e) => failed(&state, &member, e.into()).await,
    }
}

pub async fn revoke_key_page(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    let keys = match widget::list_keys(&state, &member.ctx).await {
        Ok(k) => k,
        Err(e) => return error_page(e.into()),
    };
    let Some(key) = keys
        .iter()
        .find(|k| k.id.to_string() == id && k.revoked_at.is_none())
    else {
        return error_page(ApiError::not_found());
    };
    page(&ConfirmPage {
        chrome: Chrome::member(&member, "/channels"),
        title: format!("Revoke the widget key “{}”?", key.name),
        message: format!(
            "The widget disappears from every page using it ({}). This cannot be undone; create a new key to put it back.",
            key.allowed_origins.join(", ")
        ),
        action: format!("/channels/widget-keys/{id}/revoke"),
        confirm: "Revoke the key",
        cancel: "/channels".into(),
    })
}

pub async fn revoke_key(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    let Ok(id) = id.parse::<WidgetKeyId>() else {
        return error_page(ApiError::not_found());
    };
    match widget::revoke_key(&state, &member.ctx, id).await {
        Ok(()) => Redirect::to("/channels?done=key-revoked").into_response(),
        Err(e) => error_page(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ConnectForm {
    kind: String,
    provider: Option<String>,
    asset_id: String,
    access_token: Option<String>,
    account_id: Option<String>,
    name: Option<String>,
    template_name: Option<String>,
    template_language: Option<String>,
    ack_text: Option<String>,
}

fn some(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

pub async fn connect(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<ConnectForm>,
) -> Response {
    let Ok(kind) = f.kind.parse::<Channel>() else {
        return failed(
            &state,
            &member,
            ApiError::validation("kind", "choose WhatsApp, Messenger, Instagram or ManyChat"),
        )
        .await;
    };
    let provider = some(f.provider).and_then(|p| p.parse::<Provider>().ok());
    let template =
        some(f.template_name).map(|n| (n, some(f.template_language).unwrap_or_default()));
    let req = Connect {
        kind,
        provider,
        asset_id: f.asset_id.trim().to_owned(),
        access_token: some(f.access_token),
        account_id: some(f.account_id),
        name: some(f.name),
        template,
        ack_text: some(f.ack_text),
    };
    match channels::connect(&state, &member.ctx, req).await {
        Ok(_) => Redirect::to("/channels?done=connected").into_response(),
        Err(e) => failed(&state, &member, e.into()).await,
    }
}

pub async fn disconnect_page(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    let list = match channels::list(&state, &member.ctx).await {
        Ok(l) => l,
        Err(e) => return error_page(e.into()),
    };
    let Some(c) = list.iter().find(|c| c.id.to_string() == id) else {
        return error_page(ApiError::not_found());
    };
    page(&ConfirmPage {
        chrome: Chrome::member(&member, "/channels"),
        title: format!("Disconnect {} “{}”?", kind_name(c.kind), c.name),
        message: "Its customers' messages stop reaching the bot, and its stored credential is deleted. Past conversations stay.".into(),
        action: format!("/channels/connections/{id}/disconnect"),
        confirm: "Disconnect",
        cancel: "/channels".into(),
    })
}

pub async fn disconnect(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    let Ok(id) = id.parse::<ChannelConnectionId>() else {
        return error_page(ApiError::not_found());
    };
    match channels::disconnect(&state, &member.ctx, id).await {
        Ok(()) => Redirect::to("/channels?done=disconnected").into_response(),
        Err(e) => error_page(e.into()),
    }
}

#[derive(Template)]
#[template(path = "meta_continue.html")]
struct ContinuePage {
    chrome: Chrome,
    kind: &'static str,
    authorize_url: String,
}

#[derive(Deserialize)]
pub struct MetaForm {
    kind: String,
}

/// Starts Meta's sign-in. The page's CSP lets forms post only to this site, so the browser
/// goes on to Meta by a link on the next page (with the cookie that binds the flow to it).
pub async fn start_meta(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<MetaForm>,
) -> Response {
    let Ok(kind) = f.kind.parse::<Channel>() else {
        return failed(
            &state,
            &member,
            ApiError::validation("kind", "choose WhatsApp, Messenger or Instagram"),
        )
        .await;
    };
    match oauth::start(&state, &member.ctx, kind, Some("/channels".into())).await {
        Ok(started) => {
            let cookie = oauth::browser_cookie(&started);
            let mut r = page(&ContinuePage {
                chrome: Chrome::member(&member, "/channels"),
                kind: kind_name(kind),
                authorize_url: started.authorize_url,
            });
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => failed(&state, &member, e.into()).await,
    }
}

pub async fn choose_meta(
    State(state): State<AppState>,
    member: Member,
    Path(flow): Path<String>,
    PageForm(pairs): PageForm<Vec<(String, String)>>,
) -> Response {
    let Ok(flow) = flow.parse::<OauthFlowId>() else {
        return error_page(ApiError::not_found());
    };
    let assets: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "asset_id")
        .map(|(_, v)| v.clone())
        .collect();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let template =
        field("template_name").map(|n| (n, field("template_language").unwrap_or_default()));
    match oauth::choose(&state, &member.ctx, flow, &assets, template).await {
        Ok(_) => Redirect::to("/channels?done=connected").into_response(),
        Err(e) => failed(&state, &member, e.into()).await,
    }
}
