//! Models: the local all-MiniLM-L6-v2 embedder on CPU (our own BERT forward pass on `gemm`;
//! candle reads the weights) and a cross-encoder reranker on the same encoder. Later: OpenAI-compatible
//! embedding and chat clients, the fallback chain and the extractive answerer. Knows nothing
//! of tenants or storage.
//!
//! It is its own crate so that the numeric dependencies' long build never sits in `server`'s
//! incremental rebuilds.

pub mod cross;
pub mod encoder;
pub mod extractive;
pub mod minilm;

pub use cross::CrossEncoder;
pub use minilm::{EmbedError, MiniLm, Sequence};
