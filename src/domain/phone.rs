//! Phone numbers normalized to E.164 digits without the `+` (`60123456789`), the form
//! WhatsApp uses for `wa_id` and the key contacts are stored under.
//!
//! Most customers are Malaysian, and people write Malaysian numbers in national form
//! (`012-345 6789`), so those get the strict length rules. Customers from elsewhere
//! (Singapore, Brunei, tourists) write to the same business; their numbers are accepted
//! in international form with a known country code and E.164's length limits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

const MALAYSIA: &str = "60";

/// E.164 allows at most 15 digits, country code included.
const MAX_E164_DIGITS: usize = 15;

/// The shortest national numbers in use (Niue, Saint Helena) have 4 digits.
const MIN_NATIONAL_DIGITS: usize = 4;

/// E.164 digits without the `+`, with a country code assigned to a country.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number contains {0:?}; only digits, spaces, dashes, dots, parentheses and a leading + are allowed")]
    InvalidCharacter(char),
    #[error("no country is assigned a calling code at the start of {0:?}")]
    UnknownCountryCode(String),
    #[error(
        "phone number must start with 0 (Malaysian national), 60, or + / 00 and a country code"
    )]
    MissingPrefix,
    #[error("{kind} numbers have {expected} digits after the country code, got {got}")]
    WrongLength {
        kind: &'static str,
        expected: &'static str,
        got: usize,
    },
}

impl PhoneNumber {
    /// A number as people write it. Accepts Malaysian numbers in national or international
    /// form (`012-345 6789`, `+60 12-345 6789`, `60123456789`, `0060123456789`,
    /// `(03) 2161 1234`) and other countries' numbers with `+` or `00` and their country
    /// code (`+65 9123 4567`, `0065 9123 4567`). Bare digits are Malaysian or refused:
    /// `3-2161 1234` is a landline missing its 0 far more often than a Belgian number.
    pub fn parse(input: &str) -> Result<PhoneNumber, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let (explicit_international, body) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(body.len());
        for c in body.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                other => return Err(PhoneError::InvalidCharacter(other)),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        let international = if explicit_international {
            digits.as_str()
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest
        } else if let Some(national) = digits.strip_prefix('0') {
            // A trunk 0 is Malaysia's national form.
            validate_malaysian(national)?;
            return Ok(PhoneNumber(format!("{MALAYSIA}{national}")));
        } else if digits.starts_with(MALAYSIA) {
            digits.as_str()
        } else {
            return Err(PhoneError::MissingPrefix);
        };
        let code = known_code(international)?;
        let national = &international[code.len()..];
        // `+60 012…` is a common mistake: the trunk 0 is kept after the country code.
        let national = if code == MALAYSIA {
            national.strip_prefix('0').unwrap_or(national)
        } else {
            national
        };
        validate_national(code, national)?;
        Ok(PhoneNumber(format!("{code}{national}")))
    }

    /// A number in the form WhatsApp's `wa_id` and the stores use: E.164 digits without
    /// the `+`, country code first (`60123456789`, `6591234567`), nothing else.
    pub fn from_e164_digits(digits: &str) -> Result<PhoneNumber, PhoneError> {
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        if let Some(other) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(PhoneError::InvalidCharacter(other));
        }
        let code = known_code(digits)?;
        validate_national(code, &digits[code.len()..])?;
        Ok(PhoneNumber(digits.to_string()))
    }

    /// Where either form may come (serialized values): bare digits not starting with 0
    /// are the stored form, anything else is read as people write it.
    fn from_stored_or_written(input: &str) -> Result<PhoneNumber, PhoneError> {
        let input = input.trim();
        let stored_form = !input.starts_with('0') && input.bytes().all(|b| b.is_ascii_digit());
        if stored_form {
            PhoneNumber::from_e164_digits(input)
        } else {
            PhoneNumber::parse(input)
        }
    }

    /// The E.164 digits, e.g. `60123456789`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as lists show it to people who need not see it whole: the first four
    /// and the last three digits, e.g. `6012****789`.
    pub fn masked(&self) -> String {
        let digits = &self.0;
        let keep_tail = 3.min(digits.len());
        let keep_head = 4.min(digits.len() - keep_tail);
        let hidden = digits.len() - keep_head - keep_tail;
        format!(
            "{}{}{}",
            &digits[..keep_head],
            "*".repeat(hidden),
            &digits[digits.len() - keep_tail..]
        )
    }

    /// A form [`PhoneNumber::parse`] reads back: the stored digits for a Malaysian number
    /// (`60123456789`), with a `+` for others (`+6591234567`).
    pub fn written(&self) -> String {
        if self.is_malaysian() {
            self.0.clone()
        } else {
            self.to_e164_with_plus()
        }
    }

    /// The E.164 form with its `+`, e.g. `+60123456789`.
    pub fn to_e164_with_plus(&self) -> String {
        format!("+{}", self.0)
    }

    /// The country calling code, e.g. `60` or `65`.
    pub fn country_code(&self) -> &str {
        country_code(&self.0).unwrap_or_default()
    }

    pub fn is_malaysian(&self) -> bool {
        self.0.starts_with(MALAYSIA)
    }

    /// Malaysian mobile numbers (`01X`); a foreign number is never reported as one, since
    /// telling mobiles apart needs each country's numbering plan.
    pub fn is_mobile(&self) -> bool {
        self.is_malaysian() && self.0.as_bytes().get(2) == Some(&b'1')
    }
}

fn known_code(digits: &str) -> Result<&str, PhoneError> {
    country_code(digits)
        .ok_or_else(|| PhoneError::UnknownCountryCode(digits.chars().take(3).collect()))
}

/// Calling codes are prefix-free, so at most one of a number's first one, two or three
/// digits is an assigned code. Non-geographic codes (freephone, satellite, networks) are
/// left out: WhatsApp accounts are not registered on them.
fn country_code(digits: &str) -> Option<&str> {
    (1..=3)
        .filter_map(|len| digits.get(..len))
        .find(|prefix| ASSIGNED_CODES.binary_search(prefix).is_ok())
}

/// ITU-T E.164 country codes of countries and territories, sorted as strings.
const ASSIGNED_CODES: &[&str] = &[
    "1", "20", "211", "212", "213", "216", "218", "220", "221", "222", "223", "224", "225", "226",
    "227", "228", "229", "230", "231", "232", "233", "234", "235", "236", "237", "238", "239",
    "240", "241", "242", "243", "244", "245", "246", "247", "248", "249", "250", "251", "252",
    "253", "254", "255", "256", "257", "258", "260", "261", "262", "263", "264", "265", "266",
    "267", "268", "269", "27", "290", "291", "297", "298", "299", "30", "31", "32", "33", "34",
    "350", "351", "352", "353", "354", "355", "356", "357", "358", "359", "36", "370", "371",
    "372", "373", "374", "375", "376", "377", "378", "379", "380", "381", "382", "383", "385",
    "386", "387", "389", "39", "40", "41", "420", "421", "423", "43", "44", "45", "46", "47", "48",
    "49", "500", "501", "502", "503", "504", "505", "506", "507", "508", "509", "51", "52", "53",
    "54", "55", "56", "57", "58", "590", "591", "592", "593", "594", "595", "596", "597", "598",
    "599", "60", "61", "62", "63", "64", "65", "66", "670", "672", "673", "674", "675", "676",
    "677", "678", "679", "680", "681", "682", "683", "685", "686", "687", "688", "689", "690",
    "691", "692", "7", "81", "82", "84", "850", "852", "853", "855", "856", "86", "880", "886",
    "90", "91", "92", "93", "94", "95", "960", "961", "962", "963", "964", "965", "966", "967",
    "968", "970", "971", "972", "973", "974", "975", "976", "977", "98", "992", "993", "994",
    "995", "996", "998",
];

fn validate_national(code: &str, national: &str) -> Result<(), PhoneError> {
    if code == MALAYSIA {
        return validate_malaysian(national);
    }
    let got = national.len();
    // The neighbours whose customers are most common have fixed lengths; elsewhere only
    // E.164's bounds are checked.
    let (kind, expected, ok) = match code {
        "1" => ("North American (+1)", "10", got == 10),
        "65" => ("Singapore (+65)", "8", got == 8),
        "673" => ("Brunei (+673)", "7", got == 7),
        _ => (
            "international",
            "4 or more (15 with the country code at most)",
            (MIN_NATIONAL_DIGITS..=MAX_E164_DIGITS - code.len()).contains(&got),
        ),
    };
    length_check(ok, kind, expected, got)
}

/// Mobile numbers are 1X plus 7 digits (011 and 015 plus 8); fixed lines are 03 plus 8
/// digits and other area codes plus 7 (Sabah and Sarawak 08X plus 6, also 8 in all).
fn validate_malaysian(nsn: &str) -> Result<(), PhoneError> {
    let got = nsn.len();
    let (kind, ok, expected) = match nsn.as_bytes().first() {
        Some(b'1') => {
            let long = nsn.starts_with("11") || nsn.starts_with("15");
            let ok = if long { got == 10 } else { got == 9 };
            ("Malaysian mobile", ok, if long { "10" } else { "9" })
        }
        Some(b'3') => ("Malaysian fixed-line", got == 9, "9"),
        Some(b'4'..=b'9') => ("Malaysian fixed-line", got == 8, "8"),
        _ => ("Malaysian fixed-line", false, "8 to 10"),
    };
    length_check(ok, kind, expected, got)
}

fn length_check(
    ok: bool,
    kind: &'static str,
    expected: &'static str,
    got: usize,
) -> Result<(), PhoneError> {
    if ok {
        Ok(())
    } else {
        Err(PhoneError::WrongLength {
            kind,
            expected,
            got,
        })
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PhoneNumber::from_stored_or_written(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(input: &str) -> String {
        PhoneNumber::parse(input).unwrap().as_str().to_string()
    }

    #[test]
    fn normalizes_common_forms() {
        for input in [
            "012-345 6789",
            "0123456789",
            "+60 12-345 6789",
            "+60123456789",
            "60123456789",
            "0060123456789",
            "+60 012-345 6789",
            "(012) 345.6789",
        ] {
            assert_eq!(normalized(input), "60123456789", "{input}");
        }
        assert_eq!(normalized("011-2345 6789"), "601123456789");
        assert_eq!(normalized("03-2161 1234"), "60321611234");
        assert_eq!(normalized("(04) 123 4567"), "6041234567");
        assert_eq!(normalized("082-123456"), "6082123456");
    }

    #[test]
    fn typed_errors() {
        assert_eq!(PhoneNumber::parse("  "), Err(PhoneError::Empty));
        assert_eq!(PhoneNumber::parse("+"), Err(PhoneError::Empty));
        assert_eq!(
            PhoneNumber::parse("012-345x6789"),
            Err(PhoneError::InvalidCharacter('x'))
        );
        assert_eq!(
            PhoneNumber::parse("+888 1234 5678"),
            Err(PhoneError::UnknownCountryCode("888".into()))
        );
        // 28x is unassigned, as is a number that starts with a 0 after `00`.
        assert!(matches!(
            PhoneNumber::parse("+281234567"),
            Err(PhoneError::UnknownCountryCode(_))
        ));
        assert!(matches!(
            PhoneNumber::from_e164_digits("281234567"),
            Err(PhoneError::UnknownCountryCode(_))
        ));
        assert!(matches!(
            PhoneNumber::parse("000123456789"),
            Err(PhoneError::UnknownCountryCode(_))
        ));
        for (input, kind, got) in [
            ("012-345 678", "Malaysian mobile", 8),
            ("011-2345 678", "Malaysian mobile", 9),
            ("03-2161 123", "Malaysian fixed-line", 8),
            ("+65 9123 456", "Singapore (+65)", 7),
            ("+44 123", "international", 3),
            ("+44 1234 5678 9012 34", "international", 14),
        ] {
            assert!(
                matches!(
                    PhoneNumber::parse(input),
                    Err(PhoneError::WrongLength { kind: k, got: g, .. }) if k == kind && g == got
                ),
                "{input}"
            );
        }
        // Written numbers without a 0, 60, + or 00 are refused, not read as another
        // country's: these are Malaysian numbers missing their 0 (a Kuala Lumpur
        // landline would be +32, Belgium; a Kuching one +82, Korea).
        for missing_zero in ["123456789", "3-2161 1234", "82-123456", "7-123 4567"] {
            assert_eq!(
                PhoneNumber::parse(missing_zero),
                Err(PhoneError::MissingPrefix),
                "{missing_zero}"
            );
        }
        // A wa_id is country code first; a +1 number needs ten more digits.
        assert!(matches!(
            PhoneNumber::from_e164_digits("123456789"),
            Err(PhoneError::WrongLength {
                kind: "North American (+1)",
                got: 8,
                ..
            })
        ));
        assert_eq!(
            PhoneNumber::from_e164_digits("+60123456789"),
            Err(PhoneError::InvalidCharacter('+'))
        );
        // The stored form is taken as it is: no trunk 0 to drop, no punctuation.
        assert!(PhoneNumber::from_e164_digits("600123456789").is_err());
    }

    #[test]
    fn foreign_numbers_in_international_form() {
        for input in ["+65 9123 4567", "0065 9123 4567", "+65-9123-4567"] {
            assert_eq!(normalized(input), "6591234567", "{input}");
        }
        let singapore = PhoneNumber::from_e164_digits("6591234567").unwrap();
        assert_eq!(singapore, PhoneNumber::parse("+65 9123 4567").unwrap());
        assert_eq!(PhoneNumber::parse(&singapore.written()).unwrap(), singapore);
        assert_eq!(singapore.country_code(), "65");
        assert!(!singapore.is_malaysian());
        assert!(!singapore.is_mobile());
        assert_eq!(normalized("+673 712 3456"), "6737123456");
        assert_eq!(normalized("+1 (415) 555-0100"), "14155550100");
        assert_eq!(normalized("+62 812-3456-7890"), "6281234567890");
        assert_eq!(normalized("+7 912 345 67 89"), "79123456789");
        assert_eq!(
            PhoneNumber::parse("+7 912 345 67 89")
                .unwrap()
                .country_code(),
            "7"
        );
        assert_eq!(
            PhoneNumber::parse("+852 9123 4567").unwrap().country_code(),
            "852"
        );
        // Malaysia keeps its strict rules in every form.
        let malaysian = PhoneNumber::from_e164_digits("60123456789").unwrap();
        assert_eq!(malaysian, PhoneNumber::parse("012-345 6789").unwrap());
        assert_eq!(malaysian.written(), "60123456789");
        assert_eq!(malaysian.country_code(), "60");
        assert!(malaysian.is_malaysian());
        assert!(PhoneNumber::from_e164_digits("6012345678").is_err());
    }

    #[test]
    fn serde_reads_the_stored_form_and_written_forms() {
        let read = |json: &str| serde_json::from_str::<PhoneNumber>(json).map(|p| p.0);
        assert_eq!(read("\"6591234567\"").unwrap(), "6591234567");
        assert_eq!(read("\"60123456789\"").unwrap(), "60123456789");
        assert_eq!(read("\"012-345 6789\"").unwrap(), "60123456789");
        assert_eq!(read("\"0123456789\"").unwrap(), "60123456789");
        assert_eq!(read("\"+65 9123 4567\"").unwrap(), "6591234567");
        assert!(read("\"659123456\"").is_err());
        let number = PhoneNumber::from_e164_digits("6737123456").unwrap();
        let json = serde_json::to_string(&number).unwrap();
        assert_eq!(serde_json::from_str::<PhoneNumber>(&json).unwrap(), number);
    }

    #[test]
    fn calling_codes_are_sorted_and_prefix_free() {
        assert!(ASSIGNED_CODES.windows(2).all(|pair| pair[0] < pair[1]));
        for code in ASSIGNED_CODES {
            for other in ASSIGNED_CODES {
                assert!(
                    code == other || !other.starts_with(code),
                    "{code} is a prefix of {other}"
                );
            }
        }
    }

    #[test]
    fn normalized_form_is_a_fixed_point() {
        let once = normalized("+60 12-345 6789");
        assert_eq!(normalized(&once), once);
        assert!(PhoneNumber::parse(&once).unwrap().is_mobile());
        assert!(!PhoneNumber::parse("03-2161 1234").unwrap().is_mobile());
    }
}
