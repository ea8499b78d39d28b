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

/// A chunk text that still needs its vector, or its windows' vectors (chunks embedded before
/// windows existed have only the first).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEmbedding {
    pub content_hash: String,
    pub text: String,
    /// For a Q&A pair: the answer, whose sentences are windows too.
    pub answer: Option<String>,
}

impl PendingEmbedding {
    /// The text the chunk's windows are cut from: what the answer engine reads of it.
    pub fn source_text(&self) -> String {
        source_text(&self.text, self.answer.as_deref())
    }
}

/// What the answer engine reads of a chunk: its text, and a Q&A pair's answer after it.
pub fn source_text(text: &str, answer: Option<&str>) -> String {
    match answer {
        Some(answer) => format!("{text}\n{answer}"),
        None => text.to_owned(),
    }
}

/// The vectors of one chunk text: the whole chunk's, and one per *window* (each sentence of
/// its [`source_text`], in order), the children that parent-child retrieval and the answer
/// engine's relevance check compare with a question.
#[derive(Clone, Debug, PartialEq)]
pub struct ChunkVectors {
    pub content_hash: String,
    pub vector: Vec<f32>,
    /// `None`: not computed (the chunk was embedded before windows existed, or by a caller
    /// that does not cut them).
    pub windows: Option<Windows>,
}

/// The vectors of a chunk's windows.
#[derive(Clone, Debug, PartialEq)]
pub struct Windows {
    /// [`content_hash`] of the source text they were cut from: a Q&A pair shares its
    /// question's hash with any pair asking the same, and must not read another's windows.
    pub of: String,
    /// One per window, in order; empty when no sentence is long enough.
    pub vectors: Vec<Vec<f32>>,
}

impl Windows {
    /// Windows as the stores keep them: the blob of `dims`-wide rows ([`windows_to_bytes`])
    /// and the hash beside it. `Ok(None)` when not computed; `Err` for a blob that is not
    /// whole rows.
    pub fn from_stored(
        blob: Option<Vec<u8>>,
        of: Option<String>,
        dims: usize,
    ) -> Result<Option<Self>, &'static str> {
        match (blob, of) {
            (Some(blob), Some(of)) => Ok(Some(Self {
                of,
                vectors: windows_from_bytes(&blob, dims).ok_or("windows")?,
            })),
            _ => Ok(None),
        }
    }
}

impl ChunkVectors {
    /// A chunk's vector without windows.
    pub fn chunk_only(content_hash: String, vector: Vec<f32>) -> Self {
        Self {
            content_hash,
            vector,
            windows: None,
        }
    }

    /// The windows' vectors when they were cut from `source` (the chunk's [`source_text`]).
    pub fn windows_of(&self, source: &str) -> Option<&[Vec<f32>]> {
        self.windows
            .as_ref()
            .filter(|w| w.of == content_hash(source))
            .map(|w| w.vectors.as_slice())
    }
}

/// Windows' vectors stored as one blob: `n × dims` little-endian `f32`.
pub fn windows_to_bytes(windows: &[Vec<f32>]) -> Vec<u8> {
    windows.iter().flat_map(|w| vector_to_bytes(w)).collect()
}

/// The inverse of [`windows_to_bytes`]; `None` when the length is not a multiple of a row.
pub fn windows_from_bytes(b: &[u8], dims: usize) -> Option<Vec<Vec<f32>>> {
    if dims == 0 || !b.len().is_multiple_of(dims * 4) {
        return None;
    }
    b.chunks_exact(dims * 4).map(vector_from_bytes).collect()
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
    fn windows_round_trip_as_stored_and_a_torn_blob_is_refused() {
        let rows = vec![vec![1.0, -0.5, 0.25], vec![0.0, 2.0, 3.5]];
        let blob = windows_to_bytes(&rows);
        let got = Windows::from_stored(Some(blob.clone()), Some("h".into()), 3).expect("ok");
        assert_eq!(
            got,
            Some(Windows {
                of: "h".into(),
                vectors: rows
            })
        );
        assert_eq!(Windows::from_stored(None, None, 3), Ok(None));
        assert_eq!(
            Windows::from_stored(Some(blob.clone()), Some("h".into()), 4),
            Err("windows")
        );
        let empty = Windows::from_stored(Some(Vec::new()), Some("h".into()), 3).expect("ok");
        assert_eq!(empty.map(|w| w.vectors.len()), Some(0));
        // Windows are read only for the text they were cut from.
        let v = ChunkVectors {
            content_hash: "c".into(),
            vector: vec![1.0],
            windows: Some(Windows {
                of: content_hash("question\nanswer"),
                vectors: vec![vec![1.0]],
            }),
        };
        assert!(v.windows_of("question\nanswer").is_some());
        assert!(v.windows_of("question\nanother answer").is_none());
        assert_eq!(source_text("question", Some("answer")), "question\nanswer");
    }

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
