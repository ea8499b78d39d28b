//! Document ingestion: content sniffing, bounded parsers and structure-aware chunking.
//! Pure functions over bytes: this crate knows nothing of tenants, databases or HTTP, so it
//! can be fuzzed and benchmarked on its own.
//!
//! - [`mod@sniff`]: what a file really is, from its bytes (magic numbers and structure), checked
//!   against the name it came with; and filename sanitising.
//! - [`mod@extract`]: text with its structure (headings, paragraphs, list items, table rows,
//!   pages) from plain text, Markdown, HTML, DOCX and PDF ([`docx`], zip-bomb safe).
//! - [`mod@chunk`]: token-bounded chunks that follow that structure, with overlap, never cutting a
//!   sentence when it can be avoided, each carrying its heading path and page range.
//!
//! - [`qa`]: Q&A pairs and their CSV import.
//! - [`pdf`]: PDF text page by page (`lopdf`), bounded in pages, content and text.

pub mod chunk;
pub mod docx;
pub mod extract;
pub mod pdf;
pub mod qa;
pub mod sniff;

pub use chunk::{Chunk, ChunkOptions, chunk};
pub use extract::{Block, BlockKind, ExtractError, Extracted, extract, html_links};
pub use sniff::{DocKind, SniffError, sanitize_filename, sniff};
