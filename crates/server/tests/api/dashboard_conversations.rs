//! The Conversations pages over HTTP: the list across channels with its filters, and one
//! thread with each answer's sources, confidence and the customer's verdict.

use serde_json::{Value, json};

use crate::helpers::web::Web;
use crate::helpers::widget::widget_key;
use crate::helpers::{PASSWORD, TestApp, spawn_app};

const SHOP: &str = "https://shop.example";

async fn widget_turn(app: &TestApp, key: &str, visitor: &str, message: &str) -> Value {
    let r = app
        .client
        .post(app.url("/widget/v1/messages"))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", SHOP)
        .body(json!({ "key": key, "visitor_id": visitor, "message": message }).to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    r.json().await.expect("json")
}

#[tokio::test]
async fn the_list_filters_by_channel_and_abstention_and_a_thread_shows_sources_and_verdicts() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    app.upload_one(
        &owner.access,
        "guide.md",
        crate::helpers::knowledge::GUIDE.as_bytes(),
    )
    .await;
    app.run_pending_jobs().await;
    let key = widget_key(&app, &owner.access, &[SHOP]).await["public_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let visitor = "0000aaaa-1111-2222-3333-444455550000";
    let answered = widget_turn(&app, &key, visitor, "how long do refunds take?").await;
    let r = app
        .client
        .post(app.url("/widget/v1/feedback"))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", SHOP)
        .body(
            json!({ "key": key, "visitor_id": visitor, "conversation_id": answered["conversation_id"],
                    "message_id": answered["message_id"], "helpful": true })
            .to_string(),
        )
        .send()
        .await
        .expect("feedback");
    assert_eq!(r.status(), 204);
    // A second visitor asks for a person: that conversation is handed off.
    let handed_off = widget_turn(
        &app,
        &key,
        "0000aaaa-1111-2222-3333-444455550001",
        "can I talk to a human please",
    )
    .await;
    assert_eq!(handed_off["handoff_requested"], true, "{handed_off}");
    // Through the API: a question the guide does not answer.
    let r = app
        .post_as(
            "/api/v1/chat",
            &owner.access,
            &json!({ "message": "what is the office dog called?" }),
        )
        .await;
    assert_eq!(r.status(), 200);

    let web = Web::new(&app);
    web.sign_in("ana@acme.test", PASSWORD).await;
    let page = web.get("/conversations").await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains(">Web widget</a>") && page.html.contains(">Test console</a>"),
        "{}",
        page.html
    );
    let only_widget = web.get("/conversations?channel=widget").await;
    assert!(
        only_widget.html.contains(">Web widget</a>")
            && !only_widget.html.contains(">Test console</a>"),
        "{}",
        only_widget.html
    );
    let abstained = web.get("/conversations?abstained=on").await;
    assert!(
        abstained.html.contains(">Test console</a>") && !abstained.html.contains(">Web widget</a>"),
        "{}",
        abstained.html
    );
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d");
    let later = web.get(&format!("/conversations?from={tomorrow}")).await;
    assert!(
        later
            .html
            .contains("No conversation matches these filters."),
        "{}",
        later.html
    );
    let handed = web.get("/conversations?handed_off=on").await;
    let hid = handed_off["conversation_id"].as_str().expect("id");
    assert!(handed.html.contains(hid), "{}", handed.html);
    assert!(
        !handed
            .html
            .contains(answered["conversation_id"].as_str().expect("id"))
    );

    let id = answered["conversation_id"].as_str().expect("id");
    let thread = web.get(&format!("/conversations/{id}")).await;
    assert_eq!(thread.status, 200);
    assert!(
        thread.html.contains("how long do refunds take?"),
        "{}",
        thread.html
    );
    assert!(thread.html.contains("14 days"), "{}", thread.html);
    assert!(thread.html.contains("Sources (1)"), "{}", thread.html);
    assert!(
        thread.html.contains("<dt>Confidence</dt>"),
        "{}",
        thread.html
    );
    assert!(
        thread.html.contains("The customer found this helpful"),
        "{}",
        thread.html
    );

    // Another tenant's conversation is not found.
    app.owner("bo@beta.test", "Beta").await;
    let other = Web::new(&app);
    other.sign_in("bo@beta.test", PASSWORD).await;
    assert_eq!(other.get(&format!("/conversations/{id}")).await.status, 404);
    assert!(
        other
            .get("/conversations")
            .await
            .html
            .contains("No conversation yet")
    );
}
