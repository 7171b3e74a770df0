//! Malaysian phone numbers normalized to E.164 digits (`60123456789`), the form WhatsApp
//! uses for `wa_id` and the key contacts are stored under.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

const COUNTRY_CODE: &str = "60";

/// E.164 digits without the `+`, always starting with `60`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number contains {0:?}; only digits, spaces, dashes, dots, parentheses and a leading + are allowed")]
    InvalidCharacter(char),
    #[error("country code +{0} is not Malaysia (+60)")]
    NotMalaysian(String),
    #[error("phone number must start with 0 (national) or 60 / +60 (international)")]
    MissingPrefix,
    #[error("Malaysian {kind} numbers have {expected} digits after the country code, got {got}")]
    WrongLength {
        kind: &'static str,
        expected: &'static str,
        got: usize,
    },
}

impl PhoneNumber {
    /// Accepts `012-345 6789`, `+60 12-345 6789`, `60123456789`, `0060123456789`, `(03) 2161 1234`.
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
        let national = national_significant_number(&digits, explicit_international)?;
        validate_length(national)?;
        Ok(PhoneNumber(format!("{COUNTRY_CODE}{national}")))
    }

    /// The E.164 digits, e.g. `60123456789`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The E.164 form with its `+`, e.g. `+60123456789`.
    pub fn to_e164_with_plus(&self) -> String {
        format!("+{}", self.0)
    }

    pub fn is_mobile(&self) -> bool {
        self.0.as_bytes().get(2) == Some(&b'1')
    }
}

fn national_significant_number(
    digits: &str,
    explicit_international: bool,
) -> Result<&str, PhoneError> {
    let international = if explicit_international {
        Some(digits)
    } else {
        digits.strip_prefix("00")
    };
    if let Some(rest) = international {
        return match rest.strip_prefix(COUNTRY_CODE) {
            // `+60 012…` is a common mistake: the trunk 0 is dropped after a country code.
            Some(nsn) => Ok(nsn.strip_prefix('0').unwrap_or(nsn)),
            None => Err(PhoneError::NotMalaysian(rest.chars().take(3).collect())),
        };
    }
    if let Some(nsn) = digits.strip_prefix('0') {
        return Ok(nsn);
    }
    digits
        .strip_prefix(COUNTRY_CODE)
        .ok_or(PhoneError::MissingPrefix)
}

/// Mobile numbers are 1X plus 7 digits (011 and 015 plus 8); fixed lines are 03 plus 8
/// digits and other area codes plus 7 (Sabah and Sarawak 08X plus 6, also 8 in all).
fn validate_length(nsn: &str) -> Result<(), PhoneError> {
    let got = nsn.len();
    let (kind, ok, expected) = match nsn.as_bytes().first() {
        Some(b'1') => {
            let long = nsn.starts_with("11") || nsn.starts_with("15");
            let ok = if long { got == 10 } else { got == 9 };
            ("mobile", ok, if long { "10" } else { "9" })
        }
        Some(b'3') => ("fixed-line", got == 9, "9"),
        Some(b'4'..=b'9') => ("fixed-line", got == 8, "8"),
        _ => ("fixed-line", false, "8 to 10"),
    };
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
        PhoneNumber::parse(&text).map_err(serde::de::Error::custom)
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
        assert!(matches!(
            PhoneNumber::parse("+65 9123 4567"),
            Err(PhoneError::NotMalaysian(_))
        ));
        assert_eq!(
            PhoneNumber::parse("123456789"),
            Err(PhoneError::MissingPrefix)
        );
        assert!(matches!(
            PhoneNumber::parse("012-345 678"),
            Err(PhoneError::WrongLength {
                kind: "mobile",
                got: 8,
                ..
            })
        ));
        assert!(matches!(
            PhoneNumber::parse("011-2345 678"),
            Err(PhoneError::WrongLength {
                kind: "mobile",
                got: 9,
                ..
            })
        ));
        assert!(matches!(
            PhoneNumber::parse("03-2161 123"),
            Err(PhoneError::WrongLength {
                kind: "fixed-line",
                ..
            })
        ));
    }

    #[test]
    fn normalized_form_is_a_fixed_point() {
        let once = normalized("+60 12-345 6789");
        assert_eq!(normalized(&once), once);
        assert!(PhoneNumber::parse(&once).unwrap().is_mobile());
        assert!(!PhoneNumber::parse("03-2161 1234").unwrap().is_mobile());
    }
}
