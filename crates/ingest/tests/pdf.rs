//! PDF extraction on files written by hand (`tests/data/make_pdfs.py`), not by the library
//! that reads them.

use cortex_ingest::{BlockKind, DocKind, ExtractError, extract, sniff};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

#[test]
fn text_comes_out_page_by_page_with_page_numbers() {
    let bytes = fixture("handbook.pdf");
    assert_eq!(sniff(&bytes, Some("handbook.pdf")), Ok(DocKind::Pdf));
    let doc = extract(DocKind::Pdf, &bytes).expect("extracts");
    assert_eq!(doc.title.as_deref(), Some("Employee Handbook"));
    let all: Vec<(Option<u32>, &str)> = doc
        .blocks
        .iter()
        .map(|b| (b.page, b.text.as_str()))
        .collect();
    let holidays = all
        .iter()
        .find(|(_, t)| t.contains("Holidays are booked in the HR portal"))
        .unwrap_or_else(|| panic!("{all:?}"));
    assert_eq!(holidays.0, Some(1));
    let travel = all
        .iter()
        .find(|(_, t)| t.contains("Travel expenses are reimbursed within 30 days"))
        .unwrap_or_else(|| panic!("{all:?}"));
    assert_eq!(travel.0, Some(2));
    assert!(
        doc.blocks
            .iter()
            .any(|b| b.kind == BlockKind::ListItem && b.text.contains("Keep every receipt")),
        "{all:?}"
    );
}

#[test]
fn a_pdf_without_text_is_called_a_scan() {
    assert_eq!(
        extract(DocKind::Pdf, &fixture("scan.pdf")),
        Err(ExtractError::NoTextLayer)
    );
}

#[test]
fn broken_pdfs_fail_with_a_reason_and_never_panic() {
    let whole = fixture("handbook.pdf");
    let truncated = fixture("truncated.pdf");
    match extract(DocKind::Pdf, &truncated) {
        Err(ExtractError::Corrupt(reason)) => {
            assert!(reason.contains("cannot be read"), "{reason}")
        }
        other => panic!("a PDF cut in half is damaged, got {other:?}"),
    }
    // Every prefix and a few corruptions: an error or text, never a panic.
    for cut in (0..whole.len()).step_by(37) {
        let _ = extract(DocKind::Pdf, &whole[..cut]);
    }
    let mut flipped = whole.clone();
    for i in (0..flipped.len()).step_by(11) {
        flipped[i] ^= 0x5a;
        let _ = extract(DocKind::Pdf, &flipped);
    }
}

/// Found by `cargo fuzz run pdf`: a page tree whose /Count claims ~2.5e15 pages made lopdf
/// request a 40 PB allocation, which aborts the process (no panic to catch).
#[test]
fn a_forged_page_count_is_refused_before_lopdf_allocates_for_it() {
    match extract(DocKind::Pdf, &fixture("fuzz-huge-page-count.pdf")) {
        Err(ExtractError::TooLarge(reason)) => assert!(reason.contains("claims"), "{reason}"),
        other => panic!("{other:?}"),
    }
}
