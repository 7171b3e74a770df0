//! The contact (customer) record as the domain sees it: what segments filter on and what the
//! admin API shows. Storage and transport types convert to and from this.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::campaign::Touches;
use super::person::{age_on, Gender, MaritalStatus, UnknownVariant};
use super::phone::PhoneNumber;
use super::recent::RecentKeys;
use super::spending::{PurchaseLedger, SpendingStats};
use super::tier::Tier;

/// Whether WhatsApp messages can reach the contact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhatsappStatus {
    #[default]
    Active,
    /// The provider reports the number undeliverable or the user blocked the business.
    Blocked,
    /// The contact opted out of messages (PDPA s.43): permanent until they opt in again.
    Unsubscribed,
}

impl WhatsappStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            WhatsappStatus::Active => "active",
            WhatsappStatus::Blocked => "blocked",
            WhatsappStatus::Unsubscribed => "unsubscribed",
        }
    }
}

impl FromStr for WhatsappStatus {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            WhatsappStatus::Active,
            WhatsappStatus::Blocked,
            WhatsappStatus::Unsubscribed,
        ]
        .into_iter()
        .find(|status| status.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| UnknownVariant {
            what: "WhatsApp status",
            value: s.to_string(),
            expected: "active, blocked, unsubscribed",
        })
    }
}

/// Conversation counters. The response rate is derived, never stored, so it cannot drift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionStats {
    /// Inbound messages from the contact.
    pub message_count: u64,
    pub last_interaction: Option<DateTime<Utc>>,
    /// Business messages sent to the contact.
    pub outbound_count: u64,
    /// Business messages the contact answered.
    pub replied_count: u64,
    /// The last business message sent to the contact: an inbound message after it counts
    /// as a reply.
    #[serde(default)]
    pub last_outbound: Option<DateTime<Utc>>,
}

impl InteractionStats {
    /// Share of business messages the contact answered, 0 to 1; 0 when none were sent.
    pub fn response_rate(&self) -> f64 {
        if self.outbound_count == 0 {
            0.0
        } else {
            (self.replied_count.min(self.outbound_count)) as f64 / self.outbound_count as f64
        }
    }
}

/// An IC number as it may be kept: masked for display, a keyed hash for look-ups, and
/// AEAD ciphertext for the rare lawful need of the full number. Never the clear digits.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProtectedIc {
    pub masked: String,
    pub keyed_hash: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for ProtectedIc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ProtectedIc").field(&self.masked).finish()
    }
}

/// The latest consent change, kept as PDPA evidence: when and through what.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsentChange {
    pub at: DateTime<Utc>,
    /// e.g. "keyword:STOP", "question:consent", "csv:<source>", "admin", "provider:131050".
    pub source: String,
    /// The wording the customer was shown when they gave consent (a question's text, an
    /// import's stated notice), when there was one.
    #[serde(default)]
    pub wording: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub phone_number: PhoneNumber,
    pub name: Option<String>,
    pub gender: Option<Gender>,
    pub date_of_birth: Option<NaiveDate>,
    /// Malaysian state (or federal territory) name, e.g. "Selangor".
    pub state: Option<String>,
    pub marital_status: Option<MaritalStatus>,
    pub whatsapp_status: WhatsappStatus,
    /// Consent to business-initiated (marketing) messages.
    pub marketing_opt_in: bool,
    /// The last opt-in or opt-out, with its time and source.
    pub consent_change: Option<ConsentChange>,
    pub ic: Option<ProtectedIc>,
    pub purchases: PurchaseLedger,
    pub customer_tier: Tier,
    pub interactions: InteractionStats,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Retailer-defined fields (loyalty number, preferred outlet, ...), filterable by custom
    /// segment predicates as `attributes.<key>`.
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Dedupe keys of the latest inbound events applied to this contact (see
    /// [`RecentKeys`]): stored with the contact so replays change nothing.
    #[serde(default)]
    pub applied_events: RecentKeys,
    /// Campaign messages the contact received lately, with their funnel steps: the
    /// frequency cap and conversions are read from here.
    #[serde(default)]
    pub campaign_touches: Touches,
}

impl Contact {
    /// Approximate heap bytes the contact holds beyond its own size: what the engine's
    /// memory budget (`engine.max_resident_mb`) counts. Attributes are counted by their
    /// JSON length twice over, a fair bound for small maps of short values.
    pub fn heap_bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        let consent = self
            .consent_change
            .as_ref()
            .map_or(0, |c| c.source.capacity() + text(&c.wording));
        let ic = self.ic.as_ref().map_or(0, |ic| {
            ic.masked.capacity() + ic.keyed_hash.capacity() + ic.ciphertext.capacity()
        });
        let attributes = if self.attributes.is_empty() {
            0
        } else {
            serde_json::to_vec(&self.attributes).map_or(0, |json| json.len() * 2)
                + self.attributes.len() * 64
        };
        self.phone_number.as_str().len()
            + text(&self.name)
            + text(&self.state)
            + consent
            + ic
            + self.purchases.heap_bytes()
            + attributes
            + self.applied_events.heap_bytes()
            + self.campaign_touches.heap_bytes()
    }

    pub fn new(phone_number: PhoneNumber, created_at: DateTime<Utc>) -> Self {
        Contact {
            phone_number,
            name: None,
            gender: None,
            date_of_birth: None,
            state: None,
            marital_status: None,
            whatsapp_status: WhatsappStatus::Active,
            marketing_opt_in: false,
            consent_change: None,
            ic: None,
            purchases: PurchaseLedger::default(),
            customer_tier: Tier::Bronze,
            interactions: InteractionStats::default(),
            created_at,
            updated_at: created_at,
            attributes: BTreeMap::new(),
            applied_events: RecentKeys::default(),
            campaign_touches: Touches::default(),
        }
    }

    pub fn age_on(&self, today: NaiveDate) -> Option<u32> {
        self.date_of_birth.and_then(|dob| age_on(dob, today))
    }

    pub fn spending(&self) -> SpendingStats {
        self.purchases.stats()
    }

    /// Moves `updated_at` past `stored_updated_at`, to the next millisecond if need be (stores keep
    /// milliseconds). A contact's row is written as of its `updated_at`, and a store keeps
    /// the later of two writes, so a new version must be later than the one it replaces
    /// even when this process's clock is behind the one that wrote it. Returns whether it
    /// moved.
    pub fn supersede(&mut self, stored_updated_at: DateTime<Utc>) -> bool {
        let stored_ms = stored_updated_at.timestamp_millis();
        if self.updated_at.timestamp_millis() > stored_ms {
            return false;
        }
        match DateTime::from_timestamp_millis(stored_ms + 1) {
            Some(next) => {
                self.updated_at = next;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supersede_moves_updated_at_past_the_stored_version_only_when_behind() {
        let phone = PhoneNumber::parse("0123456789").unwrap();
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap();
        let mut stored = Contact::new(phone.clone(), at(1_000));
        stored.updated_at = at(5_000);

        // A clock behind the stored version's: one millisecond past it.
        let mut behind = stored.clone();
        behind.updated_at = at(4_000);
        assert!(behind.supersede(stored.updated_at));
        assert_eq!(behind.updated_at, at(5_001));

        // The same millisecond counts as behind (a finer part is not stored).
        let mut same = stored.clone();
        same.updated_at = at(5_000) + chrono::Duration::microseconds(700);
        assert!(same.supersede(stored.updated_at));
        assert_eq!(same.updated_at, at(5_001));

        // Already later: unchanged, to the nanosecond.
        let mut ahead = stored.clone();
        let later = at(9_000) + chrono::Duration::microseconds(3);
        ahead.updated_at = later;
        assert!(!ahead.supersede(stored.updated_at));
        assert_eq!(ahead.updated_at, later);
    }

    #[test]
    fn response_rate_is_bounded_and_derived() {
        let mut stats = InteractionStats::default();
        assert_eq!(stats.response_rate(), 0.0);
        stats.outbound_count = 4;
        stats.replied_count = 1;
        assert_eq!(stats.response_rate(), 0.25);
        stats.replied_count = 9;
        assert_eq!(stats.response_rate(), 1.0);
    }
}
