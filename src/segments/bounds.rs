//! What a part of a definition is known to select before any contact is read: `sure` ⊆ the
//! true member set ⊆ `maybe`. An exact part has `sure == maybe`. Logic composes the bounds
//! (and: intersections, or: unions, not: complements swap them), so the root's `maybe \
//! sure` is exactly the set of contacts the reference evaluator must decide one by one.

use roaring::{MultiOps, RoaringBitmap};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bounds {
    pub sure: RoaringBitmap,
    pub maybe: RoaringBitmap,
}

impl Bounds {
    pub fn exact(set: RoaringBitmap) -> Bounds {
        Bounds {
            sure: set.clone(),
            maybe: set,
        }
    }

    /// Nothing known: every contact of `universe` must be checked.
    pub fn unknown(universe: &RoaringBitmap) -> Bounds {
        Bounds {
            sure: RoaringBitmap::new(),
            maybe: universe.clone(),
        }
    }

    pub fn and(parts: Vec<Bounds>, universe: &RoaringBitmap) -> Bounds {
        if parts.is_empty() {
            return Bounds::exact(universe.clone());
        }
        let (sure, maybe): (Vec<_>, Vec<_>) = parts.into_iter().map(|b| (b.sure, b.maybe)).unzip();
        Bounds {
            sure: sure.intersection(),
            maybe: maybe.intersection(),
        }
    }

    pub fn or(parts: Vec<Bounds>) -> Bounds {
        let (sure, maybe): (Vec<_>, Vec<_>) = parts.into_iter().map(|b| (b.sure, b.maybe)).unzip();
        Bounds {
            sure: sure.union(),
            maybe: maybe.union(),
        }
    }

    pub fn not(self, universe: &RoaringBitmap) -> Bounds {
        Bounds {
            sure: universe - &self.maybe,
            maybe: universe - &self.sure,
        }
    }

    /// The contacts the bounds leave undecided.
    pub fn undecided(&self) -> RoaringBitmap {
        &self.maybe - &self.sure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u32]) -> RoaringBitmap {
        ids.iter().copied().collect()
    }

    #[test]
    fn logic_keeps_sure_inside_maybe_and_not_swaps_them() {
        let universe = set(&[1, 2, 3, 4, 5]);
        let a = Bounds {
            sure: set(&[1]),
            maybe: set(&[1, 2, 3]),
        };
        let b = Bounds::exact(set(&[2, 3, 4]));
        let and = Bounds::and(vec![a.clone(), b.clone()], &universe);
        assert_eq!(and.sure, set(&[]));
        assert_eq!(and.maybe, set(&[2, 3]));
        let or = Bounds::or(vec![a.clone(), b]);
        assert_eq!(or.sure, set(&[1, 2, 3, 4]));
        assert_eq!(or.maybe, set(&[1, 2, 3, 4]));
        let not = a.not(&universe);
        assert_eq!(not.sure, set(&[4, 5]));
        assert_eq!(not.maybe, set(&[2, 3, 4, 5]));
        assert_eq!(not.undecided(), set(&[2, 3]));
        assert_eq!(Bounds::and(vec![], &universe), Bounds::exact(universe));
    }
}
