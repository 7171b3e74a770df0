//! Receipt text: a reading or a typed error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = sembang::domain::receipt::parse_receipt(text);
});
