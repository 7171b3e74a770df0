use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SinkError {
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
    #[error("{service} rejected {operation}: {detail}")]
    Rejected {
        service: &'static str,
        operation: &'static str,
        detail: String,
    },
    /// The event cannot be stored as it is (e.g. a time before 1970); writing it again will
    /// not help, so it belongs in the dead-letter topic.
    #[error("event {event_id} cannot be stored: {detail}")]
    InvalidEvent { event_id: String, detail: String },
    #[error("event file {path}: {detail}")]
    File { path: String, detail: String },
}
