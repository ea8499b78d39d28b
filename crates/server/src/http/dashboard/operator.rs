//! The operator console, for platform admins: sign in, the tenants with search and filters
//! (plan, status) and what each holds, one tenant's page, changing its plan, suspending it
//! (after a confirmation) and reactivating it; each change lands in that tenant's audit log.
//!
//! Its session is an operator access token in a cookie sent only to `/operator`
//! (`SameSite=Strict`): it lasts 15 minutes, then the operator signs in again.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cortex_core::ids::TenantId;
use cortex_core::plans::default_catalogue;
use cortex_core::store::Page;
use cortex_core::tenancy::{TenantFilter, TenantStatus};
use serde::Deserialize;

use super::forms::{Empty, Field, Form, FormPage, next_page_query};
use super::pages::{Chrome, ConfirmPage, error_page, page, page_with_status};
use super::session::{self, FormCsrf, OperatorPage, PageForm};
use crate::app::AppState;
use crate::http::error::ApiError;
use crate::http::extract::ClientIp;
use crate::tenancy::operators;

fn sign_in_form(email: &str) -> Form {
    Form::new("Operator sign-in", "/operator/sign-in", "Sign in")
        .lead("For the platform admins of this CortexLayer service (accounts are made with `cortexlayer admin create`). A session lasts 15 minutes.")
        .field(Field::email(email))
        .field(Field::password("password", "Password", "current-password"))
}

fn show(state: &AppState, headers: &HeaderMap, status: StatusCode, form: Form) -> Response {
    let csrf = FormCsrf::operator(state, headers);
    let r = page_with_status(
        status,
        &FormPage {
            chrome: Chrome::public(csrf.token.clone()),
            form,
        },
    );
    csrf.apply(r)
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    expired: Option<String>,
}

pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> Response {
    let mut form = sign_in_form("");
    if q.expired.is_some() {
        form.notice = "Your operator session ended. Sign in again.".into();
    }
    show(&state, &headers, StatusCode::OK, form)
}

#[derive(Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(f): PageForm<SignInForm>,
) -> Response {
    match operators::login(&state, ip, &f.email, f.password).await {
        Ok((_, token)) => {
            let mut r = Redirect::to("/operator").into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                session::operator_cookie(
                    &state,
                    Some(&token),
                    state.settings.auth.access_token_ttl_secs,
                ),
            );
            r
        }
        Err(e) => {
            let mut form = sign_in_form(&f.email);
            let status = form.fail(e);
            show(&state, &headers, status, form)
        }
    }
}

pub async fn sign_out(
    State(state): State<AppState>,
    _op: OperatorPage,
    PageForm(_): PageForm<Empty>,
) -> Response {
    let mut r = Redirect::to("/operator/sign-in").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::operator_cookie(&state, None, 0),
    );
    r
}

pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub status: &'static str,
    pub documents: u64,
    pub conversations: u64,
    pub created: String,
}

#[derive(Template)]
#[template(path = "operator_tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    rows: Vec<TenantRow>,
    query: String,
    plans: Vec<(&'static str, &'static str, bool)>,
    statuses: Vec<(&'static str, bool)>,
    filtered: bool,
    next: Option<String>,
}

const STATUSES: [TenantStatus; 4] = [
    TenantStatus::Trial,
    TenantStatus::Active,
    TenantStatus::PastDue,
    TenantStatus::Suspended,
];
const PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct TenantsQuery {
    q: Option<String>,
    plan: Option<String>,
    status: Option<String>,
    before: Option<String>,
}

pub async fn tenants(
    State(state): State<AppState>,
    op: OperatorPage,
    Query(q): Query<TenantsQuery>,
) -> Response {
    let status = q
        .status
        .as_deref()
        .and_then(|s| STATUSES.into_iter().find(|t| t.as_str() == s));
    let plan = q
        .plan
        .as_deref()
        .filter(|p| default_catalogue().iter().any(|c| c.id == *p));
    let filter = TenantFilter {
        name_contains: q.q.clone().filter(|n| !n.trim().is_empty()),
        plan: plan.map(str::to_owned),
        status,
        id: None,
    };
    let before = q.before.as_deref().and_then(|b| b.parse().ok());
    let rows = match operators::tenant_summaries(
        &state,
        &op.ctx,
        &filter,
        Page {
            limit: PAGE,
            before,
        },
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return error_page(e.into()),
    };
    let next = (rows.len() == PAGE as usize)
        .then(|| rows.last())
        .flatten()
        .map(|last| {
            next_page_query(
                last.tenant.id.to_string(),
                &[
                    ("q", q.q.as_deref()),
                    ("plan", q.plan.as_deref()),
                    ("status", q.status.as_deref()),
                ],
            )
        });
    page(&TenantsPage {
        chrome: Chrome::operator(&op, "/operator"),
        filtered: filter != TenantFilter::default(),
        rows: rows
            .into_iter()
            .map(|s| TenantRow {
                id: s.tenant.id.to_string(),
                name: s.tenant.name,
                plan: cortex_core::plans::plan_or_default(&s.tenant.plan)
                    .name
                    .to_owned(),
                status: s.tenant.status.as_str(),
                documents: s.documents,
                conversations: s.conversations_since,
                created: s.tenant.created_at.format("%Y-%m-%d").to_string(),
            })
            .collect(),
        query: q.q.unwrap_or_default(),
        plans: default_catalogue()
            .into_iter()
            .map(|p| (p.id, p.name, plan == Some(p.id)))
            .collect(),
        statuses: STATUSES
            .into_iter()
            .map(|s| (s.as_str(), status == Some(s)))
            .collect(),
        next,
    })
}

#[derive(Template)]
#[template(path = "operator_tenant.html")]
struct TenantPage {
    chrome: Chrome,
    id: String,
    name: String,
    status: &'static str,
    suspended: bool,
    facts: Vec<(&'static str, String)>,
    plans: Vec<(&'static str, &'static str, bool)>,
    notice: &'static str,
}

#[derive(Deserialize, Default)]
pub struct TenantQuery {
    done: Option<String>,
}

pub async fn tenant(
    State(state): State<AppState>,
    op: OperatorPage,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Response {
    let Ok(id) = id.parse::<TenantId>() else {
        return error_page(ApiError::not_found());
    };
    let t = match operators::get_tenant(&state, &op.ctx, id).await {
        Ok(t) => t,
        Err(e) => return error_page(e.into()),
    };
    // Its row of the list: what it holds this month.
    let only = TenantFilter {
        id: Some(t.id),
        ..TenantFilter::default()
    };
    let summary = operators::tenant_summaries(&state, &op.ctx, &only, Page::first(1))
        .await
        .ok()
        .and_then(|v| v.into_iter().next());
    let mut facts = vec![
        (
            "Plan",
            cortex_core::plans::plan_or_default(&t.plan).name.to_owned(),
        ),
        ("Status", t.status.as_str().to_owned()),
        (
            "Created",
            t.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        ("Id", t.id.to_string()),
    ];
    if let Some(s) = &summary {
        facts.push(("Documents", s.documents.to_string()));
        facts.push((
            "Conversations this month",
            s.conversations_since.to_string(),
        ));
    }
    page(&TenantPage {
        chrome: Chrome::operator(&op, "/operator"),
        id: t.id.to_string(),
        name: t.name.clone(),
        status: t.status.as_str(),
        suspended: t.status == TenantStatus::Suspended,
        facts,
        plans: default_catalogue()
            .into_iter()
            .map(|p| (p.id, p.name, p.id == t.plan))
            .collect(),
        notice: match q.done.as_deref() {
            Some("plan") => "The plan is changed.",
            Some("suspended") => {
                "The tenant is suspended: its members see that it is, and the bot does not answer."
            }
            Some("reactivated") => "The tenant is reactivated.",
            _ => "",
        },
    })
}

#[derive(Deserialize)]
pub struct PlanForm {
    plan: String,
}

pub async fn set_plan(
    State(state): State<AppState>,
    op: OperatorPage,
    Path(id): Path<String>,
    PageForm(f): PageForm<PlanForm>,
) -> Response {
    let Ok(tid) = id.parse::<TenantId>() else {
        return error_page(ApiError::not_found());
    };
    match operators::set_plan(&state, op.ctx.actor(), tid, &f.plan).await {
        Ok(_) => Redirect::to(&format!("/operator/tenants/{id}?done=plan")).into_response(),
        Err(e) => error_page(e.into()),
    }
}

pub async fn suspend_page(
    State(state): State<AppState>,
    op: OperatorPage,
    Path(id): Path<String>,
) -> Response {
    let Ok(tid) = id.parse::<TenantId>() else {
        return error_page(ApiError::not_found());
    };
    match operators::get_tenant(&state, &op.ctx, tid).await {
        Ok(t) => page(&ConfirmPage {
            chrome: Chrome::operator(&op, "/operator"),
            title: format!("Suspend {}?", t.name),
            message: "Its members can no longer use the dashboard or the API, and the bot stops answering on every channel, until you reactivate it. Nothing is deleted.".into(),
            action: format!("/operator/tenants/{id}/suspend"),
            confirm: "Suspend the tenant",
            cancel: format!("/operator/tenants/{id}"),
        }),
        Err(e) => error_page(e.into()),
    }
}

async fn set_suspended(state: &AppState, op: &OperatorPage, id: &str, suspended: bool) -> Response {
    let Ok(tid) = id.parse::<TenantId>() else {
        return error_page(ApiError::not_found());
    };
    match operators::set_suspended(state, op.ctx.actor(), tid, suspended).await {
        Ok(_) => Redirect::to(&format!(
            "/operator/tenants/{id}?done={}",
            if suspended {
                "suspended"
            } else {
                "reactivated"
            }
        ))
        .into_response(),
        Err(e) => error_page(e.into()),
    }
}

pub async fn suspend(
    State(state): State<AppState>,
    op: OperatorPage,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    set_suspended(&state, &op, &id, true).await
}

pub async fn reactivate(
    State(state): State<AppState>,
    op: OperatorPage,
    Path(id): Path<String>,
    PageForm(_): PageForm<Empty>,
) -> Response {
    set_suspended(&state, &op, &id, false).await
}
