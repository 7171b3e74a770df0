//! The segment index of a set of crm.contacts partitions, as a process serves it: one
//! [`PartitionIndex`] per partition (so a partition is dropped or rebuilt on its own when
//! ownership moves), counts summed and member lists merged across them.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Instant;

use roaring::RoaringBitmap;
use serde::Serialize;

use super::index::PartitionIndex;
use crate::domain::money::Money;
use crate::domain::person::age_on;
use crate::domain::phone::PhoneNumber;
use crate::domain::segment::{EvalContext, SegmentDefinition};
use crate::domain::tier::Tier;
use crate::metrics::catalog;

/// One partition's index and whether it has caught up with the changelog.
pub struct PartitionSlot {
    pub index: RwLock<PartitionIndex>,
    /// Assignment generation: a reader applies records only to the slot it was started for.
    pub generation: u64,
    pub live: std::sync::atomic::AtomicBool,
}

/// A member as a list shows it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MemberView {
    /// Masked, e.g. `6012****789`.
    pub phone_number: String,
    pub name: Option<String>,
    #[schema(value_type = String, example = "Gold")]
    pub customer_tier: Tier,
    /// Ringgit, e.g. `"120.50"`.
    #[schema(value_type = String)]
    pub total_spent: Money,
}

/// A page of members, the cursor of the next page, and the segment's whole count (from
/// the same evaluation).
#[derive(Clone, Debug, PartialEq)]
pub struct MemberPage {
    pub total: u64,
    pub members: Vec<MemberView>,
    pub next: Option<Cursor>,
}

/// Where a member page resumes: after this contact of this partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub partition: u32,
    pub id: u32,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.partition, self.id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (p, id) = text.split_once('.')?;
        Some(Cursor {
            partition: p.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// How many members fall in each tier, state, gender and age band.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Breakdown {
    pub total: u64,
    pub tier: BTreeMap<String, u64>,
    pub state: BTreeMap<String, u64>,
    pub gender: BTreeMap<String, u64>,
    /// `18-24`, `25-34`, ..., `65+`, `under 18`, `unknown`.
    pub age_band: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct SegmentIndex {
    slots: RwLock<BTreeMap<u32, Arc<PartitionSlot>>>,
    next_generation: std::sync::atomic::AtomicU64,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

impl SegmentIndex {
    /// Starts an empty index for each partition (replacing what was there) and returns
    /// the new slots, for the reader that fills them.
    pub fn assign(&self, partitions: &[u32]) -> Vec<(u32, Arc<PartitionSlot>)> {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let made: Vec<(u32, Arc<PartitionSlot>)> = partitions
            .iter()
            .map(|&p| {
                let generation = self
                    .next_generation
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let slot = Arc::new(PartitionSlot {
                    index: RwLock::new(PartitionIndex::default()),
                    generation,
                    live: false.into(),
                });
                slots.insert(p, slot.clone());
                (p, slot)
            })
            .collect();
        drop(slots);
        self.report();
        made
    }

    /// Forgets these partitions (their ownership moved).
    pub fn revoke(&self, partitions: &[u32]) {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        for p in partitions {
            slots.remove(p);
        }
        drop(slots);
        self.report();
    }

    /// Whether `slot` is still the current one of `partition`.
    pub fn is_current(&self, partition: u32, slot: &PartitionSlot) -> bool {
        read(&self.slots)
            .get(&partition)
            .is_some_and(|s| s.generation == slot.generation)
    }

    pub fn partitions(&self) -> Vec<u32> {
        read(&self.slots).keys().copied().collect()
    }

    /// Whether every partition has caught up with its changelog (counts are then exact as
    /// of the last record read).
    pub fn is_live(&self) -> bool {
        read(&self.slots)
            .values()
            .all(|s| s.live.load(std::sync::atomic::Ordering::Acquire))
    }

    pub fn contacts(&self) -> u64 {
        self.snapshot()
            .iter()
            .map(|(_, s)| read(&s.index).len())
            .sum()
    }

    fn snapshot(&self) -> Vec<(u32, Arc<PartitionSlot>)> {
        read(&self.slots)
            .iter()
            .map(|(p, s)| (*p, s.clone()))
            .collect()
    }

    /// Members per partition, the partitions shared among the cores (a count at 10M
    /// contacts is tens of milliseconds of bitmap work, which parallelizes by partition).
    fn members(
        &self,
        definition: &SegmentDefinition,
        ctx: &EvalContext,
    ) -> Vec<(u32, Arc<PartitionSlot>, RoaringBitmap)> {
        let slots = self.snapshot();
        let one = |(p, slot): &(u32, Arc<PartitionSlot>)| {
            let members = read(&slot.index).members(definition, ctx);
            (*p, slot.clone(), members)
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(slots.len());
        if threads <= 1 {
            return slots.iter().map(one).collect();
        }
        let chunk = slots.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let parts: Vec<_> = slots
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
                .collect();
            parts
                .into_iter()
                .flat_map(|part| part.join().expect("a segment query thread panicked"))
                .collect()
        })
    }

    pub fn count(&self, definition: &SegmentDefinition, ctx: &EvalContext) -> u64 {
        let started = Instant::now();
        let total = self
            .members(definition, ctx)
            .iter()
            .map(|(_, _, m)| m.len())
            .sum();
        catalog::SEGMENT_QUERY_SECONDS
            .histogram(&[])
            .record(started.elapsed());
        total
    }

    /// Up to `limit` members after `after`, in (partition, id) order, with the count.
    pub fn page(
        &self,
        definition: &SegmentDefinition,
        ctx: &EvalContext,
        after: Option<Cursor>,
        limit: usize,
    ) -> MemberPage {
        let started = Instant::now();
        let per_partition = self.members(definition, ctx);
        let total = per_partition.iter().map(|(_, _, set)| set.len()).sum();
        let mut members = Vec::new();
        let mut last = None;
        let mut more = false;
        'partitions: for (partition, slot, set) in per_partition {
            if after.is_some_and(|a| partition < a.partition) {
                continue;
            }
            let index = read(&slot.index);
            let mut ids = set.iter();
            if let Some(a) = after.filter(|a| a.partition == partition) {
                if a.id == u32::MAX {
                    continue;
                }
                ids.advance_to(a.id + 1);
            }
            for id in ids {
                if members.len() == limit {
                    more = true;
                    break 'partitions;
                }
                if let Some(row) = index.row(id) {
                    members.push(MemberView {
                        phone_number: row.phone_number.masked(),
                        name: row.name.as_deref().map(String::from),
                        customer_tier: row.customer_tier,
                        total_spent: row.lifetime().total_spent,
                    });
                    last = Some(Cursor { partition, id });
                }
            }
        }
        catalog::SEGMENT_QUERY_SECONDS
            .histogram(&[])
            .record(started.elapsed());
        MemberPage {
            total,
            members,
            next: if more { last } else { None },
        }
    }

    /// Whether this process indexes `partition`, and if so whether it has caught up
    /// with its changelog.
    pub fn partition_live(&self, partition: u32) -> Option<bool> {
        read(&self.slots)
            .get(&partition)
            .map(|s| s.live.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Whether `partition`'s index holds `phone`.
    pub fn holds(&self, partition: u32, phone: &PhoneNumber) -> bool {
        let slot = read(&self.slots).get(&partition).cloned();
        slot.is_some_and(|slot| read(&slot.index).find(phone).is_some())
    }

    /// Calls `each` on every contact of `partition`; false when it is not indexed here.
    pub fn for_each_row(
        &self,
        partition: u32,
        mut each: impl FnMut(&super::row::IndexedContact),
    ) -> bool {
        let Some(slot) = read(&self.slots).get(&partition).cloned() else {
            return false;
        };
        let index = read(&slot.index);
        for id in index.universe.iter() {
            if let Some(row) = index.row(id) {
                each(row);
            }
        }
        true
    }

    /// Whether any indexed partition holds `phone`.
    pub fn contains(&self, phone: &PhoneNumber) -> bool {
        self.snapshot()
            .iter()
            .any(|(_, slot)| read(&slot.index).find(phone).is_some())
    }

    /// The contacts of one partition that are members of any of `definitions` or among
    /// `extra`, each once, with `each` called on its row (a campaign's audience).
    pub fn for_each_in_partition(
        &self,
        partition: u32,
        definitions: &[SegmentDefinition],
        extra: &[PhoneNumber],
        ctx: &EvalContext,
        mut each: impl FnMut(&super::row::IndexedContact),
    ) -> bool {
        let Some(slot) = read(&self.slots).get(&partition).cloned() else {
            return false;
        };
        let index = read(&slot.index);
        let mut audience = RoaringBitmap::new();
        for definition in definitions {
            audience |= index.members(definition, ctx);
        }
        audience.extend(extra.iter().filter_map(|phone| index.id_of(phone)));
        for id in audience.iter() {
            if let Some(row) = index.row(id) {
                each(row);
            }
        }
        true
    }

    /// Every member's phone number (for exports and campaign planning), in (partition,
    /// id) order.
    pub fn for_each_member(
        &self,
        definition: &SegmentDefinition,
        ctx: &EvalContext,
        mut each: impl FnMut(u32, &super::row::IndexedContact),
    ) {
        for (partition, slot, set) in self.members(definition, ctx) {
            let index = read(&slot.index);
            for id in set.iter() {
                if let Some(row) = index.row(id) {
                    each(partition, row);
                }
            }
        }
    }

    pub fn breakdown(&self, definition: &SegmentDefinition, ctx: &EvalContext) -> Breakdown {
        let mut out = Breakdown::default();
        for (_, slot, set) in self.members(definition, ctx) {
            let index = read(&slot.index);
            out.total += set.len();
            let add = |map: &mut BTreeMap<String, u64>, key: String, n: u64| {
                if n > 0 {
                    *map.entry(key).or_default() += n;
                }
            };
            for (tier, ids) in index.tier.entries() {
                add(&mut out.tier, tier.to_string(), set.intersection_len(ids));
            }
            let mut known_state = 0;
            for (state, ids) in index.state.entries() {
                let n = set.intersection_len(ids);
                known_state += n;
                let name = state.map_or_else(|| "other".to_string(), |s| s.to_string());
                add(&mut out.state, name, n);
            }
            add(&mut out.state, "unknown".into(), set.len() - known_state);
            let mut known_gender = 0;
            for (gender, ids) in index.gender.entries() {
                let n = set.intersection_len(ids);
                known_gender += n;
                add(&mut out.gender, gender.to_string(), n);
            }
            add(&mut out.gender, "unknown".into(), set.len() - known_gender);
            for id in set.iter() {
                let band = index
                    .row(id)
                    .and_then(|r| r.date_of_birth)
                    .and_then(|dob| age_on(dob, ctx.today))
                    .map_or("unknown", age_band);
                add(&mut out.age_band, band.to_string(), 1);
            }
        }
        out
    }

    fn report(&self) {
        let slots = self.snapshot();
        let live = slots
            .iter()
            .filter(|(_, s)| s.live.load(std::sync::atomic::Ordering::Acquire))
            .count();
        catalog::SEGMENT_INDEX_PARTITIONS
            .gauge(&["live".into()])
            .set(live as f64);
        catalog::SEGMENT_INDEX_PARTITIONS
            .gauge(&["rebuilding".into()])
            .set((slots.len() - live) as f64);
    }

    /// Updates the gauges (after a batch of records or a partition going live).
    pub fn report_size(&self) {
        self.report();
        catalog::SEGMENT_INDEX_CONTACTS
            .gauge(&[])
            .set(self.contacts() as f64);
    }
}

/// The age band a marketer reads in a breakdown.
pub fn age_band(age: u32) -> &'static str {
    match age {
        0..=17 => "under 18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=54 => "45-54",
        55..=64 => "55-64",
        _ => "65+",
    }
}
