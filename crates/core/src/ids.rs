//! Typed identifiers. Every entity gets its own UUIDv7 newtype: time-ordered (good index
//! locality, sortable by creation) and impossible to mix up at compile time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A tenant: one business using CortexLayer.
    TenantId
);
id_type!(
    /// A member of a tenant's team.
    UserId
);
id_type!(
    /// An operator account (platform admin); belongs to no tenant.
    PlatformAdminId
);
id_type!(
    /// A tenant API key.
    ApiKeyId
);
id_type!(
    /// A pending or used invitation to join a tenant.
    InvitationId
);
id_type!(
    /// One refresh token.
    RefreshTokenId
);
id_type!(
    /// A chain of refresh tokens descending from one login; reuse of any member revokes it all.
    TokenFamilyId
);
id_type!(
    /// One emailed password reset.
    PasswordResetId
);
id_type!(
    /// A member's change of sign-in address, waiting for the code mailed to the new one.
    EmailChangeId
);
id_type!(
    /// One entry of the audit log.
    AuditEventId
);
id_type!(
    /// A background job.
    JobId
);
id_type!(
    /// A document of a tenant's knowledge base.
    DocumentId
);
id_type!(
    /// One chunk of a document.
    ChunkId
);
id_type!(
    /// A conversation between a customer and a tenant's bot (and later its agents).
    ConversationId
);
id_type!(
    /// One message of a conversation.
    MessageId
);
id_type!(
    /// One entry of the usage ledger.
    UsageEventId
);
id_type!(
    /// An event of a conversation for the inbox (a handoff request).
    ConversationEventId
);
id_type!(
    /// A messaging channel a tenant connected (a WhatsApp number, a Facebook page…).
    ChannelConnectionId
);
id_type!(
    /// A message a customer sent through a channel, as received from the provider.
    InboundMessageId
);
id_type!(
    /// A message sent to a customer through a channel.
    OutboundMessageId
);
id_type!(
    /// A public key of the web widget.
    WidgetKeyId
);
id_type!(
    /// A signup waiting for its emailed code; it becomes a tenant and an owner only when verified.
    SignupId
);
id_type!(
    /// A Meta OAuth connection flow: started by a member, authorized at Meta, then chosen from.
    OauthFlowId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let id = TenantId::new();
        let parsed: TenantId = id.to_string().parse().expect("parses");
        assert_eq!(id, parsed);
    }

    #[test]
    fn ids_made_later_sort_after_earlier_ones() {
        let a = UserId::new();
        let b = UserId::new();
        assert!(a < b);
    }
}
