//! Messages in and out of channels: inbound messages and outbound deliveries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Result;
use crate::channels::{DeliveryStatus, InboundMessage, OutboundMessage};
use crate::ids::{ChannelConnectionId, InboundMessageId, TenantId};
use crate::jobs::NewJob;

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Stores a customer's message and enqueues `job` (its answer) in one transaction — unless
    /// a message with the same provider id arrived on this connection before, in which case
    /// nothing changes. Returns whether it was new. Any number of concurrent deliveries of one
    /// message store it once.
    async fn record_inbound(
        &self,
        tenant: TenantId,
        message: InboundMessage,
        job: NewJob,
    ) -> Result<bool>;

    async fn get_inbound(
        &self,
        tenant: TenantId,
        message: InboundMessageId,
    ) -> Result<InboundMessage>;

    /// The customer's messages on the connection not answered yet, oldest first (by the
    /// provider's time, then arrival), at most `limit`.
    async fn unanswered_inbound(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        customer: &str,
        limit: u32,
    ) -> Result<Vec<InboundMessage>>;

    /// Marks the message answered (with the delivery error, if any) unless it was already, and
    /// then appends `usage` (the messages sent) in the same transaction; returns whether this
    /// call did.
    async fn finish_inbound(
        &self,
        tenant: TenantId,
        message: InboundMessageId,
        at: DateTime<Utc>,
        error: Option<&str>,
        usage: &[crate::usage::UsageEvent],
    ) -> Result<bool>;

    async fn record_outbound(&self, tenant: TenantId, message: OutboundMessage) -> Result<()>;

    /// Applies a delivery status to the sent message with this provider id, only forward
    /// (a late `delivered` after `read` changes nothing); returns whether it changed.
    async fn update_outbound_status(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        provider_message_id: &str,
        status: DeliveryStatus,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool>;

    async fn find_outbound(
        &self,
        tenant: TenantId,
        connection: ChannelConnectionId,
        provider_message_id: &str,
    ) -> Result<Option<OutboundMessage>>;
}
