//! The contacts a shard holds in memory, in least-recently-used order (the `lru` crate), so
//! the memory budget drops the coldest clean contacts first.

use std::time::{Duration, Instant};

use lru::LruCache;

use crate::domain::contact::Contact;
use crate::domain::contact_fields::StoredFields;
use crate::domain::phone::PhoneNumber;
use crate::storage::bus::TopicPartition;

pub(super) struct Resident {
    pub contact: Contact,
    /// Digests of the contact as last stored (loaded or flushed); `None` while it may have
    /// no row. A flush writes only the fields that differ from it.
    pub stored: Option<StoredFields>,
    pub partition: TopicPartition,
    pub last_used: Instant,
    /// Events applied since the contact was last stored. Kept within the dedupe window
    /// (a flush comes first), so the window holds every event whose rows are not stored
    /// yet: a redelivery of one is known without a look-up, and a stored contact holds
    /// the keys of every event its flush wrote rows for.
    pub unflushed_events: usize,
    /// What this entry costs, as last estimated (see [`Resident::footprint`]).
    footprint: usize,
}

impl Resident {
    pub fn new(
        contact: Contact,
        stored: Option<StoredFields>,
        partition: TopicPartition,
        now: Instant,
    ) -> Resident {
        Resident {
            contact,
            stored,
            partition,
            last_used: now,
            unflushed_events: 0,
            footprint: 0,
        }
    }

    /// Approximate bytes this entry holds in the cache: the entry itself, the LRU's node
    /// and hash slot, and the heap of its key, partition and contact.
    fn footprint(&self, key: &PhoneNumber) -> usize {
        /// The `lru` crate's node links and hash-table slot, and the allocator's rounding.
        const LRU_OVERHEAD: usize = 64;
        std::mem::size_of::<(PhoneNumber, Resident)>()
            + LRU_OVERHEAD
            + key.as_str().len()
            + self.partition.topic.len()
            + self.contact.heap_bytes()
    }
}

/// How much a shard may hold: contacts are dropped, least recently used first, beyond
/// either number.
#[derive(Clone, Copy, Debug)]
pub(super) struct Budget {
    pub contacts: usize,
    pub bytes: usize,
}

impl Budget {
    fn exceeded_by(self, contacts: usize, bytes: usize) -> bool {
        contacts > self.contacts || bytes > self.bytes
    }
}

pub(super) struct Residents {
    lru: LruCache<PhoneNumber, Resident>,
    /// The sum of the residents' footprints.
    bytes: usize,
}

impl Residents {
    pub fn new() -> Residents {
        // Unbounded: the budget is enforced by `evictable`, which must skip dirty contacts.
        Residents {
            lru: LruCache::unbounded(),
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.lru.len()
    }

    /// The residents' estimated bytes (see [`Resident::footprint`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the shard holds more than `budget` allows.
    pub fn over(&self, budget: Budget) -> bool {
        budget.exceeded_by(self.len(), self.bytes)
    }

    pub fn contains(&self, phone: &PhoneNumber) -> bool {
        self.lru.contains(phone)
    }

    /// Without changing the order.
    pub fn get(&self, phone: &PhoneNumber) -> Option<&Resident> {
        self.lru.peek(phone)
    }

    /// Without changing the order.
    pub fn get_mut(&mut self, phone: &PhoneNumber) -> Option<&mut Resident> {
        self.lru.peek_mut(phone)
    }

    /// Holds `resident` as the most recently used.
    pub fn insert(&mut self, phone: PhoneNumber, mut resident: Resident) {
        resident.footprint = resident.footprint(&phone);
        self.bytes += resident.footprint;
        if let Some(replaced) = self.lru.put(phone, resident) {
            self.bytes -= replaced.footprint;
        }
    }

    /// Estimates `phone`'s footprint again, after its contact changed.
    pub fn measure(&mut self, phone: &PhoneNumber) {
        if let Some(resident) = self.lru.peek_mut(phone) {
            let now = resident.footprint(phone);
            self.bytes = self.bytes - resident.footprint + now;
            resident.footprint = now;
        }
    }

    /// Marks `phone` the most recently used.
    pub fn touch(&mut self, phone: &PhoneNumber) {
        self.lru.promote(phone);
    }

    pub fn remove(&mut self, phone: &PhoneNumber) {
        if let Some(gone) = self.lru.pop(phone) {
            self.bytes -= gone.footprint;
        }
    }

    /// The contacts held for the partitions `of` selects.
    pub fn in_partitions(&self, of: impl Fn(&TopicPartition) -> bool) -> Vec<PhoneNumber> {
        self.lru
            .iter()
            .filter(|(_, resident)| of(&resident.partition))
            .map(|(phone, _)| phone.clone())
            .collect()
    }

    /// What to drop, least recently used first: idle contacts, and beyond `budget` the
    /// coldest ones, never one `pinned` says must stay (unstored changes).
    pub fn evictable(
        &self,
        budget: Budget,
        idle_timeout: Duration,
        now: Instant,
        pinned: impl Fn(&PhoneNumber) -> bool,
    ) -> Vec<PhoneNumber> {
        let (mut count, mut bytes) = (self.len(), self.bytes);
        let mut drop = Vec::new();
        for (phone, resident) in self.lru.iter().rev() {
            let idle = now.saturating_duration_since(resident.last_used) >= idle_timeout;
            if !budget.exceeded_by(count, bytes) && !idle {
                // Oldest first: nothing younger is idle either.
                break;
            }
            if !pinned(phone) {
                drop.push(phone.clone());
                count -= 1;
                bytes -= resident.footprint;
            }
        }
        drop
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn phone(n: u32) -> PhoneNumber {
        PhoneNumber::parse(&format!("01{n:08}")).unwrap()
    }

    fn contacts(contacts: usize) -> Budget {
        Budget {
            contacts,
            bytes: usize::MAX,
        }
    }

    fn held(residents: &mut Residents, n: u32, partition: u32, at: Instant) {
        let contact = Contact::new(phone(n), Utc::now());
        residents.insert(
            phone(n),
            Resident::new(
                contact,
                None,
                TopicPartition::new("wa.inbound", partition),
                at,
            ),
        );
    }

    #[test]
    fn over_budget_the_least_recently_used_clean_contacts_go_first() {
        let now = Instant::now();
        let mut residents = Residents::new();
        for n in 1..=5 {
            held(&mut residents, n, 0, now);
        }
        // 1 is used again: 2 is now the coldest.
        residents.touch(&phone(1));
        let hour = Duration::from_secs(3600);
        assert_eq!(
            residents.evictable(contacts(3), hour, now, |_| false),
            vec![phone(2), phone(3)]
        );
        // A contact with unstored changes stays; the next coldest goes in its place.
        assert_eq!(
            residents.evictable(contacts(3), hour, now, |p| *p == phone(2)),
            vec![phone(3), phone(4)],
            "over by two, 2 pinned: the next coldest go in its place"
        );
        assert!(residents
            .evictable(contacts(5), hour, now, |_| false)
            .is_empty());
        // get and get_mut do not change the order.
        assert!(residents.get(&phone(2)).is_some());
        residents.get_mut(&phone(2)).unwrap().unflushed_events = 1;
        assert_eq!(
            residents.evictable(contacts(4), hour, now, |_| false),
            vec![phone(2)]
        );
    }

    #[test]
    fn idle_contacts_go_whatever_the_budget() {
        let start = Instant::now();
        let mut residents = Residents::new();
        held(&mut residents, 1, 0, start);
        held(&mut residents, 2, 0, start + Duration::from_secs(50));
        let later = start + Duration::from_secs(70);
        let idle = Duration::from_secs(60);
        assert_eq!(
            residents.evictable(contacts(100), idle, later, |_| false),
            vec![phone(1)]
        );
        residents.remove(&phone(1));
        assert!(!residents.contains(&phone(1)));
        assert_eq!(residents.len(), 1);
    }

    #[test]
    fn beyond_the_byte_budget_the_coldest_go_until_it_fits() {
        let now = Instant::now();
        let mut residents = Residents::new();
        for n in 1..=4 {
            held(&mut residents, n, 0, now);
        }
        let one = residents.bytes() / 4;
        assert!(one > std::mem::size_of::<Resident>(), "{one}");
        // A contact that grows (a long name, many attributes) counts for more once measured.
        residents.get_mut(&phone(4)).unwrap().contact.name = Some("x".repeat(10 * one));
        assert_eq!(residents.bytes(), 4 * one, "not yet measured");
        residents.measure(&phone(4));
        assert!(residents.bytes() > 10 * one);
        let hour = Duration::from_secs(3600);
        let budget = Budget {
            contacts: 100,
            bytes: 12 * one,
        };
        assert!(residents.over(budget));
        // 1, 2 and 3 are the coldest; dropping 1 and 2 brings the bytes under budget.
        assert_eq!(
            residents.evictable(budget, hour, now, |_| false),
            vec![phone(1), phone(2)]
        );
        residents.remove(&phone(1));
        residents.remove(&phone(2));
        assert!(!residents.over(budget));
        residents.remove(&phone(3));
        residents.remove(&phone(4));
        assert_eq!(residents.bytes(), 0, "every removal gives its bytes back");
    }

    #[test]
    fn contacts_are_found_by_partition() {
        let now = Instant::now();
        let mut residents = Residents::new();
        held(&mut residents, 1, 0, now);
        held(&mut residents, 2, 1, now);
        held(&mut residents, 3, 1, now);
        let mut of_one = residents.in_partitions(|tp| tp.partition == 1);
        of_one.sort();
        assert_eq!(of_one, vec![phone(2), phone(3)]);
    }
}
