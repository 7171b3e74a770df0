//! Configuration: TOML profiles in `config/`, `SEMBANG_…` environment overrides for every key,
//! secrets from the environment or files only, validated before anything starts.
//!
//! Resolution: an explicit file (`--config` or `SEMBANG_CONFIG`) wins; otherwise a profile
//! name (`--profile` or `SEMBANG_PROFILE`, default `embedded`) picks one of the profiles
//! compiled into the binary, so `sembang run` works from any directory.

mod env;
mod error;
mod model;
mod secrets;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::Table;

pub use env::variable_for;
pub use error::ConfigError;
pub use model::*;
pub use secrets::{Secret, Secrets};

/// Profiles shipped in the binary: (name, TOML text).
const BUILTIN_PROFILES: [(&str, &str); 2] = [
    ("embedded", include_str!("../../config/embedded.toml")),
    ("local", include_str!("../../config/local.toml")),
];

pub const DEFAULT_PROFILE: &str = "embedded";

/// Where the configuration came from, for the start-up log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    BuiltinProfile(String),
    File(PathBuf),
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub config: Config,
    pub secrets: Secrets,
    pub source: ConfigSource,
    /// Keys set by environment variables.
    pub overridden: Vec<String>,
}

/// What the command line asked for.
#[derive(Clone, Debug, Default)]
pub struct LoadRequest {
    pub config_file: Option<PathBuf>,
    pub profile: Option<String>,
}

/// Loads from the process environment and the file system.
pub fn load(request: &LoadRequest) -> Result<Settings, ConfigError> {
    let vars: HashMap<String, String> = std::env::vars().collect();
    load_with(request, &vars, |path| std::fs::read_to_string(path))
}

/// Loads with an explicit environment and file reader (tests use this).
pub fn load_with(
    request: &LoadRequest,
    vars: &HashMap<String, String>,
    read_file: impl Fn(&Path) -> std::io::Result<String>,
) -> Result<Settings, ConfigError> {
    let file = request
        .config_file
        .clone()
        .or_else(|| vars.get("SEMBANG_CONFIG").map(PathBuf::from));
    let (source, text) = match file {
        Some(path) => {
            let text = read_file(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            (ConfigSource::File(path), text)
        }
        None => {
            let name = request
                .profile
                .clone()
                .or_else(|| vars.get("SEMBANG_PROFILE").cloned())
                .unwrap_or_else(|| DEFAULT_PROFILE.to_string());
            let text = builtin_profile(&name).ok_or_else(|| ConfigError::UnknownProfile {
                name: name.clone(),
                dir: "the binary (embedded, local); pass --config FILE for others".into(),
            })?;
            (ConfigSource::BuiltinProfile(name), text.to_string())
        }
    };
    let source_name = match &source {
        ConfigSource::BuiltinProfile(name) => format!("profile {name}"),
        ConfigSource::File(path) => path.display().to_string(),
    };
    let mut tree: Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: source_name.clone(),
        message: e.to_string(),
    })?;
    reject_secrets(&tree, &source_name)?;

    let schema = Table::try_from(Config::default()).expect("the default config serializes");
    let mut sorted_vars: Vec<(&str, &str)> =
        vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    sorted_vars.sort();
    let overridden = env::apply_overrides(&mut tree, &schema, sorted_vars)?;

    let config: Config =
        serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|e| {
            ConfigError::Invalid {
                key: e.path().to_string(),
                message: e.inner().to_string(),
            }
        })?;
    config.validate()?;
    let secrets = Secrets::from_env(vars, read_file)?;
    refuse_open_admin_on_the_network(&config, &secrets)?;
    refuse_unsigned_webhook_on_the_network(&config, &secrets)?;
    Ok(Settings {
        config,
        secrets,
        source,
        overridden,
    })
}

/// Whether `listen` (validated already) is a loopback address.
fn on_loopback(listen: &str) -> bool {
    listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|addr| addr.ip().is_loopback())
}

/// An admin API without keys (`admin.require_api_key = false`, no `SEMBANG_ADMIN_API_KEYS`)
/// serves contacts' personal data to whoever connects: only a loopback listener may do so.
fn refuse_open_admin_on_the_network(config: &Config, secrets: &Secrets) -> Result<(), ConfigError> {
    let open = !config.admin.require_api_key && secrets.admin_api_keys.is_empty();
    let admin_listen = config.http.admin_listen();
    if open && !on_loopback(admin_listen) {
        return Err(ConfigError::Invalid {
            key: "admin.require_api_key".into(),
            message: format!(
                "false opens the admin API without a key, which is allowed only on a loopback \
                 listener (not {admin_listen}); set SEMBANG_ADMIN_API_KEYS or require a key"
            ),
        });
    }
    Ok(())
}

/// A webhook without an app secret takes unsigned posts: anyone who can reach it could write
/// as any customer (opt-outs, registrations, receipts). Only a loopback listener may do so.
fn refuse_unsigned_webhook_on_the_network(
    config: &Config,
    secrets: &Secrets,
) -> Result<(), ConfigError> {
    let ingress = config.engine.roles.contains(&Role::Ingress);
    if ingress && secrets.whatsapp_app_secret.is_none() && !on_loopback(&config.http.listen) {
        return Err(ConfigError::Invalid {
            key: "http.listen".into(),
            message: format!(
                "{} is not loopback, and without SEMBANG_WHATSAPP_APP_SECRET the webhook would \
                 take unsigned posts from anyone; set the app secret or listen on loopback",
                config.http.listen
            ),
        });
    }
    Ok(())
}

fn builtin_profile(name: &str) -> Option<&'static str> {
    BUILTIN_PROFILES
        .iter()
        .find(|(profile, _)| *profile == name)
        .map(|(_, text)| *text)
}

fn reject_secrets(tree: &Table, source: &str) -> Result<(), ConfigError> {
    fn find(table: &Table, path: &mut Vec<String>) -> Option<(String, &'static str)> {
        for (key, value) in table {
            path.push(key.clone());
            if let Some((_, env)) = secrets::secret_names().find(|(name, _)| name == key) {
                return Some((path.join("."), env));
            }
            if let toml::Value::Table(inner) = value {
                if let Some(found) = find(inner, path) {
                    return Some(found);
                }
            }
            path.pop();
        }
        None
    }
    match find(tree, &mut Vec::new()) {
        Some((key, env)) => Err(ConfigError::SecretInFile {
            path: source.into(),
            key,
            env: env.into(),
        }),
        None => Ok(()),
    }
}
