//! PDF text extraction with `lopdf`: page by page, each page's text split into paragraphs and
//! list items like plain text, every block carrying its 1-based page number.
//!
//! Bounds: at most [`MAX_PAGES`] pages, [`MAX_PAGE_CONTENT`] bytes of decompressed content per
//! page, [`MAX_TEXT_BYTES`] of text overall. Encrypted files open when their user password is
//! empty (the common "no copying" protection); others are refused with a clear reason. A PDF
//! whose pages carry no text (a scan) fails as such: it would need OCR.
//!
//! Known limit: fonts with CJK CMaps may come out empty or garbled (`lopdf` does not read
//! them); `pdf_oxide` reads them but costs ~5 minutes of compile time, see ARCHITECTURE.md.

use lopdf::Document;

use crate::extract::{ExtractError, Extracted, plain};

pub const MAX_PAGES: usize = 5_000;
/// Sum of the `/Count`s of every page-tree node: each page counts once per level above it, so
/// this allows [`MAX_PAGES`] pages twenty levels deep.
const MAX_CLAIMED_PAGES: i64 = MAX_PAGES as i64 * 20;
pub const MAX_PAGE_CONTENT: usize = 64 * 1024 * 1024;
pub const MAX_TEXT_BYTES: usize = 64 * 1024 * 1024;

pub(crate) fn pdf(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let doc = Document::load_mem(bytes)
        .map_err(|e| ExtractError::Corrupt(format!("the PDF cannot be read ({e})")))?;
    if doc.is_encrypted() && !doc.was_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    // lopdf sizes its page list by the /Count the file claims: a forged count would make it
    // ask for an impossible allocation, which aborts the process. Check the claims first.
    let claimed: i64 = doc
        .objects
        .values()
        .filter_map(|o| o.as_dict().ok())
        .filter(|d| d.get_type().is_ok_and(|t| t == b"Pages"))
        .map(|d| {
            d.get_deref(b"Count", &doc)
                .and_then(lopdf::Object::as_i64)
                .unwrap_or(0)
        })
        .fold(0i64, |sum, n| sum.saturating_add(n.max(0)));
    if claimed > MAX_CLAIMED_PAGES {
        return Err(ExtractError::TooLarge(format!(
            "the page tree claims {claimed} pages (at most {MAX_PAGES})"
        )));
    }
    let pages = doc.get_pages();
    if pages.len() > MAX_PAGES {
        return Err(ExtractError::TooLarge(format!(
            "{} pages (at most {MAX_PAGES})",
            pages.len()
        )));
    }
    let mut out = Extracted::default();
    let mut total = 0usize;
    let mut unreadable = 0usize;
    for &number in pages.keys() {
        let text = match doc.extract_text_with_limit(&[number], MAX_PAGE_CONTENT) {
            Ok(t) => t,
            Err(_) => {
                // One damaged page does not sink the document.
                unreadable += 1;
                continue;
            }
        };
        total += text.len();
        if total > MAX_TEXT_BYTES {
            return Err(ExtractError::TooLarge(format!(
                "more than {MAX_TEXT_BYTES} bytes of text"
            )));
        }
        let mut page = plain(&text);
        for block in &mut page.blocks {
            block.page = Some(number);
        }
        out.blocks.append(&mut page.blocks);
    }
    if out.blocks.is_empty() {
        return Err(if unreadable > 0 && unreadable == pages.len() {
            ExtractError::Corrupt("no page of the PDF could be read".into())
        } else {
            ExtractError::NoTextLayer
        });
    }
    out.title = doc
        .trailer
        .get(b"Info")
        .and_then(|o| o.as_reference())
        .and_then(|id| doc.get_dictionary(id))
        .and_then(|info| info.get(b"Title"))
        .ok()
        .and_then(|t| lopdf::decode_text_string(t).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    Ok(out)
}
