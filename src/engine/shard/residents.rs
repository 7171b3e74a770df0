//! The contacts a shard holds in memory, in least-recently-used order (the `lru` crate), so
//! the memory budget drops the coldest clean contacts first.

use std::time::{Duration, Instant};

use lru::LruCache;

use crate::domain::contact::Contact;
use crate::domain::phone::PhoneNumber;
use crate::storage::bus::TopicPartition;

pub(super) struct Resident {
    pub contact: Contact,
    /// The contact as last stored (loaded or flushed), without its purchase ledger; `None`
    /// while it may have no row. A flush writes only the fields that differ from it.
    pub stored: Option<Contact>,
    pub partition: TopicPartition,
    pub last_used: Instant,
    /// Events applied since the contact was last stored. Kept within the dedupe window
    /// (a flush comes first), so the window holds every event whose rows are not stored
    /// yet: a redelivery of one is known without a look-up, and a stored contact holds
    /// the keys of every event its flush wrote rows for.
    pub unflushed_events: usize,
}

impl Resident {
    pub fn new(
        contact: Contact,
        stored: Option<Contact>,
        partition: TopicPartition,
        now: Instant,
    ) -> Resident {
        Resident {
            contact,
            stored,
            partition,
            last_used: now,
            unflushed_events: 0,
        }
    }
}

pub(super) struct Residents {
    lru: LruCache<PhoneNumber, Resident>,
}

impl Residents {
    pub fn new() -> Residents {
        // Unbounded: the budget is enforced by `evictable`, which must skip dirty contacts.
        Residents {
            lru: LruCache::unbounded(),
        }
    }

    pub fn len(&self) -> usize {
        self.lru.len()
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
    pub fn insert(&mut self, phone: PhoneNumber, resident: Resident) {
        self.lru.put(phone, resident);
    }

    /// Marks `phone` the most recently used.
    pub fn touch(&mut self, phone: &PhoneNumber) {
        self.lru.promote(phone);
    }

    pub fn remove(&mut self, phone: &PhoneNumber) {
        self.lru.pop(phone);
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
        budget: usize,
        idle_timeout: Duration,
        now: Instant,
        pinned: impl Fn(&PhoneNumber) -> bool,
    ) -> Vec<PhoneNumber> {
        let over = self.len().saturating_sub(budget);
        let mut drop = Vec::new();
        for (phone, resident) in self.lru.iter().rev() {
            let idle = now.saturating_duration_since(resident.last_used) >= idle_timeout;
            if drop.len() >= over && !idle {
                // Oldest first: nothing younger is idle either.
                break;
            }
            if !pinned(phone) {
                drop.push(phone.clone());
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
            residents.evictable(3, hour, now, |_| false),
            vec![phone(2), phone(3)]
        );
        // A contact with unstored changes stays; the next coldest goes in its place.
        assert_eq!(
            residents.evictable(3, hour, now, |p| *p == phone(2)),
            vec![phone(3), phone(4)],
            "over by two, 2 pinned: the next coldest go in its place"
        );
        assert!(residents.evictable(5, hour, now, |_| false).is_empty());
        // get and get_mut do not change the order.
        assert!(residents.get(&phone(2)).is_some());
        residents.get_mut(&phone(2)).unwrap().unflushed_events = 1;
        assert_eq!(residents.evictable(4, hour, now, |_| false), vec![phone(2)]);
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
            residents.evictable(100, idle, later, |_| false),
            vec![phone(1)]
        );
        residents.remove(&phone(1));
        assert!(!residents.contains(&phone(1)));
        assert_eq!(residents.len(), 1);
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
