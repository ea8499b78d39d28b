//! The Overview: the getting-started checklist, read from the tenant's real state (documents,
//! a first question, a widget key, a channel, a second member), and whether the bot answers.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use cortex_core::conversations::ConversationFilter;
use cortex_core::store::Page;
use serde::Deserialize;

use super::pages::{Chrome, page};
use super::session::Member;
use crate::app::AppState;
use crate::tenancy::team;
use crate::{answer, channels, conversations, knowledge, widget};

pub struct Step {
    pub title: &'static str,
    pub detail: &'static str,
    pub done: bool,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    welcome: bool,
    tenant: String,
    plan: String,
    bot_enabled: Option<bool>,
    steps: Vec<Step>,
    done: usize,
}

#[derive(Deserialize)]
pub struct OverviewQuery {
    welcome: Option<String>,
}

pub async fn overview(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<OverviewQuery>,
) -> Response {
    let ctx = &member.ctx;
    // Each step asks the domain with the member's own rights; what a member may not read
    // counts as not done rather than failing the page.
    let documents = knowledge::list(&state, ctx, Page::first(1))
        .await
        .is_ok_and(|d| !d.is_empty());
    let asked = conversations::list(
        &state,
        ctx,
        &ConversationFilter {
            limit: 1,
            ..ConversationFilter::default()
        },
    )
    .await
    .is_ok_and(|c| !c.is_empty());
    let widget = widget::list_keys(&state, ctx)
        .await
        .is_ok_and(|k| k.iter().any(|k| k.revoked_at.is_none()));
    let channel = channels::list(&state, ctx)
        .await
        .is_ok_and(|c| !c.is_empty());
    let members = team::list_members(&state, ctx)
        .await
        .map(|m| m.len())
        .unwrap_or(1);
    let invited = team::list_invitations(&state, ctx)
        .await
        .is_ok_and(|i| !i.is_empty());
    let steps = vec![
        Step {
            title: "Upload your documents",
            detail: "Help articles, FAQs, manuals: what the bot answers from.",
            done: documents,
        },
        Step {
            title: "Ask the bot a question",
            detail: "Try it in the test console and read the sources it cites.",
            done: asked,
        },
        Step {
            title: "Install the widget",
            detail: "Create a widget key and paste its snippet into your site.",
            done: widget,
        },
        Step {
            title: "Connect a channel",
            detail: "WhatsApp, Messenger, Instagram or ManyChat.",
            done: channel,
        },
        Step {
            title: "Invite your team",
            detail: "Agents read conversations; admins set things up.",
            done: members > 1 || invited,
        },
    ];
    let bot_enabled = answer::get_bot(&state, ctx)
        .await
        .ok()
        .map(|b| b.settings.enabled);
    page(&OverviewPage {
        chrome: Chrome::member(&member, "/overview"),
        welcome: q.welcome.is_some(),
        tenant: ctx.tenant().name.clone(),
        plan: ctx.plan().name.to_owned(),
        bot_enabled,
        done: steps.iter().filter(|s| s.done).count(),
        steps,
    })
}
