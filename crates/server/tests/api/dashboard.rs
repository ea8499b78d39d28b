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

use crate::helpers::PASSWORD;
use crate::helpers::web::Web;

#[tokio::test]
async fn a_signed_out_visitor_is_sent_to_sign_in_and_a_member_to_the_overview() {
    let app = spawn_app().await;
    let web = Web::new(&app);
    let root = web.get("/").await;
    assert_eq!(
        (root.status, root.location.as_deref()),
        (303, Some("/sign-in"))
    );
    let overview = web.get("/overview").await;
    assert_eq!(
        (overview.status, overview.location.as_deref()),
        (303, Some("/sign-in?next=%2Foverview"))
    );
    let sign_in = web.get("/sign-in?next=%2Fsettings").await;
    assert_eq!(sign_in.status, 200);
    assert!(
        sign_in.html.contains("<h1>Sign in</h1>"),
        "{}",
        sign_in.html
    );
    // Before signing in, the browser gets a cookie of its own to bind its forms' token to.
    let anon = sign_in.cookie("__Host-cl_csrf").expect("anon cookie");
    assert!(
        anon.contains("HttpOnly") && anon.contains("SameSite=Lax") && anon.contains("Secure"),
        "{anon}"
    );

    app.owner("ana@acme.test", "Acme").await;
    let page = web
        .submit(
            "/sign-in",
            &[
                ("email", "ana@acme.test"),
                ("password", PASSWORD),
                ("next", "/settings"),
            ],
        )
        .await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/settings"))
    );
    let cookie = page.cookie("__Host-cl_session").expect("session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Max-Age=604800",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let root = web.get("/").await;
    assert_eq!(root.location.as_deref(), Some("/overview"));
    let overview = web.get("/overview").await;
    assert_eq!(overview.status, 200);
    assert!(overview.html.contains("Acme"), "{}", overview.html);
    assert!(overview.html.contains("0 of 5 done"), "{}", overview.html);

    // Only paths of this site are places to go back to.
    let page = web
        .submit(
            "/sign-in",
            &[
                ("email", "ana@acme.test"),
                ("password", PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/overview"));
}

#[tokio::test]
async fn signing_up_in_the_browser_verifies_with_the_mailed_code_and_opens_the_overview() {
    let app = spawn_app().await;
    let web = Web::new(&app);
    web.get("/sign-up").await;
    // A weak password is named next to its field, and nothing is mailed.
    let page = web
        .submit(
            "/sign-up",
            &[
                ("company_name", "Acme"),
                ("name", ""),
                ("email", "ana@acme.test"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.html.contains("id=\"f-password-error\""),
        "{}",
        page.html
    );
    assert!(page.html.contains("aria-invalid=\"true\""));
    assert!(page.html.contains("value=\"Acme\""), "what was typed stays");
    assert!(app.mails_to("ana@acme.test").is_empty());

    let page = web.sign_up("ana@acme.test", "Acme").await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/overview?welcome=1"))
    );
    let overview = web.get("/overview?welcome=1").await;
    assert_eq!(overview.status, 200);
    assert!(
        overview.html.contains("Your workspace is ready"),
        "{}",
        overview.html
    );
    // The same member through the API: the tenant exists with its owner.
    let r = app.login("ana@acme.test", PASSWORD).await;
    assert_eq!(r.status(), 200);

    // A wrong code says so on the verify page.
    let other = Web::new(&app);
    other.get("/sign-up").await;
    other
        .submit(
            "/sign-up",
            &[
                ("company_name", "Beta"),
                ("email", "bo@beta.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let page = other
        .submit(
            "/verify",
            &[
                ("email", "bo@beta.test"),
                ("code", "000000"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(page.html.contains("role=\"alert\""), "{}", page.html);
    assert!(
        page.html.contains("The code is invalid or has expired."),
        "{}",
        page.html
    );
}

#[tokio::test]
async fn in_development_without_smtp_the_sign_up_page_links_the_development_mailbox() {
    let app = spawn_app_with(|s| {
        s.smtp.url = None;
        s.app_url = "http://127.0.0.1:8080".into();
    })
    .await;
    let web = Web::new(&app);
    let page = web.get("/sign-up").await;
    // Plain HTTP in development: no Secure flag, no __Host- prefix.
    let anon = page.cookie("cl_csrf").expect("cookie");
    assert!(!anon.contains("Secure"), "{anon}");
    let page = web
        .submit(
            "/sign-up",
            &[
                ("company_name", "Acme"),
                ("email", "ana@acme.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("href=\"/dev/mail\""), "{}", page.html);
    let mailbox = web.get("/dev/mail").await;
    let code = crate::helpers::code_in(&mailbox.html).expect("code");
    let page = web
        .submit(
            "/verify",
            &[
                ("email", "ana@acme.test"),
                ("code", &code),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 303);
    assert!(
        page.cookie("cl_session")
            .is_some_and(|c| !c.contains("Secure"))
    );
    assert_eq!(web.get("/overview").await.status, 200);
}

#[tokio::test]
async fn a_form_without_this_browsers_csrf_token_changes_nothing() {
    let app = spawn_app().await;
    app.owner("ana@acme.test", "Acme").await;
    let web = Web::new(&app);
    assert_eq!(web.sign_in("ana@acme.test", PASSWORD).await.status, 303);
    web.get("/settings").await;
    let token = web.csrf();
    assert!(!token.is_empty());

    let refused = [
        web.post_raw("/settings/sign-out-everywhere", &[], &[])
            .await,
        web.post_raw("/settings/sign-out-everywhere", &[("csrf", "forged")], &[])
            .await,
        // Another browser's token.
        {
            let other = Web::new(&app);
            other.sign_in("ana@acme.test", PASSWORD).await;
            other.get("/settings").await;
            web.post_raw(
                "/settings/sign-out-everywhere",
                &[("csrf", &other.csrf())],
                &[],
            )
            .await
        },
        // The right token, but posted by a page of another site.
        web.post_raw(
            "/settings/sign-out-everywhere",
            &[("csrf", &token)],
            &[("origin", "https://evil.example")],
        )
        .await,
        web.post_raw(
            "/settings/sign-out-everywhere",
            &[("csrf", &token)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await,
    ];
    for page in refused {
        assert_eq!(page.status, 403, "{}", page.html);
        assert!(page.html.contains("csrf_failed"), "{}", page.html);
    }
    // Still signed in: nothing was revoked.
    assert_eq!(web.get("/overview").await.status, 200);
    let r = app.login("ana@acme.test", PASSWORD).await;
    let me = crate::helpers::TestApp::session_of(r).await;
    let sessions: Vec<serde_json::Value> = app
        .get_as("/api/v1/me/sessions", &me.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        sessions.len(),
        4,
        "two browsers, the owner's signup and this login"
    );

    // A signed-out form needs its token too: no sign-in without it.
    let stranger = Web::new(&app);
    let page = stranger
        .post_raw(
            "/sign-in",
            &[("email", "ana@acme.test"), ("password", PASSWORD)],
            &[],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(page.cookie("__Host-cl_session").is_none());

    // With the token, the same request goes through.
    let page = web
        .post_raw(
            "/settings/sign-out-everywhere",
            &[("csrf", &token)],
            &[("origin", &app.base)],
        )
        .await;
    assert_eq!(page.status, 303);
}

#[tokio::test]
async fn signing_out_ends_this_browsers_session_and_everywhere_ends_them_all() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    let (laptop, phone) = (Web::new(&app), Web::new(&app));
    laptop.sign_in("ana@acme.test", PASSWORD).await;
    phone.sign_in("ana@acme.test", PASSWORD).await;
    let settings = laptop.get("/settings").await;
    assert_eq!(settings.status, 200);
    assert!(settings.html.contains("This browser"), "{}", settings.html);

    laptop.get("/overview").await;
    let page = laptop.submit("/sign-out", &[]).await;
    assert_eq!(page.location.as_deref(), Some("/sign-in?signed_out=1"));
    assert_eq!(
        laptop.get("/overview").await.status,
        303,
        "the laptop is signed out"
    );
    assert_eq!(phone.get("/overview").await.status, 200, "the phone is not");
    assert_eq!(
        app.refresh(&owner.refresh).await.status(),
        200,
        "nor is the API client"
    );

    phone.get("/settings").await;
    let page = phone.submit("/settings/sign-out-everywhere", &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(phone.get("/overview").await.status, 303);
    let r = app.login("ana@acme.test", PASSWORD).await;
    let fresh = crate::helpers::TestApp::session_of(r).await;
    let actions = app.audit_actions(&fresh).await;
    assert!(
        actions.contains(&"auth.sessions_revoked".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_forgotten_password_is_reset_from_the_mailed_link_in_the_browser() {
    let app = spawn_app().await;
    app.owner("ana@acme.test", "Acme").await;
    let signed_in = Web::new(&app);
    signed_in.sign_in("ana@acme.test", PASSWORD).await;

    let web = Web::new(&app);
    web.get("/forgot-password").await;
    let page = web
        .submit("/forgot-password", &[("email", "ana@acme.test")])
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.html
            .contains("a link to reset its password is on its way"),
        "{}",
        page.html
    );
    let mail = app.nth_mail_about("ana@acme.test", "Reset your", 1).await;
    let link = crate::helpers::token_in(&mail.body).expect("token");
    let page = web.get(&format!("/reset-password?token={link}")).await;
    assert_eq!(page.status, 200);
    let page = web
        .submit(
            "/reset-password",
            &[("token", &link), ("password", "a brand new long password")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("Your new password is set"),
        "{}",
        page.html
    );
    assert_eq!(
        signed_in.get("/overview").await.status,
        303,
        "every session ended"
    );
    assert_eq!(
        web.sign_in("ana@acme.test", "a brand new long password")
            .await
            .status,
        303
    );

    // The link worked once.
    let again = Web::new(&app);
    again.get(&format!("/reset-password?token={link}")).await;
    let page = again
        .submit(
            "/reset-password",
            &[("token", &link), ("password", "someone else's password")],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(
        page.html.contains("This reset link is invalid"),
        "{}",
        page.html
    );
}

#[tokio::test]
async fn a_member_of_a_suspended_tenant_is_told_so_instead_of_the_dashboard() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    let web = Web::new(&app);
    web.sign_in("ana@acme.test", PASSWORD).await;
    let operator = app.operator("ops@cortex.test").await;
    let r = app
        .post_as(
            &format!("/api/v1/admin/tenants/{}/suspend", owner.tenant_id),
            &operator,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let page = web.get("/overview").await;
    assert_eq!(page.status, 403);
    assert!(
        page.html.contains("This workspace is suspended"),
        "{}",
        page.html
    );
    // It can still sign out.
    let page = web.submit("/sign-out", &[]).await;
    assert_eq!(page.status, 303);
}

#[tokio::test]
async fn the_overview_counts_the_weeks_conversations_and_switches_the_bot() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    app.upload_one(
        &owner.access,
        "guide.md",
        crate::helpers::knowledge::GUIDE.as_bytes(),
    )
    .await;
    app.run_pending_jobs().await;
    for question in [
        "how long do refunds take?",
        "what is the office dog called?",
    ] {
        let r = app
            .post_as(
                "/api/v1/chat",
                &owner.access,
                &serde_json::json!({ "message": question }),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let web = Web::new(&app);
    web.sign_in("ana@acme.test", PASSWORD).await;
    let page = web.get("/overview").await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains("<dt>Conversations today</dt><dd>2</dd>"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("<dt>Messages today</dt><dd>4</dd>"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("<dt>Answered</dt><dd>50 %</dd>"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("<dt>Did not know</dt><dd>50 %</dd>"),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("<caption>Conversations by day and channel</caption>")
    );
    assert_eq!(page.html.matches("<tr data-day=").count(), 7, "seven days");
    assert!(
        page.html.contains("<th scope=\"col\">Test console</th>"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("uPlot.iife.min."),
        "the chart library is on this page"
    );
    assert!(
        page.html.contains("2 of 5 done"),
        "documents and a question: {}",
        page.html
    );

    let page = web.submit("/overview/bot", &[("enabled", "false")]).await;
    assert_eq!(page.location.as_deref(), Some("/overview"));
    assert!(
        web.get("/overview")
            .await
            .html
            .contains("The bot is switched off")
    );
    let r = app
        .post_as(
            "/api/v1/chat",
            &owner.access,
            &serde_json::json!({ "message": "hello" }),
        )
        .await;
    assert_eq!(error_code(r).await, (409, "bot_disabled".into()));
    web.get("/overview").await;
    web.submit("/overview/bot", &[("enabled", "true")]).await;
    assert!(
        web.get("/overview")
            .await
            .html
            .contains("The bot is answering")
    );

    // An agent sees the numbers but no switch, and is refused one.
    app.member(&owner, "ben@acme.test", "agent").await;
    let agent = Web::new(&app);
    agent.sign_in("ben@acme.test", PASSWORD).await;
    let page = agent.get("/overview").await;
    assert!(page.html.contains("Conversations today") && !page.html.contains("Switch the bot off"));
    assert_eq!(
        agent
            .submit("/overview/bot", &[("enabled", "false")])
            .await
            .status,
        403
    );
}
