//! A segment definition: a name, the seed filters, and an optional custom predicate.
//!
//! A contact is a member when it passes **every** part that is present (an empty definition
//! matches every contact):
//! - `min_spending` / `max_spending`: lifetime `total_spent` ≥ min / ≤ max (inclusive);
//! - `min_age` / `max_age`: `age` on the evaluation date ≥ min / ≤ max (inclusive); a contact
//!   without a known age fails either;
//! - `gender`, `marital_status`, `state`, `tier`: one value or a non-empty list; the contact's
//!   value is one of them (a contact without the value fails);
//! - `custom`: the predicate matches.
//!
//! [`SegmentDefinition::conditions`] spells the same thing as a list of predicates (one per
//! present part, to be ANDed), which is what an index evaluates.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::{ErrorKind, Path, SegmentError};
use super::eval::{eval_predicate, EvalContext};
use super::field::{Actual, ContactFacts, Field, FieldReader};
use super::parse::{enum_from_json, json_type, money_from_json, parse_json_text, parse_predicate};
use super::predicate::{Comparison, Op, Operand, Predicate, MAX_LIST_LEN};
use super::value::Literal;
use crate::domain::contact::Contact;
use crate::domain::money::Money;
use crate::domain::person::{Gender, MaritalStatus, UnknownVariant};
use crate::domain::state::MalaysianState;
use crate::domain::tier::Tier;

/// Oldest age a filter may name.
pub const MAX_AGE: u32 = 150;
/// Longest segment name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

const KEYS: &str =
    "name, min_spending, max_spending, min_age, max_age, gender, marital_status, state, tier, custom";

/// The seed's filters. `None` or an empty list means "no filter".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeedFilters {
    pub min_spending: Option<Money>,
    pub max_spending: Option<Money>,
    pub min_age: Option<u32>,
    pub max_age: Option<u32>,
    pub gender: Vec<Gender>,
    pub marital_status: Vec<MaritalStatus>,
    pub state: Vec<MalaysianState>,
    pub tier: Vec<Tier>,
}

/// A validated segment definition.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentDefinition {
    name: String,
    seed: SeedFilters,
    custom: Option<Predicate>,
}

fn err(path: Path, kind: ErrorKind) -> SegmentError {
    SegmentError::new(path, kind)
}

impl SegmentDefinition {
    /// Validates: a non-blank name of at most [`MAX_NAME_CHARS`] characters, min ≤ max for
    /// spending and age, ages at most [`MAX_AGE`], lists of at most [`MAX_LIST_LEN`] values.
    /// Errors carry the JSON path of the offending key.
    pub fn new(
        name: impl Into<String>,
        seed: SeedFilters,
        custom: Option<Predicate>,
    ) -> Result<SegmentDefinition, SegmentError> {
        let name = name.into();
        if name.trim().is_empty() {
            return Err(err(Path::root().key("name"), ErrorKind::BlankName));
        }
        let len = name.chars().count();
        if len > MAX_NAME_CHARS {
            return Err(err(
                Path::root().key("name"),
                ErrorKind::NameTooLong {
                    len,
                    max: MAX_NAME_CHARS,
                },
            ));
        }
        for (key, age) in [("min_age", seed.min_age), ("max_age", seed.max_age)] {
            if let Some(age) = age.filter(|a| *a > MAX_AGE) {
                return Err(err(
                    Path::root().key(key),
                    ErrorKind::InvalidAge {
                        max: MAX_AGE,
                        got: age.to_string(),
                    },
                ));
            }
        }
        if let (Some(min), Some(max)) = (seed.min_spending, seed.max_spending) {
            if min > max {
                return Err(min_above_max("min_spending", min, "max_spending", max));
            }
        }
        if let (Some(min), Some(max)) = (seed.min_age, seed.max_age) {
            if min > max {
                return Err(min_above_max("min_age", min, "max_age", max));
            }
        }
        for (key, len) in [
            ("gender", seed.gender.len()),
            ("marital_status", seed.marital_status.len()),
            ("state", seed.state.len()),
            ("tier", seed.tier.len()),
        ] {
            if len > MAX_LIST_LEN {
                return Err(err(
                    Path::root().key(key),
                    ErrorKind::ListTooLong {
                        len,
                        max: MAX_LIST_LEN,
                    },
                ));
            }
        }
        Ok(SegmentDefinition { name, seed, custom })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn seed(&self) -> &SeedFilters {
        &self.seed
    }

    pub fn custom(&self) -> Option<&Predicate> {
        self.custom.as_ref()
    }

    /// Whether `contact` is a member on `ctx`.
    pub fn matches(&self, contact: &Contact, ctx: &EvalContext) -> bool {
        self.matches_facts(contact, ctx)
    }

    /// [`SegmentDefinition::matches`] over anything that has a contact's facts.
    pub fn matches_facts(&self, contact: &dyn ContactFacts, ctx: &EvalContext) -> bool {
        let reader = FieldReader::new(contact, ctx);
        self.seed_matches(&reader)
            && self
                .custom
                .as_ref()
                .is_none_or(|custom| eval_predicate(custom, &reader))
    }

    fn seed_matches(&self, reader: &FieldReader<'_>) -> bool {
        let seed = &self.seed;
        let contact = reader.contact();
        let spending_ok = if seed.min_spending.is_some() || seed.max_spending.is_some() {
            let spent = reader.stats().total_spent;
            seed.min_spending.is_none_or(|min| spent >= min)
                && seed.max_spending.is_none_or(|max| spent <= max)
        } else {
            true
        };
        let age_ok = if seed.min_age.is_some() || seed.max_age.is_some() {
            match reader.read(&Field::Age) {
                Some(Actual::Integer(age)) => {
                    seed.min_age.is_none_or(|min| age >= i128::from(min))
                        && seed.max_age.is_none_or(|max| age <= i128::from(max))
                }
                _ => false,
            }
        } else {
            true
        };
        let state = contact.state();
        spending_ok
            && age_ok
            && one_of(&seed.gender, contact.gender())
            && one_of(&seed.marital_status, contact.marital_status())
            && (seed.state.is_empty() || matches!(state, Some(Some(s)) if seed.state.contains(&s)))
            && one_of(&seed.tier, Some(contact.customer_tier()))
    }

    /// The definition as predicates to AND, in key order: spending, age, gender, marital
    /// status, state, tier, custom. Empty for a definition without filters. Each is within
    /// the predicate limits; `matches` agrees with "all of these match".
    pub fn conditions(&self) -> Vec<Predicate> {
        let seed = &self.seed;
        let mut out = Vec::new();
        let compare = |field: Field, op: Op, operand: Operand| {
            // Validated seed values always make a valid comparison.
            Comparison::new(field, op, operand)
                .ok()
                .map(Predicate::compare)
        };
        let range = |field: Field, min: Option<Literal>, max: Option<Literal>| match (min, max) {
            (Some(min), Some(max)) => compare(field, Op::Between, Operand::Range(min, max)),
            (Some(min), None) => compare(field, Op::Gte, Operand::One(min)),
            (None, Some(max)) => compare(field, Op::Lte, Operand::One(max)),
            (None, None) => None,
        };
        let age = |a: u32| Literal::Integer(i64::from(a));
        out.extend(range(
            Field::TotalSpent,
            seed.min_spending.map(Literal::Money),
            seed.max_spending.map(Literal::Money),
        ));
        out.extend(range(
            Field::Age,
            seed.min_age.map(age),
            seed.max_age.map(age),
        ));
        let list = |field: Field, values: Vec<Literal>| match values.len() {
            0 => None,
            1 => compare(field, Op::Eq, Operand::One(values[0].clone())),
            _ => compare(field, Op::In, Operand::List(values)),
        };
        out.extend(list(
            Field::Gender,
            seed.gender.iter().copied().map(Literal::Gender).collect(),
        ));
        out.extend(list(
            Field::MaritalStatus,
            seed.marital_status
                .iter()
                .copied()
                .map(Literal::MaritalStatus)
                .collect(),
        ));
        out.extend(list(
            Field::State,
            seed.state.iter().copied().map(Literal::State).collect(),
        ));
        out.extend(list(
            Field::CustomerTier,
            seed.tier.iter().copied().map(Literal::Tier).collect(),
        ));
        out.extend(self.custom.clone());
        out
    }

    /// Parses and validates a definition; errors carry the path to the bad node.
    pub fn from_json(value: &Value) -> Result<SegmentDefinition, SegmentError> {
        let root = Path::root();
        let Value::Object(object) = value else {
            return Err(err(
                root,
                ErrorKind::WrongJsonType {
                    expected: "a segment definition object",
                    got: json_type(value),
                },
            ));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| !KEYS.split(", ").any(|known| known == k.as_str()))
        {
            return Err(err(
                root.key(unknown),
                ErrorKind::UnknownKey { expected: KEYS },
            ));
        }
        // A present key with JSON `null` counts as absent.
        let get = |key: &str| object.get(key).filter(|v| !v.is_null());
        let name = match object.get("name") {
            None | Some(Value::Null) => return Err(err(root, ErrorKind::MissingKey("name"))),
            Some(Value::String(name)) => name.clone(),
            Some(other) => {
                return Err(err(
                    root.key("name"),
                    ErrorKind::WrongJsonType {
                        expected: "a string",
                        got: json_type(other),
                    },
                ))
            }
        };
        let money = |key: &str| {
            get(key)
                .map(|v| money_from_json(v, &root.key(key), &format!("key \"{key}\"")))
                .transpose()
        };
        let age = |key: &str| get(key).map(|v| age_from_json(v, key)).transpose();
        let seed = SeedFilters {
            min_spending: money("min_spending")?,
            max_spending: money("max_spending")?,
            min_age: age("min_age")?,
            max_age: age("max_age")?,
            gender: one_or_many(get("gender"), "gender")?,
            marital_status: one_or_many(get("marital_status"), "marital_status")?,
            state: one_or_many(get("state"), "state")?,
            tier: one_or_many(get("tier"), "tier")?,
        };
        let custom = get("custom")
            .map(|v| parse_predicate(v, &root.key("custom")))
            .transpose()?;
        SegmentDefinition::new(name, seed, custom)
    }

    /// Parses definition JSON text.
    pub fn from_json_str(text: &str) -> Result<SegmentDefinition, SegmentError> {
        SegmentDefinition::from_json(&parse_json_text(text)?)
    }

    /// The canonical JSON form: absent filters omitted, one-value lists as a single value.
    pub fn to_json(&self) -> Value {
        let seed = &self.seed;
        let mut object = Map::new();
        object.insert("name".into(), Value::String(self.name.clone()));
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                object.insert(key.to_string(), value);
            }
        };
        put(
            "min_spending",
            seed.min_spending.map(|m| m.to_string().into()),
        );
        put(
            "max_spending",
            seed.max_spending.map(|m| m.to_string().into()),
        );
        put("min_age", seed.min_age.map(Value::from));
        put("max_age", seed.max_age.map(Value::from));
        put("gender", names(&seed.gender, |g| g.as_str()));
        put(
            "marital_status",
            names(&seed.marital_status, |m| m.as_str()),
        );
        put("state", names(&seed.state, |s| s.name()));
        put("tier", names(&seed.tier, |t| t.as_str()));
        put("custom", self.custom.as_ref().map(Predicate::to_json));
        Value::Object(object)
    }
}

fn one_of<T: PartialEq>(allowed: &[T], value: Option<T>) -> bool {
    allowed.is_empty() || value.is_some_and(|v| allowed.contains(&v))
}

fn names<T>(values: &[T], name: impl Fn(&T) -> &'static str) -> Option<Value> {
    match values {
        [] => None,
        [one] => Some(Value::String(name(one).into())),
        many => Some(Value::Array(
            many.iter().map(|v| Value::String(name(v).into())).collect(),
        )),
    }
}

fn min_above_max(
    min_key: &'static str,
    min: impl ToString,
    max_key: &'static str,
    max: impl ToString,
) -> SegmentError {
    err(
        Path::root().key(min_key),
        ErrorKind::MinAboveMax {
            min_key,
            min: min.to_string(),
            max_key,
            max: max.to_string(),
        },
    )
}

fn age_from_json(value: &Value, key: &str) -> Result<u32, SegmentError> {
    let path = &Path::root().key(key);
    let Value::Number(n) = value else {
        return Err(err(
            path.clone(),
            ErrorKind::WrongValueType {
                expected: "a number",
                subject: format!("key \"{key}\""),
                got: json_type(value).to_string(),
            },
        ));
    };
    n.as_u64()
        .and_then(|a| u32::try_from(a).ok())
        .filter(|a| *a <= MAX_AGE)
        .ok_or_else(|| {
            err(
                path.clone(),
                ErrorKind::InvalidAge {
                    max: MAX_AGE,
                    got: n.to_string(),
                },
            )
        })
}

/// One enum value or a non-empty list of them.
fn one_or_many<T>(value: Option<&Value>, key: &str) -> Result<Vec<T>, SegmentError>
where
    T: std::str::FromStr<Err = UnknownVariant>,
{
    let path = &Path::root().key(key);
    let subject = format!("key \"{key}\"");
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            super::parse::check_list_len(items, path)?;
            items
                .iter()
                .enumerate()
                .map(|(i, item)| enum_from_json(item, &path.index(i), &subject))
                .collect()
        }
        Some(single) => Ok(vec![enum_from_json(single, path, &subject)?]),
    }
}

impl Serialize for SegmentDefinition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SegmentDefinition {
    /// Reads any self-describing format into JSON, then parses with full validation; the
    /// error message carries the path.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        SegmentDefinition::from_json(&value).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod fuzz_regressions {
    use super::SegmentDefinition;

    /// Found by scripts/fuzz (segment_definition): an integer beyond 64 bits in a custom
    /// predicate must render back to a definition equal to itself.
    #[test]
    fn a_huge_integer_in_a_custom_predicate_round_trips() {
        let text = r#"{"name": "Lapsed big spenders", "min_spending": 1000, "custom": {"and": [{"field": "attributes.last_purchase", "op": "gt", "value": 222222222222222222222222}]}}"#;
        if let Ok(definition) = SegmentDefinition::from_json_str(text) {
            let rendered = serde_json::to_string(&definition).expect("renders");
            let again = SegmentDefinition::from_json_str(&rendered);
            assert_eq!(
                again.as_ref().ok(),
                Some(&definition),
                "{rendered} -> {again:?}"
            );
        }
    }
}
