//! The web UI's pages: askama templates (`crates/server/templates/`, compiled into the binary)
//! rendered by handlers that call the same domain functions as the JSON API. Every page is
//! sent with a strict Content-Security-Policy (scripts, styles and everything else from this
//! origin only; no inline script or style), may not be framed, and is not cached.
//!
//! So far: the development mailbox (`GET /dev/mail`).

use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::config::Environment;
use crate::http::assets;
use crate::http::error::{ApiError, ErrorCode};

/// What every page is sent with.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new().route("/dev/mail", get(dev_mail))
}

/// The stylesheet and script every page links, by their hashed names.
struct Frame {
    css: String,
    js: String,
}

impl Frame {
    fn new() -> Self {
        Self {
            css: assets::url("app.css").unwrap_or_default(),
            js: assets::url("app.js").unwrap_or_default(),
        }
    }
}

/// A rendered page with the page headers.
fn page(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CSP),
                ),
                (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("same-origin"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            html,
        )
            .into_response(),
        Err(e) => ApiError::internal(anyhow::anyhow!("rendering a page: {e}")).into_response(),
    }
}

/// One kept mail as the page shows it.
struct MailView {
    to: String,
    subject: String,
    body: String,
    at: String,
}

#[derive(Template)]
#[template(path = "dev_mail.html")]
struct DevMail {
    css: String,
    js: String,
    capacity: usize,
    mails: Vec<MailView>,
}

/// `GET /dev/mail`: the mails the server would have sent, for a developer without SMTP. Only
/// in development, only without `SMTP_URL`, only to a browser on this machine (a loopback
/// peer, not forwarded by a proxy); anyone else finds no such route.
async fn dev_mail(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let forwarded = headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded");
    let allowed =
        state.settings.env == Environment::Development && peer.ip().is_loopback() && !forwarded;
    // The mailbox is read only for a caller allowed to see it.
    let Some(kept) = allowed.then(|| state.mailer.kept()).flatten() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::RouteNotFound,
            "no such route",
        )
        .into_response();
    };
    let Frame { css, js } = Frame::new();
    page(&DevMail {
        css,
        js,
        capacity: crate::infra::mailer::LogMailer::KEPT,
        mails: kept
            .into_iter()
            .map(|k| MailView {
                to: k.mail.to.to_string(),
                subject: k.mail.subject,
                body: k.mail.body,
                at: k.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            })
            .collect(),
    })
}
