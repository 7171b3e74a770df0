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
}

/// The prepared statements of this aggregate.
pub(super) struct SendStatements {
    pub(super) claim_send: PreparedStatement,
    pub(super) record_send_result: PreparedStatement,
    pub(super) send_result: PreparedStatement,
}

impl SendStatements {
    pub(super) async fn prepare(s: &Session, ks: &str) -> Result<Self, StoreError> {
        use Kind::{Idempotent as I, Lwt};
        let (claim_send, record_send_result, send_result,) = futures::try_join!(
            prepare(s, format!("INSERT INTO {ks}.send_claims (campaign_id, contact, claimed_at) VALUES (?, ?, ?) IF NOT EXISTS"), Lwt),
            prepare(s, format!("INSERT INTO {ks}.send_results (campaign_id, contact, at, wamid, error_code, reason) VALUES (?, ?, ?, ?, ?, ?)"), I),
            prepare(s, format!("SELECT at, wamid, error_code, reason FROM {ks}.send_results WHERE campaign_id = ? AND contact = ?"), I),
        )?;
        Ok(SendStatements {
            claim_send,
            record_send_result,
            send_result,
        })
    }
}
