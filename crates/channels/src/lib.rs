//! What messaging providers send CortexLayer, read and verified — the untrusted bytes of the
//! channel webhooks, with no I/O, so that the server stays thin here and the parsers can be
//! fuzzed on their own (`fuzz/`).
//!
//! - [`event`]: what a webhook delivery brings, whichever provider sent it.
//! - [`meta`]: Meta's handshake, `X-Hub-Signature-256`, payloads and `signed_request`.
//! - [`twilio`]: Twilio's `X-Twilio-Signature` and form-encoded webhooks.
//! - [`manychat`]: ManyChat's per-page webhook body and key.

pub mod event;
pub mod manychat;
pub mod meta;
pub mod twilio;
