//! `sembang migrate`: applies the CQL and ClickHouse schemas of the chosen profile,
//! idempotently; the embedded backends need none.

use std::process::ExitCode;

use super::config_cmd::with_settings;
use super::EXIT_FAILURE;
use crate::app::schemas;
use crate::config::{Config, LoadRequest};
use crate::storage::migrate::{MigrateError, MigrationReport};

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
    match schemas::migrate_store(&config.store).await {
        Ok(None) => {
            println!("store: embedded database, no schema to migrate");
            true
        }
        result => report("store", result),
    }
}

async fn migrate_sink(config: &Config) -> bool {
    match schemas::migrate_sink(&config.analytics).await {
        Ok(None) => {
            println!("analytics: event files, no schema to migrate");
            true
        }
        result => report("analytics", result),
    }
}

fn report(what: &str, result: Result<Option<MigrationReport>, MigrateError>) -> bool {
    match result {
        Ok(None) => true,
        Ok(Some(report)) if report.applied.is_empty() => {
            println!(
                "{what}: {} schema already at version {}, nothing to apply",
                report.target, report.to_version
            );
            true
        }
        Ok(Some(report)) => {
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
