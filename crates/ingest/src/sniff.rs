//! Content sniffing. The bytes decide what a file is; the extension it came with may only
//! agree (or be absent). The client's MIME type is never consulted.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocKind {
    Pdf,
    Docx,
    Html,
    Markdown,
    Text,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Docx => "docx",
            Self::Html => "html",
            Self::Markdown => "markdown",
            Self::Text => "text",
        }
    }

    /// The MIME type stored and served with the original.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Html => "text/html; charset=utf-8",
            Self::Markdown => "text/markdown; charset=utf-8",
            Self::Text => "text/plain; charset=utf-8",
        }
    }
}

impl fmt::Display for DocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    #[error("the file is empty")]
    Empty,
    #[error("unsupported file type: {0}")]
    Unsupported(&'static str),
    #[error("the content is {content} but the file name says {declared}")]
    Mismatch {
        content: &'static str,
        declared: &'static str,
    },
}

/// What the extension of `filename` claims, if it is one we know.
fn declared(filename: &str) -> Option<DocKind> {
    let ext = filename.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "pdf" => DocKind::Pdf,
        "docx" => DocKind::Docx,
        "html" | "htm" | "xhtml" => DocKind::Html,
        "md" | "markdown" | "mdown" | "mkd" => DocKind::Markdown,
        "txt" | "text" => DocKind::Text,
        _ => return None,
    })
}

fn is_zip(b: &[u8]) -> bool {
    b.starts_with(b"PK\x03\x04")
}

/// A zip whose entry names include `word/document.xml` (the central directory lists every
/// name; scanning for it needs no decompression).
fn is_docx(b: &[u8]) -> bool {
    is_zip(b) && contains(b, b"word/document.xml") && contains(b, b"[Content_Types].xml")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn looks_like_html(text: &str) -> bool {
    let head: String = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .take(1024)
        .collect();
    let head = head.to_ascii_lowercase();
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.starts_with("<?xml") && head.contains("<html")
        || (head.starts_with('<') && (head.contains("<head") || head.contains("<body")))
}

/// Decides the kind of `bytes`. `filename`'s extension, when known, must agree with the
/// content; among text formats it picks Markdown or plain text (which bytes cannot tell
/// apart), and a `.txt` or `.md` holding markup stays text.
pub fn sniff(bytes: &[u8], filename: Option<&str>) -> Result<DocKind, SniffError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(SniffError::Empty);
    }
    let declared = filename.and_then(declared);
    let content = if bytes.starts_with(b"%PDF-") {
        DocKind::Pdf
    } else if is_zip(bytes) {
        if !is_docx(bytes) {
            return Err(SniffError::Unsupported(
                "a zip archive that is not a Word document",
            ));
        }
        DocKind::Docx
    } else {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Err(SniffError::Unsupported(
                "binary data that is not PDF or DOCX",
            ));
        };
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
        {
            return Err(SniffError::Unsupported(
                "text with binary control characters",
            ));
        }
        match declared {
            Some(DocKind::Markdown) => DocKind::Markdown,
            Some(DocKind::Text) => DocKind::Text,
            _ if looks_like_html(text) => DocKind::Html,
            _ => DocKind::Text,
        }
    };
    match declared {
        Some(d) if d != content => Err(SniffError::Mismatch {
            content: content.as_str(),
            declared: d.as_str(),
        }),
        _ => Ok(content),
    }
}

/// Bidirectional controls and other invisible format characters: a name holding U+202E
/// (right-to-left override) displays reversed (`invoice_fdp.exe` shown as `invoice_exe.pdf`).
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}' // LRE, RLE, PDF, LRO, RLO
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // LRI, RLI, FSI, PDI
        | '\u{061C}' // Arabic letter mark
        | '\u{FEFF}' // byte order mark
    )
}

/// A filename safe to store and show: the last path component, control characters and
/// path separators removed, bidirectional and other invisible format characters dropped,
/// whitespace collapsed, at most 200 characters (extension kept).
pub fn sanitize_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|&c| !is_invisible_format(c))
        .map(|c| {
            if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let collapsed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    let trimmed = collapsed.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let name = if trimmed.is_empty() {
        "document".to_owned()
    } else {
        trimmed.to_owned()
    };
    if name.chars().count() <= 200 {
        return name;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if e.len() <= 10 => (s, format!(".{e}")),
        _ => (name.as_str(), String::new()),
    };
    let keep = 200 - ext.chars().count();
    format!("{}{ext}", stem.chars().take(keep).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide_and_extensions_must_agree() {
        assert_eq!(sniff(b"%PDF-1.7\n...", Some("a.pdf")), Ok(DocKind::Pdf));
        assert_eq!(sniff(b"%PDF-1.7\n...", None), Ok(DocKind::Pdf));
        assert_eq!(
            sniff(b"%PDF-1.7\n...", Some("notes.txt")),
            Err(SniffError::Mismatch {
                content: "pdf",
                declared: "text"
            })
        );
        assert_eq!(
            sniff(
                b"<!DOCTYPE html><html><body>x</body></html>",
                Some("report.pdf")
            ),
            Err(SniffError::Mismatch {
                content: "html",
                declared: "pdf"
            })
        );
        assert_eq!(
            sniff(b"<!DOCTYPE html><p>x", Some("page.HTML")),
            Ok(DocKind::Html)
        );
        assert_eq!(sniff(b"  <html lang=en><body>x", None), Ok(DocKind::Html));
        assert_eq!(
            sniff(b"# Title\n\nBody", Some("README.md")),
            Ok(DocKind::Markdown)
        );
        assert_eq!(sniff(b"# Title\n\nBody", None), Ok(DocKind::Text));
        assert_eq!(
            sniff(b"<html>kept literally</html>", Some("snippet.txt")),
            Ok(DocKind::Text)
        );
        assert_eq!(
            sniff(b"plain words", Some("unknown.xyz")),
            Ok(DocKind::Text)
        );
    }

    #[test]
    fn zips_must_be_word_documents() {
        let docx = b"PK\x03\x04....[Content_Types].xml....word/document.xml....";
        assert_eq!(sniff(docx, Some("spec.docx")), Ok(DocKind::Docx));
        let xlsx = b"PK\x03\x04....[Content_Types].xml....xl/workbook.xml....";
        assert!(matches!(
            sniff(xlsx, Some("sheet.docx")),
            Err(SniffError::Unsupported(_))
        ));
    }

    #[test]
    fn binary_and_empty_files_are_refused() {
        assert_eq!(sniff(b"", None), Err(SniffError::Empty));
        assert_eq!(sniff(b" \n\t ", Some("a.txt")), Err(SniffError::Empty));
        assert!(matches!(
            sniff(&[0xff, 0xd8, 0xff, 0xe0, 0, 16], Some("photo.txt")),
            Err(SniffError::Unsupported(_))
        ));
        assert!(matches!(
            sniff(b"text\0with nul", None),
            Err(SniffError::Unsupported(_))
        ));
    }

    #[test]
    fn filenames_lose_paths_and_control_characters() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(
            sanitize_filename("C:\\Users\\me\\Guide v2.pdf"),
            "Guide v2.pdf"
        );
        assert_eq!(sanitize_filename("a\u{0}b\r\nc<d>.txt"), "a b c d .txt");
        assert_eq!(sanitize_filename("..."), "document");
        assert_eq!(
            sanitize_filename("invoice_\u{202E}fdp.exe"),
            "invoice_fdp.exe",
            "a right-to-left override cannot make the name display reversed"
        );
        assert_eq!(
            sanitize_filename("\u{2067}re\u{200F}port\u{2069}\u{FEFF}.pdf"),
            "report.pdf"
        );
        let long = format!("{}.pdf", "x".repeat(300));
        let s = sanitize_filename(&long);
        assert_eq!(s.chars().count(), 200);
        assert!(s.ends_with(".pdf"));
    }
}
