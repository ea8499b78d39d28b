//! `/api/v1/auth/…`: signup, email verification, login, refresh, logout, invitation
//! acceptance and operator login. These endpoints take no bearer token; they make one.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::MemberView;
use crate::app::AppState;
use crate::http::error::{ApiError, ApiResult, ErrorBody};
use crate::http::extract::{ApiJson, ClientIp, parse_json};
use crate::tenancy::accounts::{self, Session, SignupInput};
use crate::tenancy::{operators, passwords, team};

pub const REFRESH_COOKIE: &str = "cortex_refresh";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Becomes the owner's login.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// At least 12 characters.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    #[schema(min_length = 1, max_length = 200)]
    pub company_name: String,
    /// The owner's own name.
    #[schema(max_length = 200)]
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AcceptedView {
    /// Always `accepted`: the answer does not reveal whether the address has an account.
    pub status: &'static str,
    pub message: &'static str,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    pub email: String,
    /// The 6-digit code from the email.
    #[schema(pattern = r"^\s*[0-9]{6}\s*$")]
    pub code: String,
    /// The password chosen at signup: only the person who signed up, with the mailbox, can
    /// turn the signup into an account.
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the reset link (`/reset-password?token=…`).
    pub token: String,
    /// The new password: at least 12 characters.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Optional when the `cortex_refresh` cookie is sent.
    pub refresh_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// The token from the invitation email.
    pub token: String,
    /// At least 12 characters.
    pub password: String,
    pub name: Option<String>,
}

/// A signed-in session.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// Send as `Authorization: Bearer …`.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires (900).
    pub expires_in: u64,
    /// Single use: trade it at `/api/v1/auth/refresh` for a new pair. Also set as an
    /// httpOnly cookie.
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub user: MemberView,
}

#[derive(Serialize, ToSchema)]
pub struct OperatorSessionView {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub admin_id: uuid::Uuid,
}

fn refresh_cookie(value: &str, max_age: u64) -> HeaderValue {
    let cookie = format!(
        "{REFRESH_COOKIE}={value}; Path=/api/v1/auth; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn session_response(status: StatusCode, s: Session) -> Response {
    let cookie = refresh_cookie(&s.refresh_token, s.refresh_expires_in);
    let view = SessionView {
        access_token: s.access_token,
        token_type: "Bearer",
        expires_in: s.access_expires_in,
        refresh_token: s.refresh_token,
        refresh_expires_in: s.refresh_expires_in,
        user: s.user.into(),
    };
    let mut response = (status, Json(view)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    crate::http::extract::cookie(headers, REFRESH_COOKIE)
}

/// The refresh token from the body if one was sent, else from the cookie.
fn presented_refresh_token(headers: &HeaderMap, body: &Bytes) -> ApiResult<String> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        parse_json::<RefreshRequest>(headers, body)?.refresh_token
    };
    from_body.or_else(|| cookie_token(headers)).ok_or_else(|| {
        ApiError::validation(
            "refresh_token",
            "send it in the body or the cortex_refresh cookie",
        )
    })
}

/// Sign up a tenant and its owner
///
/// Mails a 6-digit code to the address; the tenant and its owner are created when the code
/// is verified. A new signup for an address that is not verified yet replaces the pending
/// one (its code stops working). The answer is the same whether or not the address already
/// has an account.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 202, description = "Verification code sent", body = AcceptedView),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<(StatusCode, Json<AcceptedView>)> {
    accounts::signup(
        &state,
        ip,
        SignupInput {
            email: req.email,
            password: req.password,
            company_name: req.company_name,
            name: req.name,
        },
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedView {
            status: "accepted",
            message: "check your inbox for a 6-digit verification code",
        }),
    ))
}

/// Verify the email address with the emailed code
///
/// Takes the code and the password of the same signup. The code expires after 15 minutes
/// and allows 3 attempts (a wrong password counts as one). On success the tenant and its
/// owner are created and the owner is signed in.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "Verified and signed in", body = SessionView),
        (status = 400, description = "`invalid_code`: wrong, expired or used up", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<VerifyEmailRequest>,
) -> ApiResult<Response> {
    let session = accounts::verify_email(&state, ip, &req.email, &req.code, req.password).await?;
    Ok(session_response(StatusCode::OK, session))
}

/// Send a new verification code
///
/// For the address's pending signup (its code and password stay those of that signup).
/// Always answers 202, whether or not the address has a pending signup.
#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth", request_body = EmailRequest,
    responses(
        (status = 202, description = "A code was sent if the account needs one", body = AcceptedView),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn resend_verification(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<EmailRequest>,
) -> ApiResult<(StatusCode, Json<AcceptedView>)> {
    accounts::resend_verification(&state, ip, &req.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedView {
            status: "accepted",
            message: "if a signup is waiting for its code, a new code is on its way",
        }),
    ))
}

/// Ask for a password reset link
///
/// Mails a link that sets a new password (single use, valid 30 minutes) if the address
/// belongs to a verified member. Always answers 202, whether or not it does.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = EmailRequest,
    responses(
        (status = 202, description = "A link was sent if the address has an account", body = AcceptedView),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<EmailRequest>,
) -> ApiResult<(StatusCode, Json<AcceptedView>)> {
    passwords::request_reset(&state, ip, &req.email).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedView {
            status: "accepted",
            message: "if the address has an account, a link to reset its password is on its way",
        }),
    ))
}

/// Set a new password with a reset link's token
///
/// The token works once, for 30 minutes. Setting the password signs the member out of every
/// session (browsers and API clients); sign in again with the new password.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password set; every session signed out"),
        (status = 400, description = "`invalid_reset_token`: unknown, expired or used", body = ErrorBody),
        (status = 422, description = "`validation_failed`: the password is too weak", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    passwords::complete_reset(&state, ip, &req.token, req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign in with email and password
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the refresh token is also set as a cookie", body = SessionView),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`email_not_verified` or `tenant_suspended`", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let session = accounts::login(&state, ip, &req.email, req.password).await?;
    Ok(session_response(StatusCode::OK, session))
}

/// Trade a refresh token for a new token pair
///
/// Each refresh token works once. Presenting a used one revokes every token of that login.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body(content = RefreshRequest, description = "Optional when the cookie is sent"),
    responses(
        (status = 200, description = "A new pair", body = SessionView),
        (status = 401, description = "`invalid_refresh_token` or `refresh_token_reused`", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let token = presented_refresh_token(&headers, &body)?;
    let session = accounts::refresh(&state, &token).await?;
    Ok(session_response(StatusCode::OK, session))
}

/// Sign out
///
/// Revokes the refresh token's whole family and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body(content = RefreshRequest, description = "Optional when the cookie is sent"),
    responses((status = 204, description = "Signed out")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    if let Ok(token) = presented_refresh_token(&headers, &body) {
        accounts::logout(&state, &token).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, refresh_cookie("", 0));
    Ok(response)
}

/// Accept an invitation
///
/// Creates the member with the invited role and signs them in. The token works once.
#[utoipa::path(post, path = "/api/v1/auth/invitations/accept", tag = "auth", request_body = AcceptInvitationRequest,
    responses(
        (status = 201, description = "Member created and signed in", body = SessionView),
        (status = 400, description = "`invitation_invalid`: unknown, expired or used", body = ErrorBody),
        (status = 409, description = "`email_taken`", body = ErrorBody),
    ))]
pub async fn accept_invitation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<AcceptInvitationRequest>,
) -> ApiResult<Response> {
    let session = team::accept_invitation(
        &state,
        ip,
        team::AcceptInput {
            token: req.token,
            password: req.password,
            name: req.name,
        },
    )
    .await?;
    Ok(session_response(StatusCode::CREATED, session))
}

/// Sign in as a platform admin
///
/// Operator accounts are created with `cortexlayer admin create`. No refresh token is issued.
#[utoipa::path(post, path = "/api/v1/auth/admin/login", tag = "admin", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = OperatorSessionView),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
    ))]
pub async fn admin_login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<OperatorSessionView>> {
    let (admin, token) = operators::login(&state, ip, &req.email, req.password).await?;
    Ok(Json(OperatorSessionView {
        access_token: token,
        token_type: "Bearer",
        expires_in: state.settings.auth.access_token_ttl_secs,
        admin_id: admin.id.0,
    }))
}
