//! The segment index of one crm.contacts partition: contacts under dense u32 ids, their
//! compact rows, and posting lists per field. A definition is answered by bitmaps where they
//! decide (see `compile`), and the few contacts they leave undecided are checked by the
//! reference evaluator on their rows, so the answer is exactly the reference's.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use roaring::RoaringBitmap;

use super::attributes::Attributes;
use super::bounds::Bounds;
use super::postings::{Postings, Ranged};
use super::row::IndexedContact;
use crate::domain::contact::WhatsappStatus;
use crate::domain::person::{Gender, MaritalStatus};
use crate::domain::phone::PhoneNumber;
use crate::domain::segment::{EvalContext, MalaysianState, SegmentDefinition};
use crate::domain::tier::Tier;
use crate::topics::contacts::ContactState;

/// What applying a changelog record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Inserted,
    Updated,
    /// An older version than the one indexed (a replay or a late backfill): ignored.
    Stale,
    Removed,
    /// A tombstone for a contact the index does not hold.
    Absent,
}

/// Day number of a date, the key of day-bucketed fields.
pub fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

#[derive(Default)]
pub struct PartitionIndex {
    /// Dense id by phone number (its E.164 digits as an integer: at most 15 digits).
    ids: HashMap<u64, u32>,
    pub(super) rows: Vec<Option<IndexedContact>>,
    /// Ids of the contacts held (ids of removed contacts are not reused).
    pub(super) universe: RoaringBitmap,
    pub(super) gender: Postings<Gender>,
    pub(super) marital_status: Postings<MaritalStatus>,
    /// `None`: a state text naming no Malaysian state.
    pub(super) state: Postings<Option<MalaysianState>>,
    pub(super) tier: Postings<Tier>,
    pub(super) whatsapp_status: Postings<WhatsappStatus>,
    pub(super) marketing_opt_in: Postings<bool>,
    /// Day numbers.
    pub(super) date_of_birth: Ranged,
    pub(super) first_purchase: Ranged,
    pub(super) last_purchase: Ranged,
    /// UTC day numbers of the instants.
    pub(super) last_interaction: Ranged,
    pub(super) created_at: Ranged,
    /// Whole ringgit, rounded down.
    pub(super) total_spent: Ranged,
    pub(super) average_spend: Ranged,
    pub(super) purchase_count: Ranged,
    pub(super) message_count: Ranged,
    pub(super) outbound_count: Ranged,
    pub(super) replied_count: Ranged,
    pub(super) attributes: Attributes,
}

/// The id map's key of a phone number: its digits as an integer (E.164 has at most 15).
fn id_key(phone: &PhoneNumber) -> u64 {
    phone.as_str().parse().unwrap_or(u64::MAX)
}

/// Whole ringgit of an amount in sen (rounded down): the key of money fields.
pub fn ringgit(sen: i64) -> i64 {
    sen.div_euclid(100)
}

/// UTC day number of an instant in nanoseconds.
pub fn utc_day(nanos: i64) -> i64 {
    nanos.div_euclid(NANOS_PER_DAY)
}

pub const NANOS_PER_DAY: i64 = 86_400_000_000_000;

fn nanos(at: chrono::DateTime<chrono::Utc>) -> i64 {
    // Instants outside 1677–2262 saturate; their day buckets are then approximate, which
    // only makes such contacts undecided (checked exactly), never wrong.
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

pub(super) fn instant_key(at: chrono::DateTime<chrono::Utc>) -> i64 {
    utc_day(nanos(at))
}

pub(super) fn instant_nanos(at: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    at.timestamp_nanos_opt()
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PartitionIndex {
    pub fn len(&self) -> u64 {
        self.universe.len()
    }

    pub fn is_empty(&self) -> bool {
        self.universe.is_empty()
    }

    /// Applies a changelog record: a contact's state, or a tombstone (`None`) for `phone`.
    pub fn apply(&mut self, phone: &PhoneNumber, state: Option<&ContactState>) -> Applied {
        let Some(state) = state else {
            return self.remove(phone);
        };
        match self.ids.get(&id_key(phone)).copied() {
            Some(id) => {
                let Some(old) = self.rows[id as usize].take() else {
                    return Applied::Absent;
                };
                if old.updated_at > state.updated_at {
                    self.rows[id as usize] = Some(old);
                    return Applied::Stale;
                }
                self.post(id, &old, false);
                let row = IndexedContact::from(state);
                self.post(id, &row, true);
                self.rows[id as usize] = Some(row);
                Applied::Updated
            }
            None => {
                let id =
                    u32::try_from(self.rows.len()).expect("fewer than 2^32 contacts per partition");
                let row = IndexedContact::from(state);
                self.post(id, &row, true);
                self.rows.push(Some(row));
                self.ids.insert(id_key(phone), id);
                self.universe.insert(id);
                Applied::Inserted
            }
        }
    }

    fn remove(&mut self, phone: &PhoneNumber) -> Applied {
        let Some(id) = self.ids.remove(&id_key(phone)) else {
            return Applied::Absent;
        };
        if let Some(old) = self.rows[id as usize].take() {
            self.post(id, &old, false);
        }
        self.universe.remove(id);
        Applied::Removed
    }

    /// Adds (or removes) `id` to (from) every posting list its row belongs to. One function
    /// for both directions, so an update can never leave a stale posting behind.
    fn post(&mut self, id: u32, row: &IndexedContact, add: bool) {
        fn set<K: PartialEq + Clone>(p: &mut Postings<K>, key: K, id: u32, add: bool) {
            if add {
                p.insert(key, id)
            } else {
                p.remove(&key, id)
            }
        }
        fn range(r: &mut Ranged, key: Option<i64>, id: u32, add: bool) {
            match key {
                Some(k) if add => r.insert(k, id),
                Some(k) => r.remove(k, id),
                None => {}
            }
        }
        if let Some(g) = row.gender {
            set(&mut self.gender, g, id, add);
        }
        if let Some(m) = row.marital_status {
            set(&mut self.marital_status, m, id, add);
        }
        if let Some(s) = row.state {
            set(&mut self.state, s, id, add);
        }
        set(&mut self.tier, row.customer_tier, id, add);
        set(&mut self.whatsapp_status, row.whatsapp_status, id, add);
        set(&mut self.marketing_opt_in, row.marketing_opt_in, id, add);
        let spent = row.lifetime();
        range(
            &mut self.date_of_birth,
            row.date_of_birth.map(day_number),
            id,
            add,
        );
        range(
            &mut self.first_purchase,
            spent.first_purchase_on.map(day_number),
            id,
            add,
        );
        range(
            &mut self.last_purchase,
            spent.last_purchase_on.map(day_number),
            id,
            add,
        );
        range(
            &mut self.last_interaction,
            row.interactions.last_interaction.map(instant_key),
            id,
            add,
        );
        range(
            &mut self.created_at,
            Some(instant_key(row.created_at)),
            id,
            add,
        );
        range(
            &mut self.total_spent,
            Some(ringgit(spent.total_spent.sen())),
            id,
            add,
        );
        let average = (spent.purchase_count > 0).then(|| ringgit(spent.average_spend.sen()));
        range(&mut self.average_spend, average, id, add);
        range(
            &mut self.purchase_count,
            Some(count(spent.purchase_count)),
            id,
            add,
        );
        let stats = &row.interactions;
        range(
            &mut self.message_count,
            Some(count(stats.message_count)),
            id,
            add,
        );
        range(
            &mut self.outbound_count,
            Some(count(stats.outbound_count)),
            id,
            add,
        );
        range(
            &mut self.replied_count,
            Some(count(stats.replied_count)),
            id,
            add,
        );
        self.attributes.post(&row.attributes, id, add);
    }

    /// The contact's row, if this partition holds it.
    pub fn find(&self, phone: &PhoneNumber) -> Option<&IndexedContact> {
        self.id_of(phone).and_then(|id| self.row(id))
    }

    /// The contact's id, if this partition holds it.
    pub fn id_of(&self, phone: &PhoneNumber) -> Option<u32> {
        let id = *self.ids.get(&id_key(phone))?;
        self.row(id).map(|_| id)
    }

    pub fn row(&self, id: u32) -> Option<&IndexedContact> {
        self.rows.get(id as usize).and_then(Option::as_ref)
    }

    /// The members of `definition` on `ctx`: exactly the contacts the reference evaluator
    /// selects. Bitmaps decide most contacts; the undecided are checked one by one.
    pub fn members(&self, definition: &SegmentDefinition, ctx: &EvalContext) -> RoaringBitmap {
        let parts: Vec<Bounds> = definition
            .conditions()
            .iter()
            .map(|p| self.bounds(p, ctx))
            .collect();
        let bounds = Bounds::and(parts, &self.universe);
        let mut members = bounds.sure.clone();
        for id in bounds.undecided() {
            if self
                .row(id)
                .is_some_and(|row| definition.matches_facts(row, ctx))
            {
                members.insert(id);
            }
        }
        members
    }

    /// Bytes held by the bitmaps and rows (an estimate: serialized bitmap sizes, row sizes,
    /// and the id map).
    pub fn bytes(&self) -> usize {
        let postings = self.gender.bytes()
            + self.marital_status.bytes()
            + self.state.bytes()
            + self.tier.bytes()
            + self.whatsapp_status.bytes()
            + self.marketing_opt_in.bytes()
            + [
                &self.date_of_birth,
                &self.first_purchase,
                &self.last_purchase,
                &self.last_interaction,
                &self.created_at,
                &self.total_spent,
                &self.average_spend,
                &self.purchase_count,
                &self.message_count,
                &self.outbound_count,
                &self.replied_count,
            ]
            .iter()
            .map(|r| r.bytes())
            .sum::<usize>()
            + self.attributes.bytes()
            + self.universe.serialized_size();
        let rows: usize = self
            .rows
            .iter()
            .flatten()
            .map(IndexedContact::bytes)
            .sum::<usize>()
            + (self.rows.capacity() - self.rows.len())
                * std::mem::size_of::<Option<IndexedContact>>();
        let ids = self.ids.capacity() * (std::mem::size_of::<(u64, u32)>() + 1);
        postings + rows + ids
    }
}
