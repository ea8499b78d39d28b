//! Settings: the company's profile, the member's sign-in address (changed once the code mailed
//! to the new one is entered), password and sessions (this browser's own marked; end one, or
//! all).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use cortex_core::ids::TokenFamilyId;
use serde::Deserialize;

use super::forms::{Empty, in_words, sentence};
use super::pages::{Chrome, error_page, page_with_status};
use super::session::{self, Member, PageForm};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::ClientIp;
use crate::tenancy::{Action, TenancyError, passwords, profile, sessions};

pub struct SessionRow {
    pub id: String,
    pub started: String,
    pub refreshed: String,
    pub this_browser: bool,
}

/// What a form sent back, to show again with its errors next to the fields they name.
#[derive(Default)]
struct Entered {
    /// Above the forms, in words.
    error: String,
    company_name: Option<String>,
    new_email: String,
    /// By field name: `name`, `new_email`, `password`, `code`, `current_password`,
    /// `new_password`.
    fields: Vec<(&'static str, String)>,
}

impl Entered {
    /// Puts a domain error of the form whose fields are `form` on the page: a validation error
    /// next to its field (with the field's label above the forms), anything else above them.
    fn fail(
        mut self,
        form: &[(&'static str, &'static str)],
        e: TenancyError,
    ) -> (StatusCode, Self) {
        let status = match e {
            TenancyError::Validation { field, message } => {
                let message = sentence(&message);
                let label = form
                    .iter()
                    .find(|(name, _)| *name == field)
                    .map_or(field, |(_, label)| label);
                self.error = format!("{label}: {message}");
                if let Some((name, _)) = form.iter().find(|(name, _)| *name == field) {
                    self.fields.push((name, message));
                }
                StatusCode::UNPROCESSABLE_ENTITY
            }
            other => {
                let (status, words) = in_words(other);
                self.error = words;
                status
            }
        };
        (status, self)
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    email: String,
    company: String,
    plan: String,
    created: String,
    can_rename: bool,
    pending_email: String,
    pending_until: String,
    new_email: String,
    notice: String,
    error: String,
    fields: Vec<(&'static str, String)>,
    sessions: Vec<SessionRow>,
}

impl SettingsPage {
    /// The error shown next to the field `name`, if any.
    fn field_error(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, m)| m.as_str())
    }
}

async fn render(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    notice: String,
    entered: Entered,
) -> Response {
    let rows = match sessions::list_sessions(state, &member.ctx).await {
        Ok(s) => s,
        Err(e) => return error_page(e.into()),
    };
    let pending = match profile::pending_email_change(state, &member.ctx).await {
        Ok(p) => p,
        Err(e) => return error_page(e.into()),
    };
    let email = match member.ctx.caller() {
        crate::tenancy::Caller::User(u) => u.email.to_string(),
        _ => String::new(),
    };
    let tenant = member.ctx.tenant();
    page_with_status(
        status,
        &SettingsPage {
            chrome: Chrome::member(member, "/settings"),
            email,
            company: entered.company_name.unwrap_or_else(|| tenant.name.clone()),
            plan: member.ctx.plan().name.to_string(),
            created: tenant.created_at.format("%Y-%m-%d").to_string(),
            can_rename: member.ctx.require(Action::ManageCompany).is_ok(),
            pending_email: pending
                .as_ref()
                .map(|p| p.new_email.to_string())
                .unwrap_or_default(),
            pending_until: pending
                .map(|p| p.expires_at.format("%H:%M UTC").to_string())
                .unwrap_or_default(),
            new_email: entered.new_email,
            notice,
            error: entered.error,
            fields: entered.fields,
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
        Some("company") => "The company name is saved.",
        Some("email-sent") => {
            "We sent a 6-digit code to the new address. Enter it below to make it your sign-in address."
        }
        Some("email") => "Your sign-in address is changed. Sign in with it from now on.",
        Some("email-cancelled") => "The change of address is withdrawn; its code no longer works.",
        _ => "",
    };
    render(
        &state,
        &member,
        StatusCode::OK,
        notice.into(),
        Entered::default(),
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
        Err(e) => {
            const FORM: &[(&str, &str)] = &[
                ("current_password", "Current password"),
                ("new_password", "New password"),
            ];
            let (status, entered) = Entered::default().fail(FORM, e);
            render(&state, &member, status, String::new(), entered).await
        }
    }
}

#[derive(Deserialize)]
pub struct CompanyForm {
    name: String,
}

pub async fn rename_company(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<CompanyForm>,
) -> Response {
    match profile::rename_company(&state, &member.ctx, &f.name).await {
        Ok(_) => Redirect::to("/settings?done=company").into_response(),
        Err(e @ TenancyError::Forbidden(_)) => error_page(ApiError::from(e)),
        Err(e) => {
            let entered = Entered {
                company_name: Some(f.name),
                ..Entered::default()
            };
            let (status, entered) = entered.fail(&[("name", "Company name")], e);
            render(&state, &member, status, String::new(), entered).await
        }
    }
}

#[derive(Deserialize)]
pub struct EmailForm {
    new_email: String,
    password: String,
}

pub async fn request_email_change(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    member: Member,
    PageForm(f): PageForm<EmailForm>,
) -> Response {
    match profile::request_email_change(&state, ip, &member.ctx, &f.new_email, f.password).await {
        Ok(_) => Redirect::to("/settings?done=email-sent").into_response(),
        Err(e) => {
            let entered = Entered {
                new_email: f.new_email.trim().to_owned(),
                ..Entered::default()
            };
            const FORM: &[(&str, &str)] =
                &[("new_email", "New email"), ("password", "Current password")];
            let (status, entered) = entered.fail(FORM, e);
            render(&state, &member, status, String::new(), entered).await
        }
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

pub async fn confirm_email_change(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    member: Member,
    PageForm(f): PageForm<CodeForm>,
) -> Response {
    match profile::confirm_email_change(&state, ip, &member.ctx, &f.code).await {
        Ok(_) => Redirect::to("/settings?done=email").into_response(),
        Err(TenancyError::InvalidCode) => {
            let entered = Entered {
                error: "Verification code: this code is wrong or has expired. Check the newest mail, or ask for a new code.".into(),
                fields: vec![(
                    "code",
                    "This code is wrong or has expired.".into(),
                )],
                ..Entered::default()
            };
            render(
                &state,
                &member,
                StatusCode::BAD_REQUEST,
                String::new(),
                entered,
            )
            .await
        }
        Err(e) => {
            let (status, entered) = Entered::default().fail(&[("code", "Verification code")], e);
            render(&state, &member, status, String::new(), entered).await
        }
    }
}

pub async fn cancel_email_change(
    State(state): State<AppState>,
    member: Member,
    PageForm(_): PageForm<Empty>,
) -> Response {
    match profile::cancel_email_change(&state, &member.ctx).await {
        Ok(()) => Redirect::to("/settings?done=email-cancelled").into_response(),
        Err(e) => error_page(e.into()),
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
