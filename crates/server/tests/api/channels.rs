//! Connecting messaging channels: plan gating, validation, sealed tokens, one asset per
//! tenant, disconnection, and key rotation from the command line.

use std::time::Duration;

use cortexlayer_server::config::{DEV_ENCRYPTION_KEY, decode_key};
use cortexlayer_server::infra::secrets::{SecretBox, SecretError, key_id};
use serde_json::{Value, json};

use crate::helpers::channels::SentLog;
use crate::helpers::graph::{GRAPH_TOKEN, OTHER_GRAPH_TOKEN, spawn_graph, spawn_graph_full};
use crate::helpers::{Member, TestApp, error_code};

/// The token of the Graph API stand-in's first business ([`graph_grant`]).
const TOKEN: &str = GRAPH_TOKEN;

/// An app whose Graph API is the stand-in, and what is sent through it.
async fn graph_app() -> (TestApp, SentLog) {
    let (graph, sent) = spawn_graph(vec![]).await;
    let app = crate::helpers::spawn_app_with(move |s| {
        s.providers.meta_graph_base_url = Some(graph);
    })
    .await;
    (app, sent)
}

/// Connects a `kind` asset with the stand-in's token; returns the connection's id.
async fn connect_graph(
    app: &TestApp,
    owner: &Member,
    kind: &str,
    asset: &str,
) -> cortex_core::ids::ChannelConnectionId {
    let r = app
        .connect(
            &owner.access,
            json!({ "kind": kind, "asset_id": asset, "access_token": GRAPH_TOKEN }),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid")
}

fn whatsapp(asset: &str) -> Value {
    json!({ "kind": "whatsapp", "asset_id": asset, "access_token": TOKEN, "name": "Support line" })
}

#[tokio::test]
async fn meta_channels_need_growth_and_their_tokens_are_sealed() {
    let (app, _) = graph_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    let r = app
        .connect(&owner.access, whatsapp("106540352242922"))
        .await;
    assert_eq!(
        error_code(r).await,
        (403, "plan_feature_unavailable".to_owned())
    );

    app.on_plan(&operator, &owner, "growth").await;
    let r = app
        .post_as(
            &format!("/api/v1/admin/tenants/{}/plan", owner.tenant_id),
            &operator,
            &json!({ "plan": "platinum" }),
        )
        .await;
    assert_eq!(error_code(r).await, (422, "validation_failed".to_owned()));
    let r = app
        .connect(&owner.access, whatsapp("106540352242922"))
        .await;
    assert_eq!(r.status(), 201);
    let body = r.text().await.expect("body");
    assert!(
        !body.contains(TOKEN) && !body.contains("v1."),
        "the token is never shown: {body}"
    );
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["kind"], "whatsapp");
    assert_eq!(v["name"], "Support line");
    assert_eq!(v["token_hint"], format!("…{}", &TOKEN[TOKEN.len() - 4..]));

    // At rest: sealed under the configured key, bound to its tenant and row.
    let tenant = owner.tenant_id.parse().expect("tenant");
    let rows = app
        .state
        .store
        .list_channel_connections(tenant)
        .await
        .expect("rows");
    let row = &rows[0];
    assert!(row.sealed_token.starts_with("v1.") && !row.sealed_token.contains(TOKEN));
    assert_eq!(
        cortexlayer_server::channels::access_token(&app.state.secrets, row).as_deref(),
        Ok(TOKEN)
    );

    // One asset, one tenant; input is checked; only owners and admins connect.
    let other = app.owner("owner@other.test", "Other").await;
    app.on_plan(&operator, &other, "scale").await;
    let r = app
        .connect(&other.access, whatsapp("106540352242922"))
        .await;
    assert_eq!(error_code(r).await, (409, "channel_taken".to_owned()));
    for (body, field) in [
        (
            json!({ "kind": "whatsapp", "asset_id": "12ab", "access_token": TOKEN }),
            "asset_id",
        ),
        (
            json!({ "kind": "whatsapp", "asset_id": "123", "access_token": "short" }),
            "access_token",
        ),
        (
            json!({ "kind": "widget", "asset_id": "123", "access_token": TOKEN }),
            "kind",
        ),
    ] {
        let r = app.connect(&other.access, body.clone()).await;
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["error"]["field"], field, "{body}");
    }
    let agent = app.member(&owner, "agent@acme.test", "agent").await;
    let r = app.connect(&agent.access, whatsapp("999")).await;
    assert_eq!(error_code(r).await, (403, "forbidden".to_owned()));
    let (_, key) = app.api_key(&owner, &["chat"]).await;
    let r = app.connect(&key, whatsapp("999")).await;
    assert_eq!(error_code(r).await, (403, "forbidden".to_owned()));

    // Disconnecting: another tenant cannot; the owner can.
    let id = v["id"].as_str().expect("id");
    let r = app
        .delete_as(&format!("/api/v1/channels/{id}"), &other.access)
        .await;
    assert_eq!(error_code(r).await, (404, "not_found".to_owned()));
    let listed: Value = app
        .get_as("/api/v1/channels", &agent.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["data"].as_array().expect("data").len(),
        1,
        "members see the channels"
    );
    let r = app
        .delete_as(&format!("/api/v1/channels/{id}"), &owner.access)
        .await;
    assert_eq!(r.status(), 204);
    let listed: Value = app
        .get_as("/api/v1/channels", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"], json!([]));
    let actions = app.audit_actions(&owner).await;
    for a in [
        "channel.connected",
        "channel.disconnected",
        "tenant.plan_changed",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

#[tokio::test]
async fn rotate_key_reseals_every_token_under_the_new_key() {
    let (app, _) = graph_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "growth").await;
    assert_eq!(
        app.connect(&owner.access, whatsapp("106540352242922"))
            .await
            .status(),
        201
    );
    let old = decode_key(DEV_ENCRYPTION_KEY).expect("the default key");
    let new_key = "b".repeat(64);
    let new = decode_key(&new_key).expect("hex key");
    let settings = &app.state.settings;
    let rotate = |key: &str, old_keys: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cortexlayer"))
            .args(["admin", "rotate-key"])
            .env("DATABASE_URL", settings.database_url.expose())
            .env("CORTEX_DATA_DIR", &settings.data_dir)
            .env("ENCRYPTION_KEY", key)
            .env("ENCRYPTION_OLD_KEYS", old_keys)
            .output()
            .expect("run rotate-key")
    };
    let without_old = rotate(&"c".repeat(64), "");
    assert!(
        !without_old.status.success(),
        "the old key is needed to open the tokens"
    );
    assert!(String::from_utf8_lossy(&without_old.stderr).contains(&key_id(&old)));

    let out = rotate(&new_key, DEV_ENCRYPTION_KEY);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("re-sealed 1 secret(s)"), "{stdout}");
    let tenant = owner.tenant_id.parse().expect("tenant");
    let row = &app
        .state
        .store
        .list_channel_connections(tenant)
        .await
        .expect("rows")[0];
    assert_eq!(
        SecretBox::key_id_of(&row.sealed_token),
        Some(key_id(&new).as_str())
    );
    let only_new = SecretBox::new(new, &[]);
    assert_eq!(
        cortexlayer_server::channels::access_token(&only_new, row).as_deref(),
        Ok(TOKEN)
    );
    let only_old = SecretBox::new(old, &[]);
    assert_eq!(
        cortexlayer_server::channels::access_token(&only_old, row),
        Err(SecretError::UnknownKey(key_id(&new)))
    );
    let again = rotate(&new_key, DEV_ENCRYPTION_KEY);
    assert!(String::from_utf8_lossy(&again.stdout).contains("re-sealed 0 secret(s)"));
}

#[tokio::test]
async fn the_graph_client_sends_split_texts_and_templates_and_reports_meta_errors() {
    use cortex_core::conversations::Channel;
    use cortexlayer_server::infra::meta_graph::{GraphClient, SendError};
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let token = GRAPH_TOKEN;
    let long = format!(
        "{} {}",
        "Our store opens at nine.".repeat(200),
        "Bring your receipt."
    );
    let (base, seen) = spawn_graph(vec![
        (500, json!({ "error": { "message": "An unexpected error has occurred.", "type": "OAuthException", "code": 2 } })),
        (200, Value::Null),
        (400, json!({ "error": { "message": "(#130429) Rate limit hit", "type": "OAuthException", "code": 130429 } })),
    ])
    .await;
    let graph = GraphClient::new(&base, "v21.0", Duration::from_secs(5), 3).expect("client");
    let ids = graph
        .send_text(
            Channel::WhatsApp,
            token,
            "106540352242922",
            "16505551234",
            &long,
        )
        .await
        .expect("sent");
    assert_eq!(ids.len(), 2, "4,820 characters go as two messages");
    let requests = seen.lock().expect("lock").clone();
    assert_eq!(requests[0].0, "/v21.0/106540352242922/messages");
    let bodies: Vec<String> = requests
        .iter()
        .map(|(_, _, b)| b["text"]["body"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        requests.len(),
        4,
        "a 500 and a throttling code were retried"
    );
    assert!(bodies.iter().all(|b| b.chars().count() <= 4_096));
    assert_eq!(bodies[1], bodies[0], "the retry resends the same part");
    assert!(bodies[3].ends_with("Bring your receipt."));
    assert!(ids.iter().all(|id| id.starts_with("wamid.")), "{ids:?}");

    let (base, seen) = spawn_graph(vec![]).await;
    let graph = GraphClient::new(&base, "v21.0", Duration::from_secs(5), 3).expect("client");
    let ids = graph
        .send_text(
            Channel::Messenger,
            token,
            "1234567890",
            "6789012345",
            "Hello there!",
        )
        .await
        .expect("sent");
    assert_eq!(ids, ["m_out1"]);
    assert_eq!(
        seen.lock().expect("lock")[0].2["recipient"]["id"],
        "6789012345"
    );
    graph
        .send_template(
            token,
            "106540352242922",
            "16505551234",
            "order_update",
            "en_US",
        )
        .await
        .expect("template");
    assert_eq!(
        seen.lock().expect("lock")[1].2["template"]["language"]["code"],
        "en_US"
    );

    let (base, _) = spawn_graph(vec![(
        400,
        json!({ "error": { "message": "Re-engagement message", "type": "OAuthException", "code": 131047 } }),
    )])
    .await;
    let graph = GraphClient::new(&base, "v21.0", Duration::from_secs(5), 3).expect("client");
    assert_eq!(
        graph
            .send_text(Channel::WhatsApp, token, "1", "2", "hi")
            .await,
        Err(SendError::Rejected {
            code: 131_047,
            message: "Re-engagement message".into()
        })
    );
    assert!(matches!(
        graph
            .send_text(Channel::WhatsApp, "EAAG-wrong", "1", "2", "hi")
            .await,
        Err(SendError::Rejected { code: 190, .. })
    ));
    let stale = GraphClient::new(&base, "v2.0", Duration::from_secs(5), 1).expect("client");
    assert!(matches!(
        stale
            .send_text(Channel::WhatsApp, token, "1", "2", "hi")
            .await,
        Err(SendError::Rejected { code: 2500, .. })
    ));
}

fn meta_signature(body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"test-app-secret").expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn whatsapp_delivery(asset: &str, id: &str, text: &str) -> Vec<u8> {
    whatsapp_delivery_at(asset, id, text, chrono::Utc::now().timestamp())
}

fn whatsapp_delivery_at(asset: &str, id: &str, text: &str, sent_at: i64) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": asset },
            "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": "16505551234" }],
            "messages": [{ "from": "16505551234", "id": id, "timestamp": sent_at.to_string(),
                           "type": "text", "text": { "body": text } }]
        } }] }]
    })
    .to_string()
    .into_bytes()
}

/// An app with Meta's webhook configured (app secret, verify token, the Graph API stand-in)
/// and an owner on `plan`; with what the Graph API receives.
async fn meta_app(plan: &str) -> (TestApp, Member, SentLog) {
    meta_app_scripted(plan, vec![]).await
}

/// [`meta_app`] whose Graph API stand-in answers its first requests from `script`.
async fn meta_app_scripted(plan: &str, script: Vec<(u16, Value)>) -> (TestApp, Member, SentLog) {
    let (graph, sent) = spawn_graph(script).await;
    let app = crate::helpers::spawn_app_with(move |s| {
        s.providers.meta_app_secret =
            Some(cortexlayer_server::config::Secret::new("test-app-secret"));
        s.providers.meta_verify_token = Some(cortexlayer_server::config::Secret::new("verify-me"));
        s.providers.meta_graph_base_url = Some(graph);
    })
    .await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, plan).await;
    (app, owner, sent)
}

/// Posts a webhook delivery with the given signature (owned arguments, so it can be spawned).
async fn post_meta(
    client: reqwest::Client,
    url: String,
    body: Vec<u8>,
    signature: String,
) -> reqwest::Response {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .expect("post")
}

/// Posts a webhook delivery signed with the app secret.
async fn post_signed(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    let signature = meta_signature(&body);
    post_meta(
        app.client.clone(),
        app.url("/webhooks/meta"),
        body,
        signature,
    )
    .await
}

/// For the crash tests, where a `cortexlayer serve` process does the work: waits until the
/// Graph API was sent `n` messages, then `settle` longer so that a duplicate would show;
/// returns what it was sent.
async fn sent_by_the_server(
    sent: &SentLog,
    n: usize,
    settle: Duration,
) -> Vec<(String, String, Value)> {
    let start = std::time::Instant::now();
    while sent.lock().expect("lock").len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "fewer than {n} replies were sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(settle).await;
    sent.lock().expect("lock").clone()
}

#[tokio::test]
async fn a_whatsapp_message_is_answered_once_however_often_meta_delivers_it() {
    let (app, owner, sent_log) = meta_app("growth").await;
    app.upload_guide(&owner).await;
    let connection = connect_graph(&app, &owner, "whatsapp", "106540352242922").await;

    // The handshake.
    let r = app
        .get(
            "/webhooks/meta?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444",
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "1158201444");
    let r = app
        .get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1")
        .await;
    assert_eq!(r.status(), 403);

    let post = |body: Vec<u8>, signature: String| {
        post_meta(
            app.client.clone(),
            app.url("/webhooks/meta"),
            body,
            signature,
        )
    };

    // A forged delivery is refused and never answered.
    let forged = whatsapp_delivery(
        "106540352242922",
        "wamid.FORGED",
        "How long do refunds take?",
    );
    let r = post(forged.clone(), "sha256=00".into()).await;
    assert_eq!(error_code(r).await, (401, "invalid_signature".to_owned()));
    let mut tampered = forged.clone();
    let good_sig = meta_signature(&forged);
    tampered.extend_from_slice(b" ");
    assert_eq!(
        post(tampered, good_sig).await.status(),
        401,
        "the signature covers the raw bytes"
    );

    // Delivered ten times at once: one stored message, one reply.
    let body = whatsapp_delivery(
        "106540352242922",
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQ",
        "How long do refunds take?",
    );
    let signature = meta_signature(&body);
    let deliveries: Vec<_> = (0..10)
        .map(|_| tokio::spawn(post(body.clone(), signature.clone())))
        .collect();
    for d in deliveries {
        let r = d.await.expect("task");
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.expect("text"), "EVENT_RECEIVED");
    }
    // An asset nobody connected is acknowledged and ignored.
    let stray = whatsapp_delivery("999999", "wamid.STRAY", "hello");
    assert_eq!(post_signed(&app, stray).await.status(), 200);

    let sent = app.wait_for_sent(&sent_log, 1).await;
    assert_eq!(sent.len(), 1, "exactly one reply: {sent:?}");
    let (path, auth, reply) = &sent[0];
    assert_eq!(path, "/v21.0/106540352242922/messages");
    assert_eq!(
        auth, "Bearer EAAG-page-or-number-token-123456",
        "the tenant's own token, unsealed"
    );
    assert_eq!(reply["to"], "16505551234");
    let text = reply["text"]["body"].as_str().expect("text");
    assert!(text.contains("14 days"), "{text}");

    // Meta reports the reply delivered, then read; a late "delivered" does not move it back.
    let wamid = "wamid.out1";
    let tenant: cortex_core::ids::TenantId = owner.tenant_id.parse().expect("tenant");
    let stored = app
        .state
        .store
        .find_outbound(tenant, connection, wamid)
        .await
        .expect("find");
    assert_eq!(
        stored.map(|o| o.status),
        Some(cortex_core::channels::DeliveryStatus::Sent),
        "the reply is recorded by Meta's id"
    );
    for status in ["read", "delivered"] {
        let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
            "statuses": [{ "id": wamid, "status": status, "timestamp": "1750263773", "recipient_id": "16505551234" }] } }] }] })
        .to_string()
        .into_bytes();
        assert_eq!(
            post(body.clone(), meta_signature(&body)).await.status(),
            200
        );
    }
    let stored = app
        .state
        .store
        .find_outbound(tenant, connection, wamid)
        .await
        .expect("find");
    assert_eq!(
        stored.map(|o| o.status),
        Some(cortex_core::channels::DeliveryStatus::Read)
    );

    // The customer's next message continues the same conversation.
    let next = whatsapp_delivery(
        "106540352242922",
        "wamid.NEXT",
        "Which countries do you ship to?",
    );
    assert_eq!(post_signed(&app, next).await.status(), 200);
    app.wait_for_sent(&sent_log, 2).await;
    let conversation = app
        .state
        .store
        .find_customer_conversation(tenant, connection, "16505551234")
        .await
        .expect("find")
        .expect("the customer's conversation");
    assert_eq!(
        conversation.channel,
        cortex_core::conversations::Channel::WhatsApp
    );
    let messages = app
        .state
        .store
        .recent_messages(tenant, conversation.id, 10)
        .await
        .expect("messages");
    assert_eq!(
        messages.len(),
        4,
        "two questions and two answers in one conversation"
    );
    assert_eq!(messages[2].content, "Which countries do you ship to?");
}

#[tokio::test]
async fn past_the_24_hour_window_whatsapp_gets_the_template_or_nothing() {
    let (app, owner, sent_log) = meta_app("growth").await;
    let token = GRAPH_TOKEN;
    let r = app
        .connect(
            &owner.access,
            json!({ "kind": "whatsapp", "asset_id": "111", "access_token": token,
                "template": { "name": "we_are_back", "language": "en_US" } }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        v["template"],
        json!({ "name": "we_are_back", "language": "en_US" })
    );
    let r = app
        .connect(
            &owner.access,
            json!({ "kind": "whatsapp", "asset_id": "222", "access_token": token }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .connect(
            &owner.access,
            json!({ "kind": "messenger", "asset_id": "333", "access_token": token,
                "template": { "name": "x", "language": "en_US" } }),
        )
        .await;
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["field"], "template", "templates are WhatsApp's");

    let two_days_ago = chrono::Utc::now().timestamp() - 2 * 24 * 3600;
    for (asset, id) in [("111", "wamid.OLD1"), ("222", "wamid.OLD2")] {
        let body = whatsapp_delivery_at(asset, id, "Are you open today?", two_days_ago);
        assert_eq!(post_signed(&app, body).await.status(), 200);
    }
    let sent = app.wait_for_sent(&sent_log, 1).await;
    assert_eq!(
        sent.len(),
        1,
        "only the connection with a template sends: {sent:?}"
    );
    let (path, _, body) = &sent[0];
    assert_eq!(path, "/v21.0/111/messages");
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "we_are_back");
    assert!(
        body.get("text").is_none(),
        "no free text outside the window"
    );
    // Without a template the message waits for a person, in the team's list.
    let queued = app.queued_for_agents(&owner, "whatsapp", 1).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    let (c, reasons) = &queued[0];
    assert_eq!(c["connection_name"], "whatsapp 222");
    assert_eq!(c["last_message"]["text"], "Are you open today?");
    assert_eq!(reasons, &["outside_window"]);
}

#[tokio::test]
async fn a_messenger_message_is_answered_through_the_send_api() {
    let (app, owner, sent_log) = meta_app("scale").await;
    app.upload_guide(&owner).await;
    connect_graph(&app, &owner, "messenger", "1234567890").await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let body = json!({ "object": "page", "entry": [{ "id": "1234567890", "time": now_ms, "messaging": [
        { "sender": { "id": "6789012345" }, "recipient": { "id": "1234567890" }, "timestamp": now_ms,
          "message": { "mid": "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM", "text": "Which countries do you ship to?" } },
        { "sender": { "id": "1234567890" }, "recipient": { "id": "6789012345" }, "timestamp": now_ms,
          "message": { "mid": "m_echo", "is_echo": true, "text": "an earlier reply of ours" } }
    ] }] })
    .to_string()
    .into_bytes();
    assert_eq!(post_signed(&app, body).await.status(), 200);
    let sent = app.wait_for_sent(&sent_log, 1).await;
    assert_eq!(sent.len(), 1, "the echo is not answered: {sent:?}");
    let (path, _, reply) = &sent[0];
    assert_eq!(path, "/v21.0/1234567890/messages");
    assert_eq!(reply["recipient"]["id"], "6789012345");
    assert_eq!(reply["messaging_type"], "RESPONSE");
    let text = reply["message"]["text"].as_str().expect("text");
    assert!(text.contains("Canada"), "{text}");
    assert!(text.chars().count() <= 2_000);
}

#[tokio::test]
async fn the_team_sees_every_channels_conversations_in_one_list() {
    let (app, owner, sent_log) = meta_app("growth").await;
    app.upload_guide(&owner).await;
    let r = app
        .connect(&owner.access, whatsapp("106540352242922"))
        .await;
    assert_eq!(r.status(), 201);
    // A WhatsApp customer, then someone through the API.
    let body = whatsapp_delivery(
        "106540352242922",
        "wamid.LIST1",
        "How long do refunds take?",
    );
    assert_eq!(post_signed(&app, body).await.status(), 200);
    app.wait_for_sent(&sent_log, 1).await;
    let (_, key) = app.api_key(&owner, &["chat"]).await;
    let r = app
        .post_as(
            "/api/v1/chat",
            &key,
            &json!({ "message": "Which countries do you ship to?" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let api_conversation = r.json::<Value>().await.expect("json")["conversation_id"].clone();

    let agent = app.member(&owner, "agent@acme.test", "agent").await;
    let list: Value = app
        .get_as("/api/v1/conversations", &agent.access)
        .await
        .json()
        .await
        .expect("json");
    let data = list["data"].as_array().expect("data");
    assert_eq!(data.len(), 2, "{list}");
    assert_eq!(data[0]["id"], api_conversation, "latest activity first");
    assert_eq!(data[0]["channel"], "api");
    assert_eq!(data[0]["connection_name"], Value::Null);
    let wa = &data[1];
    assert_eq!(
        (
            &wa["channel"],
            &wa["status"],
            &wa["connection_name"],
            &wa["customer"]
        ),
        (
            &json!("whatsapp"),
            &json!("bot"),
            &json!("Support line"),
            &json!("16505551234")
        )
    );
    assert_eq!(wa["message_count"], 2);
    assert_eq!(wa["last_message"]["role"], "assistant");
    assert!(
        wa["last_message"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("14 days"))
    );
    assert_eq!(list["next_before"], Value::Null);

    // Filtered by channel; paged.
    let only: Value = app
        .get_as("/api/v1/conversations?channel=whatsapp", &agent.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(only["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(only["data"][0]["id"], wa["id"]);
    let first: Value = app
        .get_as("/api/v1/conversations?limit=1", &agent.access)
        .await
        .json()
        .await
        .expect("json");
    let cursor = first["next_before"].as_str().expect("a next page");
    let second: Value = app
        .get_as(
            &format!("/api/v1/conversations?limit=1&before={cursor}"),
            &agent.access,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(second["data"][0]["id"], wa["id"]);
    for bad in ["channel=fax", "status=open", "limit=0", "before=yesterday"] {
        let r = app
            .get_as(&format!("/api/v1/conversations?{bad}"), &agent.access)
            .await;
        assert_eq!(
            error_code(r).await,
            (422, "validation_failed".to_owned()),
            "{bad}"
        );
    }

    // One conversation, with its messages and the answer's citations.
    let id = wa["id"].as_str().expect("id");
    let detail: Value = app
        .get_as(&format!("/api/v1/conversations/{id}"), &agent.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["channel"], "whatsapp");
    let messages = detail["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert_eq!(
        (&messages[0]["role"], &messages[0]["text"]),
        (&json!("user"), &json!("How long do refunds take?"))
    );
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["citations"][0]["title"], "guide");

    // Another tenant sees none of it; API keys are not the team.
    let other = app.owner("owner@other.test", "Other").await;
    let theirs: Value = app
        .get_as("/api/v1/conversations", &other.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["data"], json!([]));
    let r = app
        .get_as(&format!("/api/v1/conversations/{id}"), &other.access)
        .await;
    assert_eq!(error_code(r).await, (404, "not_found".to_owned()));
    let r = app.get_as("/api/v1/conversations", &key).await;
    assert_eq!(error_code(r).await, (403, "forbidden".to_owned()));
}

#[tokio::test]
async fn whatsapp_messages_are_metered_and_stop_at_the_plans_monthly_allowance() {
    use cortex_core::conversations::{
        Channel, Conversation, ConversationStatus, MessageRole, Turn,
    };
    use cortex_core::ids::{ConversationId, MessageId, UsageEventId};
    use cortex_core::usage::{UsageEvent, UsageKind};
    let (app, owner, sent_log) = meta_app("growth").await;
    app.upload_guide(&owner).await;
    connect_graph(&app, &owner, "whatsapp", "106540352242922").await;
    let tenant: cortex_core::ids::TenantId = owner.tenant_id.parse().expect("tenant");
    let month = cortexlayer_server::metering::month_start(chrono::Utc::now());
    let total = |kind: UsageKind, subject: &'static str| {
        let store = app.state.store.clone();
        async move {
            store
                .usage_total(tenant, kind, subject, month)
                .await
                .expect("total")
        }
    };

    // Growth allows 2,000 WhatsApp messages a month: 1,999 were sent earlier this month.
    let c = ConversationId::new();
    let now = chrono::Utc::now();
    let message = |role, text: &str| cortex_core::conversations::Message {
        id: MessageId::new(),
        tenant_id: tenant,
        conversation_id: c,
        role,
        content: text.into(),
        citations: Vec::new(),
        context: Vec::new(),
        confidence: None,
        abstained: false,
        model: None,
        prompt_tokens: 0,
        completion_tokens: 0,
        latency_ms: 0,
        created_at: now,
    };
    app.state
        .store
        .record_turn(
            tenant,
            Turn {
                new_conversation: Some(Conversation {
                    id: c,
                    tenant_id: tenant,
                    channel: Channel::WhatsApp,
                    status: ConversationStatus::Resolved,
                    connection_id: None,
                    customer: None,
                    created_at: now,
                    updated_at: now,
                }),
                conversation_id: c,
                question: message(MessageRole::User, "earlier"),
                answer: Some(message(MessageRole::Assistant, "earlier")),
                usage: vec![UsageEvent {
                    id: UsageEventId::new(),
                    tenant_id: tenant,
                    kind: UsageKind::ChannelMessage,
                    subject: "whatsapp".into(),
                    quantity: 1_999,
                    conversation_id: Some(c),
                    created_at: now,
                }],
                events: Vec::new(),
            },
        )
        .await
        .expect("earlier usage");

    // The 2,000th is sent and counted; the next is not sent.
    let first = whatsapp_delivery("106540352242922", "wamid.Q1", "How long do refunds take?");
    assert_eq!(post_signed(&app, first).await.status(), 200);
    app.wait_for_sent(&sent_log, 1).await;
    let second = whatsapp_delivery(
        "106540352242922",
        "wamid.Q2",
        "Which countries do you ship to?",
    );
    assert_eq!(post_signed(&app, second).await.status(), 200);
    let sent = app.wait_for_sent(&sent_log, 1).await;
    assert_eq!(
        sent.len(),
        1,
        "past the allowance nothing is sent: {sent:?}"
    );
    assert_eq!(total(UsageKind::ChannelMessage, "whatsapp").await, 2_000);
    assert_eq!(
        total(UsageKind::Message, "whatsapp").await,
        1,
        "one answered turn on WhatsApp"
    );
    assert_eq!(total(UsageKind::ChannelMessage, "messenger").await, 0);

    // On Scale there is no monthly cap.
    let operator = app.operator("ops2@cortex.test").await;
    app.on_plan(&operator, &owner, "scale").await;
    let third = whatsapp_delivery("106540352242922", "wamid.Q3", "How long do refunds take?");
    assert_eq!(post_signed(&app, third).await.status(), 200);
    app.wait_for_sent(&sent_log, 2).await;
    assert_eq!(total(UsageKind::ChannelMessage, "whatsapp").await, 2_001);
}

#[tokio::test]
async fn an_instagram_message_is_answered_and_late_ones_wait_for_a_person() {
    let (app, owner, sent_log) = meta_app("growth").await;
    app.upload_guide(&owner).await;
    for (kind, asset) in [
        ("instagram", "17841400000000001"),
        ("messenger", "1234567890"),
    ] {
        connect_graph(&app, &owner, kind, asset).await;
    }
    let delivery = |object: &str, asset: &str, mid: &str, text: &str, at_ms: i64| {
        json!({ "object": object, "entry": [{ "id": asset, "time": at_ms, "messaging": [
            { "sender": { "id": "5566778899" }, "recipient": { "id": asset }, "timestamp": at_ms,
              "message": { "mid": mid, "text": text } }
        ] }] })
        .to_string()
        .into_bytes()
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let two_days_ago_ms = now_ms - 2 * 24 * 3600 * 1000;
    for body in [
        delivery(
            "instagram",
            "17841400000000001",
            "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw",
            "How long do refunds take?",
            now_ms,
        ),
        delivery(
            "instagram",
            "17841400000000001",
            "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjOLD",
            "Which countries do you ship to?",
            two_days_ago_ms,
        ),
        delivery(
            "page",
            "1234567890",
            "m_OLD",
            "Which countries do you ship to?",
            two_days_ago_ms,
        ),
    ] {
        assert_eq!(post_signed(&app, body).await.status(), 200);
    }
    let sent = app.wait_for_sent(&sent_log, 1).await;
    assert_eq!(
        sent.len(),
        1,
        "messages past 24 hours get no bot reply on Instagram or Messenger: {sent:?}"
    );
    let (path, _, reply) = &sent[0];
    assert_eq!(path, "/v21.0/17841400000000001/messages");
    assert_eq!(reply["recipient"]["id"], "5566778899");
    let text = reply["message"]["text"].as_str().expect("text");
    assert!(text.contains("14 days"), "{text}");
    assert!(text.chars().count() <= 1_000);
    let list: Value = app
        .get_as("/api/v1/conversations?channel=instagram", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        list["data"].as_array().map(Vec::len),
        Some(1),
        "one conversation per customer"
    );
    assert_eq!(list["data"][0]["customer"], "5566778899");
    // The late Messenger message is kept for a person.
    let queued = app.queued_for_agents(&owner, "messenger", 1).await;
    assert_eq!(queued[0].1, ["outside_window"]);
    assert_eq!(
        queued[0].0["last_message"]["text"],
        "Which countries do you ship to?"
    );
}

#[tokio::test]
async fn a_graph_api_outage_is_retried_by_the_job_later_and_answered_once() {
    // Meta fails the first three sends (all of the client's own tries): the answer job fails
    // this attempt with the cause, and its retry after the backoff sends the reply once.
    let outage = json!({ "error": { "message": "An unexpected error has occurred.", "type": "OAuthException", "code": 2 } });
    let (app, owner, sent_log) = meta_app_scripted(
        "growth",
        vec![(500, outage.clone()), (500, outage.clone()), (500, outage)],
    )
    .await;
    app.upload_guide(&owner).await;
    connect_graph(&app, &owner, "whatsapp", "106540352242922").await;
    let body = whatsapp_delivery(
        "106540352242922",
        "wamid.RETRY1",
        "How long do refunds take?",
    );
    assert_eq!(post_signed(&app, body).await.status(), 200);

    let drained = app.run_pending_jobs_allowing_failures().await;
    assert_eq!(drained.failed.len(), 1, "{drained:?}");
    let (kind, why) = &drained.failed[0];
    assert_eq!(kind, "AnswerInbound");
    assert!(why.starts_with("sending: "), "{why}");
    assert_eq!(
        sent_log.lock().expect("lock").len(),
        3,
        "three tries, no reply yet"
    );
    assert_eq!(
        app.run_pending_jobs().await,
        0,
        "the retry waits for its backoff"
    );

    app.advance(chrono::Duration::minutes(1));
    let sent = app.wait_for_sent(&sent_log, 4).await;
    let text = sent[3].2["text"]["body"].as_str().expect("text");
    assert!(text.contains("14 days"), "{text}");
    assert_eq!(app.run_pending_jobs().await, 0, "answered once");
}

#[tokio::test]
async fn a_message_acknowledged_by_a_process_killed_right_after_is_answered_after_restart() {
    let (graph, sent_log) = spawn_graph(vec![]).await;
    // The test's own app (no workers) shares the database and data folder with the binaries.
    let own_graph = graph.clone();
    let app = crate::helpers::spawn_app_with(move |s| {
        s.knowledge.workers = 0;
        s.providers.meta_graph_base_url = Some(own_graph);
    })
    .await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "growth").await;
    connect_graph(&app, &owner, "whatsapp", "106540352242922").await;
    let doc = app
        .upload_one(
            &owner.access,
            "guide.md",
            crate::helpers::knowledge::GUIDE.as_bytes(),
        )
        .await;

    let settings = &app.state.settings;
    let data_dir = settings.data_dir.display().to_string();
    let model_dir = crate::helpers::model_dir().display().to_string();
    let env = |workers: &'static str| {
        vec![
            ("CORTEX_DATA_DIR", data_dir.clone()),
            ("CORTEX_MODEL_DIR", model_dir.clone()),
            ("CORTEX_WORKERS", workers.to_owned()),
            ("JWT_SECRET", crate::helpers::JWT_SECRET.to_owned()),
            ("META_APP_SECRET", "test-app-secret".to_owned()),
            ("META_GRAPH_BASE_URL", graph.clone()),
        ]
    };
    let start = |workers: &'static str| {
        let owned = env(workers);
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::helpers::serve::start_on(settings.database_url.expose(), &pairs)
    };

    // The guide is made searchable first, so that the answer cannot race its ingestion.
    let ingester = start("1");
    assert_eq!(
        app.settled_by_the_server(&owner.access, &doc).await["status"],
        "ready"
    );
    drop(ingester);

    // The first process takes the delivery in and acknowledges it; it has no worker to
    // answer, and dies (SIGKILL) right after.
    let first = start("0");
    let body = whatsapp_delivery(
        "106540352242922",
        "wamid.SURVIVES",
        "How long do refunds take?",
    );
    let r = post_meta(
        app.client.clone(),
        format!("{}/webhooks/meta", first.base),
        body.clone(),
        meta_signature(&body),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), "EVENT_RECEIVED");
    first.kill_hard();
    assert!(sent_log.lock().expect("lock").is_empty());

    // The next process finds the stored message and its job, and answers it once.
    let second = start("1");
    let sent = sent_by_the_server(&sent_log, 1, Duration::from_millis(1_500)).await;
    drop(second);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].2["to"], "16505551234");
    let text = sent[0].2["text"]["body"].as_str().expect("text");
    assert!(text.contains("14 days"), "{text}");
}

/// Meta's `signed_request`, made here with HMAC-SHA256 and base64url directly.
fn meta_signed_request(secret: &[u8], user_id: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = b64.encode(
        json!({ "algorithm": "HMAC-SHA256", "expires": 1291840400, "issued_at": 1291836800, "user_id": user_id })
            .to_string(),
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("key");
    mac.update(payload.as_bytes());
    format!("{}.{payload}", b64.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn metas_data_deletion_callback_deletes_the_persons_conversations_and_shows_a_status() {
    let (app, owner, sent_log) = meta_app("growth").await;
    app.upload_guide(&owner).await;
    connect_graph(&app, &owner, "whatsapp", "106540352242922").await;
    let body = whatsapp_delivery("106540352242922", "wamid.DEL1", "How long do refunds take?");
    assert_eq!(post_signed(&app, body).await.status(), 200);
    app.wait_for_sent(&sent_log, 1).await;
    let listed: Value = app
        .get_as("/api/v1/conversations", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));

    let post = |form: String| {
        app.client
            .post(app.url("/webhooks/meta/data-deletion"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    let forged = meta_signed_request(b"not-the-app-secret", "16505551234");
    let r = post(format!("signed_request={forged}"))
        .await
        .expect("post");
    assert_eq!(error_code(r).await, (401, "invalid_signature".to_owned()));
    let r = post("user_id=16505551234".into()).await.expect("post");
    assert_eq!(error_code(r).await, (400, "invalid_payload".to_owned()));
    let listed: Value = app
        .get_as("/api/v1/conversations", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["data"].as_array().map(Vec::len),
        Some(1),
        "a forged request deletes nothing"
    );

    let signed = meta_signed_request(b"test-app-secret", "16505551234");
    let r = post(format!("signed_request={signed}"))
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let receipt: Value = r.json().await.expect("json");
    let code = receipt["confirmation_code"].as_str().expect("code");
    assert_eq!(code.len(), 20);
    let url = receipt["url"].as_str().expect("url");
    assert_eq!(
        url,
        format!("{}/data-deletion/{code}", app.state.settings.app_url)
    );
    let listed: Value = app
        .get_as("/api/v1/conversations", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["data"],
        json!([]),
        "the person's conversation is gone"
    );

    // The status page, for the person (HTML) and for machines (JSON).
    let path = url.trim_start_matches(&app.state.settings.app_url);
    let page = app.get(path).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains(code) && html.contains("completed"), "{html}");
    assert!(html.contains("Conversations deleted: 1"), "{html}");
    let status: Value = app
        .client
        .get(app.url(path))
        .header("accept", "application/json")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (
            &status["status"],
            &status["conversations_deleted"],
            &status["messages_deleted"]
        ),
        (&json!("completed"), &json!(1), &json!(1))
    );
    let r = app.get("/data-deletion/AAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(error_code(r).await, (404, "not_found".to_owned()));
}

#[tokio::test]
async fn a_customers_messages_are_answered_in_order_in_one_conversation() {
    let (app, owner, sent_log) = meta_app("growth").await;
    app.upload_guide(&owner).await;
    let connection = connect_graph(&app, &owner, "whatsapp", "106540352242922").await;
    // Three messages in one delivery, a second apart; two workers take their jobs at once.
    let now = chrono::Utc::now().timestamp();
    let questions = [
        "How long do refunds take?",
        "Which countries do you ship to?",
        "How long do refunds take?",
    ];
    let messages: Vec<Value> = questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            json!({ "from": "16505551234", "id": format!("wamid.ORDER{i}"),
                    "timestamp": (now - 3 + i as i64).to_string(), "type": "text", "text": { "body": q } })
        })
        .collect();
    let body = json!({ "object": "whatsapp_business_account", "entry": [{ "id": "1", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
        "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": "16505551234" }],
        "messages": messages } }] }] })
    .to_string()
    .into_bytes();
    assert_eq!(post_signed(&app, body).await.status(), 200);
    let sent = app.wait_for_sent(&sent_log, 3).await;
    assert_eq!(sent.len(), 3, "{sent:?}");
    let texts: Vec<&str> = sent
        .iter()
        .map(|(_, _, b)| b["text"]["body"].as_str().expect("text"))
        .collect();
    assert!(texts[0].contains("14 days"), "{texts:?}");
    assert!(
        texts[1].contains("Canada"),
        "answers in the customer's order: {texts:?}"
    );
    assert!(texts[2].contains("14 days"), "{texts:?}");
    let tenant: cortex_core::ids::TenantId = owner.tenant_id.parse().expect("tenant");
    let conversation = app
        .state
        .store
        .find_customer_conversation(tenant, connection, "16505551234")
        .await
        .expect("find")
        .expect("one conversation");
    let stored = app
        .state
        .store
        .recent_messages(tenant, conversation.id, 10)
        .await
        .expect("messages");
    let asked: Vec<&str> = stored
        .iter()
        .filter(|m| m.role == cortex_core::conversations::MessageRole::User)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(asked, questions, "one conversation, in order");
}

#[tokio::test]
async fn a_meta_asset_is_connected_only_with_a_token_that_reaches_it() {
    let (app, owner, _) = meta_app("growth").await;
    let refused = |kind: &'static str, asset: &'static str, token: &'static str| {
        let app = &app;
        let access = owner.access.clone();
        async move {
            let r = app
                .connect(
                    &access,
                    json!({ "kind": kind, "asset_id": asset, "access_token": token }),
                )
                .await;
            assert_eq!(r.status(), 422, "{kind} {asset}");
            let e: Value = r.json().await.expect("json");
            assert_eq!(e["error"]["code"], "channel_not_verified", "{e}");
            e["error"]["message"].as_str().unwrap_or("").to_owned()
        }
    };
    // A token Meta does not know, another business's token, a token that is not the page's.
    let m = refused(
        "whatsapp",
        "106540352242922",
        "EAAG-made-up-token-0000000000",
    )
    .await;
    assert!(m.contains("OAuthException 190"), "{m}");
    let m = refused("whatsapp", "106540352242922", OTHER_GRAPH_TOKEN).await;
    assert!(
        m.contains("does not reach this WhatsApp phone number id"),
        "{m}"
    );
    let m = refused("messenger", "1234567890", OTHER_GRAPH_TOKEN).await;
    assert!(m.contains("not a page token of this page"), "{m}");
    let m = refused("instagram", "17841400000000001", OTHER_GRAPH_TOKEN).await;
    assert!(m.contains("Instagram account is linked to"), "{m}");
    let listed: Value = app
        .get_as("/api/v1/channels", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"], json!([]), "nothing stored");

    // With the asset's own token: connected, proven, active.
    let r = app.connect(&owner.access,
        json!({ "kind": "instagram", "asset_id": "17841400000000001", "access_token": GRAPH_TOKEN }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], "active");
    assert!(v["verified_at"].is_string());
}

#[tokio::test]
async fn the_tenant_whose_token_controls_an_asset_takes_it_from_an_unproven_claim() {
    let (app, owner, _) = meta_app("growth").await;
    let operator = app.operator("ops2@cortex.test").await;
    let squatter = app.owner("squatter@evil.test", "Evil").await;
    app.on_plan(&operator, &squatter, "growth").await;
    app.legacy_claim(&squatter, "messenger", "1234567890", OTHER_GRAPH_TOKEN)
        .await;
    let listed: Value = app
        .get_as("/api/v1/channels", &squatter.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"][0]["status"], "unverified");

    // The squatter cannot prove control either; the page's owner can, and takes the page.
    let r = app.connect(&squatter.access,
        json!({ "kind": "instagram", "asset_id": "17841400000000001", "access_token": OTHER_GRAPH_TOKEN }),
    )
    .await;
    assert_eq!(
        error_code(r).await,
        (422, "channel_not_verified".to_owned())
    );
    connect_graph(&app, &owner, "messenger", "1234567890").await;
    let routed = app
        .state
        .store
        .find_channel_connection(cortex_core::conversations::Channel::Messenger, "1234567890")
        .await
        .expect("find")
        .expect("routed");
    assert_eq!(routed.tenant_id.to_string(), owner.tenant_id);
    let left: Value = app
        .get_as("/api/v1/channels", &squatter.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(left["data"], json!([]), "the unproven claim is released");
    assert!(
        app.audit_actions(&squatter)
            .await
            .contains(&"channel.released".to_owned())
    );

    // A claim that still stands is not taken: a second tenant with the same token gets 409.
    let second = app.owner("second@acme.test", "Second").await;
    app.on_plan(&operator, &second, "growth").await;
    let r = app
        .connect(
            &second.access,
            json!({ "kind": "messenger", "asset_id": "1234567890", "access_token": GRAPH_TOKEN }),
        )
        .await;
    assert_eq!(error_code(r).await, (409, "channel_taken".to_owned()));

    // A claim whose token no longer works gives way too.
    app.legacy_claim(
        &squatter,
        "whatsapp",
        "106540352242922",
        "EAAG-revoked-token-00000000",
    )
    .await;
    connect_graph(&app, &owner, "whatsapp", "106540352242922").await;
}

#[tokio::test]
async fn disconnecting_removes_the_apps_webhook_subscription_once_no_connection_uses_the_page() {
    let (graph, _, unsubscribed) = spawn_graph_full(vec![]).await;
    let app = crate::helpers::spawn_app_with(move |s| {
        s.providers.meta_graph_base_url = Some(graph);
    })
    .await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "growth").await;
    // The page and its Instagram account share the page's subscription.
    let page = connect_graph(&app, &owner, "messenger", "1234567890").await;
    let instagram = connect_graph(&app, &owner, "instagram", "17841400000000001").await;
    let number = connect_graph(&app, &owner, "whatsapp", "106540352242922").await;
    for id in [page, number] {
        let r = app
            .delete_as(&format!("/api/v1/channels/{id}"), &owner.access)
            .await;
        assert_eq!(r.status(), 204);
    }
    assert!(
        unsubscribed.lock().expect("lock").is_empty(),
        "the Instagram account still uses the page's subscription"
    );
    let r = app
        .delete_as(&format!("/api/v1/channels/{instagram}"), &owner.access)
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        unsubscribed.lock().expect("lock").clone(),
        vec!["1234567890".to_owned()]
    );
}

#[tokio::test]
async fn a_connection_whose_token_meta_refuses_on_a_send_is_flagged() {
    let (graph, sent_log) = spawn_graph(vec![(
        401,
        json!({ "error": { "message": "Error validating access token: The session has been invalidated because the user changed their password.",
                           "type": "OAuthException", "code": 190, "error_subcode": 460 } }),
    )])
    .await;
    let app = crate::helpers::spawn_app_with(move |s| {
        s.providers.meta_app_secret =
            Some(cortexlayer_server::config::Secret::new("test-app-secret"));
        s.providers.meta_verify_token = Some(cortexlayer_server::config::Secret::new("verify-me"));
        s.providers.meta_graph_base_url = Some(graph);
    })
    .await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "growth").await;
    connect_graph(&app, &owner, "whatsapp", "106540352242922").await;
    let body = whatsapp_delivery("106540352242922", "wamid.FLAG1", "Hello, are you open?");
    assert_eq!(post_signed(&app, body).await.status(), 200);
    app.wait_for_sent(&sent_log, 1).await;
    let listed: Value = app
        .get_as("/api/v1/channels", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["data"][0]["status"], "token_invalid",
        "the connection is flagged: {listed}"
    );
    assert!(listed["data"][0]["token_invalid_at"].is_string());
    assert!(
        app.audit_actions(&owner)
            .await
            .contains(&"channel.token_invalid".to_owned())
    );
}
