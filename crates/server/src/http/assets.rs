//! The web UI's static assets, compiled into the binary: its own stylesheet and script
//! (`assets/app.css`, `assets/app.js`) and third-party files vendored from the npm registry by
//! exact version (`assets/vendor/<name>-<version>/`, each with its licence and
//! a line in `SHA256SUMS`; `scripts/vendor-assets.sh` fetches and checks them).
//!
//! Each asset is served under a name carrying the first 12 hex digits of its SHA-256
//! (`/assets/htmx.min.d6fdc75f204e.js`), so a page names exactly the bytes it was written
//! for and browsers may keep them for a year (`immutable`); a new build with other bytes has
//! other names. An unknown name, including a stale hash, is a 404. The third-party licences
//! are served together at `/assets/licenses.txt`.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::app::AppState;

/// The embedded assets: (logical name, bytes, content type). The vendored ones first
/// ([`VENDORED`] of them), whose bytes `SHA256SUMS` names.
const FILES: &[(&str, &[u8], &str)] = &[
    (
        "htmx.min.js",
        include_bytes!("../../assets/vendor/htmx-2.0.11/htmx.min.js"),
        JS,
    ),
    (
        "uPlot.iife.min.js",
        include_bytes!("../../assets/vendor/uplot-1.6.32/uPlot.iife.min.js"),
        JS,
    ),
    (
        "uPlot.min.css",
        include_bytes!("../../assets/vendor/uplot-1.6.32/uPlot.min.css"),
        CSS,
    ),
    ("app.css", include_bytes!("../../assets/app.css"), CSS),
    ("app.js", include_bytes!("../../assets/app.js"), JS),
];

/// How many of [`FILES`] are vendored.
#[cfg(test)]
const VENDORED: usize = 3;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The licences of the third-party code the binary ships, as served.
const LICENSES: &str = concat!(
    "Third-party assets served by CortexLayer\n\n",
    "== htmx 2.0.11 (https://htmx.org), Zero-Clause BSD ==\n\n",
    include_str!("../../assets/vendor/htmx-2.0.11/LICENSE"),
    "\n\n== uPlot 1.6.32 (https://github.com/leeoniya/uPlot), MIT ==\n\n",
    include_str!("../../assets/vendor/uplot-1.6.32/LICENSE"),
);

/// One asset with its content-hashed file name.
struct Asset {
    name: &'static str,
    /// `stem.<hash>.ext`: what `/assets/` serves it under.
    file: String,
    /// The quoted hash, for `ETag`.
    etag: String,
    bytes: &'static [u8],
    content_type: &'static str,
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(name, bytes, content_type)| {
            let digest = hex::encode(Sha256::digest(bytes));
            let hash = &digest[..12];
            let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
            Asset {
                name,
                file: format!("{stem}.{hash}.{ext}"),
                etag: format!("\"{hash}\""),
                bytes,
                content_type,
            }
        })
        .collect()
});

/// The address pages link an asset by: `/assets/<stem>.<hash>.<ext>`. `None` for a name that
/// is not embedded.
pub fn url(name: &str) -> Option<String> {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| format!("/assets/{}", a.file))
}

/// `GET /assets/{file}` and `GET /assets/licenses.txt`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/assets/licenses.txt", get(licenses))
        .route("/assets/{file}", get(serve))
}

async fn licenses() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        LICENSES,
    )
        .into_response()
}

async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.file == file) else {
        return crate::http::error::ApiError::new(
            StatusCode::NOT_FOUND,
            crate::http::error::ErrorCode::RouteNotFound,
            "no such asset",
        )
        .into_response();
    };
    let etag = HeaderValue::from_str(&asset.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let common = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (header::ETAG, etag),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let revalidating = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    if revalidating {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed checksums of the vendored files (`scripts/vendor-assets.sh --check`).
    const SUMS: &str = include_str!("../../assets/vendor/SHA256SUMS");

    #[test]
    fn the_embedded_files_are_the_vendored_ones_their_checksums_name() {
        for (name, bytes, _) in &FILES[..VENDORED] {
            let digest = hex::encode(Sha256::digest(bytes));
            let line = SUMS
                .lines()
                .find(|l| l.ends_with(&format!("/{name}")))
                .unwrap_or_else(|| panic!("{name} has no line in SHA256SUMS"));
            assert!(line.starts_with(&digest), "{name}: {line} vs {digest}");
        }
    }

    #[test]
    fn names_carry_the_content_hash_and_unknown_names_have_no_url() {
        let htmx = url("htmx.min.js").expect("embedded");
        assert_eq!(htmx, "/assets/htmx.min.d6fdc75f204e.js");
        assert!(url("uPlot.min.css").is_some_and(|u| u.ends_with(".css")));
        assert_eq!(url("jquery.js"), None);
        let mut files: Vec<&str> = ASSETS.iter().map(|a| a.file.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        assert_eq!(files.len(), FILES.len(), "file names are distinct");
    }
}
