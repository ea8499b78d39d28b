//! Search over a tenant's chunks: lexical, vector, and the child windows of chunks.

use async_trait::async_trait;

use super::Result;
use crate::ids::TenantId;
use crate::knowledge::{ChunkHit, ChunkVectors};

#[async_trait]
pub trait SearchSource: Send + Sync {
    /// The stored vectors of these chunk texts (by content hash) of `model`, with their
    /// windows' when computed; hashes without a vector are left out.
    async fn chunk_vectors(
        &self,
        tenant: TenantId,
        model: &str,
        hashes: &[String],
    ) -> Result<Vec<ChunkVectors>>;

    /// Full-text search of the tenant's chunks by BM25, best first, with the tenant's own
    /// lexical index (`cortex_search::lexical`: any query term may match; rarer terms weigh more).
    async fn lexical_search(&self, tenant: TenantId, query: &str, k: u32) -> Result<Vec<ChunkHit>> {
        Ok(self.lexical_search_weighed(tenant, query, k).await?.0)
    }

    /// [`SearchSource::lexical_search`], with how much word evidence `query` can carry in the same
    /// index (`cortex_search::lexical::LexicalIndex::search_weighed`): a hit's score divided by it
    /// is the share of the question's words the chunk carries.
    async fn lexical_search_weighed(
        &self,
        tenant: TenantId,
        query: &str,
        k: u32,
    ) -> Result<(Vec<ChunkHit>, f32)>;

    /// The `k` chunks of the tenant whose `model` vectors are closest (cosine) to `vector`,
    /// best first. The tenant always gets its own `k` best, however many other tenants hold.
    async fn vector_search(
        &self,
        tenant: TenantId,
        model: &str,
        vector: &[f32],
        k: u32,
    ) -> Result<Vec<ChunkHit>>;
}
