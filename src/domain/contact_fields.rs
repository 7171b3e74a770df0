//! Which stored fields of a contact differ between two versions of it. A write-behind
//! flush writes only those: every written cell costs the database CPU, and most flushes
//! change a contact's interaction stats and applied-event keys and nothing else.

use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use super::contact::Contact;

/// A stored field (or group of fields written together) of a contact. The purchase
/// ledger is not one: purchases are stored as their own rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ContactField {
    Name,
    Gender,
    DateOfBirth,
    State,
    MaritalStatus,
    WhatsappStatus,
    MarketingOptIn,
    /// Time and source of the last consent change.
    ConsentChange,
    /// Masked text, keyed hash and ciphertext of the IC number.
    Ic,
    CustomerTier,
    MessageCount,
    LastInteraction,
    OutboundCount,
    RepliedCount,
    LastOutbound,
    AppliedEvents,
    Attributes,
    CampaignTouches,
    CreatedAt,
    UpdatedAt,
}

impl ContactField {
    pub const EVERY: [ContactField; 20] = [
        ContactField::Name,
        ContactField::Gender,
        ContactField::DateOfBirth,
        ContactField::State,
        ContactField::MaritalStatus,
        ContactField::WhatsappStatus,
        ContactField::MarketingOptIn,
        ContactField::ConsentChange,
        ContactField::Ic,
        ContactField::CustomerTier,
        ContactField::MessageCount,
        ContactField::LastInteraction,
        ContactField::OutboundCount,
        ContactField::RepliedCount,
        ContactField::LastOutbound,
        ContactField::AppliedEvents,
        ContactField::Attributes,
        ContactField::CampaignTouches,
        ContactField::CreatedAt,
        ContactField::UpdatedAt,
    ];

    fn bit(self) -> u32 {
        1 << self as u8
    }
}

/// What a resident contact remembers of its last stored version: a 64-bit keyed digest of
/// each stored field and the stored `updated_at`. 176 bytes and no heap, where a second copy
/// of the contact cost ~600 (issue 16: a resident contact within 1 KB). A changed field
/// goes unwritten only if its digest collides, about once in 2^64 changes; the keys are
/// drawn per process (digests are never stored), so no input can aim at a collision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFields {
    digests: [u64; ContactField::EVERY.len()],
    pub updated_at: DateTime<Utc>,
}

impl StoredFields {
    pub fn of(contact: &Contact) -> StoredFields {
        // Every field named: a new field of Contact must be considered in `digest` (and the
        // purchase ledger is stored as rows of its own).
        let Contact {
            phone_number: _,
            name: _,
            gender: _,
            date_of_birth: _,
            state: _,
            marital_status: _,
            whatsapp_status: _,
            marketing_opt_in: _,
            consent_change: _,
            ic: _,
            purchases: _,
            customer_tier: _,
            interactions: _,
            created_at: _,
            updated_at: _,
            attributes: _,
            applied_events: _,
            campaign_touches: _,
        } = contact;
        StoredFields {
            digests: ContactField::EVERY.map(|field| field.digest(contact)),
            updated_at: contact.updated_at,
        }
    }

    /// The fields of `now` that differ from this stored version.
    pub fn changed(&self, now: &Contact) -> ContactFields {
        self.changed_to(&StoredFields::of(now))
    }

    /// The fields whose digests differ from `now`'s (a version already digested).
    pub fn changed_to(&self, now: &StoredFields) -> ContactFields {
        ContactField::EVERY
            .into_iter()
            .zip(self.digests.iter().zip(now.digests))
            .filter(|(_, (stored, now))| **stored != *now)
            .map(|(field, _)| field)
            .collect()
    }
}

/// SipHash keys drawn once per process.
fn digest_keys() -> &'static RandomState {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    KEYS.get_or_init(RandomState::new)
}

impl ContactField {
    fn digest(self, c: &Contact) -> u64 {
        let keys = digest_keys();
        let i = &c.interactions;
        match self {
            ContactField::Name => keys.hash_one(&c.name),
            ContactField::Gender => keys.hash_one(c.gender),
            ContactField::DateOfBirth => keys.hash_one(c.date_of_birth),
            ContactField::State => keys.hash_one(&c.state),
            ContactField::MaritalStatus => keys.hash_one(c.marital_status),
            ContactField::WhatsappStatus => keys.hash_one(c.whatsapp_status),
            ContactField::MarketingOptIn => keys.hash_one(c.marketing_opt_in),
            ContactField::ConsentChange => keys.hash_one(&c.consent_change),
            ContactField::Ic => keys.hash_one(&c.ic),
            ContactField::CustomerTier => keys.hash_one(c.customer_tier),
            ContactField::MessageCount => keys.hash_one(i.message_count),
            ContactField::LastInteraction => keys.hash_one(i.last_interaction),
            ContactField::OutboundCount => keys.hash_one(i.outbound_count),
            ContactField::RepliedCount => keys.hash_one(i.replied_count),
            ContactField::LastOutbound => keys.hash_one(i.last_outbound),
            ContactField::AppliedEvents => keys.hash_one(&c.applied_events),
            // JSON values have no Hash: their encoding stands in. Equal maps in another
            // key order encode differently, which costs a write, never a lost one.
            ContactField::Attributes if c.attributes.is_empty() => keys.hash_one(0u8),
            ContactField::Attributes => {
                keys.hash_one(serde_json::to_vec(&c.attributes).unwrap_or_default())
            }
            ContactField::CampaignTouches => keys.hash_one(&c.campaign_touches),
            ContactField::CreatedAt => keys.hash_one(c.created_at),
            ContactField::UpdatedAt => keys.hash_one(c.updated_at),
        }
    }
}

/// A set of [`ContactField`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContactFields(u32);

impl ContactFields {
    /// Every field: what to write when the stored row may not exist or is unknown.
    pub const ALL: ContactFields = ContactFields((1 << ContactField::EVERY.len()) - 1);
    pub const NONE: ContactFields = ContactFields(0);

    /// The fields that differ from `before` (the version last stored) to `after`.
    pub fn changed(before: &Contact, after: &Contact) -> Self {
        StoredFields::of(before).changed(after)
    }

    pub fn contains(self, field: ContactField) -> bool {
        self.0 & field.bit() != 0
    }

    pub fn insert(&mut self, field: ContactField) {
        self.0 |= field.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }
}

impl FromIterator<ContactField> for ContactFields {
    fn from_iter<I: IntoIterator<Item = ContactField>>(fields: I) -> Self {
        let mut set = ContactFields::NONE;
        for field in fields {
            set.insert(field);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::domain::contact::{ConsentChange, ProtectedIc, WhatsappStatus};
    use crate::domain::person::{Gender, MaritalStatus};
    use crate::domain::phone::PhoneNumber;
    use crate::domain::tier::Tier;

    fn contact() -> Contact {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        Contact::new(PhoneNumber::parse("60123456789").unwrap(), at)
    }

    #[test]
    fn the_stored_digests_ignore_the_ledger_and_remember_updated_at() {
        use crate::domain::money::Money;
        use crate::domain::spending::PurchaseEvent;
        let mut c = contact();
        c.name = Some("Aminah".into());
        let stored = StoredFields::of(&c);
        c.purchases.apply(&PurchaseEvent {
            purchase_id: "p1".into(),
            amount: Money::from_sen(12_345),
            purchased_on: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
        });
        assert!(stored.changed(&c).is_empty());
        assert_eq!(stored.updated_at, c.updated_at);
    }

    #[test]
    fn attributes_equal_in_another_order_may_cost_a_write_but_a_change_is_always_seen() {
        let mut a = contact();
        a.attributes.insert("x".into(), serde_json::json!(1));
        a.attributes.insert("y".into(), serde_json::json!(2));
        let stored = StoredFields::of(&a);
        let mut b = a.clone();
        b.attributes.insert("y".into(), serde_json::json!(3));
        assert!(stored.changed(&b).contains(ContactField::Attributes));
        b.attributes.insert("y".into(), serde_json::json!(2));
        assert!(stored.changed(&b).is_empty());
    }

    #[test]
    fn the_same_contact_has_no_changes() {
        let c = contact();
        assert!(ContactFields::changed(&c, &c.clone()).is_empty());
    }

    #[test]
    fn every_field_is_in_all_and_counted_once() {
        assert_eq!(ContactFields::ALL.len(), ContactField::EVERY.len());
        for field in ContactField::EVERY {
            assert!(ContactFields::ALL.contains(field), "{field:?}");
        }
        let distinct: ContactFields = ContactField::EVERY.into_iter().collect();
        assert_eq!(distinct, ContactFields::ALL);
    }

    #[test]
    fn a_text_message_changes_the_interaction_fields_only() {
        let before = contact();
        let mut after = before.clone();
        let at = before.created_at + Duration::minutes(5);
        after.interactions.message_count += 1;
        after.interactions.last_interaction = Some(at);
        after.applied_events.insert("wamid.1");
        after.updated_at = at;
        let changed = ContactFields::changed(&before, &after);
        let expected: ContactFields = [
            ContactField::MessageCount,
            ContactField::LastInteraction,
            ContactField::AppliedEvents,
            ContactField::UpdatedAt,
        ]
        .into_iter()
        .collect();
        assert_eq!(changed, expected);
    }

    #[test]
    fn each_field_is_detected_on_its_own() {
        let base = contact();
        let later = base.created_at + Duration::days(1);
        type Edit = Box<dyn Fn(&mut Contact)>;
        let edits: Vec<(ContactField, Edit)> = vec![
            (
                ContactField::Name,
                Box::new(|c| c.name = Some("Aminah".into())),
            ),
            (
                ContactField::Gender,
                Box::new(|c| c.gender = Some(Gender::Female)),
            ),
            (
                ContactField::DateOfBirth,
                Box::new(|c| c.date_of_birth = NaiveDate::from_ymd_opt(1990, 5, 1)),
            ),
            (
                ContactField::State,
                Box::new(|c| c.state = Some("Johor".into())),
            ),
            (
                ContactField::MaritalStatus,
                Box::new(|c| c.marital_status = Some(MaritalStatus::Married)),
            ),
            (
                ContactField::WhatsappStatus,
                Box::new(|c| c.whatsapp_status = WhatsappStatus::Unsubscribed),
            ),
            (
                ContactField::MarketingOptIn,
                Box::new(|c| c.marketing_opt_in = true),
            ),
            (
                ContactField::ConsentChange,
                Box::new(move |c| {
                    c.consent_change = Some(ConsentChange {
                        at: later,
                        source: "keyword:START".into(),
                        wording: None,
                    })
                }),
            ),
            (
                ContactField::Ic,
                Box::new(|c| {
                    c.ic = Some(ProtectedIc {
                        masked: "900501-**-***8".into(),
                        keyed_hash: vec![1; 32],
                        ciphertext: vec![2; 40],
                    })
                }),
            ),
            (
                ContactField::CustomerTier,
                Box::new(|c| c.customer_tier = Tier::Gold),
            ),
            (
                ContactField::MessageCount,
                Box::new(|c| c.interactions.message_count = 3),
            ),
            (
                ContactField::LastInteraction,
                Box::new(move |c| c.interactions.last_interaction = Some(later)),
            ),
            (
                ContactField::OutboundCount,
                Box::new(|c| c.interactions.outbound_count = 2),
            ),
            (
                ContactField::RepliedCount,
                Box::new(|c| c.interactions.replied_count = 1),
            ),
            (
                ContactField::LastOutbound,
                Box::new(move |c| c.interactions.last_outbound = Some(later)),
            ),
            (
                ContactField::AppliedEvents,
                Box::new(|c| {
                    c.applied_events.insert("wamid.7");
                }),
            ),
            (
                ContactField::Attributes,
                Box::new(|c| {
                    c.attributes
                        .insert("outlet".into(), serde_json::json!("KLCC"));
                }),
            ),
            (
                ContactField::CampaignTouches,
                Box::new(move |c| {
                    c.campaign_touches.record_send("c1", "wamid.1", later, 7);
                }),
            ),
            (
                ContactField::CreatedAt,
                Box::new(move |c| c.created_at = later),
            ),
            (
                ContactField::UpdatedAt,
                Box::new(move |c| c.updated_at = later),
            ),
        ];
        for (field, edit) in &edits {
            let mut after = base.clone();
            edit(&mut after);
            let expected: ContactFields = [*field].into_iter().collect();
            assert_eq!(ContactFields::changed(&base, &after), expected, "{field:?}");
            assert_eq!(
                StoredFields::of(&base).changed(&after),
                expected,
                "digest of {field:?}"
            );
        }
        assert_eq!(edits.len(), ContactField::EVERY.len());
    }
}
