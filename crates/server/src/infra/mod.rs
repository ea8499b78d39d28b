//! Technical services the domain modules use through small interfaces: password hashing,
//! token minting and checking, outgoing email, rate limiting, blob storage, the local
//! embedding model and rerankers. Nothing here knows HTTP.

pub mod blobs;
pub mod embed_cache;
pub mod embedder;
pub mod encoder_queue;
pub mod fetch;
pub mod keyed_lock;
pub mod local_reranker;
pub mod mailer;
pub mod manychat;
pub mod meta_graph;
pub mod openai_chat;
pub mod openai_embedder;
pub mod outbound;
pub mod passwords;
pub mod ratelimit;
pub mod remote_reranker;
pub mod s3;
pub mod secrets;
pub mod tokens;
pub mod twilio;
