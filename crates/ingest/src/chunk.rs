//! Structure-aware, token-bounded chunking.
//!
//! Blocks are split into sentences and packed into chunks of at most `max_tokens` tokens
//! (counted by the caller's tokenizer, the embedding model's own). Each chunk after the first
//! of a section starts with the last sentences of the previous one, about `overlap_tokens`
//! worth, so a fact cut at a boundary is whole in one of them. A sentence is cut only when it
//! alone exceeds the budget. A new section (a heading) starts a new chunk once the current one
//! holds a meaningful amount of text, so chunks rarely straddle two topics.

use crate::extract::{Block, BlockKind};

#[derive(Clone, Copy, Debug)]
pub struct ChunkOptions {
    pub max_tokens: usize,
    pub overlap_tokens: usize,
    /// A heading closes the current chunk only if it holds at least this many tokens, so a
    /// run of short sections is not scattered into tiny chunks.
    pub min_section_tokens: usize,
}

impl Default for ChunkOptions {
    /// ≈ 350 tokens with ≈ 15 % overlap.
    fn default() -> Self {
        Self {
            max_tokens: 350,
            overlap_tokens: 52,
            min_section_tokens: 80,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// 0-based position in the document.
    pub ordinal: u32,
    pub text: String,
    pub token_count: usize,
    /// The heading path of the chunk's first block.
    pub heading_path: Vec<String>,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
}

/// One sentence (or a piece of an over-long one) with where it came from.
#[derive(Clone, Debug)]
struct Piece {
    text: String,
    tokens: usize,
    heading_path: Vec<String>,
    page: Option<u32>,
    /// Starts a new block (joined with a newline rather than a space).
    block_start: bool,
}

/// Splits text after `.`, `!`, `?` (and their CJK forms) followed by whitespace, keeping the
/// punctuation with its sentence. Abbreviations may split a sentence early; the overlap makes
/// that harmless.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = i + c.len_utf8();
        let terminal = matches!(c, '.' | '!' | '?' | '。' | '！' | '？');
        let cjk = matches!(c, '。' | '！' | '？');
        let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        if terminal && (cjk || next_is_space) {
            let s = text[start..end].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Cuts an over-long sentence at word boundaries into pieces of at most `max` tokens.
fn split_long(sentence: &str, max: usize, count: &dyn Fn(&str) -> usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for word in sentence.split_whitespace() {
        let candidate = if current.is_empty() {
            word.to_owned()
        } else {
            format!("{current} {word}")
        };
        if count(&candidate) > max && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            current = word.to_owned();
        } else {
            current = candidate;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Chunks `blocks` with `count` (tokens in a text) under `options`.
pub fn chunk(blocks: &[Block], options: ChunkOptions, count: &dyn Fn(&str) -> usize) -> Vec<Chunk> {
    let max = options.max_tokens.max(8);
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let mut current_tokens = 0usize;

    let emit = |chunks: &mut Vec<Chunk>, pieces: &[Piece]| {
        if pieces.is_empty() {
            return;
        }
        let mut text = String::new();
        for (i, p) in pieces.iter().enumerate() {
            if i > 0 {
                text.push(if p.block_start { '\n' } else { ' ' });
            }
            text.push_str(&p.text);
        }
        let pages: Vec<u32> = pieces.iter().filter_map(|p| p.page).collect();
        chunks.push(Chunk {
            ordinal: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
            token_count: count(&text),
            text,
            heading_path: pieces[0].heading_path.clone(),
            page_start: pages.iter().min().copied(),
            page_end: pages.iter().max().copied(),
        });
    };

    for block in blocks {
        if let BlockKind::Heading(_) = block.kind
            && current_tokens >= options.min_section_tokens
        {
            emit(&mut chunks, &current);
            current.clear();
            current_tokens = 0;
        }
        let mut path = block.heading_path.clone();
        if let BlockKind::Heading(_) = block.kind {
            path.push(block.text.clone());
        }
        let units: Vec<String> = match block.kind {
            // Rows, items and headings are short structural units: kept whole unless huge.
            BlockKind::Paragraph | BlockKind::Code => sentences(&block.text)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            _ => vec![block.text.clone()],
        };
        for (i, unit) in units.into_iter().enumerate() {
            let tokens = count(&unit);
            let parts = if tokens > max {
                split_long(&unit, max, count)
            } else {
                vec![unit]
            };
            for (j, part) in parts.into_iter().enumerate() {
                let tokens = count(&part);
                if current_tokens + tokens > max && !current.is_empty() {
                    emit(&mut chunks, &current);
                    // Carry the tail of the finished chunk as overlap.
                    let mut carried = Vec::new();
                    let mut carried_tokens = 0;
                    for p in current.iter().rev() {
                        if carried_tokens + p.tokens > options.overlap_tokens
                            || carried_tokens + p.tokens + tokens > max
                        {
                            break;
                        }
                        carried_tokens += p.tokens;
                        carried.push(p.clone());
                    }
                    carried.reverse();
                    current = carried;
                    current_tokens = carried_tokens;
                }
                current_tokens += tokens;
                current.push(Piece {
                    text: part,
                    tokens,
                    heading_path: path.clone(),
                    page: block.page,
                    block_start: i == 0 && j == 0,
                });
            }
        }
    }
    emit(&mut chunks, &current);
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn para(text: &str, path: &[&str], page: Option<u32>) -> Block {
        Block {
            kind: BlockKind::Paragraph,
            text: text.to_owned(),
            heading_path: path.iter().map(|s| s.to_string()).collect(),
            page,
        }
    }

    #[test]
    fn sentences_split_after_terminal_punctuation() {
        assert_eq!(
            sentences("One. Two! Three? Four"),
            vec!["One.", "Two!", "Three?", "Four"]
        );
        assert_eq!(
            sentences("Version 2.5 is out. Yes."),
            vec!["Version 2.5 is out.", "Yes."]
        );
        assert_eq!(sentences("第一句。第二句。"), vec!["第一句。", "第二句。"]);
        assert!(sentences("   ").is_empty());
    }

    #[test]
    fn chunks_stay_within_budget_overlap_and_never_cut_a_sentence() {
        let sentence = |i: usize| format!("Sentence number {i} says something useful here.");
        let text: Vec<String> = (0..60).map(sentence).collect();
        let blocks = vec![para(&text.join(" "), &["Guide"], Some(3))];
        let opts = ChunkOptions {
            max_tokens: 50,
            overlap_tokens: 8,
            min_section_tokens: 10,
        };
        let chunks = chunk(&blocks, opts, &words);
        assert!(chunks.len() > 5);
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(c.ordinal as usize, i);
            assert!(
                c.token_count <= 50,
                "chunk {i} has {} tokens",
                c.token_count
            );
            assert!(
                c.text.starts_with("Sentence number") && c.text.ends_with("here."),
                "cut mid-sentence: {:?}",
                c.text
            );
            assert_eq!((c.page_start, c.page_end), (Some(3), Some(3)));
            assert_eq!(c.heading_path, vec!["Guide"]);
        }
        for pair in chunks.windows(2) {
            let last_of_first = sentences(&pair[0].text).last().copied().expect("sentence");
            assert!(
                pair[1].text.starts_with(last_of_first),
                "overlap carries the previous tail"
            );
        }
        let all: String = chunks
            .iter()
            .map(|c| c.text.clone())
            .collect::<Vec<_>>()
            .join(" ");
        for i in 0..60 {
            assert!(all.contains(&sentence(i)), "sentence {i} lost");
        }
    }

    #[test]
    fn an_over_long_sentence_is_cut_at_words() {
        let long = (0..130)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let chunks = chunk(
            &[para(&long, &[], None)],
            ChunkOptions {
                max_tokens: 50,
                overlap_tokens: 0,
                min_section_tokens: 10,
            },
            &words,
        );
        assert_eq!(
            chunks.iter().map(|c| c.token_count).collect::<Vec<_>>(),
            vec![50, 50, 30]
        );
    }

    #[test]
    fn sections_start_new_chunks_and_record_their_heading_path_and_pages() {
        let heading = |t: &str, level: u8, path: &[&str]| Block {
            kind: BlockKind::Heading(level),
            text: t.to_owned(),
            heading_path: path.iter().map(|s| s.to_string()).collect(),
            page: Some(1),
        };
        let filler = "This paragraph has exactly ten words in it, honestly.";
        let blocks = vec![
            heading("Billing", 1, &[]),
            para(&[filler; 3].join(" "), &["Billing"], Some(1)),
            para(filler, &["Billing"], Some(2)),
            heading("Refunds", 2, &["Billing"]),
            para(filler, &["Billing", "Refunds"], Some(2)),
        ];
        let chunks = chunk(
            &blocks,
            ChunkOptions {
                max_tokens: 100,
                overlap_tokens: 0,
                min_section_tokens: 20,
            },
            &words,
        );
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].heading_path, vec!["Billing"]);
        assert_eq!(
            (chunks[0].page_start, chunks[0].page_end),
            (Some(1), Some(2))
        );
        assert!(chunks[1].text.starts_with("Refunds\nThis paragraph"));
        assert_eq!(chunks[1].heading_path, vec!["Billing", "Refunds"]);
    }

    #[test]
    fn short_sections_are_merged_rather_than_scattered() {
        let blocks: Vec<Block> = (0..6)
            .flat_map(|i| {
                vec![
                    Block {
                        kind: BlockKind::Heading(2),
                        text: format!("Q{i}"),
                        heading_path: vec![],
                        page: None,
                    },
                    para("A short answer.", &[], None),
                ]
            })
            .collect();
        let chunks = chunk(&blocks, ChunkOptions::default(), &words);
        assert_eq!(chunks.len(), 1);
    }
}
