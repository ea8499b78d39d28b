//! Models: the local all-MiniLM-L6-v2 embedder (candle), OpenAI-compatible embedding and chat
//! clients, the fallback chain and the extractive answerer. Knows nothing of tenants or storage.
//!
//! Empty until the answer-engine issue lands; it is its own crate so that candle's long build
//! never sits in `server`'s incremental rebuilds.
