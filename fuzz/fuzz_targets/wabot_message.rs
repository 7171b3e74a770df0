//! The wabot.my message: a typed error or an event, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(mut event) = sembang::ingress::wabot::parse_wabot(body) {
        event.mask_ic_numbers();
        let _ = event.contact_phone();
    }
});
