//! Contacts, IC links, purchases, receipt claims and the write-behind flush, in the embedded store.

use super::*;

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
}
