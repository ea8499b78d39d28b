//! API keys (owners and admins): create one with a name and scopes — its secret is shown
//! once, with a copy button — see each key's scopes and last use, revoke one.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use cortex_core::credentials::{ApiKey, ApiScope};
use cortex_core::ids::ApiKeyId;
use serde::Deserialize;

use super::forms::{Empty, sentence};
use super::pages::{Chrome, ConfirmPage, error_page, page, page_with_status};
use super::session::{Member, PageForm};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::tenancy::api_keys;

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

impl From<&ApiKey> for KeyRow {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k
                .scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            created: k.created_at.format("%Y-%m-%d").to_string(),
            last_used: k.last_used_at.map_or_else(
                || "never".into(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
            ),
            revoked: k.revoked_at.is_some(),
        }
    }
}

/// What each scope lets a key do, as the form explains it.
const SCOPES: [(ApiScope, &str); 4] = [
    (
        ApiScope::Chat,
        "Ask the bot (the chat API and the OpenAI-compatible endpoint)",
    ),
    (ApiScope::KnowledgeRead, "Read and search the documents"),
    (
        ApiScope::KnowledgeWrite,
        "Add, reprocess and delete documents",
    ),
    (ApiScope::ConversationsRead, "Read the conversations"),
];

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    scopes: Vec<(&'static str, &'static str, bool)>,
    name: String,
    created: Option<(String, String)>,
    notice: String,
    error: String,
}

async fn render(
    state: &AppState,
    member: &Member,
    status: StatusCode,
    form: (String, Vec<ApiScope>),
    created: Option<(String, String)>,
    notice: String,
    error: String,
) -> Response {
    let keys = match api_keys::list(state, &member.ctx).await {
        Ok(k) => k,
        Err(e) => return error_page(e.into()),
    };
    page_with_status(
        status,
        &KeysPage {
            chrome: Chrome::member(member, "/api-keys"),
            keys: keys.iter().map(KeyRow::from).collect(),
            scopes: SCOPES
                .iter()
                .map(|(s, what)| (s.as_str(), *what, form.1.contains(s)))
                .collect(),
            name: form.0,
            created,
            notice,
            error,
        },
    )
}

#[derive(Deserialize, Default)]
pub struct KeysQuery {
    revoked: Option<String>,
}

pub async fn keys_page(
    State(state): State<AppState>,
    member: Member,
    axum::extract::Query(q): axum::extract::Query<KeysQuery>,
) -> Response {
    let notice = if q.revoked.is_some() {
        "The key is revoked: calls with it are refused from now on."
    } else {
        ""
    };
    render(
        &state,
        &member,
        StatusCode::OK,
        (String::new(), vec![ApiScope::Chat]),
        None,
        notice.into(),
        String::new(),
    )
    .await
}

/// `name=…&scope=chat&scope=knowledge:read`: a form's repeated checkboxes.
pub async fn create(
    State(state): State<AppState>,
    member: Member,
    PageForm(pairs): PageForm<Vec<(String, String)>>,
) -> Response {
    let name = pairs
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let scopes: Vec<ApiScope> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    match api_keys::create(&state, &member.ctx, &name, scopes.clone()).await {
        // The secret is shown on this answer only (a page sent no-store), never again.
        Ok(k) => {
            render(
                &state,
                &member,
                StatusCode::CREATED,
                (String::new(), vec![ApiScope::Chat]),
                Some((k.key.name.clone(), k.secret)),
                String::new(),
                String::new(),
            )
            .await
        }
        Err(e) => {
            let e = ApiError::from(e);
            if e.status == StatusCode::FORBIDDEN {
                return error_page(e);
            }
            let status = e.status;
            render(
                &state,
                &member,
                status,
                (name, scopes),
                None,
                String::new(),
                sentence(&e.message),
            )
            .await
        }
    }
}

pub async fn revoke_page(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
) -> Response {
    let keys = match api_keys::list(&state, &member.ctx).await {
        Ok(k) => k,
        Err(e) => return error_page(e.into()),
    };
    let Some(key) = keys
        .iter()
        .find(|k| k.id.to_string() == id && k.revoked_at.is_none())
    else {
        return error_page(ApiError::not_found());
    };
    page(&ConfirmPage {
        chrome: Chrome::member(&member, "/api-keys"),
        title: format!("Revoke “{}”?", key.name),
        message: format!(
            "Every integration using the key {}… stops working at once. This cannot be undone; create a new key to replace it.",
            key.prefix
        ),
        action: format!("/api-keys/{id}/revoke"),
        confirm: "Revoke the key",
        cancel: "/api-keys".into(),
    })
}

pub async fn revoke(
    State(state): State<AppState>,
    member: Member,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    let Ok(id) = id.parse::<ApiKeyId>() else {
        return error_page(ApiError::not_found());
    };
    match api_keys::revoke(&state, &member.ctx, id).await {
        Ok(_) => Redirect::to("/api-keys?revoked=1").into_response(),
        Err(e) => error_page(e.into()),
    }
}
