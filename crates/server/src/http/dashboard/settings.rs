//! Settings: the member's password and sessions (this browser's own marked; end one, or all).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use cortex_core::ids::TokenFamilyId;
use serde::Deserialize;

use super::forms::{Empty, sentence};
use super::pages::{Chrome, error_page, page_with_status};
use super::session::{self, Member, PageForm};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::tenancy::{TenancyError, passwords, sessions};

pub struct SessionRow {
    pub id: String,
    pub started: String,
    pub refreshed: String,
    pub this_browser: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    email: String,
    notice: String,
    error: String,
    current_error: String,
    new_error: String,
    sessions: Vec<SessionRow>,
}

async fn render(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    notice: String,
    error: (String, String, String),
) -> Response {
    let rows = match sessions::list_sessions(state, &member.ctx).await {
        Ok(s) => s,
        Err(e) => return error_page(e.into()),
    };
    let email = match member.ctx.caller() {
        crate::tenancy::Caller::User(u) => u.email.to_string(),
        _ => String::new(),
    };
    page_with_status(
        status,
        &SettingsPage {
            chrome: Chrome::member(member, "/settings"),
            email,
            notice,
            error: error.0,
            current_error: error.1,
            new_error: error.2,
            sessions: rows
                .into_iter()
                .map(|s| SessionRow {
                    id: s.family_id.to_string(),
                    started: s.started_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    refreshed: s.refreshed_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                    this_browser: s.family_id == member.family,
                })
                .collect(),
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct SettingsQuery {
    done: Option<String>,
}

pub async fn settings(
    State(state): State<AppState>,
    member: Member,
    axum::extract::Query(q): axum::extract::Query<SettingsQuery>,
) -> Response {
    let notice = match q.done.as_deref() {
        Some("password") => "Your password is changed. Every other session was signed out.",
        Some("session") => "That session is signed out.",
        _ => "",
    };
    render(
        &state,
        &member,
        StatusCode::OK,
        notice.into(),
        Default::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<PasswordForm>,
) -> Response {
    match passwords::change_password(
        &state,
        &member.ctx,
        Some(member.family),
        f.current_password,
        f.new_password,
    )
    .await
    {
        Ok(()) => Redirect::to("/settings?done=password").into_response(),
        Err(TenancyError::Validation { field, message }) => {
            let message = sentence(&message);
            let errors = match field {
                "current_password" => (
                    format!("Current password: {message}"),
                    message,
                    String::new(),
                ),
                _ => (format!("New password: {message}"), String::new(), message),
            };
            render(
                &state,
                &member,
                StatusCode::UNPROCESSABLE_ENTITY,
                String::new(),
                errors,
            )
            .await
        }
        Err(e) => error_page(ApiError::from(e)),
    }
}

pub async fn revoke_session(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    let Ok(family) = id.parse::<TokenFamilyId>() else {
        return error_page(ApiError::not_found());
    };
    match sessions::revoke_session(&state, &member.ctx, family).await {
        Ok(()) if family == member.family => session::signed_out(&state),
        Ok(()) => Redirect::to("/settings?done=session").into_response(),
        Err(e) => error_page(e.into()),
    }
}

pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    member: Member,
    PageForm(_): PageForm<Empty>,
) -> Response {
    match sessions::sign_out_everywhere(&state, &member.ctx).await {
        Ok(_) => session::signed_out(&state),
        Err(e) => error_page(e.into()),
    }
}
