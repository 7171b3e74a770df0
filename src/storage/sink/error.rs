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
    #[error("event file {path}: {detail}")]
    File { path: String, detail: String },
}
