//! The web UI's embedded assets: served under content-hashed names, cached for a year,
//! revalidated by ETag, with the third-party licences beside them.

use crate::helpers::spawn_app;

#[tokio::test]
async fn assets_are_served_under_their_content_hash_and_cached_for_good() {
    let app = spawn_app().await;
    let path = cortexlayer_server::http::assets::url("htmx.min.js").expect("htmx is embedded");
    let r = app.get(&path).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    let body = r.bytes().await.expect("body");
    let vendored = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/vendor/htmx-2.0.11/htmx.min.js"),
    )
    .expect("the vendored file");
    assert_eq!(body.as_ref(), vendored.as_slice(), "the bytes as vendored");

    // A browser that has it asks again with its ETag: nothing is sent.
    let r = app
        .client
        .get(app.url(&path))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.expect("body").is_empty());

    // A page of an older build names another hash: not found, never other bytes.
    let r = app.get("/assets/htmx.min.000000000000.js").await;
    assert_eq!(
        crate::helpers::error_code(r).await,
        (404, "route_not_found".to_owned())
    );

    let css = cortexlayer_server::http::assets::url("uPlot.min.css").expect("uPlot css");
    let r = app.get(&css).await;
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");

    let r = app.get("/assets/licenses.txt").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("text");
    assert!(text.contains("htmx 2.0.11") && text.contains("Zero-Clause BSD"));
    assert!(text.contains("uPlot 1.6.32") && text.contains("Copyright (c) 2022 Leon Sorokin"));
}
