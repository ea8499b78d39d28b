//! What every page shares: the frame (stylesheet, scripts, CSRF token, the navigation of a
//! signed-in member), the headers pages are sent with, and the error and suspended pages.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::session;
use crate::app::AppState;
use crate::http::assets;
use crate::http::error::ApiError;
use crate::tenancy::{Action, Caller, TenantCtx};

/// What every page is sent with.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One entry of the dashboard's navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The signed-in member's frame: their tenant, who they are, where they may go.
pub struct Nav {
    pub tenant: String,
    pub user: String,
    pub role: String,
    pub items: Vec<NavItem>,
    /// Where the sign-out button posts.
    pub sign_out: &'static str,
}

/// The dashboard's sections, each with the action that lets a member see it; a member is
/// offered only what they may open.
const SECTIONS: &[(&str, &str, Action)] = &[
    ("/overview", "Overview", Action::ReadConversations),
    ("/knowledge", "Knowledge", Action::ReadKnowledge),
    ("/bot", "Bot", Action::ReadBot),
    ("/conversations", "Conversations", Action::ReadConversations),
    ("/channels", "Channels", Action::ReadChannels),
    ("/team", "Team", Action::ReadTeam),
    ("/api-keys", "API keys", Action::ManageApiKeys),
    ("/audit", "Audit log", Action::ReadAuditLog),
    ("/settings", "Settings", Action::ManageOwnAccount),
];

impl Nav {
    pub fn new(ctx: &TenantCtx, current: &str) -> Self {
        let (user, role) = match ctx.caller() {
            Caller::User(u) => (u.email.to_string(), u.role.as_str().to_owned()),
            _ => (String::new(), String::new()),
        };
        Self {
            tenant: ctx.tenant().name.clone(),
            user,
            role,
            items: SECTIONS
                .iter()
                .filter(|(_, _, action)| ctx.require(*action).is_ok())
                .map(|(href, label, _)| NavItem {
                    href,
                    label,
                    current: current == *href || current.starts_with(&format!("{href}/")),
                })
                .collect(),
            sign_out: "/sign-out",
        }
    }

    /// The operator console's frame.
    pub fn operator(email: &str, current: &str) -> Self {
        Self {
            tenant: "Operator console".into(),
            user: email.to_owned(),
            role: "platform admin".into(),
            items: vec![NavItem {
                href: "/operator",
                label: "Tenants",
                current: current.starts_with("/operator"),
            }],
            sign_out: "/operator/sign-out",
        }
    }
}

/// The frame of a page: hashed asset names, the CSRF token its forms and htmx carry, and the
/// navigation when a member is signed in.
pub struct Chrome {
    pub css: String,
    pub js: String,
    pub htmx: String,
    pub csrf: String,
    pub nav: Option<Nav>,
    /// A page's own vendored stylesheets and scripts (uPlot on the Overview).
    pub extra_css: Vec<String>,
    pub extra_js: Vec<String>,
}

impl Chrome {
    /// A signed-out page (its forms carry `csrf`, the visitor's own token).
    pub fn public(csrf: String) -> Self {
        Self {
            css: assets::url("app.css").unwrap_or_default(),
            js: assets::url("app.js").unwrap_or_default(),
            htmx: assets::url("htmx.min.js").unwrap_or_default(),
            csrf,
            nav: None,
            extra_css: Vec::new(),
            extra_js: Vec::new(),
        }
    }

    /// Adds the chart library to the page.
    pub fn with_charts(mut self) -> Self {
        self.extra_css
            .push(assets::url("uPlot.min.css").unwrap_or_default());
        self.extra_js
            .push(assets::url("uPlot.iife.min.js").unwrap_or_default());
        self
    }

    /// An operator console page.
    pub fn operator(op: &super::session::OperatorPage, current: &str) -> Self {
        Self {
            nav: Some(Nav::operator(op.ctx.admin.email.as_str(), current)),
            ..Self::public(op.csrf.clone())
        }
    }

    /// A member's page at `current` (the navigation's path).
    pub fn member(member: &session::Member, current: &str) -> Self {
        Self {
            nav: Some(Nav::new(&member.ctx, current)),
            ..Self::public(member.csrf.clone())
        }
    }
}

/// A rendered page with the page headers.
pub fn page(t: &impl Template) -> Response {
    page_with_status(StatusCode::OK, t)
}

pub fn page_with_status(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (
            status,
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

/// "Are you sure?" before something that cannot be undone: what will happen, the button
/// that does it (a form with the CSRF token) and the way back.
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
    pub action: String,
    pub confirm: &'static str,
    pub cancel: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: &'static str,
    message: String,
    code: &'static str,
    request_id: String,
}

/// An error as a page: what happened in words, its stable code and the request id to quote.
/// A server error is logged (with its cause) and shown without it.
pub fn error_page(e: ApiError) -> Response {
    let status = e.status;
    let code = e.code.as_str();
    let title = match status.as_u16() {
        403 => "Not allowed",
        404 => "Not found",
        429 => "Too many attempts",
        500.. => "Something went wrong",
        _ => "That did not work",
    };
    let message = if status.is_server_error() {
        // Logs the cause; the page says only that it failed.
        drop(e.into_response());
        "The server could not finish this. Try again in a moment; if it keeps failing, quote the request id below to your operator.".to_owned()
    } else {
        e.message.clone()
    };
    page_with_status(
        status,
        &ErrorPage {
            chrome: Chrome::public(String::new()),
            title,
            message,
            code,
            request_id: crate::http::error::current_request_id(),
        },
    )
}

#[derive(Template)]
#[template(path = "suspended.html")]
struct SuspendedPage {
    chrome: Chrome,
}

/// What a member of a suspended tenant sees instead of the dashboard: that it is suspended,
/// whom to ask, and a way to sign out.
pub fn suspended(state: &AppState, token: &str) -> Response {
    page_with_status(
        StatusCode::FORBIDDEN,
        &SuspendedPage {
            chrome: Chrome::public(session::csrf_for_session(state, token)),
        },
    )
}
