//! The contact store on ScyllaDB (production) or Apache Cassandra (tests): same CQL,
//! same driver. Schema: schemas/cql/ through [`CQL_MIGRATIONS`] and [`CqlMigrationTarget`].
//!
//! - Every statement is prepared once at connect, fully qualified with the keyspace.
//! - Consistency LOCAL_QUORUM; compare-and-set claims (IC link, receipt, send) are LWTs
//!   (`INSERT ... IF NOT EXISTS`) with serial consistency LOCAL_SERIAL.
//! - Every request has the configured client-side timeout, so an unreachable or stuck node
//!   gives [`StoreError::Timeout`] or [`StoreError::Unavailable`], never a hang.
//! - Times are stored as CQL timestamps, i.e. at millisecond precision; finer parts of a
//!   `DateTime` are dropped (the embedded store does the same, so both backends agree).
//! - Delivery reports are blind writes ordered by write timestamp (see [`status_timestamp`]).
//! - A contact's row is written with its `updated_at` as write timestamp, so of two
//!   versions the later one stays whichever lands last: an owner deposed by a rebalance
//!   whose flush lands after its successor's cannot put older state back.

mod batch;
mod errors;
mod rows;
mod schema;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt, TryStreamExt};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::response::query_result::QueryResult;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlValue, Row};

use crate::domain::contact::Contact;
use crate::domain::message::DeliveryStatus;
use crate::domain::phone::PhoneNumber;
use crate::domain::purchase::Purchase;
use crate::storage::store::{
    CampaignRecord, Claim, ContactStore, ContactWrite, Direction, IcLink, MessageRecord, Page,
    PageToken, SegmentRecord, SendOutcome, SendResult, StoreError,
};

use batch::{BoxedRow, Chain, Packer, Write};
use rows::{
    Absent, CampaignRow, CampaignValues, ContactRow, ContactValues, InboundRow, InboundValues,
    MessageRow, MessageValues, PurchaseRow, PurchaseValues, SegmentRow, SegmentValues,
    CAMPAIGN_COLUMNS, CONTACT_COLUMNS, INBOUND_COLUMNS, MESSAGE_COLUMNS, PURCHASE_COLUMNS,
    SEGMENT_COLUMNS,
};
pub use schema::{CqlMigrationTarget, CQL_MIGRATIONS, VERSION_TABLE};

/// The name errors and migration reports use.
pub const SERVICE: &str = "scylla";

/// How many requests one call keeps in flight (write-behind batches).
const CONCURRENCY: usize = 64;

/// Who stores a partition: the replicas (host and shard, sorted) of every table it writes
/// (the same for all tables with vnodes; with ScyllaDB tablets each table has its own),
/// or, when the driver cannot tell (no metadata for the keyspace yet), the partition key
/// itself, so it is batched alone.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Owners<'a> {
    Replicas(Vec<(uuid::Uuid, scylla::routing::Shard)>),
    Unknown(&'a str),
}

/// What one flush writes to one partition (one phone number).
#[derive(Default)]
struct Partition<'a> {
    messages: Vec<&'a MessageRecord>,
    purchases: Vec<(&'a PhoneNumber, &'a Purchase)>,
    contact: Option<ContactWrite<'a>>,
}

impl Partition<'_> {
    /// The tables its statements write.
    fn tables(&self) -> Vec<&'static str> {
        let mut tables = Vec::with_capacity(5);
        if self.contact.is_some() {
            tables.push("contacts");
        }
        if !self.purchases.is_empty() {
            tables.push("purchases");
        }
        for message in &self.messages {
            if inbound_only(message) {
                tables.push("inbound_messages");
            } else {
                tables.extend(["messages", "messages_by_time"]);
            }
        }
        tables.sort_unstable();
        tables.dedup();
        tables
    }
}

/// An inbound message without delivery reports: one row in `inbound_messages`. Any other
/// message is a `messages` row with its time index (and reports).
fn inbound_only(message: &MessageRecord) -> bool {
    message.direction == Direction::Inbound && message.timeline == Default::default()
}

/// Scylla's default `max_clustering_key_restrictions_per_query` is 100.
const IN_CHUNK: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScyllaConfig {
    /// `host:port` of one or more nodes (the rest are discovered).
    pub nodes: Vec<String>,
    /// Letters, digits, underscores; created by the migrations.
    pub keyspace: String,
    /// Client-side limit for each request, retries included.
    pub request_timeout: Duration,
    /// Limit for opening each connection.
    pub connect_timeout: Duration,
}

impl Default for ScyllaConfig {
    fn default() -> Self {
        ScyllaConfig {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "sembang".into(),
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) fn valid_keyspace(keyspace: &str) -> Result<(), StoreError> {
    let ok = !keyspace.is_empty()
        && keyspace.len() <= 48
        && keyspace.starts_with(|c: char| c.is_ascii_alphabetic())
        && keyspace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Schema(format!(
            "keyspace name {keyspace:?} must be 1 to 48 letters, digits or underscores, starting with a letter"
        )))
    }
}

/// A session with the store's defaults: LOCAL_QUORUM / LOCAL_SERIAL, the request timeout,
/// bounded connection set-up. Not bound to the keyspace (statements name it).
pub(crate) async fn connect_session(config: &ScyllaConfig) -> Result<Session, StoreError> {
    valid_keyspace(&config.keyspace)?;
    if config.nodes.is_empty() {
        return Err(errors::unavailable("no nodes configured"));
    }
    let profile = ExecutionProfile::builder()
        .consistency(Consistency::LocalQuorum)
        .serial_consistency(Some(SerialConsistency::LocalSerial))
        .request_timeout(Some(config.request_timeout))
        .build();
    let builder = SessionBuilder::new()
        .known_nodes(&config.nodes)
        .connection_timeout(config.connect_timeout)
        .metadata_request_serverside_timeout(config.request_timeout)
        // Unquoted CQL names are case-insensitive and stored lowercase.
        .keyspaces_to_fetch([config.keyspace.to_ascii_lowercase()])
        .default_execution_profile_handle(profile.into_handle());
    // The driver bounds each connection attempt, but not the whole set-up (several nodes,
    // metadata fetch); this does.
    let limit = config.connect_timeout * 2 + config.request_timeout;
    match tokio::time::timeout(limit, builder.build()).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => Err(errors::new_session(e)),
        Err(_) => Err(StoreError::Timeout {
            service: SERVICE,
            operation: "connect",
            after: limit,
        }),
    }
}

/// Write timestamp for a delivery report made at `at`.
///
/// `record_status` must keep the EARLIEST time reported for each status, whatever the
/// arrival order, without reading first or using an LWT. Cassandra resolves concurrent
/// writes to a cell by write timestamp (highest wins). Writing each status column
/// `USING TIMESTAMP (BASE - at)` makes an earlier report carry a higher write timestamp, so
/// it wins last-write-wins against any later report of the same status, whichever arrives
/// first; a replay writes the same value with the same timestamp, a no-op. The status
/// columns are only ever written this way, so they are only compared among themselves.
///
/// BASE is twice 2020-01-01 in microseconds, so for any report since 2014 the write
/// timestamp is not in the future (ScyllaDB refuses timestamps days ahead of its clock,
/// `restrict_future_timestamp`) and a regular DELETE issued now still shadows these cells;
/// timestamps stay positive for reports until 2070.
pub fn status_timestamp(at: DateTime<Utc>) -> i64 {
    const BASE: i64 = 2 * 1_577_836_800_000_000;
    // Millisecond precision, as stored.
    BASE - at.timestamp_millis() * 1_000
}

struct Statements {
    load_contact: PreparedStatement,
    upsert_contact: PreparedStatement,
    scan_contacts: PreparedStatement,
    link_ic: PreparedStatement,
    find_by_ic: PreparedStatement,
    put_purchase: PreparedStatement,
    purchases: PreparedStatement,
    claim_receipt: PreparedStatement,
    put_message: PreparedStatement,
    put_message_index: PreparedStatement,
    message: PreparedStatement,
    message_index: PreparedStatement,
    messages_in: PreparedStatement,
    put_inbound: PreparedStatement,
    inbound_newest: PreparedStatement,
    inbound_by_wamid: PreparedStatement,
    inbound_exact: PreparedStatement,
    sent: PreparedStatement,
    delivered: PreparedStatement,
    read: PreparedStatement,
    failed: PreparedStatement,
    failed_with_code: PreparedStatement,
    claim_send: PreparedStatement,
    record_send_result: PreparedStatement,
    send_result: PreparedStatement,
    put_segment: PreparedStatement,
    segment: PreparedStatement,
    segments: PreparedStatement,
    delete_segment: PreparedStatement,
    put_campaign: PreparedStatement,
    campaign: PreparedStatement,
    campaigns: PreparedStatement,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Reads and plain upserts: safe for the driver to retry.
    Idempotent,
    /// LWT claims: a retried claim could see its own first attempt as someone else's.
    Lwt,
}

async fn prepare(
    session: &Session,
    cql: String,
    kind: Kind,
) -> Result<PreparedStatement, StoreError> {
    let mut statement = session
        .prepare(cql)
        .await
        .map_err(|e| errors::prepare("prepare", e))?;
    match kind {
        Kind::Idempotent => statement.set_is_idempotent(true),
        Kind::Lwt => {
            statement.set_is_idempotent(false);
            statement.set_serial_consistency(Some(SerialConsistency::LocalSerial));
        }
    }
    Ok(statement)
}

fn placeholders(columns: &str) -> String {
    vec!["?"; columns.split(',').count()].join(", ")
}

impl Statements {
    async fn prepare(session: &Session, ks: &str) -> Result<Self, StoreError> {
        use Kind::{Idempotent as I, Lwt};
        let status = |column: &str| {
            format!(
                "UPDATE {ks}.messages USING TIMESTAMP ? SET {column} = ? WHERE contact = ? AND wamid = ?"
            )
        };
        let s = session;
        let (
            (
                load_contact,
                upsert_contact,
                scan_contacts,
                link_ic,
                find_by_ic,
                put_purchase,
                purchases,
            ),
            (
                claim_receipt,
                put_message,
                put_message_index,
                message,
                message_index,
                messages_in,
                sent,
            ),
            (
                delivered,
                read,
                failed,
                failed_with_code,
                claim_send,
                record_send_result,
                send_result,
            ),
            (put_segment, segment, segments, delete_segment, put_campaign, campaign, campaigns),
            (put_inbound, inbound_newest, inbound_by_wamid, inbound_exact),
        ) = futures::try_join!(
            async {
                futures::try_join!(
                    prepare(s, format!("SELECT {CONTACT_COLUMNS} FROM {ks}.contacts WHERE phone = ?"), I),
                    prepare(s, format!("INSERT INTO {ks}.contacts ({CONTACT_COLUMNS}) VALUES ({}) USING TIMESTAMP ?", placeholders(CONTACT_COLUMNS)), I),
                    prepare(s, format!("SELECT phone FROM {ks}.contacts"), I),
                    prepare(s, format!("INSERT INTO {ks}.contact_by_ic (ic_keyed_hash, phone, linked_at) VALUES (?, ?, ?) IF NOT EXISTS"), Lwt),
                    prepare(s, format!("SELECT phone FROM {ks}.contact_by_ic WHERE ic_keyed_hash = ?"), I),
                    prepare(s, format!("INSERT INTO {ks}.purchases ({PURCHASE_COLUMNS}) VALUES ({})", placeholders(PURCHASE_COLUMNS)), I),
                    prepare(s, format!("SELECT {PURCHASE_COLUMNS} FROM {ks}.purchases WHERE contact = ?"), I),
                )
            },
            async {
                futures::try_join!(
                    prepare(s, format!("INSERT INTO {ks}.receipt_claims (fingerprint, purchase_id, claimed_at) VALUES (?, ?, ?) IF NOT EXISTS"), Lwt),
                    prepare(s, format!("INSERT INTO {ks}.messages (contact, wamid, direction, kind, body, campaign_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"), I),
                    prepare(s, format!("INSERT INTO {ks}.messages_by_time (contact, created_at, wamid) VALUES (?, ?, ?)"), I),
                    prepare(s, format!("SELECT {MESSAGE_COLUMNS} FROM {ks}.messages WHERE contact = ? AND wamid = ?"), I),
                    prepare(s, format!("SELECT wamid FROM {ks}.messages_by_time WHERE contact = ? LIMIT ?"), I),
                    prepare(s, format!("SELECT {MESSAGE_COLUMNS} FROM {ks}.messages WHERE contact = ? AND wamid IN ?"), I),
                    prepare(s, status("sent_at"), I),
                )
            },
            async {
                futures::try_join!(
                    prepare(s, status("delivered_at"), I),
                    prepare(s, status("read_at"), I),
                    prepare(s, status("failed_at"), I),
                    prepare(s, format!("UPDATE {ks}.messages USING TIMESTAMP ? SET failed_at = ?, error_code = ? WHERE contact = ? AND wamid = ?"), I),
                    prepare(s, format!("INSERT INTO {ks}.send_claims (campaign_id, contact, claimed_at) VALUES (?, ?, ?) IF NOT EXISTS"), Lwt),
                    prepare(s, format!("INSERT INTO {ks}.send_results (campaign_id, contact, at, wamid, error_code, reason) VALUES (?, ?, ?, ?, ?, ?)"), I),
                    prepare(s, format!("SELECT at, wamid, error_code, reason FROM {ks}.send_results WHERE campaign_id = ? AND contact = ?"), I),
                )
            },
            async {
                futures::try_join!(
                    prepare(
                        s,
                        format!(
                            "INSERT INTO {ks}.segments ({SEGMENT_COLUMNS}) VALUES ({})",
                            placeholders(SEGMENT_COLUMNS)
                        ),
                        I
                    ),
                    prepare(
                        s,
                        format!("SELECT {SEGMENT_COLUMNS} FROM {ks}.segments WHERE segment_id = ?"),
                        I
                    ),
                    prepare(s, format!("SELECT {SEGMENT_COLUMNS} FROM {ks}.segments"), I),
                    prepare(
                        s,
                        format!("DELETE FROM {ks}.segments WHERE segment_id = ?"),
                        I
                    ),
                    prepare(
                        s,
                        format!(
                            "INSERT INTO {ks}.campaigns ({CAMPAIGN_COLUMNS}) VALUES ({})",
                            placeholders(CAMPAIGN_COLUMNS)
                        ),
                        I
                    ),
                    prepare(
                        s,
                        format!(
                            "SELECT {CAMPAIGN_COLUMNS} FROM {ks}.campaigns WHERE campaign_id = ?"
                        ),
                        I
                    ),
                    prepare(
                        s,
                        format!("SELECT {CAMPAIGN_COLUMNS} FROM {ks}.campaigns"),
                        I
                    ),
                )
            },
            async {
                futures::try_join!(
                    prepare(s, format!("INSERT INTO {ks}.inbound_messages ({INBOUND_COLUMNS}) VALUES ({})", placeholders(INBOUND_COLUMNS)), I),
                    prepare(s, format!("SELECT {INBOUND_COLUMNS} FROM {ks}.inbound_messages WHERE contact = ? LIMIT ?"), I),
                    // Filters within one partition: point look-ups by wamid alone are admin reads.
                    prepare(s, format!("SELECT {INBOUND_COLUMNS} FROM {ks}.inbound_messages WHERE contact = ? AND wamid = ? ALLOW FILTERING"), I),
                    prepare(s, format!("SELECT wamid FROM {ks}.inbound_messages WHERE contact = ? AND created_at = ? AND wamid = ?"), I),
                )
            },
        )?;
        Ok(Statements {
            load_contact,
            upsert_contact,
            scan_contacts,
            link_ic,
            find_by_ic,
            put_purchase,
            purchases,
            claim_receipt,
            put_message,
            put_message_index,
            message,
            message_index,
            messages_in,
            put_inbound,
            inbound_newest,
            inbound_by_wamid,
            inbound_exact,
            sent,
            delivered,
            read,
            failed,
            failed_with_code,
            claim_send,
            record_send_result,
            send_result,
            put_segment,
            segment,
            segments,
            delete_segment,
            put_campaign,
            campaign,
            campaigns,
        })
    }
}

/// The contact store on a Cassandra-protocol cluster. Cheap to share (`Arc` inside).
pub struct ScyllaStore {
    session: Arc<Session>,
    keyspace: String,
    /// The keyspace as the driver's metadata names it (unquoted CQL names are lowercase).
    metadata_keyspace: String,
    st: Statements,
}

impl ScyllaStore {
    /// Connects and prepares every statement. The keyspace must exist with the current
    /// schema (run [`CQL_MIGRATIONS`] first), otherwise this fails with
    /// [`StoreError::Query`] or [`StoreError::Schema`] naming the missing table.
    pub async fn connect(config: ScyllaConfig) -> Result<Self, StoreError> {
        let session = Arc::new(connect_session(&config).await?);
        Self::with_session(session, &config.keyspace).await
    }

    /// On an existing session (e.g. the one a [`CqlMigrationTarget`] used).
    pub async fn with_session(session: Arc<Session>, keyspace: &str) -> Result<Self, StoreError> {
        valid_keyspace(keyspace)?;
        let st = Statements::prepare(&session, keyspace)
            .await
            .map_err(|e| match e {
                StoreError::Query { detail, .. } => StoreError::Schema(format!(
                    "{SERVICE} keyspace {keyspace} is missing tables or columns (run the migrations): {detail}"
                )),
                other => other,
            })?;
        Ok(ScyllaStore {
            session,
            keyspace: keyspace.to_string(),
            metadata_keyspace: keyspace.to_ascii_lowercase(),
            st,
        })
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    async fn exec(
        &self,
        operation: &'static str,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(|e| errors::execution(operation, e))
    }

    /// Rows of a single-page (bounded) query.
    async fn rows<R>(
        &self,
        operation: &'static str,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        let result = self.exec(operation, statement, values).await?;
        let rows = result
            .into_rows_result()
            .map_err(|e| errors::query(operation, e))?;
        let rows = rows
            .rows::<R>()
            .map_err(|e| errors::query(operation, e))?
            .collect::<Result<Vec<R>, _>>()
            .map_err(|e| errors::query(operation, e));
        rows
    }

    /// Every row, fetched page by page.
    async fn all_rows<R>(
        &self,
        operation: &'static str,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm> + 'static,
    {
        self.session
            .execute_iter(statement.clone(), values)
            .await
            .map_err(|e| errors::pager(operation, e))?
            .rows_stream::<R>()
            .map_err(|e| errors::query(operation, e))?
            .map_err(|e| errors::next_row(operation, e))
            .try_collect()
            .await
    }

    /// Runs an `INSERT ... IF NOT EXISTS`: `None` when applied, else the existing row.
    async fn lwt(
        &self,
        operation: &'static str,
        statement: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
    ) -> Result<Option<HashMap<String, CqlValue>>, StoreError> {
        let result = self.exec(operation, statement, values).await?;
        let rows = result
            .into_rows_result()
            .map_err(|e| errors::query(operation, e))?;
        let names: Vec<String> = rows
            .column_specs()
            .iter()
            .map(|spec| spec.name().to_string())
            .collect();
        let row: Row = rows.single_row().map_err(|e| errors::query(operation, e))?;
        let mut columns: HashMap<String, CqlValue> = names
            .into_iter()
            .zip(row.columns)
            .filter_map(|(name, value)| value.map(|v| (name, v)))
            .collect();
        match columns.remove("[applied]") {
            Some(CqlValue::Boolean(true)) => Ok(None),
            Some(CqlValue::Boolean(false)) => Ok(Some(columns)),
            other => Err(errors::query(
                operation,
                format!("LWT answer without [applied]: {other:?}"),
            )),
        }
    }
}

fn text_column(
    operation: &'static str,
    row: &HashMap<String, CqlValue>,
    column: &str,
) -> Result<String, StoreError> {
    row.get(column)
        .and_then(CqlValue::as_text)
        .cloned()
        .ok_or_else(|| errors::query(operation, format!("LWT answer without {column}")))
}

/// The value a send claim carries: when it was first claimed.
fn claim_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[async_trait]
impl ContactStore for ScyllaStore {
    async fn load_contact(&self, phone: &PhoneNumber) -> Result<Option<Contact>, StoreError> {
        const OP: &str = "load_contact";
        let (rows, purchases) = futures::try_join!(
            self.rows::<ContactRow>(OP, &self.st.load_contact, (phone.as_str(),)),
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
        self.exec("upsert_contact", &self.st.upsert_contact, values)
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
        let mut statement = self.st.scan_contacts.clone();
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
                &self.st.link_ic,
                (keyed_hash, phone.as_str(), rows::ts(Utc::now())),
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
            .rows("find_by_ic", &self.st.find_by_ic, (keyed_hash,))
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
            .all_rows("purchases", &self.st.purchases, (contact.as_str(),))
            .await?;
        let mut purchases = rows
            .into_iter()
            .map(PurchaseRow::into_purchase)
            .collect::<Result<Vec<_>, _>>()?;
        purchases
            .sort_by(|a, b| (a.recorded_at, &a.purchase_id).cmp(&(b.recorded_at, &b.purchase_id)));
        Ok(purchases)
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
                &self.st.claim_receipt,
                (fingerprint, purchase_id, rows::ts(Utc::now())),
            )
            .await?;
        match existing {
            None => Ok(Claim::Claimed),
            Some(row) => Ok(Claim::AlreadyClaimed(text_column(OP, &row, "purchase_id")?)),
        }
    }

    async fn put_message(&self, message: &MessageRecord) -> Result<(), StoreError> {
        self.write_partitions(&[], std::slice::from_ref(message), &[], Absent::Clear)
            .await
    }

    async fn put_messages(&self, messages: &[MessageRecord]) -> Result<(), StoreError> {
        self.write_partitions(&[], messages, &[], Absent::Clear)
            .await
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

    async fn message(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
    ) -> Result<Option<MessageRecord>, StoreError> {
        const OP: &str = "message";
        let rows: Vec<MessageRow> = self
            .rows(OP, &self.st.message, (contact.as_str(), wamid))
            .await?;
        if let Some(message) = rows.into_iter().next() {
            if let Some(message) = message.into_message()? {
                return Ok(Some(message));
            }
        }
        let inbound: Vec<InboundRow> = self
            .rows(OP, &self.st.inbound_by_wamid, (contact.as_str(), wamid))
            .await?;
        inbound
            .into_iter()
            .next()
            .map(InboundRow::into_message)
            .transpose()
    }

    async fn inbound_stored(
        &self,
        contact: &PhoneNumber,
        at: DateTime<Utc>,
        wamid: &str,
    ) -> Result<bool, StoreError> {
        const OP: &str = "inbound_stored";
        let exact: Vec<(String,)> = self
            .rows(
                OP,
                &self.st.inbound_exact,
                (contact.as_str(), rows::ts(at), wamid),
            )
            .await?;
        if !exact.is_empty() {
            return Ok(true);
        }
        // Stored before migration 6: in `messages`, by wamid.
        let older: Vec<MessageRow> = self
            .rows(OP, &self.st.message, (contact.as_str(), wamid))
            .await?;
        Ok(!older.is_empty())
    }

    async fn messages(
        &self,
        contact: &PhoneNumber,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        const OP: &str = "messages";
        if limit == 0 {
            return Ok(vec![]);
        }
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        // Inbound messages have their own table; outbound ones (and inbound ones stored
        // before it) are in `messages`, found through the time index.
        let (index, inbound) = futures::try_join!(
            self.rows::<(String,)>(OP, &self.st.message_index, (contact.as_str(), limit)),
            self.rows::<InboundRow>(OP, &self.st.inbound_newest, (contact.as_str(), limit)),
        )?;
        // Newest first; a message replayed with another created_at has two index rows.
        let mut order: Vec<String> = Vec::with_capacity(index.len());
        for (wamid,) in index {
            if !order.contains(&wamid) {
                order.push(wamid);
            }
        }
        let chunks = order.chunks(IN_CHUNK).map(|chunk| {
            self.rows::<MessageRow>(OP, &self.st.messages_in, (contact.as_str(), chunk.to_vec()))
        });
        let mut by_wamid: HashMap<String, MessageRecord> = HashMap::new();
        for rows in futures::future::try_join_all(chunks).await? {
            for row in rows {
                if let Some(message) = row.into_message()? {
                    by_wamid.insert(message.wamid.clone(), message);
                }
            }
        }
        let mut newest: Vec<MessageRecord> = order
            .into_iter()
            .filter_map(|wamid| by_wamid.remove(&wamid))
            .collect();
        for row in inbound {
            newest.push(row.into_message()?);
        }
        // Stable: on a tie the `messages` row (with its reports) comes first and stays.
        newest.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.wamid.cmp(&b.wamid))
        });
        let mut seen = HashSet::new();
        newest.retain(|m| seen.insert(m.wamid.clone()));
        newest.truncate(wanted);
        Ok(newest)
    }

    async fn record_status(
        &self,
        contact: &PhoneNumber,
        wamid: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> Result<(), StoreError> {
        self.status_write(
            "record_status",
            contact.as_str(),
            wamid,
            status,
            at,
            error_code,
        )
        .await
    }

    async fn claim_send(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Claim, StoreError> {
        const OP: &str = "claim_send";
        let existing = self
            .lwt(
                OP,
                &self.st.claim_send,
                (campaign_id, contact.as_str(), rows::ts(Utc::now())),
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
        campaign_id: &str,
        contact: &PhoneNumber,
        result: &SendResult,
    ) -> Result<(), StoreError> {
        let (wamid, code, reason) = match &result.outcome {
            SendOutcome::Sent { wamid } => (Some(wamid.as_str()), None, None),
            SendOutcome::Failed { code, reason } => (None, *code, Some(reason.as_str())),
        };
        self.exec(
            "record_send_result",
            &self.st.record_send_result,
            (
                campaign_id,
                contact.as_str(),
                rows::ts(result.at),
                wamid,
                code,
                reason,
            ),
        )
        .await?;
        Ok(())
    }

    async fn send_result(
        &self,
        campaign_id: &str,
        contact: &PhoneNumber,
    ) -> Result<Option<SendResult>, StoreError> {
        const OP: &str = "send_result";
        type Row = (
            scylla::value::CqlTimestamp,
            Option<String>,
            Option<i64>,
            Option<String>,
        );
        let found: Vec<Row> = self
            .rows(OP, &self.st.send_result, (campaign_id, contact.as_str()))
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
        Ok(Some(SendResult {
            at: rows::from_ts("send result", at)?,
            outcome,
        }))
    }

    async fn put_segment(&self, segment: &SegmentRecord) -> Result<(), StoreError> {
        self.exec(
            "put_segment",
            &self.st.put_segment,
            SegmentValues::new(segment),
        )
        .await
        .map(drop)
    }

    async fn segment(&self, segment_id: &str) -> Result<Option<SegmentRecord>, StoreError> {
        let rows: Vec<SegmentRow> = self
            .rows("segment", &self.st.segment, (segment_id,))
            .await?;
        rows.into_iter()
            .next()
            .map(SegmentRow::into_record)
            .transpose()
    }

    async fn segments(&self) -> Result<Vec<SegmentRecord>, StoreError> {
        let rows: Vec<SegmentRow> = self.all_rows("segments", &self.st.segments, ()).await?;
        let mut records = rows
            .into_iter()
            .map(SegmentRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| a.segment_id.cmp(&b.segment_id));
        Ok(records)
    }

    async fn delete_segment(&self, segment_id: &str) -> Result<(), StoreError> {
        self.exec("delete_segment", &self.st.delete_segment, (segment_id,))
            .await
            .map(drop)
    }

    async fn put_campaign(&self, campaign: &CampaignRecord) -> Result<(), StoreError> {
        self.exec(
            "put_campaign",
            &self.st.put_campaign,
            CampaignValues::new(campaign),
        )
        .await
        .map(drop)
    }

    async fn campaign(&self, campaign_id: &str) -> Result<Option<CampaignRecord>, StoreError> {
        let rows: Vec<CampaignRow> = self
            .rows("campaign", &self.st.campaign, (campaign_id,))
            .await?;
        rows.into_iter()
            .next()
            .map(CampaignRow::into_record)
            .transpose()
    }

    async fn campaigns(&self) -> Result<Vec<CampaignRecord>, StoreError> {
        let rows: Vec<CampaignRow> = self.all_rows("campaigns", &self.st.campaigns, ()).await?;
        let mut records = rows
            .into_iter()
            .map(CampaignRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| a.campaign_id.cmp(&b.campaign_id));
        Ok(records)
    }
}

impl ScyllaStore {
    /// One delivery report as a blind write with the [`status_timestamp`] rule. A failure
    /// with a provider error code writes the code in the same cell write as its time, so the
    /// code of the earliest failure report that carries one wins.
    async fn status_write(
        &self,
        operation: &'static str,
        contact: &str,
        wamid: &str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> Result<(), StoreError> {
        match self.status_statement(contact, wamid, status, at, error_code) {
            Some((statement, values)) => self.exec(operation, statement, values).await.map(drop),
            None => Ok(()),
        }
    }

    /// The statement and values of one delivery report; `None` for "accepted", the state
    /// before any report. A failure with a provider error code writes the code in the same
    /// cell write as its time.
    fn status_statement<'a>(
        &'a self,
        contact: &'a str,
        wamid: &'a str,
        status: DeliveryStatus,
        at: DateTime<Utc>,
        error_code: Option<i64>,
    ) -> Option<(&'a PreparedStatement, BoxedRow<'a>)> {
        let timestamp = status_timestamp(at);
        let at = rows::ts(at);
        let statement = match status {
            DeliveryStatus::Accepted => return None,
            DeliveryStatus::Sent => &self.st.sent,
            DeliveryStatus::Delivered => &self.st.delivered,
            DeliveryStatus::Read => &self.st.read,
            DeliveryStatus::Failed => match error_code {
                Some(code) => {
                    let values = (timestamp, at, code, contact, wamid);
                    return Some((&self.st.failed_with_code, Box::new(values)));
                }
                None => &self.st.failed,
            },
        };
        Some((statement, Box::new((timestamp, at, contact, wamid))))
    }

    /// Groups the rows by partition, and the partitions by replicas into batches.
    async fn write_partitions(
        &self,
        contacts: &[ContactWrite<'_>],
        messages: &[MessageRecord],
        purchases: &[(PhoneNumber, Purchase)],
        absent: Absent,
    ) -> Result<(), StoreError> {
        let mut partitions: HashMap<&str, Partition<'_>> = HashMap::new();
        for message in messages {
            let key = message.contact.as_str();
            partitions.entry(key).or_default().messages.push(message);
        }
        for (contact, purchase) in purchases {
            let key = contact.as_str();
            partitions
                .entry(key)
                .or_default()
                .purchases
                .push((contact, purchase));
        }
        for write in contacts {
            partitions
                .entry(write.contact.phone_number.as_str())
                .or_default()
                .contact = Some(*write);
        }
        // Partitions with the same replicas share batches (see batch.rs).
        let cluster = self.session.get_cluster_state();
        let keyspace = self.metadata_keyspace.as_str();
        let mut by_owners: HashMap<Owners<'_>, Packer<Write<'_>>> = HashMap::new();
        for (key, partition) in partitions {
            // Every table is keyed by the phone number: one token for all.
            let owners = match cluster.compute_token(keyspace, "contacts", &(key,)) {
                Ok(token) => {
                    let mut replicas: Vec<_> = partition
                        .tables()
                        .into_iter()
                        .flat_map(|table| cluster.get_token_endpoints(keyspace, table, token))
                        .map(|(node, shard)| (node.host_id, shard))
                        .collect();
                    replicas.sort_unstable();
                    replicas.dedup();
                    Owners::Replicas(replicas)
                }
                Err(_) => Owners::Unknown(key),
            };
            by_owners
                .entry(owners)
                .or_default()
                .partition(self.partition_writes(partition, absent)?);
        }
        let mut sends = Vec::new();
        for packer in by_owners.into_values() {
            for chain in batch::into_batches(packer.finish()) {
                sends.push(self.send_chain(chain));
            }
        }
        futures::stream::iter(sends)
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await
    }

    /// The statements of one partition, in order: its messages (the row with the normal
    /// write timestamp, the time index, and the reports with the status-timestamp rule,
    /// so statuses already recorded never regress), its purchases, then the contact's row
    /// (a write-behind flush sends purchases in a step of their own, see `write_behind`).
    fn partition_writes<'a>(
        &'a self,
        partition: Partition<'a>,
        absent: Absent,
    ) -> Result<Vec<Write<'a>>, StoreError> {
        let mut writes = Vec::new();
        let mut push = |statement: &'a PreparedStatement, values: BoxedRow<'a>, text_bytes| {
            writes.push(Write {
                statement,
                values,
                text_bytes,
            })
        };
        for message in partition.messages {
            let key = message.contact.as_str();
            let wamid = message.wamid.as_str();
            let text = message.body.as_ref().map_or(0, String::len) + message.kind.len();
            if inbound_only(message) {
                let row = InboundValues::new(message, absent);
                push(&self.st.put_inbound, Box::new(row), text + wamid.len());
                continue;
            }
            let row = MessageValues::new(message, absent);
            push(&self.st.put_message, Box::new(row), text + wamid.len());
            let index = (key, rows::ts(message.created_at), wamid);
            push(&self.st.put_message_index, Box::new(index), wamid.len());
            for (status, at, code) in message.timeline.reports() {
                if let Some((statement, values)) =
                    self.status_statement(key, wamid, status, at, code)
                {
                    push(statement, values, wamid.len());
                }
            }
        }
        for (contact, purchase) in partition.purchases {
            let row = PurchaseValues::new(contact, purchase, absent);
            let bytes = row.text_bytes();
            push(&self.st.put_purchase, Box::new(row), bytes);
        }
        if let Some(write) = partition.contact {
            let row = ContactValues::new(write, absent)?;
            let bytes = row.text_bytes();
            push(&self.st.upsert_contact, Box::new(row), bytes);
        }
        Ok(writes)
    }

    /// Sends a chain's batches one after the other.
    async fn send_chain(&self, chain: Chain<'_>) -> Result<(), StoreError> {
        for (mut batch, values) in chain {
            batch.set_is_idempotent(true);
            self.session
                .batch(&batch, values)
                .await
                .map_err(|e| errors::execution("write_behind", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn earlier_reports_get_higher_write_timestamps_in_the_past() {
        let early = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let late = early + chrono::Duration::milliseconds(1);
        assert!(status_timestamp(early) > status_timestamp(late));
        let now_micros = Utc::now().timestamp_micros();
        let since_2014 = Utc.with_ymd_and_hms(2014, 1, 1, 0, 0, 0).unwrap();
        assert!(status_timestamp(since_2014) <= now_micros);
        assert!(status_timestamp(Utc::now()) > 0);
    }

    #[test]
    fn keyspace_names_are_checked() {
        assert!(valid_keyspace("sembang_test_1").is_ok());
        for bad in ["", "1abc", "a-b", "a;drop", &"x".repeat(49)] {
            assert!(valid_keyspace(bad).is_err(), "{bad}");
        }
    }
}
