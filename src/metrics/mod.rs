//! Prometheus metrics through the `metrics` crate. One recorder per process, installed on
//! first use; every role records into it and `/metrics` renders it.
//!
//! Names follow `sembang_<component>_<what>_<unit>` with low-cardinality labels only
//! (never a phone number, wamid or IC):
//! - `sembang_ingress_requests_total{outcome}`, `sembang_ingress_events_total`
//! - `sembang_engine_events_total{type,outcome}`,
//!   `sembang_engine_messages_total{message_type,outcome}`, `sembang_engine_in_flight_records`,
//!   `sembang_engine_replies_total{rule}`, `sembang_engine_retries_total{operation}`,
//!   `sembang_consumer_lag_records{group}`
//! - `sembang_shard_resident_contacts{shard}`, `sembang_shard_flush_seconds`,
//!   `sembang_shard_flush_contacts`, `sembang_shard_evicted_contacts_total`
//! - `sembang_sink_batch_events`, `sembang_sink_batch_seconds`, `sembang_sink_events_total`,
//!   `sembang_sink_write_errors_total`
//! - `sembang_sender_sends_total{outcome}`, `sembang_sender_rate_limit_wait_seconds`,
//!   `sembang_provider_errors_total{code}`
//! - `sembang_dlq_total{reason}`, `sembang_actor_restarts_total{role}`
//! - `sembang_ocr_seconds{kind}`, `sembang_ocr_confidence`, `sembang_ocr_outcomes_total{kind,status}`,
//!   `sembang_ocr_jobs_in_flight`, `sembang_ocr_queue_depth`,
//!   `sembang_ocr_partitions_paused{group}`, `sembang_ocr_pauses_total{group}`,
//!   `sembang_media_uploads_total`

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle; `None` when another
/// recorder was installed first (an embedding application's own).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            // Latencies get histogram buckets; counts (batch sizes) get summaries.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .expect("bucket list is not empty");
            builder.install_recorder().ok()
        })
        .clone()
}

/// The text exposition of every metric recorded so far.
pub fn render() -> String {
    install().map(|h| h.render()).unwrap_or_default()
}
