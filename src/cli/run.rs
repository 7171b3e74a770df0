//! `sembang run`. The engine's actors land with the stream-engine issue; until then this
//! validates the configuration and says plainly that nothing was started.

use std::process::ExitCode;

use super::config_cmd::{describe_source, with_settings};
use crate::config::LoadRequest;

pub fn run(request: &LoadRequest) -> ExitCode {
    with_settings(request, |settings| {
        println!(
            "sembang: configuration is valid ({}).",
            describe_source(settings)
        );
        println!(
            "sembang: the stream engine is not built yet, so nothing was started and no port is open."
        );
        println!("sembang: available now: `sembang ic parse`, `sembang receipt parse`, `sembang config show`.");
        ExitCode::SUCCESS
    })
}
