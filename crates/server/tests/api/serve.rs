//! The binary as a user starts it: `cortexlayer serve` prints where it listens, and in
//! development without SMTP the verification code appears in the log (and the email address
//! does not).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::PASSWORD;
use crate::helpers::serve::{Server, start_on};

async fn start(extra_env: &[(&str, &str)]) -> Server {
    start_on(&crate::helpers::test_database_url().await, extra_env)
}

async fn code_from_log(log: &Arc<Mutex<String>>) -> String {
    for _ in 0..100 {
        if let Some(code) = crate::helpers::code_in(&log.lock().expect("lock")) {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no code in the log: {}", log.lock().expect("lock"));
}

#[tokio::test]
async fn in_development_the_verification_code_is_in_the_log_and_the_email_is_not() {
    let server = start(&[]).await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/v1/auth/signup", server.base))
        .json(&json!({ "email": "dev@acme.example", "password": PASSWORD, "company_name": "Acme" }))
        .send()
        .await
        .expect("signup");
    assert_eq!(r.status(), 202);
    let code = code_from_log(&server.log).await;
    let r = client
        .post(format!("{}/api/v1/auth/verify-email", server.base))
        .json(&json!({ "email": "dev@acme.example", "code": code, "password": PASSWORD }))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status(), 200);
    let log = server.log.lock().expect("lock").clone();
    assert!(
        !log.contains("dev@acme.example"),
        "the log holds an email address:\n{log}"
    );
    assert!(!log.contains(PASSWORD));
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let server = start(&[("LOG_FORMAT", "json")]).await;
    let r = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "json-log-check")
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
    let mut found = false;
    for _ in 0..100 {
        found = server.log.lock().expect("lock").contains("json-log-check");
        if found {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(found, "the request id is logged");
    let log = server.log.lock().expect("lock").clone();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
    }
    let response_line = log
        .lines()
        .find(|l| l.contains("json-log-check"))
        .expect("line");
    let v: Value = serde_json::from_str(response_line).expect("json");
    assert_eq!(v["span"]["http.route"], "/healthz", "{response_line}");
}

#[tokio::test]
async fn a_request_in_a_tenant_logs_the_tenant_id_on_its_lines() {
    let server = start(&[("LOG_FORMAT", "json")]).await;
    let client = reqwest::Client::new();
    client
        .post(format!("{}/api/v1/auth/signup", server.base))
        .json(
            &json!({ "email": "span@acme.example", "password": PASSWORD, "company_name": "Acme" }),
        )
        .send()
        .await
        .expect("signup");
    let code = code_from_log(&server.log).await;
    let session: Value = client
        .post(format!("{}/api/v1/auth/verify-email", server.base))
        .json(&json!({ "email": "span@acme.example", "code": code, "password": PASSWORD }))
        .send()
        .await
        .expect("verify")
        .json()
        .await
        .expect("json");
    let token = session["access_token"].as_str().expect("token");
    let tenant: Value = client
        .get(format!("{}/api/v1/tenant", server.base))
        .bearer_auth(token)
        .header("x-request-id", "tenant-span-check")
        .send()
        .await
        .expect("tenant")
        .json()
        .await
        .expect("json");
    let tenant_id = tenant["id"].as_str().expect("tenant id").to_owned();
    let mut line = None;
    for _ in 0..100 {
        line = server
            .log
            .lock()
            .expect("lock")
            .lines()
            .find(|l| l.contains("tenant-span-check") && l.contains("\"response\""))
            .map(str::to_owned);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = line.expect("the response is logged");
    let v: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(v["span"]["tenant.id"], tenant_id.as_str(), "{line}");
}

#[tokio::test]
async fn proxies_in_the_environment_do_not_carry_tenant_url_fetches() {
    let (site, hits) = crate::helpers::knowledge::spawn_site().await;
    let (proxy, proxied) = crate::helpers::spawn_recording_proxy().await;
    let server = start(&[
        ("CORTEX_FETCH_ALLOW_HOSTS", site.as_str()),
        ("HTTP_PROXY", proxy.as_str()),
        ("http_proxy", proxy.as_str()),
        ("HTTPS_PROXY", proxy.as_str()),
        ("ALL_PROXY", proxy.as_str()),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ])
    .await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    client
        .post(format!("{}/api/v1/auth/signup", server.base))
        .json(
            &json!({ "email": "proxy@acme.example", "password": PASSWORD, "company_name": "Acme" }),
        )
        .send()
        .await
        .expect("signup");
    let code = code_from_log(&server.log).await;
    let session: Value = client
        .post(format!("{}/api/v1/auth/verify-email", server.base))
        .json(&json!({ "email": "proxy@acme.example", "code": code, "password": PASSWORD }))
        .send()
        .await
        .expect("verify")
        .json()
        .await
        .expect("json");
    let token = session["access_token"].as_str().expect("token");
    let r = client
        .post(format!("{}/api/v1/documents/url", server.base))
        .bearer_auth(token)
        .json(&json!({ "url": format!("http://{site}/guide") }))
        .send()
        .await
        .expect("add url");
    assert_eq!(r.status(), 202);

    let mut fetched = false;
    for _ in 0..300 {
        fetched = hits.lock().expect("lock").contains(&"/guide".to_owned());
        if fetched {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fetched,
        "the page was fetched straight from the site; the proxy saw {:?}",
        proxied.lock().expect("lock")
    );
    assert!(
        proxied.lock().expect("lock").is_empty(),
        "nothing went through the environment's proxy"
    );
}
