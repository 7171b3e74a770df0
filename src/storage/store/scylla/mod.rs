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

mod catalog;
mod contacts;
mod messages;
mod recipients;
mod sends;
mod write_behind;

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
    CampaignRecord, Catalog, Claim, ContactWrite, Contacts, Direction, IcLink, MessageLog,
    MessageRecord, Page, PageToken, SegmentRecord, SendLedger, SendOutcome, SendResult, StoreError,
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

/// Every prepared statement, by aggregate (each beside the code that uses it).
struct Statements {
    contacts: contacts::ContactStatements,
    messages: messages::MessageStatements,
    sends: sends::SendStatements,
    catalog: catalog::CatalogStatements,
    recipients: recipients::RecipientStatements,
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
        let (contacts, messages, sends, catalog, recipients) = futures::try_join!(
            contacts::ContactStatements::prepare(session, ks),
            messages::MessageStatements::prepare(session, ks),
            sends::SendStatements::prepare(session, ks),
            catalog::CatalogStatements::prepare(session, ks),
            recipients::RecipientStatements::prepare(session, ks),
        )?;
        Ok(Statements {
            contacts,
            messages,
            sends,
            catalog,
            recipients,
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
