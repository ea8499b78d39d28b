//! The widget in a real browser: a page served from another origin on loopback embeds the
//! script with one tag; headless Chromium opens the bubble, asks, and sees the answer stream
//! in with its sources; rates it; after a reload the conversation is still there.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::webdriver::Browser;
use crate::helpers::widget::{shop_page, spawn_page, widget_key};

#[tokio::test]
async fn a_visitor_asks_in_the_widget_and_sees_the_streamed_cited_answer_in_chromium() {
    let app = crate::helpers::spawn_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    app.upload_guide(&owner).await;
    let html = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let page = spawn_page(html.clone()).await;
    let key = widget_key(&app, &owner.access, &[&page]).await;
    let public = key["public_key"].as_str().expect("key");
    *html.lock().expect("lock") = shop_page(&app.url(""), public);

    let browser = Browser::start().await;
    browser.goto(&page).await;
    let host = browser
        .wait_for("#cortexlayer-widget", Duration::from_secs(20))
        .await;
    let root = browser.shadow(&host).await;
    let bubble = browser.find(&root, ".cl-bubble").await;
    assert_eq!(
        browser.attribute(&bubble, "aria-expanded").await.as_deref(),
        Some("false")
    );
    browser.click(&bubble).await;
    assert_eq!(
        browser.attribute(&bubble, "aria-expanded").await.as_deref(),
        Some("true")
    );
    let panel = browser.find(&root, ".cl-panel").await;
    assert_eq!(
        browser.attribute(&panel, "role").await.as_deref(),
        Some("dialog")
    );
    assert_eq!(
        browser.focused_in_shadow_id().await.as_deref(),
        Some("cl-input"),
        "the question box takes the focus"
    );

    let input = browser.find(&root, "#cl-input").await;
    browser.type_text(&input, "How long do refunds take?").await;
    browser.click(&browser.find(&root, ".cl-send").await).await;

    // The answer streams in, then settles with its sources and the feedback buttons.
    let start = std::time::Instant::now();
    let answer = loop {
        let assistants = browser.find_all(&root, ".cl-assistant").await;
        if let Some(last) = assistants.last()
            && assistants.len() >= 2
            && browser.attribute(last, "data-state").await.as_deref() == Some("done")
        {
            break last.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no answer in the widget"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let text = browser.text(&answer).await;
    assert!(text.contains("14 days"), "{text}");
    let tokens: u32 = browser
        .attribute(&answer, "data-tokens")
        .await
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    assert!(tokens >= 1, "the answer arrived as a stream of tokens");
    let sources = browser
        .find_all(&root, ".cl-assistant:last-child .cl-sources li")
        .await;
    assert!(!sources.is_empty(), "sources are shown");
    assert!(browser.text(&sources[0]).await.contains("guide"));
    let greeting = browser.find_all(&root, ".cl-assistant").await;
    assert!(
        !browser.text(&greeting[0]).await.is_empty(),
        "the greeting opens the chat"
    );

    // The open widget with an answer passes axe-core's serious and critical rules.
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "{violations:#?}");
    browser.screenshot("widget-answered").await;
    // The check sees inside the widget's shadow root: a button planted there without a name
    // is reported (then removed).
    browser
        .execute(
            "var b = document.createElement('button'); b.id = 'planted'; \
             document.getElementById('cortexlayer-widget').shadowRoot.appendChild(b);",
            serde_json::json!([]),
        )
        .await;
    let planted = browser.accessibility_violations().await;
    assert!(
        planted
            .iter()
            .any(|v| v.starts_with("button-name") && v.contains("planted")),
        "{planted:#?}"
    );
    browser
        .execute(
            "document.getElementById('cortexlayer-widget').shadowRoot.getElementById('planted').remove();",
            serde_json::json!([]),
        )
        .await;

    let helpful = browser
        .find(&root, ".cl-assistant:last-child .cl-feedback button")
        .await;
    assert_eq!(browser.text(&helpful).await, "Helpful");
    browser.click(&helpful).await;
    assert_eq!(
        browser.attribute(&helpful, "aria-pressed").await.as_deref(),
        Some("true")
    );

    // The team sees the widget conversation with the visitor's verdict.
    let start = std::time::Instant::now();
    let conversation = loop {
        let list: Value = app
            .get_as("/api/v1/conversations?channel=widget", &owner.access)
            .await
            .json()
            .await
            .expect("json");
        if let Some(id) = list["data"][0]["id"].as_str() {
            let tenant = owner.tenant_id.parse().expect("tenant");
            let feedback = app
                .state
                .store
                .list_feedback(tenant, id.parse().expect("id"))
                .await
                .expect("feedback");
            if feedback.first().is_some_and(|f| f.helpful) {
                break id.to_owned();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no helpful verdict stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // After a reload the conversation is still there.
    browser.refresh().await;
    let host = browser
        .wait_for("#cortexlayer-widget", Duration::from_secs(20))
        .await;
    let root = browser.shadow(&host).await;
    browser
        .click(&browser.find(&root, ".cl-bubble").await)
        .await;
    let start = std::time::Instant::now();
    loop {
        let users = browser.find_all(&root, ".cl-user").await;
        if let Some(first) = users.first() {
            assert_eq!(browser.text(first).await, "How long do refunds take?");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the conversation was not restored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pressed = browser
        .find(
            &root,
            ".cl-assistant:last-child .cl-feedback button[aria-pressed=true]",
        )
        .await;
    assert_eq!(browser.text(&pressed).await, "Helpful");
    browser.quit().await;
    assert!(!conversation.is_empty());
}

#[tokio::test]
async fn a_light_brand_colour_keeps_the_widget_readable() {
    let app = crate::helpers::spawn_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let html = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let page = spawn_page(html.clone()).await;
    let r = app
        .post_as(
            "/api/v1/widget-keys",
            &owner.access,
            &serde_json::json!({
                "name": "Shop",
                "allowed_origins": [page],
                "theme": { "color": "#ffd600", "title": "Questions?", "position": "left" }
            }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.expect("json");
    *html.lock().expect("lock") = shop_page(&app.url(""), key["public_key"].as_str().expect("key"));

    let browser = Browser::start().await;
    browser.goto(&page).await;
    let host = browser
        .wait_for("#cortexlayer-widget", Duration::from_secs(20))
        .await;
    let root = browser.shadow(&host).await;
    // The theme arrives with the configuration: wait for the title.
    let start = std::time::Instant::now();
    while browser
        .text(&browser.find(&root, ".cl-head h2").await)
        .await
        != "Questions?"
    {
        assert!(start.elapsed() < Duration::from_secs(20), "no theme");
        browser
            .click(&browser.find(&root, ".cl-bubble").await)
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ink = browser
        .execute(
            "return getComputedStyle(document.getElementById('cortexlayer-widget') \
             .shadowRoot.querySelector('.cl-head')).color;",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(ink, "rgb(17, 17, 17)", "dark text on the yellow header");
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "{violations:#?}");
    browser.screenshot("widget-light-brand-colour").await;
    browser.quit().await;
}
