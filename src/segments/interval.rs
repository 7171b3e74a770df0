//! A comparison on an ordered field as a set of integer intervals: what `lt 5`, `between
//! [2, 9]` or `in [1, 4]` select, in the field's integer encoding (a count, sen, a day
//! number, nanoseconds). `ne` is the complement among contacts that have a value.

use crate::domain::segment::{Comparison, Literal, Op, Operand};

#[derive(Clone, Debug, PartialEq)]
pub struct IntervalSet {
    /// Inclusive intervals.
    pub ranges: Vec<(i64, i64)>,
    /// The comparison selects the contacts with a value outside `ranges` (`ne`).
    pub negated: bool,
}

impl IntervalSet {
    /// The set a comparison selects, with `encode` turning a literal into the field's
    /// integer; `None` when the comparison is not an ordering or equality test on integers
    /// (the caller then falls back to checking contacts).
    pub fn of(comparison: &Comparison, encode: impl Fn(&Literal) -> Option<i64>) -> Option<Self> {
        let one = |range: (i64, i64)| IntervalSet {
            ranges: vec![range],
            negated: false,
        };
        let operand = comparison.operand();
        let value = || match operand {
            Operand::One(lit) => encode(lit),
            _ => None,
        };
        Some(match comparison.op() {
            Op::Exists => one((i64::MIN, i64::MAX)),
            Op::Eq => {
                let v = value()?;
                one((v, v))
            }
            Op::Ne => {
                let v = value()?;
                IntervalSet {
                    ranges: vec![(v, v)],
                    negated: true,
                }
            }
            Op::Lt => one((i64::MIN, value()?.checked_sub(1)?)),
            Op::Lte => one((i64::MIN, value()?)),
            Op::Gt => one((value()?.checked_add(1)?, i64::MAX)),
            Op::Gte => one((value()?, i64::MAX)),
            Op::Between => match operand {
                Operand::Range(low, high) => one((encode(low)?, encode(high)?)),
                _ => return None,
            },
            Op::In => match operand {
                Operand::List(items) => IntervalSet {
                    ranges: items
                        .iter()
                        .map(|l| encode(l).map(|v| (v, v)))
                        .collect::<Option<_>>()?,
                    negated: false,
                },
                _ => return None,
            },
            Op::Contains => return None,
        })
    }

    /// Whether a value is selected.
    pub fn contains(&self, value: i64) -> bool {
        self.ranges.iter().any(|&(l, h)| l <= value && value <= h) != self.negated
    }

    /// Whether every value in `low..=high` is selected.
    pub fn covers(&self, low: i64, high: i64) -> bool {
        if self.negated {
            !self.meets_ranges(low, high)
        } else {
            // Walk the ranges in order from `low`, extending what is covered without a gap.
            let mut sorted = self.ranges.clone();
            sorted.sort_unstable();
            let mut next = low;
            for (l, h) in sorted {
                if l > next {
                    return false;
                }
                if h >= high {
                    return true;
                }
                next = next.max(h + 1);
            }
            false
        }
    }

    /// Whether some value in `low..=high` is selected.
    pub fn meets(&self, low: i64, high: i64) -> bool {
        if self.negated {
            !self.covers_ranges(low, high)
        } else {
            self.meets_ranges(low, high)
        }
    }

    fn meets_ranges(&self, low: i64, high: i64) -> bool {
        self.ranges.iter().any(|&(l, h)| l <= high && low <= h)
    }

    fn covers_ranges(&self, low: i64, high: i64) -> bool {
        IntervalSet {
            ranges: self.ranges.clone(),
            negated: false,
        }
        .covers(low, high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn covers_and_meets_agree_with_contains(
            ranges in proptest::collection::vec((-20i64..20, 0i64..10), 0..5),
            negated: bool,
            low in -25i64..25,
            span in 0i64..10,
        ) {
            let set = IntervalSet {
                ranges: ranges.iter().map(|&(l, w)| (l, l + w)).collect(),
                negated,
            };
            let high = low + span;
            let all = (low..=high).all(|v| set.contains(v));
            let any = (low..=high).any(|v| set.contains(v));
            prop_assert_eq!(set.covers(low, high), all);
            prop_assert_eq!(set.meets(low, high), any);
        }
    }
}
