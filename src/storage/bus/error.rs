use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BusError {
    /// The broker (or the embedded log's directory) cannot be reached or used.
    #[error("{service} is unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    #[error("{service} did not answer {operation} within {after:?}")]
    Timeout {
        service: &'static str,
        operation: &'static str,
        after: Duration,
    },
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    #[error("topic {topic} exists with {actual} partitions, but {expected} were asked for")]
    PartitionMismatch {
        topic: String,
        expected: u32,
        actual: u32,
    },
    /// This record can never be written as it is (no key, too large, malformed): no retry
    /// or restart helps, unlike [`BusError::Rejected`] (a topic or client setting an
    /// operator can fix).
    #[error("record refused by {service}: {detail}")]
    RecordRefused {
        service: &'static str,
        detail: String,
    },
    #[error("record rejected by {service}: {detail}")]
    Rejected {
        service: &'static str,
        detail: String,
    },
    #[error("consumer group {group}: {detail}")]
    Group { group: String, detail: String },
    #[error("the bus was shut down")]
    Closed,
    #[error("embedded bus log {path}: {detail}")]
    Log { path: String, detail: String },
}
