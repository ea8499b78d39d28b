//! `GET /dev/mail`: the development mailbox.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::pages::{Chrome, page};
use crate::app::AppState;
use crate::config::Environment;
use crate::http::error::{ApiError, ErrorCode};

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
    chrome: Chrome,
    capacity: usize,
    mails: Vec<MailView>,
}

/// `GET /dev/mail`: the mails the server would have sent, for a developer without SMTP. Only
/// in development, only without `SMTP_URL`, only to a browser on this machine (a loopback
/// peer, not forwarded by a proxy); anyone else finds no such route.
pub async fn dev_mail(
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
    page(&DevMail {
        chrome: Chrome::public(String::new()),
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
