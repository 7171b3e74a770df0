//! Campaign recipients, in the CQL store: each step a blind write, ordered by write
//! timestamp so the merge rule of `RecipientSteps::apply` holds whatever order writes land
//! in (earliest step time wins: [`status_timestamp`]; latest failure wins: its own time).

use crate::domain::campaign::{Failure, RecipientSteps, RecipientUpdate, SkipReason};
use crate::domain::money::Money;
use crate::storage::store::{update_to_millis, RecipientLedger, RecipientRow};

use super::*;

/// Partitions per campaign.
pub const BUCKETS: u8 = 64;
/// Updates written at once.
const CONCURRENT_WRITES: usize = 64;

/// The bucket of a contact: its digits modulo [`BUCKETS`] (phone numbers' last digits are
/// spread evenly).
pub(super) fn bucket(contact: &PhoneNumber) -> i32 {
    let digits: u64 = contact.as_str().parse().unwrap_or(0);
    (digits % u64::from(BUCKETS)) as i32
}

const RECIPIENT_COLUMNS: &str = "contact, planned_at, skipped_at, skip_reason, sent_at, wamid, \
    failed_at, error_code, failure, retryable, delivered_at, read_at, clicked_at, converted_at, \
    revenue_sen, cap_retries";

type RecipientCells = (
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<i64>,
    Option<String>,
    Option<bool>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<i64>,
    Option<i32>,
);

fn into_row(cells: RecipientCells) -> Result<RecipientRow, StoreError> {
    const OP: &str = "recipients";
    let (
        contact,
        planned_at,
        skipped_at,
        skip_reason,
        sent_at,
        wamid,
        failed_at,
        error_code,
        failure,
        retryable,
        delivered_at,
        read_at,
        clicked_at,
        converted_at,
        revenue_sen,
        cap_retries,
    ) = cells;
    let skipped = match (skipped_at, skip_reason) {
        (Some(at), Some(reason)) => Some((
            at,
            reason
                .parse::<SkipReason>()
                .map_err(|_| errors::query(OP, format!("unknown skip reason {reason:?}")))?,
        )),
        _ => None,
    };
    Ok(RecipientRow {
        contact: rows::parse_phone("recipient", &contact)?,
        steps: RecipientSteps {
            planned_at,
            skipped,
            sent: sent_at.map(|at| (at, wamid.unwrap_or_default())),
            failed: failed_at.map(|at| Failure {
                at,
                code: error_code,
                reason: failure.unwrap_or_default(),
                retryable: retryable.unwrap_or(false),
                cap_retries: cap_retries.map_or(0, |n| u32::try_from(n).unwrap_or(0)),
            }),
            delivered_at,
            read_at,
            clicked_at,
            converted: converted_at.map(|at| (at, Money::from_sen(revenue_sen.unwrap_or(0)))),
        },
    })
}

impl ScyllaStore {
    async fn record_recipient(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
        update: &RecipientUpdate,
    ) -> Result<(), StoreError> {
        const OP: &str = "record_recipients";
        let st = &self.st.recipients;
        let key = (campaign_id, bucket(contact), contact.as_str());
        let (c, b, k) = key;
        match update_to_millis(update) {
            RecipientUpdate::Planned { at } => {
                self.exec(OP, &st.planned, (status_timestamp(at), at, c, b, k))
                    .await
            }
            RecipientUpdate::Skipped { at, reason } => {
                self.exec(
                    OP,
                    &st.skipped,
                    (status_timestamp(at), at, reason.as_str(), c, b, k),
                )
                .await
            }
            RecipientUpdate::Sent { at, wamid } => {
                self.exec(OP, &st.sent, (status_timestamp(at), at, wamid, c, b, k))
                    .await
            }
            RecipientUpdate::Failed(f) => {
                self.exec(
                    OP,
                    &st.failed,
                    (
                        f.at.timestamp_micros(),
                        f.at,
                        f.code,
                        f.reason,
                        f.retryable,
                        i32::try_from(f.cap_retries).unwrap_or(i32::MAX),
                        c,
                        b,
                        k,
                    ),
                )
                .await
            }
            RecipientUpdate::Delivered { at } => {
                self.exec(OP, &st.delivered, (status_timestamp(at), at, c, b, k))
                    .await
            }
            RecipientUpdate::Read { at } => {
                self.exec(OP, &st.read, (status_timestamp(at), at, c, b, k))
                    .await
            }
            RecipientUpdate::Clicked { at } => {
                self.exec(OP, &st.clicked, (status_timestamp(at), at, c, b, k))
                    .await
            }
            RecipientUpdate::Converted { at, amount } => {
                self.exec(
                    OP,
                    &st.converted,
                    (status_timestamp(at), at, amount.sen(), c, b, k),
                )
                .await
            }
        }
        .map(drop)
    }
}

#[async_trait]
impl RecipientLedger for ScyllaStore {
    async fn record_recipients(
        &self,
        campaign_id: &str,
        updates: &[(PhoneNumber, RecipientUpdate)],
    ) -> Result<(), StoreError> {
        let writes: Vec<_> = updates
            .iter()
            .map(|(contact, update)| self.record_recipient(campaign_id, contact, update))
            .collect();
        futures::stream::iter(writes)
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect::<()>()
            .await
    }

    async fn recipient(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Option<RecipientSteps>, StoreError> {
        let rows: Vec<RecipientCells> = self
            .rows(
                "recipient",
                &self.st.recipients.recipient,
                (campaign_id, bucket(contact), contact.as_str()),
            )
            .await?;
        rows.into_iter()
            .next()
            .map(|cells| into_row(cells).map(|row| row.steps))
            .transpose()
    }

    /// The token is the bucket (one byte) followed by the driver's paging state within it.
    async fn recipients(
        &self,
        campaign_id: &str,
        from: Option<PageToken>,
        limit: u32,
    ) -> Result<Page<RecipientRow>, StoreError> {
        const OP: &str = "recipients";
        let (mut bucket, mut state) = match from {
            Some(PageToken(bytes)) if !bytes.is_empty() => {
                if bytes[0] >= BUCKETS {
                    return Err(errors::query(
                        OP,
                        "the page token is not one this store issued",
                    ));
                }
                let state = if bytes.len() > 1 {
                    PagingState::new_from_raw_bytes(bytes[1..].to_vec())
                } else {
                    PagingState::start()
                };
                (bytes[0], state)
            }
            _ => (0, PagingState::start()),
        };
        let mut statement = self.st.recipients.bucket.clone();
        statement.set_page_size(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        loop {
            let (result, paging) = self
                .session
                .execute_single_page(&statement, (campaign_id, i32::from(bucket)), state)
                .await
                .map_err(|e| errors::execution(OP, e))?;
            let rows = result
                .into_rows_result()
                .map_err(|e| errors::query(OP, e))?;
            let items = rows
                .rows::<RecipientCells>()
                .map_err(|e| errors::query(OP, e))?
                .map(|row| into_row(row.map_err(|e| errors::query(OP, e))?))
                .collect::<Result<Vec<_>, _>>()?;
            let next = match paging {
                PagingStateResponse::HasMorePages { state } => {
                    let mut token = vec![bucket];
                    token.extend_from_slice(state.as_bytes_slice().map_or(&[][..], |b| &b[..]));
                    Some(PageToken(token))
                }
                PagingStateResponse::NoMorePages if bucket + 1 < BUCKETS => {
                    Some(PageToken(vec![bucket + 1]))
                }
                PagingStateResponse::NoMorePages => None,
            };
            // An empty bucket: on to the next one rather than an empty page.
            match next {
                Some(PageToken(token)) if items.is_empty() && token.len() == 1 => {
                    bucket = token[0];
                    state = PagingState::start();
                }
                next => return Ok(Page { items, next }),
            }
        }
    }
}

/// The prepared statements of this aggregate.
pub(super) struct RecipientStatements {
    planned: PreparedStatement,
    skipped: PreparedStatement,
    sent: PreparedStatement,
    failed: PreparedStatement,
    delivered: PreparedStatement,
    read: PreparedStatement,
    clicked: PreparedStatement,
    converted: PreparedStatement,
    recipient: PreparedStatement,
    bucket: PreparedStatement,
}

impl RecipientStatements {
    pub(super) async fn prepare(s: &Session, ks: &str) -> Result<Self, StoreError> {
        use Kind::Idempotent as I;
        let set = |columns: &str| {
            format!(
                "UPDATE {ks}.campaign_recipients USING TIMESTAMP ? SET {columns} \
                 WHERE campaign_id = ? AND bucket = ? AND contact = ?"
            )
        };
        let (planned, skipped, sent, failed, delivered, read, clicked, converted, recipient, bucket) = futures::try_join!(
            prepare(s, set("planned_at = ?"), I),
            prepare(s, set("skipped_at = ?, skip_reason = ?"), I),
            prepare(s, set("sent_at = ?, wamid = ?"), I),
            prepare(s, set("failed_at = ?, error_code = ?, failure = ?, retryable = ?, cap_retries = ?"), I),
            prepare(s, set("delivered_at = ?"), I),
            prepare(s, set("read_at = ?"), I),
            prepare(s, set("clicked_at = ?"), I),
            prepare(s, set("converted_at = ?, revenue_sen = ?"), I),
            prepare(s, format!("SELECT {RECIPIENT_COLUMNS} FROM {ks}.campaign_recipients WHERE campaign_id = ? AND bucket = ? AND contact = ?"), I),
            prepare(s, format!("SELECT {RECIPIENT_COLUMNS} FROM {ks}.campaign_recipients WHERE campaign_id = ? AND bucket = ?"), I),
        )?;
        Ok(RecipientStatements {
            planned,
            skipped,
            sent,
            failed,
            delivered,
            read,
            clicked,
            converted,
            recipient,
            bucket,
        })
    }
}
