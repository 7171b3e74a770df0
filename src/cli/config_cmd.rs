//! `sembang config show|check`.

use std::process::ExitCode;

use super::EXIT_FAILURE;
use crate::config::{load, LoadRequest, Settings};

pub fn show(request: &LoadRequest) -> ExitCode {
    with_settings(request, |settings| {
        match toml::to_string_pretty(&settings.config) {
            Ok(text) => print!("{text}"),
            Err(e) => {
                eprintln!("sembang: cannot print the configuration: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
        ExitCode::SUCCESS
    })
}

pub fn check(request: &LoadRequest) -> ExitCode {
    with_settings(request, |settings| {
        println!("configuration is valid ({})", describe_source(settings));
        ExitCode::SUCCESS
    })
}

pub fn with_settings(request: &LoadRequest, then: impl FnOnce(&Settings) -> ExitCode) -> ExitCode {
    match load(request) {
        Ok(settings) => then(&settings),
        Err(e) => {
            eprintln!("sembang: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

pub fn describe_source(settings: &Settings) -> String {
    let source = match &settings.source {
        crate::config::ConfigSource::BuiltinProfile(name) => format!("built-in profile {name}"),
        crate::config::ConfigSource::File(path) => format!("file {}", path.display()),
    };
    if settings.overridden.is_empty() {
        source
    } else {
        format!(
            "{source}; overridden by environment: {}",
            settings.overridden.join(", ")
        )
    }
}
