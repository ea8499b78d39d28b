//! The Settings page over HTTP: the company's name (changed by owners and admins, shown to
//! agents) and the sign-in address, changed once the code mailed to the new one is entered.

use crate::helpers::web::Web;
use crate::helpers::{PASSWORD, TestApp, code_in, spawn_app};

async fn signed_in<'a>(app: &'a TestApp, email: &str) -> Web<'a> {
    let web = Web::new(app);
    assert_eq!(web.sign_in(email, PASSWORD).await.status, 303);
    web
}

async fn company_name(app: &TestApp, member: &crate::helpers::Member) -> String {
    let r = app.get_as("/api/v1/tenant", &member.access).await;
    let v: serde_json::Value = r.json().await.expect("json");
    v["name"].as_str().expect("name").to_owned()
}

#[tokio::test]
async fn an_owner_renames_the_company_and_an_agent_only_reads_the_name() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    app.member(&owner, "ag@acme.test", "agent").await;
    let ana = signed_in(&app, "ana@acme.test").await;

    let page = ana.get("/settings").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("value=\"Acme\""), "{}", page.html);
    let page = ana.submit("/settings/company", &[("name", "")]).await;
    assert_eq!(page.status, 422);
    assert!(
        page.html.contains("id=\"company-name-error\""),
        "the error is next to the field: {}",
        page.html
    );
    assert!(page.html.contains("Company name: "), "{}", page.html);

    let page = ana
        .submit("/settings/company", &[("name", "Acme Support")])
        .await;
    assert_eq!(page.location.as_deref(), Some("/settings?done=company"));
    let page = ana.get("/settings?done=company").await;
    assert!(
        page.html.contains("The company name is saved."),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("value=\"Acme Support\""),
        "{}",
        page.html
    );
    let overview = ana.get("/overview").await;
    assert!(
        overview.html.contains("Acme Support"),
        "the header names the company"
    );

    let agent = signed_in(&app, "ag@acme.test").await;
    let page = agent.get("/settings").await;
    assert_eq!(page.status, 200);
    assert!(
        !page.html.contains("action=\"/settings/company\""),
        "an agent is not offered the form"
    );
    assert!(page.html.contains("<dd>Acme Support</dd>"), "{}", page.html);
    let page = agent
        .submit("/settings/company", &[("name", "Agent Co")])
        .await;
    assert_eq!(page.status, 403, "and is refused when forcing it");
    assert_eq!(company_name(&app, &owner).await, "Acme Support");
    // Without the page's token nothing changes.
    let page = ana
        .post_raw("/settings/company", &[("name", "Forged")], &[])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(company_name(&app, &owner).await, "Acme Support");
}

#[tokio::test]
async fn a_member_moves_their_sign_in_address_with_the_code_from_the_new_mailbox() {
    let app = spawn_app().await;
    app.owner("ana@acme.test", "Acme").await;
    let ana = signed_in(&app, "ana@acme.test").await;
    ana.get("/settings").await;

    let page = ana
        .submit(
            "/settings/email",
            &[
                ("new_email", "ana@new.test"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        page.html.contains("id=\"email-password-error\""),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("value=\"ana@new.test\""),
        "what was typed stays"
    );

    let page = ana
        .submit(
            "/settings/email",
            &[("new_email", "ana@new.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/settings?done=email-sent"));
    let page = ana.get("/settings?done=email-sent").await;
    assert!(
        page.html
            .contains("We sent a 6-digit code to <strong>ana@new.test</strong>"),
        "{}",
        page.html
    );
    let code = code_in(&app.nth_mail_about("ana@new.test", "code", 1).await.body).expect("code");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let page = ana
        .submit("/settings/email/confirm", &[("code", wrong)])
        .await;
    assert_eq!(page.status, 400);
    assert!(
        page.html.contains("id=\"email-code-error\""),
        "{}",
        page.html
    );

    let page = ana
        .submit("/settings/email/confirm", &[("code", &code)])
        .await;
    assert_eq!(page.location.as_deref(), Some("/settings?done=email"));
    let page = ana.get("/settings?done=email").await;
    assert_eq!(page.status, 200, "this browser stays signed in");
    assert!(
        page.html
            .contains("You sign in with <strong>ana@new.test</strong>"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("We sent a 6-digit code"));
    app.nth_mail_about("ana@acme.test", "sign-in address changed", 1)
        .await;

    let other = Web::new(&app);
    assert_eq!(
        other.sign_in("ana@acme.test", PASSWORD).await.status,
        401,
        "the old address signs in no one"
    );
    assert_eq!(other.sign_in("ana@new.test", PASSWORD).await.status, 303);

    // A change can be withdrawn from the page.
    other.get("/settings").await;
    other
        .submit(
            "/settings/email",
            &[("new_email", "ana@third.test"), ("password", PASSWORD)],
        )
        .await;
    let page = other.get("/settings").await;
    assert!(page.html.contains("ana@third.test"));
    let page = other.submit("/settings/email/cancel", &[]).await;
    assert_eq!(
        page.location.as_deref(),
        Some("/settings?done=email-cancelled")
    );
    let page = other.get("/settings").await;
    assert!(!page.html.contains("ana@third.test"), "{}", page.html);
}
