//! JSON → predicate tree, with the path to the bad node in every error.
//!
//! Limits are checked while descending, before a child is read, so hostile input costs at
//! most [`MAX_DEPTH`] levels and [`MAX_NODES`] nodes of work before it is rejected.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::error::{ErrorKind, Path, SegmentError};
use super::field::{Field, MAX_WINDOW_DAYS};
use super::predicate::{
    check_op, describe_subject, expected_literal, Comparison, Op, Operand, Predicate, MAX_DEPTH,
    MAX_LIST_LEN, MAX_NODES,
};
use super::value::{Literal, Ratio, Text, ValueType};
use crate::domain::contact::WhatsappStatus;
use crate::domain::money::Money;
use crate::domain::person::UnknownVariant;
use crate::domain::phone::PhoneNumber;

const LOGICAL: [&str; 3] = ["and", "or", "not"];
const COMPARISON_KEYS: [&str; 4] = ["field", "op", "value", "days"];

/// Parses a predicate whose JSON sits at `path` (paths in errors start there).
pub fn parse_predicate(value: &Value, path: &Path) -> Result<Predicate, SegmentError> {
    let mut nodes = 0;
    parse_node(value, path, 1, &mut nodes)
}

/// Parses JSON text into a value, reporting syntax errors at the root.
pub fn parse_json_text(text: &str) -> Result<Value, SegmentError> {
    serde_json::from_str(text)
        .map_err(|e| SegmentError::new(Path::root(), ErrorKind::Json(e.to_string())))
}

fn err(path: &Path, kind: ErrorKind) -> SegmentError {
    SegmentError::new(path.clone(), kind)
}

/// The JSON type of a value in error messages: `string`, `number`, `array`, ...
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn parse_node(
    value: &Value,
    path: &Path,
    depth: u32,
    nodes: &mut u32,
) -> Result<Predicate, SegmentError> {
    if depth > MAX_DEPTH {
        return Err(err(
            path,
            ErrorKind::TooDeep {
                max: MAX_DEPTH as usize,
            },
        ));
    }
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(err(
            path,
            ErrorKind::TooManyNodes {
                max: MAX_NODES as usize,
            },
        ));
    }
    let Value::Object(object) = value else {
        return Err(err(
            path,
            ErrorKind::WrongJsonType {
                expected: "a predicate object",
                got: json_type(value),
            },
        ));
    };
    if object.is_empty() {
        return Err(err(path, ErrorKind::EmptyPredicate));
    }
    let logical = LOGICAL.into_iter().find(|k| object.contains_key(*k));
    let Some(logical) = logical else {
        let comparison = parse_comparison(object, path)?;
        return Ok(Predicate::compare(comparison));
    };
    if let Some(extra) = object.keys().find(|k| k.as_str() != logical) {
        return Err(err(
            &path.key(extra),
            ErrorKind::ExtraKeyInLogical { logical },
        ));
    }
    let child_path = path.key(logical);
    let child = &object[logical];
    let built = if logical == "not" {
        let inner = parse_node(child, &child_path, depth + 1, nodes)?;
        Predicate::not(inner)
    } else {
        let Value::Array(items) = child else {
            return Err(err(
                &child_path,
                ErrorKind::WrongJsonType {
                    expected: "a list of predicates",
                    got: json_type(child),
                },
            ));
        };
        if items.is_empty() {
            return Err(err(&child_path, ErrorKind::EmptyList("predicate")));
        }
        let mut children = Vec::with_capacity(items.len().min(MAX_NODES as usize));
        for (i, item) in items.iter().enumerate() {
            children.push(parse_node(item, &child_path.index(i), depth + 1, nodes)?);
        }
        if logical == "and" {
            Predicate::and(children)
        } else {
            Predicate::or(children)
        }
    };
    // The checks above are the same as the constructors', so this cannot fail; map anyway.
    built.map_err(|kind| err(path, kind))
}

fn parse_comparison(object: &Map<String, Value>, path: &Path) -> Result<Comparison, SegmentError> {
    if let Some(unknown) = object
        .keys()
        .find(|k| !COMPARISON_KEYS.contains(&k.as_str()))
    {
        return Err(err(
            &path.key(unknown),
            ErrorKind::UnknownKey {
                expected: "field, op, value, days (or a single and / or / not)",
            },
        ));
    }
    let field_path = path.key("field");
    let name = match object.get("field") {
        None => return Err(err(path, ErrorKind::MissingKey("field"))),
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(err(
                &field_path,
                ErrorKind::WrongJsonType {
                    expected: "a field name string",
                    got: json_type(other),
                },
            ))
        }
    };
    let days_path = path.key("days");
    let days = object
        .get("days")
        .map(|days| parse_days(days, &days_path))
        .transpose()?;
    let field = Field::lookup(name, days).map_err(|kind| {
        let at = match kind {
            ErrorKind::DaysRequired(_) => path,
            ErrorKind::DaysNotAllowed(_) | ErrorKind::InvalidDays { .. } => &days_path,
            _ => &field_path,
        };
        err(at, kind)
    })?;

    let op_path = path.key("op");
    let op = match object.get("op") {
        None => return Err(err(path, ErrorKind::MissingKey("op"))),
        Some(Value::String(op)) => {
            Op::from_name(op).ok_or_else(|| err(&op_path, ErrorKind::UnknownOp(op.clone())))?
        }
        Some(other) => {
            return Err(err(
                &op_path,
                ErrorKind::WrongJsonType {
                    expected: "an op name string",
                    got: json_type(other),
                },
            ))
        }
    };
    // Operator/field compatibility is reported before the value is read.
    check_op(&field, op).map_err(|kind| err(&op_path, kind))?;

    let value_path = path.key("value");
    let operand = match (op, object.get("value")) {
        (Op::Exists, None) => Operand::None,
        (Op::Exists, Some(_)) => return Err(err(&value_path, ErrorKind::ValueNotAllowed)),
        (_, None) => return Err(err(path, ErrorKind::MissingKey("value"))),
        (Op::Between, Some(value)) => parse_range(value, &value_path, &field, op)?,
        (Op::In, Some(value)) => parse_list(value, &value_path, &field, op)?,
        (_, Some(value)) => Operand::One(parse_literal(value, &value_path, &field, op)?),
    };
    Comparison::new(field, op, operand).map_err(|kind| err(&value_path, kind))
}

fn parse_days(value: &Value, path: &Path) -> Result<u32, SegmentError> {
    let invalid = || {
        err(
            path,
            ErrorKind::InvalidDays {
                max: MAX_WINDOW_DAYS,
                got: value.to_string(),
            },
        )
    };
    let days = value.as_u64().ok_or_else(invalid)?;
    match u32::try_from(days) {
        Ok(days) if (1..=MAX_WINDOW_DAYS).contains(&days) => Ok(days),
        _ => Err(invalid()),
    }
}

fn parse_range(value: &Value, path: &Path, field: &Field, op: Op) -> Result<Operand, SegmentError> {
    let bounds = match value {
        Value::Array(items) if items.len() == 2 => items,
        Value::Array(items) => {
            return Err(err(
                path,
                ErrorKind::BetweenArity {
                    got: format!("a list of {}", items.len()),
                },
            ))
        }
        other => {
            return Err(err(
                path,
                ErrorKind::BetweenArity {
                    got: json_type(other).to_string(),
                },
            ))
        }
    };
    let low = parse_literal(&bounds[0], &path.index(0), field, op)?;
    let high = parse_literal(&bounds[1], &path.index(1), field, op)?;
    Ok(Operand::Range(low, high))
}

fn parse_list(value: &Value, path: &Path, field: &Field, op: Op) -> Result<Operand, SegmentError> {
    let Value::Array(items) = value else {
        return Err(err(
            path,
            ErrorKind::WrongValueType {
                expected: "a non-empty list",
                subject: describe_subject(field, op),
                got: json_type(value).to_string(),
            },
        ));
    };
    check_list_len(items, path)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_literal(item, &path.index(i), field, op))
        .collect::<Result<Vec<_>, _>>()
        .map(Operand::List)
}

/// Reads one literal of `field`'s type for `op`.
pub fn parse_literal(
    value: &Value,
    path: &Path,
    field: &Field,
    op: Op,
) -> Result<Literal, SegmentError> {
    let subject = describe_subject(field, op);
    let wrong = || {
        err(
            path,
            ErrorKind::WrongValueType {
                expected: expected_literal(field, op),
                subject: subject.clone(),
                got: json_type(value).to_string(),
            },
        )
    };
    let literal = match field.value_type() {
        ValueType::Integer => Literal::Integer(integer_from_json(value, path, &subject)?),
        ValueType::Money => Literal::Money(money_from_json(value, path, &subject)?),
        ValueType::Ratio => {
            let Value::Number(n) = value else {
                return Err(wrong());
            };
            let ratio = Ratio::parse_decimal(&n.to_string()).ok_or_else(|| {
                invalid(
                    path,
                    &subject,
                    format!("{n} is not a decimal from 0 to 1 with at most 6 decimal places"),
                )
            })?;
            Literal::Ratio(ratio)
        }
        ValueType::Date => {
            let text = value.as_str().ok_or_else(wrong)?;
            Literal::Date(parse_date(text).ok_or_else(|| {
                invalid(path, &subject, format!("{text:?} is not a date YYYY-MM-DD"))
            })?)
        }
        ValueType::DateTime => {
            let text = value.as_str().ok_or_else(wrong)?;
            let instant = DateTime::parse_from_rfc3339(text).map_err(|_| {
                invalid(
                    path,
                    &subject,
                    format!("{text:?} is not an RFC 3339 date-time like 2025-01-31T00:00:00+08:00"),
                )
            })?;
            Literal::DateTime(instant.with_timezone(&Utc))
        }
        ValueType::Text => Literal::Text(text_from_json(value, path, field, op, wrong)?),
        ValueType::Phone if op == Op::Contains => {
            let text = value.as_str().ok_or_else(wrong)?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    path,
                    &subject,
                    format!("{text:?} is not a non-empty string of digits"),
                ));
            }
            Literal::Text(Text::new(text))
        }
        ValueType::Phone => {
            let text = value.as_str().ok_or_else(wrong)?;
            Literal::Phone(
                PhoneNumber::parse(text)
                    .map_err(|e| invalid(path, &subject, format!("{text:?}: {e}")))?,
            )
        }
        ValueType::Gender => Literal::Gender(enum_from_json(value, path, &subject)?),
        ValueType::MaritalStatus => Literal::MaritalStatus(enum_from_json(value, path, &subject)?),
        ValueType::State => Literal::State(enum_from_json(value, path, &subject)?),
        ValueType::Tier => Literal::Tier(enum_from_json(value, path, &subject)?),
        ValueType::WhatsappStatus => {
            let text = value.as_str().ok_or_else(wrong)?;
            Literal::WhatsappStatus(
                text.parse::<WhatsappStatus>()
                    .map_err(|e| invalid(path, &subject, e.to_string()))?,
            )
        }
        ValueType::Bool => Literal::Bool(value.as_bool().ok_or_else(wrong)?),
        ValueType::Dynamic => match value {
            Value::Number(n) => Literal::Number(n.clone()),
            _ if op.is_ordering() => return Err(wrong()),
            Value::Bool(b) => Literal::Bool(*b),
            Value::String(_) => Literal::Text(text_from_json(value, path, field, op, wrong)?),
            _ => return Err(wrong()),
        },
    };
    Ok(literal)
}

fn text_from_json(
    value: &Value,
    path: &Path,
    field: &Field,
    op: Op,
    wrong: impl Fn() -> SegmentError,
) -> Result<Text, SegmentError> {
    let text = value.as_str().ok_or_else(wrong)?;
    if op == Op::Contains && text.is_empty() {
        return Err(invalid(
            path,
            &describe_subject(field, op),
            "contains needs a non-empty string".to_string(),
        ));
    }
    Ok(Text::new(text))
}

fn invalid(path: &Path, subject: &str, reason: String) -> SegmentError {
    err(
        path,
        ErrorKind::InvalidValue {
            subject: subject.to_string(),
            reason,
        },
    )
}

/// A strict `YYYY-MM-DD` date.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A whole number from a JSON number (`18`, not `18.5` or `"18"`).
pub fn integer_from_json(value: &Value, path: &Path, subject: &str) -> Result<i64, SegmentError> {
    let Value::Number(n) = value else {
        return Err(err(
            path,
            ErrorKind::WrongValueType {
                expected: "a number",
                subject: subject.to_string(),
                got: json_type(value).to_string(),
            },
        ));
    };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    if n.is_u64() {
        return Err(invalid(
            path,
            subject,
            format!("{n} is out of range for a whole number"),
        ));
    }
    Err(err(
        path,
        ErrorKind::WrongValueType {
            expected: "a whole number",
            subject: subject.to_string(),
            got: n.to_string(),
        },
    ))
}

/// Ringgit from a JSON string (`"45.60"`, `"RM 1,200"`) or number (`45.6`, `500`), exact to
/// the sen: the number's decimal text is parsed, never its float value.
pub fn money_from_json(value: &Value, path: &Path, subject: &str) -> Result<Money, SegmentError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(err(
                path,
                ErrorKind::WrongValueType {
                    expected: "an amount of ringgit (a number or a string like \"45.60\")",
                    subject: subject.to_string(),
                    got: json_type(other).to_string(),
                },
            ))
        }
    };
    Money::parse_ringgit(&text).map_err(|e| invalid(path, subject, e.to_string()))
}

/// An enum value from its name (case-insensitive; Malay names accepted where the domain
/// type accepts them).
pub fn enum_from_json<T>(value: &Value, path: &Path, subject: &str) -> Result<T, SegmentError>
where
    T: FromStr<Err = UnknownVariant>,
{
    let Value::String(text) = value else {
        return Err(err(
            path,
            ErrorKind::WrongValueType {
                expected: "a string",
                subject: subject.to_string(),
                got: json_type(value).to_string(),
            },
        ));
    };
    text.parse::<T>()
        .map_err(|e| invalid(path, subject, e.to_string()))
}

/// A `value` list must be non-empty and at most [`MAX_LIST_LEN`] long.
pub(super) fn check_list_len(items: &[Value], path: &Path) -> Result<(), SegmentError> {
    if items.is_empty() {
        return Err(err(path, ErrorKind::EmptyList("value")));
    }
    if items.len() > MAX_LIST_LEN {
        return Err(err(
            path,
            ErrorKind::ListTooLong {
                len: items.len(),
                max: MAX_LIST_LEN,
            },
        ));
    }
    Ok(())
}
