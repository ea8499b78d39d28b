//! The web UI's pages: askama templates (`crates/server/templates/`, compiled into the binary)
//! rendered by handlers that call the same domain functions as the JSON API. Every page is
//! sent with a strict Content-Security-Policy (scripts, styles and everything else from this
//! origin only; no inline script or style), may not be framed, and is not cached.
//!
//! - `session.rs`: the session cookie, the [`session::Member`] extractor and CSRF checks.
//! - `pages.rs`: the frame every page shares, the headers, error and suspended pages.
//! - `forms.rs`: form fields and how domain errors land on them.
//! - `auth.rs`: sign up, verify, sign in, forgot / reset password, invitations, sign out.
//! - `overview.rs`, `knowledge.rs`, `bot.rs` (settings and the test console), `conversations.rs`,
//!   `channels.rs`, `team.rs`, `api_keys.rs`, `audit.rs`, `settings.rs`: the member's pages.
//! - `operator.rs`: the operator console (platform admins).
//! - `dev_mail.rs`: the development mailbox.

mod api_keys;
mod audit;
mod auth;
mod bot;
mod channels;
mod conversations;
mod dev_mail;
mod forms;
mod knowledge;
mod operator;
mod overview;
mod pages;
mod session;
mod settings;
mod team;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::app::AppState;

/// The names of the member's and the operator's session cookies on this server (`__Host-` /
/// `__Secure-` prefixed outside development), for a client that brings its own.
pub fn cookie_names(state: &AppState) -> (&'static str, &'static str) {
    (
        session::session_cookie_name(state),
        session::operator_cookie_name(state),
    )
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(auth::root))
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/sign-up", get(auth::sign_up_page).post(auth::sign_up))
        .route("/verify", get(auth::verify_page).post(auth::verify))
        .route("/verify/resend", get(auth::resend_page).post(auth::resend))
        .route(
            "/forgot-password",
            get(auth::forgot_page).post(auth::forgot),
        )
        .route("/reset-password", get(auth::reset_page).post(auth::reset))
        .route(
            "/accept-invitation",
            get(auth::invitation_page).post(auth::accept_invitation),
        )
        .route("/sign-out", post(auth::sign_out))
        .route("/overview", get(overview::overview))
        .route("/overview/bot", post(overview::switch_bot))
        .route("/knowledge", get(knowledge::knowledge_page))
        .route("/knowledge/documents", get(knowledge::documents_fragment))
        .merge(
            // Uploads stream through their own size checks (the plan's per file, the request
            // allowance overall), as in the API.
            Router::new()
                .route("/knowledge/upload", post(knowledge::upload))
                .route("/knowledge/qa/import", post(knowledge::import_qa))
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/knowledge/url", post(knowledge::add_url))
        .route("/knowledge/qa", post(knowledge::add_qa))
        .route("/knowledge/{id}", get(knowledge::document_page))
        .route("/knowledge/{id}/reprocess", post(knowledge::reprocess))
        .route(
            "/knowledge/{id}/delete",
            get(knowledge::delete_page).post(knowledge::delete),
        )
        .route("/knowledge/{id}/original", get(knowledge::original))
        .route("/bot", get(bot::bot_page).post(bot::save))
        .route("/bot/console", post(bot::console))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{id}", get(conversations::thread))
        .route("/channels", get(channels::channels_page))
        .route("/channels/widget-keys", post(channels::create_key))
        .route(
            "/channels/widget-keys/{id}/revoke",
            get(channels::revoke_key_page).post(channels::revoke_key),
        )
        .route("/channels/connections", post(channels::connect))
        .route(
            "/channels/connections/{id}/disconnect",
            get(channels::disconnect_page).post(channels::disconnect),
        )
        .route("/channels/meta", post(channels::start_meta))
        .route("/channels/meta/{flow}/choose", post(channels::choose_meta))
        .route("/team", get(team::team_page))
        .route("/team/invitations", post(team::invite))
        .route("/team/invitations/{id}/withdraw", post(team::withdraw))
        .route("/team/members/{id}/role", post(team::change_role))
        .route(
            "/team/members/{id}/remove",
            get(team::remove_page).post(team::remove),
        )
        .route("/api-keys", get(api_keys::keys_page).post(api_keys::create))
        .route(
            "/api-keys/{id}/revoke",
            get(api_keys::revoke_page).post(api_keys::revoke),
        )
        .route("/audit", get(audit::audit_page))
        .route("/settings", get(settings::settings))
        .route("/settings/password", post(settings::change_password))
        .route("/settings/company", post(settings::rename_company))
        .route("/settings/email", post(settings::request_email_change))
        .route(
            "/settings/email/confirm",
            post(settings::confirm_email_change),
        )
        .route(
            "/settings/email/cancel",
            post(settings::cancel_email_change),
        )
        .route(
            "/settings/sessions/{id}/revoke",
            post(settings::revoke_session),
        )
        .route(
            "/settings/sign-out-everywhere",
            post(settings::sign_out_everywhere),
        )
        .route("/operator", get(operator::tenants))
        .route(
            "/operator/sign-in",
            get(operator::sign_in_page).post(operator::sign_in),
        )
        .route("/operator/sign-out", post(operator::sign_out))
        .route("/operator/tenants/{id}", get(operator::tenant))
        .route("/operator/tenants/{id}/plan", post(operator::set_plan))
        .route(
            "/operator/tenants/{id}/suspend",
            get(operator::suspend_page).post(operator::suspend),
        )
        .route(
            "/operator/tenants/{id}/reactivate",
            post(operator::reactivate),
        )
        .route("/dev/mail", get(dev_mail::dev_mail))
}
