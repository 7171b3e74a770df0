//! The predicate tree (AST): logical nodes over typed comparisons.
//!
//! Both types keep their invariants by construction, so every value of them is valid and
//! evaluating it is total:
//! - a [`Comparison`] has an operator its field allows, an operand of the operator's shape
//!   (none for `exists`, two ordered bounds for `between`, a non-empty list of at most
//!   [`MAX_LIST_LEN`] for `in`, one value otherwise) and literals of the field's type;
//! - a [`Predicate`] has non-empty `and`/`or` lists, is at most [`MAX_DEPTH`] levels deep
//!   (a lone comparison is depth 1) and has at most [`MAX_NODES`] nodes (every `and`, `or`,
//!   `not` and comparison counts one).
//!
//! Build them with [`Comparison::new`] and [`Predicate::and`] / [`Predicate::or`] /
//! [`Predicate::not`] / [`Predicate::compare`], or parse them from JSON
//! ([`Predicate::from_json`]), which reports errors with the path to the bad node.

use std::cmp::Ordering;
use std::fmt;

use super::error::ErrorKind;
use super::field::Field;
use super::value::{Literal, ValueType};

/// Deepest allowed predicate tree; a lone comparison has depth 1.
pub const MAX_DEPTH: u32 = 32;
/// Most nodes (`and`, `or`, `not`, comparisons) in one predicate tree.
pub const MAX_NODES: u32 = 1_000;
/// Most values in one `in` list.
pub const MAX_LIST_LEN: usize = 1_000;

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    /// Equal to one of a non-empty list.
    In,
    /// Inclusive on both ends.
    Between,
    /// Substring (ignoring case) of a text, or element of a list attribute.
    Contains,
    /// The contact has a value for the field.
    Exists,
}

impl Op {
    pub const ALL: [Op; 10] = [
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Lte,
        Op::Gt,
        Op::Gte,
        Op::In,
        Op::Between,
        Op::Contains,
        Op::Exists,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::In => "in",
            Op::Between => "between",
            Op::Contains => "contains",
            Op::Exists => "exists",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }

    /// `lt`, `lte`, `gt`, `gte` and `between`: the operators that need an order.
    pub const fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::Between)
    }

    /// The operators a field of `value_type` accepts.
    pub fn allowed_for(value_type: ValueType) -> &'static [Op] {
        const ORDERED: &[Op] = &[
            Op::Eq,
            Op::Ne,
            Op::Lt,
            Op::Lte,
            Op::Gt,
            Op::Gte,
            Op::Between,
            Op::In,
            Op::Exists,
        ];
        const TEXT: &[Op] = &[Op::Eq, Op::Ne, Op::In, Op::Contains, Op::Exists];
        const UNORDERED: &[Op] = &[Op::Eq, Op::Ne, Op::In, Op::Exists];
        const BOOL: &[Op] = &[Op::Eq, Op::Ne, Op::Exists];
        match value_type {
            ValueType::Integer
            | ValueType::Money
            | ValueType::Ratio
            | ValueType::Date
            | ValueType::DateTime
            | ValueType::Tier => ORDERED,
            ValueType::Text | ValueType::Phone => TEXT,
            ValueType::Gender
            | ValueType::MaritalStatus
            | ValueType::State
            | ValueType::WhatsappStatus => UNORDERED,
            ValueType::Bool => BOOL,
            ValueType::Dynamic => &Op::ALL,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operator compares against.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// `exists`.
    None,
    /// `eq`, `ne`, `lt`, `lte`, `gt`, `gte`, `contains`.
    One(Literal),
    /// `between`: low and high, inclusive, low ≤ high.
    Range(Literal, Literal),
    /// `in`: a non-empty list.
    List(Vec<Literal>),
}

/// One test of one field: `field op operand`.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    field: Field,
    op: Op,
    operand: Operand,
}

/// What the operand of `op` on `field` must be, in words, for error messages.
pub(crate) fn expected_literal(field: &Field, op: Op) -> &'static str {
    match (field.value_type(), op) {
        (ValueType::Integer, _) => "a number",
        (ValueType::Money, _) => "an amount of ringgit (a number or a string like \"45.60\")",
        (ValueType::Ratio, _) => "a number from 0 to 1",
        (ValueType::Date, _) => "a date string \"YYYY-MM-DD\"",
        (ValueType::DateTime, _) => "an RFC 3339 date-time string",
        (ValueType::Phone, Op::Contains) => "a string of digits",
        (ValueType::Bool, _) => "a boolean",
        (ValueType::Dynamic, op) if op.is_ordering() => "a number",
        (ValueType::Dynamic, _) => "a string, number or boolean",
        (
            ValueType::Text
            | ValueType::Phone
            | ValueType::Gender
            | ValueType::MaritalStatus
            | ValueType::State
            | ValueType::Tier
            | ValueType::WhatsappStatus,
            _,
        ) => "a string",
    }
}

/// Whether `literal` is a valid operand value of `op` on `field` (type only).
fn literal_allowed(field: &Field, op: Op, literal: &Literal) -> bool {
    match (field.value_type(), op) {
        (ValueType::Phone, Op::Contains) => matches!(literal, Literal::Text(t)
            if !t.as_str().is_empty() && t.as_str().bytes().all(|b| b.is_ascii_digit())),
        (ValueType::Dynamic, op) if op.is_ordering() => matches!(literal, Literal::Number(_)),
        (ValueType::Text | ValueType::Dynamic, Op::Contains) => {
            !matches!(literal, Literal::Text(t) if t.as_str().is_empty())
                && literal.fits(field.value_type())
        }
        (value_type, _) => literal.fits(value_type),
    }
}

/// Whether `field` allows `op`.
pub(crate) fn check_op(field: &Field, op: Op) -> Result<(), ErrorKind> {
    let value_type = field.value_type();
    let allowed = Op::allowed_for(value_type);
    if allowed.contains(&op) {
        return Ok(());
    }
    Err(ErrorKind::OpNotAllowed {
        field: field.to_string(),
        op: op.as_str(),
        value_type: value_type.as_str(),
        allowed: allowed
            .iter()
            .map(|op| op.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

pub(crate) fn describe_subject(field: &Field, op: Op) -> String {
    format!("field \"{field}\" with op \"{op}\"")
}

impl Comparison {
    /// Checks that the field is valid, allows `op`, and that `operand` has the shape `op`
    /// needs and literals of the field's type.
    pub fn new(field: Field, op: Op, operand: Operand) -> Result<Comparison, ErrorKind> {
        field.validate()?;
        check_op(&field, op)?;
        let wrong = |got: &Literal| ErrorKind::WrongValueType {
            expected: expected_literal(&field, op),
            subject: describe_subject(&field, op),
            got: got.kind_name().to_string(),
        };
        let shape = |got: &str| ErrorKind::WrongValueType {
            expected: match op {
                Op::In => "a non-empty list",
                _ => "a single value",
            },
            subject: describe_subject(&field, op),
            got: got.to_string(),
        };
        match (op, &operand) {
            (Op::Exists, Operand::None) => {}
            (Op::Exists, _) => return Err(ErrorKind::ValueNotAllowed),
            (_, Operand::None) => return Err(ErrorKind::MissingKey("value")),
            (Op::Between, Operand::Range(low, high)) => {
                for literal in [low, high] {
                    if !literal_allowed(&field, op, literal) {
                        return Err(wrong(literal));
                    }
                }
                if low.partial_order(high) == Some(Ordering::Greater) {
                    return Err(ErrorKind::BetweenReversed {
                        low: low.to_string(),
                        high: high.to_string(),
                    });
                }
            }
            (Op::Between, Operand::One(_)) => {
                return Err(ErrorKind::BetweenArity {
                    got: "a single value".into(),
                })
            }
            (Op::Between, Operand::List(list)) => {
                return Err(ErrorKind::BetweenArity {
                    got: format!("a list of {}", list.len()),
                })
            }
            (Op::In, Operand::List(list)) => {
                if list.is_empty() {
                    return Err(ErrorKind::EmptyList("value"));
                }
                if list.len() > MAX_LIST_LEN {
                    return Err(ErrorKind::ListTooLong {
                        len: list.len(),
                        max: MAX_LIST_LEN,
                    });
                }
                if let Some(bad) = list.iter().find(|l| !literal_allowed(&field, op, l)) {
                    return Err(wrong(bad));
                }
            }
            (Op::In, Operand::One(_)) => return Err(shape("a single value")),
            (Op::In, Operand::Range(..)) => return Err(shape("a range")),
            (_, Operand::One(literal)) => {
                if !literal_allowed(&field, op, literal) {
                    return Err(wrong(literal));
                }
            }
            (_, Operand::Range(..)) => return Err(shape("a range")),
            (_, Operand::List(_)) => return Err(shape("a list")),
        }
        Ok(Comparison { field, op, operand })
    }

    pub fn field(&self) -> &Field {
        &self.field
    }

    pub fn op(&self) -> Op {
        self.op
    }

    pub fn operand(&self) -> &Operand {
        &self.operand
    }
}

/// A node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// All children match (non-empty).
    And(Vec<Predicate>),
    /// At least one child matches (non-empty).
    Or(Vec<Predicate>),
    /// The child does not match.
    Not(Box<Predicate>),
    Compare(Comparison),
}

/// A validated predicate tree within [`MAX_DEPTH`] and [`MAX_NODES`].
#[derive(Clone, Debug, PartialEq)]
pub struct Predicate {
    node: Node,
    depth: u32,
    size: u32,
}

impl Predicate {
    pub fn compare(comparison: Comparison) -> Predicate {
        Predicate {
            node: Node::Compare(comparison),
            depth: 1,
            size: 1,
        }
    }

    /// All of `children`; errors when empty or when the result exceeds the limits.
    pub fn and(children: Vec<Predicate>) -> Result<Predicate, ErrorKind> {
        Self::logical(children, Node::And)
    }

    /// Any of `children`; errors when empty or when the result exceeds the limits.
    pub fn or(children: Vec<Predicate>) -> Result<Predicate, ErrorKind> {
        Self::logical(children, Node::Or)
    }

    /// The negation of `child`; errors when the result exceeds the limits.
    #[allow(clippy::should_implement_trait)]
    pub fn not(child: Predicate) -> Result<Predicate, ErrorKind> {
        let (depth, size) = (child.depth + 1, child.size + 1);
        Self::checked(Node::Not(Box::new(child)), depth, size)
    }

    fn logical(
        children: Vec<Predicate>,
        make: fn(Vec<Predicate>) -> Node,
    ) -> Result<Predicate, ErrorKind> {
        if children.is_empty() {
            return Err(ErrorKind::EmptyList("predicate"));
        }
        let depth = 1 + children.iter().map(|c| c.depth).max().unwrap_or(0);
        // Each child is at most MAX_NODES, so the sum cannot overflow before the check for
        // any realistic length; saturate anyway.
        let size = children
            .iter()
            .fold(1u32, |acc, c| acc.saturating_add(c.size));
        Self::checked(make(children), depth, size)
    }

    fn checked(node: Node, depth: u32, size: u32) -> Result<Predicate, ErrorKind> {
        if depth > MAX_DEPTH {
            return Err(ErrorKind::TooDeep {
                max: MAX_DEPTH as usize,
            });
        }
        if size > MAX_NODES {
            return Err(ErrorKind::TooManyNodes {
                max: MAX_NODES as usize,
            });
        }
        Ok(Predicate { node, depth, size })
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Levels in the tree; a lone comparison is 1.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Nodes in the tree.
    pub fn size(&self) -> u32 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Money;

    fn spent_gte(ringgit: i64) -> Predicate {
        Predicate::compare(
            Comparison::new(
                Field::TotalSpent,
                Op::Gte,
                Operand::One(Literal::Money(Money::from_ringgit(ringgit))),
            )
            .unwrap(),
        )
    }

    #[test]
    fn op_names_round_trip() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.as_str()), Some(op));
        }
        assert_eq!(Op::from_name("EQ"), None);
        assert_eq!(Op::from_name("like"), None);
    }

    #[test]
    fn comparison_checks_operator_and_operand() {
        assert!(matches!(
            Comparison::new(Field::Gender, Op::Gt, Operand::One(Literal::Integer(1))),
            Err(ErrorKind::OpNotAllowed { .. })
        ));
        assert_eq!(
            Comparison::new(Field::Age, Op::Exists, Operand::One(Literal::Integer(1))),
            Err(ErrorKind::ValueNotAllowed)
        );
        assert_eq!(
            Comparison::new(Field::Age, Op::Eq, Operand::None),
            Err(ErrorKind::MissingKey("value"))
        );
        assert_eq!(
            Comparison::new(Field::Age, Op::In, Operand::List(vec![])),
            Err(ErrorKind::EmptyList("value"))
        );
        assert!(matches!(
            Comparison::new(
                Field::Age,
                Op::Eq,
                Operand::One(Literal::Money(Money::ZERO))
            ),
            Err(ErrorKind::WrongValueType { .. })
        ));
        assert!(matches!(
            Comparison::new(
                Field::Age,
                Op::Between,
                Operand::Range(Literal::Integer(30), Literal::Integer(18))
            ),
            Err(ErrorKind::BetweenReversed { .. })
        ));
        assert!(matches!(
            Comparison::new(
                Field::PurchaseCountInLastDays { days: 0 },
                Op::Gte,
                Operand::One(Literal::Integer(1))
            ),
            Err(ErrorKind::InvalidDays { .. })
        ));
        assert!(Comparison::new(
            Field::Age,
            Op::Between,
            Operand::Range(Literal::Integer(18), Literal::Integer(18))
        )
        .is_ok());
    }

    #[test]
    fn predicate_tracks_depth_and_size() {
        let leaf = spent_gte(1);
        assert_eq!((leaf.depth(), leaf.size()), (1, 1));
        let tree =
            Predicate::and(vec![leaf.clone(), Predicate::not(leaf.clone()).unwrap()]).unwrap();
        assert_eq!((tree.depth(), tree.size()), (3, 4));
        assert_eq!(
            Predicate::or(vec![]),
            Err(ErrorKind::EmptyList("predicate"))
        );
    }

    #[test]
    fn predicate_limits_are_enforced() {
        let mut deep = spent_gte(1);
        for _ in 1..MAX_DEPTH {
            deep = Predicate::not(deep).unwrap();
        }
        assert_eq!(deep.depth(), MAX_DEPTH);
        assert_eq!(Predicate::not(deep), Err(ErrorKind::TooDeep { max: 32 }));
        let wide: Vec<Predicate> = (0..MAX_NODES as i64 - 1).map(spent_gte).collect();
        let tree = Predicate::or(wide.clone()).unwrap();
        assert_eq!(tree.size(), MAX_NODES);
        let mut wider = wide;
        wider.push(spent_gte(0));
        assert_eq!(
            Predicate::or(wider),
            Err(ErrorKind::TooManyNodes { max: 1000 })
        );
    }
}
