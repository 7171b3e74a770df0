//! Attributes of a person that segments filter on.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gender {
    Male,
    Female,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaritalStatus {
    Single,
    Married,
    Divorced,
    Widowed,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{value:?} is not a valid {what}; expected one of: {expected}")]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl Gender {
    pub const fn as_str(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
}

impl MaritalStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            MaritalStatus::Single => "single",
            MaritalStatus::Married => "married",
            MaritalStatus::Divorced => "divorced",
            MaritalStatus::Widowed => "widowed",
        }
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for MaritalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Gender {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "male" | "m" | "lelaki" => Ok(Gender::Male),
            "female" | "f" | "perempuan" => Ok(Gender::Female),
            _ => Err(UnknownVariant {
                what: "gender",
                value: s.to_string(),
                expected: "male, female",
            }),
        }
    }
}

impl FromStr for MaritalStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "single" | "bujang" => Ok(MaritalStatus::Single),
            "married" | "berkahwin" => Ok(MaritalStatus::Married),
            "divorced" | "bercerai" => Ok(MaritalStatus::Divorced),
            "widowed" | "balu" | "duda" => Ok(MaritalStatus::Widowed),
            _ => Err(UnknownVariant {
                what: "marital status",
                value: s.to_string(),
                expected: "single, married, divorced, widowed",
            }),
        }
    }
}

/// Age in whole years on `today`; a birthday on Feb 29 is reached on Mar 1 in common years.
/// `None` when `today` is before the birth date.
pub fn age_on(date_of_birth: NaiveDate, today: NaiveDate) -> Option<u32> {
    if today < date_of_birth {
        return None;
    }
    let mut years = today.year() - date_of_birth.year();
    if (today.month(), today.day()) < (date_of_birth.month(), date_of_birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age_on(day(1990, 1, 1), day(2025, 1, 1)), Some(35));
        assert_eq!(age_on(day(1990, 1, 2), day(2025, 1, 1)), Some(34));
        assert_eq!(age_on(day(2000, 2, 29), day(2025, 2, 28)), Some(24));
        assert_eq!(age_on(day(2000, 2, 29), day(2025, 3, 1)), Some(25));
        assert_eq!(age_on(day(2000, 2, 29), day(2024, 2, 29)), Some(24));
        assert_eq!(age_on(day(2025, 1, 2), day(2025, 1, 1)), None);
        assert_eq!(age_on(day(2025, 1, 1), day(2025, 1, 1)), Some(0));
    }

    #[test]
    fn parses_english_and_malay() {
        assert_eq!("LELAKI".parse::<Gender>(), Ok(Gender::Male));
        assert_eq!("female".parse::<Gender>(), Ok(Gender::Female));
        assert_eq!(
            "Berkahwin".parse::<MaritalStatus>(),
            Ok(MaritalStatus::Married)
        );
        assert!("other".parse::<Gender>().is_err());
        assert!("engaged".parse::<MaritalStatus>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for g in [Gender::Male, Gender::Female] {
            assert_eq!(g.to_string().parse::<Gender>(), Ok(g));
        }
        for m in [
            MaritalStatus::Single,
            MaritalStatus::Married,
            MaritalStatus::Divorced,
            MaritalStatus::Widowed,
        ] {
            assert_eq!(m.to_string().parse::<MaritalStatus>(), Ok(m));
        }
    }
}
