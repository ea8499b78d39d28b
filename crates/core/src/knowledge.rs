//! The knowledge base's data: documents (uploaded files, fetched pages, Q&A pairs), the chunks
//! they are cut into, and what a search returns.
//!
//! A document moves `pending → processing → ready | failed`. Its `stage` says where processing
//! is: once chunks are stored (`embedding`) the document is searchable lexically, and once
//! every chunk has a vector (`done`) it is searchable by meaning too. Every reprocessing bumps
//! the `generation`; a job of an older generation finds itself stale and stops, so a document
//! never mixes the chunks of two runs.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids::{ChunkId, DocumentId, JobId, TenantId};

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::tenancy::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err($crate::tenancy::UnknownVariant(s.to_owned())),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// How a document came in.
    DocumentSource { Upload => "upload", Url => "url", Qa => "qa" }
);

string_enum!(
    /// The life of a document.
    DocumentStatus {
        Pending => "pending",
        Processing => "processing",
        Ready => "ready",
        Failed => "failed",
    }
);

string_enum!(
    /// Where processing stands.
    DocumentStage {
        Queued => "queued",
        Fetching => "fetching",
        Parsing => "parsing",
        Embedding => "embedding",
        Done => "done",
    }
);

string_enum!(
    /// How a search ranks chunks.
    SearchMode { Lexical => "lexical", Vector => "vector", Hybrid => "hybrid" }
);

/// What a document can be found by right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Searchable {
    /// Not chunked yet (or failed).
    No,
    /// Chunks are in the lexical index; vectors are still being computed.
    Lexical,
    /// Lexical index and vectors.
    Full,
}

/// A stored document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Document {
    pub id: DocumentId,
    pub tenant_id: TenantId,
    pub title: String,
    /// The sanitised upload name, when uploaded.
    pub filename: Option<String>,
    pub source: DocumentSource,
    pub source_url: Option<String>,
    /// Sniffed type: `pdf`, `docx`, `html`, `markdown`, `text`, `qa`.
    pub kind: String,
    pub size_bytes: u64,
    /// SHA-256 of the original, hex.
    pub sha256: String,
    /// Key of the original in the blob store.
    pub blob_key: Option<String>,
    pub status: DocumentStatus,
    pub stage: DocumentStage,
    /// 0–100.
    pub progress: u8,
    pub chunk_count: u32,
    /// Stable machine code of the failure (`parse_failed`, `chunk_limit_exceeded`, …).
    pub error_code: Option<String>,
    /// Readable reason of the failure.
    pub error_message: Option<String>,
    pub generation: u32,
    /// The job currently responsible for the document.
    pub job_id: Option<JobId>,
    pub lexical_ready_at: Option<DateTime<Utc>>,
    pub vectors_ready_at: Option<DateTime<Utc>>,
    /// The embedding model of the vectors.
    pub embedding_model: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Document {
    pub fn searchable(&self) -> Searchable {
        match self.status {
            DocumentStatus::Failed => Searchable::No,
            DocumentStatus::Ready => Searchable::Full,
            _ if self.lexical_ready_at.is_some() => Searchable::Lexical,
            _ => Searchable::No,
        }
    }
}

/// A document to create.
#[derive(Clone, Debug)]
pub struct NewDocument {
    pub id: DocumentId,
    pub title: String,
    pub filename: Option<String>,
    pub source: DocumentSource,
    pub source_url: Option<String>,
    pub kind: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub blob_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The original of a fetched document, recorded once it is stored.
#[derive(Clone, Debug)]
pub struct Original {
    pub kind: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub blob_key: String,
    pub title: Option<String>,
    /// Where the content came from after redirects.
    pub source_url: Option<String>,
}

/// A chunk to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewChunk {
    pub id: ChunkId,
    pub ordinal: u32,
    /// What is indexed and embedded (for a Q&A pair: the question).
    pub text: String,
    /// For a Q&A pair: the answer it carries.
    pub answer: Option<String>,
    pub heading_path: Vec<String>,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub token_count: u32,
    /// [`content_hash`] of `text`: the key of its embedding.
    pub content_hash: String,
}

impl NewChunk {
    /// A chunk of `text` at `ordinal`, hashing the text.
    pub fn new(ordinal: u32, text: String, token_count: u32) -> Self {
        Self {
            id: ChunkId::new(),
            ordinal,
            content_hash: content_hash(&text),
            text,
            answer: None,
            heading_path: Vec::new(),
            page_start: None,
            page_end: None,
            token_count,
        }
    }
}

/// A stored chunk.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Chunk {
    pub id: ChunkId,
    pub tenant_id: TenantId,
    pub document_id: DocumentId,
    pub ordinal: u32,
    pub text: String,
    pub answer: Option<String>,
    pub heading_path: Vec<String>,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub token_count: u32,
    pub content_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A chunk found by a search, with what a citation needs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChunkHit {
    pub chunk: Chunk,
    pub document_title: String,
    /// Higher is better. Lexical: BM25 (SQLite) or `ts_rank_cd` (PostgreSQL), not comparable
    /// across backends; vector: cosine similarity in [-1, 1].
    pub score: f32,
}

/// A chunk text that still needs its vector.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEmbedding {
    pub content_hash: String,
    pub text: String,
}

/// The `k` best of `scores` (index, score), best first; ties keep the lower index first.
pub fn top_k(scores: impl IntoIterator<Item = (usize, f32)>, k: usize) -> Vec<(usize, f32)> {
    if k == 0 {
        return Vec::new();
    }
    // A small sorted buffer beats a heap for the k ≤ 100 a search asks for.
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for (i, s) in scores {
        if s.is_nan() || (best.len() == k && s <= best[k - 1].1) {
            continue;
        }
        let at = best.partition_point(|&(_, b)| b >= s);
        best.insert(at, (i, s));
        best.truncate(k);
    }
    best
}

/// Dot product written so the compiler vectorises it: sixteen independent accumulators
/// (a plain `zip().sum()` is bound to strict left-to-right float order and runs ~3× slower).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// Vectors are stored as little-endian `f32` bytes.
pub fn vector_to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`vector_to_bytes`]; `None` when the length is not a multiple of 4.
pub fn vector_from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// SHA-256 of the text, hex: the key under which a chunk's vector is stored (per tenant and
/// model), so unchanged text is never embedded twice.
pub fn content_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_best_in_order() {
        let scores = [0.1, 0.9, 0.5, f32::NAN, 0.7, 0.9];
        let got = top_k(scores.iter().copied().enumerate(), 3);
        assert_eq!(got, vec![(1, 0.9), (5, 0.9), (4, 0.7)]);
        assert!(top_k(scores.iter().copied().enumerate(), 0).is_empty());
    }

    #[test]
    fn dot_matches_the_naive_sum() {
        let a: Vec<f32> = (0..389).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..389).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }

    #[test]
    fn vectors_round_trip_through_bytes() {
        let v = vec![0.25f32, -1.5, 3.0e-8];
        assert_eq!(vector_from_bytes(&vector_to_bytes(&v)), Some(v));
        assert_eq!(vector_from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn content_hashes_differ_for_different_text() {
        assert_eq!(content_hash("abc"), content_hash("abc"));
        assert_ne!(content_hash("abc"), content_hash("abd"));
        assert_eq!(content_hash("").len(), 64);
    }
}
