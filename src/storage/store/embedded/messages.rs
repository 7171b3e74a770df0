//! The message log: messages by contact with their delivery status, in the embedded store.

use super::*;

#[async_trait]
impl MessageLog for EmbeddedStore {
    async fn put_message(&self, message: &MessageRecord) -> Result<(), StoreError> {
        self.put_messages(std::slice::from_ref(message)).await
    }
    /// All in one write transaction (one fsync for a whole flush).
    async fn put_messages(&self, messages: &[MessageRecord]) -> Result<(), StoreError> {
        self.write_behind(&[], messages, &[]).await
    }
    async fn message(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        const OP: &str = "message";
        let contact = contact.as_str().to_string();
        let wamid = wamid.to_string();
        self.blocking(OP, move |db| {
            let txn = db.begin_read().map_err(err(OP))?;
            let table = txn.open_table(MESSAGES).map_err(err(OP))?;
            let found = table
                .get((contact.as_str(), wamid.as_str()))
                .map_err(err(OP))?;
            let Some(value) = found else {
                return Ok(None);
            };
            let stored: StoredMessage =
                decode(|| format!("message {wamid} of {contact}"), value.value())?;
            Ok(stored.record())
        })
        .await
    }
    async fn messages(
        &self,
        contact: &PhoneNumber,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        const OP: &str = "messages";
        let contact = contact.as_str().to_string();
        self.blocking(OP, move |db| {
            let txn = db.begin_read().map_err(err(OP))?;
            let index = txn.open_table(MESSAGES_BY_TIME).map_err(err(OP))?;
            let messages = txn.open_table(MESSAGES).map_err(err(OP))?;
            let mut out = Vec::new();
            for entry in index
                .range((contact.as_str(), i64::MIN, "")..)
                .map_err(err(OP))?
            {
                if out.len() >= limit as usize {
                    break;
                }
                let (key, _) = entry.map_err(err(OP))?;
                let (owner, _, wamid) = key.value();
                if owner != contact {
                    break;
                }
                if let Some(value) = messages.get((owner, wamid)).map_err(err(OP))? {
                    let stored: StoredMessage =
                        decode(|| format!("message {wamid} of {owner}"), value.value())?;
                    out.extend(stored.record());
                }
            }
            Ok(out)
        })
        .await
    }
    async fn record_status(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> Result<(), StoreError> {
        const OP: &str = "record_status";
        if status == DeliveryStatus::Accepted {
            return Ok(());
        }
        let contact = contact.as_str().to_string();
        let wamid = wamid.to_string();
        self.blocking(OP, move |db| {
            Self::update_message(db, OP, &contact, &wamid, |stored| {
                stored.apply(status, at, error_code)
            })
        })
        .await
    }
    async fn inbound_stored(
        &self,
        contact: &PhoneNumber,
        _at: DateTime<Utc>,
        wamid: &str,
    ) -> Result<bool, StoreError> {
        // Messages are keyed by (contact, wamid) here: the time is not needed.
        Ok(self.message(contact, wamid).await?.is_some())
    }
    async fn expire_message_bodies(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        const OP: &str = "expire_message_bodies";
        self.blocking(OP, move |db| {
            let txn = db.begin_write().map_err(err(OP))?;
            let mut cleared = 0;
            {
                let mut messages = txn.open_table(MESSAGES).map_err(err(OP))?;
                let mut expired = Vec::new();
                for entry in messages.iter().map_err(err(OP))? {
                    let (key, value) = entry.map_err(err(OP))?;
                    let (contact, wamid) = key.value();
                    let mut stored: StoredMessage =
                        decode(|| format!("message {wamid} of {contact}"), value.value())?;
                    let Some(message) = stored.message.as_mut() else {
                        continue;
                    };
                    if message.created_at < before && message.body.take().is_some() {
                        expired.push((contact.to_string(), wamid.to_string(), stored));
                    }
                }
                for (contact, wamid, stored) in expired {
                    let bytes = encode(OP, &stored)?;
                    messages
                        .insert((contact.as_str(), wamid.as_str()), bytes.as_slice())
                        .map_err(err(OP))?;
                    cleared += 1;
                }
            }
            txn.commit().map_err(err(OP))?;
            Ok(cleared)
        })
        .await
    }
}
