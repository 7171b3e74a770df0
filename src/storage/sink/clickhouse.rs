//! The production sink: typed RowBinary inserts into the event tables of
//! schemas/clickhouse through the `clickhouse` crate, with validation off (ClickHouse 18.16
//! has no RowBinaryWithNamesAndTypes) and no compression (broken in the Debian build).
//!
//! Each table's rows of a batch go in one INSERT (atomic in a MergeTree). Every attempt is
//! bounded by `request_timeout`; transient failures (connection refused or reset, timeouts,
//! HTTP 5xx without a ClickHouse exception, and ClickHouse exceptions that mean "try again":
//! too many parts, memory limit, ...) are retried with exponential backoff up to
//! `max_retries`. Retrying an insert whose first attempt did land is harmless: the tables
//! collapse copies of an event id. Everything else is [`SinkError::Rejected`] at once.

use std::future::Future;
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

use super::{DemographicRow, EventReader, EventSink, EventTable, FunnelRow, RevenueRow, SinkError};
use crate::retry::RetryPolicy;
use crate::topics::events::*;

const SERVICE: &str = "clickhouse";

/// The ClickHouse schema, applied by [`ClickHouseSink::migrate`] with `${DATABASE}`
/// replaced by the configured database.
pub const CLICKHOUSE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        text: include_str!("../../../schemas/clickhouse/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "views",
        text: include_str!("../../../schemas/clickhouse/0002_views.sql"),
    },
];

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
        }
    }
}

#[derive(Clone)]
pub struct ClickHouseSink {
    client: Client,
    config: ClickHouseConfig,
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
        Ok(ClickHouseSink { client, config })
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

    async fn write(&self, events: &[AnalyticsEvent]) -> Result<(), SinkError> {
        let mut rows = Rows::default();
        for event in events {
            rows.push(&event.normalized())?;
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
        self.insert_rows(EventTable::CampaignSends, &rows.sends)
            .await
    }
}

#[async_trait]
impl EventReader for ClickHouseSink {
    async fn count_events(&self, table: EventTable) -> Result<u64, SinkError> {
        let sql = format!(
            "SELECT uniqExact(event_id) FROM {}",
            self.qualified(table.name())
        );
        let counts: Vec<u64> = self.fetch(sql).await?;
        Ok(counts.first().copied().unwrap_or(0))
    }

    async fn fetch_events(
        &self,
        table: EventTable,
        limit: usize,
    ) -> Result<Vec<AnalyticsEvent>, SinkError> {
        let from = self.qualified(table.name());
        let select = |columns: &[&str]| {
            format!(
                "SELECT {} FROM {from} FINAL ORDER BY occurred_at, event_id LIMIT {limit}",
                columns.join(", ")
            )
        };
        fn decode<R: TryInto<AnalyticsEvent, Error = String>>(
            rows: Vec<R>,
        ) -> Result<Vec<AnalyticsEvent>, SinkError> {
            rows.into_iter()
                .map(|row| {
                    row.try_into().map_err(|detail| SinkError::Rejected {
                        service: SERVICE,
                        operation: "fetch",
                        detail,
                    })
                })
                .collect()
        }
        match table {
            EventTable::InboundMessages => decode(
                self.fetch::<InboundRow>(select(InboundRow::COLUMN_NAMES))
                    .await?,
            ),
            EventTable::OutboundMessages => decode(
                self.fetch::<OutboundRow>(select(OutboundRow::COLUMN_NAMES))
                    .await?,
            ),
            EventTable::MessageStatuses => decode(
                self.fetch::<StatusRow>(select(StatusRow::COLUMN_NAMES))
                    .await?,
            ),
            EventTable::Purchases => decode(
                self.fetch::<PurchaseRow>(select(PurchaseRow::COLUMN_NAMES))
                    .await?,
            ),
            EventTable::OcrResults => {
                decode(self.fetch::<OcrRow>(select(OcrRow::COLUMN_NAMES)).await?)
            }
            EventTable::ContactSnapshots => decode(
                self.fetch::<SnapshotRow>(select(SnapshotRow::COLUMN_NAMES))
                    .await?,
            ),
            EventTable::CampaignSends => {
                decode(self.fetch::<SendRow>(select(SendRow::COLUMN_NAMES)).await?)
            }
        }
    }

    async fn campaign_funnel(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FunnelRow>, SinkError> {
        let sql = format!(
            "SELECT day, campaign_id, stage, contacts, events FROM {} WHERE {} \
             ORDER BY day, campaign_id, stage",
            self.qualified("campaign_funnel"),
            Self::day_filter(from, to)
        );
        let rows: Vec<(u16, String, String, u64, u64)> = self.fetch(sql).await?;
        rows.into_iter()
            .map(|(day, campaign_id, stage, contacts, events)| {
                Ok(FunnelRow {
                    day: date_from_days(day).map_err(query_error)?,
                    campaign_id,
                    stage,
                    contacts,
                    events,
                })
            })
            .collect()
    }

    async fn daily_revenue(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<RevenueRow>, SinkError> {
        let sql = format!(
            "SELECT day, purchases, buyers, toDecimal64(revenue, 2) AS revenue_sen FROM {} \
             WHERE {} ORDER BY day",
            self.qualified("daily_revenue"),
            Self::day_filter(from, to)
        );
        let rows: Vec<(u16, u64, u64, i64)> = self.fetch(sql).await?;
        rows.into_iter()
            .map(|(day, purchases, buyers, sen)| {
                Ok(RevenueRow {
                    day: date_from_days(day).map_err(query_error)?,
                    purchases,
                    buyers,
                    revenue: Money::from_sen(sen),
                })
            })
            .collect()
    }

    async fn demographics(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DemographicRow>, SinkError> {
        let sql = format!(
            "SELECT day, gender, age_band, state, tier, contacts FROM {} WHERE {} \
             ORDER BY day, gender, age_band, state, tier",
            self.qualified("daily_demographics"),
            Self::day_filter(from, to)
        );
        let rows: Vec<(u16, String, String, String, String, u64)> = self.fetch(sql).await?;
        rows.into_iter()
            .map(|(day, gender, age_band, state, tier, contacts)| {
                Ok(DemographicRow {
                    day: date_from_days(day).map_err(query_error)?,
                    gender,
                    age_band,
                    state,
                    tier,
                    contacts,
                })
            })
            .collect()
    }
}

fn query_error(detail: String) -> SinkError {
    SinkError::Rejected {
        service: SERVICE,
        operation: "query",
        detail,
    }
}

/// Records applied versions in `${DATABASE}.schema_migrations`.
pub struct ClickHouseMigrations {
    sink: ClickHouseSink,
}

impl ClickHouseMigrations {
    fn target_error(&self, error: SinkError) -> MigrateError {
        MigrateError::Target {
            target: SERVICE,
            detail: error.to_string(),
        }
    }
}

#[async_trait]
impl MigrationTarget for ClickHouseMigrations {
    fn name(&self) -> &'static str {
        SERVICE
    }

    async fn prepare(&self) -> Result<(), MigrateError> {
        let db = &self.sink.config.database;
        self.sink
            .execute(
                "create database",
                &format!("CREATE DATABASE IF NOT EXISTS {db}"),
            )
            .await
            .map_err(|e| self.target_error(e))?;
        self.sink
            .execute(
                "create schema_migrations",
                &format!(
                    "CREATE TABLE IF NOT EXISTS {db}.schema_migrations \
                     (version UInt32, name String, applied_at DateTime('UTC')) \
                     ENGINE = MergeTree() ORDER BY version"
                ),
            )
            .await
            .map_err(|e| self.target_error(e))
    }

    async fn applied_version(&self) -> Result<u32, MigrateError> {
        let sql = format!(
            "SELECT max(version) FROM {}.schema_migrations",
            self.sink.config.database
        );
        let versions: Vec<u32> = self
            .sink
            .fetch(sql)
            .await
            .map_err(|e| self.target_error(e))?;
        Ok(versions.first().copied().unwrap_or(0))
    }

    async fn apply(
        &self,
        migration: &Migration,
        statements: &[String],
    ) -> Result<(), MigrateError> {
        let failed = |detail: String| MigrateError::Failed {
            target: SERVICE,
            version: migration.version,
            name: migration.name,
            detail,
        };
        for statement in statements {
            self.sink
                .execute("migrate", statement)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        let record = format!(
            "INSERT INTO {}.schema_migrations (version, name, applied_at) \
             SELECT toUInt32({}), '{}', now()",
            self.sink.config.database,
            migration.version,
            migration.name.replace(['\\', '\''], "")
        );
        self.sink
            .execute("record migration", &record)
            .await
            .map_err(|e| failed(e.to_string()))
    }
}

// ---- rows as ClickHouse stores them ------------------------------------------------------

#[derive(Default)]
struct Rows {
    inbound: Vec<InboundRow>,
    outbound: Vec<OutboundRow>,
    statuses: Vec<StatusRow>,
    purchases: Vec<PurchaseRow>,
    ocr: Vec<OcrRow>,
    snapshots: Vec<SnapshotRow>,
    sends: Vec<SendRow>,
}

impl Rows {
    fn push(&mut self, event: &AnalyticsEvent) -> Result<(), SinkError> {
        let invalid = |detail: String| SinkError::InvalidEvent {
            event_id: event.event_id().to_string(),
            detail,
        };
        let occurred_at = seconds(event.occurred_at()).map_err(invalid)?;
        match event {
            AnalyticsEvent::InboundMessage(e) => self.inbound.push(InboundRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                wamid: e.wamid.clone(),
                message_type: e.message_type.clone(),
                text: text(&e.text),
                context_wamid: text(&e.context_wamid),
                campaign_id: text(&e.campaign_id),
            }),
            AnalyticsEvent::OutboundMessage(e) => self.outbound.push(OutboundRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                wamid: text(&e.wamid),
                message_type: e.message_type.clone(),
                template_name: text(&e.template_name),
                body: text(&e.body),
                campaign_id: text(&e.campaign_id),
                origin: e.origin.as_str().to_string(),
            }),
            AnalyticsEvent::MessageStatus(e) => self.statuses.push(StatusRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                wamid: e.wamid.clone(),
                status: e.status.as_str().to_string(),
                campaign_id: text(&e.campaign_id),
                error_code: e.error_code,
                error_title: text(&e.error_title),
            }),
            AnalyticsEvent::Purchase(e) => self.purchases.push(PurchaseRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                purchase_id: e.purchase_id.clone(),
                purchase_date: days(e.purchase_date).map_err(invalid)?,
                merchant: text(&e.merchant),
                receipt_no: text(&e.receipt_no),
                total: decimal(e.total).map_err(invalid)?,
                item_count: e.item_count,
                status: e.status.as_str().to_string(),
                ocr_confidence: e.ocr_confidence,
                campaign_id: text(&e.campaign_id),
            }),
            AnalyticsEvent::OcrResult(e) => self.ocr.push(OcrRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                media_id: e.media_id.clone(),
                kind: e.kind.clone(),
                status: e.status.clone(),
                confidence: e.confidence,
                duration_ms: e.duration_ms,
                fields_json: e.fields_json.clone(),
                error: text(&e.error),
            }),
            AnalyticsEvent::ContactSnapshot(e) => self.snapshots.push(SnapshotRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                contact_phone: e.contact_phone.as_str().to_string(),
                gender: e.gender.map(|g| g.as_str()).unwrap_or("").to_string(),
                age: e.age,
                state: text(&e.state),
                marital_status: e
                    .marital_status
                    .map(|m| m.as_str())
                    .unwrap_or("")
                    .to_string(),
                tier: e.tier.as_str().to_string(),
                total_spent: decimal(e.total_spent).map_err(invalid)?,
                purchase_count: e.purchase_count,
                whatsapp_status: e.whatsapp_status.as_str().to_string(),
                marketing_opt_in: u8::from(e.marketing_opt_in),
                ic_masked: text(&e.ic_masked),
                reason: e.reason.clone(),
            }),
            AnalyticsEvent::CampaignSend(e) => self.sends.push(SendRow {
                event_id: e.event_id.to_string(),
                occurred_at,
                campaign_id: e.campaign_id.clone(),
                contact_phone: e.contact_phone.as_str().to_string(),
                business_number: e.business_number.clone(),
                outcome: e.outcome.as_str().to_string(),
                template_name: text(&e.template_name),
                wamid: text(&e.wamid),
                skip_reason: text(&e.skip_reason),
                error_code: e.error_code,
            }),
        }
        Ok(())
    }
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn optional(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

/// `DateTime` is seconds since the epoch in a UInt32.
fn seconds(at: DateTime<Utc>) -> Result<u32, String> {
    u32::try_from(at.timestamp())
        .map_err(|_| format!("time {at} is outside ClickHouse DateTime (1970 to 2106)"))
}

fn time_from_seconds(seconds: u32) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(i64::from(seconds), 0).ok_or_else(|| format!("bad time {seconds}"))
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(date) => date,
    None => panic!("epoch"),
};

/// `Date` is days since 1970-01-01 in a UInt16.
fn days(date: NaiveDate) -> Result<u16, String> {
    u16::try_from((date - EPOCH).num_days())
        .map_err(|_| format!("date {date} is outside ClickHouse Date (1970 to 2149)"))
}

fn date_from_days(days: u16) -> Result<NaiveDate, String> {
    EPOCH
        .checked_add_days(chrono::Days::new(u64::from(days)))
        .ok_or_else(|| format!("bad date {days}"))
}

/// `Decimal(18, 2)` is the amount in sen as an Int64, at most 18 digits.
fn decimal(amount: Money) -> Result<i64, String> {
    const LIMIT: i64 = 1_000_000_000_000_000_000;
    if amount.sen().abs() < LIMIT {
        Ok(amount.sen())
    } else {
        Err(format!("amount {amount} does not fit Decimal(18, 2)"))
    }
}

fn uuid(value: &str) -> Result<Uuid, String> {
    Uuid::parse_str(value).map_err(|e| format!("event_id {value:?}: {e}"))
}

fn phone(value: &str) -> Result<PhoneNumber, String> {
    PhoneNumber::from_e164_digits(value).map_err(|e| format!("phone {value:?}: {e}"))
}

fn parsed<T: std::str::FromStr>(what: &str, value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| format!("{what} {value:?}: {e}"))
}

fn optional_parsed<T: std::str::FromStr>(what: &str, value: &str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    if value.is_empty() {
        Ok(None)
    } else {
        parsed(what, value).map(Some)
    }
}

#[derive(Row, Serialize, Deserialize)]
struct InboundRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    business_number: String,
    wamid: String,
    message_type: String,
    text: String,
    context_wamid: String,
    campaign_id: String,
}

impl TryFrom<InboundRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: InboundRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::InboundMessage(InboundMessageEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            wamid: r.wamid,
            message_type: r.message_type,
            text: optional(r.text),
            context_wamid: optional(r.context_wamid),
            campaign_id: optional(r.campaign_id),
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
struct OutboundRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    business_number: String,
    wamid: String,
    message_type: String,
    template_name: String,
    body: String,
    campaign_id: String,
    origin: String,
}

impl TryFrom<OutboundRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: OutboundRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::OutboundMessage(OutboundMessageEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            wamid: optional(r.wamid),
            message_type: r.message_type,
            template_name: optional(r.template_name),
            body: optional(r.body),
            campaign_id: optional(r.campaign_id),
            origin: r
                .origin
                .parse()
                .map_err(|_| format!("unknown origin {:?}", r.origin))?,
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
struct StatusRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    business_number: String,
    wamid: String,
    status: String,
    campaign_id: String,
    error_code: Option<i64>,
    error_title: String,
}

impl TryFrom<StatusRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: StatusRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::MessageStatus(MessageStatusEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            wamid: r.wamid,
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| format!("status {:?}", r.status))?,
            campaign_id: optional(r.campaign_id),
            error_code: r.error_code,
            error_title: optional(r.error_title),
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
struct PurchaseRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    business_number: String,
    purchase_id: String,
    purchase_date: u16,
    merchant: String,
    receipt_no: String,
    total: i64,
    item_count: u32,
    status: String,
    ocr_confidence: Option<f32>,
    campaign_id: String,
}

fn purchase_status(value: &str) -> Result<PurchaseStatus, String> {
    [
        PurchaseStatus::Counted,
        PurchaseStatus::PendingReview,
        PurchaseStatus::Rejected,
    ]
    .into_iter()
    .find(|s| s.as_str() == value)
    .ok_or_else(|| format!("purchase status {value:?}"))
}

impl TryFrom<PurchaseRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: PurchaseRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::Purchase(PurchaseEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            purchase_id: r.purchase_id,
            purchase_date: date_from_days(r.purchase_date)?,
            merchant: optional(r.merchant),
            receipt_no: optional(r.receipt_no),
            total: Money::from_sen(r.total),
            item_count: r.item_count,
            status: purchase_status(&r.status)?,
            ocr_confidence: r.ocr_confidence,
            campaign_id: optional(r.campaign_id),
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
struct OcrRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    media_id: String,
    kind: String,
    status: String,
    confidence: f32,
    duration_ms: u32,
    fields_json: String,
    error: String,
}

impl TryFrom<OcrRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: OcrRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::OcrResult(OcrResultEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            media_id: r.media_id,
            kind: r.kind,
            status: r.status,
            confidence: r.confidence,
            duration_ms: r.duration_ms,
            fields_json: r.fields_json,
            error: optional(r.error),
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
struct SnapshotRow {
    event_id: String,
    occurred_at: u32,
    contact_phone: String,
    gender: String,
    age: Option<u8>,
    state: String,
    marital_status: String,
    tier: String,
    total_spent: i64,
    purchase_count: u32,
    whatsapp_status: String,
    marketing_opt_in: u8,
    ic_masked: String,
    reason: String,
}

impl TryFrom<SnapshotRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: SnapshotRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::ContactSnapshot(ContactSnapshotEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            contact_phone: phone(&r.contact_phone)?,
            gender: optional_parsed("gender", &r.gender)?,
            age: r.age,
            state: optional(r.state),
            marital_status: optional_parsed("marital status", &r.marital_status)?,
            tier: parsed("tier", &r.tier)?,
            total_spent: Money::from_sen(r.total_spent),
            purchase_count: r.purchase_count,
            whatsapp_status: parsed::<WhatsappStatus>("whatsapp status", &r.whatsapp_status)?,
            marketing_opt_in: r.marketing_opt_in != 0,
            ic_masked: optional(r.ic_masked),
            reason: r.reason,
        }))
    }
}

#[derive(Row, Serialize, Deserialize)]
struct SendRow {
    event_id: String,
    occurred_at: u32,
    campaign_id: String,
    contact_phone: String,
    business_number: String,
    outcome: String,
    template_name: String,
    wamid: String,
    skip_reason: String,
    error_code: Option<i64>,
}

impl TryFrom<SendRow> for AnalyticsEvent {
    type Error = String;
    fn try_from(r: SendRow) -> Result<Self, String> {
        Ok(AnalyticsEvent::CampaignSend(CampaignSendEvent {
            event_id: uuid(&r.event_id)?,
            occurred_at: time_from_seconds(r.occurred_at)?,
            campaign_id: r.campaign_id,
            contact_phone: phone(&r.contact_phone)?,
            business_number: r.business_number,
            outcome: SendOutcome::parse(&r.outcome)
                .ok_or_else(|| format!("send outcome {:?}", r.outcome))?,
            template_name: optional(r.template_name),
            wamid: optional(r.wamid),
            skip_reason: optional(r.skip_reason),
            error_code: r.error_code,
        }))
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(versions, vec![1, 2]);
        for migration in CLICKHOUSE_MIGRATIONS {
            for statement in migration.statements(&[("DATABASE", "db")]) {
                assert!(statement.contains("IF NOT EXISTS"), "{statement}");
                assert!(!statement.contains("${"), "{statement}");
            }
        }
    }
}
