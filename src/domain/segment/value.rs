//! Typed literal values in predicates, and exact comparison primitives.
//!
//! No floats are used for money or rates: money is [`Money`] (integer sen) and a rate is a
//! [`Ratio`] in millionths. JSON numbers in retailer attributes are compared exactly as the
//! integers or binary64 numbers that JSON parsing produced (an integer and a float are
//! compared by value, never by converting the integer to a float).

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use crate::domain::contact::WhatsappStatus;
use crate::domain::money::Money;
use crate::domain::person::{Gender, MaritalStatus};
use crate::domain::phone::PhoneNumber;
use crate::domain::state::MalaysianState;
use crate::domain::tier::Tier;

/// The type of a field, which decides the literals and operators it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Whole numbers (counts, ages, days).
    Integer,
    /// Ringgit, exact to the sen.
    Money,
    /// A rate from 0 to 1, exact to the millionth.
    Ratio,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An instant, RFC 3339.
    DateTime,
    /// Free text, compared ignoring case.
    Text,
    /// A Malaysian phone number (normalized E.164 digits).
    Phone,
    Gender,
    MaritalStatus,
    State,
    /// Ordered Bronze < Silver < Gold < Platinum.
    Tier,
    WhatsappStatus,
    Bool,
    /// A retailer attribute: its JSON type is known only per contact.
    Dynamic,
}

impl ValueType {
    pub const fn as_str(self) -> &'static str {
        match self {
            ValueType::Integer => "integer",
            ValueType::Money => "money",
            ValueType::Ratio => "ratio",
            ValueType::Date => "date",
            ValueType::DateTime => "datetime",
            ValueType::Text => "string",
            ValueType::Phone => "phone",
            ValueType::Gender => "enum gender",
            ValueType::MaritalStatus => "enum marital_status",
            ValueType::State => "enum state",
            ValueType::Tier => "ordered enum tier",
            ValueType::WhatsappStatus => "enum whatsapp_status",
            ValueType::Bool => "boolean",
            ValueType::Dynamic => "attribute",
        }
    }
}

/// A rate from 0 to 1 in millionths (`0.25` is 250 000), so `0.1` is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ratio(u32);

impl Ratio {
    pub const SCALE: u32 = 1_000_000;
    pub const ZERO: Ratio = Ratio(0);
    pub const ONE: Ratio = Ratio(Ratio::SCALE);

    /// `None` above one million (a rate above 1).
    pub fn from_millionths(millionths: u32) -> Option<Ratio> {
        (millionths <= Ratio::SCALE).then_some(Ratio(millionths))
    }

    pub const fn millionths(self) -> u32 {
        self.0
    }

    /// Parses a decimal from 0 to 1 with at most six decimal places, in the forms JSON
    /// numbers take: `0`, `1`, `0.25`, `1.000`, `2.5e-1`, `1e-6`. No sign.
    pub fn parse_decimal(text: &str) -> Option<Ratio> {
        let (mantissa, exponent) = match text.split_once(['e', 'E']) {
            Some((m, e)) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty()
                    || digits.len() > 4
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                let magnitude: i32 = digits.parse().ok()?;
                (
                    m,
                    if e.starts_with('-') {
                        -magnitude
                    } else {
                        magnitude
                    },
                )
            }
            None => (text, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) {
            return None;
        }
        if mantissa.contains('.') && fraction.is_empty() {
            return None;
        }
        // value = digits × 10^(exponent − fraction length); millionths = value × 10^6.
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        let shift = exponent + 6 - i32::try_from(fraction.len()).ok()?;
        if digits.is_empty() {
            return Some(Ratio::ZERO);
        }
        let (significant, zeros) = {
            let trimmed = digits.trim_end_matches('0');
            (trimmed, i32::try_from(digits.len() - trimmed.len()).ok()?)
        };
        // value in millionths = significant × 10^(shift + zeros): must be a whole number ≤ 10^6.
        let power = shift.checked_add(zeros)?;
        if !(0..=6).contains(&power) || significant.len() > 7 {
            return None;
        }
        let significant: u64 = significant.parse().ok()?;
        let millionths = significant.checked_mul(10u64.pow(power.unsigned_abs()))?;
        Ratio::from_millionths(u32::try_from(millionths).ok()?)
    }

    /// Compares `numerator / denominator` (with `denominator > 0`) to this ratio, exactly.
    pub fn cmp_fraction(numerator: u64, denominator: u64, ratio: Ratio) -> Ordering {
        let left = u128::from(numerator) * u128::from(Ratio::SCALE);
        let right = u128::from(ratio.0) * u128::from(denominator);
        left.cmp(&right)
    }
}

impl fmt::Display for Ratio {
    /// `0`, `1`, `0.25`, `0.000001`: the shortest exact decimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / Ratio::SCALE;
        let fraction = self.0 % Ratio::SCALE;
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{fraction:06}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// Text as written plus its lowercase form, so comparisons ignore case without allocating.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Text {
    original: String,
    folded: String,
}

impl Text {
    pub fn new(original: impl Into<String>) -> Self {
        let original = original.into();
        let folded = fold_case(&original);
        Text { original, folded }
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The Unicode lowercase form used for comparison.
    pub fn folded(&self) -> &str {
        &self.folded
    }
}

/// Unicode lowercase, the one case rule for every text comparison.
pub fn fold_case(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// Whether `text` equals `folded` (already lowercase) ignoring case, without allocating.
pub fn eq_folded(text: &str, folded: &str) -> bool {
    text.chars().flat_map(char::to_lowercase).eq(folded.chars())
}

/// A literal in a comparison, already checked against its field's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Integer(i64),
    Money(Money),
    Ratio(Ratio),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Text(Text),
    Phone(PhoneNumber),
    Gender(Gender),
    MaritalStatus(MaritalStatus),
    State(MalaysianState),
    Tier(Tier),
    WhatsappStatus(WhatsappStatus),
    Bool(bool),
    /// A JSON number compared against a retailer attribute.
    Number(serde_json::Number),
}

impl Literal {
    /// A short name of the literal's kind, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Literal::Integer(_) => "integer",
            Literal::Money(_) => "money",
            Literal::Ratio(_) => "ratio",
            Literal::Date(_) => "date",
            Literal::DateTime(_) => "datetime",
            Literal::Text(_) => "string",
            Literal::Phone(_) => "phone",
            Literal::Gender(_) => "gender",
            Literal::MaritalStatus(_) => "marital_status",
            Literal::State(_) => "state",
            Literal::Tier(_) => "tier",
            Literal::WhatsappStatus(_) => "whatsapp_status",
            Literal::Bool(_) => "boolean",
            Literal::Number(_) => "number",
        }
    }

    /// Whether this literal is a value of a field of type `value_type` (for `Dynamic`, any
    /// JSON scalar: text, number or boolean).
    pub fn fits(&self, value_type: ValueType) -> bool {
        matches!(
            (value_type, self),
            (ValueType::Integer, Literal::Integer(_))
                | (ValueType::Money, Literal::Money(_))
                | (ValueType::Ratio, Literal::Ratio(_))
                | (ValueType::Date, Literal::Date(_))
                | (ValueType::DateTime, Literal::DateTime(_))
                | (ValueType::Text, Literal::Text(_))
                | (ValueType::Phone, Literal::Phone(_))
                | (ValueType::Gender, Literal::Gender(_))
                | (ValueType::MaritalStatus, Literal::MaritalStatus(_))
                | (ValueType::State, Literal::State(_))
                | (ValueType::Tier, Literal::Tier(_))
                | (ValueType::WhatsappStatus, Literal::WhatsappStatus(_))
                | (ValueType::Bool, Literal::Bool(_))
                | (
                    ValueType::Dynamic,
                    Literal::Text(_) | Literal::Number(_) | Literal::Bool(_)
                )
        )
    }

    /// Orders two literals of the same kind (used to check `between` bounds); `None` for
    /// unordered kinds or different kinds.
    pub fn partial_order(&self, other: &Literal) -> Option<Ordering> {
        match (self, other) {
            (Literal::Integer(a), Literal::Integer(b)) => Some(a.cmp(b)),
            (Literal::Money(a), Literal::Money(b)) => Some(a.cmp(b)),
            (Literal::Ratio(a), Literal::Ratio(b)) => Some(a.cmp(b)),
            (Literal::Date(a), Literal::Date(b)) => Some(a.cmp(b)),
            (Literal::DateTime(a), Literal::DateTime(b)) => Some(a.cmp(b)),
            (Literal::Tier(a), Literal::Tier(b)) => Some(a.cmp(b)),
            (Literal::Number(a), Literal::Number(b)) => Some(cmp_numbers(a, b)),
            _ => None,
        }
    }

    /// The literal as JSON, in the canonical form the parser reads back to an equal literal.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Literal::Integer(i) => Value::from(*i),
            Literal::Money(m) => Value::String(m.to_string()),
            Literal::Ratio(r) => ratio_to_json(*r),
            Literal::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
            Literal::DateTime(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Literal::Text(t) => Value::String(t.as_str().to_string()),
            Literal::Phone(p) => Value::String(p.written()),
            Literal::Gender(g) => Value::String(g.as_str().to_string()),
            Literal::MaritalStatus(m) => Value::String(m.as_str().to_string()),
            Literal::State(s) => Value::String(s.name().to_string()),
            Literal::Tier(t) => Value::String(t.as_str().to_string()),
            Literal::WhatsappStatus(w) => Value::String(w.as_str().to_string()),
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Number(n) => Value::Number(n.clone()),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_json() {
            serde_json::Value::String(s) => f.write_str(&s),
            other => write!(f, "{other}"),
        }
    }
}

fn ratio_to_json(ratio: Ratio) -> serde_json::Value {
    match ratio.millionths() {
        0 => serde_json::Value::from(0u64),
        Ratio::SCALE => serde_json::Value::from(1u64),
        // k / 10^6 rounds to the binary64 nearest that decimal, whose shortest printed form is
        // that decimal again (binary64 keeps 15 significant digits), so it reads back equal.
        m => serde_json::Value::from(f64::from(m) / f64::from(Ratio::SCALE)),
    }
}

/// A JSON number as an exact integer or the binary64 JSON parsing produced.
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num(n: &serde_json::Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::Int(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Num::Int(i128::from(u))
    } else {
        // serde_json numbers are always one of the three; 0.0 is only a fallback.
        Num::Float(n.as_f64().unwrap_or(0.0))
    }
}

/// Exact order of two JSON numbers (serde_json never holds NaN or infinities).
pub fn cmp_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Ordering {
    match (num(a), num(b)) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).reverse(),
    }
}

/// Exact order of an integer and a finite float, without rounding the integer.
fn cmp_int_float(int: i128, float: f64) -> Ordering {
    // Every i64/u64 lies well inside ±2^100, and floats beyond it are integral.
    const LIMIT: f64 = 1.267_650_600_228_229_4e30; // 2^100
    if float.is_nan() {
        return Ordering::Equal;
    }
    if float >= LIMIT {
        return Ordering::Less;
    }
    if float <= -LIMIT {
        return Ordering::Greater;
    }
    let whole = float.trunc();
    // |whole| < 2^100 and integral, so the conversion is exact.
    let whole_int = whole as i128;
    match int.cmp(&whole_int) {
        Ordering::Equal => {
            let fraction = float - whole;
            if fraction > 0.0 {
                Ordering::Less
            } else if fraction < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> serde_json::Number {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn ratio_parses_exact_decimals() {
        assert_eq!(Ratio::parse_decimal("0"), Some(Ratio::ZERO));
        assert_eq!(Ratio::parse_decimal("1"), Some(Ratio::ONE));
        assert_eq!(Ratio::parse_decimal("1.000"), Some(Ratio::ONE));
        assert_eq!(
            Ratio::parse_decimal("0.25"),
            Ratio::from_millionths(250_000)
        );
        assert_eq!(Ratio::parse_decimal("0.1"), Ratio::from_millionths(100_000));
        assert_eq!(Ratio::parse_decimal("0.000001"), Ratio::from_millionths(1));
        assert_eq!(Ratio::parse_decimal("0.0000001"), None);
        assert_eq!(Ratio::parse_decimal("1.5"), None);
        assert_eq!(Ratio::parse_decimal("1.000001"), None);
        assert_eq!(Ratio::parse_decimal("2"), None);
        assert_eq!(Ratio::parse_decimal("-0.5"), None);
        assert_eq!(
            Ratio::parse_decimal("1e-1"),
            Ratio::from_millionths(100_000)
        );
        assert_eq!(
            Ratio::parse_decimal("2.5E-1"),
            Ratio::from_millionths(250_000)
        );
        assert_eq!(Ratio::parse_decimal("1e-6"), Ratio::from_millionths(1));
        assert_eq!(Ratio::parse_decimal("1e-7"), None);
        assert_eq!(Ratio::parse_decimal("1e0"), Some(Ratio::ONE));
        assert_eq!(Ratio::parse_decimal("0.01e2"), Some(Ratio::ONE));
        assert_eq!(Ratio::parse_decimal("1e1"), None);
        assert_eq!(Ratio::parse_decimal("1e-99999"), None);
        assert_eq!(Ratio::parse_decimal("0e999"), Some(Ratio::ZERO));
        assert_eq!(Ratio::parse_decimal("1e"), None);
        assert_eq!(Ratio::parse_decimal(".5"), None);
        assert_eq!(Ratio::parse_decimal("0."), None);
        assert_eq!(Ratio::parse_decimal(""), None);
    }

    #[test]
    fn ratio_display_and_json_round_trip() {
        for m in [0, 1, 7, 100_000, 250_000, 333_333, 999_999, 1_000_000] {
            let ratio = Ratio::from_millionths(m).unwrap();
            assert_eq!(Ratio::parse_decimal(&ratio.to_string()), Some(ratio));
            let json = ratio_to_json(ratio).to_string();
            assert_eq!(Ratio::parse_decimal(&json), Some(ratio), "{json}");
        }
        assert_eq!(Ratio::from_millionths(250_000).unwrap().to_string(), "0.25");
    }

    #[test]
    fn ratio_compares_fractions_exactly() {
        let third = Ratio::parse_decimal("0.333333").unwrap();
        assert_eq!(Ratio::cmp_fraction(1, 3, third), Ordering::Greater);
        let quarter = Ratio::parse_decimal("0.25").unwrap();
        assert_eq!(Ratio::cmp_fraction(1, 4, quarter), Ordering::Equal);
        assert_eq!(Ratio::cmp_fraction(1, 5, quarter), Ordering::Less);
        assert_eq!(
            Ratio::cmp_fraction(u64::MAX, u64::MAX, Ratio::ONE),
            Ordering::Equal
        );
    }

    #[test]
    fn json_numbers_compare_exactly() {
        assert_eq!(cmp_numbers(&number("3"), &number("3.0")), Ordering::Equal);
        assert_eq!(cmp_numbers(&number("3"), &number("3.5")), Ordering::Less);
        assert_eq!(
            cmp_numbers(&number("-3"), &number("-3.5")),
            Ordering::Greater
        );
        assert_eq!(
            cmp_numbers(&number("-1"), &number("18446744073709551615")),
            Ordering::Less
        );
        // 2^53 + 1 is not representable as a float; it must still be above 2^53.
        assert_eq!(
            cmp_numbers(&number("9007199254740993"), &number("9007199254740992.0")),
            Ordering::Greater
        );
        assert_eq!(cmp_numbers(&number("5"), &number("1e300")), Ordering::Less);
        assert_eq!(
            cmp_numbers(&number("5"), &number("-1e300")),
            Ordering::Greater
        );
        assert_eq!(cmp_numbers(&number("0.1"), &number("0.2")), Ordering::Less);
    }

    #[test]
    fn folding_ignores_case() {
        let text = Text::new("Ahmad BIN Ali");
        assert_eq!(text.folded(), "ahmad bin ali");
        assert!(eq_folded("AHMAD bin ali", text.folded()));
        assert!(!eq_folded("Ahmad", text.folded()));
    }

    #[test]
    fn literal_types_fit_fields() {
        assert!(Literal::Integer(3).fits(ValueType::Integer));
        assert!(!Literal::Integer(3).fits(ValueType::Money));
        assert!(Literal::Bool(true).fits(ValueType::Dynamic));
        assert!(!Literal::Money(Money::ZERO).fits(ValueType::Dynamic));
    }
}
