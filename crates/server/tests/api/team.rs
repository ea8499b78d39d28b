//! Invitations, members, roles, the last-owner rule, and tenant isolation.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn an_invited_member_accepts_signs_in_and_appears_in_the_team() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let r = app
        .post_as(
            "/api/v1/invitations",
            &owner.access,
            &json!({ "email": "New.Hire@acme.example", "role": "admin" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let inv: Value = r.json().await.expect("json");
    assert_eq!(
        (inv["email"].as_str(), inv["role"].as_str()),
        (Some("new.hire@acme.example"), Some("admin"))
    );
    assert!(
        inv.get("token").is_none() && inv.get("token_hash").is_none(),
        "the token is only in the mail"
    );

    let mail = app.last_mail_to("new.hire@acme.example").await;
    assert!(mail.subject.contains("Acme"));
    assert!(
        mail.body
            .contains("https://support.example/accept-invitation?token=")
    );
    let pending: Value = app
        .get_as("/api/v1/invitations", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(pending.as_array().expect("list").len(), 1);

    let token = crate::helpers::token_in(&mail.body).expect("token");
    let r = app.accept(&token).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["user"]["role"].as_str(), v["user"]["tenant_id"].as_str()),
        (Some("admin"), Some(owner.tenant_id.as_str()))
    );

    let members: Value = app
        .get_as("/api/v1/members", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    let emails: Vec<&str> = members
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["email"].as_str())
        .collect();
    assert_eq!(emails, ["owner@acme.example", "new.hire@acme.example"]);
    assert_eq!(
        app.login("new.hire@acme.example", PASSWORD).await.status(),
        200
    );
    let pending: Value = app
        .get_as("/api/v1/invitations", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(pending.as_array().expect("list").is_empty());
    let actions = app.audit_actions(&owner).await;
    assert!(
        actions.contains(&"member.invited".to_owned())
            && actions.contains(&"member.joined".to_owned())
    );
}

#[tokio::test]
async fn an_invitation_works_once() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let token = app.invite(&owner, "once@acme.example", "agent").await;
    assert_eq!(app.accept(&token).await.status(), 201);
    assert_eq!(
        error_code(app.accept(&token).await).await,
        (400, "invitation_invalid".into())
    );
    assert_eq!(
        error_code(app.accept("made-up-token").await).await,
        (400, "invitation_invalid".into())
    );
}

#[tokio::test]
async fn a_withdrawn_or_expired_invitation_cannot_be_accepted() {
    let app = spawn_app_with(|s| s.auth.invitation_ttl_secs = 1).await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let token = app.invite(&owner, "late@acme.example", "agent").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        error_code(app.accept(&token).await).await,
        (400, "invitation_invalid".into())
    );

    let token = app.invite(&owner, "withdrawn@acme.example", "agent").await;
    let list: Value = app
        .get_as("/api/v1/invitations", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    let id = list
        .as_array()
        .expect("list")
        .iter()
        .find(|i| i["email"] == "withdrawn@acme.example")
        .expect("listed")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        app.delete_as(&format!("/api/v1/invitations/{id}"), &owner.access)
            .await
            .status(),
        204
    );
    assert_eq!(
        error_code(app.accept(&token).await).await,
        (400, "invitation_invalid".into())
    );
}

#[tokio::test]
async fn accepting_needs_a_strong_password() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let token = app.invite(&owner, "weak@acme.example", "agent").await;
    let r = app
        .post_json(
            "/api/v1/auth/invitations/accept",
            &json!({ "token": token, "password": "short" }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["field"], "password");
    assert_eq!(
        app.accept(&token).await.status(),
        201,
        "the failed attempt did not use the invitation up"
    );
}

#[tokio::test]
async fn admins_manage_admins_and_agents_but_not_owners_and_agents_manage_nobody() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let admin = app.member(&owner, "admin@acme.example", "admin").await;
    let agent = app.member(&owner, "agent@acme.example", "agent").await;

    let r = app
        .post_as(
            "/api/v1/invitations",
            &admin.access,
            &json!({ "email": "o2@acme.example", "role": "owner" }),
        )
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    let r = app
        .post_as(
            "/api/v1/invitations",
            &admin.access,
            &json!({ "email": "a2@acme.example", "role": "agent" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .patch_as(
            &format!("/api/v1/members/{}", owner.user_id),
            &admin.access,
            &json!({ "role": "agent" }),
        )
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    let r = app
        .patch_as(
            &format!("/api/v1/members/{}", agent.user_id),
            &admin.access,
            &json!({ "role": "owner" }),
        )
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    let r = app
        .patch_as(
            &format!("/api/v1/members/{}", agent.user_id),
            &admin.access,
            &json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(r.status(), 200);

    assert_eq!(
        app.get_as("/api/v1/invitations", &agent.access)
            .await
            .status(),
        200,
        "the promotion applies to the live token"
    );

    let agent2 = app.member(&owner, "agent2@acme.example", "agent").await;
    let r = app
        .post_as(
            "/api/v1/invitations",
            &agent2.access,
            &json!({ "email": "x@acme.example", "role": "agent" }),
        )
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    let r = app
        .delete_as(
            &format!("/api/v1/members/{}", agent.user_id),
            &agent2.access,
        )
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
}

#[tokio::test]
async fn the_last_owner_can_be_neither_demoted_nor_removed() {
    let app = spawn_app().await;
    let owner = app.owner("solo@acme.example", "Acme").await;
    let r = app
        .patch_as(
            &format!("/api/v1/members/{}", owner.user_id),
            &owner.access,
            &json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(error_code(r).await, (409, "last_owner".into()));
    let r = app
        .delete_as(&format!("/api/v1/members/{}", owner.user_id), &owner.access)
        .await;
    assert_eq!(error_code(r).await, (409, "last_owner".into()));

    let second = app.member(&owner, "second@acme.example", "owner").await;
    let r = app
        .patch_as(
            &format!("/api/v1/members/{}", owner.user_id),
            &second.access,
            &json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(r.status(), 200, "with two owners one may step down");
    let r = app
        .delete_as(
            &format!("/api/v1/members/{}", second.user_id),
            &second.access,
        )
        .await;
    assert_eq!(error_code(r).await, (409, "last_owner".into()));
}

#[tokio::test]
async fn removal_and_role_changes_take_effect_at_once_and_are_audited() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let leaver = app.member(&owner, "leaver@acme.example", "admin").await;
    let r = app
        .patch_as(
            &format!("/api/v1/members/{}", leaver.user_id),
            &owner.access,
            &json!({ "role": "agent" }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app.get_as("/api/v1/invitations", &leaver.access).await;
    assert_eq!(
        error_code(r).await,
        (403, "forbidden".into()),
        "the demotion applies to the live token"
    );

    assert_eq!(
        app.delete_as(
            &format!("/api/v1/members/{}", leaver.user_id),
            &owner.access
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        error_code(app.get_as("/api/v1/me", &leaver.access).await).await,
        (401, "unauthenticated".into())
    );
    assert_eq!(app.refresh(&leaver.refresh).await.status(), 401);
    assert_eq!(
        app.login("leaver@acme.example", PASSWORD).await.status(),
        401
    );

    let r = app.get_as("/api/v1/audit-events", &owner.access).await;
    let v: Value = r.json().await.expect("json");
    let events = v["data"].as_array().expect("data");
    let removal = events
        .iter()
        .find(|e| e["action"] == "member.removed")
        .expect("removal audited");
    assert_eq!(
        (removal["actor_type"].as_str(), removal["actor_id"].as_str()),
        (Some("user"), Some(owner.user_id.as_str()))
    );
    assert_eq!(removal["target_id"], leaver.user_id.as_str());
    let change = events
        .iter()
        .find(|e| e["action"] == "member.role_changed")
        .expect("role change audited");
    assert_eq!(
        (
            change["metadata"]["from"].as_str(),
            change["metadata"]["to"].as_str()
        ),
        (Some("admin"), Some("agent"))
    );
}

#[tokio::test]
async fn another_tenants_members_invitations_and_keys_are_not_found() {
    let app = spawn_app().await;
    let a = app.owner("owner@a.example", "A").await;
    let b = app.owner("owner@b.example", "B").await;
    let a_member = app.member(&a, "member@a.example", "agent").await;
    app.invite(&a, "pending@a.example", "agent").await;
    let (a_key, _) = app.api_key(&a, &["chat"]).await;
    let a_invitations: Value = app
        .get_as("/api/v1/invitations", &a.access)
        .await
        .json()
        .await
        .expect("json");
    let a_invitation = a_invitations[0]["id"].as_str().expect("id").to_owned();

    for r in [
        app.patch_as(
            &format!("/api/v1/members/{}", a_member.user_id),
            &b.access,
            &json!({ "role": "admin" }),
        )
        .await,
        app.delete_as(&format!("/api/v1/members/{}", a_member.user_id), &b.access)
            .await,
        app.delete_as(&format!("/api/v1/invitations/{a_invitation}"), &b.access)
            .await,
        app.delete_as(&format!("/api/v1/api-keys/{a_key}"), &b.access)
            .await,
        app.delete_as("/api/v1/api-keys/not-a-uuid", &b.access)
            .await,
    ] {
        assert_eq!(error_code(r).await, (404, "not_found".into()));
    }
    let b_members: Value = app
        .get_as("/api/v1/members", &b.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(b_members.as_array().expect("list").len(), 1);
    let b_keys: Value = app
        .get_as("/api/v1/api-keys", &b.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(b_keys.as_array().expect("list").is_empty());
    let b_invitations: Value = app
        .get_as("/api/v1/invitations", &b.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(b_invitations.as_array().expect("list").is_empty());
    let b_audit = app.audit_actions(&b).await;
    assert_eq!(
        b_audit,
        ["tenant.created"],
        "B's audit log holds only B's events"
    );

    // A's things are unchanged.
    let me: Value = app
        .get_as("/api/v1/me", &a_member.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "agent");
    let a_keys: Value = app
        .get_as("/api/v1/api-keys", &a.access)
        .await
        .json()
        .await
        .expect("json");
    assert!(a_keys[0]["revoked_at"].is_null());
}
