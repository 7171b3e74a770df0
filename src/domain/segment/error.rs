//! Parse and validation errors, each pointing at the JSON node that caused it.
//!
//! A path is written the way a person reads the JSON: object keys joined by `.`, array
//! indices in brackets, e.g. `custom.and[2].value`. Keys that are not plain identifiers
//! (letters, digits, `_`) are quoted in brackets: `custom["my key"]`. The document root is
//! written `(root)`.

use std::fmt;

use thiserror::Error;

/// One step from a JSON value into a child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// Where in a JSON document a node sits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(Vec<PathSegment>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }

    pub fn key(&self, key: &str) -> Path {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Key(key.to_string()));
        Path(segments)
    }

    pub fn index(&self, index: usize) -> Path {
        let mut segments = self.0.clone();
        segments.push(PathSegment::Index(index));
        Path(segments)
    }

    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

fn is_identifier(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Key(key) if is_identifier(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                PathSegment::Key(key) => write!(f, "[{key:?}]")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// What is wrong with a node. Messages are sentence fragments meant to follow
/// `"<path>: "`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ErrorKind {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("expected {expected}, got {got}")]
    WrongJsonType {
        expected: &'static str,
        got: &'static str,
    },
    #[error("unknown key; expected one of: {expected}")]
    UnknownKey { expected: &'static str },
    #[error("unexpected key next to \"{logical}\"; a logical node has exactly one key")]
    ExtraKeyInLogical { logical: &'static str },
    #[error("missing required key \"{0}\"")]
    MissingKey(&'static str),
    #[error(
        "empty object; expected \"and\", \"or\", \"not\" or a comparison with \"field\" and \"op\""
    )]
    EmptyPredicate,
    #[error("expected at least one {0}, got an empty list")]
    EmptyList(&'static str),
    #[error("list has {len} values; at most {max} are allowed")]
    ListTooLong { len: usize, max: usize },
    #[error("predicate is nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("predicate has more than {max} nodes")]
    TooManyNodes { max: usize },
    #[error("unknown field \"{0}\"; see docs/segments.md for the field catalog")]
    UnknownField(String),
    #[error("field \"{0}\" is personal identity data and cannot be filtered on")]
    ForbiddenField(String),
    #[error("attribute fields need a key after \"attributes.\"")]
    EmptyAttributeKey,
    #[error("unknown op \"{0}\"; expected one of: eq, ne, lt, lte, gt, gte, in, between, contains, exists")]
    UnknownOp(String),
    #[error("op \"{op}\" is not allowed for field \"{field}\" ({value_type}); allowed: {allowed}")]
    OpNotAllowed {
        field: String,
        op: &'static str,
        value_type: &'static str,
        allowed: String,
    },
    #[error("op \"exists\" takes no \"value\"")]
    ValueNotAllowed,
    #[error("field \"{0}\" needs a \"days\" window")]
    DaysRequired(String),
    #[error("field \"{0}\" takes no \"days\" window")]
    DaysNotAllowed(String),
    #[error("expected a whole number of days from 1 to {max}, got {got}")]
    InvalidDays { max: u32, got: String },
    /// `subject` names what was being read: `field "age" with op "gte"` or `key "min_age"`.
    #[error("expected {expected} for {subject}, got {got}")]
    WrongValueType {
        expected: &'static str,
        subject: String,
        got: String,
    },
    #[error("invalid value for {subject}: {reason}")]
    InvalidValue { subject: String, reason: String },
    #[error("expected a list of two bounds [low, high] for op \"between\", got {got}")]
    BetweenArity { got: String },
    #[error("between bounds are reversed: low {low} is greater than high {high}")]
    BetweenReversed { low: String, high: String },
    #[error("{min_key} {min} is greater than {max_key} {max}")]
    MinAboveMax {
        min_key: &'static str,
        min: String,
        max_key: &'static str,
        max: String,
    },
    #[error("age must be a whole number from 0 to {max}, got {got}")]
    InvalidAge { max: u32, got: String },
    #[error("segment name must not be blank")]
    BlankName,
    #[error("segment name is {len} characters long; at most {max} are allowed")]
    NameTooLong { len: usize, max: usize },
}

/// A parse or validation error: where it is and what is wrong.
///
/// Displays as `"<path>: <message>"`, e.g.
/// `custom.and[2].value: expected a number for field "age" with op "gte", got string`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{path}: {kind}")]
pub struct SegmentError {
    path: Path,
    kind: ErrorKind,
}

impl SegmentError {
    pub fn new(path: Path, kind: ErrorKind) -> Self {
        SegmentError { path, kind }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_json_access() {
        assert_eq!(Path::root().to_string(), "(root)");
        let path = Path::root().key("custom").key("and").index(2).key("value");
        assert_eq!(path.to_string(), "custom.and[2].value");
        assert_eq!(Path::root().index(0).key("x").to_string(), "[0].x");
        assert_eq!(
            Path::root().key("custom").key("my key").to_string(),
            "custom[\"my key\"]"
        );
        assert_eq!(Path::root().key("").to_string(), "[\"\"]");
    }

    #[test]
    fn error_displays_path_then_message() {
        let err = SegmentError::new(
            Path::root().key("custom").key("op"),
            ErrorKind::UnknownOp("like".into()),
        );
        assert_eq!(
            err.to_string(),
            "custom.op: unknown op \"like\"; expected one of: eq, ne, lt, lte, gt, gte, in, between, contains, exists"
        );
    }
}
