//! Messaging channels a tenant connects: a WhatsApp Business number, a Facebook page
//! (Messenger) or an Instagram account, each known by its asset id at Meta and reached with an
//! access token kept sealed at rest (the server's `infra::secrets`; this crate only carries the
//! sealed text).
//!
//! An asset belongs to one tenant at a time: webhooks arrive for all tenants at one endpoint
//! and are routed by the asset id.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::answer::Channel;
use crate::ids::{ChannelConnectionId, TenantId, UserId};

/// The channels connected with an asset id and an access token.
pub const CONNECTABLE: [Channel; 3] = [Channel::WhatsApp, Channel::Messenger, Channel::Instagram];

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelConnection {
    pub id: ChannelConnectionId,
    pub tenant_id: TenantId,
    pub kind: Channel,
    /// The phone number id (WhatsApp), page id (Messenger) or Instagram account id.
    pub asset_id: String,
    pub name: String,
    /// The access token, sealed (`v1.<key id>.<…>`); never shown.
    #[serde(skip)]
    pub sealed_token: String,
    /// The token's last four characters, to tell tokens apart.
    pub token_hint: String,
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
