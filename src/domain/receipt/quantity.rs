//! Exact decimals that are not money: item quantities (`1.250` kg) and tax rates (`6%`).
//! Floats would turn `1.250 x 5.90` into `7.374999…`; integers of thousandths do not.

use std::fmt;

use serde::{Serialize, Serializer};

/// Quantities above this are not item counts but barcodes or prices read as numbers.
const MAX_QUANTITY_UNITS: i64 = 100_000;

/// An item quantity in thousandths of a unit: `2` is 2000, `1.250` kg is 1250.
/// Serialises as a decimal string without trailing zeros: `"2"`, `"1.25"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(i64);

impl Quantity {
    pub const ONE: Quantity = Quantity(1000);

    pub const fn from_thousandths(thousandths: i64) -> Quantity {
        Quantity(thousandths)
    }

    pub const fn thousandths(self) -> i64 {
        self.0
    }

    pub const fn is_whole(self) -> bool {
        self.0 % 1000 == 0
    }

    /// Parses `2`, `1.250`, `0.5` (at most three decimals, positive, below 100 000).
    pub fn parse(s: &str) -> Option<Quantity> {
        let value = parse_scaled(s, 3)?;
        (value > 0 && value <= MAX_QUANTITY_UNITS * 1000).then_some(Quantity(value))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_scaled(f, self.0, 3)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A tax or service-charge rate in hundredths of a percent: `6%` is 600, `7.5%` is 750.
/// Serialises as the percent without the sign: `"6"`, `"7.5"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(i64);

impl Rate {
    pub const fn from_basis_points(bp: i64) -> Rate {
        Rate(bp)
    }

    pub const fn basis_points(self) -> i64 {
        self.0
    }

    /// Parses the number in front of a `%`: `6`, `6.00`, `7.5` (0 to 100).
    pub fn parse(s: &str) -> Option<Rate> {
        let value = parse_scaled(s, 2)?;
        (0..=10_000).contains(&value).then_some(Rate(value))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_scaled(f, self.0, 2)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `digits[.digits]` with at most `scale` decimals, as an integer scaled by 10^scale.
fn parse_scaled(s: &str, scale: u32) -> Option<i64> {
    let (whole, fraction) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 9 || !digits_ok(whole) || !digits_ok(fraction) {
        return None;
    }
    if fraction.len() > scale as usize || (s.contains('.') && fraction.is_empty()) {
        return None;
    }
    let unit = 10_i64.pow(scale);
    let mut value = whole.parse::<i64>().ok()?.checked_mul(unit)?;
    let mut place = unit / 10;
    for b in fraction.bytes() {
        value += i64::from(b - b'0') * place;
        place /= 10;
    }
    Some(value)
}

fn write_scaled(f: &mut fmt::Formatter<'_>, value: i64, scale: u32) -> fmt::Result {
    let unit = 10_i64.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let whole = magnitude / unit.unsigned_abs();
    let fraction = magnitude % unit.unsigned_abs();
    if fraction == 0 {
        return write!(f, "{sign}{whole}");
    }
    let digits = format!("{fraction:0width$}", width = scale as usize);
    write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_parses_counts_and_weights() {
        assert_eq!(Quantity::parse("2"), Some(Quantity::from_thousandths(2000)));
        assert_eq!(
            Quantity::parse("1.250"),
            Some(Quantity::from_thousandths(1250))
        );
        assert_eq!(
            Quantity::parse("0.5"),
            Some(Quantity::from_thousandths(500))
        );
        assert_eq!(Quantity::parse("1.2345"), None);
        assert_eq!(Quantity::parse("0"), None);
        assert_eq!(Quantity::parse("1."), None);
        assert_eq!(Quantity::parse(".5"), None);
        assert_eq!(Quantity::parse("9556001234567"), None);
        assert_eq!(Quantity::parse("1,5"), None);
    }

    #[test]
    fn quantity_displays_and_serialises_exactly() {
        assert_eq!(Quantity::from_thousandths(2000).to_string(), "2");
        assert_eq!(Quantity::from_thousandths(1250).to_string(), "1.25");
        assert_eq!(Quantity::from_thousandths(23_456).to_string(), "23.456");
        assert_eq!(Quantity::from_thousandths(5).to_string(), "0.005");
        let json = serde_json::to_string(&Quantity::from_thousandths(1250)).unwrap();
        assert_eq!(json, "\"1.25\"");
        assert!(Quantity::from_thousandths(3000).is_whole());
        assert!(!Quantity::from_thousandths(3500).is_whole());
    }

    #[test]
    fn rate_parses_percentages() {
        assert_eq!(Rate::parse("6"), Some(Rate::from_basis_points(600)));
        assert_eq!(Rate::parse("6.00"), Some(Rate::from_basis_points(600)));
        assert_eq!(Rate::parse("7.5"), Some(Rate::from_basis_points(750)));
        assert_eq!(Rate::parse("101"), None);
        assert_eq!(Rate::parse("6.125"), None);
        assert_eq!(Rate::from_basis_points(750).to_string(), "7.5");
        assert_eq!(Rate::from_basis_points(800).to_string(), "8");
    }
}
