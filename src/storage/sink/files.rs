//! The default profile's sink: JSON lines per table and UTC day,
//! `<dir>/<table>/<YYYY-MM-DD>.jsonl`, one event per line (the table's row as a JSON
//! object, money as decimal strings).
//!
//! Replays: writes always append, and the read side collapses them, keeping the first line
//! of each event id (events are immutable, so every copy is the same). Appending keeps a
//! write O(batch) with no index to maintain or lose; the cost is a few duplicate lines after
//! a crash. A batch is durable when `write` returns: every file it touched is flushed and
//! fsynced. A line torn by a crash mid-write is never acknowledged (the batch is written
//! again), so the reader skips lines it cannot parse, and the writer starts a new line if
//! a file does not end with one.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::SinkError;
use super::{
    views, AnalyticsReader, CustomerValue, DemographicRow, EventReader, EventSink, EventTable,
    FunnelRow, OcrOutcomeRow, PendingReviewRow, RevenueRow,
};
use crate::domain::phone::PhoneNumber;
use crate::topics::events::AnalyticsEvent;

#[derive(Clone, Debug)]
pub struct FileSink {
    dir: Arc<PathBuf>,
    /// Serializes appends, so lines of concurrent batches never interleave.
    lock: Arc<Mutex<()>>,
}

impl FileSink {
    /// Uses (and creates) `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileSink, SinkError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
        Ok(FileSink {
            dir: Arc::new(dir),
            lock: Arc::new(Mutex::new(())),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lines in a table's files (duplicates included), for tests and diagnostics.
    pub async fn count_lines(&self, table: EventTable) -> Result<u64, SinkError> {
        let dir = self.dir.clone();
        blocking(move || {
            let mut lines = 0;
            for path in table_files(&dir, table)? {
                let text = fs::read_to_string(&path).map_err(|e| file_error(&path, e))?;
                lines += text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
            }
            Ok(lines)
        })
        .await
    }

    /// Every event of a table in file order, first copy of each id only.
    async fn read_table(&self, table: EventTable) -> Result<Vec<AnalyticsEvent>, SinkError> {
        let dir = self.dir.clone();
        blocking(move || read_table(&dir, table)).await
    }

    async fn read_tables(&self, tables: &[EventTable]) -> Result<Vec<AnalyticsEvent>, SinkError> {
        let mut all = Vec::new();
        for table in tables {
            all.extend(self.read_table(*table).await?);
        }
        Ok(all)
    }
}

#[async_trait]
impl EventSink for FileSink {
    fn name(&self) -> &'static str {
        "files"
    }

    async fn write(&self, events: &[AnalyticsEvent]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
        for event in events {
            let event = event.normalized();
            let path = self
                .dir
                .join(event.table().name())
                .join(format!("{}.jsonl", event.occurred_at().format("%Y-%m-%d")));
            let line = row_json(&event).map_err(|e| file_error(&path, e))?;
            let buf = files.entry(path).or_default();
            buf.push_str(&line);
            buf.push('\n');
        }
        let _guard = self.lock.lock().await;
        blocking(move || {
            for (path, text) in files {
                append(&path, text.as_bytes())?;
            }
            Ok(())
        })
        .await
    }

    /// Rewrites each file that holds the contact's rows without them (under the lock that
    /// appends take, so no row of anyone else is lost).
    async fn erase_contact(&self, contact: &PhoneNumber) -> Result<(), SinkError> {
        let contact = contact.clone();
        // The audit trail stays (see the ClickHouse sink's erasure).
        let tables: Vec<EventTable> = EventTable::ALL
            .into_iter()
            .filter(|t| *t != EventTable::PersonalDataAccess)
            .collect();
        self.rewrite(tables, None, move |event| {
            if event.contact_phone() == Some(&contact) {
                Edit::Drop
            } else {
                Edit::Keep
            }
        })
        .await
    }

    async fn expire_message_text(&self, before: DateTime<Utc>) -> Result<(), SinkError> {
        let tables = vec![EventTable::InboundMessages, EventTable::OutboundMessages];
        // Files are per UTC day of the event: later days hold nothing older than `before`.
        self.rewrite(tables, Some(before.date_naive()), move |event| {
            if event.occurred_at() >= before {
                return Edit::Keep;
            }
            let mut event = event;
            match event.message_text_mut() {
                Some(text @ Some(_)) => {
                    *text = None;
                    Edit::Replace(Box::new(event))
                }
                _ => Edit::Keep,
            }
        })
        .await
    }
}

/// What a rewrite does with one row.
enum Edit {
    Keep,
    Drop,
    Replace(Box<AnalyticsEvent>),
}

impl FileSink {
    /// Rewrites every file of `tables` (of days up to `last_day`, when given) whose rows
    /// `edit` drops or replaces: a new file renamed over the old, under the append lock.
    /// Lines that do not parse (a torn tail) are kept as they are.
    async fn rewrite(
        &self,
        tables: Vec<EventTable>,
        last_day: Option<NaiveDate>,
        edit: impl Fn(AnalyticsEvent) -> Edit + Send + 'static,
    ) -> Result<(), SinkError> {
        let dir = self.dir.clone();
        let _guard = self.lock.lock().await;
        blocking(move || {
            for table in tables {
                for path in table_files(&dir, table)? {
                    let day = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
                    if let (Some(last), Some(day)) = (last_day, day) {
                        if day > last {
                            continue;
                        }
                    }
                    let text = fs::read_to_string(&path).map_err(|e| file_error(&path, e))?;
                    let mut kept = String::with_capacity(text.len());
                    let mut changed = false;
                    for line in text.split_inclusive('\n') {
                        let Ok(event) = parse_row(table, line.trim_end()) else {
                            kept.push_str(line);
                            continue;
                        };
                        match edit(event) {
                            Edit::Keep => kept.push_str(line),
                            Edit::Drop => changed = true,
                            Edit::Replace(event) => {
                                changed = true;
                                kept.push_str(&row_json(&event).map_err(|e| file_error(&path, e))?);
                                kept.push('\n');
                            }
                        }
                    }
                    if changed {
                        let staged = path.with_extension("jsonl.rewriting");
                        fs::write(&staged, kept.as_bytes()).map_err(|e| file_error(&staged, e))?;
                        fs::rename(&staged, &path).map_err(|e| file_error(&path, e))?;
                    }
                }
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl EventReader for FileSink {
    async fn count_events(&self, table: EventTable) -> Result<u64, SinkError> {
        Ok(self.read_table(table).await?.len() as u64)
    }
    async fn fetch_events(
        &self,
        table: EventTable,
        limit: usize,
    ) -> Result<Vec<AnalyticsEvent>, SinkError> {
        let mut events = self.read_table(table).await?;
        events.sort_by_key(|e| (e.occurred_at(), e.event_id()));
        events.truncate(limit);
        Ok(events)
    }
}

#[async_trait]
impl AnalyticsReader for FileSink {
    async fn campaign_funnel(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<FunnelRow>, SinkError> {
        let events = self
            .read_tables(&[
                EventTable::CampaignSends,
                EventTable::MessageStatuses,
                EventTable::InboundMessages,
                EventTable::Purchases,
            ])
            .await?;
        Ok(views::campaign_funnel(&events, from, to))
    }
    async fn daily_revenue(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<RevenueRow>, SinkError> {
        let events = self.read_table(EventTable::Purchases).await?;
        Ok(views::daily_revenue(&events, from, to))
    }
    async fn demographics(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DemographicRow>, SinkError> {
        let events = self.read_table(EventTable::ContactSnapshots).await?;
        Ok(views::demographics(&events, from, to))
    }
    async fn customer_value(&self) -> Result<CustomerValue, SinkError> {
        let events = self.read_table(EventTable::ContactSnapshots).await?;
        Ok(views::customer_value(&events))
    }
    async fn ocr_outcomes(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<OcrOutcomeRow>, SinkError> {
        let events = self.read_table(EventTable::OcrResults).await?;
        Ok(views::ocr_outcomes(&events, from, to))
    }
    async fn pending_reviews(&self, limit: u32) -> Result<Vec<PendingReviewRow>, SinkError> {
        let events = self.read_table(EventTable::Purchases).await?;
        Ok(views::pending_reviews(&events, limit))
    }
}

/// The row alone, without the enum tag: the table is the directory.
fn row_json(event: &AnalyticsEvent) -> Result<String, serde_json::Error> {
    match event {
        AnalyticsEvent::InboundMessage(e) => serde_json::to_string(e),
        AnalyticsEvent::OutboundMessage(e) => serde_json::to_string(e),
        AnalyticsEvent::MessageStatus(e) => serde_json::to_string(e),
        AnalyticsEvent::Purchase(e) => serde_json::to_string(e),
        AnalyticsEvent::OcrResult(e) => serde_json::to_string(e),
        AnalyticsEvent::ContactSnapshot(e) => serde_json::to_string(e),
        AnalyticsEvent::CampaignSend(e) => serde_json::to_string(e),
        AnalyticsEvent::PersonalDataAccess(e) => serde_json::to_string(e),
    }
}

fn parse_row(table: EventTable, line: &str) -> Result<AnalyticsEvent, serde_json::Error> {
    fn row<T: DeserializeOwned + Into<AnalyticsEvent>>(
        line: &str,
    ) -> Result<AnalyticsEvent, serde_json::Error> {
        serde_json::from_str::<T>(line).map(Into::into)
    }
    use crate::topics::events::*;
    match table {
        EventTable::InboundMessages => row::<InboundMessageEvent>(line),
        EventTable::OutboundMessages => row::<OutboundMessageEvent>(line),
        EventTable::MessageStatuses => row::<MessageStatusEvent>(line),
        EventTable::Purchases => row::<PurchaseEvent>(line),
        EventTable::OcrResults => row::<OcrResultEvent>(line),
        EventTable::ContactSnapshots => row::<ContactSnapshotEvent>(line),
        EventTable::CampaignSends => row::<CampaignSendEvent>(line),
        EventTable::PersonalDataAccess => row::<PersonalDataAccessEvent>(line),
    }
}

fn table_files(dir: &Path, table: EventTable) -> Result<Vec<PathBuf>, SinkError> {
    let table_dir = dir.join(table.name());
    let entries = match fs::read_dir(&table_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(file_error(&table_dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| file_error(&table_dir, e))?.path();
        if path.extension().is_some_and(|ext| ext == "jsonl") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_table(dir: &Path, table: EventTable) -> Result<Vec<AnalyticsEvent>, SinkError> {
    let mut seen = HashSet::new();
    let mut events = Vec::new();
    for path in table_files(dir, table)? {
        let text = fs::read_to_string(&path).map_err(|e| file_error(&path, e))?;
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match parse_row(table, line) {
                Ok(event) => {
                    if seen.insert(event.event_id()) {
                        events.push(event);
                    }
                }
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    line = number + 1,
                    error = %e,
                    "skipping an unreadable event line (torn by a crash?)"
                ),
            }
        }
    }
    Ok(events)
}

fn append(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let created = !path.exists();
    if created {
        fs::create_dir_all(parent).map_err(|e| file_error(parent, e))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    let len = file.metadata().map_err(|e| file_error(path, e))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|e| file_error(path, e))?;
        if last[0] != b'\n' {
            file.write_all(b"\n").map_err(|e| file_error(path, e))?;
        }
    }
    file.write_all(bytes)
        .and_then(|_| file.flush())
        .and_then(|_| file.sync_data())
        .map_err(|e| file_error(path, e))?;
    if created {
        // A new file's directory entry must be durable too.
        fs::File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| file_error(parent, e))?;
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SinkError::File {
            path: String::new(),
            detail: format!("file task failed: {e}"),
        })?
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> SinkError {
    SinkError::File {
        path: path.display().to_string(),
        detail: error.to_string(),
    }
}
