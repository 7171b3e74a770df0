//! Contacts, IC links, purchases, receipt claims and the write-behind flush, in the embedded store.

use super::*;
use crate::storage::store::ErasedContact;

#[async_trait]
impl Contacts for EmbeddedStore {
    async fn load_contact(&self, phone: &PhoneNumber) -> Result<Option<Contact>, StoreError> {
        const OP: &str = "load_contact";
        let key = phone.as_str().to_string();
        self.blocking(OP, move |db| {
            let Some(mut contact) = Self::get_record::<Contact>(db, OP, CONTACTS, &key)? else {
                return Ok(None);
            };
            for purchase in Self::read_purchases(db, &key)? {
                if let Some(event) = purchase.counted_event() {
                    contact.purchases.apply(&event);
                }
            }
            Ok(Some(contact))
        })
        .await
    }
    async fn upsert_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        self.upsert_contacts(std::slice::from_ref(contact)).await
    }
    async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<(), StoreError> {
        let writes: Vec<ContactWrite<'_>> = contacts.iter().map(ContactWrite::whole).collect();
        self.write_behind(&writes, &[], &[]).await
    }
    async fn scan_contacts(
        &self,
        from: Option<PageToken>,
        limit: u32,
    ) -> Result<Page<PhoneNumber>, StoreError> {
        const OP: &str = "scan_contacts";
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
        let limit = limit.max(1) as usize;
        self.blocking(OP, move |db| {
            let txn = db.begin_read().map_err(err(OP))?;
            let table = txn.open_table(CONTACTS).map_err(err(OP))?;
            let lower = match after.as_deref() {
                Some(last) => Bound::Excluded(last),
                None => Bound::Unbounded,
            };
            let mut items = Vec::with_capacity(limit);
            let mut more = false;
            for entry in table
                .range::<&str>((lower, Bound::Unbounded))
                .map_err(err(OP))?
            {
                let (key, _) = entry.map_err(err(OP))?;
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push(phone("contact key", key.value())?);
            }
            let next = if more {
                items
                    .last()
                    .map(|p| PageToken(p.as_str().as_bytes().to_vec()))
            } else {
                None
            };
            Ok(Page { items, next })
        })
        .await
    }
    async fn link_ic(
        &self,
        keyed_hash: &[u8],
        phone_number: &PhoneNumber,
    ) -> Result<IcLink, StoreError> {
        const OP: &str = "link_ic";
        let hash = keyed_hash.to_vec();
        let number = phone_number.as_str().to_string();
        self.blocking(OP, move |db| {
            let txn = db.begin_write().map_err(err(OP))?;
            let outcome = {
                let mut table = txn.open_table(CONTACT_BY_IC).map_err(err(OP))?;
                let existing = table
                    .get(hash.as_slice())
                    .map_err(err(OP))?
                    .map(|v| v.value().to_string());
                match existing {
                    None => {
                        table
                            .insert(hash.as_slice(), number.as_str())
                            .map_err(err(OP))?;
                        IcLink::Linked
                    }
                    Some(linked) if linked == number => IcLink::AlreadyLinked,
                    Some(linked) => IcLink::LinkedToOther(phone("IC link", &linked)?),
                }
            };
            txn.commit().map_err(err(OP))?;
            Ok(outcome)
        })
        .await
    }
    async fn find_by_ic(&self, keyed_hash: &[u8]) -> Result<Option<PhoneNumber>, StoreError> {
        const OP: &str = "find_by_ic";
        let hash = keyed_hash.to_vec();
        self.blocking(OP, move |db| {
            let txn = db.begin_read().map_err(err(OP))?;
            let table = txn.open_table(CONTACT_BY_IC).map_err(err(OP))?;
            let found = table.get(hash.as_slice()).map_err(err(OP))?;
            found.map(|v| phone("IC link", v.value())).transpose()
        })
        .await
    }
    async fn put_purchase(
        &self,
        contact: &PhoneNumber,
        purchase: &Purchase,
    ) -> Result<(), StoreError> {
        self.write_behind(&[], &[], &[(contact.clone(), purchase.clone())])
            .await
    }
    async fn purchases(&self, contact: &PhoneNumber) -> Result<Vec<Purchase>, StoreError> {
        let contact = contact.as_str().to_string();
        self.blocking("purchases", move |db| Self::read_purchases(db, &contact))
            .await
    }
    async fn claim_receipt(
        &self,
        fingerprint: &str,
        purchase_id: &str,
    ) -> Result<Claim, StoreError> {
        const OP: &str = "claim_receipt";
        let fingerprint = fingerprint.to_string();
        let purchase_id = purchase_id.to_string();
        self.blocking(OP, move |db| {
            let txn = db.begin_write().map_err(err(OP))?;
            let outcome = {
                let mut table = txn.open_table(RECEIPT_CLAIMS).map_err(err(OP))?;
                let existing = table
                    .get(fingerprint.as_str())
                    .map_err(err(OP))?
                    .map(|v| v.value().to_string());
                match existing {
                    Some(first) => Claim::AlreadyClaimed(first),
                    None => {
                        table
                            .insert(fingerprint.as_str(), purchase_id.as_str())
                            .map_err(err(OP))?;
                        Claim::Claimed
                    }
                }
            };
            txn.commit().map_err(err(OP))?;
            Ok(outcome)
        })
        .await
    }
    /// All in one write transaction: all or nothing. A contact is one value here, so it
    /// is written whole whatever changed, unless a later version is stored.
    async fn write_behind(
        &self,
        contacts: &[ContactWrite<'_>],
        messages: &[MessageRecord],
        purchases: &[(PhoneNumber, Purchase)],
    ) -> Result<(), StoreError> {
        const OP: &str = "write_behind";
        let contacts = contacts
            .iter()
            .map(|write| {
                let c = write.contact;
                let bytes = encode(OP, &normalized_contact(c))?;
                let version = c.updated_at.timestamp_millis();
                Ok((c.phone_number.as_str().to_string(), version, bytes))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let purchases = purchases
            .iter()
            .map(|(contact, p)| {
                let bytes = encode(OP, &normalized_purchase(p))?;
                Ok((contact.as_str().to_string(), p.purchase_id.clone(), bytes))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let messages = messages.to_vec();
        self.blocking(OP, move |db| {
            let txn = db.begin_write().map_err(err(OP))?;
            for message in &messages {
                Self::update_message_in(
                    &txn,
                    OP,
                    message.contact.as_str(),
                    &message.wamid,
                    |stored| Self::merge_message(stored, message),
                )?;
            }
            {
                let mut table = txn.open_table(PURCHASES).map_err(err(OP))?;
                for (contact, id, bytes) in &purchases {
                    table
                        .insert((contact.as_str(), id.as_str()), bytes.as_slice())
                        .map_err(err(OP))?;
                }
                let mut table = txn.open_table(CONTACTS).map_err(err(OP))?;
                for (key, version, bytes) in &contacts {
                    let stored: Option<Version> = table
                        .get(key.as_str())
                        .map_err(err(OP))?
                        .map(|row| decode(|| format!("contact {key}"), row.value()))
                        .transpose()?;
                    if stored.is_some_and(|s| s.updated_at.timestamp_millis() >= *version) {
                        continue; // this version or a later one is stored
                    }
                    table
                        .insert(key.as_str(), bytes.as_slice())
                        .map_err(err(OP))?;
                }
            }
            txn.commit().map_err(err(OP))
        })
        .await
    }
    /// One write transaction: the contact's key ranges, and a scan of the tables keyed by
    /// campaign or request (an erasure is rare; those tables are not keyed by contact).
    async fn erase_contact(&self, phone: &PhoneNumber) -> Result<ErasedContact, StoreError> {
        const OP: &str = "erase_contact";
        let contact = phone.as_str().to_string();
        self.blocking(OP, move |db| {
            let txn = db.begin_write().map_err(err(OP))?;
            let mut erased = ErasedContact::default();
            {
                let mut contacts = txn.open_table(CONTACTS).map_err(err(OP))?;
                erased.found = contacts
                    .remove(contact.as_str())
                    .map_err(err(OP))?
                    .is_some();
                erased.rows += u64::from(erased.found);
            }
            // Rows keyed by the contact first lie in [(contact, ..), (contact + "\0", ..)):
            // "\0" makes the least string after the contact's.
            let (first, after) = (contact.as_str(), format!("{contact}\0"));
            txn.open_table(CONTACT_BY_IC)
                .map_err(err(OP))?
                .retain(|_, owner| {
                    let theirs = owner == first;
                    erased.rows += u64::from(theirs);
                    !theirs
                })
                .map_err(err(OP))?;
            for table in [PURCHASES, MESSAGES] {
                txn.open_table(table)
                    .map_err(err(OP))?
                    .retain_in((first, "")..(after.as_str(), ""), |_, _| {
                        erased.rows += 1;
                        false
                    })
                    .map_err(err(OP))?;
            }
            txn.open_table(REACHES)
                .map_err(err(OP))?
                .retain(|(_, owner), _| owner != first)
                .map_err(err(OP))?;
            txn.open_table(MESSAGES_BY_TIME)
                .map_err(err(OP))?
                .retain_in(
                    (first, i64::MIN, "")..(after.as_str(), i64::MIN, ""),
                    |_, _| false,
                )
                .map_err(err(OP))?;
            {
                let mut claims = txn.open_table(SEND_CLAIMS).map_err(err(OP))?;
                let mut requests = Vec::new();
                for entry in claims.iter().map_err(err(OP))? {
                    let (key, _) = entry.map_err(err(OP))?;
                    let (request, owner) = key.value();
                    if owner == contact {
                        requests.push(request.to_string());
                    }
                }
                let mut results = txn.open_table(SEND_RESULTS).map_err(err(OP))?;
                for request in requests {
                    claims
                        .remove((request.as_str(), contact.as_str()))
                        .map_err(err(OP))?;
                    results
                        .remove(format!("{request}\0{contact}").as_str())
                        .map_err(err(OP))?;
                    erased.rows += 1;
                }
            }
            {
                let mut recipients = txn.open_table(RECIPIENTS).map_err(err(OP))?;
                let mut campaigns = Vec::new();
                for entry in recipients.iter().map_err(err(OP))? {
                    let (key, _) = entry.map_err(err(OP))?;
                    let (campaign, owner) = key.value();
                    if owner == contact {
                        campaigns.push(campaign.to_string());
                    }
                }
                for campaign in campaigns {
                    recipients
                        .remove((campaign.as_str(), contact.as_str()))
                        .map_err(err(OP))?;
                    erased.rows += 1;
                }
            }
            txn.commit().map_err(err(OP))?;
            Ok(erased)
        })
        .await
    }
}
