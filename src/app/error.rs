use thiserror::Error;

use crate::storage::bus::BusError;
use crate::storage::sink::SinkError;
use crate::storage::store::StoreError;

/// Why a process could not start. Printed as `sembang: <error>` by `sembang run`.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("event bus: {0}")]
    Bus(#[from] BusError),
    #[error("contact store: {0}")]
    Store(#[from] StoreError),
    #[error("analytics sink: {0}")]
    Sink(#[from] SinkError),
    /// A role's work outside a running engine (`sembang contacts reindex`).
    #[error("{0}")]
    Engine(#[from] crate::engine::EngineError),
    /// A setting or secret the configured roles need is missing or inconsistent.
    #[error("cannot start: {0}")]
    Settings(String),
    /// A component refused its settings or its resources (a listener, a pool, a client).
    #[error("cannot start {what}: {detail}")]
    Component { what: &'static str, detail: String },
}

/// The error mapping for a component's constructor: `.map_err(failed("the OCR pool"))`.
pub(crate) fn failed<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> StartError {
    move |error| StartError::Component {
        what,
        detail: error.to_string(),
    }
}
