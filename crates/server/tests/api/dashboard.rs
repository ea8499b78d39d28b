//! The web UI's pages over HTTP: what each sends and to whom. (The browser tests of the same
//! pages, with axe-core and screenshots, are in `dashboard_browser.rs`.)

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn without_smtp_a_developer_reads_the_verification_code_in_the_development_mailbox() {
    let app = spawn_app_with(|s| s.smtp.url = None).await;
    let r = app.get("/dev/mail").await;
    assert_eq!(r.status(), 200);
    let empty = r.text().await.expect("html");
    assert!(empty.contains("No mail yet"), "{empty}");

    assert_eq!(app.signup("ana@acme.test", "Acme").await.status(), 202);
    let r = app.get("/dev/mail").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.expect("html");
    let code = crate::helpers::code_in(&html).expect("the code is on the page");
    assert_eq!(code.len(), 6);
    assert!(html.contains("To ana@acme.test"), "{html}");
    // The code on the page verifies the account.
    let r = app.verify("ana@acme.test", &code).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    // The page links its stylesheet and script by their hashed names, and no inline script.
    let css = cortexlayer_server::http::assets::url("app.css").expect("css");
    assert!(html.contains(&format!("href=\"{css}\"")));
    assert!(!html.contains("<script>") && !html.contains("style=\""));
}

#[tokio::test]
async fn the_development_mailbox_exists_only_without_smtp_and_only_for_this_machine() {
    // With SMTP the mails are sent: there is no mailbox.
    let app = spawn_app().await;
    assert_eq!(app.signup("ana@acme.test", "Acme").await.status(), 202);
    let r = app.get("/dev/mail").await;
    assert_eq!(error_code(r).await, (404, "route_not_found".to_owned()));

    // Through a proxy on this machine (the request was forwarded): not for this machine.
    let app = spawn_app_with(|s| s.smtp.url = None).await;
    assert_eq!(app.signup("ana@acme.test", "Acme").await.status(), 202);
    let r = app
        .client
        .get(app.url("/dev/mail"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("get");
    assert_eq!(error_code(r).await, (404, "route_not_found".to_owned()));
}
