//! What every response shares: request ids, the error envelope, body rules, health and docs.

use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn health_and_readiness_answer_ok_and_name_the_database() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["database"], crate::helpers::backend());
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_sane_incoming_ones_are_kept() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    let id = r.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(id.len(), 36, "a fresh UUID: {id}");

    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "lb-7f3a.42")
        .send()
        .await
        .expect("request");
    assert_eq!(r.headers()["x-request-id"], "lb-7f3a.42");

    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id <script>")
        .send()
        .await
        .expect("request");
    assert_ne!(r.headers()["x-request-id"], "bad id <script>");
}

#[tokio::test]
async fn errors_share_one_envelope_with_the_request_id() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .header("x-request-id", "trace-1")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "route_not_found");
    assert_eq!(v["error"]["request_id"], "trace-1");
    assert!(v["error"]["message"].is_string());

    let r = app
        .client
        .put(app.url("/api/v1/auth/login"))
        .send()
        .await
        .expect("request");
    assert_eq!(error_code(r).await, (405, "method_not_allowed".into()));
}

#[tokio::test]
async fn bodies_that_are_not_json_or_do_not_fit_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .body("email=a")
        .send()
        .await
        .expect("request");
    assert_eq!(error_code(r).await, (415, "unsupported_media_type".into()));

    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("request");
    assert_eq!(error_code(r).await, (400, "invalid_json".into()));

    let r = app
        .post_json("/api/v1/auth/login", &json!({ "email": "a@b.co" }))
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "validation_failed");
    assert_eq!(v["error"]["field"], "password");

    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "email": 42, "password": "x" }),
        )
        .await;
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["field"], "email");

    let r = app.post_json("/api/v1/auth/signup", &json!({ "email": "a@b.co", "password": "long enough pw", "company_name": "x", "plan": "scale" })).await;
    assert_eq!(
        error_code(r).await,
        (422, "validation_failed".into()),
        "unknown fields are refused"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app_with_small_body().await;
    let big = "x".repeat(4096);
    let r = app
        .post_json(
            "/api/v1/auth/login",
            &json!({ "email": big, "password": "p" }),
        )
        .await;
    assert_eq!(error_code(r).await, (413, "payload_too_large".into()));
}

async fn spawn_app_with_small_body() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(|s| s.http.max_body_bytes = 1024).await
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(v["openapi"].as_str().expect("version").starts_with("3.1"));
    let paths = v["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/auth/signup", "post"),
        ("/api/v1/auth/verify-email", "post"),
        ("/api/v1/auth/resend-verification", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/invitations/accept", "post"),
        ("/api/v1/auth/admin/login", "post"),
        ("/api/v1/tenant", "get"),
        ("/api/v1/me", "get"),
        ("/api/v1/audit-events", "get"),
        ("/api/v1/members", "get"),
        ("/api/v1/members/{id}", "patch"),
        ("/api/v1/members/{id}", "delete"),
        ("/api/v1/invitations", "post"),
        ("/api/v1/invitations", "get"),
        ("/api/v1/invitations/{id}", "delete"),
        ("/api/v1/api-keys", "post"),
        ("/api/v1/api-keys", "get"),
        ("/api/v1/api-keys/{id}", "delete"),
        ("/api/v1/admin/tenants", "get"),
        ("/api/v1/admin/tenants/{id}", "get"),
        ("/api/v1/admin/tenants/{id}/suspend", "post"),
        ("/api/v1/admin/tenants/{id}/reactivate", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the spec"
        );
    }
    assert!(v["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn the_docs_page_is_self_contained() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/docs"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("text");
    assert!(html.contains("/api/v1/auth/signup"));
    assert!(html.contains("Sign up a tenant and its owner"));
    assert!(html.contains("id=\"schema-SessionView\""));
    for external in ["<script", "src=\"http", "href=\"http", "@import"] {
        assert!(
            !html.contains(external),
            "docs page loads something from outside: {external}"
        );
    }
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.http.cors_allowed_origins = vec!["https://dash.example".into()]
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://dash.example").await.expect("request");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    let other = preflight("https://evil.example").await.expect("request");
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn list_limits_outside_their_documented_range_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let owner = app.owner("owner@acme.example", "Acme").await;
    let doc = app
        .upload_one(
            &owner.access,
            "guide.md",
            b"# Returns\n\nOpened packets are fine to send back within 30 days.\n",
        )
        .await;
    for (path, what) in [
        ("/api/v1/audit-events?limit=0".to_owned(), "audit limit 0"),
        (
            "/api/v1/audit-events?limit=201".to_owned(),
            "audit limit 201",
        ),
        (
            "/api/v1/documents?limit=1000".to_owned(),
            "documents limit 1000",
        ),
        (
            format!("/api/v1/documents/{doc}/chunks?limit=501"),
            "chunks limit 501",
        ),
        (
            format!("/api/v1/documents/{doc}/chunks?limit=0"),
            "chunks limit 0",
        ),
    ] {
        let r = app.get_as(&path, &owner.access).await;
        assert_eq!(r.status(), 422, "{what}");
        let v: Value = r.json().await.expect("json");
        assert_eq!(
            (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
            (Some("validation_failed"), Some("limit")),
            "{what}: {v}"
        );
    }
    for path in [
        "/api/v1/audit-events?limit=1".to_owned(),
        "/api/v1/audit-events?limit=200".to_owned(),
        format!("/api/v1/documents/{doc}/chunks?limit=500"),
    ] {
        assert_eq!(
            app.get_as(&path, &owner.access).await.status(),
            200,
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_declares_the_shared_statuses_and_the_enforced_constraints() {
    let spec = spawn_app().await.openapi().await;
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let declared = |status: &str| op["responses"].get(status).is_some();
            let mut expect = vec!["500", "503"];
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                expect.extend(["401", "403"]);
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                expect.extend(["400", "413", "415", "422"]);
            }
            if path.contains('{') {
                expect.push("404");
            }
            if path == "/api/v1/chat" || path.starts_with("/api/v1/auth/") {
                expect.push("429");
            }
            for status in expect {
                if !declared(status) {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undeclared statuses: {missing:?}");

    let schema = |name: &str| spec["components"]["schemas"][name].clone();
    let search = schema("SearchRequest");
    assert_eq!(
        (
            &search["properties"]["top_k"]["minimum"],
            &search["properties"]["top_k"]["maximum"]
        ),
        (&json!(1), &json!(50))
    );
    assert_eq!(search["properties"]["query"]["maxLength"], 2000);
    let signup = schema("SignupRequest");
    assert_eq!(signup["properties"]["password"]["minLength"], 12);
    assert_eq!(signup["properties"]["company_name"]["maxLength"], 200);
    assert!(
        schema("VerifyEmailRequest")["properties"]["code"]["pattern"]
            .as_str()
            .is_some_and(|p| p.contains("[0-9]{6}"))
    );
    let list = &spec["paths"]["/api/v1/audit-events"]["get"]["parameters"];
    let limit = list
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit");
    assert_eq!(
        (&limit["schema"]["minimum"], &limit["schema"]["maximum"]),
        (&json!(1), &json!(200))
    );
}

/// The error table of `docs/API.md` ("Errors": `| status | code | meaning |`) and the codes
/// the server can answer with are the same set (bar the timeout's bare 503).
#[test]
fn every_error_code_is_documented_and_every_documented_code_exists() {
    use cortexlayer_server::http::error::ErrorCode;
    let api = include_str!("../../../../docs/API.md");
    let section = api
        .split("\n## Errors\n")
        .nth(1)
        .expect("docs/API.md has an Errors section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let documented: std::collections::BTreeSet<&str> = section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 3 && cells[1].parse::<u16>().is_ok()).then(|| cells[2].trim_matches('`'))
        })
        // A timeout answers with the status alone.
        .filter(|code| *code != "—")
        .collect();
    let answered: std::collections::BTreeSet<&str> =
        ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        answered.difference(&documented).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "codes the server answers with that docs/API.md does not list"
    );
    assert_eq!(
        documented.difference(&answered).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "codes docs/API.md lists that the server never answers with"
    );
}
