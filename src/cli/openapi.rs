//! `sembang openapi`: the OpenAPI document of the HTTP surface, generated from the code.
//! docs/openapi.json is this command's output; a test keeps the two equal.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_FAILURE;

/// The document as committed: pretty JSON with a final newline.
pub fn document() -> String {
    let doc = crate::api::openapi();
    let mut text = serde_json::to_string_pretty(&doc).expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

pub fn run(out: Option<&Path>) -> ExitCode {
    let text = document();
    match out {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(path) => match std::fs::write(path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sembang: {}: {e}", path.display());
                ExitCode::from(EXIT_FAILURE)
            }
        },
    }
}
