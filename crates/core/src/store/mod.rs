//! The storage ports: one trait per area of the data, implemented by `cortex-store-sqlite` and
//! `cortex-store-postgres` (one file per area in each) and checked by the shared conformance
//! suite (the same files again). [`Store`] is their sum, so `Arc<dyn Store>` reaches every
//! method, and a domain function that needs one area can take that trait alone (an
//! `Arc<dyn Store>` coerces to `Arc<dyn KnowledgeStore>`).
//!
//! Every method on tenant data takes the [`TenantId`](crate::ids::TenantId) first, and a row of
//! another tenant is `NotFound`, never "forbidden": a tenant cannot even learn that another
//! tenant's id exists. The few methods without a tenant are the *credential lookups* (an email
//! at login, the hash of an API key, refresh token or invitation token, a widget's public key, a
//! webhook's target): the credential is what tells us the tenant, and each returns the row with
//! its `tenant_id` so the caller continues scoped — and platform maintenance (key rotation,
//! the job queue's sweeps).

mod audit;
mod backend;
mod bot;
mod channels;
mod conversations;
mod credentials;
mod delivery;
mod jobs;
mod knowledge;
mod search;
mod tenants;
mod usage;
mod widget;

pub use audit::AuditStore;
pub use backend::Backend;
pub use bot::BotStore;
pub use channels::ChannelStore;
pub use conversations::ConversationStore;
pub use credentials::CredentialStore;
pub use delivery::DeliveryStore;
pub use jobs::JobStore;
pub use knowledge::KnowledgeStore;
pub use search::SearchSource;
pub use tenants::TenantStore;
pub use usage::UsageStore;
pub use widget::WidgetStore;

use crate::credentials::RefreshToken;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, or belongs to another tenant.
    #[error("not found")]
    NotFound,
    /// A rule held by the store refused the change; the code is stable (e.g. `email_taken`,
    /// `last_owner`, `invitation_used`).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Anything else: connection loss, a bug, corrupt data. Logged, shown as a 500.
    #[error("storage failure")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn other(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Other(Box::new(e))
    }
}

/// Conflict codes the stores emit.
pub mod conflict {
    pub const EMAIL_TAKEN: &str = "email_taken";
    pub const LAST_OWNER: &str = "last_owner";
    pub const INVITATION_USED: &str = "invitation_used";
    pub const ALREADY_REVOKED: &str = "already_revoked";
    pub const LEASE_LOST: &str = "lease_lost";
    pub const DOCUMENT_LIMIT_REACHED: &str = "document_limit_reached";
    /// A job of an older generation of a document tried to change it after reprocessing
    /// started a newer one.
    pub const STALE_GENERATION: &str = "stale_generation";
    /// A document with this id exists already (crawls create their pages idempotently).
    pub const DOCUMENT_EXISTS: &str = "document_exists";
    /// A new conversation's id is taken.
    pub const CONVERSATION_EXISTS: &str = "conversation_exists";
    /// The channel asset (a WhatsApp number, a page) is connected already, here or elsewhere.
    pub const CHANNEL_TAKEN: &str = "channel_taken";
    pub const DELETION_CODE_TAKEN: &str = "deletion_code_taken";
}

/// A page of a list ordered by creation, newest first.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub limit: u32,
    /// Only rows created strictly before this one (cursor of the previous page's last row).
    pub before: Option<uuid::Uuid>,
}

impl Page {
    pub const MAX_LIMIT: u32 = 200;

    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            before: None,
        }
    }
}

/// What consuming a refresh token found.
#[derive(Clone, Debug, PartialEq)]
pub enum RefreshUse {
    /// The token was fresh and is now used; issue its successor.
    Fresh(RefreshToken),
    /// The token had been used before (or revoked): a stolen copy may be in play.
    Reused(RefreshToken),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Every storage port: what a backend implements. Blanket-implemented for any type that
/// implements all of them, so a backend writes only the area traits.
pub trait Store:
    Backend
    + TenantStore
    + CredentialStore
    + JobStore
    + KnowledgeStore
    + SearchSource
    + BotStore
    + ConversationStore
    + UsageStore
    + ChannelStore
    + DeliveryStore
    + WidgetStore
    + AuditStore
    + 'static
{
}

impl<T> Store for T where
    T: Backend
        + TenantStore
        + CredentialStore
        + JobStore
        + KnowledgeStore
        + SearchSource
        + BotStore
        + ConversationStore
        + UsageStore
        + ChannelStore
        + DeliveryStore
        + WidgetStore
        + AuditStore
        + 'static
{
}
