//! Connecting messaging channels: plan gating, validation, sealed tokens, one asset per
//! tenant, disconnection, and key rotation from the command line.

use cortexlayer_server::config::{DEV_ENCRYPTION_KEY, decode_key};
use cortexlayer_server::infra::secrets::{SecretBox, SecretError, key_id};
use serde_json::{Value, json};

use crate::helpers::{Member, TestApp, error_code, spawn_app};

const TOKEN: &str = "EAAGm0PX4ZCpsBAKZAb1d2c3e4f5g6h7i8j9kLmNoP";

async fn connect(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.post_as("/api/v1/channels", token, &body).await
}

fn whatsapp(asset: &str) -> Value {
    json!({ "kind": "whatsapp", "asset_id": asset, "access_token": TOKEN, "name": "Support line" })
}

async fn on_plan(app: &TestApp, operator: &str, member: &Member, plan: &str) {
    let r = app
        .post_as(
            &format!("/api/v1/admin/tenants/{}/plan", member.tenant_id),
            operator,
            &json!({ "plan": plan }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

#[tokio::test]
async fn meta_channels_need_growth_and_their_tokens_are_sealed() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    let r = connect(&app, &owner.access, whatsapp("106540352242922")).await;
    assert_eq!(
        error_code(r).await,
        (403, "plan_feature_unavailable".to_owned())
    );

    on_plan(&app, &operator, &owner, "growth").await;
    let r = app
        .post_as(
            &format!("/api/v1/admin/tenants/{}/plan", owner.tenant_id),
            &operator,
            &json!({ "plan": "platinum" }),
        )
        .await;
    assert_eq!(error_code(r).await, (422, "validation_failed".to_owned()));
    let r = connect(&app, &owner.access, whatsapp("106540352242922")).await;
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
    on_plan(&app, &operator, &other, "scale").await;
    let r = connect(&app, &other.access, whatsapp("106540352242922")).await;
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
        let r = connect(&app, &other.access, body.clone()).await;
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["error"]["field"], field, "{body}");
    }
    let agent = app.member(&owner, "agent@acme.test", "agent").await;
    let r = connect(&app, &agent.access, whatsapp("999")).await;
    assert_eq!(error_code(r).await, (403, "forbidden".to_owned()));
    let (_, key) = app.api_key(&owner, &["chat"]).await;
    let r = connect(&app, &key, whatsapp("999")).await;
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
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    on_plan(&app, &operator, &owner, "growth").await;
    assert_eq!(
        connect(&app, &owner.access, whatsapp("1065"))
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
