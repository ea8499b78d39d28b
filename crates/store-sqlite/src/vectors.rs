//! Exact vector search for the embedded backend: each tenant's vectors of a model are loaded
//! once into one contiguous matrix and scanned with a vectorising dot product. A version row
//! per tenant and model, bumped in the same transaction as every change to the vectors, tells
//! each process (the server, a CLI run beside it) when its copy is out of date.
//!
//! The cache is bounded: when the matrices held exceed the budget, the least recently used
//! tenants are dropped (and reloaded on their next search).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cortex_core::ids::TenantId;
use cortex_core::knowledge::{dot, top_k};

/// One tenant's vectors of one model.
pub struct Matrix {
    pub version: i64,
    pub dims: usize,
    pub hashes: Vec<String>,
    pub data: Vec<f32>,
}

impl Matrix {
    /// Builds a matrix from `(hash, vector)` rows, skipping rows of another dimension.
    pub fn new(version: i64, dims: usize, rows: Vec<(String, Vec<f32>)>) -> Self {
        let mut hashes = Vec::with_capacity(rows.len());
        let mut data = Vec::with_capacity(rows.len() * dims);
        for (hash, v) in rows {
            if v.len() == dims {
                hashes.push(hash);
                data.extend_from_slice(&v);
            }
        }
        Self {
            version,
            dims,
            hashes,
            data,
        }
    }

    /// The `k` best hashes by cosine (vectors are unit length, so the dot product). Large
    /// matrices are scanned in parallel slices, one per core: the scan is memory-bound and
    /// one core does not saturate the memory bus.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(String, f32)> {
        if self.dims == 0 || query.len() != self.dims {
            return Vec::new();
        }
        let rows = self.hashes.len();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(rows / PARALLEL_ROWS + 1)
            .max(1);
        let best = if threads == 1 {
            scan(&self.data, self.dims, query, 0, k)
        } else {
            let per = rows.div_ceil(threads);
            let mut merged: Vec<(usize, f32)> = std::thread::scope(|s| {
                let handles: Vec<_> = self
                    .data
                    .chunks(per * self.dims)
                    .enumerate()
                    .map(|(i, slice)| s.spawn(move || scan(slice, self.dims, query, i * per, k)))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            });
            merged.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            merged.truncate(k);
            merged
        };
        best.into_iter()
            .map(|(i, s)| (self.hashes[i].clone(), s))
            .collect()
    }

    fn bytes(&self) -> usize {
        self.data.len() * 4 + self.hashes.len() * 88
    }
}

/// Rows per extra scanning thread: below this a thread costs more than it saves.
const PARALLEL_ROWS: usize = 20_000;

/// The `k` best rows of `data` (row-major, `dims` wide), numbered from `first`.
fn scan(data: &[f32], dims: usize, query: &[f32], first: usize, k: usize) -> Vec<(usize, f32)> {
    let scores = data
        .chunks_exact(dims)
        .map(|row| dot(row, query))
        .enumerate()
        .map(|(i, s)| (first + i, s));
    top_k(scores, k)
}

struct Entry {
    matrix: Arc<Matrix>,
    used: Instant,
}

/// Matrices by tenant and model.
pub struct VectorCache {
    budget_bytes: usize,
    entries: Mutex<HashMap<(TenantId, String), Entry>>,
}

impl VectorCache {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget_bytes,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached matrix if it is at `version`.
    pub fn get(&self, tenant: TenantId, model: &str, version: i64) -> Option<Arc<Matrix>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get_mut(&(tenant, model.to_owned()))?;
        if entry.matrix.version != version {
            return None;
        }
        entry.used = Instant::now();
        Some(entry.matrix.clone())
    }

    pub fn put(&self, tenant: TenantId, model: &str, matrix: Arc<Matrix>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(
            (tenant, model.to_owned()),
            Entry {
                matrix,
                used: Instant::now(),
            },
        );
        let mut total: usize = entries.values().map(|e| e.matrix.bytes()).sum();
        while total > self.budget_bytes && entries.len() > 1 {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(e) = entries.remove(&oldest) {
                total -= e.matrix.bytes();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn search_ranks_by_cosine_and_skips_other_dimensions() {
        let m = Matrix::new(
            1,
            3,
            vec![
                ("a".into(), unit(&[1.0, 0.0, 0.0])),
                ("b".into(), unit(&[1.0, 1.0, 0.0])),
                ("c".into(), unit(&[0.0, 0.0, 1.0])),
                ("d".into(), vec![1.0, 0.0]),
            ],
        );
        let got = m.search(&unit(&[1.0, 0.2, 0.0]), 2);
        assert_eq!(
            got.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(m.search(&[1.0, 0.0], 2).is_empty());
    }

    #[test]
    fn the_parallel_scan_finds_what_the_serial_one_does() {
        let rows = PARALLEL_ROWS * 3 + 17;
        let data: Vec<(String, Vec<f32>)> = (0..rows)
            .map(|i| {
                (
                    format!("h{i}"),
                    unit(&[(i as f32 * 0.37).sin(), (i as f32 * 0.11).cos(), 0.3]),
                )
            })
            .collect();
        let m = Matrix::new(1, 3, data);
        let q = unit(&[0.2, 0.9, 0.1]);
        let parallel = m.search(&q, 25);
        let serial: Vec<(String, f32)> = scan(&m.data, 3, &q, 0, 25)
            .into_iter()
            .map(|(i, s)| (m.hashes[i].clone(), s))
            .collect();
        assert_eq!(parallel, serial);
    }

    #[test]
    fn the_cache_forgets_stale_versions_and_stays_in_budget() {
        let cache = VectorCache::new(1_700);
        let t1 = TenantId::new();
        let t2 = TenantId::new();
        let m = |v| Arc::new(Matrix::new(v, 4, vec![("h".into(), vec![0.5; 4])]));
        cache.put(t1, "m", m(1));
        assert!(cache.get(t1, "m", 1).is_some());
        assert!(cache.get(t1, "m", 2).is_none());
        let big = Arc::new(Matrix::new(1, 400, vec![("h".into(), vec![0.1; 400])]));
        cache.put(t2, "m", big);
        assert!(
            cache.get(t1, "m", 1).is_none(),
            "older entry evicted over budget"
        );
        assert!(cache.get(t2, "m", 1).is_some());
    }
}
