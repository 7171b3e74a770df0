//! The dead-letter topic through the API, for operators (admin role): list its records
//! with their reasons, and replay chosen ones to the topic they came from once the cause
//! is fixed. A replay is safe to repeat: every effect downstream is keyed by its event (the
//! engine's exactly-once guarantee), so a record replayed twice is applied once.
//!
//! Records are read from the topic itself (a group-less read up to its end), never
//! copied elsewhere; their payloads are not shown (they hold personal data and can be
//! large), only their size, and keys that are phone numbers are masked.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::phone::PhoneNumber;
use crate::storage::bus::read_written::read_written;
use crate::storage::bus::{Bus, BusError, Message, Record};
use crate::topics::dead_letter::*;

use super::body::ApiJson;
use super::error::{ApiError, ErrorBody};
use super::query::{page_cursor, page_limit, ApiQuery};
use super::AdminState;

/// Records read from the topic for one request at most (memory and time bound).
const SCAN_LIMIT: usize = 100_000;
/// How long a read waits for a partition's next record before taking it as ended.
const IDLE: Duration = Duration::from_secs(5);
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;
/// Records one replay request may name.
const MAX_REPLAY: usize = 1_000;
/// Set on a replayed record: where in the dead-letter topic it came from.
pub const HEADER_REPLAYED_FROM: &str = "x-replayed-from";

/// What the dead-letter routes need.
pub struct DeadLetters {
    pub bus: Arc<dyn Bus>,
    /// crm.dlq (namespaced).
    pub topic: String,
    /// The topics a record may be replayed to: this deployment's own (namespaced), never
    /// a name a header could point anywhere else.
    pub replayable_topics: BTreeSet<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this reason, e.g. `malformed_event`, `poison_photo`.
    pub kind: Option<String>,
    /// Only records from this topic.
    pub original_topic: Option<String>,
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Records per page, 1 to 1,000 (default 100).
    pub limit: Option<usize>,
}

/// A dead-lettered record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterView {
    /// `<partition>.<offset>` in the dead-letter topic: what replay takes.
    #[schema(example = "3.42")]
    pub id: String,
    /// When it was dead-lettered.
    pub at: String,
    /// The stable reason, e.g. `malformed_event`.
    pub kind: Option<String>,
    /// The error in full.
    pub error: Option<String>,
    pub original_topic: Option<String>,
    pub original_partition: Option<u32>,
    pub original_offset: Option<u64>,
    /// Where an input refused before any topic came from (e.g. `webhook:whatsapp`).
    pub source: Option<String>,
    /// The record's key; a phone number is masked.
    pub key: String,
    pub payload_bytes: usize,
    /// The payload was too large to keep: its size, and it cannot be replayed.
    pub payload_omitted_bytes: Option<u64>,
    /// Whether replay can send it back (it has a payload and a topic of this deployment).
    pub replayable: bool,
    /// Set when this record is itself a replay that failed again.
    pub replayed_from: Option<String>,
}

/// A page of dead letters.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterPage {
    /// Records matching the filters among those read.
    pub total: u64,
    /// False when the topic holds more than one request reads (100,000 records): the
    /// list covers the first ones only.
    pub complete: bool,
    pub dead_letters: Vec<DeadLetterView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Which records to replay.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Ids from the list (`<partition>.<offset>`), at most 1,000.
    #[schema(example = json!(["3.42", "0.7"]))]
    pub ids: Vec<String>,
}

/// A record sent back to its topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Replayed {
    pub id: String,
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

/// A record not replayed, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotReplayed {
    pub id: String,
    /// `not_found`, `no_original_topic`, `payload_omitted` or `foreign_topic`.
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ReplayOutcome {
    pub replayed: Vec<Replayed>,
    pub skipped: Vec<NotReplayed>,
}

fn dead_letters(state: &AdminState) -> Result<&DeadLetters, ApiError> {
    state
        .dead_letters
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no_dead_letters", "this process does not read the bus"))
}

fn bus_unavailable(error: BusError) -> ApiError {
    ApiError::unavailable("bus_unavailable", error.to_string())
}

/// The dead-letter topic's records, filtered, a page at a time.
#[utoipa::path(
    get,
    path = "/api/dead-letters/",
    tag = "operations",
    params(DeadLetterQuery),
    responses(
        (status = 200, description = "A page of dead letters, oldest first per partition", body = DeadLetterPage,
         example = json!({"total": 1, "complete": true, "dead_letters": [{"id": "3.42", "at": "2026-12-07T05:20:00+00:00", "kind": "malformed_event", "error": "expected value at line 1 column 2", "original_topic": "wa.inbound", "original_partition": 3, "original_offset": 1207, "source": null, "key": "6012****789", "payload_bytes": 13, "payload_omitted_bytes": null, "replayable": true, "replayed_from": null}], "next_cursor": null})),
        (status = 400, description = "A bad cursor or limit", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Only admins see dead letters", body = ErrorBody),
        (status = 503, description = "The bus is unavailable", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn list(
    State(state): State<Arc<AdminState>>,
    ApiQuery(query): ApiQuery<DeadLetterQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    let dead = dead_letters(&state)?;
    let after = page_cursor(query.cursor.as_deref(), parse_id)?;
    let limit = page_limit(query.limit, DEFAULT_PAGE, MAX_PAGE)?;
    let written = read_written(&*dead.bus, &dead.topic, SCAN_LIMIT, IDLE)
        .await
        .map_err(bus_unavailable)?;
    let matching: Vec<DeadLetterView> = written
        .messages
        .iter()
        .map(|m| view(m, &dead.replayable_topics))
        .filter(|v| {
            query
                .kind
                .as_ref()
                .is_none_or(|k| v.kind.as_ref() == Some(k))
        })
        .filter(|v| {
            query
                .original_topic
                .as_ref()
                .is_none_or(|t| v.original_topic.as_ref() == Some(t))
        })
        .collect();
    let total = matching.len() as u64;
    let mut page: Vec<DeadLetterView> = matching
        .into_iter()
        .filter(|v| after.is_none_or(|a| parse_id(&v.id).is_some_and(|id| id > a)))
        .take(limit + 1)
        .collect();
    let next_cursor = (page.len() > limit).then(|| {
        page.truncate(limit);
        page.last().map(|v| v.id.clone()).unwrap_or_default()
    });
    Ok(Json(DeadLetterPage {
        total,
        complete: written.complete,
        dead_letters: page,
        next_cursor,
    }))
}

/// Sends chosen dead letters back to the topics they came from, with their key, payload and
/// original headers (the failure's headers dropped, `x-replayed-from` added).
#[utoipa::path(
    post,
    path = "/api/dead-letters/replay/",
    tag = "operations",
    request_body = ReplayRequest,
    responses(
        (status = 200, description = "What was replayed and what was not, with why", body = ReplayOutcome),
        (status = 400, description = "No ids, too many, or an id not of the form partition.offset", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 403, description = "Only admins replay dead letters", body = ErrorBody),
        (status = 503, description = "The bus is unavailable (nothing after the failure was sent)", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn replay(
    State(state): State<Arc<AdminState>>,
    ApiJson(request): ApiJson<ReplayRequest>,
) -> Result<Json<ReplayOutcome>, ApiError> {
    let dead = dead_letters(&state)?;
    if request.ids.is_empty() || request.ids.len() > MAX_REPLAY {
        return Err(ApiError::bad_request(
            "invalid_ids",
            format!("name 1 to {MAX_REPLAY} records"),
        ));
    }
    let mut wanted = BTreeSet::new();
    for id in &request.ids {
        wanted.insert(parse_id(id).ok_or_else(|| {
            ApiError::bad_request("invalid_ids", format!("{id:?} is not partition.offset"))
        })?);
    }
    let written = read_written(&*dead.bus, &dead.topic, SCAN_LIMIT, IDLE)
        .await
        .map_err(bus_unavailable)?;
    let producer = dead.bus.producer();
    let mut outcome = ReplayOutcome {
        replayed: Vec::new(),
        skipped: Vec::new(),
    };
    for &(partition, offset) in &wanted {
        let id = format!("{partition}.{offset}");
        let found = written
            .messages
            .iter()
            .find(|m| m.partition == partition && m.offset == offset);
        let record = match found.map(|m| replay_record(m, &dead.topic, &dead.replayable_topics)) {
            None => Err("not_found"),
            Some(record) => record,
        };
        match record {
            Err(reason) => outcome.skipped.push(NotReplayed {
                id,
                reason: reason.into(),
            }),
            Ok(record) => {
                let topic = record.topic.clone();
                let delivery = producer.send(record).await.map_err(bus_unavailable)?;
                outcome.replayed.push(Replayed {
                    id,
                    topic,
                    partition: delivery.partition,
                    offset: delivery.offset,
                });
            }
        }
    }
    tracing::info!(
        replayed = outcome.replayed.len(),
        skipped = outcome.skipped.len(),
        "dead letters replayed"
    );
    Ok(Json(outcome))
}

fn parse_id(text: &str) -> Option<(u32, u64)> {
    let (partition, offset) = text.split_once('.')?;
    Some((partition.parse().ok()?, offset.parse().ok()?))
}

fn header_text(message: &Message, name: &str) -> Option<String> {
    message
        .header(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn view(message: &Message, replayable_topics: &BTreeSet<String>) -> DeadLetterView {
    let original_topic = header_text(message, HEADER_ORIGINAL_TOPIC);
    let omitted = header_text(message, HEADER_PAYLOAD_OMITTED).and_then(|v| v.parse().ok());
    let key = String::from_utf8_lossy(&message.key).into_owned();
    DeadLetterView {
        id: format!("{}.{}", message.partition, message.offset),
        at: DateTime::<Utc>::from_timestamp_millis(message.timestamp_ms)
            .unwrap_or_default()
            .to_rfc3339(),
        kind: header_text(message, HEADER_ERROR_KIND),
        error: header_text(message, HEADER_ERROR),
        replayable: omitted.is_none()
            && original_topic
                .as_ref()
                .is_some_and(|t| replayable_topics.contains(t)),
        original_partition: header_text(message, HEADER_ORIGINAL_PARTITION)
            .and_then(|v| v.parse().ok()),
        original_offset: header_text(message, HEADER_ORIGINAL_OFFSET).and_then(|v| v.parse().ok()),
        original_topic,
        source: header_text(message, HEADER_SOURCE),
        key: PhoneNumber::parse(&key).map_or(key, |p| p.masked()),
        payload_bytes: message.payload.len(),
        payload_omitted_bytes: omitted,
        replayed_from: header_text(message, HEADER_REPLAYED_FROM),
    }
}

/// The record a replay sends, or why there is none.
fn replay_record(
    message: &Message,
    dead_letter_topic: &str,
    replayable_topics: &BTreeSet<String>,
) -> Result<Record, &'static str> {
    if message.header(HEADER_PAYLOAD_OMITTED).is_some() {
        return Err("payload_omitted");
    }
    let topic = header_text(message, HEADER_ORIGINAL_TOPIC).ok_or("no_original_topic")?;
    if !replayable_topics.contains(&topic) {
        return Err("foreign_topic");
    }
    let failure_headers = [
        HEADER_ERROR,
        HEADER_ERROR_KIND,
        HEADER_ORIGINAL_TOPIC,
        HEADER_ORIGINAL_PARTITION,
        HEADER_ORIGINAL_OFFSET,
        HEADER_REPLAYED_FROM,
    ];
    let mut record = Record::new(topic, message.key.clone(), message.payload.clone());
    record.headers = message
        .headers
        .iter()
        .filter(|(name, _)| !failure_headers.contains(&name.as_str()))
        .cloned()
        .collect();
    Ok(record.with_header(
        HEADER_REPLAYED_FROM,
        format!(
            "{dead_letter_topic}:{}.{}",
            message.partition, message.offset
        )
        .into_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::bus::dead_letter::{dead_letter, rejected_input};

    fn consumed(record: Record, partition: u32, offset: u64) -> Message {
        Message {
            topic: record.topic,
            partition,
            offset,
            key: record.key,
            payload: record.payload,
            headers: record.headers,
            timestamp_ms: 1_765_000_000_000,
        }
    }

    fn topics() -> BTreeSet<String> {
        ["t1.wa.inbound".to_string()].into()
    }

    #[test]
    fn a_replay_restores_the_original_record_and_says_where_from() {
        let original = consumed(
            Record::new("t1.wa.inbound", b"60123456789".to_vec(), b"{}".to_vec())
                .with_header("x-trace", b"abc".to_vec()),
            2,
            9,
        );
        let dead = consumed(
            dead_letter("t1.crm.dlq", &original, "store_unavailable", "timed out"),
            1,
            5,
        );
        let shown = view(&dead, &topics());
        assert_eq!(shown.id, "1.5");
        assert_eq!(shown.key, "6012****789");
        assert_eq!(shown.kind.as_deref(), Some("store_unavailable"));
        assert_eq!(
            (shown.original_partition, shown.original_offset),
            (Some(2), Some(9))
        );
        assert!(shown.replayable);
        let again = replay_record(&dead, "t1.crm.dlq", &topics()).unwrap();
        assert_eq!(again.topic, "t1.wa.inbound");
        assert_eq!((again.key, again.payload), (original.key, original.payload));
        let names: Vec<&str> = again.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-trace", HEADER_REPLAYED_FROM]);
    }

    #[test]
    fn records_without_a_topic_of_this_deployment_are_not_replayed() {
        let refused = consumed(
            rejected_input(
                "t1.crm.dlq",
                "webhook:whatsapp",
                b"k",
                b"{}".to_vec(),
                "bad",
                "bad",
            ),
            0,
            1,
        );
        assert_eq!(
            replay_record(&refused, "t1.crm.dlq", &topics()),
            Err("no_original_topic")
        );
        let foreign = consumed(
            Record::new("t1.crm.dlq", b"k".to_vec(), b"{}".to_vec())
                .with_header(HEADER_ORIGINAL_TOPIC, b"__consumer_offsets".to_vec()),
            0,
            2,
        );
        assert_eq!(
            replay_record(&foreign, "t1.crm.dlq", &topics()),
            Err("foreign_topic")
        );
        assert!(!view(&foreign, &topics()).replayable);
    }
}
