//! The operator console over HTTP: signing in, the tenants with search, filters and counts,
//! changing a plan, suspending (the tenant's members see it) and reactivating, and who may not.

use crate::helpers::web::Web;
use crate::helpers::{PASSWORD, TestApp, spawn_app};

async fn operator(app: &TestApp) -> Web<'_> {
    cortexlayer_server::tenancy::operators::create_admin(
        &app.state,
        "ops@cortex.test",
        PASSWORD.into(),
    )
    .await
    .expect("admin");
    let web = Web::new(app);
    let page = web.get("/operator/sign-in").await;
    assert_eq!(page.status, 200);
    let page = web
        .submit(
            "/operator/sign-in",
            &[("email", "ops@cortex.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/operator"), "{}", page.html);
    let cookie = page
        .cookie("__Secure-cl_operator")
        .expect("operator cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/operator",
        "Max-Age=900",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    web
}

#[tokio::test]
async fn the_operator_finds_a_tenant_changes_its_plan_suspends_and_reactivates_it() {
    let app = spawn_app().await;
    let acme = app.owner("ana@acme.test", "Acme Outdoor").await;
    app.owner("bo@beta.test", "Beta_Shop").await;
    app.upload_one(
        &acme.access,
        "guide.md",
        crate::helpers::knowledge::GUIDE.as_bytes(),
    )
    .await;
    let member = Web::new(&app);
    member.sign_in("ana@acme.test", PASSWORD).await;

    let ops = operator(&app).await;
    let page = ops.get("/operator").await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains("Acme Outdoor") && page.html.contains("Beta_Shop"),
        "{}",
        page.html
    );
    let found = ops.get("/operator?q=acme").await;
    assert!(
        found.html.contains("Acme Outdoor") && !found.html.contains("Beta_Shop"),
        "{}",
        found.html
    );
    assert!(
        found.html.contains("<td>1</td>"),
        "one document: {}",
        found.html
    );
    let growth = ops.get("/operator?plan=growth").await;
    assert!(
        growth.html.contains("No tenant matches."),
        "{}",
        growth.html
    );

    let id = &acme.tenant_id;
    let page = ops.get(&format!("/operator/tenants/{id}")).await;
    assert!(
        page.html.contains("<dt>Documents</dt><dd>1</dd>"),
        "{}",
        page.html
    );
    let page = ops
        .submit(
            &format!("/operator/tenants/{id}/plan"),
            &[("plan", "growth")],
        )
        .await;
    assert_eq!(
        page.location,
        Some(format!("/operator/tenants/{id}?done=plan"))
    );
    assert!(
        ops.get("/operator?plan=growth")
            .await
            .html
            .contains("Acme Outdoor")
    );

    let confirm = ops.get(&format!("/operator/tenants/{id}/suspend")).await;
    assert!(
        confirm.html.contains("Suspend Acme Outdoor?"),
        "{}",
        confirm.html
    );
    let page = ops
        .submit(&format!("/operator/tenants/{id}/suspend"), &[])
        .await;
    assert_eq!(
        page.location,
        Some(format!("/operator/tenants/{id}?done=suspended"))
    );
    let seen = member.get("/overview").await;
    assert_eq!(seen.status, 403);
    assert!(seen.html.contains("This workspace is suspended"));
    let page = ops.get(&format!("/operator/tenants/{id}")).await;
    ops.submit(&format!("/operator/tenants/{id}/reactivate"), &[])
        .await;
    assert!(page.html.contains("Reactivate"));
    assert_eq!(member.get("/overview").await.status, 200);

    // Both changes are in the tenant's own audit log, naming the operator.
    let audit = member.get("/audit").await;
    assert!(
        audit.html.contains("<td>Workspace suspended<br>") && audit.html.contains("The operator"),
        "{}",
        audit.html
    );
}

#[tokio::test]
async fn a_member_is_no_operator_and_an_operator_form_needs_its_token() {
    let app = spawn_app().await;
    let acme = app.owner("ana@acme.test", "Acme").await;
    let member = Web::new(&app);
    member.sign_in("ana@acme.test", PASSWORD).await;
    let page = member.get("/operator").await;
    assert_eq!(page.location.as_deref(), Some("/operator/sign-in"));
    member.get("/overview").await;
    let page = member
        .submit(
            "/operator/sign-in",
            &[("email", "ana@acme.test"), ("password", PASSWORD)],
        )
        .await;
    // The member's session token is no operator form's token.
    assert_eq!(page.status, 403, "{}", page.html);
    member.get("/operator/sign-in").await;
    let page = member
        .submit(
            "/operator/sign-in",
            &[("email", "ana@acme.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        page.status, 401,
        "a member's password is no operator's: {}",
        page.html
    );

    let ops = operator(&app).await;
    let page = ops
        .post_raw(
            &format!("/operator/tenants/{}/suspend", acme.tenant_id),
            &[("csrf", "forged")],
            &[],
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(member.get("/overview").await.status, 200, "not suspended");
}
