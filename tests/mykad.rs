//! MyKad parser against the code table in FACTS.md, every month length, leap years, the
//! century boundary, and properties over arbitrary input.

use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;
use sembang::domain::mykad::{MyKad, MyKadError, PlaceOfBirth};
use sembang::domain::person::Gender;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn reference() -> NaiveDate {
    day(2025, 11, 25)
}

/// The expected table, written out from FACTS.md independently of the implementation:
/// code → (kind, name). `None` = never issued.
fn expected_place(code: u8) -> Option<(&'static str, Option<&'static str>)> {
    let state = |name| Some(("malaysian_state", Some(name)));
    let foreign = |name| Some(("foreign", Some(name)));
    match code {
        1 | 21 | 22 | 23 | 24 => state("Johor"),
        2 | 25 | 26 | 27 => state("Kedah"),
        3 | 28 | 29 => state("Kelantan"),
        4 | 30 => state("Melaka"),
        5 | 31 | 59 => state("Negeri Sembilan"),
        6 | 32 | 33 => state("Pahang"),
        7 | 34 | 35 => state("Pulau Pinang"),
        8 | 36 | 37 | 38 | 39 => state("Perak"),
        9 | 40 => state("Perlis"),
        10 | 41 | 42 | 43 | 44 => state("Selangor"),
        11 | 45 | 46 => state("Terengganu"),
        12 | 47 | 48 | 49 => state("Sabah"),
        13 | 50 | 51 | 52 | 53 => state("Sarawak"),
        14 | 54 | 55 | 56 | 57 => state("WP Kuala Lumpur"),
        15 | 58 => state("WP Labuan"),
        16 => state("WP Putrajaya"),
        82 => Some(("unknown_state", None)),
        60 => foreign("Brunei"),
        61 => foreign("Indonesia"),
        62 => foreign("Cambodia"),
        63 => foreign("Laos"),
        64 => foreign("Myanmar"),
        65 => foreign("Philippines"),
        66 => foreign("Singapore"),
        67 => foreign("Thailand"),
        68 => foreign("Vietnam"),
        71 | 72 => foreign("Outside Malaysia"),
        74 => foreign("China"),
        75 => foreign("India"),
        76 => foreign("Pakistan"),
        77 => foreign("Saudi Arabia"),
        78 => foreign("Sri Lanka"),
        79 => foreign("Bangladesh"),
        83 => foreign("Asia-Pacific/Oceania"),
        84 => foreign("South America"),
        85 => foreign("Africa"),
        86 => foreign("Europe"),
        87 => foreign("Britain/Ireland"),
        88 => foreign("Middle East"),
        89 => foreign("Far East"),
        90 => foreign("Caribbean/Central America"),
        91 => foreign("North America"),
        92 => foreign("Eastern Europe/former USSR"),
        93 => foreign("Other countries"),
        98 => Some(("stateless", None)),
        99 => Some(("unspecified", None)),
        0 | 17..=20 | 69 | 70 | 73 | 80 | 81 | 94..=97 => None,
        _ => unreachable!("codes are two digits"),
    }
}

#[test]
fn every_place_of_birth_code() {
    let mut issued = 0;
    for code in 0u8..=99 {
        let input = format!("900101-{code:02}-5678");
        let parsed = MyKad::parse(&input, reference());
        match expected_place(code) {
            Some((kind, name)) => {
                let ic = parsed.unwrap_or_else(|e| panic!("code {code:02} rejected: {e}"));
                assert_eq!(ic.place_of_birth_code(), code);
                assert_eq!(ic.place_of_birth().kind(), kind, "code {code:02}");
                assert_eq!(ic.place_of_birth().name(), name, "code {code:02}");
                issued += 1;
            }
            None => assert_eq!(
                parsed,
                Err(MyKadError::NeverIssuedPlaceOfBirth { code }),
                "code {code:02} must be rejected"
            ),
        }
    }
    // 100 codes minus the 14 never issued (00, 17-20, 69, 70, 73, 80, 81, 94-97).
    assert_eq!(issued, 86);
}

#[test]
fn state_codes_map_to_states_used_by_profiles() {
    let ic = MyKad::parse("900101-59-5678", reference()).unwrap();
    assert_eq!(
        ic.place_of_birth().state().map(|s| s.name()),
        Some("Negeri Sembilan")
    );
    let foreign = MyKad::parse("900101-66-5678", reference()).unwrap();
    assert_eq!(foreign.place_of_birth().state(), None);
    assert!(matches!(foreign.place_of_birth(), PlaceOfBirth::Foreign(_)));
}

#[test]
fn every_month_length_in_common_and_leap_years() {
    // (yy, century year on the reference 2025-11-25, leap?)
    for (yy, year, leap) in [
        (90u32, 1990, false),
        (0, 2000, true),
        (96, 1996, true),
        (1, 2001, false),
    ] {
        for month in 1u32..=12 {
            let length = match month {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                2 if leap => 29,
                2 => 28,
                _ => unreachable!(),
            };
            let last = format!("{yy:02}{month:02}{length:02}-10-1234");
            let ic = MyKad::parse(&last, reference()).unwrap_or_else(|e| panic!("{last}: {e}"));
            assert_eq!(ic.birth_date(), day(year, month, length));
            let beyond = format!("{yy:02}{month:02}{:02}-10-1234", length + 1);
            assert!(
                matches!(
                    MyKad::parse(&beyond, reference()),
                    Err(MyKadError::InvalidBirthDate(_))
                ),
                "{beyond} must be rejected"
            );
        }
        let zero_day = format!("{yy:02}0100-10-1234");
        assert!(matches!(
            MyKad::parse(&zero_day, reference()),
            Err(MyKadError::InvalidBirthDate(_))
        ));
    }
}

#[test]
fn nineteen_hundred_was_not_a_leap_year() {
    // Against a reference in Feb 2000 before the 29th, 000229 can only mean 1900-02-29.
    assert!(matches!(
        MyKad::parse("000229-10-1234", day(2000, 2, 28)),
        Err(MyKadError::InvalidBirthDate(_))
    ));
    assert_eq!(
        MyKad::parse("000229-10-1234", day(2000, 2, 29))
            .unwrap()
            .birth_date(),
        day(2000, 2, 29)
    );
    assert_eq!(
        MyKad::parse("000229-10-1234", reference())
            .unwrap()
            .birth_date(),
        day(2000, 2, 29)
    );
}

#[test]
fn century_boundary() {
    let reference = day(2025, 11, 25);
    let born = |s: &str| MyKad::parse(s, reference).unwrap().birth_date();
    assert_eq!(born("251125-10-1234"), day(2025, 11, 25)); // born today: age 0
    assert_eq!(born("251126-10-1234"), day(1925, 11, 26)); // tomorrow is impossible: 99 years
    assert_eq!(born("260101-10-1234"), day(1926, 1, 1));
    assert_eq!(born("991231-10-1234"), day(1999, 12, 31));
    assert_eq!(born("000101-10-1234"), day(2000, 1, 1));
    let ic = MyKad::parse("251126-10-1234", reference).unwrap();
    assert_eq!(ic.age_on(reference), Some(99));
    let newborn = MyKad::parse("251125-10-1234", reference).unwrap();
    assert_eq!(newborn.age_on(reference), Some(0));
}

#[test]
fn gender_from_last_digit() {
    for last in 0u8..=9 {
        let ic = MyKad::parse(&format!("900101-10-123{last}"), reference()).unwrap();
        let expected = if last % 2 == 1 {
            Gender::Male
        } else {
            Gender::Female
        };
        assert_eq!(ic.gender(), expected, "last digit {last}");
    }
}

fn issued_code() -> impl Strategy<Value = u8> {
    (0u8..=99).prop_filter("issued", |c| expected_place(*c).is_some())
}

fn valid_date() -> impl Strategy<Value = NaiveDate> {
    (0i64..36_500).prop_map(|back| reference() - chrono::Duration::days(back))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn never_panics_on_any_string(input in any::<String>()) {
        let _ = MyKad::parse(&input, reference());
    }

    #[test]
    fn never_panics_on_digit_soup(input in "[0-9 \\-]{0,20}") {
        let _ = MyKad::parse(&input, reference());
    }

    #[test]
    fn format_parse_round_trip(
        born in valid_date(),
        code in issued_code(),
        serial in 0u32..10_000,
        separator in prop::sample::select(vec!["-", " ", ""]),
    ) {
        let yymmdd = format!("{:02}{:02}{:02}", born.year() % 100, born.month(), born.day());
        let input = format!("{yymmdd}{separator}{code:02}{separator}{serial:04}");
        let ic = MyKad::parse(&input, reference()).unwrap();
        prop_assert_eq!(ic.birth_date(), born);
        prop_assert_eq!(ic.place_of_birth_code(), code);
        let normalized = ic.normalized();
        prop_assert_eq!(normalized.clone(), format!("{yymmdd}-{code:02}-{serial:04}"));
        prop_assert_eq!(ic.masked(), format!("{yymmdd}-**-****"));
        let again = MyKad::parse(&normalized, reference()).unwrap();
        prop_assert_eq!(again, ic);
    }

    #[test]
    fn age_is_never_more_than_99_or_negative(
        yymmdd in "[0-9]{6}",
        code in issued_code(),
    ) {
        if let Ok(ic) = MyKad::parse(&format!("{yymmdd}{code:02}1234"), reference()) {
            let age = ic.age_on(reference()).expect("never born after the reference date");
            prop_assert!(age <= 99, "age {}", age);
        }
    }

    #[test]
    fn errors_never_show_the_digits(serial in 1000u32..10_000) {
        let input = format!("901301-14-{serial}");
        let err = MyKad::parse(&input, reference()).unwrap_err();
        let shown = format!("{err} {err:?}");
        prop_assert!(!shown.contains(&serial.to_string()));
    }
}
