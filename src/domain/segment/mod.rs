//! Segment definitions: parse and validate them from JSON, and evaluate them against a
//! contact. This is the reference evaluator: the segment index must agree with it exactly.
//!
//! Pure domain code: no I/O, no clock (the reference time is an [`EvalContext`]), no panics.
//!
//! - [`definition`]: [`SegmentDefinition`] = name + seed filters + optional custom predicate,
//!   all ANDed.
//! - [`predicate`]: the predicate tree ([`Predicate`], [`Comparison`], [`Op`]) and its limits.
//! - [`field`]: the field catalog and how each field is read from a contact.
//! - [`value`]: typed literals and exact comparison primitives.
//! - [`parse`] / [`render`]: JSON ↔ tree, with the path to the bad node in every error.
//! - [`eval`]: evaluation and the missing-value rule ("missing never matches, except
//!   `exists`"; two-valued `not`).
//! - [`error`]: [`SegmentError`] (`"<path>: <message>"`).
//!
//! The JSON format for users is documented in `docs/segments.md`.

pub mod definition;
pub mod error;
pub mod eval;
pub mod field;
pub mod parse;
pub mod predicate;
pub mod render;

pub mod value;

pub use crate::domain::state::MalaysianState;
pub use definition::{SeedFilters, SegmentDefinition, MAX_AGE, MAX_NAME_CHARS};
pub use error::{ErrorKind, Path, PathSegment, SegmentError};
pub use eval::{eval_predicate, holds, EvalContext};
pub use field::{
    window_start, Actual, ContactFacts, Field, FieldInfo, FieldReader, CATALOG, MAX_WINDOW_DAYS,
};
pub use predicate::{Comparison, Node, Op, Operand, Predicate, MAX_DEPTH, MAX_LIST_LEN, MAX_NODES};
pub use value::{fold_case, Literal, Ratio, Text, ValueType};
