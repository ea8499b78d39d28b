//! What a channel's webhook delivery brings, whichever provider sent it: customers' messages
//! and delivery statuses of the messages we sent, each naming the asset that routes it to its
//! tenant.

use cortex_core::channels::InboundContent;
use cortex_core::conversations::Channel;

#[derive(Clone, Debug, PartialEq)]
pub struct Inbound {
    pub channel: Channel,
    /// The asset the message was sent to: Meta's phone number id, page id or Instagram
    /// account id; Twilio's sender number; the ManyChat page id.
    pub asset_id: String,
    /// The customer: a phone number (WhatsApp, E.164 digits at Meta, `+…` at Twilio), a
    /// page-scoped id or a ManyChat subscriber id.
    pub from: String,
    /// The provider's id of the message (`wamid.…`, `m_…`, `SM…`): the deduplication key.
    pub provider_id: String,
    /// When the customer sent it, Unix seconds (normalised from Meta's milliseconds for
    /// Messenger and Instagram; the time of receipt where the provider gives none).
    pub timestamp: i64,
    pub content: InboundContent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    Delivered,
    Read,
    Failed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub channel: Channel,
    pub asset_id: String,
    /// The id of our outbound message.
    pub provider_id: String,
    pub status: Delivery,
    /// The provider's error code and title for `Failed`.
    pub error: Option<(i64, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Message(Inbound),
    Status(Status),
}
