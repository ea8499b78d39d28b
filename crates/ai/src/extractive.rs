//! The extractive answerer: with no language model configured, the reply is made of the
//! sentences of the retrieved sources that best cover the question, each cited.
//!
//! A sentence's score is the share of the question's weight it covers — each question term
//! weighs its inverse frequency among the candidate sentences, so "refund" counts for more
//! than "policy" when every source mentions a policy — lowered slightly for sources retrieved
//! lower down. The best sentences above a floor are kept (at most `max_sentences`, no near
//! repeats) and put back in reading order: by source, then by position. When no sentence
//! reaches the floor the answerer abstains rather than quote something beside the point.
//!
//! With each sentence's cosine similarity to the question (from the embedding model), the
//! score is mostly similarity and partly word coverage: a sentence that shares one word with the
//! question ("take") but speaks of something else falls behind the one that answers it. Only
//! sentences scoring at least [`RELATIVE_FLOOR`] of the best one join it.

use std::collections::{HashMap, HashSet};

use cortex_search::lexical::Analyzer;

/// A sentence must cover at least this share of the question's weight to be quoted.
pub const MIN_COVERAGE: f32 = 0.3;
/// With similarities, the share of a sentence's score that comes from its meaning (the rest
/// from word coverage): MiniLM judges "which countries do you deliver to?" against "We ship
/// to the United States and Canada" better than shared words do.
pub const SIMILARITY_WEIGHT: f32 = 0.7;
/// Later quotes must score at least this share of the best quote's score.
pub const RELATIVE_FLOOR: f32 = 0.7;
/// Score lost per rank of the source a sentence comes from.
const RANK_PENALTY: f32 = 0.04;
/// Sentences shorter than this many characters are headings or fragments, not answers.
const MIN_SENTENCE_CHARS: usize = 12;
/// A sentence shorter than this many characters ("Opened packets are fine.", "Yes, it is
/// free.") is embedded and quoted with the one before it.
const STANDALONE_CHARS: usize = 40;
/// Longer "sentences" (tables, run-on text) are cut to this many characters.
const MAX_SENTENCE_CHARS: usize = 500;

/// One quoted sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct Quote {
    /// Index into the sources given.
    pub source: usize,
    pub text: String,
    /// Share of the question's weight this sentence covers, after the rank penalty.
    pub score: f32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Extract {
    /// In reading order; empty when the answerer abstains.
    pub quotes: Vec<Quote>,
    /// The best sentence's score, in [0, 1].
    pub confidence: f32,
}

impl Extract {
    pub fn abstained(&self) -> bool {
        self.quotes.is_empty()
    }

    /// The answer text: each sentence followed by its source's number (`[1]` for the first
    /// source given).
    pub fn text(&self) -> String {
        self.quotes
            .iter()
            .map(|q| format!("{} [{}]", q.text, q.source + 1))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Windows embedded per chunk at most: a chunk's first sentences (chunks hold a few dozen).
pub const MAX_WINDOWS: usize = 64;

/// A chunk's *windows*, the children of parent-child retrieval: its first [`MAX_WINDOWS`]
/// [`sentences`], each with its [`lead`], embedded on their own when the chunk is, so that a
/// question is compared with the sentence that answers it rather than with a whole chunk's
/// diluted vector. Each window is what the extractive answerer quotes for that sentence.
pub fn windows(text: &str) -> Vec<String> {
    let s = sentences(text);
    (0..s.len().min(MAX_WINDOWS))
        .map(|i| with_lead(&s, i))
        .collect()
}

/// The sentence before sentence `at` when `at` is too short to stand alone ("Opened packets
/// are fine.") and the one before ends as a sentence (a heading does not lead in).
pub fn lead<'a>(sentences: &[&'a str], at: usize) -> Option<&'a str> {
    let before = at.checked_sub(1).and_then(|b| sentences.get(b))?;
    (sentences.get(at)?.chars().count() < STANDALONE_CHARS && before.ends_with(['.', '!', '?']))
        .then_some(*before)
}

fn with_lead(sentences: &[&str], at: usize) -> String {
    match lead(sentences, at) {
        Some(before) => format!("{before} {}", sentences[at]),
        None => sentences[at].to_owned(),
    }
}

/// Splits text into sentences: at `.`, `!` or `?` followed by white space, and at line
/// breaks (list items and headings end without a full stop). Trimmed; fragments dropped.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        let next = chars.get(i + 1).map(|&(_, n)| n);
        let end = match c {
            '\n' => Some(at),
            '.' | '!' | '?' if next.is_none_or(char::is_whitespace) => Some(at + c.len_utf8()),
            _ => None,
        };
        if let Some(end) = end {
            push_sentence(&mut out, &text[start..end]);
            start = end;
        }
    }
    push_sentence(&mut out, &text[start..]);
    out
}

fn push_sentence<'a>(out: &mut Vec<&'a str>, s: &'a str) {
    let s = s.trim().trim_start_matches(['-', '*', '•']).trim();
    if s.chars().count() >= MIN_SENTENCE_CHARS {
        let cut = s
            .char_indices()
            .nth(MAX_SENTENCE_CHARS)
            .map_or(s, |(at, _)| &s[..at]);
        out.push(cut);
    }
}

/// Picks the sentences of `sources` (best retrieved first) that answer `question`.
/// `similarity`, when given, holds for each source the cosine similarity of each of its
/// [`sentences`] to the question, in order.
pub fn extract(
    question: &str,
    sources: &[&str],
    analyzer: &Analyzer,
    max_sentences: usize,
    similarity: Option<&[Vec<f32>]>,
) -> Extract {
    let mut got = extract_above(
        question,
        sources,
        analyzer,
        max_sentences,
        similarity,
        MIN_COVERAGE,
    );
    if got.abstained() {
        got.confidence = 0.0;
    }
    got
}

/// [`extract`] with the floor a quote must reach given (the answer engine gives 0: its
/// calibrated threshold decides whether to answer, and quotes need only reach
/// [`RELATIVE_FLOOR`] of the best sentence); the confidence is the best sentence's score even
/// below the floor, the relevance the engine judges the sources by.
pub fn extract_above(
    question: &str,
    sources: &[&str],
    analyzer: &Analyzer,
    max_sentences: usize,
    similarity: Option<&[Vec<f32>]>,
    floor: f32,
) -> Extract {
    // One language for the question and every sentence, so that their words stem alike: the
    // sources' (the words that can match are theirs), else the question's.
    let language = cortex_core::language::detect(&sources.join("\n"))
        .or_else(|| cortex_core::language::detect(question))
        .unwrap_or(analyzer.fallback);
    let asked: HashSet<String> = analyzer.terms_in(question, language).into_iter().collect();
    // (source, position, sentence, terms of the sentence with its lead); `leads[i]`: the
    // candidate before it leads in.
    let mut candidates: Vec<(usize, usize, &str, HashSet<String>)> = Vec::new();
    let mut leads: Vec<bool> = Vec::new();
    for (source, text) in sources.iter().enumerate() {
        let all = sentences(text);
        for (position, s) in all.iter().enumerate() {
            let lead = lead(&all, position);
            let unit = lead.map_or_else(|| (*s).to_owned(), |_| with_lead(&all, position));
            let terms: HashSet<String> = analyzer.terms_in(&unit, language).into_iter().collect();
            candidates.push((source, position, s, terms));
            leads.push(lead.is_some());
        }
    }
    if asked.is_empty() || candidates.is_empty() {
        return Extract {
            quotes: Vec::new(),
            confidence: 0.0,
        };
    }
    let n = candidates.len() as f32;
    let mut df: HashMap<&str, f32> = HashMap::new();
    for (_, _, _, terms) in &candidates {
        for t in terms.iter().filter(|t| asked.contains(*t)) {
            *df.entry(t.as_str()).or_default() += 1.0;
        }
    }
    let weight = |t: &str| (1.0 + n / df.get(t).copied().unwrap_or(0.0).max(1.0)).ln();
    let total: f32 = asked.iter().map(|t| weight(t)).sum();
    let mut scored: Vec<(f32, usize)> = candidates
        .iter()
        .enumerate()
        .map(|(i, (source, position, _, terms))| {
            let covered: f32 = asked
                .iter()
                .filter(|t| terms.contains(*t))
                .map(|t| weight(t))
                .sum();
            let coverage = covered / total;
            let blended = match similarity
                .and_then(|s| s.get(*source))
                .and_then(|s| s.get(*position))
            {
                Some(cos) => {
                    (1.0 - SIMILARITY_WEIGHT) * coverage + SIMILARITY_WEIGHT * cos.max(0.0)
                }
                None => coverage,
            };
            let score = blended - RANK_PENALTY * *source as f32;
            (score.clamp(0.0, 1.0), i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let confidence = scored.first().map_or(0.0, |s| s.0);
    let mut picked: Vec<(f32, usize)> = Vec::new();
    for &(score, i) in &scored {
        if score < floor || score < RELATIVE_FLOOR * confidence || picked.len() == max_sentences {
            break;
        }
        let terms = &candidates[i].3;
        let repeats = picked.iter().any(|&(_, j)| {
            let other = &candidates[j].3;
            let shared = terms.intersection(other).count() as f32;
            shared / (terms.len().max(other.len()).max(1) as f32) > 0.8
        });
        if !repeats {
            picked.push((score, i));
        }
    }
    picked.sort_by_key(|&(_, i)| (candidates[i].0, candidates[i].1));
    // A short sentence rarely stands alone: it is quoted with its lead (as it was embedded),
    // unless the lead is quoted anyway.
    let chosen: HashSet<usize> = picked.iter().map(|&(_, i)| i).collect();
    let quotes = picked
        .into_iter()
        .map(|(score, i)| {
            let (source, _, text, _) = &candidates[i];
            let text = match i.checked_sub(1) {
                Some(before) if leads[i] && !chosen.contains(&before) => {
                    format!("{} {text}", candidates[before].2)
                }
                _ => (*text).to_owned(),
            };
            Quote {
                source: *source,
                text,
                score,
            }
        })
        .collect();
    Extract { quotes, confidence }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFUNDS: &str = "# Refund policy\nAcme refunds unused items returned within 30 days of delivery. \
        Refunds go back to the original payment method within five business days. \
        Gift cards cannot be refunded.";
    const SHIPPING: &str =
        "Orders ship within two business days. Express delivery arrives the next day.";
    const OFFICE: &str = "Our office dog is called Biscuit and loves visitors.";

    #[test]
    fn sentences_split_at_stops_and_line_breaks_but_not_inside_numbers() {
        assert_eq!(
            sentences(
                "- The first list item\n* The second list item\nVersion 2.5 is out now. \
                 It works really well! Does it work offline?"
            ),
            [
                "The first list item",
                "The second list item",
                "Version 2.5 is out now.",
                "It works really well!",
                "Does it work offline?"
            ]
        );
        assert!(
            sentences("Hi.\nOk. Yes!").is_empty(),
            "fragments are dropped"
        );
    }

    #[test]
    fn the_best_covering_sentences_are_quoted_in_reading_order_with_their_source() {
        let a = Analyzer::default();
        let got = extract(
            "How many days do I have to return an item for a refund?",
            &[SHIPPING, REFUNDS, OFFICE],
            &a,
            2,
            None,
        );
        assert!(!got.abstained());
        assert_eq!(got.quotes[0].source, 1);
        assert_eq!(
            got.quotes[0].text,
            "Acme refunds unused items returned within 30 days of delivery."
        );
        assert!(got.confidence >= MIN_COVERAGE && got.confidence <= 1.0);
        assert!(
            got.text()
                .starts_with("Acme refunds unused items returned within 30 days of delivery. [2]")
        );
        // Reading order: a second quote from the same source comes after the first.
        if let Some(second) = got.quotes.get(1) {
            assert_eq!(second.source, 1);
            assert!(REFUNDS.find(&second.text) > REFUNDS.find(&got.quotes[0].text));
        }
    }

    #[test]
    fn it_abstains_when_no_sentence_covers_the_question() {
        let a = Analyzer::default();
        let got = extract(
            "Do you sell spare batteries for the drone?",
            &[SHIPPING, OFFICE],
            &a,
            3,
            None,
        );
        assert!(got.abstained());
        assert_eq!(got.confidence, 0.0);
        assert_eq!(got.text(), "");
        assert!(extract("the of and", &[REFUNDS], &a, 3, None).abstained());
        assert!(extract("refund", &[], &a, 3, None).abstained());
    }

    #[test]
    fn near_repeats_are_quoted_once() {
        let a = Analyzer::default();
        let dup = "Refunds go back to the original payment method within five business days.";
        let got = extract("where does my refund go", &[dup, dup, REFUNDS], &a, 3, None);
        let texts: Vec<&str> = got.quotes.iter().map(|q| q.text.as_str()).collect();
        assert_eq!(texts.iter().filter(|t| **t == dup).count(), 1, "{texts:?}");
    }

    #[test]
    fn similarity_separates_the_answer_from_a_sentence_sharing_one_word() {
        let a = Analyzer::default();
        let guide = "Refunds are issued within 14 days of receiving the item. \
            Standard delivery takes five business days.";
        let question = "How long do refunds take?";
        // By words alone both sentences cover one of the question's two words.
        let lexical = extract(question, &[guide], &a, 3, None);
        assert_eq!(lexical.quotes.len(), 2);
        // The model sees that only the first one is about refunds.
        let similarity = vec![vec![0.71, 0.18]];
        let got = extract(question, &[guide], &a, 3, Some(&similarity));
        let texts: Vec<&str> = got.quotes.iter().map(|q| q.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Refunds are issued within 14 days of receiving the item."]
        );
        assert!(
            // "long", "refund", "take" weigh the same; the sentence covers one of three.
            (got.confidence - (0.3 / 3.0 + 0.7 * 0.71)).abs() < 1e-4,
            "{}",
            got.confidence
        );
    }

    #[test]
    fn a_short_sentence_is_quoted_with_the_one_it_follows_on_from() {
        let a = Analyzer::default();
        let shop = "Orders leave the same day. You may return any tea within 30 days. \
            Opened packets are fine. Gift cards never expire.";
        let question = "opened packets";
        let got = extract(question, &[shop], &a, 1, None);
        assert_eq!(
            got.quotes[0].text,
            "You may return any tea within 30 days. Opened packets are fine."
        );
        // A long sentence stands alone, and a heading does not lead in.
        let long = "# Returns and refunds\nOpened packets are fine as long as at least half of \
            the tea is still in the pouch.";
        let got = extract(question, &[long], &a, 1, None);
        assert_eq!(
            got.quotes[0].text,
            "Opened packets are fine as long as at least half of the tea is still in the pouch."
        );
    }

    #[test]
    fn a_chunks_windows_are_its_first_sentences() {
        let many: String = (0..100)
            .map(|i| format!("Sentence number {i} here. "))
            .collect();
        let w = windows(&many);
        assert_eq!(w.len(), MAX_WINDOWS);
        assert_eq!(w[1], "Sentence number 0 here. Sentence number 1 here.");
        assert_eq!(
            windows(
                "# Returns and refunds\nYou may return any tea within 30 days. Opened packets are fine."
            ),
            vec![
                "# Returns and refunds",
                "You may return any tea within 30 days.",
                "You may return any tea within 30 days. Opened packets are fine."
            ],
            "a short sentence is embedded with the one it follows on from, not with a heading"
        );
    }
}
