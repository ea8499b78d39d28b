//! The Bot page over HTTP: the settings form with the domain's messages next to the field
//! they name, what an agent may not change, and the test console (streamed and not).

use crate::helpers::web::Web;
use crate::helpers::{PASSWORD, TestApp, spawn_app};

async fn owner_with_guide(app: &TestApp) -> Web<'_> {
    let owner = app.owner("ana@acme.test", "Acme").await;
    app.upload_one(
        &owner.access,
        "guide.md",
        crate::helpers::knowledge::GUIDE.as_bytes(),
    )
    .await;
    app.run_pending_jobs().await;
    let web = Web::new(app);
    assert_eq!(web.sign_in("ana@acme.test", PASSWORD).await.status, 303);
    web
}

fn settings<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("enabled", "on"),
        ("model", ""),
        ("temperature", "0.2"),
        ("max_answer_tokens", "400"),
        ("top_k", "5"),
        ("system_prompt", "Be brief."),
        ("greeting", "Hello! Ask me about orders."),
        (
            "fallback_message",
            "I do not know that; a person will help.",
        ),
        ("answer_in_customer_language", "on"),
        ("abstention_threshold", "0.4"),
    ];
    for (k, v) in overrides {
        match fields.iter_mut().find(|(name, _)| name == k) {
            Some(f) => f.1 = v,
            None => fields.push((k, v)),
        }
    }
    fields.retain(|(_, v)| *v != "<absent>");
    fields
}

#[tokio::test]
async fn the_settings_save_and_a_refused_value_is_named_next_to_its_field() {
    let app = spawn_app().await;
    let web = owner_with_guide(&app).await;
    let page = web.get("/bot").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Test console"), "{}", page.html);

    let page = web.submit("/bot", &settings(&[("top_k", "50")])).await;
    assert_eq!(page.status, 422, "{}", page.html);
    assert!(page.html.contains("id=\"top_k-error\""), "{}", page.html);
    assert!(page.html.contains("value=\"50\""), "what was typed stays");
    assert!(
        page.html.contains("Be brief."),
        "the other fields keep their values"
    );
    let page = web
        .submit("/bot", &settings(&[("temperature", "warm")]))
        .await;
    assert_eq!(page.status, 422);
    assert!(page.html.contains("Must be a number."), "{}", page.html);

    let page = web
        .submit(
            "/bot",
            &settings(&[("answer_in_customer_language", "<absent>")]),
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/bot?saved=1"),
        "{}",
        page.html
    );
    // The API reads what the page saved: the same settings, the checkbox left unticked off.
    let member = TestApp::session_of(app.login("ana@acme.test", PASSWORD).await).await;
    let bot: serde_json::Value = app
        .get_as("/api/v1/bot", &member.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(bot["top_k"], 5);
    assert_eq!(bot["system_prompt"], "Be brief.");
    assert_eq!(bot["answer_in_customer_language"], false);
    assert_eq!(bot["enabled"], true);
    let page = web.get("/bot?saved=1").await;
    assert!(page.html.contains("The bot settings are saved."));
}

#[tokio::test]
async fn an_agent_tries_the_bot_but_cannot_change_its_settings() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    app.member(&owner, "ben@acme.test", "agent").await;
    let web = Web::new(&app);
    web.sign_in("ben@acme.test", PASSWORD).await;
    let page = web.get("/bot").await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains("<fieldset class=\"plain\" disabled>"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("Save the settings"));
    let page = web
        .submit("/bot", &settings(&[("system_prompt", "Sell more.")]))
        .await;
    assert_eq!(page.status, 403, "{}", page.html);
    let member = TestApp::session_of(app.login("ana@acme.test", PASSWORD).await).await;
    let bot: serde_json::Value = app
        .get_as("/api/v1/bot", &member.access)
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(bot["system_prompt"], "Sell more.");
}

#[tokio::test]
async fn the_test_console_answers_with_its_sources_streamed_or_as_a_page() {
    let app = spawn_app().await;
    let web = owner_with_guide(&app).await;
    web.get("/bot").await;

    // Without the page's script: the page comes back with the answer and its sources.
    let page = web
        .submit(
            "/bot/console",
            &[
                ("message", "how long until my refund arrives?"),
                ("conversation_id", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("14 days"), "{}", page.html);
    assert!(
        page.html.contains("<caption>Sources</caption>"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("<dt>Abstained</dt><dd>No</dd>"),
        "{}",
        page.html
    );

    // The script's way: server-sent events ending in the whole answer.
    let r = app
        .client
        .post(app.url("/bot/console"))
        .header("cookie", format!("__Host-cl_session={}", web_session(&web)))
        .header("accept", "text/event-stream")
        .header("x-csrf-token", web.csrf())
        .form(&[("message", "what is the office dog called?")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/event-stream")
    );
    let body = r.text().await.expect("body");
    assert!(body.contains("event: done"), "{body}");
    let done = body
        .split("event: done\ndata: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("done data");
    let view: serde_json::Value = serde_json::from_str(done).expect("json");
    assert_eq!(view["abstained"], true, "the guide does not say: {view}");
    assert_eq!(view["citations"], serde_json::json!([]), "{view}");

    // Without the token: nothing is asked.
    let r = app
        .client
        .post(app.url("/bot/console"))
        .header("cookie", format!("__Host-cl_session={}", web_session(&web)))
        .header("accept", "text/event-stream")
        .form(&[("message", "hello")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
}

fn web_session(web: &Web<'_>) -> String {
    web.cookie_value("__Host-cl_session").expect("session")
}
