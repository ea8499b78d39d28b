//! Signing in from a browser: sign up, verify the email, sign in, forgotten and reset
//! passwords, accepting an invitation and signing out. Each page calls the same domain
//! function as its JSON twin under `/api/v1/auth`; success starts a browser session (the
//! refresh token of a new family in the session cookie) and goes on with a `303`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::forms::{Empty, Field, Form, FormPage};
use super::pages::{Chrome, page_with_status};
use super::session::{self, FormCsrf, PageForm};
use crate::app::AppState;
use crate::config::Environment;
use crate::http::extract::ClientIp;
use crate::tenancy::accounts::{self, Session, SignupInput};
use crate::tenancy::{TenancyError, passwords, sessions, team};

/// Whether the mails of this server can be read in the development mailbox.
fn dev_mailbox(state: &AppState) -> bool {
    state.settings.env == Environment::Development && state.settings.smtp.url.is_none()
}

/// A signed-out form page, with the visitor's CSRF token (and cookie when new).
fn show(state: &AppState, headers: &HeaderMap, status: StatusCode, form: Form) -> Response {
    let csrf = FormCsrf::new(state, headers);
    let response = page_with_status(
        status,
        &FormPage {
            chrome: Chrome::public(csrf.token.clone()),
            form,
        },
    );
    csrf.apply(response)
}

/// Starts the browser session of `s` and goes to `next`.
fn signed_in(state: &AppState, s: Session, next: &str) -> Response {
    let mut r = Redirect::to(next).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::session_cookie(state, &s.refresh_token, s.refresh_expires_in),
    );
    r
}

/// `/`: the dashboard for a signed-in member, the sign-in page for anyone else.
pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let live = match session::session_token(&state, &headers) {
        Some(t) => !matches!(
            sessions::authenticate_session(&state, &t).await,
            Err(TenancyError::Unauthenticated)
        ),
        None => false,
    };
    Redirect::to(if live { "/overview" } else { "/sign-in" }).into_response()
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
    email: Option<String>,
    token: Option<String>,
}

fn sign_in_form(email: &str, next: &str) -> Form {
    Form::new("Sign in", "/sign-in", "Sign in")
        .lead("Sign in to your company's support workspace.")
        .hidden("next", next)
        .field(Field::email(email))
        .field(Field::password("password", "Password", "current-password"))
        .link("New here?", "/sign-up", "Create an account")
        .link("Forgot it?", "/forgot-password", "Reset your password")
}

pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = session::local_path(q.next.as_deref());
    show(
        &state,
        &headers,
        StatusCode::OK,
        sign_in_form(q.email.as_deref().unwrap_or(""), &next),
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(f): PageForm<SignInForm>,
) -> Response {
    let next = session::local_path(f.next.as_deref());
    match accounts::login(&state, ip, &f.email, f.password).await {
        Ok(s) => signed_in(&state, s, &next),
        Err(TenancyError::EmailNotVerified) => {
            let mut form = verify_form(&f.email, "");
            form.error = "This address is not verified yet. Enter the 6-digit code we mailed you, or ask for a new one.".into();
            form.dev_mailbox = dev_mailbox(&state);
            show(&state, &headers, StatusCode::FORBIDDEN, form)
        }
        Err(e) => {
            let mut form = sign_in_form(&f.email, &next);
            let status = form.fail(e);
            show(&state, &headers, status, form)
        }
    }
}

fn sign_up_form(company: &str, name: &str, email: &str) -> Form {
    Form::new("Create your account", "/sign-up", "Create account")
        .lead("Start a support workspace for your company. We mail you a code to confirm the address.")
        .field(Field::text("company_name", "Company name", company, "organization"))
        .field(Field::text("name", "Your name", name, "name").optional())
        .field(Field::email(email))
        .field(
            Field::password("password", "Password", "new-password")
                .hint("At least 12 characters."),
        )
        .link("Already have an account?", "/sign-in", "Sign in")
}

pub async fn sign_up_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    show(&state, &headers, StatusCode::OK, sign_up_form("", "", ""))
}

#[derive(Deserialize)]
pub struct SignUpForm {
    company_name: String,
    name: Option<String>,
    email: String,
    password: String,
}

pub async fn sign_up(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(f): PageForm<SignUpForm>,
) -> Response {
    let input = SignupInput {
        email: f.email.clone(),
        password: f.password,
        company_name: f.company_name.clone(),
        name: f.name.clone(),
    };
    match accounts::signup(&state, ip, input).await {
        Ok(()) => {
            let mut form = verify_form(&f.email, "");
            form.notice = format!(
                "We sent a 6-digit code to {}. It works for 15 minutes.",
                f.email.trim()
            );
            form.dev_mailbox = dev_mailbox(&state);
            show(&state, &headers, StatusCode::OK, form)
        }
        Err(e) => {
            let mut form = sign_up_form(&f.company_name, f.name.as_deref().unwrap_or(""), &f.email);
            let status = form.fail(e);
            show(&state, &headers, status, form)
        }
    }
}

fn verify_form(email: &str, code: &str) -> Form {
    Form::new("Confirm your email", "/verify", "Confirm and continue")
        .lead("Enter the code from the mail, and the password you chose, to open your workspace.")
        .field(Field::email(email))
        .field(Field::code(code))
        .field(Field::password("password", "Password", "current-password"))
        .link(
            "No code, or it expired?",
            "/verify/resend",
            "Send a new code",
        )
}

pub async fn verify_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let mut form = verify_form(q.email.as_deref().unwrap_or(""), "");
    form.dev_mailbox = dev_mailbox(&state);
    show(&state, &headers, StatusCode::OK, form)
}

#[derive(Deserialize)]
pub struct VerifyForm {
    email: String,
    code: String,
    password: String,
}

pub async fn verify(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(f): PageForm<VerifyForm>,
) -> Response {
    match accounts::verify_email(&state, ip, &f.email, &f.code, f.password).await {
        Ok(s) => signed_in(&state, s, "/overview?welcome=1"),
        Err(e) => {
            let mut form = verify_form(&f.email, &f.code);
            let status = form.fail(e);
            form.dev_mailbox = dev_mailbox(&state);
            show(&state, &headers, status, form)
        }
    }
}

fn resend_form(email: &str) -> Form {
    Form::new("Send a new code", "/verify/resend", "Send a new code")
        .lead("The code works for 15 minutes and for 3 tries. Ask for a new one here; the one before stops working.")
        .field(Field::email(email))
        .link("Have a code?", "/verify", "Enter it")
}

pub async fn resend_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    show(
        &state,
        &headers,
        StatusCode::OK,
        resend_form(q.email.as_deref().unwrap_or("")),
    )
}

#[derive(Deserialize)]
pub struct EmailForm {
    email: String,
}

pub async fn resend(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(f): PageForm<EmailForm>,
) -> Response {
    match accounts::resend_verification(&state, ip, &f.email).await {
        Ok(()) => {
            let mut form = verify_form(&f.email, "");
            form.notice =
                "If a signup of this address is waiting for its code, a new code is on its way."
                    .into();
            form.dev_mailbox = dev_mailbox(&state);
            show(&state, &headers, StatusCode::OK, form)
        }
        Err(e) => {
            let mut form = resend_form(&f.email);
            let status = form.fail(e);
            show(&state, &headers, status, form)
        }
    }
}

fn forgot_form(email: &str) -> Form {
    Form::new("Reset your password", "/forgot-password", "Send the link")
        .lead("We mail you a link to set a new password. It works once, for 30 minutes.")
        .field(Field::email(email))
        .link("Remembered it?", "/sign-in", "Sign in")
}

pub async fn forgot_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    show(
        &state,
        &headers,
        StatusCode::OK,
        forgot_form(q.email.as_deref().unwrap_or("")),
    )
}

pub async fn forgot(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(f): PageForm<EmailForm>,
) -> Response {
    let mut form = forgot_form(&f.email);
    let status = match passwords::request_reset(&state, ip, &f.email).await {
        Ok(()) => {
            form.notice = format!(
                "If {} has an account, a link to reset its password is on its way.",
                f.email.trim()
            );
            form.dev_mailbox = dev_mailbox(&state);
            StatusCode::OK
        }
        Err(e) => form.fail(e),
    };
    show(&state, &headers, status, form)
}

fn reset_form(token: &str) -> Form {
    Form::new(
        "Choose a new password",
        "/reset-password",
        "Set the password",
    )
    .lead("Setting it signs you out everywhere; then sign in with the new one.")
    .hidden("token", token)
    .field(
        Field::password("password", "New password", "new-password").hint("At least 12 characters."),
    )
}

pub async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    show(
        &state,
        &headers,
        StatusCode::OK,
        reset_form(q.token.as_deref().unwrap_or("")),
    )
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    password: String,
}

pub async fn reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(f): PageForm<ResetForm>,
) -> Response {
    match passwords::complete_reset(&state, ip, &f.token, f.password).await {
        Ok(()) => {
            let mut form = sign_in_form("", "/overview");
            form.notice =
                "Your new password is set and every session was signed out. Sign in with it."
                    .into();
            let mut r = show(&state, &headers, StatusCode::OK, form);
            // This browser's own session (if any) ended with the others.
            r.headers_mut()
                .append(header::SET_COOKIE, session::clear_session_cookie(&state));
            r
        }
        Err(TenancyError::InvalidResetToken) => {
            let mut form = forgot_form("");
            form.error =
                "This reset link is invalid, used or older than 30 minutes. Ask for a new one."
                    .into();
            show(&state, &headers, StatusCode::BAD_REQUEST, form)
        }
        Err(e) => {
            let mut form = reset_form(&f.token);
            let status = form.fail(e);
            show(&state, &headers, status, form)
        }
    }
}

fn invitation_form(token: &str, name: &str) -> Form {
    Form::new("Join your team", "/accept-invitation", "Join")
        .lead("You were invited to a CortexLayer workspace. Choose a password to join; your email is the one the invitation went to.")
        .hidden("token", token)
        .field(Field::text("name", "Your name", name, "name").optional())
        .field(
            Field::password("password", "Password", "new-password")
                .hint("At least 12 characters."),
        )
}

pub async fn invitation_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    show(
        &state,
        &headers,
        StatusCode::OK,
        invitation_form(q.token.as_deref().unwrap_or(""), ""),
    )
}

#[derive(Deserialize)]
pub struct InvitationForm {
    token: String,
    name: Option<String>,
    password: String,
}

pub async fn accept_invitation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(f): PageForm<InvitationForm>,
) -> Response {
    let input = team::AcceptInput {
        token: f.token.clone(),
        password: f.password,
        name: f.name.clone(),
    };
    match team::accept_invitation(&state, ip, input).await {
        Ok(s) => signed_in(&state, s, "/overview"),
        Err(e) => {
            let mut form = invitation_form(&f.token, f.name.as_deref().unwrap_or(""));
            let status = form.fail(e);
            show(&state, &headers, status, form)
        }
    }
}

/// Signs this browser's session out and clears its cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(_): PageForm<Empty>,
) -> Response {
    if let Some(token) = session::session_token(&state, &headers)
        && let Err(e) = sessions::sign_out(&state, &token).await
    {
        return super::pages::error_page(e.into());
    }
    session::signed_out(&state)
}
