//! Document ingestion: content sniffing, bounded parsers (PDF, DOCX, HTML, Markdown, text) and
//! structure-aware chunking. Pure functions over bytes: this crate knows nothing of tenants,
//! databases or HTTP, so it can be fuzzed and benchmarked on its own.
//!
//! Empty until the knowledge-base issue lands; the crate exists now so that the heavy parser
//! dependencies never end up in `server`'s own compile unit.
