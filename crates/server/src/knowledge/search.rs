//! Search over a tenant's chunks: by words (the lexical index), by meaning (vectors of the
//! query and the chunks) or both, fused by reciprocal rank.

use std::collections::HashMap;
use std::time::Instant;

use cortex_core::ids::ChunkId;
use cortex_core::knowledge::{ChunkHit, SearchMode, dot};
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

/// Parents whose children are read, at least: the best chunks (by the chunk vectors, or by
/// both lists fused) are scored again by their best window. A tenant with fewer chunks has
/// every window searched. Reading windows costs ≈ 60 µs a chunk at 100k chunks on SQLite, so
/// the pool stays small (docs/benchmarks.md).
pub const PARENT_POOL: u32 = 24;

/// How many parents a search for `k` chunks scores by their windows.
pub fn parent_pool(k: u32) -> u32 {
    (2 * k).max(PARENT_POOL)
}

/// A retrieved chunk with how close it is to the query by meaning.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub hit: ChunkHit,
    /// The parent-child score: the higher of the chunk's cosine similarity to the query and
    /// its best window's; `None` when the chunk has no vector yet.
    pub similarity: Option<f32>,
    /// The cosine similarity of each of the chunk's windows (its first sentences, see
    /// [`cortex_ai::extractive::windows`]) to the query, in order; `None` when its windows
    /// were not embedded (chunks embedded before windows existed).
    pub windows: Option<Vec<f32>>,
}

/// The answer engine's view of a chunk's text: the chunk's, and a Q&A pair's answer.
pub fn source_text(hit: &ChunkHit) -> String {
    cortex_core::knowledge::source_text(&hit.chunk.text, hit.chunk.answer.as_deref())
}

/// Scores `hits` by meaning, parent-child: each by the higher of its own vector's similarity
/// to `vector` and its best window's, best first. Chunks without a vector keep their place
/// after the others with `similarity: None`.
pub async fn with_windows(
    store: &dyn cortex_core::Store,
    tenant: cortex_core::ids::TenantId,
    model: &str,
    vector: &[f32],
    hits: Vec<ChunkHit>,
) -> cortex_core::store::Result<Vec<Candidate>> {
    let mut hashes: Vec<String> = hits.iter().map(|h| h.chunk.content_hash.clone()).collect();
    hashes.sort();
    hashes.dedup();
    let stored: HashMap<String, cortex_core::knowledge::ChunkVectors> = store
        .chunk_vectors(tenant, model, &hashes)
        .await?
        .into_iter()
        .map(|v| (v.content_hash.clone(), v))
        .collect();
    let mut out: Vec<Candidate> = hits
        .into_iter()
        .map(|hit| {
            let Some(v) = stored.get(&hit.chunk.content_hash) else {
                return Candidate {
                    hit,
                    similarity: None,
                    windows: None,
                };
            };
            let own = (v.vector.len() == vector.len()).then(|| dot(&v.vector, vector));
            let windows: Option<Vec<f32>> = v.windows_of(&source_text(&hit)).map(|w| {
                w.iter()
                    .map(|w| {
                        if w.len() == vector.len() {
                            dot(w, vector)
                        } else {
                            0.0
                        }
                    })
                    .collect()
            });
            let best_window = windows
                .as_ref()
                .and_then(|w| w.iter().copied().reduce(f32::max));
            let similarity = match (own, best_window) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            Candidate {
                hit,
                similarity,
                windows,
            }
        })
        .collect();
    // Stable: chunks without a vector keep their order, after the rest.
    out.sort_by(|a, b| match (a.similarity, b.similarity) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(out)
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
    let mut candidates = hybrid_candidates(store, tenant, query, model, vector, k, weights).await?;
    candidates.truncate(k as usize);
    Ok(candidates.into_iter().map(|c| c.hit).collect())
}

/// [`hybrid`], parent-child: both lists are fused by the chunks' own scores, then the best
/// [`parent_pool`] of them are fused again with the vector list re-ranked by each chunk's best
/// window. Returns that whole pool, best first (the reranker, when there is one, reorders it;
/// callers keep the first `k`), with the similarities the answer engine judges relevance by.
pub async fn hybrid_candidates(
    store: &dyn cortex_core::Store,
    tenant: cortex_core::ids::TenantId,
    query: &str,
    model: &str,
    vector: &[f32],
    k: u32,
    weights: (f32, f32),
) -> cortex_core::store::Result<Vec<Candidate>> {
    let depth = (k * 4).max(20);
    let (lexical, parents) = tokio::join!(
        store.lexical_search(tenant, query, depth),
        store.vector_search(tenant, model, vector, depth)
    );
    let lexical = lexical?;
    let pool = fuse(
        &[(weights.0, lexical.clone()), (weights.1, parents?)],
        parent_pool(k) as usize,
    );
    let in_pool: std::collections::HashSet<ChunkId> = pool.iter().map(|h| h.chunk.id).collect();
    let scored = with_windows(store, tenant, model, vector, pool).await?;
    let by_id: HashMap<ChunkId, Candidate> =
        scored.iter().map(|c| (c.hit.chunk.id, c.clone())).collect();
    let words: Vec<ChunkHit> = lexical
        .into_iter()
        .filter(|h| in_pool.contains(&h.chunk.id))
        .collect();
    let meaning: Vec<ChunkHit> = scored
        .into_iter()
        .filter(|c| c.similarity.is_some())
        .map(|c| c.hit)
        .collect();
    let fused = fuse(
        &[(weights.0, words), (weights.1, meaning)],
        parent_pool(k) as usize,
    );
    Ok(fused
        .into_iter()
        .filter_map(|hit| {
            let mut c = by_id.get(&hit.chunk.id)?.clone();
            c.hit.score = hit.score;
            Some(c)
        })
        .collect())
}

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
