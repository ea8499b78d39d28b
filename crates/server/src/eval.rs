//! `cortexlayer eval --dataset DIR`: retrieval quality on a BEIR-format dataset, measured
//! through the product's own path — every corpus record is uploaded as a document, processed
//! by the real pipeline (parse → chunk → lexical index → embeddings), and every query goes
//! through the search the API serves, in lexical, vector and hybrid mode.
//!
//! Format: `corpus.jsonl` (`_id`, `title`, `text`, optional `metadata.tenant`),
//! `queries.jsonl` (`_id`, `text`, optional `metadata.tenants`, a list) and `qrels.tsv`
//! (`query-id`, `corpus-id`, `score`, with a header line; `qrels/test.tsv` also works). Records
//! with a tenant go into that tenant, the rest into one default tenant; a query is asked in
//! each of its tenants (or the default one) and judged against the relevant documents that
//! live there. A hit from a document of another tenant would be counted as a leak.
//!
//! Scores: nDCG@10 (gain = relevance grade, as `trec_eval`), Recall@10 and MRR@10 over
//! documents (a document's rank is that of its best chunk), averaged over the (query, tenant)
//! pairs that have at least one relevant document; latency percentiles per mode.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use cortex_core::ids::{DocumentId, TenantId};
use cortex_core::knowledge::{DocumentStatus, SearchMode};
use cortex_core::store::Page;
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::bench::{percentile, scratch_state, scratch_tenant};
use crate::config::Settings;
use crate::knowledge::IncomingFile;
use crate::tenancy::TenantCtx;

/// Documents judged per query.
pub const CUTOFF: usize = 10;
/// Chunks asked for per query, so that `CUTOFF` distinct documents remain after merging the
/// chunks of one document.
const CHUNK_DEPTH: u32 = 40;
/// Documents uploaded per request.
const UPLOAD_BATCH: usize = 200;
pub(crate) const DEFAULT_TENANT: &str = "default";
const MODES: [(SearchMode, &str); 3] = [
    (SearchMode::Lexical, "lexical"),
    (SearchMode::Vector, "vector"),
    (SearchMode::Hybrid, "hybrid"),
];

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Metadata {
    pub(crate) tenant: Option<String>,
    #[serde(default)]
    pub(crate) tenants: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CorpusRecord {
    #[serde(rename = "_id")]
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) text: String,
    #[serde(default)]
    pub(crate) metadata: Option<Metadata>,
}

impl CorpusRecord {
    /// The tenant it belongs to: `metadata.tenant`, else [`DEFAULT_TENANT`].
    pub(crate) fn tenant(&self) -> String {
        self.metadata
            .as_ref()
            .and_then(|m| m.tenant.clone())
            .unwrap_or_else(|| DEFAULT_TENANT.to_owned())
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct QueryRecord {
    #[serde(rename = "_id")]
    pub(crate) id: String,
    pub(crate) text: String,
    #[serde(default)]
    pub(crate) metadata: Option<Metadata>,
}

/// A BEIR dataset as read from disk.
pub struct Dataset {
    corpus: Vec<CorpusRecord>,
    queries: Vec<QueryRecord>,
    /// query id → corpus id → relevance grade (> 0).
    qrels: HashMap<String, HashMap<String, u32>>,
}

pub(crate) fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

/// Reads `qrels` lines `query-id \t corpus-id \t score`; a first line that is not numeric in
/// its score column is the header. Grades ≤ 0 are not relevant.
pub fn parse_qrels(text: &str) -> anyhow::Result<HashMap<String, HashMap<String, u32>>> {
    let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
        if line.trim().is_empty() {
            continue;
        }
        anyhow::ensure!(cols.len() >= 3, "qrels line {}: expected 3 columns", i + 1);
        let Ok(score) = cols[2].parse::<i64>() else {
            anyhow::ensure!(i == 0, "qrels line {}: score is not a number", i + 1);
            continue;
        };
        if score > 0 {
            qrels
                .entry(cols[0].to_owned())
                .or_default()
                .insert(cols[1].to_owned(), u32::try_from(score).unwrap_or(u32::MAX));
        }
    }
    Ok(qrels)
}

impl Dataset {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let corpus: Vec<CorpusRecord> = read_jsonl(&dir.join("corpus.jsonl"))?;
        let queries: Vec<QueryRecord> = read_jsonl(&dir.join("queries.jsonl"))?;
        let qrels_path = [dir.join("qrels.tsv"), dir.join("qrels/test.tsv")]
            .into_iter()
            .find(|p| p.exists())
            .with_context(|| format!("no qrels.tsv in {}", dir.display()))?;
        let qrels = parse_qrels(&std::fs::read_to_string(&qrels_path)?)?;
        let mut seen = HashSet::new();
        for r in &corpus {
            anyhow::ensure!(seen.insert(&r.id), "corpus id {} appears twice", r.id);
        }
        Ok(Self {
            corpus,
            queries,
            qrels,
        })
    }
}

/// The uploaded text of a record: title, blank line, text. Control characters (a few corpus
/// records carry stray ones) become spaces, or the upload would be refused as binary.
pub(crate) fn document_text(r: &CorpusRecord) -> String {
    format!("{}\n\n{}\n", r.title.trim(), r.text.trim())
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}

/// nDCG at `k` of a ranked list of document ids against graded judgements.
pub fn ndcg(ranked: &[&str], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| f64::from(relevant.get(*id).copied().unwrap_or(0)) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &g)| f64::from(g) / (i as f64 + 2.0).log2())
        .sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// The share of relevant documents found in the first `k`.
pub fn recall(ranked: &[&str], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|id| relevant.contains_key(**id))
        .count();
    found as f64 / relevant.len() as f64
}

/// 1 / rank of the first relevant document within the first `k`, else 0.
pub fn reciprocal_rank(ranked: &[&str], relevant: &HashMap<String, u32>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|id| relevant.contains_key(*id))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

#[derive(Default)]
struct Totals {
    ndcg: f64,
    recall: f64,
    mrr: f64,
    judged: usize,
    latency_ms: Vec<f64>,
}

pub struct EvalOptions {
    pub dataset: PathBuf,
    pub json: bool,
    pub database_url: Option<String>,
    /// Evaluate only the first N queries (all when `None`).
    pub limit_queries: Option<usize>,
}

pub async fn run(settings: Settings, options: EvalOptions) -> anyhow::Result<()> {
    let data = Dataset::load(&options.dataset)?;
    let (state, dir) = scratch_state(settings, options.database_url.clone()).await?;
    let result = evaluate(&state, &data, &options).await;
    let _ = std::fs::remove_dir_all(dir);
    let report = result?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

async fn evaluate(
    state: &AppState,
    data: &Dataset,
    options: &EvalOptions,
) -> anyhow::Result<serde_json::Value> {
    // One scratch tenant per tenant name in the corpus.
    let mut by_tenant: BTreeMap<String, Vec<&CorpusRecord>> = BTreeMap::new();
    for r in &data.corpus {
        by_tenant.entry(r.tenant()).or_default().push(r);
    }
    let mut tenants: HashMap<String, TenantId> = HashMap::new();
    for name in by_tenant.keys() {
        tenants.insert(name.clone(), scratch_tenant(state, name).await?);
    }

    state
        .embedder
        .warm_up()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    // document → (tenant name, corpus id)
    let mut owner: HashMap<DocumentId, (String, String)> = HashMap::new();
    for (name, records) in &by_tenant {
        let ctx = TenantCtx::for_operator(state, tenants[name])
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for batch in records.chunks(UPLOAD_BATCH) {
            let files = batch
                .iter()
                .map(|r| IncomingFile {
                    filename: Some(format!("{}.txt", r.id)),
                    bytes: document_text(r).into_bytes(),
                })
                .collect();
            let docs = crate::knowledge::add_files(state, &ctx, files)
                .await
                .map_err(|e| anyhow::anyhow!("uploading {name}'s documents: {e}"))?;
            anyhow::ensure!(docs.len() == batch.len(), "upload returned a short list");
            for (d, r) in docs.iter().zip(batch) {
                owner.insert(d.id, (name.clone(), r.id.clone()));
            }
        }
    }
    let (chunks, failed) = process_all(state, &tenants, owner.len()).await?;
    let ingest_secs = started.elapsed().as_secs_f64();

    let mut pairs: Vec<(&QueryRecord, &str, HashMap<String, u32>)> = Vec::new();
    let mut skipped = 0usize;
    let mut docs_of: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (name, records) in &by_tenant {
        docs_of.insert(name, records.iter().map(|r| r.id.as_str()).collect());
    }
    let queries = data
        .queries
        .iter()
        .filter(|q| data.qrels.contains_key(&q.id))
        .take(options.limit_queries.unwrap_or(usize::MAX));
    for q in queries {
        let asked: Vec<String> = match q.metadata.as_ref().map(|m| m.tenants.clone()) {
            Some(list) if !list.is_empty() => list,
            _ => vec![DEFAULT_TENANT.to_owned()],
        };
        for name in asked {
            let Some((name, docs)) = docs_of.get_key_value(name.as_str()) else {
                skipped += 1;
                continue;
            };
            let relevant: HashMap<String, u32> = data.qrels[&q.id]
                .iter()
                .filter(|(id, _)| docs.contains(id.as_str()))
                .map(|(id, g)| (id.clone(), *g))
                .collect();
            if relevant.is_empty() {
                skipped += 1;
            } else {
                pairs.push((q, name, relevant));
            }
        }
    }

    let mut contexts: HashMap<&str, TenantCtx> = HashMap::new();
    for (name, id) in &tenants {
        contexts.insert(
            name.as_str(),
            TenantCtx::for_operator(state, *id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    let mut leaks = 0usize;
    let mut results = serde_json::Map::new();
    let mut latency = serde_json::Map::new();
    for (mode, label) in MODES {
        let mut t = Totals::default();
        for (q, tenant, relevant) in &pairs {
            let ctx = &contexts[tenant];
            let begun = Instant::now();
            let found = crate::knowledge::search::search(state, ctx, &q.text, CHUNK_DEPTH, mode)
                .await
                .map_err(|e| anyhow::anyhow!("query {}: {e}", q.id))?;
            t.latency_ms.push(begun.elapsed().as_secs_f64() * 1000.0);
            let mut ranked: Vec<&str> = Vec::new();
            for hit in &found.hits {
                match owner.get(&hit.chunk.document_id) {
                    Some((owner_tenant, corpus_id)) if owner_tenant == tenant => {
                        if !ranked.contains(&corpus_id.as_str()) {
                            ranked.push(corpus_id);
                        }
                    }
                    _ => leaks += 1,
                }
            }
            t.ndcg += ndcg(&ranked, relevant, CUTOFF);
            t.recall += recall(&ranked, relevant, CUTOFF);
            t.mrr += reciprocal_rank(&ranked, relevant, CUTOFF);
            t.judged += 1;
        }
        let n = t.judged.max(1) as f64;
        results.insert(
            label.to_owned(),
            json!({
                "ndcg@10": t.ndcg / n,
                "recall@10": t.recall / n,
                "mrr@10": t.mrr / n,
            }),
        );
        t.latency_ms.sort_by(f64::total_cmp);
        latency.insert(
            label.to_owned(),
            json!({
                "p50": percentile(&t.latency_ms, 50.0),
                "p95": percentile(&t.latency_ms, 95.0),
                "p99": percentile(&t.latency_ms, 99.0),
            }),
        );
    }
    let mut report = serde_json::Value::Object(results);
    report["latency_ms"] = serde_json::Value::Object(latency);
    report["dataset"] = json!({
        "path": options.dataset.display().to_string(),
        "documents": owner.len(),
        "documents_failed": failed,
        "chunks": chunks,
        "tenants": tenants.len(),
        "judged_queries": pairs.len(),
        "skipped_queries": skipped,
        "cross_tenant_hits": leaks,
        "ingest_seconds": ingest_secs,
        "backend": state.store.backend(),
        "embedding_model": state.embedder.model(),
    });
    Ok(report)
}

/// Runs the workers until every document of every tenant is ready or failed; returns the
/// chunk count and the failed documents.
pub(crate) async fn process_all(
    state: &AppState,
    tenants: &HashMap<String, TenantId>,
    expected: usize,
) -> anyhow::Result<(u64, usize)> {
    let mut settings = (*state.settings).clone();
    settings.knowledge.workers = state.settings.knowledge.workers.max(1);
    let worker_state = AppState {
        settings: std::sync::Arc::new(settings),
        ..state.clone()
    };
    let workers = crate::jobs::Workers::start(&worker_state);
    let outcome = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (mut done, mut chunks, mut failed) = (0usize, 0u64, 0usize);
        for tenant in tenants.values() {
            let mut page = Page::first(Page::MAX_LIMIT);
            loop {
                let docs = state.store.list_documents(*tenant, page).await?;
                for d in &docs {
                    match d.status {
                        DocumentStatus::Ready => {
                            done += 1;
                            chunks += u64::from(d.chunk_count);
                        }
                        DocumentStatus::Failed => {
                            done += 1;
                            failed += 1;
                        }
                        _ => {}
                    }
                }
                match docs.last() {
                    Some(last) if docs.len() == page.limit as usize => {
                        page.before = Some(last.id.0);
                    }
                    _ => break,
                }
            }
        }
        eprint!("\rprocessed {done}/{expected} documents");
        if done >= expected {
            eprintln!();
            break (chunks, failed);
        }
    };
    workers.shutdown(Duration::from_secs(5)).await;
    Ok(outcome)
}

fn print_table(report: &serde_json::Value) {
    let d = &report["dataset"];
    println!(
        "{}: {} documents ({} failed), {} chunks, {} tenant(s); {} judged queries ({} skipped); \
         ingested in {:.1} s on {} with {}",
        d["path"].as_str().unwrap_or(""),
        d["documents"],
        d["documents_failed"],
        d["chunks"],
        d["tenants"],
        d["judged_queries"],
        d["skipped_queries"],
        d["ingest_seconds"].as_f64().unwrap_or(0.0),
        d["backend"].as_str().unwrap_or(""),
        d["embedding_model"].as_str().unwrap_or(""),
    );
    println!(
        "{:<8} {:>8} {:>10} {:>7} {:>9} {:>9}",
        "mode", "nDCG@10", "Recall@10", "MRR@10", "p50 ms", "p99 ms"
    );
    for (_, label) in MODES {
        let m = &report[label];
        let l = &report["latency_ms"][label];
        println!(
            "{label:<8} {:>8.4} {:>10.4} {:>7.4} {:>9.2} {:>9.2}",
            m["ndcg@10"].as_f64().unwrap_or(0.0),
            m["recall@10"].as_f64().unwrap_or(0.0),
            m["mrr@10"].as_f64().unwrap_or(0.0),
            l["p50"].as_f64().unwrap_or(0.0),
            l["p99"].as_f64().unwrap_or(0.0),
        );
    }
    println!("cross-tenant hits: {}", d["cross_tenant_hits"]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(pairs: &[(&str, u32)]) -> HashMap<String, u32> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        let relevant = rel(&[("a", 1), ("b", 1)]);
        // Relevant at ranks 2 and 4.
        let ranked = ["x", "a", "y", "b"];
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((ndcg(&ranked, &relevant, 10) - dcg / idcg).abs() < 1e-12);
        assert_eq!(recall(&ranked, &relevant, 10), 1.0);
        assert_eq!(recall(&ranked, &relevant, 3), 0.5);
        assert_eq!(reciprocal_rank(&ranked, &relevant, 10), 0.5);
        assert_eq!(reciprocal_rank(&ranked, &relevant, 1), 0.0);
        // Perfect ranking; graded judgements use the grade as gain.
        assert!((ndcg(&["a", "b"], &relevant, 10) - 1.0).abs() < 1e-12);
        let graded = rel(&[("a", 2), ("b", 1)]);
        let swapped = (1.0 + 2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2());
        assert!((ndcg(&["b", "a"], &graded, 10) - swapped).abs() < 1e-12);
        assert_eq!(ndcg(&[], &relevant, 10), 0.0);
    }

    #[test]
    fn qrels_skip_the_header_and_unjudged_rows() {
        let q = parse_qrels("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n2\td3\t2\n")
            .expect("parse");
        assert_eq!(q["1"], rel(&[("d1", 1)]));
        assert_eq!(q["2"], rel(&[("d3", 2)]));
        assert!(parse_qrels("1\td1\t1\n2\td2\tx\n").is_err());
        assert!(parse_qrels("1\td1\n").is_err());
    }
}
