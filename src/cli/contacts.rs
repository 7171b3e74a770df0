//! `sembang contacts reindex`: backfills the contact changelog from the store (see
//! `app::reindex`).

use std::process::ExitCode;

use super::config_cmd::with_settings;
use super::EXIT_FAILURE;
use crate::app::{reindex, Backends};
use crate::config::LoadRequest;

pub fn reindex_all(request: &LoadRequest) -> ExitCode {
    with_settings(request, |settings| {
        let runtime = match super::async_runtime(true) {
            Ok(runtime) => runtime,
            Err(code) => return code,
        };
        runtime.block_on(async {
            let backends = match Backends::from_config(&settings.config, &settings.secrets).await {
                Ok(backends) => backends,
                Err(e) => {
                    eprintln!("sembang: {e}");
                    return ExitCode::from(EXIT_FAILURE);
                }
            };
            match reindex(&settings.config, &*backends.bus, &*backends.store).await {
                Ok(count) => {
                    println!("contacts: {count} written to the contact changelog");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("sembang: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        })
    })
}

/// Opens the profile's backends (with the topics in place), or says why not: on the
/// embedded default another running `sembang` holds them.
pub(super) async fn open_backends(
    config: &crate::config::Config,
    secrets: &crate::config::Secrets,
) -> Result<Backends, ExitCode> {
    let opened = async {
        let backends = Backends::from_config(config, secrets).await?;
        let names = crate::topics::TopicNames::new(&config.bus.namespace);
        backends
            .bus
            .ensure_topics(&crate::storage::bus::TopicSpec::all(
                &names,
                config.bus.partitions,
                config.bus.kafka_replication_factor,
            ))
            .await?;
        Ok::<_, crate::app::StartError>(backends)
    };
    opened.await.map_err(|e| {
        eprintln!("sembang: {e}");
        if config.bus.backend == crate::config::BusBackend::Embedded {
            eprintln!(
                "sembang: on the embedded default only one process opens the data directory; stop `sembang run`, or use the admin API (POST /api/contacts/import, GET /api/segments/<id>/export.csv)"
            );
        }
        ExitCode::from(EXIT_FAILURE)
    })
}

/// `sembang contacts import FILE.csv`.
pub fn import(file: &std::path::Path, request: &LoadRequest) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("sembang: {}: {e}", file.display());
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let parsed = match crate::domain::contact_import::parse_contacts_csv(&bytes[..]) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("sembang: {}: {e}", file.display());
            return ExitCode::from(super::EXIT_REJECTED);
        }
    };
    for error in &parsed.errors {
        eprintln!("{}:{}: {}", file.display(), error.line, error.reason);
    }
    with_settings(request, |settings| {
        let runtime = match super::async_runtime(true) {
            Ok(runtime) => runtime,
            Err(code) => return code,
        };
        runtime.block_on(async {
            let backends = match open_backends(&settings.config, &settings.secrets).await {
                Ok(backends) => backends,
                Err(code) => return code,
            };
            let names = crate::topics::TopicNames::new(&settings.config.bus.namespace);
            let edits = crate::api::contacts::ProfileEdits::new(
                backends.bus.producer(),
                names.name(crate::topics::INBOUND),
                &settings.config.whatsapp.phone_number_id,
            );
            // A bar on a terminal; nothing when output is redirected.
            let bar = indicatif::ProgressBar::new(parsed.rows.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let sent = edits
                .submit_rows(parsed.rows, |n| bar.set_position(n))
                .await;
            bar.finish_and_clear();
            match sent {
                Ok(accepted) => {
                    println!(
                        "contacts: {accepted} rows queued for their shards, {} rejected",
                        parsed.errors.len()
                    );
                    if parsed.errors.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(super::EXIT_REJECTED)
                    }
                }
                Err(e) => {
                    eprintln!("sembang: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        })
    })
}
