//! Posting lists: which contacts (dense ids) hold which value.
//!
//! - [`Postings`]: one bitmap per value of a small closed set (gender, tier, state, ...).
//! - [`Ranged`]: one bitmap per integer key (a day, a count, a ringgit), plus coarser levels
//!   so that a range is the union of a few dozen bitmaps, not of one per key.

use std::collections::BTreeMap;

use roaring::{MultiOps, RoaringBitmap};

/// A bitmap per distinct value of a small set, kept as a short list (no hashing or ordering
/// needed for enums with a handful of values).
#[derive(Clone, Debug)]
pub struct Postings<K> {
    lists: Vec<(K, RoaringBitmap)>,
}

impl<K> Default for Postings<K> {
    fn default() -> Self {
        Postings { lists: Vec::new() }
    }
}

impl<K: PartialEq + Clone> Postings<K> {
    pub fn insert(&mut self, key: K, id: u32) {
        match self.lists.iter_mut().find(|(k, _)| *k == key) {
            Some((_, set)) => add(set, id),
            None => self.lists.push((key, std::iter::once(id).collect())),
        }
    }

    pub fn remove(&mut self, key: &K, id: u32) {
        if let Some(i) = self.lists.iter().position(|(k, _)| k == key) {
            self.lists[i].1.remove(id);
            if self.lists[i].1.is_empty() {
                self.lists.swap_remove(i);
            }
        }
    }

    pub fn get(&self, key: &K) -> Option<&RoaringBitmap> {
        self.lists.iter().find(|(k, _)| k == key).map(|(_, s)| s)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&K, &RoaringBitmap)> {
        self.lists.iter().map(|(k, s)| (k, s))
    }

    /// The union of the lists whose key passes `keep`.
    pub fn union_where(&self, mut keep: impl FnMut(&K) -> bool) -> RoaringBitmap {
        self.lists
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(_, s)| s)
            .union()
    }

    pub fn bytes(&self) -> usize {
        self.lists.iter().map(|(_, s)| s.serialized_size()).sum()
    }
}

/// Adds `id`. New contacts get the highest id yet, so appending (`push`) is the common case
/// and much cheaper than a sorted insert.
pub fn add(set: &mut RoaringBitmap, id: u32) {
    if set.try_push(id).is_err() {
        set.insert(id);
    }
}

/// Key widths of the levels: exact keys, then buckets of 32 and 1,024 keys.
const LEVELS: [i64; 3] = [1, 32, 1024];

/// Bitmaps per integer key at [`LEVELS`]: a range query takes the widest buckets that fit
/// inside it and narrower ones only at its edges, so its cost does not grow with its width.
#[derive(Clone, Debug, Default)]
pub struct Ranged {
    levels: [BTreeMap<i64, RoaringBitmap>; 3],
}

impl Ranged {
    pub fn insert(&mut self, key: i64, id: u32) {
        for (level, width) in self.levels.iter_mut().zip(LEVELS) {
            level.entry(key.div_euclid(width)).or_default().insert(id);
        }
    }

    pub fn remove(&mut self, key: i64, id: u32) {
        for (level, width) in self.levels.iter_mut().zip(LEVELS) {
            let bucket = key.div_euclid(width);
            if let Some(set) = level.get_mut(&bucket) {
                set.remove(id);
                if set.is_empty() {
                    level.remove(&bucket);
                }
            }
        }
    }

    /// The contacts whose key is in `low..=high` (empty when `low > high`).
    pub fn range(&self, low: i64, high: i64) -> RoaringBitmap {
        let mut parts = Vec::new();
        self.cover(low, high, LEVELS.len() - 1, &mut parts);
        parts.union()
    }

    /// Every contact with a key.
    pub fn all(&self) -> RoaringBitmap {
        self.levels[LEVELS.len() - 1].values().union()
    }

    fn cover<'a>(&'a self, low: i64, high: i64, level: usize, out: &mut Vec<&'a RoaringBitmap>) {
        if low > high {
            return;
        }
        let width = LEVELS[level];
        let map = &self.levels[level];
        if level == 0 {
            out.extend(map.range(low..=high).map(|(_, s)| s));
            return;
        }
        // Buckets wholly inside low..=high, then the uncovered edges one level down.
        let first = low.div_euclid(width) + i64::from(low.rem_euclid(width) != 0);
        let last = high.saturating_add(1).div_euclid(width) - 1;
        if first > last {
            self.cover(low, high, level - 1, out);
            return;
        }
        out.extend(map.range(first..=last).map(|(_, s)| s));
        let covered_low = first.saturating_mul(width);
        let covered_high = (last + 1).saturating_mul(width).saturating_sub(1);
        if low < covered_low {
            self.cover(low, covered_low - 1, level - 1, out);
        }
        if high > covered_high {
            self.cover(covered_high + 1, high, level - 1, out);
        }
    }

    pub fn bytes(&self) -> usize {
        self.levels
            .iter()
            .flat_map(|l| l.values())
            .map(|s| s.serialized_size())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_range_is_exactly_the_keys_inside_it(
            keys in proptest::collection::vec(-5_000i64..5_000, 0..200),
            low in -6_000i64..6_000,
            span in 0i64..6_000,
        ) {
            let mut ranged = Ranged::default();
            for (id, key) in keys.iter().enumerate() {
                ranged.insert(*key, id as u32);
            }
            // Remove every third contact again: removal must leave no trace at any level.
            for (id, key) in keys.iter().enumerate().filter(|(id, _)| id % 3 == 0) {
                ranged.remove(*key, id as u32);
            }
            let high = low + span;
            let expected: RoaringBitmap = keys
                .iter()
                .enumerate()
                .filter(|(id, k)| id % 3 != 0 && (low..=high).contains(*k))
                .map(|(id, _)| id as u32)
                .collect();
            prop_assert_eq!(ranged.range(low, high), expected);
        }
    }

    #[test]
    fn extreme_ranges_do_not_overflow() {
        let mut ranged = Ranged::default();
        ranged.insert(i64::MIN / 4, 1);
        ranged.insert(0, 2);
        ranged.insert(i64::MAX / 4, 3);
        assert_eq!(ranged.range(i64::MIN, i64::MAX).len(), 3);
        assert_eq!(ranged.range(1, i64::MAX).len(), 1);
        assert_eq!(ranged.all().len(), 3);
    }

    #[test]
    fn postings_forget_emptied_values() {
        let mut p = Postings::default();
        p.insert("a", 1);
        p.insert("b", 2);
        p.remove(&"a", 1);
        assert!(p.get(&"a").is_none());
        assert_eq!(p.union_where(|_| true).len(), 1);
    }
}
