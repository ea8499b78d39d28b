//! A stand-in for Meta's Graph API: the reads that prove control of an asset, the send
//! endpoints with Meta's checks and documented answers, and webhook unsubscription.

use serde_json::{Value, json};

/// The token the Graph API stand-in takes.
pub const GRAPH_TOKEN: &str = "EAAG-page-or-number-token-123456";

/// A second business's token: its own page and number, none of the first's.
pub const OTHER_GRAPH_TOKEN: &str = "EAAG-another-business-token-98765";

/// What a token of the Graph API stand-in controls: the page it is the token of (with the
/// Instagram account linked to that page) and the WhatsApp phone numbers its business
/// account holds.
struct GraphGrant {
    page: &'static str,
    instagram: Option<&'static str>,
    numbers: &'static [&'static str],
}

fn graph_grant(bearer: &str) -> Option<GraphGrant> {
    match bearer.strip_prefix("Bearer ")? {
        GRAPH_TOKEN => Some(GraphGrant {
            page: "1234567890",
            instagram: Some("17841400000000001"),
            numbers: &["106540352242922", "111", "222"],
        }),
        OTHER_GRAPH_TOKEN => Some(GraphGrant {
            page: "555000111222",
            instagram: None,
            numbers: &["106540352249999"],
        }),
        _ => None,
    }
}

fn graph_error(
    status: u16,
    code: u32,
    kind: &str,
    message: &str,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    (
        axum::http::StatusCode::from_u16(status).expect("status"),
        axum::Json(
            json!({ "error": { "message": message, "type": kind, "code": code, "fbtrace_id": "AbCdEf" } }),
        ),
    )
}

/// `GET /{version}/me` and `GET /{version}/{id}` as Meta answers them for the token: `/me` is
/// the page a page token belongs to; a phone number id is readable only by a token of its
/// business account; an unknown token is OAuthException 190.
async fn graph_read(
    axum::extract::Path((version, object)): axum::extract::Path<(String, String)>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    if version != "v21.0" {
        return graph_error(400, 2500, "OAuthException", "Unknown path components");
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(grant) = graph_grant(bearer) else {
        return graph_error(
            400,
            190,
            "OAuthException",
            "Invalid OAuth access token - Cannot parse access token",
        );
    };
    let fields = query.get("fields").cloned().unwrap_or_default();
    if object == "me" {
        let mut me = json!({ "id": grant.page, "name": format!("Page {}", grant.page) });
        if fields.contains("instagram_business_account")
            && let Some(ig) = grant.instagram
        {
            me["instagram_business_account"] = json!({ "id": ig });
        }
        return (axum::http::StatusCode::OK, axum::Json(me));
    }
    if grant.numbers.contains(&object.as_str()) {
        return (
            axum::http::StatusCode::OK,
            axum::Json(
                json!({ "id": object, "display_phone_number": "+1 555-010-4242", "verified_name": "Acme Support" }),
            ),
        );
    }
    graph_error(
        400,
        100,
        "GraphMethodException",
        &format!(
            "Unsupported get request. Object with ID '{object}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
        ),
    )
}

/// A stand-in for the Graph API's `/{version}/{asset}/messages`: checks the version in the
/// path, the bearer token and the body as Meta does, and answers with the documented shapes
/// (WhatsApp `messages[].id`, Send API `message_id`, `error` with Meta's codes). It also
/// answers the reads that prove control of an asset ([`graph_read`]).
pub async fn spawn_graph(
    script: Vec<(u16, Value)>,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>,
) {
    let (base, seen, _) = spawn_graph_full(script).await;
    (base, seen)
}

/// [`spawn_graph`], also recording every `DELETE /{version}/{target}/subscribed_apps` (the
/// app's webhook subscription removed) as the target and the token's page.
pub async fn spawn_graph_full(
    script: Vec<(u16, Value)>,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String, Value)>>>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::{Arc, Mutex};
    type Shared = (
        Arc<Mutex<Vec<(u16, Value)>>>,
        Arc<Mutex<Vec<(String, String, Value)>>>,
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared: Shared = (Arc::new(Mutex::new(script)), seen.clone());
    async fn messages(
        State((script, seen)): State<Shared>,
        Path((version, asset)): Path<(String, String)>,
        headers: HeaderMap,
        body: String,
    ) -> (StatusCode, axum::Json<Value>) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        seen.lock().expect("lock").push((
            format!("/{version}/{asset}/messages"),
            auth.clone(),
            v.clone(),
        ));
        if version != "v21.0" {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    json!({ "error": { "message": "Unknown path components", "type": "OAuthException", "code": 2500 } }),
                ),
            );
        }
        if auth != "Bearer EAAG-page-or-number-token-123456" {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(
                    json!({ "error": { "message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190 } }),
                ),
            );
        }
        let whatsapp = v["messaging_product"] == "whatsapp";
        let ok_shape = if whatsapp {
            v["to"].is_string()
                && (v["text"]["body"].is_string() || v["template"]["name"].is_string())
        } else {
            v["recipient"]["id"].is_string()
                && v["message"]["text"].is_string()
                && v["messaging_type"] == "RESPONSE"
        };
        if !ok_shape {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    json!({ "error": { "message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100 } }),
                ),
            );
        }
        let mut script = script.lock().expect("lock");
        let (status, reply) = if script.is_empty() {
            (200, Value::Null)
        } else {
            script.remove(0)
        };
        let n = seen.lock().expect("lock").len();
        let reply = if status == 200 && reply.is_null() {
            if whatsapp {
                json!({ "messaging_product": "whatsapp", "contacts": [{ "input": v["to"], "wa_id": v["to"] }], "messages": [{ "id": format!("wamid.out{n}") }] })
            } else {
                json!({ "recipient_id": v["recipient"]["id"], "message_id": format!("m_out{n}") })
            }
        } else {
            reply
        };
        (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(reply),
        )
    }
    let unsubscribed = Arc::new(Mutex::new(Vec::new()));
    let removed = unsubscribed.clone();
    let unsubscribe = move |Path((version, target)): Path<(String, String)>, headers: HeaderMap| {
        let removed = removed.clone();
        async move {
            let bearer = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            match graph_grant(&bearer) {
                _ if version != "v21.0" => {
                    graph_error(400, 2500, "OAuthException", "Unknown path components")
                }
                None => graph_error(
                    400,
                    190,
                    "OAuthException",
                    "Invalid OAuth access token - Cannot parse access token",
                ),
                Some(g) if g.page != target => {
                    graph_error(400, 200, "OAuthException", "(#200) Permissions error")
                }
                Some(_) => {
                    removed.lock().expect("lock").push(target);
                    (StatusCode::OK, axum::Json(json!({ "success": true })))
                }
            }
        }
    };
    let app = axum::Router::new()
        .route("/{version}/{asset}/messages", axum::routing::post(messages))
        .with_state(shared)
        .route("/{version}/{object}", axum::routing::get(graph_read))
        .route(
            "/{version}/{target}/subscribed_apps",
            axum::routing::delete(unsubscribe),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), seen, unsubscribed)
}
