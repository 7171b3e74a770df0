use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("config key {key}: {message}")]
    Invalid { key: String, message: String },
    #[error("environment variable {var} (config key {key}): {message}")]
    BadOverride {
        var: String,
        key: String,
        message: String,
    },
    #[error(
        "environment variable {var} names no config key; known keys: see config/embedded.toml"
    )]
    UnknownOverride { var: String },
    #[error("config file {path} sets secret {key}: secrets are read only from the environment (SEMBANG_{env}) or a file (SEMBANG_{env}_FILE), never from committed config")]
    SecretInFile {
        path: String,
        key: String,
        env: String,
    },
    #[error("secret {var}: {message}")]
    Secret { var: String, message: String },
    #[error("unknown profile {name:?}; profiles are the .toml files in {dir}")]
    UnknownProfile { name: String, dir: String },
}
