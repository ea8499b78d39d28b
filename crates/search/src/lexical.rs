//! Lexical search by BM25 over one tenant's chunks, in memory, the same on every backend.
//!
//! Why not the database's own full-text ranking: FTS5's `bm25()` and PostgreSQL's `ts_rank`
//! score every row that matches any query word, and a question's common words match most of
//! a large knowledge base (121 ms and 161 ms per query at 100k chunks); `ts_rank` is not BM25
//! either, so the two backends ranked differently; and FTS5 takes its word statistics from
//! every tenant's rows at once. Here each tenant has its own index — its own statistics —
//! built from its chunk texts on the first search after a change (a version row per tenant,
//! bumped in the same transaction as every change to its chunks, tells a store when its copy
//! is stale; chunks added since are appended to a copy, and only a deletion makes the next
//! search read every chunk again) and scored term at a time into a dense array, which costs
//! microseconds per thousand postings.
//!
//! Analysis: lowercased runs of letters and digits in the text's own language (detected per
//! chunk and per query from their function words, [`cortex_core::language`]): that language's
//! function words dropped, its Snowball stemmer (Porter 2 for English; French, Spanish,
//! German, Italian, Portuguese, Dutch), diacritics folded after stemming so that a customer
//! typing without accents matches. A text too short to tell is analysed in the index's
//! majority language (a query, or one in a language none of the chunks is in) or the
//! analyzer's fallback, English. BM25 with k1 = 0.9,
//! b = 0.4 (the BEIR baselines' settings).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rust_stemmers::Stemmer;

use cortex_core::ids::TenantId;
use cortex_core::knowledge::top_k;
pub use cortex_core::language::Language;
use cortex_core::language::{detect, fold_diacritics};

const K1: f32 = 0.9;
const B: f32 = 0.4;
/// Longest word indexed, in characters (longer runs are not words).
const MAX_WORD_CHARS: usize = 64;
/// Terms a query is cut to.
const MAX_QUERY_TERMS: usize = 64;

/// Turns text into index terms, in the text's language.
pub struct Analyzer {
    stemmers: Vec<Stemmer>,
    /// The language of texts too short to tell.
    pub fallback: Language,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::with_fallback(Language::English)
    }
}

/// The words of `text`: runs of letters and digits, up to [`MAX_WORD_CHARS`] long.
/// The Snowball stemmer of a language.
fn algorithm(language: Language) -> rust_stemmers::Algorithm {
    use rust_stemmers::Algorithm as A;
    match language {
        Language::English => A::English,
        Language::French => A::French,
        Language::Spanish => A::Spanish,
        Language::German => A::German,
        Language::Italian => A::Italian,
        Language::Portuguese => A::Portuguese,
        Language::Dutch => A::Dutch,
    }
}

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.chars().count() <= MAX_WORD_CHARS)
}

impl Analyzer {
    pub fn with_fallback(fallback: Language) -> Self {
        Self {
            stemmers: Language::ALL
                .iter()
                .map(|l| Stemmer::create(algorithm(*l)))
                .collect(),
            fallback,
        }
    }

    /// The language `text` is analysed in: its own, or the fallback.
    pub fn language_of(&self, text: &str) -> Language {
        detect(text).unwrap_or(self.fallback)
    }

    /// The terms of `text` in its own language, in order, repeats kept.
    pub fn terms(&self, text: &str) -> Vec<String> {
        self.terms_in(text, self.language_of(text))
    }

    /// The terms of `text` analysed as `language`.
    pub fn terms_in(&self, text: &str, language: Language) -> Vec<String> {
        // Lowercased character by character, exactly as the index build does.
        words(text)
            .filter_map(|w| {
                self.term(
                    &w.chars().flat_map(char::to_lowercase).collect::<String>(),
                    language,
                )
            })
            .collect()
    }

    /// The term of one lowercased word in `language`; `None` for a function word.
    fn term(&self, lower: &str, language: Language) -> Option<String> {
        if language.is_stop_word(lower) {
            return None;
        }
        let stem = self.stemmers[language.index()].stem(lower);
        Some(fold_diacritics(&stem).into_owned())
    }
}

/// One tenant's chunks, indexed. `K` is how the store names a chunk.
pub struct LexicalIndex<K> {
    pub version: i64,
    /// The tenant's rebuild counter when the rows were read: deletions bump it, and an index
    /// of another rebuild cannot be appended to.
    pub rebuild: i64,
    keys: Vec<K>,
    /// Per document: its number of indexed terms.
    lengths: Vec<f32>,
    /// Per document: `k1 · (1 − b + b · length / average length)`.
    norms: Vec<f32>,
    terms: HashMap<String, u32>,
    /// How many chunks are in each language ([`Language::index`]): a query too short to
    /// tell is analysed in the majority's.
    languages: [u32; 7],
    /// Postings of term `t`: `docs[offsets[t]..offsets[t + 1]]`, with their term frequencies.
    offsets: Vec<u32>,
    docs: Vec<u32>,
    freqs: Vec<u16>,
}

/// Postings being gathered, from nothing or from an index (to append to it).
struct Builder<K> {
    keys: Vec<K>,
    lengths: Vec<f32>,
    terms: HashMap<String, u32>,
    languages: [u32; 7],
    postings: Vec<Vec<(u32, u16)>>,
}

impl<K: Clone> Builder<K> {
    fn from_index(index: &LexicalIndex<K>) -> Self {
        let postings = index
            .offsets
            .windows(2)
            .map(|w| {
                let (from, to) = (w[0] as usize, w[1] as usize);
                index.docs[from..to]
                    .iter()
                    .copied()
                    .zip(index.freqs[from..to].iter().copied())
                    .collect()
            })
            .collect();
        Self {
            keys: index.keys.clone(),
            lengths: index.lengths.clone(),
            terms: index.terms.clone(),
            languages: index.languages,
            postings,
        }
    }

    fn add(&mut self, rows: Vec<(K, String)>, analyzer: &Analyzer) {
        let mut counts: HashMap<u32, u16> = HashMap::new();
        // Each distinct spelling is analysed once per language: stemming is most of the
        // build's cost.
        let mut memos: Vec<HashMap<String, Option<u32>>> = vec![HashMap::new(); 7];
        let mut lower = String::new();
        for (key, text) in rows {
            let doc = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
            self.keys.push(key);
            counts.clear();
            let language = analyzer.language_of(&text);
            self.languages[language.index()] += 1;
            let memo = &mut memos[language.index()];
            let mut length = 0usize;
            for word in words(&text) {
                lower.clear();
                lower.extend(word.chars().flat_map(char::to_lowercase));
                let id = match memo.get(lower.as_str()) {
                    Some(id) => *id,
                    None => {
                        let id = analyzer.term(&lower, language).map(|term| {
                            let next = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
                            let id = *self.terms.entry(term).or_insert(next);
                            if id == next {
                                self.postings.push(Vec::new());
                            }
                            id
                        });
                        memo.insert(lower.clone(), id);
                        id
                    }
                };
                if let Some(id) = id {
                    length += 1;
                    let c = counts.entry(id).or_insert(0);
                    *c = c.saturating_add(1);
                }
            }
            self.lengths.push(length as f32);
            for (&term, &tf) in &counts {
                self.postings[term as usize].push((doc, tf));
            }
        }
    }

    fn finish(self, version: i64, rebuild: i64) -> LexicalIndex<K> {
        let avg = self.lengths.iter().sum::<f32>() / self.lengths.len().max(1) as f32;
        let norms = self
            .lengths
            .iter()
            .map(|&l| K1 * (1.0 - B + B * l / avg.max(1.0)))
            .collect();
        let total: usize = self.postings.iter().map(Vec::len).sum();
        let mut offsets = Vec::with_capacity(self.postings.len() + 1);
        let mut docs = Vec::with_capacity(total);
        let mut freqs = Vec::with_capacity(total);
        offsets.push(0);
        for mut list in self.postings {
            list.sort_unstable_by_key(|&(d, _)| d);
            for (d, tf) in list {
                docs.push(d);
                freqs.push(tf);
            }
            offsets.push(u32::try_from(docs.len()).unwrap_or(u32::MAX));
        }
        LexicalIndex {
            version,
            rebuild,
            keys: self.keys,
            lengths: self.lengths,
            norms,
            terms: self.terms,
            languages: self.languages,
            offsets,
            docs,
            freqs,
        }
    }
}

impl<K: Clone> LexicalIndex<K> {
    /// Indexes `(key, text)` pairs as of `version`.
    pub fn build(version: i64, rows: Vec<(K, String)>, analyzer: &Analyzer) -> Self {
        let mut b = Builder {
            keys: Vec::with_capacity(rows.len()),
            lengths: Vec::with_capacity(rows.len()),
            terms: HashMap::new(),
            languages: [0; 7],
            postings: Vec::new(),
        };
        b.add(rows, analyzer);
        b.finish(version, 0)
    }

    /// The same index, recorded as read at rebuild `rebuild`.
    pub fn rebuilt_at(mut self, rebuild: i64) -> Self {
        self.rebuild = rebuild;
        self
    }

    /// A new index holding these rows after this one's, at `version`: the same as building
    /// it from all the rows (statistics included), without analysing the old rows again.
    pub fn appended(&self, version: i64, rows: Vec<(K, String)>, analyzer: &Analyzer) -> Self {
        let mut b = Builder::from_index(self);
        b.add(rows, analyzer);
        b.finish(version, self.rebuild)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The language most of the chunks are in (`fallback` for an empty index).
    pub fn majority_language(&self, fallback: Language) -> Language {
        Language::ALL
            .into_iter()
            .filter(|l| self.languages[l.index()] > 0)
            .max_by_key(|l| (self.languages[l.index()], std::cmp::Reverse(l.index())))
            .unwrap_or(fallback)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `k` best chunks for `query` by BM25, best first (ties: earlier rows first). A
    /// chunk matches when it holds any of the query's terms.
    pub fn search(&self, query: &str, k: usize, analyzer: &Analyzer) -> Vec<(K, f32)> {
        self.search_weighed(query, k, analyzer).0
    }

    /// [`Self::search`], and how much word evidence `query` can have: the sum of its terms'
    /// idf, a term no chunk holds counting at the highest. A chunk holding each term once at
    /// the average length scores about that by BM25, so a hit's score divided by it is the
    /// share of the question's words the chunk carries (the weight is 0 when the question
    /// has no terms).
    pub fn search_weighed(
        &self,
        query: &str,
        k: usize,
        analyzer: &Analyzer,
    ) -> (Vec<(K, f32)>, f32) {
        let terms = self.query_terms(query, analyzer);
        let weight: f32 = terms
            .iter()
            .take(MAX_QUERY_TERMS)
            .map(|t| {
                let df = self.terms.get(t).map_or(0, |&id| {
                    self.offsets[id as usize + 1] - self.offsets[id as usize]
                });
                self.idf(df as f32)
            })
            .sum();
        let seen: Vec<u32> = terms
            .into_iter()
            .filter_map(|t| self.terms.get(&t).copied())
            .take(MAX_QUERY_TERMS)
            .collect();
        if seen.is_empty() || k == 0 {
            return (Vec::new(), weight);
        }
        let mut scores = vec![0f32; self.keys.len()];
        for id in seen {
            let (from, to) = (
                self.offsets[id as usize] as usize,
                self.offsets[id as usize + 1] as usize,
            );
            let idf = self.idf((to - from) as f32);
            for (&d, &tf) in self.docs[from..to].iter().zip(&self.freqs[from..to]) {
                let tf = f32::from(tf);
                scores[d as usize] += idf * tf * (K1 + 1.0) / (tf + self.norms[d as usize]);
            }
        }
        // Every matching chunk scores above 0 (idf > 0 for any df ≤ n); one pass over the
        // dense array finds them in row order, cheaper than sorting a list of matches.
        let best = top_k(
            scores
                .iter()
                .enumerate()
                .filter(|(_, s)| **s > 0.0)
                .map(|(d, s)| (d, *s)),
            k,
        )
        .into_iter()
        .map(|(d, s)| (self.keys[d].clone(), s))
        .collect();
        (best, weight)
    }

    /// The distinct terms of `query`, in order, analysed in its own
    /// language where the index holds chunks in it (a Dutch-looking "De novo assembly…" asked
    /// of English abstracts stays English), else in the majority's.
    fn query_terms(&self, query: &str, analyzer: &Analyzer) -> Vec<String> {
        let language = detect(query)
            .filter(|l| self.languages[l.index()] > 0)
            .unwrap_or_else(|| self.majority_language(analyzer.fallback));
        let mut terms: Vec<String> = Vec::new();
        for t in analyzer.terms_in(query, language) {
            if !terms.contains(&t) {
                terms.push(t);
            }
        }
        terms
    }

    /// BM25's idf of a term `df` of the chunks hold.
    fn idf(&self, df: f32) -> f32 {
        let n = self.keys.len() as f32;
        (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
    }

    /// Approximate memory held, for the cache budget.
    pub fn bytes(&self) -> usize {
        self.keys.len() * (std::mem::size_of::<K>() + 4)
            + self.docs.len() * 6
            + self.lengths.len() * 4
            + self.offsets.len() * 4
            + self.terms.keys().map(|t| t.len() + 40).sum::<usize>()
    }
}

struct Entry<K> {
    index: Arc<LexicalIndex<K>>,
    used: Instant,
}

/// How a tenant's index catches up with the store, as [`LexicalCache::plan`] decided it.
pub struct Refresh<K> {
    /// The cached index the new chunks are appended to; `None`: built whole.
    base: Option<Arc<LexicalIndex<K>>>,
    version: i64,
    rebuild: i64,
}

impl<K> Refresh<K> {
    /// The chunks to read: those added after this version (`-1`: every chunk).
    pub fn since(&self) -> i64 {
        self.base.as_ref().map_or(-1, |i| i.version)
    }
}

/// Indexes by tenant, bounded in memory: over budget, the least recently used go (and are
/// rebuilt on their next search).
pub struct LexicalCache<K> {
    budget_bytes: usize,
    entries: Mutex<HashMap<TenantId, Entry<K>>>,
    pub analyzer: Analyzer,
}

impl<K: Clone> LexicalCache<K> {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            entries: Mutex::new(HashMap::new()),
            analyzer: Analyzer::default(),
        }
    }

    /// The tenant's cached index whatever its version (to append to).
    pub fn latest(&self, tenant: TenantId) -> Option<Arc<LexicalIndex<K>>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&tenant).map(|e| e.index.clone())
    }

    /// The tenant's index if it is at `version`.
    pub fn get(&self, tenant: TenantId, version: i64) -> Option<Arc<LexicalIndex<K>>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get_mut(&tenant)?;
        if entry.index.version != version {
            return None;
        }
        entry.used = Instant::now();
        Some(entry.index.clone())
    }

    /// Inside the store's snapshot, at the tenant's `version` and `rebuild` counters: what to
    /// read. The cached index is appended to when no chunk was deleted since it was built
    /// (same rebuild counter); otherwise it is built from every chunk.
    pub fn plan(&self, tenant: TenantId, version: i64, rebuild: i64) -> Refresh<K> {
        let base = self
            .latest(tenant)
            .filter(|i| i.rebuild == rebuild && i.version < version);
        Refresh {
            base,
            version,
            rebuild,
        }
    }

    /// The index from the chunks the plan asked for (appended to its base, or built whole),
    /// cached and returned. CPU-bound: stores call it on the blocking pool.
    pub fn refresh(
        &self,
        tenant: TenantId,
        plan: Refresh<K>,
        rows: Vec<(K, String)>,
    ) -> Arc<LexicalIndex<K>> {
        let index = Arc::new(match plan.base {
            Some(base) => base.appended(plan.version, rows, &self.analyzer),
            None => {
                LexicalIndex::build(plan.version, rows, &self.analyzer).rebuilt_at(plan.rebuild)
            }
        });
        self.put(tenant, index.clone());
        index
    }

    pub fn put(&self, tenant: TenantId, index: Arc<LexicalIndex<K>>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(
            tenant,
            Entry {
                index,
                used: Instant::now(),
            },
        );
        let mut total: usize = entries.values().map(|e| e.index.bytes()).sum();
        while total > self.budget_bytes && entries.len() > 1 {
            let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.used).map(|(t, _)| *t) else {
                break;
            };
            if let Some(e) = entries.remove(&oldest) {
                total -= e.index.bytes();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(texts: &[&str]) -> LexicalIndex<usize> {
        let rows = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (i, (*t).to_owned()))
            .collect();
        LexicalIndex::build(1, rows, &Analyzer::default())
    }

    #[test]
    fn an_appended_index_ranks_like_one_built_whole() {
        let texts = [
            "Refunds are issued within 14 days of receiving the item.",
            "We ship to Canada, Mexico and the United States.",
            "Express shipping takes two business days.",
            "Passwords can be reset from the login page.",
            "Refunds for digital goods are not possible after download.",
            "Shipping to Canada costs five dollars.",
        ];
        let rows: Vec<(usize, String)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (i, (*t).to_owned()))
            .collect();
        let a = Analyzer::default();
        let whole = LexicalIndex::build(2, rows.clone(), &a);
        let first = LexicalIndex::build(1, rows[..3].to_vec(), &a).rebuilt_at(4);
        let grown = first.appended(2, rows[3..].to_vec(), &a);
        assert_eq!((grown.version, grown.rebuild, grown.len()), (2, 4, 6));
        assert_eq!(first.len(), 3, "the original is untouched");
        for q in [
            "refunds",
            "shipping canada",
            "reset password",
            "digital download refund",
        ] {
            assert_eq!(whole.search(q, 6, &a), grown.search(q, 6, &a), "{q}");
        }
    }

    #[test]
    fn analysis_lowercases_stems_and_drops_function_words() {
        let a = Analyzer::default();
        assert_eq!(
            a.terms("How do REFUNDS work? Refunded within 30 days."),
            ["refund", "work", "refund", "within", "30", "day"]
        );
        assert!(a.terms(&"x".repeat(65)).is_empty());
    }

    #[test]
    fn each_chunk_and_query_is_analysed_in_its_own_language() {
        let a = Analyzer::default();
        assert_eq!(
            a.terms("Les réservations se font en ligne pour les groupes."),
            ["reserv", "font", "lign", "group"],
            "French stems, French function words dropped, accents folded"
        );
        let idx = index(&[
            "Les réservations se font en ligne ou par téléphone pendant les heures d'ouverture.",
            "Le restaurant est fermé le dimanche et le lundi.",
            "Reservations are made online or by phone.",
        ]);
        // Typed without accents, in French: the French chunk first.
        let hits = idx.search("reservation par telephone ?", 3, &a);
        assert_eq!(hits[0].0, 0, "{hits:?}");
        // Too short to tell: analysed in the index's majority language (French here).
        let hits = idx.search("fermeture dimanche", 3, &a);
        assert_eq!(hits.first().map(|h| h.0), Some(1), "{hits:?}");
        assert_eq!(idx.majority_language(Language::English), Language::French);
        // English is analysed as before.
        let hits = idx.search("how do I make a reservation by phone?", 3, &a);
        assert_eq!(hits[0].0, 2, "{hits:?}");
    }

    #[test]
    fn bm25_ranks_by_rare_terms_and_term_frequency() {
        let idx = index(&[
            "refunds are issued within five days",
            "shipping takes two days",
            "refund refund refund policy for damaged items",
            "our office dog is called Biscuit",
        ]);
        let hits = idx.search("refund for damaged items", 10, &Analyzer::default());
        let order: Vec<usize> = hits.iter().map(|(k, _)| *k).collect();
        assert_eq!(order, [2, 0], "only chunks with a query term match");
        assert!(hits[0].1 > hits[1].1);
        // "days" is in two chunks, "biscuit" in one: the rarer term weighs more.
        let hits = idx.search("days biscuit", 10, &Analyzer::default());
        assert_eq!(hits[0].0, 3);
        assert!(
            idx.search("the of and", 10, &Analyzer::default())
                .is_empty()
        );
        assert!(
            idx.search("unknownword", 10, &Analyzer::default())
                .is_empty()
        );
        assert_eq!(idx.search("days", 1, &Analyzer::default()).len(), 1);
    }

    #[test]
    fn scores_follow_the_bm25_formula() {
        // Two documents; "apple" in the first only, once; lengths 2 and 4 terms.
        let idx = index(&["apple pie", "banana bread banana split"]);
        let hits = idx.search("apple", 10, &Analyzer::default());
        let (n, df, len, avg) = (2.0f32, 1.0f32, 2.0f32, 3.0f32);
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        let want = idf * (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * len / avg));
        assert_eq!(hits.len(), 1);
        assert!((hits[0].1 - want).abs() < 1e-6, "{} vs {want}", hits[0].1);
    }

    #[test]
    fn the_cache_forgets_stale_versions_and_stays_in_budget() {
        let cache: LexicalCache<usize> = LexicalCache::new(1);
        let (t1, t2) = (TenantId::new(), TenantId::new());
        cache.put(t1, Arc::new(index(&["alpha"])));
        assert!(cache.get(t1, 1).is_some());
        assert!(cache.get(t1, 2).is_none(), "another version is stale");
        cache.put(t2, Arc::new(index(&["beta"])));
        assert!(
            cache.get(t1, 1).is_none(),
            "over budget, the older one went"
        );
        assert!(cache.get(t2, 1).is_some());
    }
}
