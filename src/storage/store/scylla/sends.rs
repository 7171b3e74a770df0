//! Send claims and results, in the CQL store.

use super::*;

#[async_trait]
impl SendLedger for ScyllaStore {
    async fn claim_send(
        &self,
        request_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Claim, StoreError> {
        const OP: &str = "claim_send";
        let existing = self
            .lwt(
                OP,
                &self.st.sends.claim_send,
                (request_id, contact.as_str(), Utc::now()),
            )
            .await?;
        let Some(row) = existing else {
            return Ok(Claim::Claimed);
        };
        let at = row
            .get("claimed_at")
            .and_then(CqlValue::as_cql_timestamp)
            .ok_or_else(|| errors::query(OP, "LWT answer without claimed_at"))?;
        Ok(Claim::AlreadyClaimed(claim_time(rows::from_ts(
            "send claim",
            at,
        )?)))
    }
    async fn record_send_result(
        &self,
        request_id: &str,
        contact: &PhoneNumber,
        result: &SendResult,
    ) -> Result<(), StoreError> {
        let (wamid, code, reason) = match &result.outcome {
            SendOutcome::Sent { wamid } => (Some(wamid.as_str()), None, None),
            SendOutcome::Failed { code, reason } => (None, *code, Some(reason.as_str())),
        };
        self.exec(
            "record_send_result",
            &self.st.sends.record_send_result,
            (request_id, contact.as_str(), result.at, wamid, code, reason),
        )
        .await?;
        Ok(())
    }
    async fn send_result(
        &self,
        request_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Option<SendResult>, StoreError> {
        const OP: &str = "send_result";
        type Row = (DateTime<Utc>, Option<String>, Option<i64>, Option<String>);
        let found: Vec<Row> = self
            .rows(
                OP,
                &self.st.sends.send_result,
                (request_id, contact.as_str()),
            )
            .await?;
        let Some((at, wamid, code, reason)) = found.into_iter().next() else {
            return Ok(None);
        };
        let outcome = match wamid {
            Some(wamid) => SendOutcome::Sent { wamid },
            None => SendOutcome::Failed {
                code,
                reason: reason.unwrap_or_default(),
            },
        };
        Ok(Some(SendResult { at, outcome }))
    }
    async fn record_reach(
        &self,
        contact: &PhoneNumber,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.exec(
            "record_reach",
            &self.st.sends.record_reach,
            (utc_day(at), at, contact.as_str()),
        )
        .await?;
        Ok(())
    }
    async fn reaches_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(PhoneNumber, DateTime<Utc>)>, StoreError> {
        const OP: &str = "reaches_since";
        let mut reaches = Vec::new();
        for day in utc_day(since)..=utc_day(Utc::now()) {
            let rows: Vec<(DateTime<Utc>, String)> = self
                .all_rows(OP, &self.st.sends.reaches_since, (day, since))
                .await?;
            for (at, contact) in rows {
                reaches.push((rows::parse_phone("reach", &contact)?, at));
            }
        }
        Ok(reaches)
    }
}

/// A reach's partition: its day since the epoch, in UTC.
fn utc_day(at: DateTime<Utc>) -> i32 {
    i32::try_from(at.timestamp().div_euclid(86_400)).unwrap_or(i32::MAX)
}

/// The prepared statements of this aggregate.
pub(super) struct SendStatements {
    pub(super) claim_send: PreparedStatement,
    pub(super) record_send_result: PreparedStatement,
    pub(super) send_result: PreparedStatement,
    pub(super) record_reach: PreparedStatement,
    pub(super) reaches_since: PreparedStatement,
}

impl SendStatements {
    pub(super) async fn prepare(s: &Session, ks: &str) -> Result<Self, StoreError> {
        use Kind::{Idempotent as I, Lwt};
        let (claim_send, record_send_result, send_result, record_reach, reaches_since) = futures::try_join!(
            prepare(s, format!("INSERT INTO {ks}.send_claims (campaign_id, contact, claimed_at) VALUES (?, ?, ?) IF NOT EXISTS"), Lwt),
            prepare(s, format!("INSERT INTO {ks}.send_results (campaign_id, contact, at, wamid, error_code, reason) VALUES (?, ?, ?, ?, ?, ?)"), I),
            prepare(s, format!("SELECT at, wamid, error_code, reason FROM {ks}.send_results WHERE campaign_id = ? AND contact = ?"), I),
            prepare(s, format!("INSERT INTO {ks}.messaging_reach (day, at, contact) VALUES (?, ?, ?)"), I),
            prepare(s, format!("SELECT at, contact FROM {ks}.messaging_reach WHERE day = ? AND at > ?"), I),
        )?;
        Ok(SendStatements {
            claim_send,
            record_send_result,
            send_result,
            record_reach,
            reaches_since,
        })
    }
}
