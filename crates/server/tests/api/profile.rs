//! The company's profile and a member's sign-in address over the JSON API: owners and admins
//! rename the company; a new address becomes a member's only with the code mailed to it, and
//! asking for an address that has an account answers the same and changes nothing.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, code_in, error_code, spawn_app};

#[tokio::test]
async fn owners_and_admins_rename_the_company_and_nobody_else_does() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    let admin = app.member(&owner, "al@acme.test", "admin").await;
    let agent = app.member(&owner, "ag@acme.test", "agent").await;
    let other = app.owner("bo@beta.test", "Beta").await;
    let (_, key) = app
        .api_key(&owner, &["chat", "knowledge:read", "knowledge:write"])
        .await;

    let r = app
        .patch_as(
            "/api/v1/tenant",
            &owner.access,
            &json!({ "name": "  Acme Support Ltd  " }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["name"], "Acme Support Ltd");
    let r = app
        .patch_as("/api/v1/tenant", &admin.access, &json!({ "name": "Acme" }))
        .await;
    assert_eq!(r.status(), 200);

    for (who, token) in [("an agent", &agent.access), ("an API key", &key)] {
        let r = app
            .patch_as("/api/v1/tenant", token, &json!({ "name": "Hijacked" }))
            .await;
        assert_eq!(error_code(r).await, (403, "forbidden".into()), "{who}");
    }
    let r = app
        .patch_as("/api/v1/tenant", &owner.access, &json!({ "name": "   " }))
        .await;
    assert_eq!(error_code(r).await, (422, "validation_failed".into()));
    let r = app
        .patch_as(
            "/api/v1/tenant",
            &owner.access,
            &json!({ "name": "Acme", "plan": "growth" }),
        )
        .await;
    assert_eq!(r.status().as_u16(), 422, "unknown fields are refused");

    let r = app.get_as("/api/v1/tenant", &key).await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["name"].as_str(), v["plan"].as_str()),
        (Some("Acme"), Some("starter"))
    );
    let r = app.get_as("/api/v1/tenant", &other.access).await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["name"], "Beta", "another tenant keeps its name");

    let log = app.audit_actions(&owner).await;
    assert_eq!(
        log.iter().filter(|a| *a == "tenant.renamed").count(),
        2,
        "{log:?}"
    );
    let r = app.get_as("/api/v1/audit-events", &owner.access).await;
    let v: Value = r.json().await.expect("json");
    let renamed = &v["data"][0];
    assert_eq!(renamed["action"], "tenant.renamed");
    assert_eq!(renamed["metadata"]["from"], "Acme Support Ltd");
    assert_eq!(renamed["metadata"]["to"], "Acme");
}

#[tokio::test]
async fn a_new_address_becomes_the_members_only_with_the_code_mailed_to_it() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    let colleague = app.member(&owner, "cy@acme.test", "admin").await;

    let r = app
        .post_as(
            "/api/v1/me/email",
            &owner.access,
            &json!({ "new_email": "ana@newmail.test", "password": "not the password" }),
        )
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["field"], "password", "{v}");
    let r = app
        .post_as(
            "/api/v1/me/email",
            &owner.access,
            &json!({ "new_email": "ANA@acme.test", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), 422, "the current address, in any case");
    let r = app
        .post_as(
            "/api/v1/me/email",
            &owner.access,
            &json!({ "new_email": "not an address", "password": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(r).await, (422, "validation_failed".into()));
    assert!(app.mails_to("ana@newmail.test").is_empty());

    let r = app
        .post_as(
            "/api/v1/me/email",
            &owner.access,
            &json!({ "new_email": "Ana@NewMail.test", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["new_email"], "ana@newmail.test");
    let mail = app
        .nth_mail_about("ana@newmail.test", "verification code", 1)
        .await;
    let code = code_in(&mail.body).expect("a code in the mail");
    let r = app.get_as("/api/v1/me/email", &owner.access).await;
    assert_eq!(r.status(), 200);

    // Until the code is entered nothing has changed.
    let r = app.get_as("/api/v1/me", &owner.access).await;
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["email"], "ana@acme.test");
    // Another member of the team cannot use the code: it is not their change.
    let r = app
        .post_as(
            "/api/v1/me/email/confirm",
            &colleague.access,
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(error_code(r).await, (400, "invalid_code".into()));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = app
        .post_as(
            "/api/v1/me/email/confirm",
            &owner.access,
            &json!({ "code": wrong }),
        )
        .await;
    assert_eq!(error_code(r).await, (400, "invalid_code".into()));

    let r = app
        .post_as(
            "/api/v1/me/email/confirm",
            &owner.access,
            &json!({ "code": format!(" {code} ") }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["email"], "ana@newmail.test");
    let told = app
        .nth_mail_about("ana@acme.test", "sign-in address changed", 1)
        .await;
    assert!(told.body.contains("ana@newmail.test"), "{}", told.body);

    // The old address signs in no one; the new one signs in with the same password, and the
    // session that made the change still works.
    let r = app.login("ana@acme.test", PASSWORD).await;
    assert_eq!(error_code(r).await, (401, "invalid_credentials".into()));
    assert_eq!(app.login("ana@newmail.test", PASSWORD).await.status(), 200);
    assert_eq!(app.refresh(&owner.refresh).await.status(), 200);
    let r = app
        .post_as(
            "/api/v1/me/email/confirm",
            &owner.access,
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(
        error_code(r).await,
        (400, "invalid_code".into()),
        "used once"
    );
    let r = app.get_as("/api/v1/me/email", &owner.access).await;
    assert_eq!(error_code(r).await, (404, "not_found".into()));
    assert!(
        app.audit_actions(&owner)
            .await
            .contains(&"auth.email_changed".to_owned())
    );
    // The old address is free again: someone can sign up with it.
    assert_eq!(
        app.signup("ana@acme.test", "Acme Again").await.status(),
        202
    );
    let mail = app.last_mail_to("ana@acme.test").await;
    assert!(
        mail.subject.contains("verification code"),
        "{}",
        mail.subject
    );
}

#[tokio::test]
async fn asking_for_an_address_with_an_account_answers_the_same_and_changes_nothing() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    let _other = app.owner("bo@beta.test", "Beta").await;

    let ask = |to: &'static str| {
        let app = &app;
        let token = owner.access.clone();
        async move {
            let r = app
                .post_as(
                    "/api/v1/me/email",
                    &token,
                    &json!({ "new_email": to, "password": PASSWORD }),
                )
                .await;
            let status = r.status().as_u16();
            let v: Value = r.json().await.expect("json");
            (
                status,
                v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
            )
        }
    };
    let free = ask("ana@free.test").await;
    let taken = ask("bo@beta.test").await;
    assert_eq!(free, taken, "the same answer");
    assert_eq!(taken.0, 202);

    let notice = app
        .nth_mail_about("bo@beta.test", "already has a CortexLayer account", 1)
        .await;
    assert_eq!(code_in(&notice.body), None, "no code: {}", notice.body);
    // Whatever is guessed, the taken address never becomes Ana's.
    for guess in ["000000", "123456", "999999"] {
        let r = app
            .post_as(
                "/api/v1/me/email/confirm",
                &owner.access,
                &json!({ "code": guess }),
            )
            .await;
        assert_eq!(error_code(r).await, (400, "invalid_code".into()));
    }
    let r = app.get_as("/api/v1/me", &owner.access).await;
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["email"], "ana@acme.test");
    assert_eq!(app.login("bo@beta.test", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn wrong_codes_use_up_a_change_and_a_withdrawn_one_stops_working() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    let body = json!({ "new_email": "ana@next.test", "password": PASSWORD });
    let ask = || app.post_as("/api/v1/me/email", &owner.access, &body);
    assert_eq!(ask().await.status(), 202);
    let code = code_in(&app.nth_mail_about("ana@next.test", "code", 1).await.body).expect("code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let r = app
            .post_as(
                "/api/v1/me/email/confirm",
                &owner.access,
                &json!({ "code": wrong }),
            )
            .await;
        assert_eq!(error_code(r).await, (400, "invalid_code".into()));
    }
    let r = app
        .post_as(
            "/api/v1/me/email/confirm",
            &owner.access,
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(
        error_code(r).await,
        (400, "invalid_code".into()),
        "after 3 wrong codes the right one no longer works"
    );

    // A new request sends a new code; withdrawing it makes that one useless too.
    assert_eq!(ask().await.status(), 202);
    let code = code_in(&app.nth_mail_about("ana@next.test", "code", 2).await.body).expect("code");
    let r = app.delete_as("/api/v1/me/email", &owner.access).await;
    assert_eq!(r.status(), 204);
    let r = app
        .post_as(
            "/api/v1/me/email/confirm",
            &owner.access,
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(error_code(r).await, (400, "invalid_code".into()));

    // API keys have no address of their own.
    let (_, key) = app.api_key(&owner, &["chat"]).await;
    let r = app
        .post_as(
            "/api/v1/me/email",
            &key,
            &json!({ "new_email": "bot@next.test", "password": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    let r = app.get_as("/api/v1/me", &owner.access).await;
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["email"], "ana@acme.test");
}
