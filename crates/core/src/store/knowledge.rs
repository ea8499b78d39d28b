//! The knowledge base: documents, their chunks and embeddings.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Page, Result};
use crate::ids::{DocumentId, TenantId};
use crate::jobs::NewJob;
use crate::knowledge::{
    Chunk, ChunkVectors, Document, DocumentStage, NewChunk, NewDocument, Original, PendingEmbedding,
};

#[async_trait]
pub trait KnowledgeStore: Send + Sync {
    /// Creates the document and enqueues its first job, atomically. With `max_documents`,
    /// refuses with `Conflict(document_limit_reached)` when the tenant already has that many
    /// (checked under a lock, so concurrent uploads cannot overshoot);
    /// `Conflict(document_exists)` when the id is taken.
    async fn create_document(
        &self,
        tenant: TenantId,
        document: NewDocument,
        job: NewJob,
        max_documents: Option<u32>,
    ) -> Result<Document>;

    async fn get_document(&self, tenant: TenantId, document: DocumentId) -> Result<Document>;

    /// Records the original of a document that came without one (a fetched URL): its type,
    /// size, hash and blob, the final URL and title when known, and enqueues `next` (the parse
    /// job), atomically. `Conflict(stale_generation)` when a newer run started.
    async fn attach_original(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        original: Original,
        next: NewJob,
    ) -> Result<()>;

    /// Newest first.
    async fn list_documents(&self, tenant: TenantId, page: Page) -> Result<Vec<Document>>;

    async fn count_documents(&self, tenant: TenantId) -> Result<u64>;

    /// Deletes the document with its chunks, their lexical entries and every vector no other
    /// chunk of the tenant still uses, in one transaction. Returns the deleted row (the caller
    /// removes the original from the blob store).
    async fn delete_document(&self, tenant: TenantId, document: DocumentId) -> Result<Document>;

    /// Starts processing again under the next generation (status `pending`, stage `queued`)
    /// and enqueues `job`, atomically. The current chunks stay searchable until the new run
    /// replaces them.
    async fn restart_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        job: NewJob,
    ) -> Result<Document>;

    /// Records progress of the run of `generation` (status `processing`).
    /// `Conflict(stale_generation)` when a newer run started, `NotFound` when it was deleted.
    async fn set_document_stage(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        stage: DocumentStage,
        progress: u8,
    ) -> Result<()>;

    /// Replaces the document's chunks (and their lexical entries) with `chunks`, marks it
    /// lexically searchable at stage `embedding`, drops vectors no chunk uses any more and
    /// enqueues `next` (the embedding job), all in one transaction: a run that dies halfway
    /// leaves the previous chunks, never a mix. `Conflict(stale_generation)` as above.
    async fn replace_chunks(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        chunks: Vec<NewChunk>,
        next: NewJob,
        at: DateTime<Utc>,
    ) -> Result<()>;

    /// Marks the run failed with a stable code and a readable message and removes the
    /// document's chunks: a failed document answers nothing.
    async fn fail_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        code: &str,
        message: &str,
    ) -> Result<()>;

    /// Up to `limit` distinct chunk texts of the document that have no vector for `model`, or
    /// whose windows have none.
    async fn pending_embeddings(
        &self,
        tenant: TenantId,
        document: DocumentId,
        model: &str,
        limit: u32,
    ) -> Result<Vec<PendingEmbedding>>;

    /// Stores vectors by content hash; a hash that has one already keeps it (and gets the
    /// windows given when it had none).
    async fn put_embeddings(
        &self,
        tenant: TenantId,
        model: &str,
        vectors: &[ChunkVectors],
    ) -> Result<()>;

    /// Marks the run of `generation` ready (every chunk has a vector of `model`).
    async fn finish_document(
        &self,
        tenant: TenantId,
        document: DocumentId,
        generation: u32,
        model: &str,
        at: DateTime<Utc>,
    ) -> Result<Document>;

    /// The document's chunks in order, from `offset`.
    async fn list_chunks(
        &self,
        tenant: TenantId,
        document: DocumentId,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<Chunk>>;

    /// Maintenance: documents still pending or processing whose job failed for good (e.g. a
    /// worker died on the last attempt) become `failed`. Returns how many.
    async fn fail_abandoned_documents(&self, at: DateTime<Utc>) -> Result<u64>;
}
