//! Driver errors to [`StoreError`]: timeouts and unreachable nodes stay distinguishable
//! from queries the database rejected, so callers can retry the former.

use std::fmt::Display;
use std::time::Duration;

use scylla::errors::{
    DbError, ExecutionError, NewSessionError, NextRowError, PagerExecutionError, PrepareError,
    RequestAttemptError, RequestError,
};

use super::SERVICE;
use crate::storage::store::StoreError;

/// An error of one request.
pub(crate) fn execution(operation: &'static str, error: ExecutionError) -> StoreError {
    match error {
        ExecutionError::RequestTimeout(after) => StoreError::Timeout {
            service: SERVICE,
            operation,
            after,
        },
        ExecutionError::ConnectionPoolError(e) => unavailable(e),
        ExecutionError::EmptyPlan => unavailable("no node to send the request to"),
        ExecutionError::LastAttemptError(e) => attempt(operation, e),
        ExecutionError::PrepareError(e) => prepare(operation, e),
        other => query(operation, other),
    }
}

pub(crate) fn request(operation: &'static str, error: RequestError) -> StoreError {
    execution(operation, error.into_execution_error())
}

pub(crate) fn prepare(operation: &'static str, error: PrepareError) -> StoreError {
    match error {
        PrepareError::ConnectionPoolError(e) => unavailable(e),
        PrepareError::AllAttemptsFailed { first_attempt } => attempt(operation, first_attempt),
        other => query(operation, other),
    }
}

pub(crate) fn pager(operation: &'static str, error: PagerExecutionError) -> StoreError {
    match error {
        PagerExecutionError::PrepareError(e) => prepare(operation, e),
        PagerExecutionError::NextPageError(e) => next_page(operation, e),
        other => query(operation, other),
    }
}

pub(crate) fn next_row(operation: &'static str, error: NextRowError) -> StoreError {
    match error {
        NextRowError::NextPageError(e) => next_page(operation, e),
        other => query(operation, other),
    }
}

fn next_page(operation: &'static str, error: scylla::errors::NextPageError) -> StoreError {
    match error {
        scylla::errors::NextPageError::RequestFailure(e) => request(operation, e),
        other => query(operation, other),
    }
}

fn attempt(operation: &'static str, error: RequestAttemptError) -> StoreError {
    match error {
        RequestAttemptError::DbError(db, message) => match db {
            DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => StoreError::Timeout {
                service: SERVICE,
                operation,
                // The server's own timeout; the driver does not report its length.
                after: Duration::ZERO,
            },
            DbError::Unavailable { .. }
            | DbError::Overloaded
            | DbError::IsBootstrapping
            | DbError::RateLimitReached { .. } => unavailable(format!("{db}: {message}")),
            other => query(operation, format!("{other}: {message}")),
        },
        e @ (RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId) => unavailable(e),
        other => query(operation, other),
    }
}

pub(crate) fn new_session(error: NewSessionError) -> StoreError {
    match error {
        NewSessionError::UseKeyspaceError(e) => StoreError::Schema(format!(
            "{SERVICE}: cannot use the keyspace ({e}); run the migrations first"
        )),
        other => unavailable(other),
    }
}

pub(crate) fn unavailable(detail: impl Display) -> StoreError {
    StoreError::Unavailable {
        service: SERVICE,
        detail: detail.to_string(),
    }
}

pub(crate) fn query(operation: &'static str, detail: impl Display) -> StoreError {
    StoreError::Query {
        service: SERVICE,
        operation,
        detail: detail.to_string(),
    }
}
