//! Send claims and results, in the embedded store.

use super::*;
use crate::storage::store::REACH_KEPT;

#[async_trait]
impl SendLedger for EmbeddedStore {
    async fn claim_send(
        &self,
        request_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Claim, StoreError> {
        const OP: &str = "claim_send";
        let request = request_id.to_string();
        let contact = contact.as_str().to_string();
        let value = claim_time(ms(Utc::now()));
        self.blocking(OP, move |db| {
            let txn = db.begin_write().map_err(err(OP))?;
            let outcome = {
                let mut table = txn.open_table(SEND_CLAIMS).map_err(err(OP))?;
                let key = (request.as_str(), contact.as_str());
                let existing = table
                    .get(key)
                    .map_err(err(OP))?
                    .map(|v| v.value().to_string());
                match existing {
                    Some(first) => Claim::AlreadyClaimed(first),
                    None => {
                        table.insert(key, value.as_str()).map_err(err(OP))?;
                        Claim::Claimed
                    }
                }
            };
            txn.commit().map_err(err(OP))?;
            Ok(outcome)
        })
        .await
    }
    async fn record_send_result(
        &self,
        request_id: &str,
        contact: &PhoneNumber,
        result: &SendResult,
    ) -> Result<(), StoreError> {
        const OP: &str = "record_send_result";
        let key = send_result_key(request_id, contact);
        let bytes = encode(
            OP,
            &SendResult {
                at: ms(result.at),
                outcome: result.outcome.clone(),
            },
        )?;
        self.blocking(OP, move |db| {
            Self::put_record(db, OP, SEND_RESULTS, &key, &bytes)
        })
        .await
    }
    async fn send_result(
        &self,
        request_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Option<SendResult>, StoreError> {
        let key = send_result_key(request_id, contact);
        self.blocking("send_result", move |db| {
            Self::get_record(db, "send_result", SEND_RESULTS, &key)
        })
        .await
    }

    async fn record_reach(
        &self,
        contact: &PhoneNumber,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const OP: &str = "record_reach";
        let contact = contact.as_str().to_string();
        let (at, cutoff) = (
            at.timestamp_millis(),
            (Utc::now() - REACH_KEPT).timestamp_millis(),
        );
        self.blocking(OP, move |db| {
            let txn = db.begin_write().map_err(err(OP))?;
            {
                let mut table = txn.open_table(REACHES).map_err(err(OP))?;
                table.insert((at, contact.as_str()), ()).map_err(err(OP))?;
                // Reaches older than any window leave as new ones come.
                table
                    .retain_in((i64::MIN, "")..(cutoff, ""), |_, _| false)
                    .map_err(err(OP))?;
            }
            txn.commit().map_err(err(OP))?;
            Ok(())
        })
        .await
    }
    async fn reaches_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(PhoneNumber, DateTime<Utc>)>, StoreError> {
        const OP: &str = "reaches_since";
        let after = since.timestamp_millis().saturating_add(1);
        self.blocking(OP, move |db| {
            let txn = db.begin_read().map_err(err(OP))?;
            let table = txn.open_table(REACHES).map_err(err(OP))?;
            let mut reaches = Vec::new();
            for entry in table.range((after, "")..).map_err(err(OP))? {
                let (key, _) = entry.map_err(err(OP))?;
                let (at, contact) = key.value();
                let at =
                    DateTime::from_timestamp_millis(at).ok_or_else(|| StoreError::Corrupt {
                        what: "reach".into(),
                        detail: format!("time {at} out of range"),
                    })?;
                reaches.push((phone("reach", contact)?, at));
            }
            Ok(reaches)
        })
        .await
    }
}
