//! The knowledge base's jobs: a URL fetched (and crawled), a document parsed into chunks, its
//! chunks embedded, and the sweep that fails documents whose job died for good.

use chrono::Utc;
use cortex_core::ids::DocumentId;
use cortex_core::jobs::NewJob;
use serde::{Deserialize, Serialize};

use super::crawl::{self, FetchArgs};
use super::pipeline::{self, DocumentJob};
use crate::jobs::{Job, JobContext, JobError, Period, Periodic, new_job};

/// Fetches a URL document (and, with depth, the pages of its site it links to), then hands
/// each page to [`ParseDocument`].
#[derive(Serialize, Deserialize)]
pub struct FetchUrl(pub FetchArgs);

/// Parses a document's original into chunks, stored with the lexical index (searchable by
/// words at once) and the [`EmbedChunks`] job in one transaction.
#[derive(Serialize, Deserialize)]
pub struct ParseDocument(pub DocumentJob);

/// Embeds a document's chunks that have no vector yet, in batches, then marks it ready.
#[derive(Serialize, Deserialize)]
pub struct EmbedChunks(pub DocumentJob);

/// Every minute: documents still pending or processing whose job failed for good (a worker
/// killed on the last attempt, so no failure hook ran) are marked failed.
#[derive(Serialize, Deserialize)]
pub struct SweepAbandonedDocuments {
    pub period: Period,
}

/// The key of a job for one run of a document: `Name:document:generation`.
fn document_key(name: &str, document: DocumentId, generation: u32) -> String {
    format!("{name}:{document}:{generation}")
}

/// A document whose job ran out of attempts fails with the job's reason.
async fn fail_abandoned(ctx: &JobContext) -> Result<(), JobError> {
    ctx.state.store.fail_abandoned_documents(ctx.now()).await?;
    Ok(())
}

impl Job for FetchUrl {
    const NAME: &'static str = "FetchUrl";

    fn unique_key(&self) -> Option<String> {
        Some(document_key(
            Self::NAME,
            self.0.document_id,
            self.0.generation,
        ))
    }

    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        crawl::run(&ctx.state, ctx.tenant()?, self.0).await
    }

    async fn exhausted(self, ctx: JobContext, _reason: String) -> Result<(), JobError> {
        fail_abandoned(&ctx).await
    }
}

impl Job for ParseDocument {
    const NAME: &'static str = "ParseDocument";

    fn unique_key(&self) -> Option<String> {
        Some(document_key(
            Self::NAME,
            self.0.document_id,
            self.0.generation,
        ))
    }

    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        pipeline::parse(&ctx.state, ctx.tenant()?, self.0).await
    }

    async fn exhausted(self, ctx: JobContext, _reason: String) -> Result<(), JobError> {
        fail_abandoned(&ctx).await
    }
}

impl Job for EmbedChunks {
    const NAME: &'static str = "EmbedChunks";

    fn unique_key(&self) -> Option<String> {
        Some(document_key(
            Self::NAME,
            self.0.document_id,
            self.0.generation,
        ))
    }

    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        pipeline::embed(&ctx.state, ctx.tenant()?, self.0).await
    }

    async fn exhausted(self, ctx: JobContext, _reason: String) -> Result<(), JobError> {
        fail_abandoned(&ctx).await
    }
}

impl Job for SweepAbandonedDocuments {
    const NAME: &'static str = "SweepAbandonedDocuments";

    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        let n = ctx.state.store.fail_abandoned_documents(ctx.now()).await?;
        if n > 0 {
            tracing::warn!(
                documents = n,
                "documents failed after their job ran out of attempts"
            );
        }
        Ok(())
    }
}

impl Periodic for SweepAbandonedDocuments {
    const EVERY_SECS: i64 = 60;

    fn for_period(period: Period) -> Self {
        Self { period }
    }
}

/// The job that parses a document's run of `generation`, for the store to enqueue with it.
pub fn parse_job(document: DocumentId, generation: u32) -> NewJob {
    new_job(
        &ParseDocument(DocumentJob {
            document_id: document,
            generation,
        }),
        Utc::now(),
    )
}

/// The job that embeds a document's run of `generation`.
pub fn embed_job(document: DocumentId, generation: u32) -> NewJob {
    new_job(
        &EmbedChunks(DocumentJob {
            document_id: document,
            generation,
        }),
        Utc::now(),
    )
}

/// The job that fetches a URL document's run of `generation`, crawling as far as asked.
pub fn fetch_job(document: DocumentId, generation: u32, max_depth: u32, max_pages: u32) -> NewJob {
    new_job(
        &FetchUrl(FetchArgs {
            document_id: document,
            generation,
            max_depth,
            max_pages,
        }),
        Utc::now(),
    )
}
