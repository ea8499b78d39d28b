//! `cortexlayer eval --answers DIR`: answer quality on questions customers actually ask,
//! measured through the product's own path — each help centre's pages are uploaded into a
//! scratch tenant of their own and processed by the real pipeline, and every question goes
//! through the answer engine the chat API serves (follow-ups in the same conversation as the
//! messages before them).
//!
//! Layout: `DIR/questions.jsonl` and one folder per help centre (`DIR/<centre>/`, its files
//! uploaded as documents). A question is `{id, centre, lang, split, kind, question,
//! history?, expect | handoff}`: `expect` lists phrases of the documents one of which the
//! answer must contain (whitespace, case and apostrophes aside), `null` when the documents do
//! not answer and the bot must abstain; `handoff: true` when the customer asks for a person.
//!
//! Scores, per split (`dev` to tune on, `holdout` to report) and language: the share of
//! answerable questions answered with the fact; abstention precision (abstentions that were
//! right) and recall (unanswerable questions abstained on); handoff recall; answer latency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cortex_core::conversations::Channel;
use serde::Deserialize;
use serde_json::json;

use crate::answer::{Answer, Question};
use crate::app::AppState;
use crate::bench::{percentile, scratch_state, scratch_tenant};
use crate::config::Settings;
use crate::knowledge::IncomingFile;
use crate::tenancy::TenantCtx;

#[derive(Debug, Deserialize)]
pub struct AnswerQuestion {
    pub id: String,
    pub centre: String,
    pub lang: String,
    pub split: String,
    #[serde(default)]
    pub kind: String,
    pub question: String,
    #[serde(default)]
    pub history: Vec<String>,
    /// Phrases one of which the answer must contain; `None` for an abstention case.
    #[serde(default)]
    pub expect: Option<Vec<String>>,
    #[serde(default)]
    pub handoff: bool,
}

pub struct AnswerEvalOptions {
    pub dir: PathBuf,
    pub json: bool,
    pub database_url: Option<String>,
    /// Print every question judged wrong with what the bot said.
    pub show_misses: bool,
    /// Ask every question at each abstention threshold of the sweep: the calibration,
    /// chosen on the `dev` split.
    pub calibrate: bool,
}

/// How one question was judged.
#[derive(Debug, Clone)]
pub struct Judged {
    pub id: String,
    pub lang: String,
    pub split: String,
    pub expected: Expected,
    pub abstained: bool,
    pub handed_off: bool,
    pub right: bool,
    pub latency_ms: f64,
    pub answer: String,
    /// The relevance the abstention threshold was compared with.
    pub relevance: Option<f32>,
    /// Whether the answer holds the expected fact (ignoring abstention).
    pub has_fact: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Fact,
    Abstain,
    Handoff,
}

/// Case, whitespace (including no-break spaces) and apostrophes folded, so that a phrase
/// matches however the page or the answer spaced it.
fn fold(text: &str) -> String {
    text.replace(['\u{2019}', '\u{2018}'], "'")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

pub fn read_questions(path: &Path) -> anyhow::Result<Vec<AnswerQuestion>> {
    crate::eval::read_jsonl(path)
}

/// Judges one answer against its question.
pub fn judge(q: &AnswerQuestion, a: &Answer, latency_ms: f64) -> Judged {
    let said = fold(&a.text);
    let has_fact = q
        .expect
        .as_ref()
        .is_some_and(|phrases| phrases.iter().any(|p| said.contains(&fold(p))));
    let (expected, right) = if q.handoff {
        (Expected::Handoff, a.handoff_requested())
    } else {
        match &q.expect {
            Some(_) => (Expected::Fact, !a.abstained() && has_fact),
            None => (Expected::Abstain, a.abstained()),
        }
    };
    Judged {
        id: q.id.clone(),
        lang: q.lang.clone(),
        split: q.split.clone(),
        expected,
        abstained: a.abstained(),
        handed_off: a.handoff_requested(),
        right,
        latency_ms,
        answer: a.text.clone(),
        relevance: a.relevance,
        has_fact,
    }
}

/// Asks `q` of the tenant the way a customer would: its history first, in one conversation.
pub async fn ask_question(
    state: &AppState,
    ctx: &TenantCtx,
    q: &AnswerQuestion,
) -> anyhow::Result<(Answer, f64)> {
    let mut conversation = None;
    for earlier in &q.history {
        let a = crate::answer::ask(state, ctx, question(earlier, conversation), None)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", q.id))?;
        conversation = Some(a.conversation_id);
    }
    let begun = Instant::now();
    let a = crate::answer::ask(state, ctx, question(&q.question, conversation), None)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", q.id))?;
    Ok((a, begun.elapsed().as_secs_f64() * 1000.0))
}

fn question(text: &str, conversation_id: Option<cortex_core::ids::ConversationId>) -> Question {
    Question {
        message: text.to_owned(),
        conversation_id,
        channel: Channel::Api,
        history: Vec::new(),
        customer: None,
    }
}

/// The scores of a set of judged questions.
pub fn scores(judged: &[&Judged]) -> serde_json::Value {
    let count = |f: &dyn Fn(&Judged) -> bool| judged.iter().filter(|j| f(j)).count();
    let answerable = count(&|j| j.expected == Expected::Fact);
    let answered = count(&|j| j.expected == Expected::Fact && j.right);
    let unanswerable = count(&|j| j.expected == Expected::Abstain);
    let abstained_right = count(&|j| j.expected == Expected::Abstain && j.abstained);
    let abstained = count(&|j| j.expected != Expected::Handoff && j.abstained);
    let handoffs = count(&|j| j.expected == Expected::Handoff);
    let handed = count(&|j| j.expected == Expected::Handoff && j.handed_off);
    let share = |n: usize, of: usize| {
        if of == 0 {
            serde_json::Value::Null
        } else {
            json!((n as f64 / of as f64 * 1000.0).round() / 1000.0)
        }
    };
    let mut latency: Vec<f64> = judged.iter().map(|j| j.latency_ms).collect();
    latency.sort_by(f64::total_cmp);
    json!({
        "questions": judged.len(),
        "answerable": answerable,
        "answered_with_fact": share(answered, answerable),
        "unanswerable": unanswerable,
        "abstention_precision": share(abstained_right, abstained),
        "abstention_recall": share(abstained_right, unanswerable),
        "handoff_questions": handoffs,
        "handoff_recall": share(handed, handoffs),
        "latency_ms": {
            "p50": (percentile(&latency, 50.0) * 10.0).round() / 10.0,
            "p99": (percentile(&latency, 99.0) * 10.0).round() / 10.0,
        },
    })
}

/// The report: scores per split and language, then for all.
pub fn report(judged: &[Judged]) -> serde_json::Value {
    let mut groups: BTreeMap<String, Vec<&Judged>> = BTreeMap::new();
    for j in judged {
        for key in [
            format!("{} {}", j.split, j.lang),
            format!("{} all", j.split),
            format!("all {}", j.lang),
            "all all".to_owned(),
        ] {
            groups.entry(key).or_default().push(j);
        }
    }
    let mut out = serde_json::Map::new();
    for (key, members) in groups {
        out.insert(key, scores(&members));
    }
    serde_json::Value::Object(out)
}

pub async fn run(settings: Settings, options: AnswerEvalOptions) -> anyhow::Result<()> {
    let questions = read_questions(&options.dir.join("questions.jsonl"))?;
    let (state, dir) = scratch_state(settings, options.database_url.clone()).await?;
    let result = evaluate(&state, &options.dir, &questions, options.calibrate).await;
    let _ = std::fs::remove_dir_all(dir);
    let mut runs = result?;
    if options.calibrate {
        let chosen = print_calibration(&runs);
        if options.show_misses
            && let Some((_, judged)) = runs.iter().find(|(t, _)| *t == Some(chosen))
        {
            print_misses(judged);
        }
        return Ok(());
    }
    let judged = runs.pop().map(|(_, j)| j).unwrap_or_default();
    let report = report(&judged);
    if options.json {
        let misses: Vec<_> = judged
            .iter()
            .filter(|j| !j.right)
            .map(|j| json!({ "id": j.id, "answer": j.answer }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "scores": report, "misses": misses }))?
        );
        return Ok(());
    }
    println!(
        "{:<14} {:>4} {:>10} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8}",
        "split lang",
        "n",
        "answered",
        "unans.",
        "abst.prec",
        "abst.rec",
        "handoff",
        "p50 ms",
        "p99 ms"
    );
    let pct = |v: &serde_json::Value| {
        v.as_f64()
            .map_or("—".to_owned(), |x| format!("{:.1} %", x * 100.0))
    };
    for (key, s) in report.as_object().into_iter().flatten() {
        println!(
            "{:<14} {:>4} {:>10} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8}",
            key,
            s["questions"],
            pct(&s["answered_with_fact"]),
            s["unanswerable"],
            pct(&s["abstention_precision"]),
            pct(&s["abstention_recall"]),
            pct(&s["handoff_recall"]),
            s["latency_ms"]["p50"],
            s["latency_ms"]["p99"],
        );
    }
    if options.show_misses {
        print_misses(&judged);
    }
    Ok(())
}

fn print_misses(judged: &[Judged]) {
    for j in judged.iter().filter(|j| !j.right) {
        let said: String = j.answer.chars().take(160).collect();
        println!(
            "MISS {} ({:?}): {}",
            j.id,
            j.expected,
            said.replace('\n', " ")
        );
    }
}

/// Uploads each help centre into its own tenant, waits for processing, then asks every
/// question of its centre (without the plans' chat rate limits: this is a measurement): once
/// at the bots' default threshold (`(None, judged)`), or with `calibrate` once at each
/// threshold of the sweep.
pub async fn evaluate(
    state: &AppState,
    dir: &Path,
    questions: &[AnswerQuestion],
    calibrate: bool,
) -> anyhow::Result<Vec<(Option<f32>, Vec<Judged>)>> {
    let state = &AppState {
        limiter: std::sync::Arc::new(crate::bench::Unlimited),
        ..state.clone()
    };
    state
        .embedder
        .warm_up()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut contexts: BTreeMap<String, TenantCtx> = BTreeMap::new();
    let mut tenants = std::collections::HashMap::new();
    let mut uploaded = 0;
    for q in questions {
        if contexts.contains_key(&q.centre) {
            continue;
        }
        let tenant = scratch_tenant(state, &q.centre).await?;
        let ctx = TenantCtx::for_operator(state, tenant)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let folder = dir.join(&q.centre);
        let mut files = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
            .with_context(|| format!("reading {}", folder.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            files.push(IncomingFile {
                filename: path.file_name().map(|n| n.to_string_lossy().into_owned()),
                bytes: std::fs::read(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
            });
        }
        uploaded += files.len();
        crate::knowledge::add_files(state, &ctx, files)
            .await
            .map_err(|e| anyhow::anyhow!("uploading {}: {e}", q.centre))?;
        tenants.insert(q.centre.clone(), tenant);
        contexts.insert(q.centre.clone(), ctx);
    }
    let (_, failed) = crate::eval::process_all(state, &tenants, uploaded).await?;
    anyhow::ensure!(failed == 0, "{failed} document(s) failed to process");
    // Calibration asks everything again at each threshold rather than judging every
    // threshold from one run's relevances: what the engine says may depend on the threshold
    // beyond the gate (it was once the extractive answerer's floor too).
    let thresholds: Vec<Option<f32>> = if calibrate {
        CALIBRATION_STEPS
            .map(|step| Some(step as f32 / 100.0))
            .collect()
    } else {
        vec![None]
    };
    let mut runs = Vec::with_capacity(thresholds.len());
    for threshold in thresholds {
        if let Some(t) = threshold {
            for ctx in contexts.values() {
                let bot = cortex_core::answer::BotSettings {
                    abstention_threshold: t,
                    ..Default::default()
                };
                crate::answer::put_bot(state, ctx, bot)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }
        let mut judged = Vec::with_capacity(questions.len());
        for q in questions {
            let (answer, latency) = ask_question(state, &contexts[&q.centre], q).await?;
            judged.push(judge(q, &answer, latency));
        }
        runs.push((threshold, judged));
    }
    Ok(runs)
}

/// Thresholds `--calibrate` tries, in hundredths.
const CALIBRATION_STEPS: std::ops::RangeInclusive<u32> = 10..=80;

/// Of `judged`, the share of answerable questions answered with the fact and of unanswerable
/// ones abstained on — the plain table's "answered" and "abst.rec".
fn shares(judged: &[&Judged]) -> (f64, f64) {
    let share = |kind: Expected| {
        let of: Vec<&&Judged> = judged.iter().filter(|j| j.expected == kind).collect();
        if of.is_empty() {
            0.0
        } else {
            of.iter().filter(|j| j.right).count() as f64 / of.len() as f64
        }
    };
    (share(Expected::Fact), share(Expected::Abstain))
}

fn select<'a>(judged: &'a [Judged], split: &str, lang: Option<&str>) -> Vec<&'a Judged> {
    judged
        .iter()
        .filter(|j| j.split == split && lang.is_none_or(|l| j.lang == l))
        .collect()
}

fn print_calibration(runs: &[(Option<f32>, Vec<Judged>)]) -> f32 {
    let groups = [
        ("dev", None),
        ("dev", Some("en")),
        ("dev", Some("fr")),
        ("holdout", None),
        ("holdout", Some("en")),
        ("holdout", Some("fr")),
    ];
    print!("{:>9}", "threshold");
    for (split, lang) in groups {
        print!(" {:>16}", format!("{split} {}", lang.unwrap_or("all")));
    }
    println!("   (answered with fact / abstained, %)");
    let mut best = (f64::MIN, 0.0f32);
    for (t, judged) in runs {
        let t = t.unwrap_or(f32::NAN);
        print!("{t:>9.2}");
        for (split, lang) in groups {
            let (a, b) = shares(&select(judged, split, lang));
            print!(" {:>16}", format!("{:.1} / {:.1}", a * 100.0, b * 100.0));
        }
        println!();
        // The threshold that serves both kinds of question best on the dev split: the
        // higher of the two shares' minimum, ties to the lower threshold.
        let (a, b) = shares(&select(judged, "dev", None));
        if a.min(b) > best.0 {
            best = (a.min(b), t);
        }
    }
    println!(
        "calibrated on dev: {:.2} (both shares at least {:.1} %)",
        best.1,
        best.0 * 100.0
    );
    best.1
}
