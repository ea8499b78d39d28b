//! Search, written once for every store. The stores supply rows (their `SearchSource` of
//! `cortex_core::store`); what is done with them lives here:
//!
//! - [`lexical`]: the per-tenant BM25 index with its per-language analysis, and its cache.
//! - [`vectors`]: the exact in-process vector scan (an int8 pass, then `f32` re-scoring) and
//!   its cache.
//! - Both caches decide how a tenant's index catches up with the store — reused, appended to,
//!   or rebuilt whole — with the same two calls (`plan`, then `refresh` with the rows the
//!   plan asked for), so each store only reads rows in one snapshot.
//! - [`hybrid`]: both lists fused by score, parent-child (chunks re-scored by their best
//!   window).

pub mod hybrid;
pub mod lexical;
pub mod vectors;
