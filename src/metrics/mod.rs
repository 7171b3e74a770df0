//! Prometheus metrics through the `metrics` crate. One recorder per process, installed on
//! first use; every role records into it and `/metrics` renders it. What is exported is
//! declared once, in [`catalog`].

pub mod catalog;

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
            let handle = builder.install_recorder().ok();
            if handle.is_some() {
                catalog::describe_all();
            }
            handle
        })
        .clone()
}

/// The text exposition of every metric recorded so far.
pub fn render() -> String {
    install().map(|h| h.render()).unwrap_or_default()
}
