//! Search over a tenant's chunks: by words (the lexical index), by meaning (vectors of the
//! query and the chunks) or both, fused by reciprocal rank.

use std::collections::HashMap;
use std::time::Instant;

use cortex_core::ids::ChunkId;
use cortex_core::knowledge::{ChunkHit, SearchMode};
use cortex_core::ports::EmbedError;

use super::{KnowledgeError, Result, may_read};
use crate::app::AppState;
use crate::tenancy::{TenancyError, TenantCtx};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 2_000;
pub const MAX_TOP_K: u32 = 50;
/// The usual RRF constant: ranks deeper than a few dozen barely count.
const RRF_K: f32 = 60.0;

pub struct SearchResult {
    pub mode: SearchMode,
    pub hits: Vec<ChunkHit>,
    pub took_ms: f64,
}

pub async fn search(
    state: &AppState,
    ctx: &TenantCtx,
    query: &str,
    top_k: u32,
    mode: SearchMode,
) -> Result<SearchResult> {
    may_read(ctx)?;
    let query = query.trim();
    if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS {
        return Err(TenancyError::Validation {
            field: "query",
            message: format!("must be 1 to {MAX_QUERY_CHARS} characters"),
        }
        .into());
    }
    if !(1..=MAX_TOP_K).contains(&top_k) {
        return Err(TenancyError::Validation {
            field: "top_k",
            message: format!("must be between 1 and {MAX_TOP_K}"),
        }
        .into());
    }
    let started = Instant::now();
    let tenant = ctx.tenant_id();
    let hits = match mode {
        SearchMode::Lexical => state.store.lexical_search(tenant, query, top_k).await?,
        SearchMode::Vector => vector(state, ctx, query, top_k).await?,
        SearchMode::Hybrid => {
            let v = embed_query(state, query).await?;
            hybrid(
                state.store.as_ref(),
                tenant,
                query,
                state.embedder.model(),
                &v,
                top_k,
                state.settings.answer.fusion_weights(),
            )
            .await?
        }
    };
    Ok(SearchResult {
        mode,
        hits,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

async fn vector(state: &AppState, ctx: &TenantCtx, query: &str, k: u32) -> Result<Vec<ChunkHit>> {
    let v = embed_query(state, query).await?;
    Ok(state
        .store
        .vector_search(ctx.tenant_id(), state.embedder.model(), &v, k)
        .await?)
}

async fn embed_query(state: &AppState, query: &str) -> Result<Vec<f32>> {
    let mut vectors = state
        .embedder
        .embed(vec![query.to_owned()])
        .await
        .map_err(|e| match e {
            EmbedError::Unavailable(m) | EmbedError::Failed(m) => {
                KnowledgeError::Internal(anyhow::anyhow!("embedding the query: {m}"))
            }
        })?;
    Ok(vectors.pop().unwrap_or_default())
}

/// Hybrid retrieval once the query is embedded: both lists, each deeper than `k` so that
/// fusion can promote a chunk ranked well by one signal and middling by the other, fused by
/// reciprocal rank with the (lexical, vector) `weights`. (Also what `cortexlayer bench search`
/// times.)
pub async fn hybrid(
    store: &dyn cortex_core::Store,
    tenant: cortex_core::ids::TenantId,
    query: &str,
    model: &str,
    vector: &[f32],
    k: u32,
    weights: (f32, f32),
) -> cortex_core::store::Result<Vec<ChunkHit>> {
    Ok(
        hybrid_with_similarity(store, tenant, query, model, vector, k, weights)
            .await?
            .0,
    )
}

/// [`hybrid`], with each fused chunk's cosine similarity to the query when the vector list
/// found it (the answer engine judges relevance by it).
pub async fn hybrid_with_similarity(
    store: &dyn cortex_core::Store,
    tenant: cortex_core::ids::TenantId,
    query: &str,
    model: &str,
    vector: &[f32],
    k: u32,
    weights: (f32, f32),
) -> cortex_core::store::Result<(Vec<ChunkHit>, HashMap<ChunkId, f32>)> {
    let depth = (k * 4).max(20);
    let (lexical, vectors) = tokio::join!(
        store.lexical_search(tenant, query, depth),
        store.vector_search(tenant, model, vector, depth)
    );
    let vectors = vectors?;
    let similarity = vectors.iter().map(|h| (h.chunk.id, h.score)).collect();
    let fused = fuse(&[(weights.0, lexical?), (weights.1, vectors)], k as usize);
    Ok((fused, similarity))
}

/// Weighted reciprocal rank fusion: each list adds `weight / (RRF_K + rank)` to a chunk's
/// score.
pub fn fuse(lists: &[(f32, Vec<ChunkHit>)], k: usize) -> Vec<ChunkHit> {
    let mut scores: HashMap<ChunkId, (f32, ChunkHit)> = HashMap::new();
    for (weight, list) in lists {
        for (rank, hit) in list.iter().enumerate() {
            let add = weight / (RRF_K + rank as f32 + 1.0);
            scores
                .entry(hit.chunk.id)
                .and_modify(|(s, _)| *s += add)
                .or_insert_with(|| (add, hit.clone()));
        }
    }
    let mut fused: Vec<ChunkHit> = scores
        .into_values()
        .map(|(score, mut hit)| {
            hit.score = score;
            hit
        })
        .collect();
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.chunk.id.cmp(&b.chunk.id))
    });
    fused.truncate(k);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use cortex_core::ids::{DocumentId, TenantId};
    use cortex_core::knowledge::Chunk;

    fn hit(id: ChunkId, score: f32) -> ChunkHit {
        ChunkHit {
            chunk: Chunk {
                id,
                tenant_id: TenantId::new(),
                document_id: DocumentId::new(),
                ordinal: 0,
                text: String::new(),
                answer: None,
                heading_path: vec![],
                page_start: None,
                page_end: None,
                token_count: 0,
                content_hash: String::new(),
                created_at: Utc::now(),
            },
            document_title: String::new(),
            score,
        }
    }

    #[test]
    fn fusion_rewards_agreement() {
        let (a, b, c) = (ChunkId::new(), ChunkId::new(), ChunkId::new());
        let lexical = vec![hit(a, 9.0), hit(b, 5.0)];
        let vector = vec![hit(c, 0.9), hit(b, 0.8)];
        let fused = fuse(&[(1.0, lexical), (1.0, vector)], 3);
        assert_eq!(fused[0].chunk.id, b, "second in both beats first in one");
        assert_eq!(fused.len(), 3);
        assert!(fused[0].score > fused[1].score);
    }
}
