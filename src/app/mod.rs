//! Process assembly: builds a running process from its configuration: the backends (bus,
//! store, sink, provider), the HTTP surface, and the supervised roles. `sembang run`, the
//! load test and the end-to-end tests all start a process through [`start`]. The engine
//! holds the actors; this module only wires them.

mod backends;
mod error;
mod http;
mod reindex;
mod roles;
pub mod schemas;

use std::net::SocketAddr;
use std::time::Duration;

use ractor::{Actor, ActorRef};

use crate::config::{Config, Secrets};
use crate::engine::supervisor::{Engine, EngineArgs, EngineMsg, RoleStart};
use crate::storage::bus::TopicSpec;
use crate::topics::TopicNames;

pub use backends::{
    batcher_config, clickhouse_config, media_limits, object_store, scylla_config, Backends,
};
pub use error::StartError;
pub use reindex::{reindex, reindex_into};

/// A started process.
pub struct Running {
    pub engine: ActorRef<EngineMsg>,
    /// Where the webhook, the admin API and /metrics listen.
    pub http_addr: SocketAddr,
    pub roles: Vec<String>,
}

impl Running {
    /// Stops intake, drains, flushes and commits every role, then returns.
    pub async fn shutdown(self) {
        let _ = self
            .engine
            .call(EngineMsg::Shutdown, Some(Duration::from_secs(180)))
            .await;
    }
}

/// Starts the configured roles on `backends`. The HTTP listener is bound before this
/// returns (port 0 picks a free one: see [`Running::http_addr`]).
pub async fn start(
    config: &Config,
    secrets: &Secrets,
    backends: Backends,
) -> Result<Running, StartError> {
    crate::metrics::install();
    let names = TopicNames::new(&config.bus.namespace);
    backends
        .bus
        .ensure_topics(&TopicSpec::all(
            &names,
            config.bus.partitions,
            config.bus.kafka_replication_factor,
        ))
        .await?;
    let assembly = roles::Assembly {
        config,
        secrets,
        backends: &backends,
        objects: object_store(config, secrets)?,
        producer: backends.bus.producer(),
        names,
    };
    let (listener, http_addr) = http::bind(&config.http.listen)?;
    let mut roles: Vec<(String, RoleStart)> = vec![("http".into(), assembly.http_role(listener)?)];
    roles.extend(assembly.roles()?);
    let role_names = roles.iter().map(|(n, _)| n.clone()).collect();
    let (engine, _) = Actor::spawn(None, Engine, EngineArgs { roles })
        .await
        .map_err(error::failed("the engine supervisor"))?;
    Ok(Running {
        engine,
        http_addr,
        roles: role_names,
    })
}
