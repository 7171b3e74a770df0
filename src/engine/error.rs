use thiserror::Error;

use crate::storage::bus::BusError;
use crate::storage::sink::SinkError;
use crate::storage::store::StoreError;

/// Why an engine role stopped. Each is fatal for the role's current incarnation only: its
/// supervisor restarts it, and uncommitted records are redelivered.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("event bus: {0}")]
    Bus(#[from] BusError),
    #[error("contact store: {0}")]
    Store(#[from] StoreError),
    #[error("analytics sink: {0}")]
    Sink(#[from] SinkError),
    #[error("{actor} failed: {detail}")]
    Actor { actor: String, detail: String },
    #[error("cannot start: {0}")]
    Startup(String),
}

impl EngineError {
    pub fn actor(actor: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        EngineError::Actor {
            actor: actor.into(),
            detail: detail.to_string(),
        }
    }
}
