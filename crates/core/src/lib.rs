//! The heart of CortexLayer that every other crate shares: typed ids, the tenancy and access
//! domain (tenants, users, roles, credentials, audit events), the plan catalogue and the ports
//! (traits) that storage backends implement.
//!
//! This crate knows no axum, sqlx or reqwest: it is plain data and rules, so the storage
//! crates and the server can depend on it without pulling each other in.
//!
//! - [`ids`]: UUIDv7 newtypes, one per entity, so a `UserId` can never be passed as a `TenantId`.
//! - [`tenancy`]: tenants, users, roles, email addresses, invitations, verification codes.
//! - [`credentials`]: API keys and scopes, refresh tokens, platform admins.
//! - [`audit`]: the audit trail's events.
//! - [`jobs`]: the durable job queue's data and backoff rule.
//! - [`knowledge`]: documents, chunks, search hits and the vector maths the stores share.
//! - [`answer`]: the bot's settings and their validation.
//! - [`conversations`]: channels, conversations, messages with their citations, handoff events.
//! - [`usage`]: the usage ledger's lines.
//! - [`channels`]: messaging channels a tenant connects (WhatsApp, Messenger, Instagram) and
//!   what their customers send (`InboundContent`).
//! - [`plans`]: the default plan catalogue and its limits.
//! - [`ports`]: the embedding model, chat model and blob store ports.
//! - [`store`]: the `Store` port and its error type.

pub mod answer;
pub mod audit;
pub mod channels;
pub mod conversations;
pub mod credentials;
pub mod ids;
pub mod jobs;
pub mod knowledge;
pub mod language;
pub mod plans;
pub mod ports;
pub mod store;
pub mod tenancy;
pub mod usage;
pub mod widget;

pub use store::{Store, StoreError};
