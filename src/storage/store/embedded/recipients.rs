//! Campaign recipients, in the embedded store: one JSON row per (campaign, contact),
//! merged in a write transaction by the domain's rule.

use crate::domain::campaign::{RecipientSteps, RecipientUpdate};
use crate::storage::store::update_to_millis;

use super::*;

#[async_trait]
impl RecipientLedger for EmbeddedStore {
    async fn record_recipients(
        &self,
        campaign_id: &str,
        updates: &[(PhoneNumber, RecipientUpdate)],
    ) -> Result<(), StoreError> {
        const OP: &str = "record_recipients";
        if updates.is_empty() {
            return Ok(());
        }
        let campaign = campaign_id.to_string();
        let updates: Vec<(PhoneNumber, RecipientUpdate)> = updates
            .iter()
            .map(|(phone, update)| (phone.clone(), update_to_millis(update)))
            .collect();
        self.blocking(OP, move |db| {
            let txn = db.begin_write().map_err(err(OP))?;
            {
                let mut table = txn.open_table(RECIPIENTS).map_err(err(OP))?;
                for (phone, update) in &updates {
                    let key = (campaign.as_str(), phone.as_str());
                    let mut steps: RecipientSteps = match table.get(key).map_err(err(OP))? {
                        Some(v) => decode(|| format!("recipient {campaign}/{phone}"), v.value())?,
                        None => RecipientSteps::default(),
                    };
                    steps.apply(update);
                    let bytes = encode(OP, &steps)?;
                    table.insert(key, bytes.as_slice()).map_err(err(OP))?;
                }
            }
            txn.commit().map_err(err(OP))
        })
        .await
    }

    async fn recipient(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Option<RecipientSteps>, StoreError> {
        const OP: &str = "recipient";
        let (campaign, contact) = (campaign_id.to_string(), contact.as_str().to_string());
        self.blocking(OP, move |db| {
            let txn = db.begin_read().map_err(err(OP))?;
            let table = txn.open_table(RECIPIENTS).map_err(err(OP))?;
            let found = table
                .get((campaign.as_str(), contact.as_str()))
                .map_err(err(OP))?;
            found
                .map(|v| decode(|| format!("recipient {campaign}/{contact}"), v.value()))
                .transpose()
        })
        .await
    }

    async fn recipients(
        &self,
        campaign_id: &str,
        from: Option<PageToken>,
        limit: u32,
    ) -> Result<Page<RecipientRow>, StoreError> {
        const OP: &str = "recipients";
        let after = match from {
            Some(PageToken(bytes)) if !bytes.is_empty() => {
                Some(String::from_utf8(bytes).map_err(|_| StoreError::Query {
                    service: SERVICE,
                    operation: OP,
                    detail: "the page token is not one this store issued".into(),
                })?)
            }
            _ => None,
        };
        let campaign = campaign_id.to_string();
        let limit = limit.max(1) as usize;
        self.blocking(OP, move |db| {
            let txn = db.begin_read().map_err(err(OP))?;
            let table = txn.open_table(RECIPIENTS).map_err(err(OP))?;
            let lower = match after.as_deref() {
                Some(last) => Bound::Excluded((campaign.as_str(), last)),
                None => Bound::Included((campaign.as_str(), "")),
            };
            let mut items = Vec::with_capacity(limit);
            let mut more = false;
            for entry in table
                .range::<(&str, &str)>((lower, Bound::Unbounded))
                .map_err(err(OP))?
            {
                let (key, value) = entry.map_err(err(OP))?;
                let (owner, contact) = key.value();
                if owner != campaign {
                    break;
                }
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push(RecipientRow {
                    contact: phone("recipient key", contact)?,
                    steps: decode(|| format!("recipient {campaign}/{contact}"), value.value())?,
                });
            }
            let next = more.then(|| {
                items
                    .last()
                    .map(|r| PageToken(r.contact.as_str().as_bytes().to_vec()))
            });
            Ok(Page {
                items,
                next: next.flatten(),
            })
        })
        .await
    }
}
