//! Signup, email verification, login, refresh rotation and logout.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_business_signs_up_verifies_and_owns_a_trial_tenant_on_the_default_plan() {
    let app = spawn_app().await;
    let r = app.signup("Founder@Acme.example", "Acme Ltd").await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], "accepted");

    let mail = app.last_mail_to("founder@acme.example").await;
    assert!(mail.subject.contains("verification code"));
    let code = app.code_for("founder@acme.example").await;
    assert!(code.chars().all(|c| c.is_ascii_digit()) && code.len() == 6);

    let r = app.verify("founder@acme.example", &code).await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let owner = TestApp::session_of(r).await;
    for attr in [
        "cortex_refresh=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Max-Age=604800",
    ] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }

    let t: Value = app
        .get_as("/api/v1/tenant", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (t["name"].as_str(), t["plan"].as_str(), t["status"].as_str()),
        (Some("Acme Ltd"), Some("starter"), Some("trial"))
    );
    let me: Value = app
        .get_as("/api/v1/me", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "owner");
    assert_eq!(me["email"], "founder@acme.example");
    assert!(me["email_verified_at"].is_string());
    assert!(me.get("password_hash").is_none());
    assert!(
        app.audit_actions(&owner)
            .await
            .contains(&"tenant.created".to_owned())
    );
}

#[tokio::test]
async fn weak_passwords_and_bad_emails_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({ "email": "a@b.example", "password": "short-pw", "company_name": "X" }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (Some("validation_failed"), Some("password"))
    );
    let r = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({ "email": "not-an-email", "password": PASSWORD, "company_name": "X" }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["field"], "email");
    let r = app
        .post_json(
            "/api/v1/auth/signup",
            &json!({ "email": "a@b.example", "password": PASSWORD, "company_name": "  " }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["field"], "company_name");
}

#[tokio::test]
async fn signing_up_with_a_taken_email_looks_the_same_and_mails_a_notice() {
    let app = spawn_app().await;
    let owner = app.owner("taken@acme.example", "Acme").await;
    let first: Value = app
        .signup("fresh@acme.example", "Other")
        .await
        .json()
        .await
        .expect("json");
    let again = app.signup("taken@acme.example", "Impostor").await;
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.expect("json");
    assert_eq!(
        first, again,
        "same answer whether or not the email is taken"
    );
    let notice = app.last_mail_to("taken@acme.example").await;
    assert!(
        notice.subject.contains("already have"),
        "{}",
        notice.subject
    );
    assert!(!notice.body.contains("code is"));
    let t: Value = app
        .get_as("/api/v1/tenant", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(t["name"], "Acme", "the existing tenant is untouched");
}

#[tokio::test]
async fn three_wrong_codes_use_up_the_code_and_a_resend_gives_a_working_one() {
    let app = spawn_app().await;
    app.signup("tries@acme.example", "Acme").await;
    let code = app.code_for("tries@acme.example").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        assert_eq!(
            error_code(app.verify("tries@acme.example", wrong).await).await,
            (400, "invalid_code".into())
        );
    }
    assert_eq!(
        error_code(app.verify("tries@acme.example", &code).await).await,
        (400, "invalid_code".into()),
        "the right code no longer works after three failures"
    );
    let r = app
        .post_json(
            "/api/v1/auth/resend-verification",
            &json!({ "email": "tries@acme.example" }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let fresh = app.code_for("tries@acme.example").await;
    assert_eq!(app.verify("tries@acme.example", &fresh).await.status(), 200);
    assert_eq!(
        error_code(app.verify("tries@acme.example", &fresh).await).await,
        (400, "invalid_code".into()),
        "codes work once"
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app_with(|s| s.auth.verification_code_ttl_secs = 1).await;
    app.signup("late@acme.example", "Acme").await;
    let code = app.code_for("late@acme.example").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        error_code(app.verify("late@acme.example", &code).await).await,
        (400, "invalid_code".into())
    );
}

#[tokio::test]
async fn verification_and_resend_do_not_reveal_which_emails_exist() {
    let app = spawn_app().await;
    app.signup("known@acme.example", "Acme").await;
    let known = app.verify("known@acme.example", "123456").await;
    let unknown = app.verify("nobody@acme.example", "123456").await;
    let (ks, us) = (known.status(), unknown.status());
    let (kv, uv): (Value, Value) = (
        known.json().await.expect("json"),
        unknown.json().await.expect("json"),
    );
    assert_eq!(
        (ks, &kv["error"]["code"], &kv["error"]["message"]),
        (us, &uv["error"]["code"], &uv["error"]["message"])
    );

    let a = app
        .post_json(
            "/api/v1/auth/resend-verification",
            &json!({ "email": "known@acme.example" }),
        )
        .await;
    let b = app
        .post_json(
            "/api/v1/auth/resend-verification",
            &json!({ "email": "nobody@acme.example" }),
        )
        .await;
    assert_eq!(
        (a.status(), a.text().await.expect("text")),
        (b.status(), b.text().await.expect("text"))
    );
    assert!(app.mails_to("nobody@acme.example").is_empty());
}

#[tokio::test]
async fn login_needs_a_verified_email() {
    let app = spawn_app().await;
    app.signup("unverified@acme.example", "Acme").await;
    assert_eq!(
        error_code(app.login("unverified@acme.example", PASSWORD).await).await,
        (403, "email_not_verified".into())
    );
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_get_the_same_answer() {
    let app = spawn_app().await;
    app.owner("real@acme.example", "Acme").await;
    let wrong = app.login("real@acme.example", "a wrong password!").await;
    let unknown = app.login("ghost@acme.example", "a wrong password!").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    let (a, b): (Value, Value) = (
        wrong.json().await.expect("json"),
        unknown.json().await.expect("json"),
    );
    assert_eq!(a["error"]["code"], "invalid_credentials");
    assert_eq!(
        (&a["error"]["code"], &a["error"]["message"]),
        (&b["error"]["code"], &b["error"]["message"])
    );

    let r = app.login("REAL@acme.example", PASSWORD).await;
    assert_eq!(r.status(), 200, "emails match case-insensitively");
}

#[tokio::test]
async fn logins_are_rate_limited_per_account_with_retry_after() {
    let app = spawn_app_with(|s| s.auth.attempts_per_account_per_15_minutes = 3).await;
    app.owner("limited@acme.example", "Acme").await;
    for _ in 0..3 {
        assert_eq!(
            app.login("limited@acme.example", "wrong password!!")
                .await
                .status(),
            401
        );
    }
    let r = app.login("limited@acme.example", PASSWORD).await;
    assert_eq!(r.status(), 429, "even the right password waits");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=900).contains(&retry));
    assert_eq!(error_code(r).await.1, "rate_limited");
    assert_eq!(
        app.login("other@acme.example", "whatever pass")
            .await
            .status(),
        401,
        "other accounts are not limited"
    );
}

#[tokio::test]
async fn logins_are_rate_limited_per_client_address() {
    let app = spawn_app_with(|s| s.auth.attempts_per_ip_per_minute = 4).await;
    for i in 0..4 {
        assert_eq!(
            app.login(&format!("user{i}@acme.example"), "wrong password!!")
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        error_code(app.login("user9@acme.example", "wrong password!!").await).await,
        (429, "rate_limited".into())
    );
}

#[tokio::test]
async fn a_burst_of_failed_logins_is_written_to_the_audit_log_once() {
    let app = spawn_app_with(|s| s.auth.failure_burst_threshold = 3).await;
    let owner = app.owner("burst@acme.example", "Acme").await;
    for _ in 0..5 {
        app.login("burst@acme.example", "wrong password!!").await;
    }
    let bursts = app
        .audit_actions(&owner)
        .await
        .into_iter()
        .filter(|a| a == "auth.login_failure_burst")
        .count();
    assert_eq!(bursts, 1);
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let owner = app.owner("rotate@acme.example", "Acme").await;
    let r = app.refresh(&owner.refresh).await;
    assert_eq!(r.status(), 200);
    let second = TestApp::session_of(r).await;
    assert_ne!(second.refresh, owner.refresh);
    assert_eq!(app.get_as("/api/v1/me", &second.access).await.status(), 200);

    assert_eq!(
        error_code(app.refresh(&owner.refresh).await).await,
        (401, "refresh_token_reused".into())
    );
    assert_eq!(
        error_code(app.refresh(&second.refresh).await).await,
        (401, "invalid_refresh_token".into()),
        "the legitimate successor is revoked too"
    );
    assert!(
        app.audit_actions(&owner)
            .await
            .contains(&"auth.refresh_token_reused".to_owned())
    );

    // Another login's family is untouched.
    let other = TestApp::session_of(app.login("rotate@acme.example", PASSWORD).await).await;
    assert_eq!(app.refresh(&other.refresh).await.status(), 200);
}

#[tokio::test]
async fn the_refresh_cookie_works_without_a_body() {
    let app = spawn_app().await;
    let owner = app.owner("cookie@acme.example", "Acme").await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("cortex_refresh={}", owner.refresh))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .send()
        .await
        .expect("request");
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (Some("validation_failed"), Some("refresh_token"))
    );
    assert_eq!(
        error_code(app.refresh("not-a-token").await).await,
        (401, "invalid_refresh_token".into())
    );
}

#[tokio::test]
async fn logout_revokes_the_refresh_token_and_clears_the_cookie() {
    let app = spawn_app().await;
    let owner = app.owner("bye@acme.example", "Acme").await;
    let r = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({ "refresh_token": owner.refresh }),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    assert_eq!(
        error_code(app.refresh(&owner.refresh).await).await,
        (401, "invalid_refresh_token".into())
    );
}

const SQUATTER_PASSWORD: &str = "the squatter's own password";
const VICTIM_PASSWORD: &str = "the rightful owner's password";

#[tokio::test]
async fn a_signup_made_first_by_someone_else_never_becomes_the_mailbox_owners_account() {
    let app = spawn_app().await;
    let victim = "victim@shop.example";
    // X signs the victim's address up first, with X's password and company.
    assert_eq!(
        app.signup_with(victim, "Squatter Co", SQUATTER_PASSWORD)
            .await
            .status(),
        202
    );
    // The victim signs up (202), then asks for a new code and verifies with it.
    assert_eq!(
        app.signup_with(victim, "Victim Shop", VICTIM_PASSWORD)
            .await
            .status(),
        202
    );
    let r = app
        .post_json(
            "/api/v1/auth/resend-verification",
            &json!({ "email": victim }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let code = app.code_for(victim).await;
    let r = app.verify_with(victim, &code, VICTIM_PASSWORD).await;
    assert_eq!(r.status(), 200);
    let owner = TestApp::session_of(r).await;

    let t: Value = app
        .get_as("/api/v1/tenant", &owner.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        t["name"], "Victim Shop",
        "nothing the squatter chose survives"
    );
    assert_eq!(app.login(victim, VICTIM_PASSWORD).await.status(), 200);
    assert_eq!(
        error_code(app.login(victim, SQUATTER_PASSWORD).await).await,
        (401, "invalid_credentials".into())
    );
}

#[tokio::test]
async fn a_code_mailed_for_someone_elses_signup_does_not_verify_it_without_its_password() {
    let app = spawn_app().await;
    let victim = "victim2@shop.example";
    app.signup_with(victim, "Victim Shop", VICTIM_PASSWORD)
        .await;
    let victims_code = app.code_for(victim).await;
    // X signs up again after the victim: the victim's code stops working, and the code the
    // victim now receives belongs to X's signup, which the victim's password does not open.
    app.signup_with(victim, "Squatter Co", SQUATTER_PASSWORD)
        .await;
    let squatters_code = app.code_for(victim).await;
    assert_eq!(
        error_code(
            app.verify_with(victim, &victims_code, VICTIM_PASSWORD)
                .await
        )
        .await,
        (400, "invalid_code".into()),
        "a replaced signup's code no longer works"
    );
    assert_eq!(
        error_code(
            app.verify_with(victim, &squatters_code, VICTIM_PASSWORD)
                .await
        )
        .await,
        (400, "invalid_code".into()),
        "the squatter's signup needs the squatter's password"
    );
    assert_eq!(
        error_code(app.login(victim, SQUATTER_PASSWORD).await).await,
        (403, "email_not_verified".into())
    );
    // The victim signs up once more and verifies: the account is the victim's alone.
    app.signup_with(victim, "Victim Shop", VICTIM_PASSWORD)
        .await;
    let code = app.code_for(victim).await;
    assert_eq!(
        app.verify_with(victim, &code, VICTIM_PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        error_code(app.login(victim, SQUATTER_PASSWORD).await).await,
        (401, "invalid_credentials".into())
    );
}

#[tokio::test]
async fn an_invitation_is_accepted_for_an_address_that_only_has_an_unverified_signup() {
    let app = spawn_app().await;
    let owner = app.owner("boss@shop.example", "Shop").await;
    let invitee = "newhire@shop.example";
    app.signup_with(invitee, "Squatter Co", SQUATTER_PASSWORD)
        .await;
    let squatters_code = app.code_for(invitee).await;

    let token = app.invite(&owner, invitee, "agent").await;
    let r = app.accept(&token).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    assert_eq!(app.login(invitee, PASSWORD).await.status(), 200);
    assert_eq!(
        error_code(app.login(invitee, SQUATTER_PASSWORD).await).await,
        (401, "invalid_credentials".into())
    );
    assert_eq!(
        error_code(
            app.verify_with(invitee, &squatters_code, SQUATTER_PASSWORD)
                .await
        )
        .await,
        (400, "invalid_code".into()),
        "the pending signup went with the invitation"
    );
}
