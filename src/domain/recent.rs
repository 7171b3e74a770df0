//! Fingerprints of the latest events applied to a contact. They are stored in the same row
//! as the changes those events made, so "applied" and "recorded as applied" can never
//! disagree after a crash: a replayed event is recognised and changes nothing.
//!
//! Fingerprints (64 bits of SHA-256 of the event's dedupe key) rather than the keys keep a
//! resident contact small: 32 of them are 256 bytes, where 32 wamids would be ~2 KB. A
//! false match needs two of one contact's 32 latest events to collide in 64 bits.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How many events a contact remembers. A crash replays at most the uncommitted tail of a
/// partition, which for one contact is a handful of events, and WhatsApp redelivers a
/// message soon after a failed answer.
pub const RECENT_CAPACITY: usize = 32;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecentKeys(VecDeque<i64>);

/// The fingerprint of a dedupe key (an i64 so it is a CQL bigint as it is).
pub fn fingerprint(key: &str) -> i64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

impl RecentKeys {
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains(&fingerprint(key))
    }

    /// Records `key`; returns false (and changes nothing) when it was already recorded.
    pub fn insert(&mut self, key: &str) -> bool {
        self.insert_fingerprint(fingerprint(key))
    }

    fn insert_fingerprint(&mut self, print: i64) -> bool {
        if self.0.contains(&print) {
            return false;
        }
        if self.0.len() >= RECENT_CAPACITY {
            self.0.pop_front();
        }
        self.0.push_back(print);
        true
    }

    /// The fingerprint that recording a new key would push out: the oldest, when full.
    pub fn next_to_forget(&self) -> Option<i64> {
        if self.0.len() >= RECENT_CAPACITY {
            self.0.front().copied()
        } else {
            None
        }
    }

    /// Fingerprints, oldest first.
    pub fn fingerprints(&self) -> impl Iterator<Item = i64> + '_ {
        self.0.iter().copied()
    }

    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<i64>()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<i64> for RecentKeys {
    /// Rebuilds from stored fingerprints, keeping the last [`RECENT_CAPACITY`].
    fn from_iter<I: IntoIterator<Item = i64>>(iter: I) -> Self {
        let mut keys = RecentKeys::default();
        for print in iter {
            keys.insert_fingerprint(print);
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_which_key_a_new_one_would_push_out() {
        let mut keys = RecentKeys::default();
        for i in 0..RECENT_CAPACITY {
            assert_eq!(keys.next_to_forget(), None, "not full at {i}");
            keys.insert(&format!("k{i}"));
        }
        assert_eq!(keys.next_to_forget(), Some(fingerprint("k0")));
        keys.insert("new");
        assert!(!keys.contains("k0"));
        assert_eq!(keys.next_to_forget(), Some(fingerprint("k1")));
    }

    #[test]
    fn remembers_each_key_once_and_forgets_the_oldest() {
        let mut keys = RecentKeys::default();
        assert!(keys.insert("wamid.a"));
        assert!(!keys.insert("wamid.a"));
        assert!(keys.contains("wamid.a"));
        assert!(!keys.contains("wamid.a:read"));
        for i in 0..RECENT_CAPACITY {
            keys.insert(&format!("k{i}"));
        }
        assert_eq!(keys.len(), RECENT_CAPACITY);
        assert!(
            !keys.contains("wamid.a"),
            "the oldest key is dropped at capacity"
        );
        assert!(keys.contains(&format!("k{}", RECENT_CAPACITY - 1)));
        let round_trip: RecentKeys = keys.fingerprints().collect();
        assert_eq!(round_trip, keys);
    }
}
