//! The Cloud API webhook envelope: any body parses to events and set-aside items or a typed
//! error, never a panic; and what it gives is masked and clamped without a panic too.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(mut parsed) = sembang::ingress::parse_webhook(body) {
        for event in &mut parsed.events {
            event.clamp_to(chrono::Utc::now());
            event.mask_ic_numbers();
            let _ = event.dedupe_key();
            let _ = event.contact_phone();
        }
    }
});
