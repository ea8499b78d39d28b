//! Untrusted bytes straight into the PDF reader (no sniffing in front, so every mutation of
//! a seed reaches the parser): it must return text or an error, never panic or hang.
#![no_main]

use cortex_ingest::{DocKind, extract};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = extract(DocKind::Pdf, data);
});
