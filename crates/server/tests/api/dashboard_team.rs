//! The Team and API keys pages over HTTP: inviting, accepting in another browser, roles,
//! removal, keys shown once and revoked, and what an agent is neither offered nor allowed.

use crate::helpers::web::Web;
use crate::helpers::{PASSWORD, TestApp, spawn_app, token_in};

async fn owner(app: &TestApp) -> Web<'_> {
    app.owner("ana@acme.test", "Acme").await;
    let web = Web::new(app);
    assert_eq!(web.sign_in("ana@acme.test", PASSWORD).await.status, 303);
    web
}

/// The id in the first link to `prefix…/{id}/…` on the page.
fn id_after(html: &str, prefix: &str) -> String {
    let i = html
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {html}"))
        + prefix.len();
    let rest = &html[i..];
    rest[..rest.find('/').expect("end")].to_owned()
}

#[tokio::test]
async fn an_invited_agent_joins_in_another_browser_and_is_offered_neither_team_nor_keys() {
    let app = spawn_app().await;
    let ana = owner(&app).await;
    let page = ana.get("/team").await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains("No invitation is waiting."),
        "{}",
        page.html
    );
    let page = ana
        .submit(
            "/team/invitations",
            &[("email", "ben@acme.test"), ("role", "agent")],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/team?done=invited"),
        "{}",
        page.html
    );
    let page = ana.get("/team?done=invited").await;
    assert!(page.html.contains("ben@acme.test"), "{}", page.html);
    let mail = app.last_mail_to("ben@acme.test").await;
    assert!(
        mail.body
            .contains("https://support.example/accept-invitation?token="),
        "{}",
        mail.body
    );
    let token = token_in(&mail.body).expect("token");

    let ben = Web::new(&app);
    let page = ben.get(&format!("/accept-invitation?token={token}")).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Join your team"));
    let page = ben
        .submit(
            "/accept-invitation",
            &[("token", &token), ("name", "Ben"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/overview"), "{}", page.html);
    let overview = ben.get("/overview").await;
    assert_eq!(overview.status, 200);
    // The agent's navigation has no API keys; the team page offers no management.
    assert!(
        !overview.html.contains("href=\"/api-keys\""),
        "{}",
        overview.html
    );
    assert!(overview.html.contains("href=\"/team\""));
    let team = ben.get("/team").await;
    assert!(team.html.contains("ana@acme.test") && team.html.contains("ben@acme.test"));
    assert!(
        !team.html.contains("Invite someone") && !team.html.contains("Remove…"),
        "{}",
        team.html
    );
    // Forced, everything is refused.
    assert_eq!(ben.get("/api-keys").await.status, 403);
    let page = ben
        .submit(
            "/team/invitations",
            &[("email", "eve@acme.test"), ("role", "owner")],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.html);
    let ana_id = id_after(&ana.get("/team").await.html, "/team/members/");
    let page = ben
        .submit(
            &format!("/team/members/{ana_id}/role"),
            &[("role", "agent")],
        )
        .await;
    assert!(page.status == 403 || page.status == 404, "{}", page.status);
    assert!(app.mails_to("eve@acme.test").is_empty());
}

#[tokio::test]
async fn an_owner_changes_a_role_withdraws_an_invitation_and_removes_a_member() {
    let app = spawn_app().await;
    let ana = owner(&app).await;
    let owner_member = TestApp::session_of(app.login("ana@acme.test", PASSWORD).await).await;
    let ben = app.member(&owner_member, "ben@acme.test", "agent").await;
    app.invite(&owner_member, "cy@acme.test", "admin").await;

    let page = ana.get("/team").await;
    let ben_id = id_after(&page.html, "/team/members/");
    assert_eq!(
        ben_id, ben.user_id,
        "only Ben is manageable: Ana is the viewer"
    );
    let page = ana
        .submit(
            &format!("/team/members/{ben_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/team?done=role"));
    let me: serde_json::Value = app
        .get_as("/api/v1/me", &ben.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "admin");

    let page = ana.get("/team").await;
    let invitation = id_after(&page.html, "/team/invitations/");
    let page = ana
        .submit(&format!("/team/invitations/{invitation}/withdraw"), &[])
        .await;
    assert_eq!(page.location.as_deref(), Some("/team?done=withdrawn"));
    assert!(!ana.get("/team").await.html.contains("cy@acme.test"));

    let confirm = ana.get(&format!("/team/members/{ben_id}/remove")).await;
    assert!(
        confirm.html.contains("Remove ben@acme.test?"),
        "{}",
        confirm.html
    );
    let page = ana
        .submit(&format!("/team/members/{ben_id}/remove"), &[])
        .await;
    assert_eq!(page.location.as_deref(), Some("/team?done=removed"));
    assert_eq!(app.get_as("/api/v1/me", &ben.access).await.status(), 401);
}

#[tokio::test]
async fn a_new_api_key_is_shown_once_works_and_is_revoked_after_a_confirmation() {
    let app = spawn_app().await;
    let ana = owner(&app).await;
    let page = ana.get("/api-keys").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("No key yet"));
    // Without a scope the form says so.
    let page = ana.submit("/api-keys", &[("name", "Shop backend")]).await;
    assert_eq!(page.status, 422, "{}", page.html);
    assert!(page.html.contains("value=\"Shop backend\""));

    let page = ana
        .submit(
            "/api-keys",
            &[
                ("name", "Shop backend"),
                ("scope", "chat"),
                ("scope", "knowledge:read"),
            ],
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.html);
    let i = page
        .html
        .find("<code class=\"code\" id=\"new-key\">")
        .expect("the key")
        + "<code class=\"code\" id=\"new-key\">".len();
    let key = page.html[i..i + page.html[i..].find('<').expect("end")].to_owned();
    assert!(key.starts_with("ck_"), "{key}");
    assert!(page.html.contains("data-copy=\"new-key\""));
    let r = app.get_as("/api/v1/tenant", &key).await;
    assert_eq!(r.status(), 200, "the key works");
    let listed = ana.get("/api-keys").await;
    assert!(!listed.html.contains(&key), "never shown again");
    assert!(
        listed.html.contains("chat, knowledge:read"),
        "{}",
        listed.html
    );
    assert!(listed.html.contains("never") || listed.html.contains("UTC"));

    let id = id_after(&listed.html, "/api-keys/");
    let confirm = ana.get(&format!("/api-keys/{id}/revoke")).await;
    assert!(
        confirm.html.contains("Revoke “Shop backend”?"),
        "{}",
        confirm.html
    );
    let page = ana.submit(&format!("/api-keys/{id}/revoke"), &[]).await;
    assert_eq!(page.location.as_deref(), Some("/api-keys?revoked=1"));
    assert_eq!(app.get_as("/api/v1/tenant", &key).await.status(), 401);
    assert!(ana.get("/api-keys").await.html.contains(">Revoked<"));
}

#[tokio::test]
async fn the_audit_log_filters_by_action_member_and_day_and_is_for_admins_only() {
    let app = spawn_app().await;
    let ana = owner(&app).await;
    let admin = TestApp::session_of(app.login("ana@acme.test", PASSWORD).await).await;
    let ben = app.member(&admin, "ben@acme.test", "agent").await;
    app.api_key(&admin, &["chat"]).await;

    let page = ana.get("/audit").await;
    assert_eq!(page.status, 200);
    for what in [
        "Workspace created",
        "Member invited",
        "Member joined",
        "API key created",
    ] {
        assert!(page.html.contains(what), "{what}: {}", page.html);
    }
    assert!(page.html.contains("ana@acme.test"));
    let page = ana.get("/audit?action=api_key.created").await;
    assert!(
        page.html.contains("<td>API key created<br>")
            && !page.html.contains("<td>Member invited<br>"),
        "{}",
        page.html
    );
    let page = ana.get(&format!("/audit?member={}", ben.user_id)).await;
    assert!(
        page.html.contains("<td>Member joined<br>")
            && !page.html.contains("<td>API key created<br>"),
        "{}",
        page.html
    );
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d");
    let page = ana.get(&format!("/audit?from={tomorrow}")).await;
    assert!(
        page.html.contains("No entry matches these filters."),
        "{}",
        page.html
    );

    let agent = Web::new(&app);
    agent.sign_in("ben@acme.test", PASSWORD).await;
    assert!(
        !agent
            .get("/overview")
            .await
            .html
            .contains("href=\"/audit\"")
    );
    assert_eq!(agent.get("/audit").await.status, 403);
}
