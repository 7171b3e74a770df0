use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
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
    Query {
        service: &'static str,
        operation: &'static str,
        detail: String,
    },
    /// Stored data that cannot be read back (a bug or a manual edit), named so it can be found.
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("schema problem: {0}")]
    Schema(String),
}
