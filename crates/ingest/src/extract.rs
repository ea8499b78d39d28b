//! Text with its structure. Every parser produces the same thing: a list of [`Block`]s, each
//! with its kind, its text, the heading path above it and (for paged formats) its page.
//! Parsers never recurse on the input's nesting, so hostile depth cannot overflow the stack.

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use scraper::{Html, Node};

use crate::sniff::DocKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// A heading of level 1–6; its text also enters the heading path of what follows.
    Heading(u8),
    Paragraph,
    ListItem,
    /// One table row, cells joined with ` | `.
    TableRow,
    /// Preformatted text, kept verbatim.
    Code,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    pub text: String,
    /// The headings this block sits under, outermost first (a heading's own path excludes it).
    pub heading_path: Vec<String>,
    /// 1-based page for paged formats.
    pub page: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extracted {
    /// The document's own title (HTML `<title>`, else the first level-1 heading).
    pub title: Option<String>,
    pub blocks: Vec<Block>,
}

impl Extracted {
    /// Characters of text extracted, for "no text found" checks and statistics.
    pub fn text_len(&self) -> usize {
        self.blocks.iter().map(|b| b.text.len()).sum()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the document is not valid UTF-8 text")]
    NotUtf8,
    #[error("no text could be extracted from the document")]
    NoText,
    #[error(
        "the PDF has no text layer (a scanned document?); it would need OCR, which is not supported"
    )]
    NoTextLayer,
    #[error("the PDF is password-protected; upload a copy without a password")]
    Encrypted,
    #[error("{0} extraction is not available yet")]
    NotYetSupported(&'static str),
    #[error("the HTML nests elements more than {MAX_HTML_DEPTH} deep")]
    TooDeeplyNested,
    #[error("the document is damaged: {0}")]
    Corrupt(String),
    #[error("the document is too large to process: {0}")]
    TooLarge(String),
}

/// Deepest element nesting accepted in HTML. Real pages stay in the tens; html5ever's scope
/// checks cost time proportional to depth per tag, so unbounded depth is a denial of service.
pub const MAX_HTML_DEPTH: usize = 2_048;

/// An upper bound of the element nesting of `html`, from tags alone: every start tag that is
/// not void or self-closing opens a level, every end tag closes one. Implicitly closed tags
/// (`<p>` without `</p>`) count as open, so the bound errs high, never low.
fn html_depth_exceeds(html: &str, limit: usize) -> bool {
    const VOID: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "!doctype",
    ];
    let b = html.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let closing = b.get(i + 1) == Some(&b'/');
        let start = if closing { i + 2 } else { i + 1 };
        let name_end = b[start..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == b'!' || *c == b'-'))
            .map_or(b.len(), |p| start + p);
        if name_end == start {
            i += 1;
            continue;
        }
        let name = html[start..name_end].to_ascii_lowercase();
        let tag_end = b[name_end..]
            .iter()
            .position(|c| *c == b'>')
            .map_or(b.len(), |p| name_end + p);
        let self_closing = tag_end > 0 && b.get(tag_end - 1) == Some(&b'/');
        if closing {
            depth = depth.saturating_sub(1);
        } else if !self_closing && !VOID.contains(&name.as_str()) && !name.starts_with("!--") {
            depth += 1;
            if depth > limit {
                return true;
            }
        }
        i = tag_end.max(i + 1);
    }
    false
}

/// Most links [`html_links`] returns from one page.
pub const MAX_LINKS: usize = 5_000;

/// The `href`s of a page's `<a>` elements, in order, as written (the caller resolves them
/// against the page URL), at most [`MAX_LINKS`]; none for pages nested too deeply to parse.
pub fn html_links(html: &str) -> Vec<String> {
    if html_depth_exceeds(html, MAX_HTML_DEPTH) {
        return Vec::new();
    }
    let doc = Html::parse_document(html);
    let Ok(anchors) = scraper::Selector::parse("a[href]") else {
        return Vec::new();
    };
    doc.select(&anchors)
        .filter_map(|a| a.value().attr("href"))
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .take(MAX_LINKS)
        .collect()
}

/// Extracts structured text from a document of a sniffed `kind`.
pub fn extract(kind: DocKind, bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let text = || {
        std::str::from_utf8(bytes)
            .map(|t| t.trim_start_matches('\u{feff}'))
            .map_err(|_| ExtractError::NotUtf8)
    };
    let extracted = match kind {
        DocKind::Text => plain(text()?),
        DocKind::Markdown => markdown(text()?),
        DocKind::Html => {
            let text = text()?;
            if html_depth_exceeds(text, MAX_HTML_DEPTH) {
                return Err(ExtractError::TooDeeplyNested);
            }
            html(text)
        }
        DocKind::Pdf => crate::pdf::pdf(bytes)?,
        DocKind::Docx => crate::docx::docx(bytes)?,
    };
    if extracted.blocks.is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(extracted)
}

/// Collapses runs of whitespace to one space and trims.
fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Tracks the heading path while blocks are emitted in document order.
#[derive(Default)]
pub(crate) struct Builder {
    headings: Vec<(u8, String)>,
    pub(crate) out: Extracted,
}

impl Builder {
    pub(crate) fn push(&mut self, kind: BlockKind, raw: &str) {
        let text = if kind == BlockKind::Code {
            raw.trim_matches('\n').to_owned()
        } else {
            normalize(raw)
        };
        if text.trim().is_empty() {
            return;
        }
        let heading_path = self.headings.iter().map(|(_, h)| h.clone()).collect();
        if let BlockKind::Heading(level) = kind {
            self.headings.retain(|(l, _)| *l < level);
            self.headings.push((level, text.clone()));
            if level == 1 && self.out.title.is_none() {
                self.out.title = Some(text.clone());
            }
        }
        self.out.blocks.push(Block {
            kind,
            text,
            heading_path,
            page: None,
        });
    }
}

/// Plain text: paragraphs are separated by blank lines; lines starting with a bullet or a
/// number are list items.
pub(crate) fn plain(text: &str) -> Extracted {
    let mut b = Builder::default();
    let mut para = String::new();
    let flush = |b: &mut Builder, para: &mut String| {
        b.push(BlockKind::Paragraph, para);
        para.clear();
    };
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() {
            flush(&mut b, &mut para);
            continue;
        }
        let bullet = t
            .strip_prefix("- ")
            .or_else(|| t.strip_prefix("* "))
            .or_else(|| t.strip_prefix("• "))
            .or_else(|| {
                let digits = t.find(|c: char| !c.is_ascii_digit())?;
                (digits > 0 && digits < 4).then(|| {
                    t[digits..]
                        .strip_prefix(". ")
                        .or_else(|| t[digits..].strip_prefix(") "))
                })?
            });
        if let Some(item) = bullet {
            flush(&mut b, &mut para);
            b.push(BlockKind::ListItem, item);
        } else {
            if !para.is_empty() {
                para.push(' ');
            }
            para.push_str(t);
        }
    }
    flush(&mut b, &mut para);
    b.out
}

fn level_of(l: HeadingLevel) -> u8 {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// Markdown through pulldown-cmark: headings, paragraphs, list items, table rows, code.
fn markdown(text: &str) -> Extracted {
    let mut b = Builder::default();
    let mut buf = String::new();
    let mut cells: Vec<String> = Vec::new();
    // The block kind text is currently collected for; list items nest paragraphs.
    let mut current: Option<BlockKind> = None;
    let mut item_depth = 0usize;
    let options =
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(text, options) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                current = Some(BlockKind::Heading(level_of(level)))
            }
            Event::Start(Tag::Paragraph) if item_depth == 0 => current = Some(BlockKind::Paragraph),
            Event::Start(Tag::Item) => {
                if item_depth > 0 {
                    b.push(BlockKind::ListItem, &buf);
                    buf.clear();
                }
                item_depth += 1;
                current = Some(BlockKind::ListItem);
            }
            Event::Start(Tag::CodeBlock(_)) => current = Some(BlockKind::Code),
            Event::Start(Tag::TableCell) => buf.clear(),
            Event::End(TagEnd::TableCell) => {
                cells.push(normalize(&buf));
                buf.clear();
            }
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                b.push(BlockKind::TableRow, &cells.join(" | "));
                cells.clear();
            }
            Event::End(TagEnd::Item) => {
                b.push(BlockKind::ListItem, &buf);
                buf.clear();
                item_depth = item_depth.saturating_sub(1);
                current = (item_depth > 0).then_some(BlockKind::ListItem);
            }
            Event::End(TagEnd::Heading(_) | TagEnd::CodeBlock) => {
                if let Some(kind) = current.take() {
                    b.push(kind, &buf);
                }
                buf.clear();
            }
            Event::End(TagEnd::Paragraph) if item_depth == 0 => {
                if let Some(kind) = current.take() {
                    b.push(kind, &buf);
                }
                buf.clear();
            }
            Event::End(TagEnd::Paragraph) => buf.push(' '),
            Event::Text(t) | Event::Code(t) | Event::InlineHtml(t) => buf.push_str(&t),
            Event::Html(_) => {}
            Event::SoftBreak | Event::HardBreak => buf.push(if current == Some(BlockKind::Code) {
                '\n'
            } else {
                ' '
            }),
            _ => {}
        }
    }
    b.out
}

/// Elements whose text is never content.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "head", "nav", "footer", "iframe", "form",
    "button",
];

/// HTML through html5ever (via scraper), walked with an explicit stack.
fn html(text: &str) -> Extracted {
    let doc = Html::parse_document(text);
    let mut b = Builder::default();
    let title = scraper::Selector::parse("title")
        .ok()
        .and_then(|sel| doc.select(&sel).next())
        .map(|t| normalize(&t.text().collect::<String>()))
        .filter(|t| !t.is_empty());

    enum Step<'a> {
        Enter(ego_tree::NodeRef<'a, Node>),
        Close(BlockKind),
        CloseCell,
    }
    let mut buf = String::new();
    let mut cells: Vec<String> = Vec::new();
    let mut in_cell = false;
    let mut stack = vec![Step::Enter(doc.tree.root())];
    while let Some(step) = stack.pop() {
        let node = match step {
            Step::Close(BlockKind::TableRow) => {
                if !buf.trim().is_empty() {
                    cells.push(normalize(&buf));
                }
                buf.clear();
                b.push(BlockKind::TableRow, &cells.join(" | "));
                cells.clear();
                continue;
            }
            Step::Close(kind) => {
                b.push(kind, &buf);
                buf.clear();
                continue;
            }
            Step::CloseCell => {
                cells.push(normalize(&buf));
                buf.clear();
                in_cell = false;
                continue;
            }
            Step::Enter(node) => node,
        };
        match node.value() {
            Node::Text(t) => buf.push_str(t),
            Node::Element(el) => {
                let name = el.name();
                if SKIPPED.contains(&name) {
                    continue;
                }
                let block = match name {
                    "h1" => Some(BlockKind::Heading(1)),
                    "h2" => Some(BlockKind::Heading(2)),
                    "h3" => Some(BlockKind::Heading(3)),
                    "h4" => Some(BlockKind::Heading(4)),
                    "h5" => Some(BlockKind::Heading(5)),
                    "h6" => Some(BlockKind::Heading(6)),
                    "p" | "blockquote" | "dd" | "dt" | "figcaption" | "caption" => {
                        Some(BlockKind::Paragraph)
                    }
                    "li" => Some(BlockKind::ListItem),
                    "tr" => Some(BlockKind::TableRow),
                    "pre" => Some(BlockKind::Code),
                    _ => None,
                };
                let is_cell = matches!(name, "td" | "th") && !in_cell;
                let is_break = matches!(
                    name,
                    "div" | "section" | "article" | "main" | "ul" | "ol" | "table"
                );
                if let Some(kind) = block {
                    // Text gathered so far (e.g. loose text in a div) is its own paragraph.
                    if !in_cell && !buf.trim().is_empty() {
                        b.push(BlockKind::Paragraph, &buf);
                        buf.clear();
                    }
                    stack.push(Step::Close(kind));
                } else if is_cell {
                    buf.clear();
                    in_cell = true;
                    stack.push(Step::CloseCell);
                } else if is_break && !in_cell && !buf.trim().is_empty() {
                    b.push(BlockKind::Paragraph, &buf);
                    buf.clear();
                } else if name == "br" {
                    buf.push(' ');
                }
                for child in node.children().rev() {
                    stack.push(Step::Enter(child));
                }
            }
            Node::Document | Node::Fragment => {
                for child in node.children().rev() {
                    stack.push(Step::Enter(child));
                }
            }
            _ => {}
        }
    }
    b.push(BlockKind::Paragraph, &buf);
    b.out.title = title.or(b.out.title);
    b.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_and_text(e: &Extracted) -> Vec<(BlockKind, &str)> {
        e.blocks.iter().map(|b| (b.kind, b.text.as_str())).collect()
    }

    #[test]
    fn plain_text_keeps_paragraphs_and_lists() {
        let e = extract(DocKind::Text, b"Returns are free.\nWithin 30 days.\n\n- Keep the receipt\n2. Use the portal\n\nThanks").expect("text");
        assert_eq!(
            kinds_and_text(&e),
            vec![
                (BlockKind::Paragraph, "Returns are free. Within 30 days."),
                (BlockKind::ListItem, "Keep the receipt"),
                (BlockKind::ListItem, "Use the portal"),
                (BlockKind::Paragraph, "Thanks"),
            ]
        );
    }

    #[test]
    fn markdown_keeps_headings_lists_tables_and_code_with_heading_paths() {
        let md = "# Guide\n\nIntro text.\n\n## Billing\n\n- Pay *monthly*\n- Or yearly\n  - nested\n\n| Plan | Price |\n|---|---|\n| Pro | $10 |\n\n```\nlet x = 1;\n```\n\n## Support\n\nEmail us.";
        let e = extract(DocKind::Markdown, md.as_bytes()).expect("md");
        assert_eq!(e.title.as_deref(), Some("Guide"));
        assert_eq!(
            kinds_and_text(&e),
            vec![
                (BlockKind::Heading(1), "Guide"),
                (BlockKind::Paragraph, "Intro text."),
                (BlockKind::Heading(2), "Billing"),
                (BlockKind::ListItem, "Pay monthly"),
                (BlockKind::ListItem, "Or yearly"),
                (BlockKind::ListItem, "nested"),
                (BlockKind::TableRow, "Plan | Price"),
                (BlockKind::TableRow, "Pro | $10"),
                (BlockKind::Code, "let x = 1;"),
                (BlockKind::Heading(2), "Support"),
                (BlockKind::Paragraph, "Email us."),
            ]
        );
        let support = e.blocks.last().expect("last");
        assert_eq!(
            support.heading_path,
            vec!["Guide", "Support"],
            "Billing left the path"
        );
    }

    #[test]
    fn html_keeps_structure_and_drops_scripts_and_navigation() {
        let html = r#"<!doctype html><html><head><title>Help Center</title><script>var secret = 1;</script></head>
            <body><nav>Home | Pricing</nav><h1>Shipping</h1><p>We ship <b>worldwide</b>.</p>
            <div>Loose text<br>continues</div><ul><li>Fast</li><li>Tracked</li></ul>
            <table><tr><th>Zone</th><th>Days</th></tr><tr><td>EU</td><td>2</td></tr></table>
            <h2>Returns</h2><p>30 days.</p><style>p{color:red}</style><footer>© Acme</footer></body></html>"#;
        let e = extract(DocKind::Html, html.as_bytes()).expect("html");
        assert_eq!(e.title.as_deref(), Some("Help Center"));
        assert_eq!(
            kinds_and_text(&e),
            vec![
                (BlockKind::Heading(1), "Shipping"),
                (BlockKind::Paragraph, "We ship worldwide."),
                (BlockKind::Paragraph, "Loose text continues"),
                (BlockKind::ListItem, "Fast"),
                (BlockKind::ListItem, "Tracked"),
                (BlockKind::TableRow, "Zone | Days"),
                (BlockKind::TableRow, "EU | 2"),
                (BlockKind::Heading(2), "Returns"),
                (BlockKind::Paragraph, "30 days."),
            ]
        );
        assert_eq!(
            e.blocks.last().expect("last").heading_path,
            vec!["Shipping", "Returns"]
        );
        let all: String = e.blocks.iter().map(|b| b.text.as_str()).collect();
        assert!(
            !all.contains("secret")
                && !all.contains("color")
                && !all.contains("Acme")
                && !all.contains("Pricing")
        );
    }

    #[test]
    fn nesting_up_to_the_limit_parses_and_beyond_it_is_refused() {
        let nested = |depth: usize| {
            format!(
                "<html><body>{}deep text{}</body></html>",
                "<div>".repeat(depth),
                "</div>".repeat(depth)
            )
        };
        let e = extract(DocKind::Html, nested(MAX_HTML_DEPTH - 10).as_bytes()).expect("html");
        assert!(e.blocks.iter().any(|b| b.text == "deep text"));
        assert_eq!(
            extract(DocKind::Html, nested(100_000).as_bytes()),
            Err(ExtractError::TooDeeplyNested)
        );
        // Closed siblings do not add up, and void elements never open a level.
        let wide = format!(
            "<html><body>{}</body></html>",
            "<p>x</p><br><img src=a>".repeat(10_000)
        );
        assert!(extract(DocKind::Html, wide.as_bytes()).is_ok());
    }

    #[test]
    fn documents_without_text_are_refused() {
        assert_eq!(
            extract(DocKind::Html, b"<html><script>x</script></html>"),
            Err(ExtractError::NoText)
        );
        assert_eq!(
            extract(DocKind::Text, &[0xff, 0xfe, 0x00]),
            Err(ExtractError::NotUtf8)
        );
        assert!(matches!(
            extract(DocKind::Pdf, b"%PDF-1.4"),
            Err(ExtractError::Corrupt(_))
        ));
    }
}
