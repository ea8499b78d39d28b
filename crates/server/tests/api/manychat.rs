//! ManyChat: a page connected with its API key; the per-page webhook its flows call
//! (authenticated by the key, acknowledged at once with the configured text) and answers sent
//! through ManyChat's send API.

use serde_json::{Value, json};

use crate::helpers::channels::SentLog;
use crate::helpers::error_code;

const KEY: &str = "1065:5f8e2c0d4b7a9e1f3c6d8b0a2e4f6c8d";
const PAGE: &str = "1065";
/// The API key of another ManyChat page.
const OTHER_KEY: &str = "2077:0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// ManyChat's `GET /fb/page/getInfo`: the page the bearer key belongs to, or its error.
async fn page_info(headers: axum::http::HeaderMap) -> (axum::http::StatusCode, axum::Json<Value>) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let page = match auth.strip_prefix("Bearer ") {
        Some(KEY) => 1065,
        Some(OTHER_KEY) => 2077,
        _ => {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "status": "error", "message": "Wrong format token" })),
            );
        }
    };
    (
        axum::http::StatusCode::OK,
        axum::Json(
            json!({ "status": "success", "data": { "id": page, "name": format!("Page {page}"),
            "category": "Shopping & retail", "avatar_link": null, "username": null, "about": "",
            "description": "", "is_pro": true, "timezone": "Europe/Paris" } }),
        ),
    )
}

/// A stand-in for ManyChat's `POST /fb/sending/sendContent`: checks the bearer key and the
/// body (a numeric `subscriber_id`, `data` as a v2 dynamic block of text messages) as ManyChat
/// does, and answers `{"status": "success"}` or ManyChat's error shape.
async fn spawn_manychat() -> (String, SentLog) {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    let seen: SentLog = Default::default();
    async fn send_content(
        State(seen): State<SentLog>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, axum::Json<Value>) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        seen.lock().expect("lock").push((
            "/fb/sending/sendContent".into(),
            auth.clone(),
            v.clone(),
        ));
        if auth != format!("Bearer {KEY}") {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({ "status": "error", "message": "Wrong format token" })),
            );
        }
        let messages = v["data"]["content"]["messages"].as_array();
        let ok = v["subscriber_id"].is_u64()
            && v["data"]["version"] == "v2"
            && messages.is_some_and(|m| {
                !m.is_empty()
                    && m.len() <= 10
                    && m.iter().all(|m| {
                        m["type"] == "text"
                            && m["text"]
                                .as_str()
                                .is_some_and(|t| !t.is_empty() && t.chars().count() <= 2_000)
                    })
            });
        if !ok {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "status": "error", "message": "Validation error",
                    "details": { "messages": [{ "message": "Invalid content" }] } })),
            );
        }
        if v["subscriber_id"] == 404 {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "status": "error", "message": "Subscriber does not exist" })),
            );
        }
        (
            StatusCode::OK,
            axum::Json(json!({ "status": "success", "data": {} })),
        )
    }
    let app = axum::Router::new()
        .route("/fb/sending/sendContent", axum::routing::post(send_content))
        .with_state(seen.clone())
        .route("/fb/page/getInfo", axum::routing::get(page_info));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), seen)
}

async fn post_manychat(
    client: reqwest::Client,
    url: String,
    key: Option<&'static str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        r = r.bearer_auth(key);
    }
    r.send().await.expect("post")
}

#[tokio::test]
async fn a_manychat_flow_is_acknowledged_at_once_and_answered_through_the_send_api() {
    let (manychat, sent_log) = spawn_manychat().await;
    let app = crate::helpers::spawn_app_with(move |s| {
        s.providers.manychat_base_url = Some(manychat);
    })
    .await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    let manychat = json!({ "kind": "manychat", "asset_id": PAGE, "access_token": KEY,
                           "ack_text": "OK, bien reçu" });
    let r = app.connect(&owner.access, manychat.clone()).await;
    assert_eq!(
        error_code(r).await,
        (403, "plan_feature_unavailable".to_owned())
    );
    app.on_plan(&operator, &owner, "growth").await;
    app.upload_guide(&owner).await;
    let r = app.connect(&owner.access,
        json!({ "kind": "manychat", "provider": "twilio", "asset_id": PAGE, "access_token": KEY }),
    )
    .await;
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["field"], "provider");
    // The key must be the page's own.
    for (key, why) in [
        (OTHER_KEY, "another ManyChat page"),
        (
            "9999:ffffffffffffffffffffffffffffffff",
            "refused the API key",
        ),
    ] {
        let r = app
            .connect(
                &owner.access,
                json!({ "kind": "manychat", "asset_id": PAGE, "access_token": key }),
            )
            .await;
        assert_eq!(r.status(), 422);
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["error"]["code"], "channel_not_verified");
        assert!(
            e["error"]["message"].as_str().unwrap_or("").contains(why),
            "{e}"
        );
    }
    let r = app.connect(&owner.access, manychat).await;
    assert_eq!(r.status(), 201);
    let body = r.text().await.expect("body");
    assert!(!body.contains(KEY), "the key is never shown");
    let v: Value = serde_json::from_str(&body).expect("json");
    let webhook = format!("{}/webhooks/manychat/{PAGE}", app.state.settings.app_url);
    assert_eq!(
        (&v["provider"], &v["webhook_url"], &v["ack_text"]),
        (&json!("manychat"), &json!(webhook), &json!("OK, bien reçu"))
    );

    let url = app.url(&format!("/webhooks/manychat/{PAGE}"));
    let post = |key: Option<&'static str>, body: Value| {
        post_manychat(
            app.client.clone(),
            url.clone(),
            key,
            body.to_string().into_bytes(),
        )
    };
    let question = json!({ "subscriber_id": "4711", "text": "How long do refunds take?" });

    // Without the key, with another, or to a page nobody connected: refused alike.
    let r = post(None, question.clone()).await;
    assert_eq!(error_code(r).await, (401, "unauthenticated".to_owned()));
    let r = post(Some("1065:wrong"), question.clone()).await;
    assert_eq!(error_code(r).await, (401, "unauthenticated".to_owned()));
    let r = post_manychat(
        app.client.clone(),
        app.url("/webhooks/manychat/999"),
        Some(KEY),
        question.to_string().into_bytes(),
    )
    .await;
    assert_eq!(error_code(r).await, (401, "unauthenticated".to_owned()));
    let r = post_manychat(app.client.clone(), url.clone(), Some(KEY), b"{".to_vec()).await;
    assert_eq!(error_code(r).await, (400, "invalid_payload".to_owned()));

    // Sent three times at once (a retried request): acknowledged each time, answered once.
    let posts: Vec<_> = (0..3)
        .map(|_| tokio::spawn(post(Some(KEY), question.clone())))
        .collect();
    for p in posts {
        let r = p.await.expect("task");
        assert_eq!(r.status(), 200);
        let ack: Value = r.json().await.expect("json");
        assert_eq!(
            ack,
            json!({ "version": "v2", "content": { "messages": [{ "type": "text", "text": "OK, bien reçu" }] } })
        );
    }
    let sent = app.wait_for_sent(&sent_log, 1).await;
    assert_eq!(sent.len(), 1, "exactly one answer: {sent:?}");
    let (_, auth, reply) = &sent[0];
    assert_eq!(auth, &format!("Bearer {KEY}"));
    assert_eq!(reply["subscriber_id"], 4711);
    let text = reply["data"]["content"]["messages"][0]["text"]
        .as_str()
        .expect("text");
    assert!(text.contains("14 days"), "{text}");

    // ManyChat's Full Contact Data works as the body too; the same subscriber's next message
    // continues their conversation.
    let contact = json!({ "id": "4711", "page_id": PAGE, "first_name": "Ana",
        "last_input_text": "Which countries do you ship to?",
        "last_interaction": "2026-11-26T10:00:00.000Z" });
    assert_eq!(post(Some(KEY), contact).await.status(), 200);
    let sent = app.wait_for_sent(&sent_log, 2).await;
    let text = sent[1].2["data"]["content"]["messages"][0]["text"]
        .as_str()
        .expect("text");
    assert!(text.contains("Canada"), "{text}");
    let tenant: cortex_core::ids::TenantId = owner.tenant_id.parse().expect("tenant");
    let connection: cortex_core::ids::ChannelConnectionId =
        v["id"].as_str().expect("id").parse().expect("uuid");
    let conversation = app
        .state
        .store
        .find_customer_conversation(tenant, connection, "4711")
        .await
        .expect("find")
        .expect("the subscriber's conversation");
    assert_eq!(
        conversation.channel,
        cortex_core::conversations::Channel::ManyChat
    );
    let messages = app
        .state
        .store
        .recent_messages(tenant, conversation.id, 10)
        .await
        .expect("messages");
    assert_eq!(messages.len(), 4);

    // ManyChat refusing the message (an unknown subscriber) is recorded, not retried forever.
    let gone = json!({ "subscriber_id": "404", "text": "How long do refunds take?" });
    assert_eq!(post(Some(KEY), gone).await.status(), 200);
    let sent = app.wait_for_sent(&sent_log, 3).await;
    assert_eq!(sent.len(), 3, "refused once, not retried: {sent:?}");
}
