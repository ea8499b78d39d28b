//! Every webhook reader on the same bytes: Meta's payload parser, Twilio's form and events,
//! ManyChat's body, Meta's `signed_request`, and the signature checks. None may panic, hang or
//! take memory out of proportion to its bounds.
#![no_main]

use cortex_channels::{manychat, meta, twilio};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = meta::parse(data) {
        assert!(events.len() <= meta::MAX_EVENTS);
    }
    let _ = meta::signature_ok(b"secret", data, std::str::from_utf8(data).ok());
    if let Ok(form) = twilio::Form::parse(data) {
        let _ = twilio::events(&form, false, 0);
        let _ = twilio::events(&form, true, 0);
        let _ = twilio::signature_ok("token", "https://x.example/webhooks/twilio", &form, form.get("sig"));
    }
    let _ = manychat::message("1065", data, 0);
    let text = String::from_utf8_lossy(data);
    let _ = meta::signed_request_user(b"secret", &text);
    let _ = manychat::key_ok("1065:key", Some(&text));
});
