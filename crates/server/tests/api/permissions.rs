//! Every endpoint against its documented credential: the "who" column of the endpoint table
//! in `docs/API.md` is read here, and each endpoint is called by every kind of caller — each
//! member role, an API key of each scope, an operator, nobody — expecting the documented
//! ones through and the others refused with `403 forbidden` (`401` without a credential).
//! Permission comes first: a refused caller gets 403 whatever the id, and never learns
//! whether it exists. Every operation of the OpenAPI spec under `/api/v1` and `/v1` must
//! have its row, so no endpoint escapes the table.

use std::collections::{BTreeSet, HashMap};

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

const API_MD: &str = include_str!("../../../../docs/API.md");
const SCOPES: [&str; 4] = [
    "chat",
    "knowledge:read",
    "knowledge:write",
    "conversations:read",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Who {
    Owner,
    Admin,
    Agent,
    Key(&'static str),
    Operator,
}

fn everyone() -> Vec<Who> {
    let mut all = vec![Who::Owner, Who::Admin, Who::Agent, Who::Operator];
    all.extend(SCOPES.iter().map(|s| Who::Key(s)));
    all
}

/// Rows whose caller is no credential of the table's kinds (public, signed by a provider,
/// bound to a browser or a person's own flow); they have tests of their own.
fn is_other_kind(who: &str) -> bool {
    who == "anyone"
        || who.starts_with("holder of")
        || who.starts_with("the ")
        || who.starts_with("Meta")
        || who.starts_with("Twilio")
        || who.starts_with("ManyChat")
        || who.starts_with("a page of")
        || who.starts_with("anyone with")
}

/// The callers a "who" cell names, or `None` for a row of another kind.
fn parse_who(cell: &str) -> Option<BTreeSet<Who>> {
    let mut text = String::new();
    let mut depth = 0;
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => text.push(c),
            _ => {}
        }
    }
    let text = text.trim();
    if is_other_kind(text) {
        return None;
    }
    let mut set = BTreeSet::new();
    for part in text.split([';', ',']).map(str::trim) {
        match part {
            "member" => set.extend([Who::Owner, Who::Admin, Who::Agent]),
            "member or API key" => {
                set.extend([Who::Owner, Who::Admin, Who::Agent]);
                set.extend(SCOPES.iter().map(|s| Who::Key(s)));
            }
            "owner" => {
                set.insert(Who::Owner);
            }
            "admin" => {
                set.insert(Who::Admin);
            }
            "platform admin" => {
                set.insert(Who::Operator);
            }
            p if p.contains('`') => {
                let scope = p.split('`').nth(1).expect("a scope in backticks");
                let scope = SCOPES
                    .iter()
                    .find(|s| **s == scope)
                    .unwrap_or_else(|| panic!("docs/API.md names an unknown scope {scope:?}"));
                set.insert(Who::Key(scope));
            }
            other => panic!("docs/API.md: cannot read the caller {other:?} in {cell:?}"),
        }
    }
    Some(set)
}

/// The Endpoints section of `docs/API.md`, up to the next section.
fn endpoint_table() -> &'static str {
    let after = API_MD
        .split("\n## Endpoints")
        .nth(1)
        .expect("an Endpoints section");
    after.split("\n## ").next().unwrap_or(after)
}

/// Every row of the endpoint table: its method, its path (without the query) and its "who"
/// cell.
fn table_rows() -> Vec<(&'static str, &'static str, &'static str)> {
    endpoint_table()
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let endpoint = cells[1].trim_matches('`');
            let (method, path) = endpoint.split_once(' ').expect("method and path");
            let path = path.split('?').next().expect("path");
            (method, path, cells[2])
        })
        .collect()
}

/// `(method, path, callers)` of every row of the endpoint table with credentialed callers.
fn documented() -> Vec<(Method, String, BTreeSet<Who>)> {
    let mut rows = Vec::new();
    let mut previous: Option<BTreeSet<Who>> = None;
    for (method, path, cell) in table_rows() {
        let who = if cell == "same" {
            previous.clone()
        } else {
            parse_who(cell)
        };
        previous = who.clone();
        // Sign-in endpoints take credentials in their bodies; their tests are in `auth.rs`.
        if let Some(who) = who
            && (path.starts_with("/api/v1/") || path.starts_with("/v1/"))
            && !path.starts_with("/api/v1/auth/")
        {
            rows.push((method.parse().expect("method"), path.to_owned(), who));
        }
    }
    rows
}

/// The body each operation is called with: valid, so that a refusal can only come from the
/// caller's rights.
enum Body {
    None,
    Json(Value),
    Upload,
    Csv,
}

fn body_for(method: &Method, path: &str, n: usize) -> Body {
    match (method.as_str(), path) {
        ("PATCH", "/api/v1/members/{id}") => Body::Json(json!({ "role": "agent" })),
        // A wrong current password: allowed callers get 422, the rest are refused first.
        ("PUT", "/api/v1/me/password") => Body::Json(
            json!({ "current_password": "not-the-password-1", "new_password": "a-new-long-password" }),
        ),
        ("PATCH", "/api/v1/tenant") => Body::Json(json!({ "name": format!("Probe {n}") })),
        // A wrong password: allowed callers get 422, the rest are refused first.
        ("POST", "/api/v1/me/email") => Body::Json(
            json!({ "new_email": format!("probe{n}@elsewhere.test"), "password": "not-the-password-1" }),
        ),
        ("POST", "/api/v1/me/email/confirm") => Body::Json(json!({ "code": "000000" })),
        ("POST", "/api/v1/invitations") => {
            Body::Json(json!({ "email": format!("invitee{n}@acme.test"), "role": "agent" }))
        }
        ("POST", "/api/v1/api-keys") => Body::Json(json!({ "name": "probe", "scopes": ["chat"] })),
        ("POST", "/api/v1/admin/tenants/{id}/plan") => Body::Json(json!({ "plan": "growth" })),
        ("POST", "/api/v1/admin/tenants/{id}/channels") => {
            Body::Json(json!({ "number": "+14155550199" }))
        }
        ("POST", "/api/v1/documents") => Body::Upload,
        ("POST", "/api/v1/documents/qa/import") => Body::Csv,
        ("POST", "/api/v1/documents/url") => Body::Json(json!({ "url": "http://127.0.0.1:9/faq" })),
        ("POST", "/api/v1/documents/qa") => Body::Json(
            json!({ "title": "FAQ", "pairs": [{ "question": "Do you ship abroad?", "answer": "Yes, to Canada." }] }),
        ),
        ("POST", "/api/v1/search") => Body::Json(json!({ "query": "shipping" })),
        ("POST", "/api/v1/chat") => Body::Json(json!({ "message": "Do you ship abroad?" })),
        ("PUT", "/api/v1/bot") => Body::Json(json!({})),
        ("POST", "/v1/chat/completions") => Body::Json(
            json!({ "model": "any", "messages": [{ "role": "user", "content": "Do you ship abroad?" }] }),
        ),
        ("POST", "/api/v1/channels") => Body::Json(
            json!({ "kind": "whatsapp", "asset_id": "106540352242922", "access_token": "EAAG-probe-token-0000000000" }),
        ),
        ("POST", "/api/v1/channels/meta/oauth") => Body::Json(json!({ "kind": "whatsapp" })),
        ("POST", "/api/v1/widget-keys") => {
            Body::Json(json!({ "allowed_origins": ["https://shop.example"] }))
        }
        ("PATCH", "/api/v1/widget-keys/{id}") => Body::Json(json!({ "name": "renamed" })),
        ("POST", _) | ("PUT", _) | ("PATCH", _)
            if !path.ends_with("/suspend")
                && !path.ends_with("/reactivate")
                && !path.ends_with("/reprocess") =>
        {
            panic!("no test body for {method} {path}: add one")
        }
        _ => Body::None,
    }
}

#[tokio::test]
async fn every_endpoint_lets_in_exactly_the_callers_its_documentation_names() {
    // Meta's API is a closed local port: a connection attempt fails fast (502) after the
    // permission check has let the caller through.
    let app = crate::helpers::spawn_app_with(|s| {
        s.providers.meta_graph_base_url = Some("http://127.0.0.1:9".into());
    })
    .await;
    let owner = app.owner("owner@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "growth").await;
    let admin = app.member(&owner, "admin@acme.test", "admin").await;
    let agent = app.member(&owner, "agent@acme.test", "agent").await;
    let mut tokens: HashMap<Who, String> = HashMap::new();
    tokens.insert(Who::Owner, owner.access.clone());
    tokens.insert(Who::Admin, admin.access.clone());
    tokens.insert(Who::Agent, agent.access.clone());
    tokens.insert(Who::Operator, operator.clone());
    for scope in SCOPES {
        let (_, key) = app.api_key(&owner, &[scope]).await;
        tokens.insert(Who::Key(scope), key);
    }

    let rows = documented();
    assert!(
        rows.len() > 30,
        "the endpoint table was read: {}",
        rows.len()
    );
    let mut wrong = Vec::new();
    let mut n = 0;
    for (method, template, allowed) in &rows {
        let path = template
            .replace("{id}", &uuid::Uuid::now_v7().to_string())
            .replace("{flow_id}", &uuid::Uuid::now_v7().to_string());
        let callers = everyone().into_iter().map(Some).chain([None]);
        for who in callers {
            n += 1;
            let mut request = app.client.request(method.clone(), app.url(&path));
            if let Some(who) = who {
                request = request.bearer_auth(&tokens[&who]);
            }
            request = match body_for(method, template, n) {
                Body::None => request,
                Body::Json(v) => request.json(&v),
                Body::Upload => request.multipart(
                    Form::new().part(
                        "file",
                        Part::bytes(b"# Shipping\n\nWe ship to Canada.\n".to_vec())
                            .file_name(format!("probe{n}.md")),
                    ),
                ),
                Body::Csv => request.multipart(
                    Form::new().part(
                        "file",
                        Part::bytes(b"question,answer\nDo you ship?,Yes\n".to_vec())
                            .file_name(format!("probe{n}.csv")),
                    ),
                ),
            };
            let r = request.send().await.expect("request");
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            let ok = match who {
                None => status == 401,
                // 502: let through, then the provider (a closed port here) did not answer.
                Some(w) if allowed.contains(&w) => {
                    !matches!(status, 401 | 403) && (status < 500 || status == 502)
                }
                Some(_) => status == 403 && text.contains("\"forbidden\""),
            };
            if !ok {
                wrong.push(format!(
                    "{method} {template} as {who:?}: {status} {}",
                    text.chars().take(160).collect::<String>()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {n} calls disagree with docs/API.md:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn every_operation_of_the_api_has_its_row_in_the_endpoint_table() {
    let spec = spawn_app().await.openapi().await;
    let rows: BTreeSet<String> = table_rows()
        .into_iter()
        .map(|(method, path, _)| format!("{method} {path}"))
        .collect();
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        if !(path.starts_with("/api/v1/") || path.starts_with("/v1/")) {
            continue;
        }
        for method in item.as_object().expect("item").keys() {
            let row = format!("{} {path}", method.to_uppercase());
            if !rows.contains(&row) {
                missing.push(row);
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/API.md: {missing:?}");
}
