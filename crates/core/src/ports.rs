//! Ports besides the store: the embedding model, the chat model and the blob store. Implementations live in
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

    /// One vector per text, in order, each of length [`Self::dimensions`] and unit norm, for
    /// someone waiting (a request's sentences).
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// A question's vector, for someone waiting: a local model embeds it together with the
    /// other questions waiting and before any document's chunks.
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut v = self.embed(vec![text.to_owned()]).await?;
        v.pop()
            .ok_or_else(|| EmbedError::Failed("no vector for the question".into()))
    }

    /// Vectors of a document's chunks, for a background job: a local model packs them with
    /// other documents' chunks and runs them after the questions waiting.
    async fn embed_documents(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed(texts).await
    }
}

/// Why a rerank failed. Retrieval keeps the fused order then: a reranker makes results
/// better, never makes a question unanswerable.
#[derive(Debug, thiserror::Error)]
#[error("reranker: {0}")]
pub struct RerankError(pub String);

/// The stage after fusion: scores each retrieved passage for how well it answers the query,
/// reading both together (a cross-encoder, a rerank API). Without one, the fused candidates
/// keep the order their best windows gave them.
#[async_trait]
pub trait Reranker: Send + Sync + 'static {
    /// A stable name for logs and measurements (`remote:rerank-v3.5`).
    fn name(&self) -> &str;

    /// One relevance score per passage, in the passages' order; higher is more relevant.
    async fn rerank(&self, query: &str, passages: &[String]) -> Result<Vec<f32>, RerankError>;
}

/// Why a chat model call failed.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The next model of the chain should try: a timeout, a 429 or 5xx after the retries, a
    /// connection failure, a stream cut before it finished.
    #[error("chat model unavailable: {0}")]
    Unavailable(String),
    /// The request itself was refused (bad key, unknown model, a malformed answer); another
    /// model may still succeed, but retrying this one will not.
    #[error("chat model failed: {0}")]
    Failed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool the model may call: a name, what it does and a JSON Schema of its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call the model asked for; `arguments` is the JSON text the model wrote.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
    /// An assistant message's calls (sent back with their results in `Tool` messages).
    pub tool_calls: Vec<ToolCall>,
    /// A `Tool` message answers this call.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub temperature: f32,
    pub max_tokens: u32,
    pub tools: Vec<ToolSpec>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// The provider reported no usage; the counts were made here with a tokenizer.
    pub estimated: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    /// The model id of the operator's catalogue that answered.
    pub model: String,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: ChatUsage,
    /// `stop`, `length`, `tool_calls`, `content_filter`.
    pub finish_reason: String,
}

/// Receives the answer's text as it is produced.
pub type DeltaSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A language model behind a chat API.
#[async_trait]
pub trait ChatModel: Send + Sync + 'static {
    /// The id the operator gave it (`groq-mixtral`, `gpt-4o-mini`).
    fn id(&self) -> &str;

    /// Answers `request`. With `on_delta` the answer is streamed: each piece of text is passed
    /// on as it arrives, and the full response is returned at the end.
    async fn complete(
        &self,
        request: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse, ChatError>;
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
