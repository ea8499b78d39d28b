//! Hybrid retrieval over a store's search source: the lexical and vector lists fused by
//! score, parent-child (the best of the fused chunks scored again by their best window).

use std::collections::HashMap;

use cortex_core::Store;
use cortex_core::ids::{ChunkId, TenantId};
use cortex_core::knowledge::{ChunkHit, ChunkVectors, dot};
use cortex_core::store::Result;

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
    /// `cortex_ai::extractive::windows`) to the query, in order; `None` when its windows
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
    store: &dyn Store,
    tenant: TenantId,
    model: &str,
    vector: &[f32],
    hits: Vec<ChunkHit>,
) -> Result<Vec<Candidate>> {
    let mut hashes: Vec<String> = hits.iter().map(|h| h.chunk.content_hash.clone()).collect();
    hashes.sort();
    hashes.dedup();
    let stored: HashMap<String, ChunkVectors> = store
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

/// Hybrid retrieval once the query is embedded: [`hybrid_candidates`]' first `k`. (Also
/// what `cortexlayer bench search` times.)
pub async fn hybrid(
    store: &dyn Store,
    tenant: TenantId,
    query: &str,
    model: &str,
    vector: &[f32],
    k: u32,
    weights: (f32, f32),
) -> Result<Vec<ChunkHit>> {
    let mut candidates = hybrid_candidates(store, tenant, query, model, vector, k, weights).await?;
    candidates.truncate(k as usize);
    Ok(candidates.into_iter().map(|c| c.hit).collect())
}

/// Hybrid retrieval, parent-child, by score: a chunk scores `vector_weight × similarity +
/// lexical_weight × word share²` (`weights` is `(lexical, vector)`), where the word share is
/// its BM25 score over the question's word weight ([`cortex_core::store::SearchSource::lexical_search_weighed`],
/// at most 1): one common word of the question in a snippet adds little, most of its words
/// nearly the whole weight. Both lists are read 4 × k deep; their union is scored with the chunks' own
/// similarities (a chunk only the lexical list found is taken to be as close as the vector
/// list's last, which bounds it), and the best [`parent_pool`] are scored again with the
/// similarity of their best window. Returns that pool, best first (the reranker, when there
/// is one, reorders it; callers keep the first `k`), with the similarities the answer engine
/// judges relevance by.
///
/// Why not reciprocal rank fusion: its ranks are flat (with the usual constant 60 a lexical
/// hit at rank 20 outweighs the gap between vector ranks 1 and 2), so on short snippets,
/// where a customer's words rarely appear, a weak lexical list dragged hybrid below vector
/// search alone; a share of the question's own word weight is small exactly when few of its
/// words match (docs/benchmarks.md).
pub async fn hybrid_candidates(
    store: &dyn Store,
    tenant: TenantId,
    query: &str,
    model: &str,
    vector: &[f32],
    k: u32,
    weights: (f32, f32),
) -> Result<Vec<Candidate>> {
    let depth = (k * 4).max(20);
    let (lexical, parents) = tokio::join!(
        store.lexical_search_weighed(tenant, query, depth),
        store.vector_search(tenant, model, vector, depth)
    );
    let (lexical, words) = lexical?;
    let (fusion, mut union) = Fusion::new(parents?, lexical, words, weights);
    union.truncate(parent_pool(k) as usize);
    let mut pool = with_windows(store, tenant, model, vector, union).await?;
    for c in &mut pool {
        c.hit.score = fusion.score(c.similarity, c.hit.chunk.id);
    }
    pool.sort_by(|a, b| {
        b.hit
            .score
            .total_cmp(&a.hit.score)
            .then(a.hit.chunk.id.cmp(&b.hit.chunk.id))
    });
    Ok(pool)
}

/// How the two lists of one hybrid search are scored together.
struct Fusion {
    /// Each chunk's similarity as the lists tell it: the vector list's score, or for a chunk
    /// only the lexical list found, the vector list's last score (it was not closer).
    listed: HashMap<ChunkId, f32>,
    /// BM25 score over the question's word weight, at most 1; it adds its square, so that a
    /// few common words count little and most of the question's words fully.
    share: HashMap<ChunkId, f32>,
    lexical_weight: f32,
    vector_weight: f32,
}

impl Fusion {
    /// The scoring, and the union of both lists by their listed similarities, best first
    /// (ties by id).
    fn new(
        by_meaning: Vec<ChunkHit>,
        by_words: Vec<ChunkHit>,
        word_weight: f32,
        (lexical_weight, vector_weight): (f32, f32),
    ) -> (Self, Vec<ChunkHit>) {
        let share = by_words
            .iter()
            .map(|h| {
                let s = if word_weight > 0.0 {
                    h.score / word_weight
                } else {
                    0.0
                };
                (h.chunk.id, s.clamp(0.0, 1.0))
            })
            .collect();
        let floor = by_meaning.last().map_or(0.0, |h| h.score);
        let mut listed = HashMap::new();
        let mut union = Vec::with_capacity(by_meaning.len() + by_words.len());
        let meaning = by_meaning.into_iter().map(|h| (h.score, h));
        for (similarity, hit) in meaning.chain(by_words.into_iter().map(|h| (floor, h))) {
            if let std::collections::hash_map::Entry::Vacant(e) = listed.entry(hit.chunk.id) {
                e.insert(similarity);
                union.push(hit);
            }
        }
        let fusion = Self {
            listed,
            share,
            lexical_weight,
            vector_weight,
        };
        let mut scored: Vec<(f32, ChunkHit)> = union
            .into_iter()
            .map(|h| (fusion.score(None, h.chunk.id), h))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.chunk.id.cmp(&b.1.chunk.id)));
        (fusion, scored.into_iter().map(|(_, h)| h).collect())
    }

    /// A chunk's fused score from its similarity (`None`: as listed).
    fn score(&self, similarity: Option<f32>, id: ChunkId) -> f32 {
        let similarity = similarity
            .or_else(|| self.listed.get(&id).copied())
            .unwrap_or(0.0);
        let share = self.share.get(&id).copied().unwrap_or(0.0);
        self.vector_weight * similarity + self.lexical_weight * share * share
    }
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
    fn words_add_to_meaning_by_the_share_of_the_question_they_carry() {
        let (a, b, c, d) = (
            ChunkId::new(),
            ChunkId::new(),
            ChunkId::new(),
            ChunkId::new(),
        );
        // By meaning: a, b, c; by words (the question weighs 10): b carries 9/10 of it, d
        // (not among the vector list's) 5/10, c 1/10.
        let meaning = vec![hit(a, 0.62), hit(b, 0.58), hit(c, 0.50)];
        let words = vec![hit(b, 9.0), hit(d, 5.0), hit(c, 1.0)];
        let (fusion, union) = Fusion::new(meaning, words, 10.0, (0.3, 1.0));
        let order: Vec<ChunkId> = union.iter().map(|h| h.chunk.id).collect();
        assert_eq!(
            order,
            vec![b, a, d, c],
            "b: 0.58 + 0.3 × 0.9²; a: 0.62; d: at most the list's last, 0.50, + 0.3 × 0.5²; c"
        );
        assert!((fusion.score(None, b) - (0.58 + 0.3 * 0.81)).abs() < 1e-6);
        let (fusion, union) = Fusion::new(
            vec![hit(a, 0.62), hit(b, 0.58), hit(c, 0.50)],
            vec![hit(d, 9.0)],
            10.0,
            (0.3, 1.0),
        );
        assert_eq!(
            union[0].chunk.id, d,
            "most of the question's words lift a chunk the vector list missed"
        );
        assert!(
            (fusion.score(Some(0.7), a) - 0.7).abs() < 1e-6,
            "a window lifts a"
        );
        // A few of the question's words barely move a clear gap in meaning.
        let (_, union) = Fusion::new(
            vec![hit(a, 0.70), hit(b, 0.40)],
            vec![hit(b, 2.0)],
            10.0,
            (0.3, 1.0),
        );
        assert_eq!(union[0].chunk.id, a);
        // Without vectors (documents still embedding) the word shares order the chunks.
        let (_, union) = Fusion::new(vec![], vec![hit(c, 3.0), hit(d, 6.0)], 10.0, (0.3, 1.0));
        let order: Vec<ChunkId> = union.iter().map(|h| h.chunk.id).collect();
        assert_eq!(order, vec![d, c]);
        // A question without a single term weighs nothing, and no share exceeds 1.
        let (fusion, _) = Fusion::new(vec![hit(a, 0.5)], vec![hit(b, 3.0)], 0.0, (0.3, 1.0));
        assert_eq!(
            fusion.score(None, b),
            0.5,
            "the vector list's last, no words"
        );
        let (fusion, _) = Fusion::new(vec![], vec![hit(b, 30.0)], 10.0, (0.3, 1.0));
        assert!((fusion.score(None, b) - 0.3).abs() < 1e-6);
    }
}
