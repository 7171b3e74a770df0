//! Which stored fields of a contact differ between two versions of it. A write-behind
//! flush writes only those: every written cell costs the database CPU, and most flushes
//! change a contact's interaction stats and applied-event keys and nothing else.

use super::contact::Contact;
use super::spending::PurchaseLedger;

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

    /// Whether this field differs between `before` and `after`.
    fn differs(self, before: &Contact, after: &Contact) -> bool {
        let (b, a) = (before, after);
        let (bi, ai) = (&b.interactions, &a.interactions);
        match self {
            ContactField::Name => b.name != a.name,
            ContactField::Gender => b.gender != a.gender,
            ContactField::DateOfBirth => b.date_of_birth != a.date_of_birth,
            ContactField::State => b.state != a.state,
            ContactField::MaritalStatus => b.marital_status != a.marital_status,
            ContactField::WhatsappStatus => b.whatsapp_status != a.whatsapp_status,
            ContactField::MarketingOptIn => b.marketing_opt_in != a.marketing_opt_in,
            ContactField::ConsentChange => b.consent_change != a.consent_change,
            ContactField::Ic => b.ic != a.ic,
            ContactField::CustomerTier => b.customer_tier != a.customer_tier,
            ContactField::MessageCount => bi.message_count != ai.message_count,
            ContactField::LastInteraction => bi.last_interaction != ai.last_interaction,
            ContactField::OutboundCount => bi.outbound_count != ai.outbound_count,
            ContactField::RepliedCount => bi.replied_count != ai.replied_count,
            ContactField::LastOutbound => bi.last_outbound != ai.last_outbound,
            ContactField::AppliedEvents => b.applied_events != a.applied_events,
            ContactField::Attributes => b.attributes != a.attributes,
            ContactField::CampaignTouches => b.campaign_touches != a.campaign_touches,
            ContactField::CreatedAt => b.created_at != a.created_at,
            ContactField::UpdatedAt => b.updated_at != a.updated_at,
        }
    }
}

/// The contact's stored fields alone, its purchase ledger left empty: all that
/// [`ContactFields::changed`] compares, kept per resident contact without the memory of a
/// long purchase history.
pub fn without_ledger(contact: &Contact) -> Contact {
    // Every field spelled out: a new field of Contact must be considered here (and above).
    Contact {
        phone_number: contact.phone_number.clone(),
        name: contact.name.clone(),
        gender: contact.gender,
        date_of_birth: contact.date_of_birth,
        state: contact.state.clone(),
        marital_status: contact.marital_status,
        whatsapp_status: contact.whatsapp_status,
        marketing_opt_in: contact.marketing_opt_in,
        consent_change: contact.consent_change.clone(),
        ic: contact.ic.clone(),
        purchases: PurchaseLedger::default(),
        customer_tier: contact.customer_tier,
        interactions: contact.interactions,
        created_at: contact.created_at,
        updated_at: contact.updated_at,
        attributes: contact.attributes.clone(),
        applied_events: contact.applied_events.clone(),
        campaign_touches: contact.campaign_touches.clone(),
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
        let mut changed = ContactFields::NONE;
        for field in ContactField::EVERY {
            if field.differs(before, after) {
                changed.insert(field);
            }
        }
        changed
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
    fn without_its_ledger_a_contact_has_the_same_fields() {
        use crate::domain::money::Money;
        use crate::domain::spending::PurchaseEvent;
        let mut c = contact();
        c.name = Some("Aminah".into());
        c.purchases.apply(&PurchaseEvent {
            purchase_id: "p1".into(),
            amount: Money::from_sen(12_345),
            purchased_on: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
        });
        let snapshot = without_ledger(&c);
        assert!(ContactFields::changed(&snapshot, &c).is_empty());
        assert_ne!(snapshot.purchases, c.purchases);
        assert_eq!(snapshot.purchases, PurchaseLedger::default());
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
        }
        assert_eq!(edits.len(), ContactField::EVERY.len());
    }
}
