//! Messaging channels a tenant connects: a WhatsApp Business number, a Facebook page
//! (Messenger) or an Instagram account, each known by its asset id at Meta and reached with an
//! access token kept sealed at rest (the server's `infra::secrets`; this crate only carries the
//! sealed text).
//!
//! An asset belongs to one tenant at a time: webhooks arrive for all tenants at one endpoint
//! and are routed by the asset id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::conversations::Channel;
use crate::ids::{
    ChannelConnectionId, InboundMessageId, OauthFlowId, OutboundMessageId, TenantId, UserId,
};
use crate::knowledge::string_enum;

/// How long after a customer's last message Meta's channels (WhatsApp, Messenger, Instagram)
/// accept free-form replies.
pub const SERVICE_WINDOW_HOURS: i64 = 24;

/// The channels a tenant connects with an asset id and a credential.
pub const CONNECTABLE: [Channel; 4] = [
    Channel::WhatsApp,
    Channel::Messenger,
    Channel::Instagram,
    Channel::ManyChat,
];

string_enum!(
    /// Who carries a connection's messages: Meta's own APIs (WhatsApp Cloud API, Messenger,
    /// Instagram), Twilio (WhatsApp through a Twilio sender) or ManyChat (a ManyChat page's
    /// flows).
    Provider { Meta => "meta", Twilio => "twilio", ManyChat => "manychat" }
);

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelConnection {
    pub id: ChannelConnectionId,
    pub tenant_id: TenantId,
    pub kind: Channel,
    pub provider: Provider,
    /// Meta: the phone number id (WhatsApp), page id (Messenger) or Instagram account id.
    /// Twilio: the WhatsApp sender's number in E.164 (`+14155238886`). ManyChat: the page id.
    pub asset_id: String,
    /// Twilio: the account SID (`AC…`) the number belongs to.
    pub account_id: Option<String>,
    pub name: String,
    /// The credential, sealed (`v1.<key id>.<…>`); never shown: Meta's access token, the
    /// Twilio account's auth token (empty: the platform's Twilio account) or the ManyChat API
    /// key.
    #[serde(skip)]
    pub sealed_token: String,
    /// The token's last four characters, to tell tokens apart.
    pub token_hint: String,
    /// WhatsApp: the approved template (name, language code) sent instead of free text when
    /// the customer's last message is more than 24 hours old.
    pub template: Option<(String, String)>,
    /// ManyChat: what the webhook answers at once, before the answer follows (e.g. "OK, bien
    /// reçu"); `None` says nothing.
    pub ack_text: Option<String>,
    /// When a call to the provider with the credential proved it controls the asset; `None`
    /// for connections made before that check existed, which yield to a proven claim.
    pub verified_at: Option<DateTime<Utc>>,
    /// Where the app's webhook subscription lives at Meta (the page for Messenger and
    /// Instagram, the WhatsApp Business Account when known), to unsubscribe on disconnect.
    pub webhook_target: Option<String>,
    /// When the provider refused the credential on a send (expired or revoked): the tenant
    /// must connect it again.
    pub token_invalid_at: Option<DateTime<Utc>>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A sealed secret to re-seal under a new key: its row and its sealed text.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedSecret {
    pub tenant_id: TenantId,
    pub connection: ChannelConnectionId,
    pub sealed: String,
}

/// What a customer sent on a messaging channel, whichever provider carried it. Stored as
/// JSON tagged by `type`: `{"type": "text", "text": …}`, `{"type": "reply", "payload": …,
/// "text": …}`, `{"type": "media", "kind": …, "reference": …, "caption": …}`,
/// `{"type": "unsupported", "kind": …}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundContent {
    Text {
        text: String,
    },
    /// A tapped quick reply or button: its payload (and the text shown).
    Reply {
        payload: String,
        text: String,
    },
    /// An image, audio, video, document, sticker or location: kept as a reference.
    Media {
        kind: String,
        reference: String,
        #[serde(default)]
        caption: Option<String>,
    },
    /// Something this version does not read (reactions, orders, system messages…): its kind.
    Unsupported {
        kind: String,
    },
}

impl InboundContent {
    /// The text the bot answers: the message's text, or a tapped reply's text (its payload
    /// when it shows none). `None` for media and what is not read.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Text { text } => Some(text),
            Self::Reply { payload, text } if text.is_empty() => Some(payload),
            Self::Reply { text, .. } => Some(text),
            Self::Media { .. } | Self::Unsupported { .. } => None,
        }
    }

    /// What the customer sent as a person reads it in the inbox: the text, or media as
    /// `[kind] caption`; `None` for what is not read.
    pub fn for_a_person(&self) -> Option<String> {
        match self {
            Self::Media { kind, caption, .. } => Some(match caption {
                Some(c) if !c.is_empty() => format!("[{kind}] {c}"),
                _ => format!("[{kind}]"),
            }),
            other => other.text().map(str::to_owned),
        }
    }
}

/// A customer's message as a channel delivered it: stored once per provider message id before
/// the webhook is acknowledged, answered later by a job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InboundMessage {
    pub id: InboundMessageId,
    pub tenant_id: TenantId,
    pub connection_id: ChannelConnectionId,
    /// The provider's id of the message (`wamid.…`, `m_…`): unique per connection.
    pub provider_message_id: String,
    /// The customer's id on the channel (a phone number, a page-scoped id). Never logged.
    pub customer: String,
    /// What was sent.
    pub content: InboundContent,
    /// When the customer sent it, by the provider's clock.
    pub sent_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Set once, when the answer job finished with it.
    pub answered_at: Option<DateTime<Utc>>,
    /// Why the answer could not be delivered, when it could not.
    pub error: Option<String>,
}

string_enum!(
    /// Where a sent message stands, as the provider reports it. Only moves forward:
    /// sent → delivered → read; failed is final.
    DeliveryStatus {
        Sent => "sent",
        Delivered => "delivered",
        Read => "read",
        Failed => "failed",
    }
);

impl DeliveryStatus {
    /// Order of the statuses; a report never moves a message back.
    pub fn rank(self) -> i32 {
        match self {
            Self::Sent => 1,
            Self::Delivered => 2,
            Self::Read => 3,
            Self::Failed => 4,
        }
    }
}

/// A message sent to a customer (one per provider message: a long answer split in parts is
/// several).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboundMessage {
    pub id: OutboundMessageId,
    pub tenant_id: TenantId,
    pub connection_id: ChannelConnectionId,
    /// The customer's message this answers.
    pub inbound_id: Option<InboundMessageId>,
    /// The provider's id (`wamid.…`, `m_…`): what delivery statuses name.
    pub provider_message_id: String,
    pub status: DeliveryStatus,
    /// The provider's error code and title, for `failed`.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a provider's data-deletion request on behalf of a person deleted, under the code the
/// person can look it up by.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataDeletion {
    pub code: String,
    pub provider: Provider,
    /// Conversations deleted, with their messages.
    pub conversations: u64,
    /// The person's messages as channels delivered them.
    pub messages: u64,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A member connecting Meta assets through Meta's OAuth dialog: started (a single-use state
/// for the dialog, bound to the member's browser), then authorized (the assets Meta's token
/// reaches, with their tokens sealed), then consumed when the member picks assets to connect.
#[derive(Clone, Debug, PartialEq)]
pub struct OauthFlow {
    pub id: OauthFlowId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub kind: Channel,
    /// SHA-256 of the `state` given to Meta's dialog.
    pub state_hash: String,
    /// SHA-256 of the cookie set in the member's browser when the flow started.
    pub browser_hash: String,
    /// The dashboard path the member returns to.
    pub return_path: String,
    /// Set when Meta sent the member back: the assets found, as sealed JSON.
    pub sealed_assets: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_reads_the_rows_stored_before_it_was_typed_and_writes_the_same_shape() {
        // As `channels::inbound` wrote them with `json!` before the enum existed.
        let stored = [
            (
                json!({ "type": "text", "text": "Is it in stock?" }),
                InboundContent::Text {
                    text: "Is it in stock?".into(),
                },
            ),
            (
                json!({ "type": "reply", "payload": "ORDER_STATUS", "text": "" }),
                InboundContent::Reply {
                    payload: "ORDER_STATUS".into(),
                    text: String::new(),
                },
            ),
            (
                json!({ "type": "media", "kind": "image", "reference": "m-1", "caption": null }),
                InboundContent::Media {
                    kind: "image".into(),
                    reference: "m-1".into(),
                    caption: None,
                },
            ),
            (
                json!({ "type": "unsupported", "kind": "reaction" }),
                InboundContent::Unsupported {
                    kind: "reaction".into(),
                },
            ),
        ];
        for (json, content) in stored {
            assert_eq!(
                serde_json::from_value::<InboundContent>(json.clone()).ok(),
                Some(content.clone())
            );
            assert_eq!(serde_json::to_value(&content).ok(), Some(json));
        }
        assert!(serde_json::from_value::<InboundContent>(json!({ "type": "poll" })).is_err());
    }

    #[test]
    fn the_bot_reads_text_and_replies_and_a_person_also_sees_media() {
        let reply = |text: &str| InboundContent::Reply {
            payload: "HOURS".into(),
            text: text.into(),
        };
        assert_eq!(
            InboundContent::Text { text: "hi".into() }.text(),
            Some("hi")
        );
        assert_eq!(reply("Opening hours").text(), Some("Opening hours"));
        assert_eq!(reply("").text(), Some("HOURS"));
        let photo = |caption: Option<&str>| InboundContent::Media {
            kind: "image".into(),
            reference: "m-1".into(),
            caption: caption.map(str::to_owned),
        };
        assert_eq!(photo(Some("broken lid")).text(), None);
        assert_eq!(
            photo(Some("broken lid")).for_a_person().as_deref(),
            Some("[image] broken lid")
        );
        assert_eq!(photo(Some("")).for_a_person().as_deref(), Some("[image]"));
        assert_eq!(photo(None).for_a_person().as_deref(), Some("[image]"));
        assert_eq!(
            InboundContent::Unsupported {
                kind: "reaction".into(),
            }
            .for_a_person(),
            None
        );
    }
}
