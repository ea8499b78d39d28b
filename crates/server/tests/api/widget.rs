//! The web widget: keys with origins and themes, the script, the visitor endpoints (origin
//! enforcement, streaming answers, history, feedback, per-visitor limits).

use serde_json::{Value, json};

use crate::helpers::widget::{events, widget_key};
use crate::helpers::{TestApp, error_code};

const SHOP: &str = "https://shop.example";

/// Posts `body` as the widget does: JSON as `text/plain` from the page's `origin`.
async fn visitor_post(
    app: &TestApp,
    path: &str,
    origin: Option<&str>,
    body: &Value,
    stream: bool,
) -> reqwest::Response {
    let mut r = app
        .client
        .post(app.url(path))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body.to_string());
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    if stream {
        r = r.header("accept", "text/event-stream");
    }
    r.send().await.expect("post")
}

async fn visitor_get(app: &TestApp, path: &str, origin: Option<&str>) -> reqwest::Response {
    let mut r = app.client.get(app.url(path));
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    r.send().await.expect("get")
}

#[tokio::test]
async fn widget_keys_are_made_by_admins_with_origins_and_a_theme() {
    let app = crate::helpers::spawn_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    for (body, field) in [
        (json!({ "allowed_origins": [] }), "allowed_origins"),
        (
            json!({ "allowed_origins": ["shop.example"] }),
            "allowed_origins",
        ),
        (
            json!({ "allowed_origins": ["https://shop.example/contact"] }),
            "allowed_origins",
        ),
        (
            json!({ "allowed_origins": [SHOP], "theme": { "color": "red", "title": "Help", "position": "left" } }),
            "theme.color",
        ),
        (
            json!({ "allowed_origins": [SHOP], "theme": { "color": "#ff0000", "title": "", "position": "left" } }),
            "theme.title",
        ),
    ] {
        let r = app
            .post_as("/api/v1/widget-keys", &owner.access, &body)
            .await;
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["error"]["field"], field, "{body}");
    }
    let k = widget_key(
        &app,
        &owner.access,
        &["HTTPS://Shop.Example/", "http://localhost:3000"],
    )
    .await;
    assert_eq!(
        k["allowed_origins"],
        json!(["https://shop.example", "http://localhost:3000"]),
        "origins as browsers send them"
    );
    let public = k["public_key"].as_str().expect("key");
    assert!(public.starts_with("wk_"));
    assert_eq!(
        k["snippet"],
        format!(
            "<script src=\"https://support.example/widget.js\" data-key=\"{public}\" async></script>"
        )
    );
    assert_eq!(k["theme"]["position"], "right");

    let id = k["id"].as_str().expect("id");
    let r = app
        .patch_as(
            &format!("/api/v1/widget-keys/{id}"),
            &owner.access,
            &json!({ "theme": { "color": "#10b981", "title": "Acme help", "position": "left" } }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let changed: Value = r.json().await.expect("json");
    assert_eq!(changed["public_key"], public);
    assert_eq!(changed["theme"]["title"], "Acme help");

    let agent = app.member(&owner, "agent@acme.test", "agent").await;
    let r = app
        .post_as(
            "/api/v1/widget-keys",
            &agent.access,
            &json!({ "allowed_origins": [SHOP] }),
        )
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".to_owned()));
    let listed: Value = app
        .get_as("/api/v1/widget-keys", &agent.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
    let other = app.owner("owner@other.test", "Other").await;
    let r = app
        .delete_as(&format!("/api/v1/widget-keys/{id}"), &other.access)
        .await;
    assert_eq!(error_code(r).await, (404, "not_found".to_owned()));
    let r = app
        .delete_as(&format!("/api/v1/widget-keys/{id}"), &owner.access)
        .await;
    assert_eq!(r.status(), 204);
    let r = visitor_get(
        &app,
        &format!("/widget/v1/config?key={public}"),
        Some("http://localhost:3000"),
    )
    .await;
    assert_eq!(
        error_code(r).await,
        (401, "invalid_widget_key".to_owned()),
        "a revoked key stops working"
    );
    let actions = app.audit_actions(&owner).await;
    for a in [
        "widget_key.created",
        "widget_key.updated",
        "widget_key.revoked",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }

    let js = app
        .client
        .get(app.url("/widget.js"))
        .send()
        .await
        .expect("js");
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("application/javascript")
    );
    assert!(js.text().await.expect("js").contains("attachShadow"));
}

#[tokio::test]
async fn the_widget_is_configured_only_for_pages_of_its_allowed_origins() {
    let app = crate::helpers::spawn_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let k = widget_key(&app, &owner.access, &[SHOP]).await;
    let key = k["public_key"].as_str().expect("key").to_owned();

    // The page's origin decides; the answer is readable by that page only.
    let config_path = format!("/widget/v1/config?key={key}");
    let r = visitor_get(&app, &config_path, Some(SHOP)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
    let config: Value = r.json().await.expect("json");
    assert_eq!(config["title"], "Ask us anything");
    assert_eq!(config["enabled"], true);
    for origin in [
        Some("https://evil.example"),
        Some("https://shop.example.evil.test"),
        None,
    ] {
        let r = visitor_get(&app, &config_path, origin).await;
        assert!(r.headers().get("access-control-allow-origin").is_none());
        assert_eq!(
            error_code(r).await,
            (403, "origin_not_allowed".to_owned()),
            "{origin:?}"
        );
    }
    let r = visitor_get(&app, "/widget/v1/config?key=wk_unknown", Some(SHOP)).await;
    assert_eq!(error_code(r).await, (401, "invalid_widget_key".to_owned()));
}

#[tokio::test]
async fn visitors_of_allowed_origins_chat_stream_keep_their_conversation_and_rate_answers() {
    let app = crate::helpers::spawn_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "growth").await;
    app.upload_guide(&owner).await;
    let k = widget_key(&app, &owner.access, &[SHOP]).await;
    let key = k["public_key"].as_str().expect("key").to_owned();

    let visitor = "3f2a9c4e-8b1d-4f6a-9e2b-7c5d1a0e4b3f";
    let ask = |message: &str, conversation: Option<&str>, who: &str| {
        let mut body = json!({ "key": key, "visitor_id": who, "message": message });
        if let Some(c) = conversation {
            body["conversation_id"] = json!(c);
        }
        body
    };
    let r = visitor_post(
        &app,
        "/widget/v1/messages",
        Some("https://evil.example"),
        &ask("How long do refunds take?", None, visitor),
        true,
    )
    .await;
    assert_eq!(error_code(r).await, (403, "origin_not_allowed".to_owned()));

    // Streamed: tokens, the sources, then the whole answer.
    let r = visitor_post(
        &app,
        "/widget/v1/messages",
        Some(SHOP),
        &ask("How long do refunds take?", None, visitor),
        true,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], SHOP);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/event-stream")
    );
    let evs = events(r).await;
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.first() == Some(&"token"), "{names:?}");
    assert_eq!(&names[names.len() - 2..], ["citations", "done"]);
    let streamed: String = evs
        .iter()
        .filter(|(n, _)| n == "token")
        .map(|(_, d)| d["text"].as_str().unwrap_or(""))
        .collect();
    let done = &evs.last().expect("done").1;
    assert_eq!(done["answer"], streamed);
    assert!(streamed.contains("14 days"), "{streamed}");
    assert_eq!(done["citations"][0]["title"], "guide");
    assert!(
        done.get("usage").is_none() && done.get("model").is_none(),
        "{done}"
    );
    let conversation = done["conversation_id"].as_str().expect("id").to_owned();
    let answer_id = done["message_id"].as_str().expect("id").to_owned();

    // The same visitor continues; another visitor cannot, nor read it.
    let r = visitor_post(
        &app,
        "/widget/v1/messages",
        Some(SHOP),
        &ask(
            "Which countries do you ship to?",
            Some(&conversation),
            visitor,
        ),
        false,
    )
    .await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.expect("json");
    assert_eq!(second["conversation_id"], conversation.as_str());
    let stranger = "0000aaaa-1111-2222-3333-444455556666";
    let r = visitor_post(
        &app,
        "/widget/v1/messages",
        Some(SHOP),
        &ask("and then?", Some(&conversation), stranger),
        false,
    )
    .await;
    assert_eq!(error_code(r).await, (404, "not_found".to_owned()));
    let history =
        |who: &str| format!("/widget/v1/conversations/{conversation}?key={key}&visitor_id={who}");
    let r = visitor_get(&app, &history(stranger), Some(SHOP)).await;
    assert_eq!(error_code(r).await, (404, "not_found".to_owned()));

    // Feedback on an answer; not on the visitor's own message.
    let rate = |message: &str, who: &str, helpful: bool| {
        json!({ "key": key, "visitor_id": who, "conversation_id": conversation,
                "message_id": message, "helpful": helpful })
    };
    let r = visitor_post(
        &app,
        "/widget/v1/feedback",
        Some(SHOP),
        &rate(&answer_id, visitor, false),
        false,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = visitor_post(
        &app,
        "/widget/v1/feedback",
        Some(SHOP),
        &rate(&answer_id, visitor, true),
        false,
    )
    .await;
    assert_eq!(r.status(), 204);
    let r = visitor_post(
        &app,
        "/widget/v1/feedback",
        Some(SHOP),
        &rate(&answer_id, stranger, false),
        false,
    )
    .await;
    assert_eq!(error_code(r).await, (404, "not_found".to_owned()));

    let r = visitor_get(&app, &history(visitor), Some(SHOP)).await;
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.expect("json");
    let messages = h["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["text"], "How long do refunds take?");
    assert_eq!(messages[1]["helpful"], true);
    assert_eq!(messages[3]["helpful"], Value::Null);
    let user_message = messages[0]["id"].as_str().expect("id").to_owned();
    let r = visitor_post(
        &app,
        "/widget/v1/feedback",
        Some(SHOP),
        &rate(&user_message, visitor, true),
        false,
    )
    .await;
    assert_eq!(error_code(r).await, (404, "not_found".to_owned()));

    // The team sees it among every channel's conversations.
    let list: Value = app
        .get_as("/api/v1/conversations?channel=widget", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"][0]["id"], conversation.as_str());
    assert_eq!(list["data"][0]["customer"], visitor);

    // One visitor: ten messages a minute.
    let eager = "eager-visitor-0001";
    for i in 0..10 {
        let r = visitor_post(
            &app,
            "/widget/v1/messages",
            Some(SHOP),
            &ask("hello", None, eager),
            false,
        )
        .await;
        assert_eq!(r.status(), 200, "message {i}");
    }
    let r = visitor_post(
        &app,
        "/widget/v1/messages",
        Some(SHOP),
        &ask("hello", None, eager),
        false,
    )
    .await;
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        SHOP,
        "the page can read why"
    );
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(error_code(r).await, (429, "rate_limited".to_owned()));
    let r = visitor_post(
        &app,
        "/widget/v1/messages",
        Some(SHOP),
        &ask("hello", None, "calm-visitor-0002"),
        false,
    )
    .await;
    assert_eq!(r.status(), 200, "other visitors are not held back");
    // New visitor ids from one address do not escape: 30 messages a minute per address. 13
    // were sent from this address so far, so the 18th new visitor is refused.
    let mut refused = None;
    for i in 0..30 {
        let who = format!("rotating-visitor-{i:04}");
        let r = visitor_post(
            &app,
            "/widget/v1/messages",
            Some(SHOP),
            &ask("hello", None, &who),
            false,
        )
        .await;
        if r.status() == 429 {
            refused = Some(i);
            break;
        }
        assert_eq!(r.status(), 200, "message {i}");
    }
    assert_eq!(refused, Some(17), "the address's allowance holds");
    let r = visitor_post(
        &app,
        "/widget/v1/messages",
        Some(SHOP),
        &ask("hi", None, "x"),
        false,
    )
    .await;
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["field"], "visitor_id");
}
