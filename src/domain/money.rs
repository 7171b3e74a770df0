//! Ringgit amounts as exact integer sen. Floats never touch money: a receipt total of
//! RM 0.10 + RM 0.20 must be RM 0.30, not 0.30000000000000004.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// An amount in sen (1/100 ringgit). Signed, because discounts and rounding adjustments
/// are negative on receipts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("amount is empty")]
    Empty,
    #[error("amount {0:?} is not a decimal number of ringgit")]
    NotANumber(String),
    #[error("amount {0:?} has more than two decimal places")]
    TooPrecise(String),
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_sen(sen: i64) -> Self {
        Money(sen)
    }

    pub const fn from_ringgit(ringgit: i64) -> Self {
        Money(ringgit * 100)
    }

    pub const fn sen(self) -> i64 {
        self.0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub const fn abs(self) -> Self {
        Money(self.0.abs())
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// Sums that must never panic (evaluating hostile data) clamp instead of overflowing.
    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// Bank Negara's cash rounding to the nearest 5 sen: 1, 2, 6, 7 round down, 3, 4, 8, 9 up.
    pub fn round_to_5_sen(self) -> Money {
        let sign = self.0.signum();
        let magnitude = self.0.abs();
        let remainder = magnitude % 5;
        let rounded = if remainder >= 3 {
            magnitude + (5 - remainder)
        } else {
            magnitude - remainder
        };
        Money(sign * rounded)
    }

    /// Mean of `count` amounts whose sum is `self`, rounded half away from zero to the sen.
    pub fn div_round(self, count: u64) -> Option<Money> {
        if count == 0 {
            return None;
        }
        let count = i128::from(count);
        let total = i128::from(self.0);
        let half = count / 2;
        let rounded = if total >= 0 {
            (total + half) / count
        } else {
            (total - half) / count
        };
        i64::try_from(rounded).ok().map(Money)
    }

    /// Parses ringgit written the way receipts and people write it: `29.70`, `RM29.70`,
    /// `RM 1,234.50`, `-2.00`, `29.7`, `29`. Thousands separators must group by three.
    pub fn parse_ringgit(input: &str) -> Result<Money, MoneyError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(MoneyError::Empty);
        }
        let (negative, rest) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest.trim_start()),
            None => (false, trimmed),
        };
        let rest = strip_currency(rest);
        let (whole, fraction) = match rest.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (rest, None),
        };
        let whole_digits = strip_thousands(whole).ok_or_else(|| not_a_number(input))?;
        let fraction_sen = match fraction {
            None => 0,
            Some(f) if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(not_a_number(input))
            }
            Some(f) if f.len() > 2 => return Err(MoneyError::TooPrecise(input.to_string())),
            Some(f) if f.len() == 1 => i64::from(f.as_bytes()[0] - b'0') * 10,
            Some(f) => i64::from(f.as_bytes()[0] - b'0') * 10 + i64::from(f.as_bytes()[1] - b'0'),
        };
        let ringgit: i64 = whole_digits
            .parse()
            .map_err(|_| MoneyError::Overflow(input.to_string()))?;
        let sen = ringgit
            .checked_mul(100)
            .and_then(|s| s.checked_add(fraction_sen))
            .ok_or_else(|| MoneyError::Overflow(input.to_string()))?;
        Ok(Money(if negative { -sen } else { sen }))
    }
}

fn not_a_number(input: &str) -> MoneyError {
    MoneyError::NotANumber(input.to_string())
}

fn strip_currency(s: &str) -> &str {
    for prefix in ["RM", "rm", "Rm", "MYR"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return rest.trim_start();
        }
    }
    s
}

/// Returns the digits of a whole-ringgit part, accepting `1,234,567` but not `12,34`.
fn strip_thousands(whole: &str) -> Option<String> {
    if whole.is_empty() {
        return None;
    }
    let groups: Vec<&str> = whole.split(',').collect();
    let first_ok = !groups[0].is_empty() && groups[0].len() <= 3 || groups.len() == 1;
    let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
    let digits_ok = groups
        .iter()
        .all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()));
    (first_ok && rest_ok && digits_ok).then(|| groups.concat())
}

impl fmt::Display for Money {
    /// `45.60`, `-0.02`: the form the CLI and the API print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", magnitude / 100, magnitude % 100)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse_ringgit(s)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    /// Accepts a decimal string (`"45.60"`) or a number of ringgit (`45.6`, `500`) so that
    /// thresholds in TOML config read naturally; numbers go through their decimal text.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Int(i64),
            Float(f64),
        }
        let text = match Repr::deserialize(deserializer)? {
            Repr::Text(s) => s,
            Repr::Int(i) => i.to_string(),
            Repr::Float(f) => f.to_string(),
        };
        Money::parse_ringgit(&text).map_err(serde::de::Error::custom)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 += rhs.0;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0 - rhs.0)
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        self.0 -= rhs.0;
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rm(s: &str) -> Money {
        Money::parse_ringgit(s).unwrap()
    }

    #[test]
    fn parses_receipt_forms() {
        assert_eq!(rm("29.70").sen(), 2970);
        assert_eq!(rm("RM29.70").sen(), 2970);
        assert_eq!(rm("RM 29.70").sen(), 2970);
        assert_eq!(rm("29.7").sen(), 2970);
        assert_eq!(rm("29").sen(), 2900);
        assert_eq!(rm("1,234.50").sen(), 123_450);
        assert_eq!(rm("-0.02").sen(), -2);
        assert_eq!(rm("- RM 3.00").sen(), -300);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Money::parse_ringgit(""), Err(MoneyError::Empty));
        assert!(matches!(
            Money::parse_ringgit("12,34.00"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Money::parse_ringgit("1.234"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Money::parse_ringgit("abc"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Money::parse_ringgit("1."),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Money::parse_ringgit("99999999999999999999"),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Money::from_sen(4560).to_string(), "45.60");
        assert_eq!(Money::from_sen(5).to_string(), "0.05");
        assert_eq!(Money::from_sen(-2).to_string(), "-0.02");
    }

    #[test]
    fn cash_rounding_follows_bank_negara_rule() {
        let cases = [
            (2971, 2970),
            (2972, 2970),
            (2973, 2975),
            (2974, 2975),
            (2975, 2975),
            (2976, 2975),
            (2977, 2975),
            (2978, 2980),
            (2979, 2980),
            (2980, 2980),
        ];
        for (raw, paid) in cases {
            assert_eq!(Money::from_sen(raw).round_to_5_sen().sen(), paid, "{raw}");
        }
    }

    #[test]
    fn average_rounds_half_away_from_zero() {
        assert_eq!(Money::from_sen(100).div_round(3), Some(Money::from_sen(33)));
        assert_eq!(Money::from_sen(5).div_round(2), Some(Money::from_sen(3)));
        assert_eq!(Money::from_sen(-5).div_round(2), Some(Money::from_sen(-3)));
        assert_eq!(Money::from_sen(5).div_round(0), None);
    }

    #[test]
    fn serde_uses_decimal_strings() {
        let json = serde_json::to_string(&Money::from_sen(4560)).unwrap();
        assert_eq!(json, "\"45.60\"");
        let back: Money = serde_json::from_str("\"45.60\"").unwrap();
        assert_eq!(back.sen(), 4560);
        let from_number: Money = serde_json::from_str("500").unwrap();
        assert_eq!(from_number.sen(), 50_000);
    }
}
