//! Questions asked again are not embedded again: a bounded in-memory cache of question vectors
//! in front of any [`Embedder`], keyed by the model's name and the question with its white
//! space normalised (the tokenizer splits on white space, so the vector is the same). Customers
//! ask the same few things ("opening hours", "where is my order"), widgets and channels
//! repeat greetings, and a paid embedding API is paid per call.
//!
//! Bounded by entries, in two generations: lookups read the current one, then the previous
//! (moving a hit forward); when the current one is full it becomes the previous and the
//! oldest generation is dropped. So at most `capacity` vectors are held, frequently asked
//! questions stay, and nothing grows with traffic. Only questions go through it;
//! documents' chunks are embedded once each anyway.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use cortex_core::ports::{EmbedError, Embedder};

/// Longest question kept, in bytes: a pasted page is not worth keeping.
const MAX_KEY_BYTES: usize = 2_048;

/// Question vectors by normalised text, at most `capacity` of them.
pub struct QueryCache {
    half: usize,
    generations: Mutex<Generations>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Generations {
    current: HashMap<String, Arc<[f32]>>,
    previous: HashMap<String, Arc<[f32]>>,
}

/// The cache's counters since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

/// The cache key: the model and the text with runs of white space as one space, trimmed.
pub fn key(model: &str, text: &str) -> String {
    let mut k = String::with_capacity(model.len() + 1 + text.len());
    k.push_str(model);
    k.push('\n');
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            k.push(' ');
        }
        k.push_str(word);
    }
    k
}

impl QueryCache {
    /// A cache of at most `capacity` vectors (0: keeps none).
    pub fn new(capacity: usize) -> Self {
        Self {
            half: capacity / 2,
            generations: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Arc<[f32]>> {
        if self.half == 0 {
            return None;
        }
        let mut g = self.lock();
        let found = match g.current.get(key) {
            Some(v) => Some(v.clone()),
            None => g.previous.remove(key).inspect(|v| {
                insert(&mut g, self.half, key.to_owned(), v.clone());
            }),
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn put(&self, key: String, vector: Arc<[f32]>) {
        if self.half == 0 || key.len() > MAX_KEY_BYTES {
            return;
        }
        insert(&mut self.lock(), self.half, key, vector);
    }

    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: g.current.len() + g.previous.len(),
        }
    }
}

fn insert(g: &mut Generations, half: usize, key: String, vector: Arc<[f32]>) {
    if g.current.len() >= half && !g.current.contains_key(&key) {
        g.previous = std::mem::take(&mut g.current);
    }
    g.current.insert(key, vector);
}

/// An [`Embedder`] whose question vectors go through a [`QueryCache`].
pub struct CachedQueries {
    inner: Arc<dyn Embedder>,
    cache: QueryCache,
}

impl CachedQueries {
    pub fn new(inner: Arc<dyn Embedder>, capacity: usize) -> Self {
        Self {
            inner,
            cache: QueryCache::new(capacity),
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.cache.stats()
    }
}

#[async_trait]
impl Embedder for CachedQueries {
    fn model(&self) -> &str {
        self.inner.model()
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn max_input_tokens(&self) -> usize {
        self.inner.max_input_tokens()
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner.count_tokens(text)
    }

    async fn warm_up(&self) -> Result<(), EmbedError> {
        self.inner.warm_up().await
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed(texts).await
    }

    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let key = key(self.inner.model(), text);
        if let Some(v) = self.cache.get(&key) {
            return Ok(v.to_vec());
        }
        let v = self.inner.embed_query(text).await?;
        self.cache.put(key, Arc::from(v.as_slice()));
        Ok(v)
    }

    async fn embed_documents(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.embed_documents(texts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Embeds a text as `[calls so far, length]`, so a cached vector shows the call it came from.
    struct Counting(AtomicU64);

    #[async_trait]
    impl Embedder for Counting {
        fn model(&self) -> &str {
            "counting"
        }
        fn dimensions(&self) -> usize {
            2
        }
        fn max_input_tokens(&self) -> usize {
            256
        }
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
        async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
            Ok(texts
                .iter()
                .map(|t| {
                    let n = self.0.fetch_add(1, Ordering::SeqCst);
                    vec![n as f32, t.len() as f32]
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn a_question_asked_again_is_embedded_once_whatever_its_spacing() {
        let cached = CachedQueries::new(Arc::new(Counting(AtomicU64::new(0))), 100);
        let first = cached.embed_query("opening hours on sunday").await.unwrap();
        let again = cached
            .embed_query("  opening   hours\non sunday ")
            .await
            .unwrap();
        assert_eq!(first, again);
        let other = cached.embed_query("Opening hours on Sunday").await.unwrap();
        assert_ne!(other, first, "letter case is the model's business");
        assert_eq!(
            cached.stats(),
            CacheStats {
                hits: 1,
                misses: 2,
                entries: 2
            }
        );
        // Documents' chunks never go through the cache.
        let docs = cached
            .embed_documents(vec!["opening hours on sunday".into()])
            .await
            .unwrap();
        assert_ne!(docs[0], first);
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity_and_keeps_what_is_asked_often() {
        let cache = QueryCache::new(10);
        let v: Arc<[f32]> = Arc::from(vec![1.0f32].as_slice());
        for i in 0..1_000 {
            cache.put(format!("q{i}"), v.clone());
            // A frequent question, asked between every few others.
            if i % 3 == 0 && cache.get("hours").is_none() {
                cache.put("hours".into(), v.clone());
            }
            assert!(
                cache.stats().entries <= 10,
                "{} entries",
                cache.stats().entries
            );
        }
        assert!(cache.get("hours").is_some());
        assert!(cache.get("q0").is_none());
        assert!(cache.get("q999").is_some());
        let none = QueryCache::new(0);
        none.put("q".into(), v);
        assert!(none.get("q").is_none());
        assert_eq!(none.stats().entries, 0);
        let long = "x".repeat(MAX_KEY_BYTES + 1);
        cache.put(long.clone(), Arc::from(vec![2.0f32].as_slice()));
        assert!(cache.get(&long).is_none(), "a pasted page is not kept");
    }
}
