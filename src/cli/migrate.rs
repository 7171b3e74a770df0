//! `sembang migrate`: applies the CQL and ClickHouse schemas of the chosen profile,
//! idempotently; the embedded backends need none.

use std::process::ExitCode;

use super::config_cmd::with_settings;
use super::EXIT_FAILURE;
use crate::config::{Config, EventSinkBackend, LoadRequest, StoreBackend};
use crate::storage::migrate::{migrate, MigrateError, MigrationReport};
use crate::storage::sink::clickhouse::{ClickHouseConfig, ClickHouseSink};
use crate::storage::store::scylla::{CqlMigrationTarget, ScyllaConfig, CQL_MIGRATIONS};

pub fn run(request: &LoadRequest) -> ExitCode {
    with_settings(request, |settings| {
        let runtime = match super::async_runtime(false) {
            Ok(runtime) => runtime,
            Err(code) => return code,
        };
        let store_ok = runtime.block_on(migrate_store(&settings.config));
        let sink_ok = runtime.block_on(migrate_sink(&settings.config));
        if store_ok && sink_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILURE)
        }
    })
}

async fn migrate_store(config: &Config) -> bool {
    if config.store.backend == StoreBackend::Embedded {
        println!("store: embedded database, no schema to migrate");
        return true;
    }
    let scylla = ScyllaConfig::from(&config.store);
    let target = match CqlMigrationTarget::connect(&scylla, &config.store.scylla_replication).await
    {
        Ok(target) => target,
        Err(e) => {
            eprintln!("sembang: store: {e}");
            return false;
        }
    };
    report(
        "store",
        migrate(&target, CQL_MIGRATIONS, &target.vars()).await,
    )
}

async fn migrate_sink(config: &Config) -> bool {
    if config.analytics.sink == EventSinkBackend::Files {
        println!("analytics: event files, no schema to migrate");
        return true;
    }
    let sink = match ClickHouseSink::new(ClickHouseConfig::from_analytics(&config.analytics)) {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("sembang: analytics: {e}");
            return false;
        }
    };
    report("analytics", sink.migrate().await)
}

fn report(what: &str, result: Result<MigrationReport, MigrateError>) -> bool {
    match result {
        Ok(report) if report.applied.is_empty() => {
            println!(
                "{what}: {} schema already at version {}, nothing to apply",
                report.target, report.to_version
            );
            true
        }
        Ok(report) => {
            let applied: Vec<String> = report.applied.iter().map(u32::to_string).collect();
            println!(
                "{what}: {} schema migrated from version {} to {} (applied {})",
                report.target,
                report.from_version,
                report.to_version,
                applied.join(", ")
            );
            true
        }
        Err(e) => {
            eprintln!("sembang: {what}: {e}");
            false
        }
    }
}
