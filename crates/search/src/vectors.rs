//! Exact vector search in process, shared by both stores: each tenant's vectors of a model are
//! loaded once into one contiguous matrix and scanned. A version row per tenant and model, bumped in
//! the same transaction as every change to the vectors, tells each process (the server, a CLI
//! run beside it) when its copy is out of date.
//!
//! The scan is memory-bound (100k × 384 `f32` = 154 MB per query), so it reads an int8 copy of
//! the rows, a quarter of the bytes, and stays exact: each approximate score comes with a bound
//! on its error (`‖q‖₁ · scale / 2` for a row quantised with `scale`), every row whose upper
//! bound reaches the k-th best lower bound is re-scored from the `f32` rows, and the k best of
//! those are the k best of all — the same hits and scores as a full `f32` scan.
//!
//! Vectors added since a cached matrix was built are appended to a copy of it (each row
//! records the version that added it); only a deletion, which bumps the rebuild counter too,
//! makes the next search reload the tenant's vectors whole.
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
    /// The tenant's rebuild counter when the rows were loaded: deletions bump it, and a matrix
    /// of another rebuild cannot be appended to.
    pub rebuild: i64,
    pub dims: usize,
    pub hashes: Vec<String>,
    /// The vectors, row-major: what scores are computed from.
    pub data: Vec<f32>,
    /// The same rows as int8 codes, one scale per row: what the first pass reads.
    codes: Vec<i8>,
    scales: Vec<f32>,
}

/// Covers float rounding in both passes (the bound itself is for exact arithmetic).
const ROUNDING_SLACK: f32 = 1e-4;

impl Matrix {
    /// Builds a matrix from `(hash, vector)` rows, skipping rows of another dimension.
    pub fn new(version: i64, dims: usize, rows: Vec<(String, Vec<f32>)>) -> Self {
        let mut hashes = Vec::with_capacity(rows.len());
        let mut data = Vec::with_capacity(rows.len() * dims);
        let mut codes = Vec::with_capacity(rows.len() * dims);
        let mut scales = Vec::with_capacity(rows.len());
        for (hash, v) in rows {
            if v.len() == dims {
                hashes.push(hash);
                scales.push(cortex_kernels::quantize(&v, &mut codes));
                data.extend_from_slice(&v);
            }
        }
        Self {
            version,
            rebuild: 0,
            dims,
            hashes,
            data,
            codes,
            scales,
        }
    }

    /// The same matrix, recorded as loaded at rebuild `rebuild`.
    pub fn rebuilt_at(mut self, rebuild: i64) -> Self {
        self.rebuild = rebuild;
        self
    }

    /// A copy with `rows` added after the existing ones, at `version` (rows of another
    /// dimension are skipped). Copying is memory speed: far cheaper than reading every row
    /// back from the database.
    pub fn appended(&self, version: i64, rows: Vec<(String, Vec<f32>)>) -> Self {
        let added = Self::new(version, self.dims, rows);
        let mut hashes = Vec::with_capacity(self.hashes.len() + added.hashes.len());
        hashes.extend_from_slice(&self.hashes);
        hashes.extend(added.hashes);
        let mut data = Vec::with_capacity(self.data.len() + added.data.len());
        data.extend_from_slice(&self.data);
        data.extend(added.data);
        let mut codes = Vec::with_capacity(self.codes.len() + added.codes.len());
        codes.extend_from_slice(&self.codes);
        codes.extend(added.codes);
        let mut scales = Vec::with_capacity(self.scales.len() + added.scales.len());
        scales.extend_from_slice(&self.scales);
        scales.extend(added.scales);
        Self {
            version,
            rebuild: self.rebuild,
            dims: self.dims,
            hashes,
            data,
            codes,
            scales,
        }
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The `k` best hashes by cosine (vectors are unit length, so the dot product), exactly
    /// (see the module notes). Large matrices are scanned in parallel slices, one per core:
    /// one core does not saturate the memory bus.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(String, f32)> {
        if self.dims == 0 || query.len() != self.dims || k == 0 {
            return Vec::new();
        }
        let rows = self.hashes.len();
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(rows / PARALLEL_ROWS + 1)
            .max(1);
        let mut approx = vec![0f32; rows];
        if threads == 1 {
            cortex_kernels::scores_i8(&self.codes, &self.scales, query, &mut approx);
        } else {
            let per = rows.div_ceil(threads);
            std::thread::scope(|s| {
                for ((out, codes), scales) in approx
                    .chunks_mut(per)
                    .zip(self.codes.chunks(per * self.dims))
                    .zip(self.scales.chunks(per))
                {
                    s.spawn(move || cortex_kernels::scores_i8(codes, scales, query, out));
                }
            });
        }
        let l1: f32 = query.iter().map(|v| v.abs()).sum();
        let margin = |r: usize| l1 * self.scales[r] * 0.5 + ROUNDING_SLACK;
        // The k-th best lower bound: no row whose upper bound is below it can be in the top k.
        let floor = top_k(
            approx.iter().enumerate().map(|(r, &a)| (r, a - margin(r))),
            k,
        );
        let threshold = if floor.len() < k {
            f32::NEG_INFINITY
        } else {
            floor[k - 1].1
        };
        let exact = approx
            .iter()
            .enumerate()
            .filter(|&(r, &a)| a + margin(r) >= threshold)
            .map(|(r, _)| (r, dot(&self.data[r * self.dims..][..self.dims], query)));
        top_k(exact, k)
            .into_iter()
            .map(|(i, s)| (self.hashes[i].clone(), s))
            .collect()
    }

    fn bytes(&self) -> usize {
        self.data.len() * 4 + self.codes.len() + self.scales.len() * 4 + self.hashes.len() * 88
    }
}

/// Rows per extra scanning thread: below this a thread costs more than it saves.
const PARALLEL_ROWS: usize = 20_000;

struct Entry {
    matrix: Arc<Matrix>,
    used: Instant,
}

/// How a tenant's matrix catches up with the store, as [`VectorCache::plan`] decided it.
pub struct Refresh {
    /// The cached matrix the new rows are appended to; `None`: built whole.
    base: Option<Arc<Matrix>>,
    version: i64,
    rebuild: i64,
    dims: usize,
}

impl Refresh {
    /// The rows to read: those added after this version (`-1`: every row).
    pub fn since(&self) -> i64 {
        self.base.as_ref().map_or(-1, |m| m.version)
    }

    /// The rows of the matrix appended to, when one is reused.
    pub fn base_len(&self) -> Option<usize> {
        self.base.as_ref().map(|m| m.len())
    }
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

    /// The cached matrix whatever its version (to append to).
    pub fn latest(&self, tenant: TenantId, model: &str) -> Option<Arc<Matrix>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&(tenant, model.to_owned()))
            .map(|e| e.matrix.clone())
    }

    /// Inside the store's snapshot, at the tenant's `version` and `rebuild` counters: what to
    /// read. The cached matrix is appended to when nothing was deleted since it was built (same
    /// rebuild counter) and it has the dimensions asked for; otherwise the rows are read whole.
    pub fn plan(
        &self,
        tenant: TenantId,
        model: &str,
        dims: usize,
        version: i64,
        rebuild: i64,
    ) -> Refresh {
        let base = self
            .latest(tenant, model)
            .filter(|m| m.rebuild == rebuild && m.version < version && m.dims == dims);
        Refresh {
            base,
            version,
            rebuild,
            dims,
        }
    }

    /// The matrix from the rows the plan asked for (appended to its base, or built whole),
    /// cached and returned.
    pub fn refresh(
        &self,
        tenant: TenantId,
        model: &str,
        plan: Refresh,
        rows: Vec<(String, Vec<f32>)>,
    ) -> Arc<Matrix> {
        let matrix = Arc::new(match plan.base {
            Some(base) => base.appended(plan.version, rows),
            None => Matrix::new(plan.version, plan.dims, rows).rebuilt_at(plan.rebuild),
        });
        self.put(tenant, model, matrix.clone());
        matrix
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
    fn an_appended_matrix_searches_like_one_built_whole() {
        let rows: Vec<(String, Vec<f32>)> = (0..50)
            .map(|i| {
                let f = i as f32;
                (
                    format!("h{i}"),
                    unit(&[f.sin(), f.cos(), (f * 0.3).sin() + 1.1]),
                )
            })
            .collect();
        let whole = Matrix::new(2, 3, rows.clone());
        let first = Matrix::new(1, 3, rows[..30].to_vec()).rebuilt_at(7);
        let grown = first.appended(2, rows[30..].to_vec());
        assert_eq!((grown.version, grown.rebuild, grown.len()), (2, 7, 50));
        assert_eq!(first.len(), 30, "the original is untouched");
        for q in [[0.2, 0.9, 0.1], [1.0, 0.0, 0.5], [-0.3, 0.4, 0.9]] {
            assert_eq!(whole.search(&unit(&q), 5), grown.search(&unit(&q), 5));
        }
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

    /// What a plain `f32` scan of every row returns.
    fn full_scan(m: &Matrix, q: &[f32], k: usize) -> Vec<(String, f32)> {
        let scores = m
            .data
            .chunks_exact(m.dims)
            .map(|row| dot(row, q))
            .enumerate();
        top_k(scores, k)
            .into_iter()
            .map(|(i, s)| (m.hashes[i].clone(), s))
            .collect()
    }

    #[test]
    fn the_quantised_parallel_scan_returns_exactly_what_a_full_scan_does() {
        // Enough rows for two threads; 48 dimensions of pseudo-random unit vectors, and a
        // cluster of near-duplicates so many scores sit within the quantisation error of the
        // k-th best (the case the re-scoring exists for).
        let rows = PARALLEL_ROWS * 2 + 17;
        let dims = 48;
        let mut seed = 1u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 20_001) as f32 / 10_000.0 - 1.0
        };
        let base: Vec<f32> = (0..dims).map(|_| next()).collect();
        let data: Vec<(String, Vec<f32>)> = (0..rows)
            .map(|i| {
                let v: Vec<f32> = if i % 50 == 0 {
                    base.iter().map(|b| b + next() * 0.01).collect()
                } else {
                    (0..dims).map(|_| next()).collect()
                };
                (format!("h{i}"), unit(&v))
            })
            .collect();
        let m = Matrix::new(1, dims, data);
        for (qi, k) in [(0, 1), (1, 10), (2, 25), (3, 200)] {
            let q = if qi == 0 {
                unit(&base)
            } else {
                unit(&(0..dims).map(|_| next()).collect::<Vec<_>>())
            };
            assert_eq!(m.search(&q, k), full_scan(&m, &q, k), "query {qi}, k {k}");
        }
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
