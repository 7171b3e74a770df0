//! The production sink: typed RowBinary inserts into the event tables of
//! schemas/clickhouse through the `clickhouse` crate, with validation off (ClickHouse 18.16
//! has no RowBinaryWithNamesAndTypes) and no compression (broken in the Debian build).
//!
//! Each table's rows of a batch go in one INSERT (atomic in a MergeTree). Every attempt is
//! bounded by `request_timeout`; transient failures (connection refused or reset, timeouts,
//! HTTP 5xx without a ClickHouse exception, and ClickHouse exceptions that mean "try again":
//! too many parts, memory limit, ...) are retried with exponential backoff up to
//! `max_retries` (the one retry policy, `crate::retry`). Retrying an insert whose first
//! attempt did land is harmless: the tables collapse copies of an event id. Everything
//! else is [`SinkError::Rejected`] at once.
//!
//! This file is the client (requests, timeouts, retries, error classification) and the
//! sink; [`rows`] holds the row types of each table both ways, [`migrations`] the schema,
//! and [`reader`] reading back (events, and the analysts' aggregates).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use clickhouse::{Client, Compression, Row, RowOwned, RowRead, RowWrite};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::contact::WhatsappStatus;
use crate::domain::message::DeliveryStatus;
use crate::domain::money::Money;
use crate::domain::phone::PhoneNumber;
use crate::domain::purchase::PurchaseStatus;
use crate::storage::migrate::{migrate, MigrateError, Migration, MigrationReport, MigrationTarget};

use super::{
    AnalyticsReader, CustomerValue, DemographicRow, EventReader, EventSink, EventTable, FunnelRow,
    OcrOutcomeRow, PendingReviewRow, RevenueRow, SinkError, ValueBucket,
};
use crate::retry::RetryPolicy;
use crate::topics::events::*;

mod migrations;
mod reader;
mod rows;

pub use migrations::{ClickHouseMigrations, CLICKHOUSE_MIGRATIONS};
use rows::Rows;

use crate::pii::pseudonym::{PhonePseudonyms, PseudonymKey};

const SERVICE: &str = "clickhouse";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Bound on one attempt of one request (connect, send, server work, answer).
    pub request_timeout: Duration,
    /// Retries after the first attempt, for transient failures only.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// With a key, contacts' phone numbers are written as pseudonyms (see
    /// [`crate::pii::pseudonym`]): analysts join on them, and never see a number.
    pub phone_pseudonyms: Option<PseudonymKey>,
}

impl ClickHouseConfig {
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        ClickHouseConfig {
            url: url.into(),
            database: database.into(),
            user: None,
            password: None,
            request_timeout: Duration::from_secs(30),
            max_retries: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            phone_pseudonyms: None,
        }
    }
}

#[derive(Clone)]
pub struct ClickHouseSink {
    client: Client,
    config: ClickHouseConfig,
    pseudonyms: Option<Arc<PhonePseudonyms>>,
}

impl std::fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSink")
            .field("url", &self.config.url)
            .field("database", &self.config.database)
            .finish_non_exhaustive()
    }
}

impl ClickHouseSink {
    /// No I/O: the first request connects. Fails only on an unusable database name.
    pub fn new(config: ClickHouseConfig) -> Result<ClickHouseSink, SinkError> {
        if !is_identifier(&config.database) {
            return Err(SinkError::Rejected {
                service: SERVICE,
                operation: "configure",
                detail: format!(
                    "database name {:?} must be letters, digits and underscores, not starting with a digit",
                    config.database
                ),
            });
        }
        let mut client = Client::default()
            .with_url(&config.url)
            .with_compression(Compression::None)
            .with_validation(false);
        if let Some(user) = &config.user {
            client = client.with_user(user);
        }
        if let Some(password) = &config.password {
            client = client.with_password(password);
        }
        let pseudonyms = config
            .phone_pseudonyms
            .as_ref()
            .map(|key| Arc::new(PhonePseudonyms::new(key)));
        Ok(ClickHouseSink {
            client,
            config,
            pseudonyms,
        })
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// The underlying client (no default database: qualify table names), for admin queries.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn migrations(&self) -> ClickHouseMigrations {
        ClickHouseMigrations { sink: self.clone() }
    }

    /// Creates the database if missing and applies [`CLICKHOUSE_MIGRATIONS`].
    pub async fn migrate(&self) -> Result<MigrationReport, MigrateError> {
        let database = self.config.database.clone();
        migrate(
            &self.migrations(),
            CLICKHOUSE_MIGRATIONS,
            &[("DATABASE", database.as_str())],
        )
        .await
    }

    /// Forces the merges that collapse copies of an event id (`OPTIMIZE TABLE .. FINAL`).
    /// Never needed for correct answers; for tests and maintenance.
    pub async fn optimize_final(&self, table: &str) -> Result<(), SinkError> {
        if !is_identifier(table) {
            return Err(SinkError::Rejected {
                service: SERVICE,
                operation: "optimize",
                detail: format!("{table:?} is not a table name"),
            });
        }
        let sql = format!("OPTIMIZE TABLE {} FINAL", self.qualified(table));
        self.execute("optimize", &sql).await
    }

    /// Runs one statement (DDL, OPTIMIZE, ...) with the timeout and retries of the sink.
    pub async fn execute(&self, operation: &'static str, sql: &str) -> Result<(), SinkError> {
        let client = &self.client;
        self.with_retries(operation, move || async move {
            client.query(sql).execute().await
        })
        .await
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{table}", self.config.database)
    }

    async fn insert_rows<R>(&self, table: EventTable, rows: &[R]) -> Result<(), SinkError>
    where
        R: RowOwned + RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let name = self.qualified(table.name());
        let client = &self.client;
        let name = name.as_str();
        self.with_retries("insert", move || async move {
            let mut insert = client.insert_unescaped::<R>(name).await?;
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        })
        .await
    }

    async fn fetch<R>(&self, sql: String) -> Result<Vec<R>, SinkError>
    where
        R: RowOwned + RowRead,
    {
        let client = &self.client;
        let sql = sql.as_str();
        self.with_retries("query", move || async move {
            client.query(sql).fetch_all::<R>().await
        })
        .await
    }

    async fn with_retries<T, F, Fut>(
        &self,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<T, SinkError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = clickhouse::error::Result<T>>,
    {
        let timeout = self.config.request_timeout;
        let policy = RetryPolicy {
            first_delay: self.config.initial_backoff,
            max_delay: self.config.max_backoff,
            retries: self.config.max_retries as usize,
            jitter: true,
        };
        let transient = |error: &SinkError| {
            matches!(
                error,
                SinkError::Unavailable { .. } | SinkError::Timeout { .. }
            )
        };
        policy
            .run(operation, transient, || {
                let attempt = attempt();
                async move {
                    match tokio::time::timeout(timeout, attempt).await {
                        Ok(Ok(value)) => Ok(value),
                        Ok(Err(error)) => Err(classify(operation, error, timeout)),
                        Err(_) => Err(SinkError::Timeout {
                            service: SERVICE,
                            operation,
                            after: timeout,
                        }),
                    }
                }
            })
            .await
    }

    fn day_filter(from: NaiveDate, to: NaiveDate) -> String {
        format!(
            "day >= toDate('{}') AND day <= toDate('{}')",
            from.format("%Y-%m-%d"),
            to.format("%Y-%m-%d")
        )
    }
}

/// ClickHouse exception codes that mean "the same request may succeed later".
const TRANSIENT_CODES: &[u32] = &[
    3,   // UNEXPECTED_END_OF_FILE
    159, // TIMEOUT_EXCEEDED
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
    999, // KEEPER_EXCEPTION
];

/// The ClickHouse exception code in an error text: `Code: 60, e.displayText() = ...`
/// (18.x) or `Code: 60. DB::Exception: ...` (newer).
fn exception_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + "Code: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn classify(
    operation: &'static str,
    error: clickhouse::error::Error,
    after: Duration,
) -> SinkError {
    use clickhouse::error::Error;
    match error {
        Error::Network(e) => SinkError::Unavailable {
            service: SERVICE,
            detail: error_chain(&*e),
        },
        Error::TimedOut => SinkError::Timeout {
            service: SERVICE,
            operation,
            after,
        },
        Error::BadResponse(text) => {
            let transient = match exception_code(&text) {
                Some(code) => TRANSIENT_CODES.contains(&code),
                // No ClickHouse exception: a bare 5xx status, or a proxy's error page.
                None => !text.starts_with('4'),
            };
            if transient {
                SinkError::Unavailable {
                    service: SERVICE,
                    detail: text,
                }
            } else {
                SinkError::Rejected {
                    service: SERVICE,
                    operation,
                    detail: text,
                }
            }
        }
        other => SinkError::Rejected {
            service: SERVICE,
            operation,
            detail: other.to_string(),
        },
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[async_trait]
impl EventSink for ClickHouseSink {
    fn name(&self) -> &'static str {
        SERVICE
    }

    /// A mutation per table that has a `contact_phone` column and keeps rows (any
    /// MergeTree but the aggregating ones), found in `system.columns` so tables added
    /// later are covered. The audit trail stays: it is the record of who handled the
    /// person's data, the erasure included, and names them by pseudonym only. Mutations apply in the background; the rows are gone from
    /// reads once each finishes (`system.mutations`).
    async fn erase_contact(&self, contact: &PhoneNumber) -> Result<(), SinkError> {
        let value = match &self.pseudonyms {
            Some(pseudonyms) => pseudonyms.seal(contact.as_str()),
            None => contact.as_str().to_string(),
        };
        let db = &self.config.database;
        let tables: Vec<String> = self
            .fetch(format!(
                "SELECT name FROM system.tables WHERE database = '{db}' \
                 AND engine LIKE '%MergeTree' AND engine NOT LIKE 'Aggregating%' \
                 AND name != 'personal_data_access' \
                 AND name IN (SELECT table FROM system.columns WHERE database = '{db}' AND name = 'contact_phone') \
                 ORDER BY name"
            ))
            .await?;
        let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
        for table in tables {
            self.execute(
                "erase contact",
                &format!("ALTER TABLE {db}.{table} DELETE WHERE contact_phone = '{quoted}'"),
            )
            .await?;
        }
        Ok(())
    }

    /// Mutations (`ALTER TABLE … UPDATE`, ClickHouse 18.12 and later), applied in the
    /// background by the server; the condition skips rows already cleared, so a sweep
    /// repeated before the last finished rewrites nothing new.
    async fn expire_message_text(&self, before: DateTime<Utc>) -> Result<(), SinkError> {
        let db = &self.config.database;
        let cutoff = before.format("%Y-%m-%d %H:%M:%S");
        for (table, column) in [("inbound_messages", "text"), ("outbound_messages", "body")] {
            self.execute(
                "expire message text",
                &format!(
                    "ALTER TABLE {db}.{table} UPDATE {column} = '' \
                     WHERE occurred_at < toDateTime('{cutoff}', 'UTC') AND {column} != ''"
                ),
            )
            .await?;
        }
        Ok(())
    }

    async fn write(&self, events: &[AnalyticsEvent]) -> Result<(), SinkError> {
        let mut rows = Rows::default();
        for event in events {
            rows.push(&event.normalized())?;
        }
        if let Some(pseudonyms) = &self.pseudonyms {
            for contact in rows.contacts_mut() {
                *contact = pseudonyms.seal(contact);
            }
        }
        self.insert_rows(EventTable::InboundMessages, &rows.inbound)
            .await?;
        self.insert_rows(EventTable::OutboundMessages, &rows.outbound)
            .await?;
        self.insert_rows(EventTable::MessageStatuses, &rows.statuses)
            .await?;
        self.insert_rows(EventTable::Purchases, &rows.purchases)
            .await?;
        self.insert_rows(EventTable::OcrResults, &rows.ocr).await?;
        self.insert_rows(EventTable::ContactSnapshots, &rows.snapshots)
            .await?;
        self.insert_rows(EventTable::PersonalDataAccess, &rows.accesses)
            .await?;
        self.insert_rows(EventTable::CampaignSends, &rows.sends)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::rows::*;
    use super::*;

    #[test]
    fn finds_exception_codes_of_old_and_new_servers() {
        assert_eq!(
            exception_code("Code: 60, e.displayText() = DB::Exception: Table x doesn't exist"),
            Some(60)
        );
        assert_eq!(
            exception_code("Code: 252. DB::Exception: Too many parts"),
            Some(252)
        );
        assert_eq!(exception_code("503 Service Unavailable"), None);
    }

    #[test]
    fn retries_only_transient_failures() {
        use clickhouse::error::Error;
        let after = Duration::from_secs(1);
        let kind = |e| match classify("insert", e, after) {
            SinkError::Unavailable { .. } => "transient",
            SinkError::Timeout { .. } => "timeout",
            _ => "permanent",
        };
        assert_eq!(
            kind(Error::BadResponse(
                "Code: 252. DB::Exception: Too many parts".into()
            )),
            "transient"
        );
        assert_eq!(
            kind(Error::BadResponse("503 Service Unavailable".into())),
            "transient"
        );
        assert_eq!(
            kind(Error::BadResponse(
                "Code: 60, e.displayText() = DB::Exception: Table sembang.x doesn't exist".into()
            )),
            "permanent"
        );
        assert_eq!(
            kind(Error::BadResponse("404 Not Found".into())),
            "permanent"
        );
        assert_eq!(kind(Error::TimedOut), "timeout");
    }

    #[test]
    fn converts_dates_and_money_exactly() {
        let date = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_eq!(date_from_days(days(date).unwrap()).unwrap(), date);
        assert!(days(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()).is_err());
        assert_eq!(decimal(Money::from_sen(-12_345)).unwrap(), -12_345);
        assert!(decimal(Money::from_sen(i64::MAX)).is_err());
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let versions: Vec<u32> = CLICKHOUSE_MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions, vec![1, 2, 3, 4]);
        for migration in CLICKHOUSE_MIGRATIONS {
            for statement in migration.statements(&[("DATABASE", "db")]) {
                assert!(statement.contains("IF NOT EXISTS"), "{statement}");
                assert!(!statement.contains("${"), "{statement}");
            }
        }
    }
}
