//! Search over a tenant's chunks: by words (the lexical index), by meaning (vectors of the
//! query and the chunks) or both, fused by score.

use std::time::Instant;

use cortex_core::knowledge::{ChunkHit, SearchMode};
use cortex_core::ports::EmbedError;

use super::{KnowledgeError, Result};
use crate::app::AppState;
use crate::tenancy::Action;
use crate::tenancy::{TenancyError, TenantCtx};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 2_000;
pub const MAX_TOP_K: u32 = 50;

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
    ctx.require(Action::ReadKnowledge)?;
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
            let candidates = hybrid_candidates(
                state.store.as_ref(),
                tenant,
                query,
                state.embedder.model(),
                &v,
                top_k,
                state.settings.answer.fusion_weights(),
            )
            .await?;
            reranked(state, query, candidates, top_k)
                .await
                .into_iter()
                .map(|c| c.hit)
                .collect()
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
    let tenant = ctx.tenant_id();
    let model = state.embedder.model();
    let parents = state
        .store
        .vector_search(tenant, model, &v, parent_pool(k))
        .await?;
    let mut candidates = with_windows(state.store.as_ref(), tenant, model, &v, parents).await?;
    candidates.truncate(k as usize);
    Ok(candidates
        .into_iter()
        .map(|c| {
            let mut hit = c.hit;
            hit.score = c.similarity.unwrap_or(hit.score);
            hit
        })
        .collect())
}

async fn embed_query(state: &AppState, query: &str) -> Result<Vec<f32>> {
    state
        .embedder
        .embed_query(query)
        .await
        .map_err(|e| match e {
            EmbedError::Unavailable(m) | EmbedError::Failed(m) => {
                KnowledgeError::Internal(anyhow::anyhow!("embedding the query: {m}"))
            }
        })
}

pub use cortex_search::hybrid::{
    Candidate, PARENT_POOL, hybrid, hybrid_candidates, parent_pool, source_text, with_windows,
};

/// The first `k` of `candidates` in the operator's reranker's order (each hit's score
/// becomes the reranker's), or in their own order when there is none or it fails — a
/// reranker improves the order, it never costs an answer.
pub async fn reranked(
    state: &AppState,
    query: &str,
    mut candidates: Vec<Candidate>,
    k: u32,
) -> Vec<Candidate> {
    if let Some(reranker) = &state.reranker
        && candidates.len() > 1
    {
        let passages: Vec<String> = candidates.iter().map(|c| source_text(&c.hit)).collect();
        let started = Instant::now();
        match reranker.rerank(query, &passages).await {
            Ok(scores) if scores.len() == candidates.len() => {
                for (c, score) in candidates.iter_mut().zip(&scores) {
                    c.hit.score = *score;
                }
                candidates.sort_by(|a, b| b.hit.score.total_cmp(&a.hit.score));
                tracing::debug!(
                    reranker = reranker.name(),
                    passages = passages.len(),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "reranked"
                );
            }
            Ok(scores) => tracing::warn!(
                reranker = reranker.name(),
                expected = candidates.len(),
                got = scores.len(),
                "the reranker scored another number of passages; keeping the fused order"
            ),
            Err(e) => tracing::warn!(
                reranker = reranker.name(),
                error = %e,
                "reranking failed; keeping the fused order"
            ),
        }
    }
    candidates.truncate(k as usize);
    candidates
}
