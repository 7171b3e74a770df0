//! Predicate tree → canonical JSON, and the serde impls built on it and on the parser.
//!
//! The canonical form is what [`Predicate::from_json`] reads back to an equal tree: keys
//! `field`, `days` (windowed fields only), `op`, `value`; literals in their canonical
//! spelling (money as `"45.60"`, enum names in lowercase or tier case, phone numbers as
//! E.164 digits, date-times in UTC).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::error::{Path, SegmentError};
use super::parse::{parse_json_text, parse_predicate};
use super::predicate::{Comparison, Node, Operand, Predicate};

impl Predicate {
    /// Parses a predicate; error paths start at the predicate itself (`and[2].value`).
    pub fn from_json(value: &Value) -> Result<Predicate, SegmentError> {
        parse_predicate(value, &Path::root())
    }

    /// Parses predicate JSON text.
    pub fn from_json_str(text: &str) -> Result<Predicate, SegmentError> {
        Predicate::from_json(&parse_json_text(text)?)
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Value {
        match self.node() {
            Node::And(children) => single("and", list(children)),
            Node::Or(children) => single("or", list(children)),
            Node::Not(child) => single("not", child.to_json()),
            Node::Compare(comparison) => comparison.to_json(),
        }
    }
}

fn list(children: &[Predicate]) -> Value {
    Value::Array(children.iter().map(Predicate::to_json).collect())
}

fn single(key: &str, value: Value) -> Value {
    let mut object = Map::new();
    object.insert(key.to_string(), value);
    Value::Object(object)
}

impl Comparison {
    /// The canonical JSON form of one comparison.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("field".into(), Value::String(self.field().name()));
        if let Some(days) = self.field().days() {
            object.insert("days".into(), Value::from(days));
        }
        object.insert("op".into(), Value::String(self.op().as_str().into()));
        match self.operand() {
            Operand::None => {}
            Operand::One(literal) => {
                object.insert("value".into(), literal.to_json());
            }
            Operand::Range(low, high) => {
                object.insert(
                    "value".into(),
                    Value::Array(vec![low.to_json(), high.to_json()]),
                );
            }
            Operand::List(list) => {
                object.insert(
                    "value".into(),
                    Value::Array(list.iter().map(|l| l.to_json()).collect()),
                );
            }
        }
        Value::Object(object)
    }
}

impl Serialize for Predicate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Predicate {
    /// Reads any self-describing format into JSON, then parses with full validation; the
    /// error message carries the path.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Predicate::from_json(&value).map_err(D::Error::custom)
    }
}
