//! Embedding throughput of the local MiniLM on this machine.
//!
//! `cargo run --release -p cortex-ai --example embed_throughput -- MODEL_DIR [PASSAGES] [CORPUS.jsonl] [--write OUT.jsonl] [--passages-only]`
//!
//! Embeds PASSAGES (default 128) passages of about 256 tokens — built from the `text`/`title`
//! fields of a BEIR `corpus.jsonl` if given, else from a fixed English paragraph — and prints
//! passages/s and tokens/s (tokens the model actually processed, markers included, after
//! truncation at 256). Threads: `RAYON_NUM_THREADS` (default: all cores). `--write` saves each
//! passage with its embedding (`{"text", "embedding"}` per line), so another implementation
//! can embed the same passages and compare (`scripts/bench-embed.sh`).
//! `CORTEX_EMBED_PRECISION=bf16` runs the encoder's linear layers in bfloat16; `--passages-only`
//! stops after the passages (no single-question passes).

use std::path::PathBuf;
use std::time::Instant;

use cortex_ai::MiniLm;
use cortex_ai::encoder::Precision;
use cortex_ai::minilm::MAX_TOKENS;

const FILLER: &str = "Customers can return unused items within thirty days of delivery for a full refund, \
provided the original packaging is intact and a proof of purchase is supplied. Refunds are issued to the \
original payment method within five business days after the warehouse inspects the returned goods.";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().collect();
    let write = match args.iter().position(|a| a == "--write") {
        Some(i) if i + 1 < args.len() => {
            let path = args.remove(i + 1);
            args.remove(i);
            Some(path)
        }
        Some(_) => return Err("--write needs a file".into()),
        None => None,
    };
    let passages_only = match args.iter().position(|a| a == "--passages-only") {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let dir = PathBuf::from(
        args.get(1)
            .ok_or("usage: embed_throughput MODEL_DIR [PASSAGES] [CORPUS.jsonl] [--write OUT]")?,
    );
    let n: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(128);
    let precision = match std::env::var("CORTEX_EMBED_PRECISION").as_deref() {
        Ok("bf16") => Precision::Bf16,
        Ok("f16") => Precision::F16,
        Ok("f32") | Err(_) => Precision::F32,
        Ok(other) => return Err(format!("CORTEX_EMBED_PRECISION={other}: f32, bf16 or f16").into()),
    };
    let model = MiniLm::load_with(&dir, precision)?;

    let sources: Vec<String> = match args.get(3) {
        Some(path) => std::fs::read_to_string(path)?
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                format!(
                    "{} {}",
                    v["title"].as_str().unwrap_or(""),
                    v["text"].as_str().unwrap_or("")
                )
            })
            .collect(),
        None => vec![FILLER.to_owned()],
    };
    // Passages of at least 256 tokens: concatenate sources until long enough.
    let mut passages = Vec::with_capacity(n);
    let mut it = sources.iter().cycle();
    while passages.len() < n {
        let mut p = String::new();
        while model.count_tokens(&p) < MAX_TOKENS {
            p.push(' ');
            p.push_str(it.next().ok_or("empty corpus")?);
        }
        passages.push(p);
    }
    let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|p| (model.count_tokens(p) + 2).min(MAX_TOKENS))
        .sum();

    model.embed(&refs[..refs.len().min(8)])?; // warm-up
    // Eight passages (2,048 tokens, a full pass of the server's encoder queue) at a time, each
    // group timed: on a shared machine the median and best group say more than the total.
    let start = Instant::now();
    let mut out = Vec::with_capacity(n);
    let mut rates = Vec::new();
    for group in refs.chunks(8) {
        let t = Instant::now();
        out.extend(model.embed(group)?);
        let group_tokens: usize = group
            .iter()
            .map(|p| (model.count_tokens(p) + 2).min(MAX_TOKENS))
            .sum();
        rates.push(group_tokens as f64 / t.elapsed().as_secs_f64());
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(out.len(), n);
    rates.sort_by(f64::total_cmp);
    println!(
        "{n} passages, {tokens} tokens in {secs:.2} s: {:.1} passages/s, {:.0} tokens/s; passes of 8: median {:.0}, best {:.0} tokens/s (threads: {})",
        n as f64 / secs,
        tokens as f64 / secs,
        rates[rates.len() / 2],
        rates[rates.len() - 1],
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into())
    );
    if passages_only {
        return Ok(());
    }
    // Latency of one short query, as a search embeds it.
    let queries = [
        "how do refunds work?",
        "I forgot my password and the reset link expired",
        "0-dimensional biomaterials show inductive properties.",
    ];
    let mut ms: Vec<f64> = (0..300)
        .map(|i| {
            let t = Instant::now();
            model
                .embed(&[queries[i % queries.len()]])
                .map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    println!(
        "one short query: p50 {:.2} ms, p99 {:.2} ms",
        ms[ms.len() / 2],
        ms[ms.len() * 99 / 100]
    );
    let long = "Low-dose aspirin taken daily for at least five years reduces the incidence of \
                colorectal cancer in adults over fifty, according to randomised trials \
                reported between 1990 and 2010 in several countries.";
    let mut ms: Vec<f64> = (0..200)
        .map(|_| {
            let t = Instant::now();
            model
                .embed(&[long])
                .map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    ms.sort_by(f64::total_cmp);
    println!(
        "one {}-token query: p50 {:.2} ms, p99 {:.2} ms",
        model.count_tokens(long) + 2,
        ms[ms.len() / 2],
        ms[ms.len() * 99 / 100]
    );
    // Passes of 1 to 32 questions: the time of one pass of each size.
    for size in [1usize, 2, 4, 8, 12, 16, 24, 32] {
        let batch: Vec<&str> = queries
            .iter()
            .chain([&long])
            .cycle()
            .take(size)
            .copied()
            .collect();
        let tokens: usize = batch.iter().map(|q| model.count_tokens(q) + 2).sum();
        let mut ms: Vec<f64> = (0..60)
            .map(|_| {
                let t = Instant::now();
                model.embed(&batch).map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        ms.sort_by(f64::total_cmp);
        println!(
            "pass of {size:2} questions ({tokens:4} tokens): p50 {:.2} ms, {:.0} questions/s",
            ms[ms.len() / 2],
            size as f64 * 1e3 / ms[ms.len() / 2]
        );
    }
    if let Some(path) = write {
        let lines: Vec<String> = refs
            .iter()
            .zip(&out)
            .map(|(text, embedding)| {
                serde_json::json!({ "text": text, "embedding": embedding }).to_string()
            })
            .collect();
        std::fs::write(path, lines.join("\n") + "\n")?;
    }
    Ok(())
}
