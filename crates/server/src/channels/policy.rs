//! The channel policy, in one place: may the bot answer a customer's message now, and how.
//!
//! Meta's channels take free text only within 24 hours of the customer's last message. Past
//! it, WhatsApp gets the connection's approved template instead (no answer is composed);
//! Messenger and Instagram allow only message tags, none of which covers a bot's answer
//! (HUMAN_AGENT is for people), so nothing is sent and the message waits for an agent. A
//! plan's monthly WhatsApp allowance, once used, also sends the message to an agent.

use chrono::{DateTime, Duration, Utc};
use cortex_core::channels::{ChannelConnection, SERVICE_WINDOW_HOURS};
use cortex_core::conversations::{Channel, HandoffReason};

/// What the bot may do with a customer's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Answer with free text.
    Answer,
    /// Outside the service window: send the connection's WhatsApp template, compose nothing.
    Template,
    /// Not the bot's to answer: the message waits for an agent. `reason` is the handoff
    /// event's stable code, `why` what the message records.
    Queue { reason: HandoffReason, why: String },
}

/// Whether the message sent at `sent_at` is past the channel's service window at `now`.
pub fn outside_window(kind: Channel, sent_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    matches!(
        kind,
        Channel::WhatsApp | Channel::Messenger | Channel::Instagram
    ) && now - sent_at > Duration::hours(SERVICE_WINDOW_HOURS)
}

/// The policy for a message on `connection` sent at `sent_at`, at `now`. `allowance_used`
/// says why the plan's allowance for the channel is used up (read only when the window alone
/// does not send the message to an agent).
pub async fn decide<E, F>(
    connection: &ChannelConnection,
    sent_at: DateTime<Utc>,
    now: DateTime<Utc>,
    allowance_used: F,
) -> Result<Policy, E>
where
    F: std::future::Future<Output = Result<Option<String>, E>>,
{
    let outside = outside_window(connection.kind, sent_at, now);
    let template = connection.kind == Channel::WhatsApp && connection.template.is_some();
    if outside && !template {
        let why = if connection.kind == Channel::WhatsApp {
            "outside the 24-hour window and no template is configured: queued for an agent"
        } else {
            "outside the 24-hour window: only a person may answer (HUMAN_AGENT tag); queued for an agent"
        };
        return Ok(Policy::Queue {
            reason: HandoffReason::OutsideWindow,
            why: why.to_owned(),
        });
    }
    // A template is a message too: it counts against the allowance.
    if let Some(why) = allowance_used.await? {
        return Ok(Policy::Queue {
            reason: HandoffReason::AllowanceUsed,
            why: format!("{why}: queued for an agent"),
        });
    }
    Ok(if outside {
        Policy::Template
    } else {
        Policy::Answer
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_core::channels::Provider;
    use cortex_core::ids::{ChannelConnectionId, TenantId};

    fn connection(kind: Channel, template: bool) -> ChannelConnection {
        ChannelConnection {
            id: ChannelConnectionId::new(),
            tenant_id: TenantId::new(),
            kind,
            provider: Provider::Meta,
            asset_id: "1".into(),
            account_id: None,
            name: "n".into(),
            sealed_token: String::new(),
            token_hint: String::new(),
            template: template.then(|| ("hello".to_owned(), "en".to_owned())),
            ack_text: None,
            verified_at: None,
            webhook_target: None,
            token_invalid_at: None,
            created_by: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    async fn policy(kind: Channel, template: bool, hours_ago: i64, used: Option<&str>) -> Policy {
        let now = Utc::now();
        let used = used.map(str::to_owned);
        decide::<(), _>(
            &connection(kind, template),
            now - Duration::hours(hours_ago),
            now,
            async { Ok(used) },
        )
        .await
        .expect("policy")
    }

    #[tokio::test]
    async fn the_window_then_the_allowance_decide() {
        assert_eq!(
            policy(Channel::WhatsApp, false, 1, None).await,
            Policy::Answer
        );
        assert_eq!(
            policy(Channel::WhatsApp, true, 25, None).await,
            Policy::Template
        );
        for kind in [Channel::WhatsApp, Channel::Messenger, Channel::Instagram] {
            assert!(matches!(
                policy(kind, false, 25, None).await,
                Policy::Queue {
                    reason: HandoffReason::OutsideWindow,
                    ..
                }
            ));
        }
        // Channels without a service window answer whenever the message came.
        assert_eq!(
            policy(Channel::ManyChat, false, 48, None).await,
            Policy::Answer
        );
        assert!(matches!(
            policy(Channel::WhatsApp, false, 1, Some("the plan's 1000 WhatsApp messages this month are used")).await,
            Policy::Queue { reason: HandoffReason::AllowanceUsed, why } if why.ends_with(": queued for an agent")
        ));
        // A template counts against the allowance like any message.
        assert!(matches!(
            policy(Channel::WhatsApp, true, 25, Some("used")).await,
            Policy::Queue {
                reason: HandoffReason::AllowanceUsed,
                ..
            }
        ));
    }
}
