//! One contact as the index keeps it: what the reference evaluator reads (for the contacts
//! the bitmaps leave undecided) and what a member list shows. Compact: the purchase ledger
//! keeps dates and amounts only (purchase ids matter for deduplication, which the shard has
//! done), and the lifetime spending is computed once.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::campaign::RecipientFacts;
use crate::domain::contact::{InteractionStats, WhatsappStatus};
use crate::domain::money::Money;
use crate::domain::person::{Gender, MaritalStatus};
use crate::domain::phone::PhoneNumber;
use crate::domain::segment::{ContactFacts, MalaysianState};
use crate::domain::spending::{summarize, SpendingStats};
use crate::domain::tier::Tier;
use crate::topics::contacts::ContactState;

#[derive(Clone, Debug)]
pub struct IndexedContact {
    pub phone_number: PhoneNumber,
    pub name: Option<Box<str>>,
    pub gender: Option<Gender>,
    pub marital_status: Option<MaritalStatus>,
    pub state: Option<Option<MalaysianState>>,
    pub date_of_birth: Option<NaiveDate>,
    pub customer_tier: Tier,
    pub whatsapp_status: WhatsappStatus,
    pub marketing_opt_in: bool,
    pub interactions: InteractionStats,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Retailer attributes by key: a sorted slice, not a map (a B-tree node costs over
    /// 600 bytes however few keys a contact has).
    pub attributes: Box<[(Box<str>, serde_json::Value)]>,
    /// When campaign messages were sent to the contact lately (for the frequency cap).
    pub marketing_sends: Box<[DateTime<Utc>]>,
    /// (date, amount) of every purchase, by date.
    purchases: Box<[(NaiveDate, Money)]>,
    lifetime: SpendingStats,
}

impl From<&ContactState> for IndexedContact {
    fn from(state: &ContactState) -> Self {
        let mut purchases: Vec<(NaiveDate, Money)> = state
            .purchases
            .entries()
            .map(|(_, e)| (e.purchased_on, e.amount))
            .collect();
        purchases.sort_unstable_by_key(|(day, _)| *day);
        IndexedContact {
            phone_number: state.phone_number.clone(),
            name: state.name.as_deref().map(Box::from),
            gender: state.gender,
            marital_status: state.marital_status,
            state: state.state.as_deref().map(MalaysianState::from_name),
            date_of_birth: state.date_of_birth,
            customer_tier: state.customer_tier,
            whatsapp_status: state.whatsapp_status,
            marketing_opt_in: state.marketing_opt_in,
            interactions: state.interactions,
            created_at: state.created_at,
            updated_at: state.updated_at,
            // BTreeMap iteration is in key order: the slice is sorted.
            attributes: state
                .attributes
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (Box::from(k.as_str()), v.clone()))
                .collect(),
            lifetime: state.purchases.stats(),
            marketing_sends: state.campaign_touches.iter().map(|t| t.sent_at).collect(),
            purchases: purchases.into_boxed_slice(),
        }
    }
}

impl IndexedContact {
    pub fn lifetime(&self) -> &SpendingStats {
        &self.lifetime
    }

    /// The day of the latest purchase, if any.
    pub fn last_purchase(&self) -> Option<NaiveDate> {
        self.purchases.last().map(|(day, _)| *day)
    }

    /// Heap and inline bytes held for this contact (an estimate for the memory gauge).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.phone_number.as_str().len()
            + self.name.as_ref().map_or(0, |n| n.len())
            + self.purchases.len() * std::mem::size_of::<(NaiveDate, Money)>()
            + self.marketing_sends.len() * std::mem::size_of::<DateTime<Utc>>()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + 64 + v.to_string().len())
                .sum::<usize>()
    }
}

impl ContactFacts for IndexedContact {
    fn phone_number(&self) -> &PhoneNumber {
        &self.phone_number
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn gender(&self) -> Option<Gender> {
        self.gender
    }
    fn marital_status(&self) -> Option<MaritalStatus> {
        self.marital_status
    }
    fn state(&self) -> Option<Option<MalaysianState>> {
        self.state
    }
    fn date_of_birth(&self) -> Option<NaiveDate> {
        self.date_of_birth
    }
    fn customer_tier(&self) -> Tier {
        self.customer_tier
    }
    fn whatsapp_status(&self) -> WhatsappStatus {
        self.whatsapp_status
    }
    fn marketing_opt_in(&self) -> bool {
        self.marketing_opt_in
    }
    fn interactions(&self) -> &InteractionStats {
        &self.interactions
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn attribute(&self, key: &str) -> Option<&serde_json::Value> {
        self.attributes
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| &self.attributes[i].1)
    }
    fn spending(&self) -> SpendingStats {
        self.lifetime
    }
    fn spending_since(&self, since: NaiveDate) -> SpendingStats {
        let from = self.purchases.partition_point(|(day, _)| *day < since);
        summarize(self.purchases[from..].iter().copied())
    }
}

impl RecipientFacts for IndexedContact {
    fn whatsapp_status(&self) -> WhatsappStatus {
        self.whatsapp_status
    }
    fn marketing_opt_in(&self) -> bool {
        self.marketing_opt_in
    }
    fn last_interaction(&self) -> Option<DateTime<Utc>> {
        self.interactions.last_interaction
    }
    fn marketing_sends_since(&self, since: DateTime<Utc>) -> u32 {
        self.marketing_sends.iter().filter(|t| **t >= since).count() as u32
    }
}
