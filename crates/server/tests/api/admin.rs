//! Platform admins: the tenant list, suspension and reactivation; and the command line.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_code, spawn_app};

#[tokio::test]
async fn an_operator_lists_tenants_and_a_suspension_locks_out_members_and_keys() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let (_, key) = app.api_key(&owner, &["chat"]).await;
    let other = app.owner("owner@other.example", "Other").await;
    let op = app.operator("ops@platform.example").await;

    let list: Value = app
        .get_as("/api/v1/admin/tenants", &op)
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["Other", "Acme"]);

    let r = app
        .post_as(
            &format!("/api/v1/admin/tenants/{}/suspend", owner.tenant_id),
            &op,
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.expect("json");
    assert_eq!(t["status"], "suspended");

    for r in [
        app.get_as("/api/v1/me", &owner.access).await,
        app.get_as("/api/v1/tenant", &key).await,
        app.login("owner@acme.example", PASSWORD).await,
        app.refresh(&owner.refresh).await,
    ] {
        assert_eq!(error_code(r).await, (403, "tenant_suspended".into()));
    }
    assert_eq!(
        app.get_as("/api/v1/me", &other.access).await.status(),
        200,
        "other tenants are unaffected"
    );

    let r = app
        .post_as(
            &format!("/api/v1/admin/tenants/{}/reactivate", owner.tenant_id),
            &op,
            &json!({}),
        )
        .await;
    let t: Value = r.json().await.expect("json");
    assert_eq!(t["status"], "trial", "back to the status it had");
    assert_eq!(app.get_as("/api/v1/tenant", &key).await.status(), 200);
    let fresh =
        crate::helpers::TestApp::session_of(app.login("owner@acme.example", PASSWORD).await).await;
    let actions = app.audit_actions(&fresh).await;
    assert!(
        actions.contains(&"tenant.suspended".to_owned())
            && actions.contains(&"tenant.reactivated".to_owned())
    );
    let one: Value = app
        .get_as(&format!("/api/v1/admin/tenants/{}", owner.tenant_id), &op)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(one["name"], "Acme");
}

#[tokio::test]
async fn members_cannot_use_operator_endpoints_and_operators_cannot_act_inside_tenants() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let op = app.operator("ops@platform.example").await;
    assert_eq!(
        error_code(app.get_as("/api/v1/admin/tenants", &owner.access).await).await,
        (403, "forbidden".into())
    );
    let r = app
        .post_as(
            &format!("/api/v1/admin/tenants/{}/suspend", owner.tenant_id),
            &owner.access,
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        error_code(app.get_as("/api/v1/members", &op).await).await,
        (403, "forbidden".into())
    );
    assert_eq!(
        app.get_as("/api/v1/admin/tenants", "nonsense")
            .await
            .status(),
        401
    );
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(
        error_code(
            app.post_as(
                &format!("/api/v1/admin/tenants/{unknown}/suspend"),
                &op,
                &json!({})
            )
            .await
        )
        .await,
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn operator_login_answers_the_same_for_unknown_and_wrong() {
    let app = spawn_app().await;
    app.operator("ops@platform.example").await;
    let a = app
        .post_json(
            "/api/v1/auth/admin/login",
            &json!({ "email": "ops@platform.example", "password": "wrong password!!" }),
        )
        .await;
    let b = app
        .post_json(
            "/api/v1/auth/admin/login",
            &json!({ "email": "who@platform.example", "password": "wrong password!!" }),
        )
        .await;
    assert_eq!(error_code(a).await, error_code(b).await);
    // A tenant member's credentials are not operator credentials.
    app.owner("owner@acme.example", "Acme").await;
    let r = app
        .post_json(
            "/api/v1/auth/admin/login",
            &json!({ "email": "owner@acme.example", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), 401);
}

/// The binary itself: `admin create` reads the password from stdin, `config` redacts secrets,
/// and the created admin can sign in to a server on the same database.
#[tokio::test]
async fn the_command_line_creates_an_admin_and_prints_a_redacted_configuration() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let db = crate::helpers::test_database_url().await;
    let bin = env!("CARGO_BIN_EXE_cortexlayer");

    let mut child = Command::new(bin)
        .args([
            "admin",
            "create",
            "--email",
            "root@platform.example",
            "--password-stdin",
        ])
        .env("DATABASE_URL", &db)
        .env("JWT_SECRET", crate::helpers::JWT_SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cortexlayer");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("platform admin created"));

    let app = crate::helpers::spawn_app_with(|s| {
        s.database_url = cortexlayer_server::config::Secret::new(db.clone())
    })
    .await;
    let r = app
        .post_json(
            "/api/v1/auth/admin/login",
            &json!({ "email": "root@platform.example", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), 200);

    let out = Command::new(bin)
        .arg("config")
        .env("DATABASE_URL", &db)
        .env("JWT_SECRET", "cli-secret-that-must-never-be-printed-0123")
        .env("OPENAI_API_KEY", "sk-never-printed")
        .output()
        .expect("run config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("bind = \"127.0.0.1:8080\""), "{text}");
    assert!(
        !text.contains("cli-secret-that-must") && !text.contains("sk-never-printed"),
        "{text}"
    );
    assert!(text.contains("[redacted]"));

    let out = Command::new(bin)
        .args(["serve"])
        .env("CORTEX_ENV", "production")
        .env("DATABASE_URL", &db)
        .output()
        .expect("run serve");
    assert!(
        !out.status.success(),
        "production with default secrets must not start"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("JWT_SECRET"));
}
