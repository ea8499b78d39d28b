//! The browser's session and CSRF protection.
//!
//! - The session cookie holds the refresh token of the member's browser session
//!   ([`tenancy::sessions`]): `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` with the
//!   `__Host-` prefix outside development. [`Member`] turns it into the member's context on
//!   every page, or sends the browser to sign in.
//! - Every state-changing request carries a CSRF token (a form field `csrf` or, from htmx, the
//!   `X-CSRF-Token` header) that [`PageForm`] checks in constant time before anything else
//!   runs. The token is an HMAC under a key derived from `JWT_SECRET` of what the browser
//!   holds: its session, or before signing in a random `HttpOnly` cookie of its own. A page
//!   of another origin can neither read it nor, with `SameSite=Lax`, send the session along;
//!   a cross-site `Sec-Fetch-Site` or a foreign `Origin` is refused as well.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cortex_core::ids::TokenFamilyId;
use serde::de::DeserializeOwned;

use super::pages;
use crate::app::AppState;
use crate::config::Environment;
use crate::http::error::{ApiError, ErrorCode};
use crate::infra::tokens::{self, hashes_equal};
use crate::tenancy::sessions::{self, BrowserSession};
use crate::tenancy::{TenancyError, TenantCtx};

/// Whether cookies are marked `Secure` (and take the `__Host-` prefix): everywhere but in
/// development over plain HTTP.
pub fn secure(state: &AppState) -> bool {
    state.settings.env != Environment::Development || state.settings.app_url.starts_with("https:")
}

pub fn session_cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-cl_session"
    } else {
        "cl_session"
    }
}

/// The operator console's cookie: an operator access token (15 minutes, then sign in again),
/// sent only to `/operator`.
pub fn operator_cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Secure-cl_operator"
    } else {
        "cl_operator"
    }
}

/// The `Set-Cookie` of an operator's console session (`None`: clear it).
pub fn operator_cookie(state: &AppState, token: Option<&str>, max_age: u64) -> HeaderValue {
    let mut c = format!(
        "{}={}; Path=/operator; HttpOnly; SameSite=Strict; Max-Age={}",
        operator_cookie_name(state),
        token.unwrap_or(""),
        if token.is_some() { max_age } else { 0 }
    );
    if secure(state) {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn operator_binding(token: &str) -> String {
    format!("operator:{}", tokens::sha256_hex(token))
}

/// A platform admin on an operator console page.
pub struct OperatorPage {
    pub ctx: crate::tenancy::OperatorCtx,
    pub csrf: String,
}

impl FromRequestParts<AppState> for OperatorPage {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie(&parts.headers, operator_cookie_name(state)) else {
            return Err(Redirect::to("/operator/sign-in").into_response());
        };
        match crate::tenancy::authenticate_operator(state, &token).await {
            Ok(ctx) => Ok(Self {
                ctx,
                csrf: state.keys.csrf_token(&operator_binding(&token)),
            }),
            Err(TenancyError::Unauthenticated | TenancyError::Forbidden(_)) => {
                let mut r = Redirect::to("/operator/sign-in?expired=1").into_response();
                r.headers_mut()
                    .append(header::SET_COOKIE, operator_cookie(state, None, 0));
                Err(r)
            }
            Err(e) => Err(pages::error_page(ApiError::from(e))),
        }
    }
}

fn anon_cookie_name(state: &AppState) -> &'static str {
    if secure(state) {
        "__Host-cl_csrf"
    } else {
        "cl_csrf"
    }
}

use crate::http::extract::cookie;

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure(state) {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` that starts a browser session with `token` (a refresh token).
pub fn session_cookie(state: &AppState, token: &str, max_age: u64) -> HeaderValue {
    set_cookie(state, session_cookie_name(state), token, Some(max_age))
}

/// The `Set-Cookie` that clears the session.
pub fn clear_session_cookie(state: &AppState) -> HeaderValue {
    set_cookie(state, session_cookie_name(state), "", Some(0))
}

/// Back to the sign-in page with this browser's session cookie cleared.
pub fn signed_out(state: &AppState) -> Response {
    let mut r = Redirect::to("/sign-in?signed_out=1").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, clear_session_cookie(state));
    r
}

/// The session cookie's token, if any.
pub fn session_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, session_cookie_name(state))
}

fn session_binding(token: &str) -> String {
    format!("session:{}", tokens::sha256_hex(token))
}

/// The CSRF token of a page's forms when no member is signed in to it, with the cookie to
/// set when the browser has nothing to bind it to yet. A browser that still holds a session
/// cookie (a dead one, or a member on the sign-in page) binds to that, as the check does.
pub struct FormCsrf {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

impl FormCsrf {
    /// The token of a signed-out page of the operator console (never bound to a member's
    /// session, which its checks ignore).
    pub fn operator(state: &AppState, headers: &HeaderMap) -> Self {
        Self::anon(state, headers)
    }

    pub fn new(state: &AppState, headers: &HeaderMap) -> Self {
        if let Some(t) = session_token(state, headers) {
            return Self {
                token: csrf_for_session(state, &t),
                set_cookie: None,
            };
        }
        Self::anon(state, headers)
    }

    fn anon(state: &AppState, headers: &HeaderMap) -> Self {
        match cookie(headers, anon_cookie_name(state)) {
            Some(value) => Self {
                token: state.keys.csrf_token(&format!("anon:{value}")),
                set_cookie: None,
            },
            None => {
                let value = tokens::random_token(32);
                Self {
                    token: state.keys.csrf_token(&format!("anon:{value}")),
                    set_cookie: Some(set_cookie(state, anon_cookie_name(state), &value, None)),
                }
            }
        }
    }

    /// Adds the cookie (if new) to a response.
    pub fn apply(self, mut response: Response) -> Response {
        if let Some(c) = self.set_cookie {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
        response
    }
}

/// The CSRF token of the browser holding the session cookie `token`.
pub fn csrf_for_session(state: &AppState, token: &str) -> String {
    state.keys.csrf_token(&session_binding(token))
}

/// A signed-in member looking at a page.
pub struct Member {
    pub ctx: TenantCtx,
    pub family: TokenFamilyId,
    /// The token this browser's forms carry.
    pub csrf: String,
}

impl Member {
    fn from_session(state: &AppState, token: &str, s: BrowserSession) -> Self {
        Self {
            csrf: csrf_for_session(state, token),
            ctx: s.ctx,
            family: s.family,
        }
    }
}

/// Where a signed-out browser goes: the sign-in page, coming back to `path` afterwards.
/// htmx requests are told to load it as a whole page.
fn to_sign_in(parts: &Parts) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|_| parts.method == Method::GET)
        .unwrap_or("/overview");
    let target = format!("/sign-in?next={}", urlencoding(next));
    if parts.headers.contains_key("hx-request") {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert("hx-redirect", v);
        }
        return r;
    }
    Redirect::to(&target).into_response()
}

/// Percent-encodes a path for a query parameter.
pub fn urlencoding(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// Only a path of this site is a place to go back to (never `//host` or a full URL).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => {
            n.to_owned()
        }
        _ => "/overview".to_owned(),
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = session_token(state, &parts.headers) else {
            return Err(to_sign_in(parts));
        };
        match sessions::authenticate_session(state, &token).await {
            Ok(s) => {
                crate::http::middleware::record_tenant(s.ctx.tenant_id());
                Ok(Member::from_session(state, &token, s))
            }
            Err(TenancyError::Unauthenticated) => {
                let mut r = to_sign_in(parts);
                r.headers_mut()
                    .append(header::SET_COOKIE, clear_session_cookie(state));
                Err(r)
            }
            Err(TenancyError::TenantSuspended) => Err(pages::suspended(state, &token)),
            Err(e) => Err(pages::error_page(ApiError::from(e))),
        }
    }
}

/// A form (or htmx request) whose CSRF token was checked, with its fields parsed.
pub struct PageForm<T>(pub T);

#[derive(serde::Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

pub fn csrf_refused(why: &'static str) -> Response {
    tracing::warn!(reason = why, "CSRF check refused a request");
    pages::error_page(ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::CsrfFailed,
        "This form has expired or did not come from this site. Reload the page and try again.",
    ))
}

/// The CSRF checks of a state-changing request: where it came from and its token.
pub fn check_csrf(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    form_token: Option<&str>,
) -> Result<(), &'static str> {
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return Err("cross-site request");
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, h)| h);
        if origin == "null" || origin_host.is_none() || origin_host != host {
            return Err("foreign origin");
        }
    }
    let operator = (path == "/operator" || path.starts_with("/operator/"))
        .then(|| cookie(headers, operator_cookie_name(state)))
        .flatten();
    let binding = match (operator, session_token(state, headers)) {
        (Some(t), _) => operator_binding(&t),
        (None, Some(t)) if !path.starts_with("/operator") => session_binding(&t),
        _ => match cookie(headers, anon_cookie_name(state)) {
            Some(v) => format!("anon:{v}"),
            None => return Err("no cookie to bind the token to"),
        },
    };
    let presented = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form_token.map(str::to_owned));
    let Some(presented) = presented else {
        return Err("no token");
    };
    if !hashes_equal(&state.keys.csrf_token(&binding), &presented) {
        return Err("wrong token");
    }
    Ok(())
}

impl<T: DeserializeOwned> FromRequest<AppState> for PageForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let path = req.uri().path().to_owned();
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            pages::error_page(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "The form is too large.",
            ))
        })?;
        let field: CsrfField =
            serde_urlencoded::from_bytes(&bytes).unwrap_or(CsrfField { csrf: None });
        check_csrf(state, &path, &headers, field.csrf.as_deref()).map_err(csrf_refused)?;
        serde_urlencoded::from_bytes(&bytes)
            .map(PageForm)
            .map_err(|e| {
                pages::error_page(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidBody,
                    format!("The form could not be read: {e}"),
                ))
            })
    }
}
