//! Every metric Sembang exports, declared once: name, kind, labels and help. Code emits
//! through these declarations only (a test checks no other call site exists), and the
//! Grafana dashboards and alert rules are checked against [`ALL`].
//!
//! Names follow `sembang_<component>_<what>_<unit>`; labels are low-cardinality only
//! (never a phone number, wamid or IC).

use metrics::{Counter, Gauge, Histogram, Label, SharedString};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Durations (`_seconds`) are Prometheus histograms; counts are summaries.
    Histogram,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

impl Metric {
    /// The counter with these label values, in the order of [`Metric::labels`].
    pub fn counter(&'static self, values: &[SharedString]) -> Counter {
        debug_assert_eq!(self.kind, Kind::Counter, "{}", self.name);
        metrics::counter!(self.name, self.labelled(values))
    }

    pub fn gauge(&'static self, values: &[SharedString]) -> Gauge {
        debug_assert_eq!(self.kind, Kind::Gauge, "{}", self.name);
        metrics::gauge!(self.name, self.labelled(values))
    }

    pub fn histogram(&'static self, values: &[SharedString]) -> Histogram {
        debug_assert_eq!(self.kind, Kind::Histogram, "{}", self.name);
        metrics::histogram!(self.name, self.labelled(values))
    }

    fn labelled(&self, values: &[SharedString]) -> Vec<Label> {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        self.labels
            .iter()
            .zip(values)
            .map(|(key, value)| Label::new(*key, value.clone()))
            .collect()
    }

    /// Gives the metric its HELP line.
    fn describe(&'static self) {
        match self.kind {
            Kind::Counter => metrics::describe_counter!(self.name, self.help),
            Kind::Gauge => metrics::describe_gauge!(self.name, self.help),
            Kind::Histogram => metrics::describe_histogram!(self.name, self.help),
        }
    }
}

/// Describes every metric of the catalogue to the installed recorder.
pub(super) fn describe_all() {
    ALL.iter().for_each(|metric| metric.describe());
}

const fn metric(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind,
        labels,
        help,
    }
}

use Kind::{Counter as C, Gauge as G, Histogram as H};

// Ingress.
pub static INGRESS_REQUESTS: Metric = metric(
    "sembang_ingress_requests_total",
    C,
    &["outcome"],
    "Webhook requests by outcome (accepted, bad_signature, bad_token, malformed, unavailable).",
);
pub static INGRESS_EVENTS: Metric = metric(
    "sembang_ingress_events_total",
    C,
    &[],
    "Events the webhook made durable on wa.inbound.",
);
pub static MEDIA_UPLOADS: Metric = metric(
    "sembang_media_uploads_total",
    C,
    &[],
    "Photos uploaded through the admin API and queued for OCR.",
);
// Engine and contact shards.
pub static ENGINE_EVENTS: Metric = metric(
    "sembang_engine_events_total",
    C,
    &["type", "outcome"],
    "Inbound events applied by the contact shards, by event type and outcome.",
);
pub static ENGINE_MESSAGES: Metric = metric(
    "sembang_engine_messages_total",
    C,
    &["message_type", "outcome"],
    "Inbound messages applied, by WhatsApp message type and outcome.",
);
pub static ENGINE_IN_FLIGHT: Metric = metric(
    "sembang_engine_in_flight_records",
    G,
    &[],
    "Records read by the engine and not yet committed.",
);
pub static ENGINE_REPLIES: Metric = metric(
    "sembang_engine_replies_total",
    C,
    &["rule"],
    "Auto-replies produced, by rule.",
);
pub static ENGINE_RETRIES: Metric = metric(
    "sembang_engine_retries_total",
    C,
    &["operation"],
    "Retried writes to the store, bus or sink, by operation.",
);
pub static ENGINE_INGEST_DELAY: Metric = metric(
    "sembang_engine_ingest_delay_seconds",
    H,
    &[],
    "From a record's arrival on its topic (the webhook made it durable) to the shard flush that stored its effects.",
);
pub static CONSUMER_LAG: Metric = metric(
    "sembang_consumer_lag_records",
    G,
    &["group"],
    "Records not yet consumed, by consumer group.",
);
pub static SHARD_RESIDENT: Metric = metric(
    "sembang_shard_resident_contacts",
    G,
    &["shard"],
    "Contacts held in memory, by shard.",
);
pub static SHARD_RESIDENT_BYTES: Metric = metric(
    "sembang_shard_resident_bytes",
    G,
    &["shard"],
    "Estimated memory of the contacts held, by shard (budget: engine.max_resident_mb).",
);
pub static SHARD_FLUSH_SECONDS: Metric = metric(
    "sembang_shard_flush_seconds",
    H,
    &[],
    "Time to write a shard's changed contacts back to the store.",
);
pub static SHARD_FLUSH_CONTACTS: Metric = metric(
    "sembang_shard_flush_contacts",
    H,
    &[],
    "Contacts written per flush.",
);
pub static SHARD_EVICTED: Metric = metric(
    "sembang_shard_evicted_contacts_total",
    C,
    &[],
    "Contacts evicted from memory (LRU or idle).",
);
pub static SHARD_ABANDONED_CONTACTS: Metric = metric("sembang_shard_abandoned_contacts_total", C, &[], "Contacts whose unwritten work was dropped because their partition was revoked past its deadline (the new owner replays it).");
pub static SHARD_ABANDONED_RECORDS: Metric = metric(
    "sembang_shard_abandoned_records_total",
    C,
    &[],
    "Records dropped unapplied because their partition was revoked past its deadline.",
);
pub static DLQ: Metric = metric(
    "sembang_dlq_total",
    C,
    &["reason"],
    "Records sent to the dead-letter topic, by reason.",
);
pub static ACTOR_RESTARTS: Metric = metric(
    "sembang_actor_restarts_total",
    C,
    &["role"],
    "Roles restarted by the supervisor after a failure.",
);
// Analytics sink.
pub static SINK_BATCH_EVENTS: Metric = metric(
    "sembang_sink_batch_events",
    H,
    &[],
    "Events per analytics batch.",
);
pub static SINK_BATCH_SECONDS: Metric = metric(
    "sembang_sink_batch_seconds",
    H,
    &[],
    "Time to write an analytics batch.",
);
pub static SINK_EVENTS: Metric = metric(
    "sembang_sink_events_total",
    C,
    &[],
    "Analytics events written to the sink.",
);
pub static SINK_WRITE_ERRORS: Metric = metric(
    "sembang_sink_write_errors_total",
    C,
    &[],
    "Analytics batch writes that failed after the sink's own retries (the role restarts from its committed offsets).",
);
// Sender and provider.
pub static SENDER_SENDS: Metric = metric(
    "sembang_sender_sends_total",
    C,
    &["outcome"],
    "Sends by outcome (sent, duplicate, unknown, failed, retried, suppressed: consent withdrawn since it was queued).",
);
pub static SENDER_NUMBER_SENDS: Metric = metric(
    "sembang_sender_number_sends_total",
    C,
    &["number"],
    "Messages the provider accepted, by business number (phone number id): the rate used.",
);
pub static SENDER_RATE_LIMIT: Metric = metric(
    "sembang_sender_rate_limit_per_second",
    G,
    &["number"],
    "The messages-per-second limit configured for a business number (whatsapp.messages_per_second or whatsapp.number_rates).",
);
pub static SENDER_RATE_LIMIT_WAIT: Metric = metric(
    "sembang_sender_rate_limit_wait_seconds",
    H,
    &[],
    "Time a send waited for its business number's rate limit.",
);
pub static PROVIDER_ERRORS: Metric = metric(
    "sembang_provider_errors_total",
    C,
    &["code"],
    "WhatsApp provider errors by error code.",
);
// OCR.
pub static OCR_SECONDS: Metric = metric(
    "sembang_ocr_seconds",
    H,
    &["kind"],
    "Time to read an image, by what it was read as.",
);
pub static OCR_CONFIDENCE: Metric = metric(
    "sembang_ocr_confidence",
    H,
    &[],
    "Mean Tesseract word confidence of a reading, 0 to 100.",
);
pub static OCR_OUTCOMES: Metric = metric(
    "sembang_ocr_outcomes_total",
    C,
    &["kind", "status"],
    "OCR jobs by kind and outcome.",
);
pub static OCR_JOBS_IN_FLIGHT: Metric = metric(
    "sembang_ocr_jobs_in_flight",
    G,
    &[],
    "OCR jobs being processed.",
);
pub static OCR_QUEUE_DEPTH: Metric = metric(
    "sembang_ocr_queue_depth",
    G,
    &[],
    "Images waiting for a Tesseract worker.",
);
pub static OCR_PARTITIONS_PAUSED: Metric = metric(
    "sembang_ocr_partitions_paused",
    G,
    &["group"],
    "Partitions the OCR role paused because its workers are full.",
);
pub static OCR_PAUSES: Metric = metric(
    "sembang_ocr_pauses_total",
    C,
    &["group"],
    "Times the OCR role paused its partitions.",
);

pub static SEGMENT_INDEX_CONTACTS: Metric = metric(
    "sembang_segment_index_contacts",
    G,
    &[],
    "Contacts in this process's segment index.",
);
pub static SEGMENT_INDEX_PARTITIONS: Metric = metric(
    "sembang_segment_index_partitions",
    G,
    &["state"],
    "crm.contacts partitions this process indexes, rebuilding or live.",
);
pub static SEGMENT_INDEX_RECORDS: Metric = metric(
    "sembang_segment_index_records_total",
    C,
    &["outcome"],
    "Changelog records applied to the segment index, by outcome.",
);
pub static SEGMENT_QUERY_SECONDS: Metric = metric(
    "sembang_segment_query_seconds",
    H,
    &[],
    "Time to answer a segment count or member page from the index.",
);
pub static CAMPAIGN_PLANNED: Metric = metric(
    "sembang_campaign_recipients_planned_total",
    C,
    &["outcome"],
    "Campaign recipients planned, by outcome (queued, or the skip reason).",
);
pub static CAMPAIGN_PLAN_SECONDS: Metric = metric(
    "sembang_campaign_plan_seconds",
    H,
    &[],
    "Time to plan one partition's recipients of a campaign.",
);
pub static CAMPAIGN_SENDS: Metric = metric(
    "sembang_campaign_sends_total",
    C,
    &["outcome"],
    "Campaign sends by outcome (sent, failed, skipped, held, expired, cancelled).",
);
pub static CAMPAIGN_QUEUE: Metric = metric(
    "sembang_campaign_send_queue",
    G,
    &[],
    "Campaign sends taken from wa.campaign and not finished yet.",
);
pub static MESSAGING_LIMIT_REMAINING: Metric = metric(
    "sembang_messaging_limit_remaining",
    G,
    &[],
    "New customers business-initiated messages may still reach in the moving 24 h (the portfolio's messaging limit), as this sender counts them.",
);
pub static CAMPAIGN_CLICKS: Metric = metric(
    "sembang_campaign_clicks_total",
    C,
    &["outcome"],
    "Tracking link requests (redirected, forged, dropped when the buffer was full).",
);

/// The whole catalogue.
pub static ALL: &[&Metric] = &[
    &INGRESS_REQUESTS,
    &INGRESS_EVENTS,
    &MEDIA_UPLOADS,
    &ENGINE_EVENTS,
    &ENGINE_MESSAGES,
    &ENGINE_IN_FLIGHT,
    &ENGINE_REPLIES,
    &ENGINE_RETRIES,
    &ENGINE_INGEST_DELAY,
    &CONSUMER_LAG,
    &SHARD_RESIDENT,
    &SHARD_RESIDENT_BYTES,
    &SHARD_FLUSH_SECONDS,
    &SHARD_FLUSH_CONTACTS,
    &SHARD_EVICTED,
    &SHARD_ABANDONED_CONTACTS,
    &SHARD_ABANDONED_RECORDS,
    &DLQ,
    &ACTOR_RESTARTS,
    &SINK_BATCH_EVENTS,
    &SINK_BATCH_SECONDS,
    &SINK_EVENTS,
    &SINK_WRITE_ERRORS,
    &SENDER_SENDS,
    &SENDER_NUMBER_SENDS,
    &SENDER_RATE_LIMIT,
    &SENDER_RATE_LIMIT_WAIT,
    &PROVIDER_ERRORS,
    &OCR_SECONDS,
    &OCR_CONFIDENCE,
    &OCR_OUTCOMES,
    &OCR_JOBS_IN_FLIGHT,
    &OCR_QUEUE_DEPTH,
    &OCR_PARTITIONS_PAUSED,
    &OCR_PAUSES,
    &SEGMENT_INDEX_CONTACTS,
    &SEGMENT_INDEX_PARTITIONS,
    &SEGMENT_INDEX_RECORDS,
    &SEGMENT_QUERY_SECONDS,
    &CAMPAIGN_PLANNED,
    &CAMPAIGN_PLAN_SECONDS,
    &CAMPAIGN_SENDS,
    &CAMPAIGN_QUEUE,
    &MESSAGING_LIMIT_REMAINING,
    &CAMPAIGN_CLICKS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_follow_the_conventions() {
        let mut names: Vec<&str> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a metric is listed twice");
        for m in ALL {
            assert!(m.name.starts_with("sembang_"), "{}", m.name);
            assert!(!m.help.is_empty(), "{} has no help", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                m.name
            );
            for label in m.labels {
                assert!(
                    !["phone", "contact", "wamid", "ic"].contains(label),
                    "{} has a high-cardinality label {label}",
                    m.name
                );
            }
        }
    }

    /// Every metric is emitted through the catalogue: no macro call with a literal name
    /// is left anywhere else in the sources.
    #[test]
    fn no_metric_is_emitted_outside_the_catalogue() {
        fn visit(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    visit(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("metrics/catalog.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (i, line) in text.lines().enumerate() {
                        if ["counter!(", "gauge!(", "histogram!("]
                            .iter()
                            .any(|m| line.contains(m))
                        {
                            found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        visit(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        assert!(
            found.is_empty(),
            "metrics emitted outside the catalogue:\n{}",
            found.join("\n")
        );
    }
}
