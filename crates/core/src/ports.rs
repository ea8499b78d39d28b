//! Ports besides the store: the embedding model and the blob store. Implementations live in
//! the crates that own the heavy dependencies (`cortex-ai`, the server's `infra`).

use async_trait::async_trait;

/// Why an embedding call failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Worth retrying later: a timeout, a 429 or 5xx, a connection failure.
    #[error("embedding service unavailable: {0}")]
    Unavailable(String),
    /// Will fail again: a rejected request, a bad key, an answer of the wrong shape.
    #[error("embedding failed: {0}")]
    Failed(String),
}

/// Turns texts into unit-length vectors of one model.
#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// The model's stable name, stored with every vector (`all-MiniLM-L6-v2`,
    /// `openai:text-embedding-3-small`): vectors of different models never mix.
    fn model(&self) -> &str;

    fn dimensions(&self) -> usize;

    /// Tokens the model reads of one input; chunks are cut to fit.
    fn max_input_tokens(&self) -> usize;

    /// Tokens of `text` as the model counts them (special tokens excluded).
    fn count_tokens(&self, text: &str) -> usize;

    /// Makes the model ready (loads weights, checks the endpoint) so the first request is not
    /// slow and a misconfiguration shows at start.
    async fn warm_up(&self) -> Result<(), EmbedError> {
        Ok(())
    }

    /// One vector per text, in order, each of length [`Self::dimensions`] and unit norm.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError>;
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no such blob")]
    NotFound,
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    #[error("blob storage failure: {0}")]
    Io(String),
}

/// Where originals are kept: a local folder by default.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    fn backend(&self) -> &'static str;

    /// Stores `bytes` under `key` (letters, digits, `-`, `_`, `.` and `/`-separated segments),
    /// replacing what was there; a reader sees the old or the new bytes, never a mix.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError>;

    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError>;

    /// Removes the blob; removing a missing blob succeeds.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
}

/// Whether `key` is a blob key every backend accepts: 1–512 bytes of `/`-separated segments
/// made of ASCII letters, digits, `-`, `_` and `.`, none of them empty, `.` or `..`.
pub fn valid_blob_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_cannot_escape_their_root() {
        assert!(valid_blob_key("documents/0192-ab/original"));
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a/./b",
            "a\\b",
            "a b",
            "é",
        ] {
            assert!(!valid_blob_key(bad), "{bad:?}");
        }
        assert!(!valid_blob_key(&"a".repeat(513)));
    }
}
