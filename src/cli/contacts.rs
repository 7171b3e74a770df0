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
