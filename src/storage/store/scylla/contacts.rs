//! Contacts, IC links, purchases, receipt claims and the write-behind flush, in the CQL store.

use super::*;
use crate::storage::store::ErasedContact;

#[async_trait]
impl Contacts for ScyllaStore {
    async fn load_contact(&self, phone: &PhoneNumber) -> Result<Option<Contact>, StoreError> {
        const OP: &str = "load_contact";
        let (rows, purchases) = futures::try_join!(
            self.rows::<ContactRow>(OP, &self.st.contacts.load_contact, (phone.as_str(),)),
            self.purchases(phone),
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let mut contact = row.into_contact()?;
        for purchase in &purchases {
            if let Some(event) = purchase.counted_event() {
                contact.purchases.apply(&event);
            }
        }
        Ok(Some(contact))
    }
    async fn upsert_contact(&self, contact: &Contact) -> Result<(), StoreError> {
        let values = ContactValues::new(ContactWrite::whole(contact), Absent::Clear)?;
        self.exec("upsert_contact", &self.st.contacts.upsert_contact, values)
            .await
            .map(drop)
    }
    async fn upsert_contacts(&self, contacts: &[Contact]) -> Result<(), StoreError> {
        let writes: Vec<ContactWrite<'_>> = contacts.iter().map(ContactWrite::whole).collect();
        self.write_partitions(&writes, &[], &[], Absent::Clear)
            .await
    }
    async fn scan_contacts(
        &self,
        from: Option<PageToken>,
        limit: u32,
    ) -> Result<Page<PhoneNumber>, StoreError> {
        const OP: &str = "scan_contacts";
        let mut statement = self.st.contacts.scan_contacts.clone();
        statement.set_page_size(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        let state = match from {
            Some(PageToken(bytes)) if !bytes.is_empty() => PagingState::new_from_raw_bytes(bytes),
            _ => PagingState::start(),
        };
        let (result, paging) = self
            .session
            .execute_single_page(&statement, (), state)
            .await
            .map_err(|e| errors::execution(OP, e))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| errors::query(OP, e))?;
        let items = rows
            .rows::<(String,)>()
            .map_err(|e| errors::query(OP, e))?
            .map(|row| {
                let (phone,) = row.map_err(|e| errors::query(OP, e))?;
                rows::parse_phone("contact key", &phone)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The driver's paging state is the token: opaque, stable across processes.
        let next = match paging {
            PagingStateResponse::HasMorePages { state } => state
                .as_bytes_slice()
                .map(|bytes| PageToken(bytes.to_vec())),
            PagingStateResponse::NoMorePages => None,
        };
        Ok(Page { items, next })
    }
    async fn link_ic(&self, keyed_hash: &[u8], phone: &PhoneNumber) -> Result<IcLink, StoreError> {
        const OP: &str = "link_ic";
        let existing = self
            .lwt(
                OP,
                &self.st.contacts.link_ic,
                (keyed_hash, phone.as_str(), Utc::now()),
            )
            .await?;
        let Some(existing) = existing else {
            return Ok(IcLink::Linked);
        };
        let linked = text_column(OP, &existing, "phone")?;
        if linked == phone.as_str() {
            Ok(IcLink::AlreadyLinked)
        } else {
            Ok(IcLink::LinkedToOther(rows::parse_phone(
                "IC link", &linked,
            )?))
        }
    }
    async fn find_by_ic(&self, keyed_hash: &[u8]) -> Result<Option<PhoneNumber>, StoreError> {
        let rows: Vec<(Option<String>,)> = self
            .rows("find_by_ic", &self.st.contacts.find_by_ic, (keyed_hash,))
            .await?;
        rows.into_iter()
            .next()
            .and_then(|(phone,)| phone)
            .map(|phone| rows::parse_phone("IC link", &phone))
            .transpose()
    }
    async fn put_purchase(
        &self,
        contact: &PhoneNumber,
        purchase: &Purchase,
    ) -> Result<(), StoreError> {
        let purchase = (contact.clone(), purchase.clone());
        self.write_partitions(&[], &[], std::slice::from_ref(&purchase), Absent::Clear)
            .await
    }
    async fn purchases(&self, contact: &PhoneNumber) -> Result<Vec<Purchase>, StoreError> {
        let rows: Vec<PurchaseRow> = self
            .all_rows(
                "purchases",
                &self.st.contacts.purchases,
                (contact.as_str(),),
            )
            .await?;
        let mut purchases = rows
            .into_iter()
            .map(PurchaseRow::into_purchase)
            .collect::<Result<Vec<_>, _>>()?;
        purchases
            .sort_by(|a, b| (a.recorded_at, &a.purchase_id).cmp(&(b.recorded_at, &b.purchase_id)));
        Ok(purchases)
    }
    /// Partition deletes for the tables keyed by contact; the IC link by the hash on the
    /// contact's row; recipient rows per campaign of the catalog; send claims and results
    /// found by a filtering scan (an erasure is rare; those tables are keyed by request).
    async fn erase_contact(&self, phone: &PhoneNumber) -> Result<ErasedContact, StoreError> {
        const OP: &str = "erase_contact";
        let ks = &self.keyspace;
        let prepare = |cql: String| super::prepare(&self.session, cql, super::Kind::Idempotent);
        let (ic_of, delete_contact, delete_link, delete_purchases, delete_messages, delete_index, delete_inbound, claims_of, delete_claim, delete_result, delete_recipient, reaches_of, delete_reach) = futures::try_join!(
            prepare(format!("SELECT ic_keyed_hash FROM {ks}.contacts WHERE phone = ?")),
            prepare(format!("DELETE FROM {ks}.contacts WHERE phone = ?")),
            prepare(format!("DELETE FROM {ks}.contact_by_ic WHERE ic_keyed_hash = ?")),
            prepare(format!("DELETE FROM {ks}.purchases WHERE contact = ?")),
            prepare(format!("DELETE FROM {ks}.messages WHERE contact = ?")),
            prepare(format!("DELETE FROM {ks}.messages_by_time WHERE contact = ?")),
            prepare(format!("DELETE FROM {ks}.inbound_messages WHERE contact = ?")),
            prepare(format!("SELECT campaign_id FROM {ks}.send_claims WHERE contact = ? ALLOW FILTERING")),
            prepare(format!("DELETE FROM {ks}.send_claims WHERE campaign_id = ? AND contact = ?")),
            prepare(format!("DELETE FROM {ks}.send_results WHERE campaign_id = ? AND contact = ?")),
            prepare(format!("DELETE FROM {ks}.campaign_recipients WHERE campaign_id = ? AND bucket = ? AND contact = ?")),
            prepare(format!("SELECT day, at FROM {ks}.messaging_reach WHERE contact = ? ALLOW FILTERING")),
            prepare(format!("DELETE FROM {ks}.messaging_reach WHERE day = ? AND at = ? AND contact = ?")),
        )?;
        let contact = phone.as_str();
        let mut erased = ErasedContact::default();
        let hashes: Vec<(Option<Vec<u8>>,)> = self.all_rows(OP, &ic_of, (contact,)).await?;
        erased.found = !hashes.is_empty();
        for hash in hashes.into_iter().filter_map(|(h,)| h) {
            self.exec(OP, &delete_link, (hash,)).await?;
            erased.rows += 1;
        }
        erased.rows += self.purchases(phone).await?.len() as u64;
        for statement in [
            &delete_purchases,
            &delete_messages,
            &delete_index,
            &delete_inbound,
        ] {
            self.exec(OP, statement, (contact,)).await?;
        }
        // At most two days of rows: the table is small.
        let reaches: Vec<(i32, DateTime<Utc>)> = self.all_rows(OP, &reaches_of, (contact,)).await?;
        for (day, at) in reaches {
            self.exec(OP, &delete_reach, (day, at, contact)).await?;
        }
        let claims: Vec<(String,)> = self.all_rows(OP, &claims_of, (contact,)).await?;
        for (request,) in claims {
            self.exec(OP, &delete_claim, (&request, contact)).await?;
            self.exec(OP, &delete_result, (&request, contact)).await?;
            erased.rows += 1;
        }
        for campaign in self.campaigns().await? {
            let bucket = super::recipients::bucket(phone);
            self.exec(
                OP,
                &delete_recipient,
                (&campaign.campaign_id, bucket, contact),
            )
            .await?;
        }
        self.exec(OP, &delete_contact, (contact,)).await?;
        erased.rows += u64::from(erased.found);
        Ok(erased)
    }
    async fn claim_receipt(
        &self,
        fingerprint: &str,
        purchase_id: &str,
    ) -> Result<Claim, StoreError> {
        const OP: &str = "claim_receipt";
        let existing = self
            .lwt(
                OP,
                &self.st.contacts.claim_receipt,
                (fingerprint, purchase_id, Utc::now()),
            )
            .await?;
        match existing {
            None => Ok(Claim::Claimed),
            Some(row) => Ok(Claim::AlreadyClaimed(text_column(OP, &row, "purchase_id")?)),
        }
    }
    /// Purchases first, in a step of their own: an unlogged batch is not applied all or
    /// nothing across tables (one mutation per table, and with tablets separate replicas),
    /// and a contact's row marks its events as applied, so it must not be stored without
    /// the purchases they produced. Flushes have purchases rarely (receipts), so this
    /// costs a round trip only then. Message rows share their contact's batch (the engine
    /// sends the rows a replay would look up in a write of their own, after it).
    async fn write_behind(
        &self,
        contacts: &[ContactWrite<'_>],
        messages: &[MessageRecord],
        purchases: &[(PhoneNumber, Purchase)],
    ) -> Result<(), StoreError> {
        if !purchases.is_empty() {
            self.write_partitions(&[], &[], purchases, Absent::Keep)
                .await?;
        }
        self.write_partitions(contacts, messages, &[], Absent::Keep)
            .await
    }
}

/// The prepared statements of this aggregate.
pub(super) struct ContactStatements {
    pub(super) load_contact: PreparedStatement,
    pub(super) upsert_contact: PreparedStatement,
    pub(super) scan_contacts: PreparedStatement,
    pub(super) link_ic: PreparedStatement,
    pub(super) find_by_ic: PreparedStatement,
    pub(super) put_purchase: PreparedStatement,
    pub(super) purchases: PreparedStatement,
    pub(super) claim_receipt: PreparedStatement,
}

impl ContactStatements {
    pub(super) async fn prepare(s: &Session, ks: &str) -> Result<Self, StoreError> {
        use Kind::{Idempotent as I, Lwt};
        let (load_contact, upsert_contact, scan_contacts, link_ic, find_by_ic, put_purchase, purchases, claim_receipt,) = futures::try_join!(
            prepare(s, format!("SELECT {CONTACT_COLUMNS} FROM {ks}.contacts WHERE phone = ?"), I),
            prepare(s, format!("INSERT INTO {ks}.contacts ({CONTACT_COLUMNS}) VALUES ({}) USING TIMESTAMP ?", placeholders(CONTACT_COLUMNS)), I),
            prepare(s, format!("SELECT phone FROM {ks}.contacts"), I),
            prepare(s, format!("INSERT INTO {ks}.contact_by_ic (ic_keyed_hash, phone, linked_at) VALUES (?, ?, ?) IF NOT EXISTS"), Lwt),
            prepare(s, format!("SELECT phone FROM {ks}.contact_by_ic WHERE ic_keyed_hash = ?"), I),
            prepare(s, format!("INSERT INTO {ks}.purchases ({PURCHASE_COLUMNS}) VALUES ({})", placeholders(PURCHASE_COLUMNS)), I),
            prepare(s, format!("SELECT {PURCHASE_COLUMNS} FROM {ks}.purchases WHERE contact = ?"), I),
            prepare(s, format!("INSERT INTO {ks}.receipt_claims (fingerprint, purchase_id, claimed_at) VALUES (?, ?, ?) IF NOT EXISTS"), Lwt),
        )?;
        Ok(ContactStatements {
            load_contact,
            upsert_contact,
            scan_contacts,
            link_ic,
            find_by_ic,
            put_purchase,
            purchases,
            claim_receipt,
        })
    }
}
