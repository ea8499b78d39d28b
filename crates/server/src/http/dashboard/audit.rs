//! The audit log (owners and admins): who did what and when, filtered by action, by member
//! and by day, newest first and paged.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use cortex_core::audit::{Actor, AuditFilter, action};
use cortex_core::ids::UserId;
use cortex_core::store::Page;
use serde::Deserialize;

use super::forms::{next_page_query, utc_day};
use super::pages::{Chrome, error_page, page};
use super::session::Member;
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::tenancy::{self, team};

const PAGE: u32 = 50;

/// Every action with what it means, in the order the filter offers them.
const ACTIONS: &[(&str, &str)] = &[
    (action::TENANT_CREATED, "Workspace created"),
    (action::TENANT_PLAN_CHANGED, "Plan changed"),
    (action::TENANT_SUSPENDED, "Workspace suspended"),
    (action::TENANT_REACTIVATED, "Workspace reactivated"),
    (action::MEMBER_INVITED, "Member invited"),
    (action::MEMBER_JOINED, "Member joined"),
    (action::MEMBER_ROLE_CHANGED, "Role changed"),
    (action::MEMBER_REMOVED, "Member removed"),
    (action::API_KEY_CREATED, "API key created"),
    (action::API_KEY_REVOKED, "API key revoked"),
    (action::BOT_SETTINGS_UPDATED, "Bot settings changed"),
    (action::CHANNEL_CONNECTED, "Channel connected"),
    (action::CHANNEL_DISCONNECTED, "Channel disconnected"),
    (action::CHANNEL_RELEASED, "Channel released to its owner"),
    (action::CHANNEL_TOKEN_INVALID, "Channel credential refused"),
    (action::WIDGET_KEY_CREATED, "Widget key created"),
    (action::WIDGET_KEY_UPDATED, "Widget key changed"),
    (action::WIDGET_KEY_REVOKED, "Widget key revoked"),
    (action::PASSWORD_RESET, "Password reset by email"),
    (action::PASSWORD_CHANGED, "Password changed"),
    (action::EMAIL_CHANGED, "Sign-in address changed"),
    (action::TENANT_RENAMED, "Company renamed"),
    (action::SESSIONS_REVOKED, "Signed out everywhere"),
    (action::LOGIN_FAILURE_BURST, "Many failed sign-ins"),
    (
        action::REFRESH_TOKEN_REUSED,
        "A used session token came back: sessions revoked",
    ),
];

fn label(code: &str) -> &str {
    ACTIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(code, |(_, l)| l)
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    action: Option<String>,
    member: Option<String>,
    from: Option<String>,
    until: Option<String>,
    before: Option<String>,
}

pub struct Row {
    pub at: String,
    pub who: String,
    pub what: String,
    pub code: String,
    pub target: String,
    pub details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    rows: Vec<Row>,
    actions: Vec<(&'static str, &'static str, bool)>,
    members: Vec<(String, String, bool)>,
    from: String,
    until: String,
    filtered: bool,
    next: Option<String>,
}

pub async fn audit_page(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<AuditQuery>,
) -> Response {
    let ctx = &member.ctx;
    let chosen_action = q
        .action
        .as_deref()
        .filter(|a| ACTIONS.iter().any(|(c, _)| c == a));
    let chosen_member = q.member.as_deref().and_then(|m| m.parse::<UserId>().ok());
    let filter = AuditFilter {
        action: chosen_action.map(str::to_owned),
        actor_user: chosen_member,
        from: q.from.as_deref().and_then(utc_day),
        until: q
            .until
            .as_deref()
            .and_then(utc_day)
            .map(|d| d + chrono::Duration::days(1)),
    };
    let page_req = Page {
        limit: PAGE,
        before: q.before.as_deref().and_then(|b| b.parse().ok()),
    };
    let events = match tenancy::audit_events(&state, ctx, &filter, page_req).await {
        Ok(e) => e,
        Err(e) => return error_page(ApiError::from(e)),
    };
    let members = team::list_members(&state, ctx).await.unwrap_or_default();
    let who = |actor: &Actor| match actor {
        Actor::User(id) => members
            .iter()
            .find(|m| m.id.to_string() == *id)
            .map_or_else(|| "A former member".to_owned(), |m| m.email.to_string()),
        Actor::ApiKey(_) => "An API key".to_owned(),
        Actor::PlatformAdmin(_) => "The operator".to_owned(),
        Actor::System => "CortexLayer".to_owned(),
    };
    let rows: Vec<Row> = events
        .iter()
        .map(|e| Row {
            at: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            who: who(&e.actor),
            what: label(&e.action).to_owned(),
            code: e.action.clone(),
            target: match (&e.target_type, &e.target_id) {
                (Some(t), Some(id)) => format!("{t} {id}"),
                _ => String::new(),
            },
            details: if e.metadata.is_null() || e.metadata == serde_json::json!({}) {
                String::new()
            } else {
                e.metadata.to_string()
            },
        })
        .collect();
    let next = (events.len() == PAGE as usize)
        .then(|| events.last())
        .flatten()
        .map(|last| {
            next_page_query(
                last.id.to_string(),
                &[
                    ("action", q.action.as_deref()),
                    ("member", q.member.as_deref()),
                    ("from", q.from.as_deref()),
                    ("until", q.until.as_deref()),
                ],
            )
        });
    page(&AuditPage {
        chrome: Chrome::member(&member, "/audit"),
        filtered: filter != AuditFilter::default(),
        rows,
        actions: ACTIONS
            .iter()
            .map(|(c, l)| (*c, *l, chosen_action == Some(*c)))
            .collect(),
        members: members
            .iter()
            .map(|m| {
                (
                    m.id.to_string(),
                    m.email.to_string(),
                    chosen_member == Some(m.id),
                )
            })
            .collect(),
        from: q.from.unwrap_or_default(),
        until: q.until.unwrap_or_default(),
        next,
    })
}
