//! Untrusted bytes through the whole ingestion path: sniffing (with each kind of file name),
//! extraction and chunking must never panic, and must finish in bounded time.
#![no_main]

use cortex_ingest::{ChunkOptions, chunk, extract, sanitize_filename, sniff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in [
        None,
        Some("doc.html"),
        Some("doc.md"),
        Some("doc.txt"),
        Some("doc.pdf"),
        Some("doc.docx"),
    ] {
        if let Ok(kind) = sniff(data, name)
            && let Ok(extracted) = extract(kind, data)
        {
            let chunks = chunk(
                &extracted.blocks,
                ChunkOptions {
                    max_tokens: 64,
                    overlap_tokens: 8,
                    min_section_tokens: 16,
                },
                &|s| s.split_whitespace().count(),
            );
            for c in &chunks {
                assert!(c.token_count <= 64 || c.text.split_whitespace().count() == 1);
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let clean = sanitize_filename(s);
        assert!(!clean.is_empty() && !clean.contains('/') && !clean.contains('\\'));
        assert!(clean.chars().count() <= 200);
    }
});
