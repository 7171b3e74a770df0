//! Malaysian identity card (MyKad) numbers: `YYMMDD-PB-###G`.
//!
//! The full number is identity-fraud material. [`MyKad`] prints masked through both `Debug`
//! and `Display`; the full digits come only from the explicit [`MyKad::normalized`] and
//! [`MyKad::digits`]. Errors never carry the number.

mod birth_date;
pub mod card;
mod place_of_birth;

use std::fmt;

use chrono::NaiveDate;
use thiserror::Error;

use super::person::{age_on, Gender};

pub use birth_date::{infer_birth_date, BirthDateError};
pub use place_of_birth::{ForeignRegion, PlaceOfBirth};

const DIGITS: usize = 12;
/// Separators may stand after the date (6 digits) and after the place-of-birth code (8).
const SEPARATOR_AFTER: [usize; 2] = [6, 8];

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MyKad {
    digits: [u8; DIGITS],
    birth_date: NaiveDate,
    place_of_birth: PlaceOfBirth,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MyKadError {
    #[error("IC number is empty")]
    Empty,
    #[error(
        "IC number has a character that is neither a digit nor a separator at position {position}"
    )]
    InvalidCharacter { position: usize },
    #[error("IC number has a separator at position {position}; write it as YYMMDD-PB-###G")]
    MisplacedSeparator { position: usize },
    #[error("IC number must have 12 digits, found {digits}")]
    WrongLength { digits: usize },
    #[error("IC number has an impossible date of birth: {0}")]
    InvalidBirthDate(#[from] BirthDateError),
    #[error("place-of-birth code {code:02} has never been issued")]
    NeverIssuedPlaceOfBirth { code: u8 },
}

impl MyKadError {
    /// A stable identifier for APIs and the CLI's JSON output.
    pub const fn kind(&self) -> &'static str {
        match self {
            MyKadError::Empty => "empty",
            MyKadError::InvalidCharacter { .. } => "invalid_character",
            MyKadError::MisplacedSeparator { .. } => "misplaced_separator",
            MyKadError::WrongLength { .. } => "wrong_length",
            MyKadError::InvalidBirthDate(_) => "invalid_birth_date",
            MyKadError::NeverIssuedPlaceOfBirth { .. } => "never_issued_place_of_birth",
        }
    }
}

impl MyKad {
    /// Parses `900101-14-5678`, `900101145678` or `900101 14 5678` (surrounding whitespace
    /// ignored), inferring the birth century against `reference` (see [`infer_birth_date`]).
    pub fn parse(input: &str, reference: NaiveDate) -> Result<MyKad, MyKadError> {
        let digits = extract_digits(input.trim())?;
        let two = |i: usize| u32::from(digits[i] * 10 + digits[i + 1]);
        let birth_date = infer_birth_date(two(0), two(2), two(4), reference)?;
        let code = digits[6] * 10 + digits[7];
        let place_of_birth =
            PlaceOfBirth::from_code(code).ok_or(MyKadError::NeverIssuedPlaceOfBirth { code })?;
        Ok(MyKad {
            digits,
            birth_date,
            place_of_birth,
        })
    }

    /// The twelve digits without separators: for keyed hashing and encryption, never for logs.
    pub fn digits(&self) -> String {
        self.digits.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// `900101-14-5678`: the full number in its display form.
    pub fn normalized(&self) -> String {
        let d = self.digits();
        format!("{}-{}-{}", &d[..6], &d[6..8], &d[8..])
    }

    /// `900101-**-****`: safe to show in replies, the admin API and logs. Only the birth
    /// date is kept, which the profile shows anyway; the place-of-birth code and the last
    /// four digits (where, and which of that day's births) are not.
    pub fn masked(&self) -> String {
        masked_digits(&self.digits())
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// Odd last digit: male; even: female.
    pub fn gender(&self) -> Gender {
        if self.digits[DIGITS - 1] % 2 == 1 {
            Gender::Male
        } else {
            Gender::Female
        }
    }

    pub fn place_of_birth(&self) -> PlaceOfBirth {
        self.place_of_birth
    }

    pub fn place_of_birth_code(&self) -> u8 {
        self.digits[6] * 10 + self.digits[7]
    }

    /// Age in whole years on `today`; `None` if `today` is before the birth date.
    pub fn age_on(&self, today: NaiveDate) -> Option<u32> {
        age_on(self.birth_date, today)
    }
}

fn extract_digits(input: &str) -> Result<[u8; DIGITS], MyKadError> {
    if input.is_empty() {
        return Err(MyKadError::Empty);
    }
    let mut digits = [0u8; DIGITS];
    let mut count = 0usize;
    let mut previous_was_separator = false;
    for (position, c) in input.chars().enumerate() {
        match c {
            '0'..='9' => {
                if count < DIGITS {
                    digits[count] = c as u8 - b'0';
                }
                count += 1;
                previous_was_separator = false;
            }
            '-' | ' ' => {
                let allowed = SEPARATOR_AFTER.contains(&count) && !previous_was_separator;
                if !allowed {
                    return Err(MyKadError::MisplacedSeparator { position });
                }
                previous_was_separator = true;
            }
            _ => return Err(MyKadError::InvalidCharacter { position }),
        }
    }
    if count != DIGITS {
        return Err(MyKadError::WrongLength { digits: count });
    }
    if previous_was_separator {
        return Err(MyKadError::MisplacedSeparator {
            position: input.chars().count() - 1,
        });
    }
    Ok(digits)
}

impl fmt::Debug for MyKad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MyKad").field(&self.masked()).finish()
    }
}

impl fmt::Display for MyKad {
    /// Masked on purpose: a `{}` in a log line must not leak the number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// The masked form of twelve IC digits: `900101-**-****` (see [`MyKad::masked`]).
pub fn masked_digits(digits: &str) -> String {
    format!("{}-**-****", &digits[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 11, 25).unwrap()
    }

    #[test]
    fn parses_every_accepted_form() {
        for input in [
            "900101-14-5678",
            "900101145678",
            "900101 14 5678",
            " 900101-14 5678 ",
        ] {
            let ic = MyKad::parse(input, reference()).unwrap();
            assert_eq!(ic.normalized(), "900101-14-5678", "{input}");
            assert_eq!(ic.digits(), "900101145678");
        }
    }

    #[test]
    fn derives_profile_fields() {
        let ic = MyKad::parse("900101-14-5678", reference()).unwrap();
        assert_eq!(
            ic.birth_date(),
            NaiveDate::from_ymd_opt(1990, 1, 1).unwrap()
        );
        assert_eq!(ic.gender(), Gender::Female);
        assert_eq!(ic.age_on(reference()), Some(35));
        assert_eq!(ic.place_of_birth_code(), 14);
        assert_eq!(ic.place_of_birth().name(), Some("WP Kuala Lumpur"));
        let male = MyKad::parse("050315-10-1235", reference()).unwrap();
        assert_eq!(male.gender(), Gender::Male);
        assert_eq!(male.age_on(reference()), Some(20));
    }

    #[test]
    fn separators_only_where_they_belong() {
        let cases = [
            ("9001-0114-5678", 4),
            ("900101--14-5678", 7),
            ("900101-145678-", 13),
            ("-900101145678", 0),
            ("9001011456-78", 10),
        ];
        for (input, position) in cases {
            assert_eq!(
                MyKad::parse(input, reference()),
                Err(MyKadError::MisplacedSeparator { position }),
                "{input}"
            );
        }
    }

    #[test]
    fn typed_errors_for_bad_input() {
        assert_eq!(MyKad::parse("", reference()), Err(MyKadError::Empty));
        assert_eq!(MyKad::parse("   ", reference()), Err(MyKadError::Empty));
        assert_eq!(
            MyKad::parse("90010114567", reference()),
            Err(MyKadError::WrongLength { digits: 11 })
        );
        assert_eq!(
            MyKad::parse("9001011456789", reference()),
            Err(MyKadError::WrongLength { digits: 13 })
        );
        assert_eq!(
            MyKad::parse("900101-14-567O", reference()),
            Err(MyKadError::InvalidCharacter { position: 13 })
        );
        assert_eq!(
            MyKad::parse("900101_14_5678", reference()),
            Err(MyKadError::InvalidCharacter { position: 6 })
        );
        assert!(matches!(
            MyKad::parse("901301-14-5678", reference()),
            Err(MyKadError::InvalidBirthDate(BirthDateError::InvalidMonth {
                month: 13
            }))
        ));
        assert_eq!(
            MyKad::parse("900101-00-5678", reference()),
            Err(MyKadError::NeverIssuedPlaceOfBirth { code: 0 })
        );
    }

    #[test]
    fn nothing_prints_the_full_number() {
        let ic = MyKad::parse("900101-14-5678", reference()).unwrap();
        assert_eq!(ic.masked(), "900101-**-****");
        assert_eq!(format!("{ic}"), "900101-**-****");
        assert_eq!(format!("{ic:?}"), "MyKad(\"900101-**-****\")");
        for bad in [
            "900101-14-567",
            "900101-00-5678",
            "901301-14-5678",
            "900101-14-567X",
        ] {
            let err = MyKad::parse(bad, reference()).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("5678") && !shown.contains("567"), "{shown}");
        }
    }

    #[test]
    fn error_kinds_are_stable() {
        assert_eq!(MyKadError::Empty.kind(), "empty");
        assert_eq!(
            MyKadError::NeverIssuedPlaceOfBirth { code: 17 }.kind(),
            "never_issued_place_of_birth"
        );
    }
}
