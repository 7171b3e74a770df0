//! The schemas of the configured backends, applied idempotently: by `sembang migrate`, and
//! by whatever sets up a real stack itself (the loadtest, the test harness), which also
//! drops them afterwards. Embedded backends have none.

use crate::config::{AnalyticsConfig, Config, EventSinkBackend, StoreBackend, StoreConfig};
use crate::storage::migrate::{migrate, MigrateError, MigrationReport};
use crate::storage::sink::clickhouse::ClickHouseSink;
use crate::storage::store::scylla::{CqlMigrationTarget, CQL_MIGRATIONS};

use super::backends::{clickhouse_config, scylla_config};

/// What [`migrate_all`] did to each backend (`None`: embedded, no schema).
#[derive(Debug)]
pub struct Migrated {
    pub store: Option<MigrationReport>,
    pub sink: Option<MigrationReport>,
}

/// Migrates the store and the analytics sink of a profile.
pub async fn migrate_all(config: &Config) -> Result<Migrated, MigrateError> {
    Ok(Migrated {
        store: migrate_store(&config.store).await?,
        sink: migrate_sink(&config.analytics).await?,
    })
}

/// Migrates the contact store's keyspace (created with its configured replication when
/// missing); `None` for the embedded store.
pub async fn migrate_store(config: &StoreConfig) -> Result<Option<MigrationReport>, MigrateError> {
    if config.backend == StoreBackend::Embedded {
        return Ok(None);
    }
    let target = cql_target(config).await?;
    migrate(&target, CQL_MIGRATIONS, &target.vars())
        .await
        .map(Some)
}

/// Migrates the analytics database; `None` for event files.
pub async fn migrate_sink(
    config: &AnalyticsConfig,
) -> Result<Option<MigrationReport>, MigrateError> {
    if config.sink == EventSinkBackend::Files {
        return Ok(None);
    }
    clickhouse(config)?.migrate().await.map(Some)
}

/// Drops the store's keyspace and everything in it. For throwaway runs only (the
/// loadtest, tests): a node that keeps every run's tables spends its heap on them.
pub async fn drop_store(config: &StoreConfig) -> Result<(), MigrateError> {
    if config.backend == StoreBackend::Embedded {
        return Ok(());
    }
    let target = cql_target(config).await?;
    let statement = format!("DROP KEYSPACE IF EXISTS {}", target.keyspace());
    target
        .session()
        .query_unpaged(statement, ())
        .await
        .map(drop)
        .map_err(|e| failed("scylla", e))
}

/// Drops the analytics database. For throwaway runs only, as [`drop_store`].
pub async fn drop_sink(config: &AnalyticsConfig) -> Result<(), MigrateError> {
    if config.sink == EventSinkBackend::Files {
        return Ok(());
    }
    let sink = clickhouse(config)?;
    let statement = format!("DROP DATABASE IF EXISTS {}", sink.config().database);
    sink.execute("drop_database", &statement)
        .await
        .map_err(|e| failed("clickhouse", e))
}

fn failed(target: &'static str, error: impl std::fmt::Display) -> MigrateError {
    MigrateError::Target {
        target,
        detail: error.to_string(),
    }
}

async fn cql_target(config: &StoreConfig) -> Result<CqlMigrationTarget, MigrateError> {
    CqlMigrationTarget::connect(&scylla_config(config), &config.scylla_replication)
        .await
        .map_err(|e| failed("scylla", e))
}

fn clickhouse(config: &AnalyticsConfig) -> Result<ClickHouseSink, MigrateError> {
    ClickHouseSink::new(clickhouse_config(config)).map_err(|e| failed("clickhouse", e))
}
