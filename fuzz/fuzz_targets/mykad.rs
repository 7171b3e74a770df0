//! MyKad numbers and card text: typed errors, never a panic; a parsed number round-trips
//! through its normal form, and masking any text never fails.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sembang::domain::mykad::card::read_card;
use sembang::domain::mykad::MyKad;

fuzz_target!(|text: &str| {
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    if let Ok(ic) = MyKad::parse(text, today) {
        let again = MyKad::parse(&ic.normalized(), today).expect("a normal form parses");
        assert_eq!(again.normalized(), ic.normalized());
        assert!(!ic.masked().contains(&ic.normalized()[7..]));
    }
    let _ = read_card(text, today);
    let _ = sembang::pii::mask::mask_ic_numbers(text);
    let _ = sembang::pii::mask::mask_digit_runs(text);
});
