//! Per-request plumbing: the request id (accepting a sane incoming `X-Request-ID`), the
//! request span with the matched route, and one log line per response.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::error::REQUEST_ID;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A client-supplied id is kept if it is 1–128 characters of `[A-Za-z0-9._:-]`; otherwise a
/// new one is made, so logs cannot be forged or flooded through it.
fn accept_request_id(v: Option<&HeaderValue>) -> Option<String> {
    let s = v?.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    ok.then(|| s.to_owned())
}

pub async fn request_context(req: Request, next: Next) -> Response {
    let id = accept_request_id(req.headers().get(REQUEST_ID_HEADER))
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    // `tenant.id` is filled in once the caller is known (`record_tenant`).
    let span = tracing::info_span!(
        "request",
        request.id = %id,
        http.method = %req.method(),
        http.route = %route,
        tenant.id = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(http.status = status, duration_ms, "response");
        } else {
            tracing::info!(http.status = status, duration_ms, "response");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

/// Records the tenant a request acts in on its span, so every line it logs carries it.
pub fn record_tenant(tenant: cortex_core::ids::TenantId) {
    tracing::Span::current().record("tenant.id", tracing::field::display(tenant));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_incoming_ids_are_kept() {
        let ok = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(
            accept_request_id(Some(&ok)).as_deref(),
            Some("abc-123_x.y:z")
        );
        for bad in ["", "has space", "new\tline", "<script>"] {
            let v = HeaderValue::from_str(bad).expect("header");
            assert_eq!(accept_request_id(Some(&v)), None, "{bad:?}");
        }
        let long = HeaderValue::from_str(&"a".repeat(129)).expect("header");
        assert_eq!(accept_request_id(Some(&long)), None);
    }
}
