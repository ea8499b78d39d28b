//! Connecting Meta assets through Meta's sign-in: the dialog's address and the browser cookie,
//! the callback (state single use, bound to the browser), the code exchange and asset listing
//! against a Graph API stand-in, choosing assets, webhook subscriptions.

use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code};

const APP_ID: &str = "1234567890123456";
const APP_SECRET: &str = "test-app-secret";

type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A stand-in for the Graph API's sign-in endpoints, checking what Meta checks: the code
/// exchange (`client_id`, `client_secret`, `redirect_uri`, `code`), the long-lived exchange,
/// `me/accounts` with the user token, `subscribed_apps` with the page's token; answers with
/// the documented shapes (errors as `{"error": {…}}`).
async fn spawn_graph_oauth(redirect_uri: String) -> (String, Seen) {
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};
    let seen: Seen = Default::default();
    type Shared = (Seen, String);
    fn auth(headers: &HeaderMap) -> String {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }
    fn oauth_error(message: &str) -> (StatusCode, axum::Json<Value>) {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({ "error": { "message": message, "type": "OAuthException", "code": 100 } }),
            ),
        )
    }
    async fn access_token(
        State((seen, redirect)): State<Shared>,
        Path(version): Path<String>,
        RawQuery(q): RawQuery,
    ) -> (StatusCode, axum::Json<Value>) {
        let q = q.unwrap_or_default();
        seen.lock().expect("lock").push((
            format!("/{version}/oauth/access_token"),
            String::new(),
            q.clone(),
        ));
        let p: std::collections::HashMap<String, String> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        if p.get("client_id").map(String::as_str) != Some(APP_ID)
            || p.get("client_secret").map(String::as_str) != Some(APP_SECRET)
        {
            return oauth_error("Error validating client secret.");
        }
        if p.get("grant_type").map(String::as_str) == Some("fb_exchange_token") {
            return match p.get("fb_exchange_token").map(String::as_str) {
                Some("short-user-token") => (
                    StatusCode::OK,
                    axum::Json(
                        json!({ "access_token": "EAAG-long-user-token-0123456789", "token_type": "bearer", "expires_in": 5183944 }),
                    ),
                ),
                _ => oauth_error("Invalid OAuth access token."),
            };
        }
        if p.get("redirect_uri") != Some(&redirect) {
            return oauth_error(
                "Can't load URL: redirect_uri is not identical to the one used in the OAuth dialog request",
            );
        }
        match p.get("code").map(String::as_str) {
            Some("good-code") => (
                StatusCode::OK,
                axum::Json(
                    json!({ "access_token": "short-user-token", "token_type": "bearer", "expires_in": 5183944 }),
                ),
            ),
            _ => oauth_error("This authorization code has been used."),
        }
    }
    async fn accounts(
        State((seen, _)): State<Shared>,
        Path(version): Path<String>,
        headers: HeaderMap,
        RawQuery(q): RawQuery,
    ) -> (StatusCode, axum::Json<Value>) {
        seen.lock().expect("lock").push((
            format!("/{version}/me/accounts"),
            auth(&headers),
            q.unwrap_or_default(),
        ));
        if auth(&headers) != "Bearer EAAG-long-user-token-0123456789" {
            return oauth_error("Invalid OAuth access token.");
        }
        (
            StatusCode::OK,
            axum::Json(json!({
                "data": [
                    { "id": "111", "name": "Acme Shoes", "access_token": "EAAG-page-token-111-0123456789",
                      "instagram_business_account": { "id": "17841400000000111", "username": "acmeshoes" } },
                    { "id": "222", "name": "Acme Outlet", "access_token": "EAAG-page-token-222-0123456789" }
                ],
                "paging": { "cursors": { "before": "QVFIU", "after": "QVFIU2" } }
            })),
        )
    }
    async fn subscribed_apps(
        State((seen, _)): State<Shared>,
        Path((version, page)): Path<(String, String)>,
        headers: HeaderMap,
        RawQuery(q): RawQuery,
    ) -> (StatusCode, axum::Json<Value>) {
        seen.lock().expect("lock").push((
            format!("/{version}/{page}/subscribed_apps"),
            auth(&headers),
            q.unwrap_or_default(),
        ));
        if auth(&headers) != format!("Bearer EAAG-page-token-{page}-0123456789") {
            return oauth_error("(#210) A page access token is required to request this resource.");
        }
        (StatusCode::OK, axum::Json(json!({ "success": true })))
    }
    async fn debug_token(
        State((seen, _)): State<Shared>,
        Path(version): Path<String>,
        headers: HeaderMap,
        RawQuery(q): RawQuery,
    ) -> (StatusCode, axum::Json<Value>) {
        let q = q.unwrap_or_default();
        seen.lock().expect("lock").push((
            format!("/{version}/debug_token"),
            auth(&headers),
            q.clone(),
        ));
        if auth(&headers) != format!("Bearer {APP_ID}|{APP_SECRET}")
            || !q.contains("input_token=EAAG-long-user-token-0123456789")
        {
            return oauth_error("Invalid OAuth access token.");
        }
        (
            StatusCode::OK,
            axum::Json(json!({ "data": {
                "app_id": APP_ID, "type": "USER", "application": "CortexLayer", "is_valid": true,
                "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
                "granular_scopes": [
                    { "scope": "whatsapp_business_management", "target_ids": ["102290129340398"] },
                    { "scope": "whatsapp_business_messaging", "target_ids": ["102290129340398"] }
                ]
            } })),
        )
    }
    async fn phone_numbers(
        State((seen, _)): State<Shared>,
        Path((version, waba)): Path<(String, String)>,
        headers: HeaderMap,
    ) -> (StatusCode, axum::Json<Value>) {
        seen.lock().expect("lock").push((
            format!("/{version}/{waba}/phone_numbers"),
            auth(&headers),
            String::new(),
        ));
        if auth(&headers) != "Bearer EAAG-long-user-token-0123456789" || waba != "102290129340398" {
            return oauth_error("Unsupported get request.");
        }
        (
            StatusCode::OK,
            axum::Json(json!({ "data": [
                { "verified_name": "Acme Support", "display_phone_number": "+1 555-078-3881",
                  "id": "106540352242922", "quality_rating": "GREEN" }
            ] })),
        )
    }
    let app = axum::Router::new()
        .route("/{version}/debug_token", get(debug_token))
        .route("/{version}/{waba}/phone_numbers", get(phone_numbers))
        .route("/{version}/oauth/access_token", get(access_token))
        .route("/{version}/me/accounts", get(accounts))
        .route("/{version}/{page}/subscribed_apps", post(subscribed_apps))
        .with_state((seen.clone(), redirect_uri));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), seen)
}

async fn oauth_app() -> (TestApp, crate::helpers::Member, Seen) {
    let redirect = "https://support.example/api/v1/channels/meta/oauth/callback".to_owned();
    let (graph, seen) = spawn_graph_oauth(redirect).await;
    let app = crate::helpers::spawn_app_with(move |s| {
        s.providers.meta_app_id = Some(APP_ID.into());
        s.providers.meta_app_secret = Some(cortexlayer_server::config::Secret::new(APP_SECRET));
        s.providers.meta_graph_base_url = Some(graph);
    })
    .await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    (app, owner, seen)
}

/// A browser that does not follow redirects (Meta's dialog and the dashboard are elsewhere).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn callback(app: &TestApp, query: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut r = browser().get(app.url(&format!("/api/v1/channels/meta/oauth/callback?{query}")));
    if let Some(c) = cookie {
        r = r.header("cookie", format!("cortex_meta_oauth={c}"));
    }
    r.send().await.expect("callback")
}

#[tokio::test]
async fn a_page_is_connected_through_metas_sign_in_from_the_browser_that_started_it() {
    let (app, owner, seen) = oauth_app().await;
    let start = json!({ "kind": "messenger" });
    let r = app
        .post_as("/api/v1/channels/meta/oauth", &owner.access, &start)
        .await;
    assert_eq!(
        error_code(r).await,
        (403, "plan_feature_unavailable".to_owned()),
        "Starter has no Meta channels"
    );
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "growth").await;

    let r = app
        .post_as(
            "/api/v1/channels/meta/oauth",
            &owner.access,
            &json!({ "kind": "messenger", "return_path": "//evil.example/x" }),
        )
        .await;
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["field"], "return_path", "no open redirect");
    let r = app
        .post_as("/api/v1/channels/meta/oauth", &owner.access, &start)
        .await;
    assert_eq!(r.status(), 201);
    let cookie_header = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        cookie_header.contains("HttpOnly")
            && cookie_header.contains("Secure")
            && cookie_header.contains("SameSite=Lax")
            && cookie_header.contains("Path=/api/v1/channels/meta/oauth/callback"),
        "{cookie_header}"
    );
    let cookie = cookie_header
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("cookie value");
    let v: Value = r.json().await.expect("json");
    let flow = v["flow_id"].as_str().expect("flow").to_owned();
    let dialog = url::Url::parse(v["authorize_url"].as_str().expect("url")).expect("url");
    assert_eq!(
        (dialog.host_str(), dialog.path()),
        (Some("www.facebook.com"), "/v21.0/dialog/oauth")
    );
    let q: std::collections::HashMap<String, String> = dialog.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], APP_ID);
    assert_eq!(
        q["redirect_uri"],
        "https://support.example/api/v1/channels/meta/oauth/callback"
    );
    assert!(q["scope"].contains("pages_messaging"));
    let state = q["state"].clone();
    assert!(state.len() >= 40);

    // Pending until Meta sends the browser back.
    let pending: Value = app
        .get_as(
            &format!("/api/v1/channels/meta/oauth/{flow}"),
            &owner.access,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(pending["status"], "pending");

    // Another browser (no cookie, or another's), a wrong state, a declined dialog: refused,
    // and the state is not burnt by them.
    let good = format!("code=good-code&state={state}");
    for (query, c) in [
        (good.as_str(), None),
        (good.as_str(), Some("someone-elses-cookie")),
        ("code=good-code&state=forged", Some(cookie.as_str())),
    ] {
        let r = callback(&app, query, c).await;
        assert_eq!(
            error_code(r).await,
            (400, "invalid_state".to_owned()),
            "{query}"
        );
    }
    let r = callback(
        &app,
        "error=access_denied&error_code=200&error_description=Permissions+error&error_reason=user_denied",
        Some(&cookie),
    )
    .await;
    assert_eq!(error_code(r).await, (400, "oauth_denied".to_owned()));

    let r = callback(&app, &good, Some(&cookie)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("https://support.example/channels?meta_oauth={flow}").as_str()
    );
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .contains("Max-Age=0")
    );
    let r = callback(&app, &good, Some(&cookie)).await;
    assert_eq!(
        error_code(r).await,
        (400, "invalid_state".to_owned()),
        "used once"
    );

    // The member sees the pages (never their tokens); nobody else sees the flow.
    let r = app
        .get_as(
            &format!("/api/v1/channels/meta/oauth/{flow}"),
            &owner.access,
        )
        .await;
    let body = r.text().await.expect("body");
    assert!(
        !body.contains("page-token") && !body.contains("user-token") && !body.contains("EAAG"),
        "{body}"
    );
    let offer: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(offer["status"], "ready");
    assert_eq!(
        offer["assets"],
        json!([
            { "asset_id": "111", "name": "Acme Shoes", "connected": false },
            { "asset_id": "222", "name": "Acme Outlet", "connected": false }
        ])
    );
    let admin = app.member(&owner, "admin@acme.test", "admin").await;
    let other = app.owner("owner@other.test", "Other").await;
    for who in [&admin.access, &other.access] {
        let r = app
            .get_as(&format!("/api/v1/channels/meta/oauth/{flow}"), who)
            .await;
        assert_eq!(error_code(r).await, (404, "not_found".to_owned()));
    }

    // Choosing: only offered assets; the chosen page is connected with its own token and
    // subscribed to the webhooks; the flow is spent.
    let path = format!("/api/v1/channels/meta/oauth/{flow}/connect");
    let choose = |ids: Value| {
        let (app, path, token) = (&app, path.clone(), owner.access.clone());
        async move {
            app.post_as(&path, &token, &json!({ "asset_ids": ids }))
                .await
        }
    };
    let r = choose(json!(["999"])).await;
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["field"], "asset_ids");
    // Another tenant squats the page with an unproven claim: the sign-in, which proves
    // control, takes it.
    app.legacy_claim(&other, "messenger", "111", "EAAG-squatters-own-token-0000")
        .await;
    let r = choose(json!(["111"])).await;
    assert_eq!(r.status(), 201);
    let squatted: Value = app
        .get_as("/api/v1/channels", &other.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        squatted["data"],
        json!([]),
        "the squatter's claim is released"
    );
    assert!(
        app.audit_actions(&other)
            .await
            .contains(&"channel.released".to_owned())
    );
    let done: Value = r.json().await.expect("json");
    let c = &done["data"][0];
    assert_eq!(
        (&c["kind"], &c["asset_id"], &c["name"], &c["subscribed"]),
        (
            &json!("messenger"),
            &json!("111"),
            &json!("Acme Shoes"),
            &json!(true)
        )
    );
    assert_eq!(c["token_hint"], "…6789");
    let tenant = owner.tenant_id.parse().expect("tenant");
    let rows = app
        .state
        .store
        .list_channel_connections(tenant)
        .await
        .expect("rows");
    assert_eq!(
        cortexlayer_server::channels::access_token(&app.state.secrets, &rows[0]).as_deref(),
        Ok("EAAG-page-token-111-0123456789"),
        "the page's own token, sealed"
    );
    let calls = seen.lock().expect("lock").clone();
    let subscribe = calls
        .iter()
        .find(|(path, _, _)| path == "/v21.0/111/subscribed_apps")
        .expect("subscribed");
    assert_eq!(subscribe.1, "Bearer EAAG-page-token-111-0123456789");
    assert!(subscribe.2.contains("subscribed_fields=messages"));
    let r = choose(json!(["222"])).await;
    assert_eq!(error_code(r).await, (404, "not_found".to_owned()), "spent");

    // A second sign-in shows the page as connected already.
    let (flow, state, cookie) = started(&app, &owner.access, &start).await;
    let r = callback(
        &app,
        &format!("code=good-code&state={state}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status(), 303);
    let offer: Value = app
        .get_as(
            &format!("/api/v1/channels/meta/oauth/{flow}"),
            &owner.access,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(offer["assets"][0]["connected"], true);
    assert_eq!(offer["assets"][1]["connected"], false);
}

/// Starts a flow: its id, the dialog's state and the browser cookie.
async fn started(app: &TestApp, token: &str, body: &Value) -> (String, String, String) {
    let r = app
        .post_as("/api/v1/channels/meta/oauth", token, body)
        .await;
    assert_eq!(r.status(), 201);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("cookie value");
    let v: Value = r.json().await.expect("json");
    let dialog = url::Url::parse(v["authorize_url"].as_str().expect("url")).expect("url");
    let state = dialog
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    (
        v["flow_id"].as_str().expect("flow").to_owned(),
        state,
        cookie,
    )
}

#[tokio::test]
async fn without_a_meta_app_the_sign_in_is_not_offered() {
    let app = crate::helpers::spawn_app().await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "growth").await;
    let r = app
        .post_as(
            "/api/v1/channels/meta/oauth",
            &owner.access,
            &json!({ "kind": "instagram" }),
        )
        .await;
    assert_eq!(error_code(r).await, (404, "not_configured".to_owned()));
    let r = callback(&app, "code=x&state=y", Some("z")).await;
    assert_eq!(error_code(r).await, (404, "not_configured".to_owned()));
}

#[tokio::test]
async fn instagram_accounts_and_whatsapp_numbers_are_offered_from_the_sign_in() {
    let (app, owner, seen) = oauth_app().await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "scale").await;
    for (kind, expected) in [
        (
            "instagram",
            json!([{ "asset_id": "17841400000000111", "name": "@acmeshoes", "connected": false }]),
        ),
        (
            "whatsapp",
            json!([{ "asset_id": "106540352242922", "name": "Acme Support +1 555-078-3881", "connected": false }]),
        ),
    ] {
        let (flow, state, cookie) = started(&app, &owner.access, &json!({ "kind": kind })).await;
        let r = callback(
            &app,
            &format!("code=good-code&state={state}"),
            Some(&cookie),
        )
        .await;
        assert_eq!(r.status(), 303, "{kind}");
        let offer: Value = app
            .get_as(
                &format!("/api/v1/channels/meta/oauth/{flow}"),
                &owner.access,
            )
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(offer["assets"], expected, "{kind}");
        if kind == "whatsapp" {
            let r = app
                .post_as(
                    &format!("/api/v1/channels/meta/oauth/{flow}/connect"),
                    &owner.access,
                    &json!({ "asset_ids": ["106540352242922"] }),
                )
                .await;
            assert_eq!(r.status(), 201);
            let done: Value = r.json().await.expect("json");
            // The WhatsApp Business Account is subscribed with the member's token, which the
            // stand-in does not take for subscriptions: reported, the number stays connected.
            assert_eq!(done["data"][0]["kind"], "whatsapp");
            assert_eq!(done["data"][0]["subscribed"], false);
            assert!(done["data"][0]["subscribe_error"].is_string());
        }
    }
    let calls = seen.lock().expect("lock").clone();
    assert!(
        calls
            .iter()
            .any(|(path, _, _)| path == "/v21.0/102290129340398/subscribed_apps"),
        "{calls:?}"
    );
}
