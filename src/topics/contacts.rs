//! crm.contacts: the compacted changelog of contacts' indexable state. Keyed by the
//! contact's wa_id and co-partitioned with wa.inbound, so the owner of a wa.inbound
//! partition can rebuild its segment index from the same partition of this topic. The
//! broker keeps the latest record per key; an erased contact is a tombstone (an empty
//! payload), which compaction removes in turn.
//!
//! The state holds every field a segment can read, purchase history included, and never
//! the IC number (not even protected) nor replay fingerprints: an index needs neither.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::campaign::Touches;
use crate::domain::contact::{ConsentChange, Contact, InteractionStats, WhatsappStatus};
use crate::domain::person::{Gender, MaritalStatus};
use crate::domain::phone::PhoneNumber;
use crate::domain::recent::RecentKeys;
use crate::domain::spending::PurchaseLedger;
use crate::domain::tier::Tier;

pub const TOPIC: &str = "crm.contacts";

/// The record key of a contact: its E.164 digits, as wa.inbound keys its messages, so
/// both topics put a contact in the same partition.
pub fn key(phone: &PhoneNumber) -> Vec<u8> {
    phone.as_str().as_bytes().to_vec()
}

/// A contact as a segment index sees it. `updated_at` is the contact's version: of two
/// records of one contact the later version is the state (a replay writes the same
/// version again, which changes nothing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    pub phone_number: PhoneNumber,
    pub name: Option<String>,
    pub gender: Option<Gender>,
    pub date_of_birth: Option<NaiveDate>,
    pub state: Option<String>,
    pub marital_status: Option<MaritalStatus>,
    pub whatsapp_status: WhatsappStatus,
    pub marketing_opt_in: bool,
    pub consent_change: Option<ConsentChange>,
    pub purchases: PurchaseLedger,
    pub customer_tier: Tier,
    pub interactions: InteractionStats,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Campaign messages received lately (for the frequency cap at planning).
    #[serde(default, skip_serializing_if = "Touches::is_empty")]
    pub campaign_touches: Touches,
}

impl From<&Contact> for ContactState {
    fn from(c: &Contact) -> Self {
        ContactState {
            phone_number: c.phone_number.clone(),
            name: c.name.clone(),
            gender: c.gender,
            date_of_birth: c.date_of_birth,
            state: c.state.clone(),
            marital_status: c.marital_status,
            whatsapp_status: c.whatsapp_status,
            marketing_opt_in: c.marketing_opt_in,
            consent_change: c.consent_change.clone(),
            purchases: c.purchases.clone(),
            customer_tier: c.customer_tier,
            interactions: c.interactions,
            created_at: c.created_at,
            updated_at: c.updated_at,
            attributes: c.attributes.clone(),
            campaign_touches: c.campaign_touches.clone(),
        }
    }
}

impl ContactState {
    /// The contact the reference evaluator (`domain::segment`) reads: what the index must
    /// agree with. It has no IC and no fingerprints, which no segment reads.
    pub fn to_contact(&self) -> Contact {
        Contact {
            phone_number: self.phone_number.clone(),
            name: self.name.clone(),
            gender: self.gender,
            date_of_birth: self.date_of_birth,
            state: self.state.clone(),
            marital_status: self.marital_status,
            whatsapp_status: self.whatsapp_status,
            marketing_opt_in: self.marketing_opt_in,
            consent_change: self.consent_change.clone(),
            ic: None,
            purchases: self.purchases.clone(),
            customer_tier: self.customer_tier,
            interactions: self.interactions,
            created_at: self.created_at,
            updated_at: self.updated_at,
            attributes: self.attributes.clone(),
            applied_events: RecentKeys::default(),
            campaign_touches: self.campaign_touches.clone(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a contact state serializes")
    }

    /// The state of a record's payload; `None` for a tombstone (an erased contact).
    pub fn decode(payload: &[u8]) -> Result<Option<ContactState>, serde_json::Error> {
        if payload.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(payload).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contact::ProtectedIc;

    #[test]
    fn state_round_trips_without_the_ic_and_tombstones_decode_to_none() {
        let phone = PhoneNumber::parse("0123456789").unwrap();
        let mut contact = Contact::new(phone.clone(), Utc::now());
        contact.name = Some("Siti".into());
        contact.gender = Some(Gender::Female);
        contact.attributes.insert("outlet".into(), "KLCC".into());
        contact.ic = Some(ProtectedIc {
            masked: "900101-**-****".into(),
            keyed_hash: vec![1, 2, 3],
            ciphertext: vec![4, 5, 6],
        });
        let state = ContactState::from(&contact);
        let payload = state.encode();
        let text = String::from_utf8(payload.clone()).unwrap();
        assert!(!text.contains("900101"), "no IC in the changelog: {text}");
        let back = ContactState::decode(&payload).unwrap().unwrap();
        assert_eq!(back, state);
        let mut expected = contact.clone();
        expected.ic = None;
        assert_eq!(back.to_contact(), expected);
        assert_eq!(ContactState::decode(b"").unwrap(), None);
        assert_eq!(key(&phone), b"60123456789".to_vec());
    }
}
