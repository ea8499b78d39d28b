//! The web UI's pages in headless Chromium: each passes axe-core's serious and critical rules
//! in both themes, and is screenshotted in each (`target/tmp/screenshots/`).

use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app_with;
use crate::helpers::webdriver::Browser;

#[tokio::test]
async fn the_development_mailbox_reads_well_in_both_themes_and_remembers_the_choice() {
    let app = spawn_app_with(|s| s.smtp.url = None).await;
    assert_eq!(app.signup("ana@acme.test", "Acme").await.status(), 202);

    let browser = Browser::start().await;
    browser.goto(&app.url("/dev/mail")).await;
    let heading = browser.wait_for("h1", Duration::from_secs(20)).await;
    assert_eq!(browser.text(&heading).await, "Development mailbox");
    let mail = browser.wait_for(".mail pre", Duration::from_secs(5)).await;
    assert!(
        crate::helpers::code_in(&browser.text(&mail).await).is_some(),
        "the code is readable on the page"
    );
    let theme = || async {
        browser
            .execute(
                "return getComputedStyle(document.documentElement).colorScheme;",
                json!([]),
            )
            .await
    };
    assert_eq!(theme().await, "light", "the system's preference at first");
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "light: {violations:#?}");
    browser.screenshot("dev-mail-light").await;

    let toggle = browser
        .wait_for("#theme-toggle", Duration::from_secs(5))
        .await;
    assert_eq!(
        browser.attribute(&toggle, "aria-label").await.as_deref(),
        Some("Switch to the dark theme")
    );
    browser.click(&toggle).await;
    assert_eq!(theme().await, "dark");
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "dark: {violations:#?}");
    browser.screenshot("dev-mail-dark").await;

    // The choice is remembered in this browser.
    browser.refresh().await;
    browser.wait_for("h1", Duration::from_secs(20)).await;
    assert_eq!(theme().await, "dark");
    browser.quit().await;
}

/// Waits until the page's heading reads `text` (a navigation finished).
async fn wait_for_heading(browser: &Browser, text: &str) {
    let start = std::time::Instant::now();
    loop {
        let h1 = browser
            .execute(
                "var h = document.querySelector('h1'); return h ? h.textContent.trim() : '';",
                json!([]),
            )
            .await;
        if h1 == text {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the heading is {h1}, not {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks the page with axe-core in the light and the dark theme (switched with the page's
/// own theme button) and screenshots each.
async fn check_both_themes(browser: &Browser, name: &str) {
    for theme in ["light", "dark"] {
        let scheme = browser
            .execute(
                "return getComputedStyle(document.documentElement).colorScheme;",
                json!([]),
            )
            .await;
        if scheme != theme {
            let toggle = browser
                .wait_for("#theme-toggle", Duration::from_secs(5))
                .await;
            browser.click(&toggle).await;
        }
        let violations = browser.accessibility_violations().await;
        assert!(violations.is_empty(), "{name}, {theme}: {violations:#?}");
        browser.screenshot(&format!("{name}-{theme}")).await;
    }
}

async fn fill(browser: &Browser, css: &str, text: &str) {
    let field = browser.wait_for(css, Duration::from_secs(5)).await;
    browser.type_text(&field, text).await;
}

/// Sends the page's form (its main button).
async fn submit(browser: &Browser) {
    let button = browser
        .wait_for(
            "main button[type=submit].button:not(.button-quiet)",
            Duration::from_secs(5),
        )
        .await;
    browser.click(&button).await;
}

#[tokio::test]
async fn a_newcomer_signs_up_reads_the_code_in_the_mailbox_and_lands_on_the_overview() {
    let app = spawn_app_with(|s| {
        s.smtp.url = None;
        s.app_url = "http://127.0.0.1:8080".into();
    })
    .await;
    let browser = Browser::start().await;
    browser.resize(1280, 1000).await;
    browser.goto(&app.url("/")).await;
    wait_for_heading(&browser, "Sign in").await;
    check_both_themes(&browser, "sign-in").await;

    let link = browser
        .wait_for("a[href='/sign-up']", Duration::from_secs(5))
        .await;
    browser.click(&link).await;
    wait_for_heading(&browser, "Create your account").await;
    check_both_themes(&browser, "sign-up").await;
    fill(&browser, "#f-company_name", "Acme Outdoor").await;
    fill(&browser, "#f-name", "Ana").await;
    fill(&browser, "#f-email", "ana@acme.test").await;
    fill(&browser, "#f-password", "short").await;
    submit(&browser).await;
    // The weak password is named next to its field.
    let error = browser
        .wait_for("#f-password-error", Duration::from_secs(20))
        .await;
    assert!(
        browser.text(&error).await.contains("12"),
        "the rule is said"
    );
    check_both_themes(&browser, "sign-up-error").await;
    fill(&browser, "#f-password", crate::helpers::PASSWORD).await;
    submit(&browser).await;
    wait_for_heading(&browser, "Confirm your email").await;
    browser
        .wait_for("a[href='/dev/mail']", Duration::from_secs(5))
        .await;
    check_both_themes(&browser, "verify").await;

    // The code is read in the development mailbox, as a newcomer would.
    browser.goto(&app.url("/dev/mail")).await;
    let mail = browser.wait_for(".mail pre", Duration::from_secs(20)).await;
    let code = crate::helpers::code_in(&browser.text(&mail).await).expect("code");
    browser
        .goto(&app.url("/verify?email=ana%40acme.test"))
        .await;
    wait_for_heading(&browser, "Confirm your email").await;
    assert_eq!(
        browser
            .execute(
                "return document.querySelector('#f-email').value;",
                json!([])
            )
            .await,
        "ana@acme.test",
        "the address comes filled in"
    );
    fill(&browser, "#f-code", &code).await;
    fill(&browser, "#f-password", crate::helpers::PASSWORD).await;
    submit(&browser).await;
    wait_for_heading(&browser, "Overview").await;
    let body = browser
        .execute("return document.body.innerText;", json!([]))
        .await;
    let body = body.as_str().unwrap_or_default();
    assert!(
        body.contains("Acme Outdoor") && body.contains("0 of 5 done"),
        "{body}"
    );
    let current = browser
        .wait_for("nav a[aria-current=page]", Duration::from_secs(5))
        .await;
    assert_eq!(browser.text(&current).await, "Overview");
    check_both_themes(&browser, "overview").await;

    browser.goto(&app.url("/settings")).await;
    wait_for_heading(&browser, "Settings").await;
    check_both_themes(&browser, "settings").await;
    // Moving the sign-in address: the page then waits for the code mailed to the new one.
    fill(&browser, "#new-email", "ana@outdoor.test").await;
    fill(&browser, "#email-password", crate::helpers::PASSWORD).await;
    let send = browser
        .wait_for(
            "form[action='/settings/email'] button",
            Duration::from_secs(5),
        )
        .await;
    browser.click(&send).await;
    wait_for_text(
        &browser,
        "We sent a 6-digit code to ana@outdoor.test",
        Duration::from_secs(10),
    )
    .await;
    check_both_themes(&browser, "settings-email-code").await;

    // The layout holds on a phone 375 px wide: nothing scrolls sideways.
    browser.resize(375, 812).await;
    browser.goto(&app.url("/overview")).await;
    wait_for_heading(&browser, "Overview").await;
    let fits = browser
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            json!([]),
        )
        .await;
    assert_eq!(fits, true, "no sideways scrolling at 375 px");
    check_both_themes(&browser, "overview-phone").await;
    browser.resize(1280, 1000).await;

    let sign_out = browser
        .wait_for("form[action='/sign-out'] button", Duration::from_secs(5))
        .await;
    browser.click(&sign_out).await;
    wait_for_heading(&browser, "Sign in").await;
    browser.goto(&app.url("/overview")).await;
    wait_for_heading(&browser, "Sign in").await;
    browser.goto(&app.url("/forgot-password")).await;
    wait_for_heading(&browser, "Reset your password").await;
    check_both_themes(&browser, "forgot-password").await;
    browser
        .goto(&app.url("/reset-password?token=from-the-mail"))
        .await;
    wait_for_heading(&browser, "Choose a new password").await;
    check_both_themes(&browser, "reset-password").await;
    browser.goto(&app.url("/verify/resend")).await;
    wait_for_heading(&browser, "Send a new code").await;
    check_both_themes(&browser, "verify-resend").await;
    browser.quit().await;
}

/// Signs `email` up through the API and in through the sign-in page.
async fn sign_in_owner(
    app: &crate::helpers::TestApp,
    browser: &Browser,
    email: &str,
) -> crate::helpers::Member {
    let owner = app.owner(email, "Acme Outdoor").await;
    browser.resize(1280, 1000).await;
    browser.goto(&app.url("/sign-in")).await;
    wait_for_heading(browser, "Sign in").await;
    fill(browser, "#f-email", email).await;
    fill(browser, "#f-password", crate::helpers::PASSWORD).await;
    submit(browser).await;
    wait_for_heading(browser, "Overview").await;
    owner
}

/// Waits until the page's text contains `needle`.
async fn wait_for_text(browser: &Browser, needle: &str, timeout: Duration) {
    let start = std::time::Instant::now();
    loop {
        let body = browser
            .execute("return document.body.innerText;", json!([]))
            .await;
        if body.as_str().unwrap_or_default().contains(needle) {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "no {needle:?} on the page: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_owner_uploads_a_document_and_watches_it_become_ready_without_reloading() {
    let app = spawn_app_with(|s| s.app_url = "http://127.0.0.1:8080".into()).await;
    let browser = Browser::start().await;
    sign_in_owner(&app, &browser, "ana@acme.test").await;
    let link = browser
        .wait_for("nav a[href='/knowledge']", Duration::from_secs(5))
        .await;
    browser.click(&link).await;
    wait_for_heading(&browser, "Knowledge").await;
    wait_for_text(&browser, "0 of 10 documents", Duration::from_secs(5)).await;
    check_both_themes(&browser, "knowledge-empty").await;

    let dir = std::env::temp_dir().join(format!("cortex-upload-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("help-center.md");
    std::fs::write(&path, crate::helpers::knowledge::GUIDE).expect("write");
    browser
        .execute("window.notReloaded = true; return 1;", json!([]))
        .await;
    let input = browser.wait_for("#files", Duration::from_secs(5)).await;
    browser
        .type_text(&input, path.to_str().expect("utf-8 path"))
        .await;
    // The file's own line reports the upload, and the table shows the document processing.
    wait_for_text(
        &browser,
        "Uploaded: help-center is being processed.",
        Duration::from_secs(20),
    )
    .await;
    wait_for_text(&browser, "help-center", Duration::from_secs(5)).await;

    // The workers' part, done by the test: the table turns Ready by itself.
    app.run_pending_jobs().await;
    wait_for_text(&browser, "Ready", Duration::from_secs(20)).await;
    assert_eq!(
        browser
            .execute("return window.notReloaded === true;", json!([]))
            .await,
        true,
        "the page was not reloaded"
    );
    check_both_themes(&browser, "knowledge").await;

    // The test console streams a cited answer and shows what it rests on.
    let bot = browser
        .wait_for("nav a[href='/bot']", Duration::from_secs(5))
        .await;
    browser.click(&bot).await;
    wait_for_heading(&browser, "Bot").await;
    check_both_themes(&browser, "bot").await;
    fill(
        &browser,
        "#console-message",
        "how long until my money comes back after a return?",
    )
    .await;
    submit(&browser).await;
    wait_for_text(&browser, "Latency", Duration::from_secs(30)).await;
    let output = browser
        .wait_for("#console-output", Duration::from_secs(5))
        .await;
    let text = browser.text(&output).await;
    assert!(text.contains("14 days"), "{text}");
    assert!(
        text.contains("Sources") && text.contains("help-center"),
        "{text}"
    );
    assert!(text.contains("Abstained\nNo"), "{text}");
    check_both_themes(&browser, "bot-console").await;

    // The console's question is a conversation now, with its sources.
    browser.goto(&app.url("/conversations")).await;
    wait_for_heading(&browser, "Conversations").await;
    check_both_themes(&browser, "conversations").await;
    let first = browser
        .wait_for("main tbody a", Duration::from_secs(5))
        .await;
    browser.click(&first).await;
    wait_for_heading(&browser, "Test console conversation").await;
    wait_for_text(&browser, "Sources (1)", Duration::from_secs(5)).await;
    check_both_themes(&browser, "conversation").await;

    // The Overview draws the week from its table.
    browser.goto(&app.url("/overview")).await;
    wait_for_heading(&browser, "Overview").await;
    browser
        .wait_for("#activity-chart canvas", Duration::from_secs(10))
        .await;
    check_both_themes(&browser, "overview-activity").await;
    browser.goto(&app.url("/knowledge")).await;
    wait_for_heading(&browser, "Knowledge").await;

    let doc = browser
        .wait_for("#documents td a", Duration::from_secs(5))
        .await;
    browser.click(&doc).await;
    wait_for_heading(&browser, "help-center").await;
    wait_for_text(&browser, "within 14 days", Duration::from_secs(5)).await;
    check_both_themes(&browser, "document").await;
    let delete = browser
        .wait_for("a.button-danger", Duration::from_secs(5))
        .await;
    browser.click(&delete).await;
    wait_for_heading(&browser, "Delete “help-center”?").await;
    check_both_themes(&browser, "document-delete").await;
    let confirm = browser
        .wait_for("button.button-danger-solid", Duration::from_secs(5))
        .await;
    browser.click(&confirm).await;
    wait_for_heading(&browser, "Knowledge").await;
    wait_for_text(&browser, "The document is deleted.", Duration::from_secs(5)).await;
    browser.quit().await;
}

#[tokio::test]
async fn an_invited_agent_joins_from_a_second_browser_and_sees_no_keys_or_team_management() {
    let app = spawn_app_with(|s| s.app_url = "http://127.0.0.1:8080".into()).await;
    let owner = Browser::start().await;
    sign_in_owner(&app, &owner, "ana@acme.test").await;
    owner.goto(&app.url("/team")).await;
    wait_for_heading(&owner, "Team").await;
    fill(&owner, "#invite-email", "ben@acme.test").await;
    let send = owner
        .wait_for(
            "form[action='/team/invitations'] button[type=submit]",
            Duration::from_secs(5),
        )
        .await;
    owner.click(&send).await;
    wait_for_text(
        &owner,
        "The invitation is on its way",
        Duration::from_secs(20),
    )
    .await;
    check_both_themes(&owner, "team-owner").await;

    owner.goto(&app.url("/api-keys")).await;
    wait_for_heading(&owner, "API keys").await;
    fill(&owner, "#key-name", "Shop backend").await;
    let create = owner
        .wait_for(
            "form[action='/api-keys'] button[type=submit]",
            Duration::from_secs(5),
        )
        .await;
    owner.click(&create).await;
    wait_for_text(&owner, "Copy it now", Duration::from_secs(20)).await;
    check_both_themes(&owner, "api-keys").await;
    owner.goto(&app.url("/audit")).await;
    wait_for_heading(&owner, "Audit log").await;
    wait_for_text(&owner, "API key created", Duration::from_secs(5)).await;
    check_both_themes(&owner, "audit").await;

    let mail = app.last_mail_to("ben@acme.test").await;
    let token = crate::helpers::token_in(&mail.body).expect("token");
    let agent = Browser::start().await;
    agent.resize(1280, 1000).await;
    agent
        .goto(&app.url(&format!("/accept-invitation?token={token}")))
        .await;
    wait_for_heading(&agent, "Join your team").await;
    check_both_themes(&agent, "accept-invitation").await;
    fill(&agent, "#f-name", "Ben").await;
    fill(&agent, "#f-password", crate::helpers::PASSWORD).await;
    submit(&agent).await;
    wait_for_heading(&agent, "Overview").await;
    let nav = agent.wait_for("nav.sidenav", Duration::from_secs(5)).await;
    let items = agent.text(&nav).await;
    assert!(
        items.contains("Team") && !items.contains("API keys"),
        "{items}"
    );
    agent.goto(&app.url("/team")).await;
    wait_for_heading(&agent, "Team").await;
    let body = agent
        .execute("return document.body.innerText;", json!([]))
        .await;
    let body = body.as_str().unwrap_or_default();
    assert!(
        body.contains("ana@acme.test") && !body.contains("Invite someone"),
        "{body}"
    );
    check_both_themes(&agent, "team-agent").await;
    agent.goto(&app.url("/api-keys")).await;
    wait_for_heading(&agent, "Not allowed").await;
    check_both_themes(&agent, "forbidden").await;
    agent.quit().await;
    owner.quit().await;
}

#[tokio::test]
async fn a_widget_key_made_in_the_dashboard_answers_on_a_page_of_another_origin() {
    use crate::helpers::widget::{shop_page, spawn_page};
    let app = spawn_app_with(|s| s.app_url = "http://127.0.0.1:8080".into()).await;
    let browser = Browser::start().await;
    let owner = sign_in_owner(&app, &browser, "ana@acme.test").await;
    app.upload_guide(&owner).await;
    let html = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let shop = spawn_page(html.clone()).await;

    browser.goto(&app.url("/channels")).await;
    wait_for_heading(&browser, "Channels").await;
    check_both_themes(&browser, "channels-empty").await;
    fill(&browser, "#wk-origins", &shop).await;
    let title = browser.wait_for("#wk-title", Duration::from_secs(5)).await;
    browser
        .execute(
            "document.querySelector('#wk-title').value = ''; return 1;",
            json!([]),
        )
        .await;
    browser.type_text(&title, "Acme help").await;
    let preview = browser
        .execute(
            "return document.getElementById('wp-title').textContent;",
            json!([]),
        )
        .await;
    assert_eq!(preview, "Acme help", "the preview follows the form");
    let create = browser
        .wait_for("#widget-form button[type=submit]", Duration::from_secs(5))
        .await;
    browser.click(&create).await;
    wait_for_text(&browser, "Paste this tag", Duration::from_secs(20)).await;
    check_both_themes(&browser, "channels").await;
    let snippet = browser
        .wait_for("#snippet-new", Duration::from_secs(5))
        .await;
    let snippet = browser.text(&snippet).await;
    let key = snippet
        .split("data-key=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the key in the snippet")
        .to_owned();
    // The snippet names this server; the shop page is served from its own loopback origin.
    *html.lock().expect("lock") = shop_page(&app.url(""), &key);
    browser.goto(&shop).await;
    let host = browser
        .wait_for("#cortexlayer-widget", Duration::from_secs(20))
        .await;
    let root = browser.shadow(&host).await;
    browser
        .click(&browser.find(&root, ".cl-bubble").await)
        .await;
    let input = browser.find(&root, "#cl-input").await;
    browser.type_text(&input, "How long do refunds take?").await;
    browser.click(&browser.find(&root, ".cl-send").await).await;
    let start = std::time::Instant::now();
    loop {
        let assistants = browser.find_all(&root, ".cl-assistant").await;
        if let Some(last) = assistants.last()
            && assistants.len() >= 2
            && browser.attribute(last, "data-state").await.as_deref() == Some("done")
        {
            let text = browser.text(last).await;
            assert!(text.contains("14 days"), "{text}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no answer in the widget"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.quit().await;
}

#[tokio::test]
async fn the_operator_suspends_a_tenant_and_its_dashboard_says_so() {
    let app = spawn_app_with(|s| s.app_url = "http://127.0.0.1:8080".into()).await;
    let member = Browser::start().await;
    sign_in_owner(&app, &member, "ana@acme.test").await;
    cortexlayer_server::tenancy::operators::create_admin(
        &app.state,
        "ops@cortex.test",
        crate::helpers::PASSWORD.into(),
    )
    .await
    .expect("admin");

    let ops = Browser::start().await;
    ops.resize(1280, 1000).await;
    ops.goto(&app.url("/operator")).await;
    wait_for_heading(&ops, "Operator sign-in").await;
    check_both_themes(&ops, "operator-sign-in").await;
    fill(&ops, "#f-email", "ops@cortex.test").await;
    fill(&ops, "#f-password", crate::helpers::PASSWORD).await;
    submit(&ops).await;
    wait_for_heading(&ops, "Tenants").await;
    check_both_themes(&ops, "operator-tenants").await;
    let tenant = ops.wait_for("main tbody a", Duration::from_secs(5)).await;
    ops.click(&tenant).await;
    wait_for_heading(&ops, "Acme Outdoor").await;
    check_both_themes(&ops, "operator-tenant").await;
    let suspend = ops
        .wait_for("a.button-danger", Duration::from_secs(5))
        .await;
    ops.click(&suspend).await;
    wait_for_heading(&ops, "Suspend Acme Outdoor?").await;
    check_both_themes(&ops, "operator-suspend").await;
    let confirm = ops
        .wait_for("button.button-danger-solid", Duration::from_secs(5))
        .await;
    ops.click(&confirm).await;
    wait_for_text(&ops, "The tenant is suspended", Duration::from_secs(20)).await;

    member.goto(&app.url("/overview")).await;
    wait_for_heading(&member, "This workspace is suspended").await;
    check_both_themes(&member, "suspended").await;
    ops.quit().await;
    member.quit().await;
}

#[tokio::test]
async fn a_form_posted_from_another_sites_page_changes_nothing() {
    use crate::helpers::widget::spawn_page;
    let app = spawn_app_with(|s| s.app_url = "http://127.0.0.1:8080".into()).await;
    let browser = Browser::start().await;
    sign_in_owner(&app, &browser, "ana@acme.test").await;
    // A page of another origin that posts a form to the dashboard as soon as it loads.
    let html = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let evil = spawn_page(html.clone()).await;
    *html.lock().expect("lock") = format!(
        "<!doctype html><html lang=\"en\"><head><title>Win a prize</title></head><body>\
         <form id=\"f\" method=\"post\" action=\"{}\"><input name=\"csrf\" value=\"guess\"></form>\
         <script>document.getElementById('f').submit();</script></body></html>",
        app.url("/settings/sign-out-everywhere")
    );
    browser.goto(&evil).await;
    // The post lands on the dashboard, which refuses it.
    let start = std::time::Instant::now();
    loop {
        let url = browser.execute("return location.href;", json!([])).await;
        if url
            .as_str()
            .is_some_and(|u| u.contains("/settings/sign-out-everywhere"))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the form did not post: {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = browser
        .execute("return document.body.innerText;", json!([]))
        .await;
    assert!(
        body.as_str().unwrap_or_default().contains("csrf_failed")
            || body.as_str().unwrap_or_default().contains("Sign in"),
        "refused: {body}"
    );
    // Still signed in: nothing was revoked.
    browser.goto(&app.url("/settings")).await;
    wait_for_heading(&browser, "Settings").await;
    wait_for_text(&browser, "This browser", Duration::from_secs(5)).await;
    browser.quit().await;
}
