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
mod serve;

use std::net::SocketAddr;
use std::time::Duration;

use ractor::{Actor, ActorRef};

use std::sync::Arc;

use crate::config::{Config, Role, Secrets};
use crate::engine::health::RoleBoard;
use crate::engine::supervisor::{Engine, EngineArgs, EngineMsg, RoleStart, HEALTHY_RUN};
use crate::segments::{Follower, SegmentIndex};
use crate::storage::bus::TopicSpec;
use crate::topics::{self, TopicNames};

pub use backends::{
    batcher_config, clickhouse_config, media_limits, object_store, pseudonymized_clickhouse_config,
    scylla_config, Backends,
};
pub use error::StartError;
pub use reindex::{reindex, reindex_into};
pub use roles::SegmentScope;

/// A started process.
pub struct Running {
    pub engine: ActorRef<EngineMsg>,
    /// Where the webhooks listen (and the admin API and /metrics, without `admin_listen`).
    pub http_addr: SocketAddr,
    /// Where the admin API and /metrics listen.
    pub admin_addr: SocketAddr,
    pub roles: Vec<String>,
    /// The process's segment index: every partition with the api role, the owned ones
    /// in an engine-only process, none otherwise.
    pub segments: Option<(Arc<SegmentIndex>, SegmentScope)>,
    follower: Option<Arc<Follower>>,
}

impl Running {
    /// Stops intake, drains, flushes and commits every role, then returns.
    pub async fn shutdown(self) {
        let _ = self
            .engine
            .call(EngineMsg::Shutdown, Some(Duration::from_secs(180)))
            .await;
        if let Some(follower) = self.follower {
            follower.stop();
        }
    }
}

/// The process's segment index, rebuilding from crm.contacts (see [`SegmentScope`]).
async fn segment_index(
    config: &Config,
    backends: &Backends,
    names: &TopicNames,
) -> Result<Option<(Arc<Follower>, SegmentScope)>, StartError> {
    let runs = |role| config.engine.roles.contains(&role);
    let scope = if runs(Role::Api) {
        SegmentScope::AllPartitions
    } else if runs(Role::Engine) {
        SegmentScope::OwnedPartitions
    } else {
        return Ok(None);
    };
    let follower = Arc::new(Follower::new(
        Arc::new(SegmentIndex::default()),
        backends.bus.clone(),
        names.name(topics::CONTACTS),
    ));
    if scope == SegmentScope::AllPartitions {
        follower.assign_all().await?;
    }
    Ok(Some((follower, scope)))
}

/// The photos' store, encrypted under a key derived from the IC vault's; without IC keys
/// (a process with no vault) one that refuses photos rather than keep them in clear.
pub fn sealed_media_store(
    config: &Config,
    secrets: &Secrets,
) -> Result<Arc<dyn crate::media::ObjectStore>, StartError> {
    let store = object_store(config, secrets)?;
    Ok(match roles::vault(config, secrets) {
        Ok(vault) => Arc::new(crate::media::SealedStore::new(
            store,
            &vault.derive_key("media"),
        )),
        Err(error) => {
            tracing::warn!(%error, "no IC keys: this process refuses photos");
            Arc::new(crate::media::KeylessStore)
        }
    })
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
    let segments = segment_index(config, &backends, &names).await?;
    let assembly = roles::Assembly {
        config,
        secrets,
        backends: &backends,
        objects: sealed_media_store(config, secrets)?,
        producer: backends.bus.producer(),
        names,
        segments: segments.clone(),
    };
    let listeners = http::Listeners::bind(&config.http)?;
    let (http_addr, admin_addr) = listeners.addrs()?;
    let board = RoleBoard::new(HEALTHY_RUN);
    let mut roles: Vec<(String, RoleStart)> =
        vec![("http".into(), assembly.http_role(listeners, &board)?)];
    roles.extend(assembly.roles()?);
    let role_names = roles.iter().map(|(n, _)| n.clone()).collect();
    let (engine, _) = Actor::spawn(None, Engine, EngineArgs { roles, board })
        .await
        .map_err(error::failed("the engine supervisor"))?;
    Ok(Running {
        engine,
        http_addr,
        admin_addr,
        roles: role_names,
        segments: segments
            .as_ref()
            .map(|(follower, scope)| (follower.index().clone(), *scope)),
        follower: segments.map(|(follower, _)| follower),
    })
}
