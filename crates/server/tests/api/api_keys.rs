//! API keys: shown once, stored hashed, scoped, authenticate as the tenant, revocable.

use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn a_key_is_shown_once_authenticates_as_the_tenant_and_records_its_use() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let r = app
        .post_as(
            "/api/v1/api-keys",
            &owner.access,
            &json!({ "name": "CRM sync", "scopes": ["chat", "knowledge:read", "chat"] }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    let key = created["key"].as_str().expect("key").to_owned();
    let prefix = created["api_key"]["prefix"]
        .as_str()
        .expect("prefix")
        .to_owned();
    assert!(key.starts_with(&format!("{prefix}_")) && prefix.starts_with("ck_"));
    assert_eq!(
        created["api_key"]["scopes"],
        json!(["chat", "knowledge:read"]),
        "deduplicated"
    );

    let list: Value = app
        .get_as("/api/v1/api-keys", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    let listed = &list[0];
    assert_eq!(listed["prefix"], prefix.as_str());
    assert!(
        listed.get("key").is_none() && !list.to_string().contains(&key),
        "never shown again"
    );
    assert!(listed["last_used_at"].is_null());

    let t: Value = app
        .get_as("/api/v1/tenant", &key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (t["id"].as_str(), t["authenticated_as"].as_str()),
        (Some(owner.tenant_id.as_str()), Some("api_key"))
    );
    let via_header = app
        .client
        .get(app.url("/api/v1/tenant"))
        .header("x-api-key", &key)
        .send()
        .await
        .expect("request");
    assert_eq!(via_header.status(), 200);
    let list: Value = app
        .get_as("/api/v1/api-keys", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(list[0]["last_used_at"].is_string());
}

#[tokio::test]
async fn a_revoked_key_stops_working_and_both_events_are_audited() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let (id, key) = app.api_key(&owner, &["chat"]).await;
    assert_eq!(app.get_as("/api/v1/tenant", &key).await.status(), 200);
    assert_eq!(
        app.delete_as(&format!("/api/v1/api-keys/{id}"), &owner.access)
            .await
            .status(),
        204
    );
    assert_eq!(
        error_code(app.get_as("/api/v1/tenant", &key).await).await,
        (401, "unauthenticated".into())
    );
    assert_eq!(
        error_code(
            app.delete_as(&format!("/api/v1/api-keys/{id}"), &owner.access)
                .await
        )
        .await,
        (409, "already_revoked".into())
    );
    let list: Value = app
        .get_as("/api/v1/api-keys", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(list[0]["revoked_at"].is_string());
    let actions = app.audit_actions(&owner).await;
    assert_eq!(&actions[..2], ["api_key.revoked", "api_key.created"]);
    let forged = format!("{}x", &key[..key.len() - 1]);
    assert_eq!(app.get_as("/api/v1/tenant", &forged).await.status(), 401);
}

#[tokio::test]
async fn unknown_scopes_and_empty_names_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let r = app
        .post_as(
            "/api/v1/api-keys",
            &owner.access,
            &json!({ "name": "x", "scopes": ["chat", "root"] }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (Some("validation_failed"), Some("scopes[1]"))
    );
    let r = app
        .post_as(
            "/api/v1/api-keys",
            &owner.access,
            &json!({ "name": " ", "scopes": ["chat"] }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["field"], "name");
    let r = app
        .post_as(
            "/api/v1/api-keys",
            &owner.access,
            &json!({ "name": "x", "scopes": [] }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["field"], "scopes");
}

#[tokio::test]
async fn keys_cannot_manage_people_or_keys_and_agents_cannot_make_keys() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let agent = app.member(&owner, "agent@acme.example", "agent").await;
    let (_, key) = app.api_key(&owner, &["chat", "knowledge:write"]).await;
    for r in [
        app.post_as(
            "/api/v1/api-keys",
            &key,
            &json!({ "name": "child", "scopes": ["chat"] }),
        )
        .await,
        app.post_as(
            "/api/v1/invitations",
            &key,
            &json!({ "email": "x@acme.example", "role": "admin" }),
        )
        .await,
        app.get_as("/api/v1/members", &key).await,
        app.get_as("/api/v1/me", &key).await,
        app.post_as(
            "/api/v1/api-keys",
            &agent.access,
            &json!({ "name": "mine", "scopes": ["chat"] }),
        )
        .await,
    ] {
        assert_eq!(error_code(r).await, (403, "forbidden".into()));
    }
}
