//! The Overview: the last 7 days' conversations and messages by channel (a chart with the
//! same numbers in a table beside it), the shares of answers, abstentions and handoffs, the
//! median time to answer, the bot's on/off switch, and the getting-started checklist read
//! from the tenant's real state (documents, a first question, a widget key, a channel, a
//! second member).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, NaiveDate, Utc};
use cortex_core::conversations::ConversationFilter;
use cortex_core::conversations::{ActivityStats, Channel};
use cortex_core::store::Page;
use serde::Deserialize;

use super::pages::{Chrome, error_page, page};
use super::session::{Member, PageForm};
use crate::app::AppState;
use crate::tenancy::{Action, team};
use crate::{answer, channels, conversations, knowledge, widget};

pub struct Step {
    pub title: &'static str,
    pub detail: &'static str,
    pub done: bool,
}

/// The week's numbers: one row per day, one column per channel that had conversations.
pub struct Week {
    pub channels: Vec<&'static str>,
    /// (ISO day, label, conversations per channel, messages that day)
    pub days: Vec<(String, String, Vec<u64>, u64)>,
    pub conversations_today: u64,
    pub messages_today: u64,
    pub conversations: u64,
    pub answered_share: String,
    pub abstained_share: String,
    pub handed_off_share: String,
    pub median_latency: String,
    pub empty: bool,
}

fn channel_label(c: Channel) -> &'static str {
    match c {
        Channel::Widget => "Widget",
        Channel::WhatsApp => "WhatsApp",
        Channel::Messenger => "Messenger",
        Channel::Instagram => "Instagram",
        Channel::ManyChat => "ManyChat",
        Channel::Email => "Email",
        Channel::Api => "API",
        Channel::OpenAi => "OpenAI API",
        Channel::Dashboard => "Test console",
    }
}

fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "—".into()
    } else {
        format!("{:.0} %", part as f64 * 100.0 / whole as f64)
    }
}

impl Week {
    fn new(stats: &ActivityStats, today: NaiveDate) -> Self {
        let mut channels: Vec<Channel> = Vec::new();
        for d in &stats.daily {
            if !channels.contains(&d.channel) {
                channels.push(d.channel);
            }
        }
        let days: Vec<(String, String, Vec<u64>, u64)> = (0..7)
            .rev()
            .map(|back| today - Duration::days(back))
            .map(|day| {
                let of_day = stats.daily.iter().filter(|d| d.day == day);
                let per_channel = channels
                    .iter()
                    .map(|c| {
                        of_day
                            .clone()
                            .filter(|d| d.channel == *c)
                            .map(|d| d.conversations)
                            .sum()
                    })
                    .collect();
                let messages = stats
                    .daily_messages
                    .iter()
                    .filter(|(d, _)| *d == day)
                    .map(|(_, n)| n)
                    .sum();
                (
                    day.to_string(),
                    day.format("%a %-d %b").to_string(),
                    per_channel,
                    messages,
                )
            })
            .collect();
        let (today_row, conversations) = (
            days.last().cloned().unwrap_or_default(),
            stats.daily.iter().map(|d| d.conversations).sum::<u64>(),
        );
        Self {
            channels: channels.into_iter().map(channel_label).collect(),
            conversations_today: today_row.2.iter().sum(),
            messages_today: today_row.3,
            conversations,
            answered_share: share(
                stats.answers - stats.abstained.min(stats.answers),
                stats.answers,
            ),
            abstained_share: share(stats.abstained, stats.answers),
            handed_off_share: share(stats.handed_off, conversations),
            median_latency: stats
                .median_latency_ms
                .map_or_else(|| "—".into(), |ms| format!("{ms} ms")),
            empty: stats.daily.is_empty(),
            days,
        }
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    welcome: bool,
    tenant: String,
    plan: String,
    bot_enabled: Option<bool>,
    can_switch: bool,
    week: Option<Week>,
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
    let today = Utc::now().date_naive();
    let since = (today - Duration::days(6))
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .unwrap_or_else(Utc::now);
    let week = match conversations::activity(&state, ctx, since).await {
        Ok(stats) => Some(Week::new(&stats, today)),
        Err(e) => return error_page(e.into()),
    };
    page(&OverviewPage {
        chrome: Chrome::member(&member, "/overview").with_charts(),
        can_switch: ctx.require(Action::ManageBot).is_ok(),
        week,
        welcome: q.welcome.is_some(),
        tenant: ctx.tenant().name.clone(),
        plan: ctx.plan().name.to_owned(),
        bot_enabled,
        done: steps.iter().filter(|s| s.done).count(),
        steps,
    })
}

#[derive(Deserialize)]
pub struct SwitchForm {
    enabled: String,
}

/// `POST /overview/bot`: switches the bot on or off, keeping every other setting.
pub async fn switch_bot(
    State(state): State<AppState>,
    member: Member,
    PageForm(f): PageForm<SwitchForm>,
) -> Response {
    let result = async {
        let mut settings = answer::get_bot(&state, &member.ctx).await?.settings;
        settings.enabled = f.enabled == "true";
        answer::put_bot(&state, &member.ctx, settings).await
    }
    .await;
    match result {
        Ok(_) => Redirect::to("/overview").into_response(),
        Err(e) => error_page(e.into()),
    }
}
