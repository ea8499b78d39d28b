//! Passwords over the JSON API: a reset by emailed link (the same answer for any address,
//! single use, every session signed out) and a change by the signed-in member.

use serde_json::json;

use crate::helpers::{PASSWORD, error_code, spawn_app, token_in};

const NEW_PASSWORD: &str = "a brand new long password";

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_signs_out_every_session() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    let second_login =
        crate::helpers::TestApp::session_of(app.login("ana@acme.test", PASSWORD).await).await;

    // Known and unknown addresses get the same answer.
    let known = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({ "email": "ana@acme.test" }),
        )
        .await;
    assert_eq!(known.status(), 202);
    let known: serde_json::Value = known.json().await.expect("json");
    let unknown = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({ "email": "nobody@acme.test" }),
        )
        .await;
    assert_eq!(unknown.status(), 202);
    let unknown: serde_json::Value = unknown.json().await.expect("json");
    assert_eq!(known, unknown);
    let mail = app
        .nth_mail_about("ana@acme.test", "Reset your CortexLayer password", 1)
        .await;
    assert!(
        mail.body
            .contains("https://support.example/reset-password?token="),
        "the link points at the dashboard: {}",
        mail.body
    );
    let token = token_in(&mail.body).expect("token");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(app.mails_to("nobody@acme.test").is_empty());

    // A weak password is refused and the link still works afterwards.
    let r = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": token, "password": "short" }),
        )
        .await;
    assert_eq!(error_code(r).await, (422, "validation_failed".into()));

    let r = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": token, "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());

    // Every session ended: both logins' refresh tokens are dead.
    for refresh in [&owner.refresh, &second_login.refresh] {
        let r = app.refresh(refresh).await;
        assert_eq!(error_code(r).await, (401, "invalid_refresh_token".into()));
    }
    // The old password no longer signs in; the new one does.
    let r = app.login("ana@acme.test", PASSWORD).await;
    assert_eq!(error_code(r).await, (401, "invalid_credentials".into()));
    assert_eq!(app.login("ana@acme.test", NEW_PASSWORD).await.status(), 200);

    // The link works once.
    let r = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": token, "password": "yet another long password" }),
        )
        .await;
    assert_eq!(error_code(r).await, (400, "invalid_reset_token".into()));
    let r = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": "not-a-token", "password": "yet another long password" }),
        )
        .await;
    assert_eq!(error_code(r).await, (400, "invalid_reset_token".into()));
    assert_eq!(app.login("ana@acme.test", NEW_PASSWORD).await.status(), 200);

    let actions = app
        .audit_actions(
            &crate::helpers::TestApp::session_of(app.login("ana@acme.test", NEW_PASSWORD).await)
                .await,
        )
        .await;
    assert!(
        actions.contains(&"auth.password_reset".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_newer_password_makes_earlier_reset_links_stale() {
    let app = spawn_app().await;
    app.owner("ana@acme.test", "Acme").await;
    let mut tokens = Vec::new();
    for n in 1..=2 {
        let r = app
            .post_json(
                "/api/v1/auth/password-reset",
                &json!({ "email": "ana@acme.test" }),
            )
            .await;
        assert_eq!(r.status(), 202);
        let mail = app.nth_mail_about("ana@acme.test", "Reset your", n).await;
        tokens.push(token_in(&mail.body).expect("token"));
    }
    assert_ne!(tokens[0], tokens[1]);
    let r = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": tokens[1], "password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({ "token": tokens[0], "password": "the attacker's own password" }),
        )
        .await;
    assert_eq!(error_code(r).await, (400, "invalid_reset_token".into()));
    assert_eq!(app.login("ana@acme.test", NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn reset_requests_are_rate_limited_per_account() {
    let app = spawn_app().await;
    app.owner("ana@acme.test", "Acme").await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = app
            .post_json(
                "/api/v1/auth/password-reset",
                &json!({ "email": "ana@acme.test" }),
            )
            .await;
        statuses.push(r.status().as_u16());
    }
    // 10 per account per 15 minutes, as for sign-in.
    assert_eq!(&statuses[..10], &[202; 10]);
    assert_eq!(&statuses[10..], &[429, 429]);
}

#[tokio::test]
async fn a_member_changes_their_password_with_the_current_one_and_other_sessions_end() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    let r = app
        .client
        .put(app.url("/api/v1/me/password"))
        .bearer_auth(&owner.access)
        .json(
            &json!({ "current_password": "not my password at all", "new_password": NEW_PASSWORD }),
        )
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"]["field"], "current_password");
    assert_eq!(
        app.refresh(&owner.refresh).await.status(),
        200,
        "nothing changed"
    );

    let second =
        crate::helpers::TestApp::session_of(app.login("ana@acme.test", PASSWORD).await).await;
    let r = app
        .client
        .put(app.url("/api/v1/me/password"))
        .bearer_auth(&second.access)
        .json(&json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 204);
    let r = app.refresh(&second.refresh).await;
    assert_eq!(error_code(r).await, (401, "invalid_refresh_token".into()));
    assert_eq!(app.login("ana@acme.test", NEW_PASSWORD).await.status(), 200);

    // An API key is no member: it has no password to change.
    let admin =
        crate::helpers::TestApp::session_of(app.login("ana@acme.test", NEW_PASSWORD).await).await;
    let (_, key) = app.api_key(&admin, &["chat"]).await;
    let r = app.get_as("/api/v1/me/sessions", &key).await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
}

#[tokio::test]
async fn a_member_lists_their_sessions_and_signs_out_everywhere() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    let second =
        crate::helpers::TestApp::session_of(app.login("ana@acme.test", PASSWORD).await).await;
    let r = app.get_as("/api/v1/me/sessions", &owner.access).await;
    assert_eq!(r.status(), 200);
    let sessions: Vec<serde_json::Value> = r.json().await.expect("json");
    assert_eq!(sessions.len(), 2, "{sessions:?}");

    let r = app.delete_as("/api/v1/me/sessions", &second.access).await;
    assert_eq!(r.status(), 204);
    for refresh in [&owner.refresh, &second.refresh] {
        let r = app.refresh(refresh).await;
        assert_eq!(error_code(r).await, (401, "invalid_refresh_token".into()));
    }
    let r = app.get_as("/api/v1/me/sessions", &owner.access).await;
    let sessions: Vec<serde_json::Value> = r.json().await.expect("json");
    assert!(sessions.is_empty());
}
