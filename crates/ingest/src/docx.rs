//! DOCX: `word/document.xml` out of the zip, read as a stream of XML events. Headings come
//! from paragraph styles (`Heading1`…`Heading6`, `Title`), list items from numbering
//! properties, table rows from `w:tr`.
//!
//! A DOCX is a zip, and a zip can be a bomb: sizes and compression ratios from the central
//! directory are checked before anything is inflated, and inflation itself stops at the limit
//! whatever the headers claim.

use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::extract::{BlockKind, Builder, ExtractError};

/// Largest `word/document.xml` inflated.
pub const MAX_XML_BYTES: u64 = 64 * 1024 * 1024;
/// Largest inflated-to-compressed ratio accepted for it (real documents stay under ~20).
pub const MAX_RATIO: u64 = 100;
/// Most entries a DOCX may have.
pub const MAX_ENTRIES: usize = 10_000;

fn local(name: &[u8]) -> &[u8] {
    name.rsplit(|b| *b == b':').next().unwrap_or(name)
}

fn attr(e: &quick_xml::events::BytesStart<'_>, key: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| local(a.key.as_ref()) == key)
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
}

/// Reads `word/document.xml` within the limits.
fn document_xml(bytes: &[u8]) -> Result<Vec<u8>, ExtractError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::Corrupt(format!("not a readable zip: {e}")))?;
    if archive.len() > MAX_ENTRIES {
        return Err(ExtractError::TooLarge(format!(
            "{} entries in the archive",
            archive.len()
        )));
    }
    let entry = archive
        .by_name("word/document.xml")
        .map_err(|_| ExtractError::Corrupt("no word/document.xml in the archive".into()))?;
    let (size, packed) = (entry.size(), entry.compressed_size().max(1));
    if size > MAX_XML_BYTES {
        return Err(ExtractError::TooLarge(format!(
            "document.xml inflates to {size} bytes"
        )));
    }
    if size / packed > MAX_RATIO {
        return Err(ExtractError::TooLarge(format!(
            "document.xml is compressed {}:1, a zip bomb",
            size / packed
        )));
    }
    let mut xml = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    entry
        .take(MAX_XML_BYTES + 1)
        .read_to_end(&mut xml)
        .map_err(|e| ExtractError::Corrupt(format!("cannot inflate document.xml: {e}")))?;
    if xml.len() as u64 > MAX_XML_BYTES {
        return Err(ExtractError::TooLarge(
            "document.xml inflates past the limit".into(),
        ));
    }
    Ok(xml)
}

pub(crate) fn docx(bytes: &[u8]) -> Result<crate::extract::Extracted, ExtractError> {
    let xml = document_xml(bytes)?;
    let mut reader = Reader::from_reader(xml.as_slice());
    let mut b = Builder::default();
    let mut buf = Vec::new();
    let mut para = String::new();
    let mut kind = BlockKind::Paragraph;
    let mut in_text = false;
    let mut cell = String::new();
    let mut cells: Vec<String> = Vec::new();
    let mut table_depth = 0usize;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| ExtractError::Corrupt(format!("document.xml: {e}")))?;
        match event {
            Event::Start(e) | Event::Empty(e) => match local(e.name().as_ref()) {
                b"p" => kind = BlockKind::Paragraph,
                b"pStyle" => {
                    let style = attr(&e, b"val").unwrap_or_default().to_ascii_lowercase();
                    if style == "title" {
                        kind = BlockKind::Heading(1);
                    } else if let Some(level) = style
                        .strip_prefix("heading")
                        .and_then(|l| l.trim().parse::<u8>().ok())
                    {
                        kind = BlockKind::Heading(level.clamp(1, 6));
                    } else if style.starts_with("list") && kind == BlockKind::Paragraph {
                        kind = BlockKind::ListItem;
                    }
                }
                b"numPr" if kind == BlockKind::Paragraph => kind = BlockKind::ListItem,
                b"t" => in_text = true,
                b"tab" | b"br" | b"cr" => para.push(' '),
                b"tbl" => table_depth += 1,
                _ => {}
            },
            Event::Text(t) if in_text => {
                para.push_str(
                    &t.unescape()
                        .map_err(|e| ExtractError::Corrupt(format!("document.xml: {e}")))?,
                );
            }
            Event::End(e) => match local(e.name().as_ref()) {
                b"t" => in_text = false,
                b"p" => {
                    if table_depth > 0 {
                        if !cell.is_empty() {
                            cell.push(' ');
                        }
                        cell.push_str(para.trim());
                    } else {
                        b.push(kind, &para);
                    }
                    para.clear();
                    kind = BlockKind::Paragraph;
                }
                b"tc" => cells.push(std::mem::take(&mut cell)),
                b"tr" => {
                    b.push(BlockKind::TableRow, &cells.join(" | "));
                    cells.clear();
                }
                b"tbl" => table_depth = table_depth.saturating_sub(1),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(b.out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use zip::write::SimpleFileOptions;

    use super::*;
    use crate::extract::{BlockKind, ExtractError, extract};
    use crate::sniff::{DocKind, sniff};

    /// A minimal, valid DOCX around `body` (the inside of `w:body`).
    pub(crate) fn make_docx(body: &str) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("[Content_Types].xml", opts).expect("entry");
        zip.write_all(br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#).expect("write");
        zip.start_file("word/document.xml", opts).expect("entry");
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
        );
        zip.write_all(xml.as_bytes()).expect("write");
        zip.finish().expect("finish");
        out.into_inner()
    }

    fn p(style: Option<&str>, text: &str) -> String {
        let ppr = style
            .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
            .unwrap_or_default();
        format!("<w:p>{ppr}<w:r><w:t>{text}</w:t></w:r></w:p>")
    }

    #[test]
    fn headings_paragraphs_lists_and_tables_come_out_in_order() {
        let list = r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>Bring a receipt</w:t></w:r></w:p>"#;
        let table = r#"<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Zone</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Days</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>EU</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>2</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#;
        let split_run = r#"<w:p><w:r><w:t xml:space="preserve">Refunds take </w:t></w:r><w:r><w:t>5 days &amp; more.</w:t></w:r></w:p>"#;
        let body = [
            p(Some("Title"), "Returns Guide"),
            p(None, "Intro."),
            p(Some("Heading2"), "How"),
            list.into(),
            table.into(),
            split_run.into(),
        ]
        .concat();
        let bytes = make_docx(&body);
        assert_eq!(sniff(&bytes, Some("guide.docx")), Ok(DocKind::Docx));
        let e = extract(DocKind::Docx, &bytes).expect("docx");
        let got: Vec<(BlockKind, &str)> =
            e.blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (BlockKind::Heading(1), "Returns Guide"),
                (BlockKind::Paragraph, "Intro."),
                (BlockKind::Heading(2), "How"),
                (BlockKind::ListItem, "Bring a receipt"),
                (BlockKind::TableRow, "Zone | Days"),
                (BlockKind::TableRow, "EU | 2"),
                (BlockKind::Paragraph, "Refunds take 5 days & more."),
            ]
        );
        assert_eq!(e.title.as_deref(), Some("Returns Guide"));
        assert_eq!(e.blocks[3].heading_path, vec!["Returns Guide", "How"]);
    }

    #[test]
    fn a_zip_bomb_is_refused_before_it_is_inflated() {
        // 60 MB of one repeated paragraph compresses about 1000:1.
        let body = p(None, &"A".repeat(1000)).repeat(60_000);
        let bytes = make_docx(&body);
        assert!(
            bytes.len() < 1_000_000,
            "the bomb is small: {} bytes",
            bytes.len()
        );
        match extract(DocKind::Docx, &bytes) {
            Err(ExtractError::TooLarge(reason)) => assert!(reason.contains("zip bomb"), "{reason}"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn broken_archives_fail_with_a_reason() {
        let mut bytes = make_docx(&p(None, "text"));
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(
            extract(DocKind::Docx, &bytes),
            Err(ExtractError::Corrupt(_))
        ));
        let empty = make_docx("");
        assert_eq!(extract(DocKind::Docx, &empty), Err(ExtractError::NoText));
    }
}
