//! Phone numbers as people write them: a number or a typed error, never a panic; a parsed
//! number parses again from its own digits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sembang::domain::phone::PhoneNumber;

fuzz_target!(|text: &str| {
    if let Ok(phone) = PhoneNumber::parse(text) {
        let again = PhoneNumber::from_e164_digits(phone.as_str()).expect("its digits parse");
        assert_eq!(again, phone);
        let _ = phone.masked();
    }
});
