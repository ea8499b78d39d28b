//! Forged, expired, tampered and misused access tokens are all refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::Utc;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{JWT_SECRET, error_code, spawn_app};

fn claims(sub: &str, tid: &str, role: &str, iat: i64, exp: i64) -> Value {
    json!({ "sub": sub, "tid": tid, "role": role, "iat": iat, "exp": exp, "iss": "cortexlayer", "aud": "cortexlayer-api" })
}

fn sign_hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// A token with an arbitrary header, HMAC-SHA256-signed with `secret` (what an attacker does
/// to try algorithm confusion).
fn sign_with_header(header: &Value, claims: &Value, secret: &str) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(input.as_bytes());
    format!("{input}.{}", B64.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn a_valid_token_works_as_the_baseline() {
    let app = spawn_app().await;
    let owner = app.owner("base@acme.example", "Acme").await;
    let now = Utc::now().timestamp();
    let token = sign_hs256(
        &claims(&owner.user_id, &owner.tenant_id, "owner", now, now + 60),
        JWT_SECRET,
    );
    assert_eq!(app.get_as("/api/v1/me", &token).await.status(), 200);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = spawn_app().await;
    let owner = app.owner("old@acme.example", "Acme").await;
    let now = Utc::now().timestamp();
    let token = sign_hs256(
        &claims(
            &owner.user_id,
            &owner.tenant_id,
            "owner",
            now - 1000,
            now - 100,
        ),
        JWT_SECRET,
    );
    assert_eq!(
        error_code(app.get_as("/api/v1/me", &token).await).await,
        (401, "unauthenticated".into())
    );
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    let app = spawn_app().await;
    let owner = app.owner("tamper@acme.example", "Acme").await;
    let parts: Vec<&str> = owner.access.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&B64.decode(parts[1]).expect("b64")).expect("json");
    payload["role"] = json!("owner");
    payload["exp"] = json!(Utc::now().timestamp() + 999_999);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(payload.to_string()),
        parts[2]
    );
    assert_eq!(
        error_code(app.get_as("/api/v1/me", &forged).await).await,
        (401, "unauthenticated".into())
    );

    let other_secret = sign_hs256(&payload, "some-other-secret-0123456789abcdef0123");
    assert_eq!(app.get_as("/api/v1/me", &other_secret).await.status(), 401);
    assert_eq!(app.get_as("/api/v1/me", "garbage").await.status(), 401);
    assert_eq!(
        app.client
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .expect("request")
            .status(),
        401
    );
}

#[tokio::test]
async fn alg_none_tokens_are_refused() {
    let app = spawn_app().await;
    let owner = app.owner("none@acme.example", "Acme").await;
    let now = Utc::now().timestamp();
    let c = claims(&owner.user_id, &owner.tenant_id, "owner", now, now + 600);
    for alg in ["none", "None", "NONE"] {
        let unsigned = format!(
            "{}.{}.",
            B64.encode(json!({ "alg": alg, "typ": "JWT" }).to_string()),
            B64.encode(c.to_string())
        );
        assert_eq!(
            app.get_as("/api/v1/me", &unsigned).await.status(),
            401,
            "alg {alg}"
        );
    }
}

#[tokio::test]
async fn algorithm_confusion_is_refused() {
    let app = spawn_app().await;
    let owner = app.owner("confuse@acme.example", "Acme").await;
    let now = Utc::now().timestamp();
    let c = claims(&owner.user_id, &owner.tenant_id, "owner", now, now + 600);
    // HMAC-signed with the real secret but labelled as an RSA or ECDSA token.
    for alg in ["RS256", "ES256", "PS256"] {
        let token = sign_with_header(&json!({ "alg": alg, "typ": "JWT" }), &c, JWT_SECRET);
        assert_eq!(
            app.get_as("/api/v1/me", &token).await.status(),
            401,
            "alg {alg}"
        );
    }
    // Another HMAC variant with the right secret is still not what this server issues.
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &c,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("sign");
    assert_eq!(app.get_as("/api/v1/me", &hs512).await.status(), 401);
}

#[tokio::test]
async fn a_token_naming_another_tenant_is_refused() {
    let app = spawn_app().await;
    let a = app.owner("a@tenant-a.example", "A").await;
    let b = app.owner("b@tenant-b.example", "B").await;
    let now = Utc::now().timestamp();
    // A's user id with B's tenant id, even correctly signed, matches no member.
    let token = sign_hs256(
        &claims(&a.user_id, &b.tenant_id, "owner", now, now + 600),
        JWT_SECRET,
    );
    assert_eq!(
        error_code(app.get_as("/api/v1/members", &token).await).await,
        (401, "unauthenticated".into())
    );
    let wrong_audience = sign_hs256(
        &json!({ "sub": a.user_id, "tid": a.tenant_id, "role": "owner", "iat": now, "exp": now + 600, "iss": "cortexlayer", "aud": "someone-else" }),
        JWT_SECRET,
    );
    assert_eq!(
        app.get_as("/api/v1/me", &wrong_audience).await.status(),
        401
    );
}

#[tokio::test]
async fn the_role_comes_from_the_database_not_the_token() {
    let app = spawn_app().await;
    let owner = app.owner("boss@acme.example", "Acme").await;
    let agent = app.member(&owner, "agent@acme.example", "agent").await;
    let now = Utc::now().timestamp();
    let inflated = sign_hs256(
        &claims(&agent.user_id, &agent.tenant_id, "owner", now, now + 600),
        JWT_SECRET,
    );
    let r = app
        .post_as(
            "/api/v1/invitations",
            &inflated,
            &json!({ "email": "x@acme.example", "role": "agent" }),
        )
        .await;
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
}
