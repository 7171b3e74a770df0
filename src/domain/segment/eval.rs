//! Evaluation of predicates against a contact: pure, total, two-valued.
//!
//! # Missing values
//!
//! A field is *missing* when the contact has no value for it (no date of birth for `age`, no
//! purchases for `average_spend`, an absent or JSON-`null` attribute, ...). The rule is:
//!
//! > **A missing value never matches, except with `exists`.**
//!
//! Every comparison (`eq`, `ne`, `lt`, `lte`, `gt`, `gte`, `in`, `between`, `contains`) on a
//! missing value is false, and `exists` is true exactly when the value is present. Logic is
//! two-valued: `not p` matches exactly the contacts `p` does not match, `and` is all, `or` is
//! any. So `ne` means "has a value, and it differs", while `not eq` also matches contacts
//! without a value:
//!
//! | contact without a birth date | result |
//! |---|---|
//! | `age gte 18` | false |
//! | `age ne 30` | false |
//! | `not (age eq 30)` | true |
//! | `age exists` | false |
//!
//! An attribute whose JSON type does not fit the literal (text against a number, a list
//! against `eq`) is treated like a missing one: every comparison is false, `exists` true.
//! A contact `state` text that names no Malaysian state is present and equal to no state:
//! `state ne "Selangor"` matches it.
//!
//! Text comparisons (`eq`, `ne`, `in`, `contains` on strings) ignore case (Unicode lowercase).
//! Money, rates and numbers compare exactly; tiers by tier order; `between` is inclusive.
//!
//! Cost: O(nodes) per contact (each `in` scans its list), plus one pass over the purchase
//! ledger for the lifetime spending fields and one per windowed field
//! (`purchase_count_in_last_days`, `spend_in_last_days`).

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};

use super::field::{Actual, FieldReader};
use super::predicate::{Comparison, Node, Op, Operand, Predicate};
use super::value::{cmp_numbers, eq_folded, fold_case, Literal, Ratio};
use crate::domain::contact::Contact;

/// The reference time of an evaluation. The domain never reads the clock: the caller
/// passes the same context for every contact of one segment count or campaign resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalContext {
    /// The instant for `days_since_last_interaction`.
    pub now: DateTime<Utc>,
    /// The retailer's local calendar date (Malaysia, UTC+8) for ages and purchase windows.
    pub today: NaiveDate,
}

impl EvalContext {
    pub fn new(now: DateTime<Utc>, today: NaiveDate) -> Self {
        EvalContext { now, today }
    }
}

impl Predicate {
    /// Whether `contact` matches this predicate on `ctx`.
    pub fn matches(&self, contact: &Contact, ctx: &EvalContext) -> bool {
        eval_predicate(self, &FieldReader::new(contact, ctx))
    }
}

impl Comparison {
    /// Whether `contact` matches this comparison on `ctx`.
    pub fn matches(&self, contact: &Contact, ctx: &EvalContext) -> bool {
        eval_comparison(self, &FieldReader::new(contact, ctx))
    }
}

/// Evaluates with a shared reader (one lazily computed set of spending stats).
pub fn eval_predicate(predicate: &Predicate, reader: &FieldReader<'_>) -> bool {
    // Recursion is bounded: a Predicate is at most MAX_DEPTH levels deep by construction.
    match predicate.node() {
        Node::And(children) => children.iter().all(|c| eval_predicate(c, reader)),
        Node::Or(children) => children.iter().any(|c| eval_predicate(c, reader)),
        Node::Not(child) => !eval_predicate(child, reader),
        Node::Compare(comparison) => eval_comparison(comparison, reader),
    }
}

pub fn eval_comparison(comparison: &Comparison, reader: &FieldReader<'_>) -> bool {
    holds(comparison, reader.read(comparison.field()))
}

/// Whether a comparison holds for a field's value (`None`: missing). The segment index asks
/// this once per distinct indexed value instead of once per contact.
pub fn holds(comparison: &Comparison, actual: Option<Actual<'_>>) -> bool {
    let op = comparison.op();
    let Some(actual) = actual else {
        // Missing never matches; `exists` asks for presence, so it is false too.
        return false;
    };
    match (op, comparison.operand()) {
        (Op::Exists, _) => true,
        (Op::Eq, Operand::One(lit)) => equals(&actual, lit) == Some(true),
        (Op::Ne, Operand::One(lit)) => equals(&actual, lit) == Some(false),
        (Op::In, Operand::List(list)) => list.iter().any(|lit| equals(&actual, lit) == Some(true)),
        (Op::Lt, Operand::One(lit)) => order(&actual, lit) == Some(Ordering::Less),
        (Op::Lte, Operand::One(lit)) => {
            matches!(order(&actual, lit), Some(Ordering::Less | Ordering::Equal))
        }
        (Op::Gt, Operand::One(lit)) => order(&actual, lit) == Some(Ordering::Greater),
        (Op::Gte, Operand::One(lit)) => {
            matches!(
                order(&actual, lit),
                Some(Ordering::Greater | Ordering::Equal)
            )
        }
        (Op::Between, Operand::Range(low, high)) => {
            matches!(
                order(&actual, low),
                Some(Ordering::Greater | Ordering::Equal)
            ) && matches!(order(&actual, high), Some(Ordering::Less | Ordering::Equal))
        }
        (Op::Contains, Operand::One(lit)) => contains(&actual, lit),
        // Comparison::new rules out every other shape.
        _ => false,
    }
}

/// `Some(equal)` when the value and literal are comparable for equality, else `None`.
fn equals(actual: &Actual<'_>, literal: &Literal) -> Option<bool> {
    let equal = match (actual, literal) {
        (Actual::Integer(a), Literal::Integer(b)) => *a == i128::from(*b),
        (Actual::Money(a), Literal::Money(b)) => a == b,
        (
            Actual::Ratio {
                numerator,
                denominator,
            },
            Literal::Ratio(r),
        ) => Ratio::cmp_fraction(*numerator, *denominator, *r) == Ordering::Equal,
        (Actual::Date(a), Literal::Date(b)) => a == b,
        (Actual::DateTime(a), Literal::DateTime(b)) => a == b,
        (Actual::Text(a), Literal::Text(b)) => eq_folded(a, b.folded()),
        (Actual::Phone(a), Literal::Phone(b)) => *a == b,
        (Actual::Gender(a), Literal::Gender(b)) => a == b,
        (Actual::MaritalStatus(a), Literal::MaritalStatus(b)) => a == b,
        (Actual::State(a), Literal::State(b)) => *a == Some(*b),
        (Actual::Tier(a), Literal::Tier(b)) => a == b,
        (Actual::WhatsappStatus(a), Literal::WhatsappStatus(b)) => a == b,
        (Actual::Bool(a), Literal::Bool(b)) => a == b,
        (Actual::Json(value), literal) => return json_equals(value, literal),
        _ => return None,
    };
    Some(equal)
}

fn json_equals(value: &serde_json::Value, literal: &Literal) -> Option<bool> {
    use serde_json::Value;
    match (value, literal) {
        (Value::String(a), Literal::Text(b)) => Some(eq_folded(a, b.folded())),
        (Value::Number(a), Literal::Number(b)) => Some(cmp_numbers(a, b) == Ordering::Equal),
        (Value::Bool(a), Literal::Bool(b)) => Some(a == b),
        _ => None,
    }
}

/// `Some(order)` when the value and literal are ordered, else `None`.
fn order(actual: &Actual<'_>, literal: &Literal) -> Option<Ordering> {
    match (actual, literal) {
        (Actual::Integer(a), Literal::Integer(b)) => Some(a.cmp(&i128::from(*b))),
        (Actual::Money(a), Literal::Money(b)) => Some(a.cmp(b)),
        (
            Actual::Ratio {
                numerator,
                denominator,
            },
            Literal::Ratio(r),
        ) => Some(Ratio::cmp_fraction(*numerator, *denominator, *r)),
        (Actual::Date(a), Literal::Date(b)) => Some(a.cmp(b)),
        (Actual::DateTime(a), Literal::DateTime(b)) => Some(a.cmp(b)),
        (Actual::Tier(a), Literal::Tier(b)) => Some(a.cmp(b)),
        (Actual::Json(serde_json::Value::Number(a)), Literal::Number(b)) => Some(cmp_numbers(a, b)),
        _ => None,
    }
}

fn contains(actual: &Actual<'_>, literal: &Literal) -> bool {
    match (actual, literal) {
        (Actual::Text(text), Literal::Text(needle)) => fold_case(text).contains(needle.folded()),
        (Actual::Phone(phone), Literal::Text(digits)) => phone.as_str().contains(digits.as_str()),
        (Actual::Json(serde_json::Value::String(text)), Literal::Text(needle)) => {
            fold_case(text).contains(needle.folded())
        }
        (Actual::Json(serde_json::Value::Array(items)), literal) => items
            .iter()
            .any(|item| json_equals(item, literal) == Some(true)),
        _ => false,
    }
}
