//! The `cortexlayer` binary as a library, so the API tests can start the real router.
//!
//! - [`config`]: the `Settings` tree (defaults → `cortexlayer.toml` → environment).
//! - [`app`]: shared state (`AppState`) and opening the store the `DATABASE_URL` chooses.
//! - [`tenancy`]: tenants, members, credentials, operators — the domain, free of HTTP.
//! - [`knowledge`]: documents, their processing pipeline (jobs) and search.
//! - [`answer`]: the answer engine: bot settings, and the composer (retrieval, prompts, model
//!   chains, extractive answers) that turns a message into a draft with a typed outcome.
//! - [`conversations`]: opening or joining a conversation, recording turns, queueing for an
//!   agent; conversations as the team reads them (list, one with its messages).
//! - [`metering`]: every usage-ledger line, built from answered turns and channel sends.
//! - [`channels`]: messaging channels a tenant connects (sealed tokens, plan gating).
//! - [`jobs`]: the job layer: typed jobs, their registry, the runner (workers) and the scheduler.
//! - [`infra`]: password hashing, tokens, email, rate limiting, blobs, the local embedder.
//! - [`http`]: the router, middleware, error envelope, extractors, OpenAPI and docs page.
//! - [`mod@bench`]: `cortexlayer bench` (search latency, ingestion speed).
//! - [`cli`]: the command line (`serve`, `migrate`, `admin`, `config`).
//! - [`telemetry`]: logging setup.

pub mod answer;
pub mod app;
pub mod bench;
pub mod bench_load;
pub mod channels;
pub mod cli;
pub mod config;
pub mod conversations;
pub mod eval;
pub mod eval_answers;
pub mod http;
pub mod infra;
pub mod jobs;
pub mod knowledge;
pub mod metering;
pub mod telemetry;
pub mod tenancy;
pub mod widget;
