//! Secrets come only from the environment (`SEMBANG_X`) or a file named by it
//! (`SEMBANG_X_FILE`, e.g. a Kubernetes secret volume), never from committed config.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use super::error::ConfigError;

/// A secret value whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// (name in config files, environment variable suffix). The names are refused in files.
const SECRETS: [(&str, &str); 9] = [
    ("app_secret", "WHATSAPP_APP_SECRET"),
    ("access_token", "WHATSAPP_ACCESS_TOKEN"),
    ("verify_token", "WHATSAPP_VERIFY_TOKEN"),
    ("wabot_access_token", "WABOT_ACCESS_TOKEN"),
    ("ic_encryption_key", "IC_ENCRYPTION_KEY"),
    ("ic_hash_key", "IC_HASH_KEY"),
    ("admin_api_keys", "ADMIN_API_KEYS"),
    ("s3_access_key_id", "S3_ACCESS_KEY_ID"),
    ("s3_secret_access_key", "S3_SECRET_ACCESS_KEY"),
];

/// IC keys are 256-bit, written as 64 hex digits.
const IC_KEY_HEX_LEN: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    pub whatsapp_app_secret: Option<Secret>,
    pub whatsapp_access_token: Option<Secret>,
    pub whatsapp_verify_token: Option<Secret>,
    pub wabot_access_token: Option<Secret>,
    pub ic_encryption_key: Option<Secret>,
    pub ic_hash_key: Option<Secret>,
    /// `role:key` pairs, comma-separated in the variable.
    pub admin_api_keys: Vec<Secret>,
    /// The media object store's S3 credentials (else AWS_* variables or instance roles).
    pub s3_access_key_id: Option<Secret>,
    pub s3_secret_access_key: Option<Secret>,
}

pub fn is_secret_variable(var: &str) -> bool {
    SECRETS.iter().any(|(_, suffix)| {
        var.strip_prefix(super::env::PREFIX)
            .map(|rest| rest == *suffix || rest.strip_suffix("_FILE") == Some(suffix))
            .unwrap_or(false)
    })
}

/// The secret names a config file must not contain: (file key, environment suffix).
pub fn secret_names() -> impl Iterator<Item = (&'static str, &'static str)> {
    SECRETS.into_iter()
}

impl Secrets {
    pub fn from_env(
        vars: &HashMap<String, String>,
        read_file: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Secrets, ConfigError> {
        let get = |suffix: &str| read_secret(vars, &read_file, suffix);
        let secrets = Secrets {
            whatsapp_app_secret: get("WHATSAPP_APP_SECRET")?,
            whatsapp_access_token: get("WHATSAPP_ACCESS_TOKEN")?,
            whatsapp_verify_token: get("WHATSAPP_VERIFY_TOKEN")?,
            wabot_access_token: get("WABOT_ACCESS_TOKEN")?,
            ic_encryption_key: get("IC_ENCRYPTION_KEY")?,
            ic_hash_key: get("IC_HASH_KEY")?,
            admin_api_keys: get("ADMIN_API_KEYS")?
                .map(|list| {
                    list.expose()
                        .split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(Secret::new)
                        .collect()
                })
                .unwrap_or_default(),
            s3_access_key_id: get("S3_ACCESS_KEY_ID")?,
            s3_secret_access_key: get("S3_SECRET_ACCESS_KEY")?,
        };
        for (suffix, key) in [
            ("IC_ENCRYPTION_KEY", &secrets.ic_encryption_key),
            ("IC_HASH_KEY", &secrets.ic_hash_key),
        ] {
            if let Some(key) = key {
                let ok = key.expose().len() == IC_KEY_HEX_LEN
                    && key.expose().bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    return Err(ConfigError::Secret {
                        var: format!("SEMBANG_{suffix}"),
                        message: format!("must be {IC_KEY_HEX_LEN} hex digits (256 bits)"),
                    });
                }
            }
        }
        Ok(secrets)
    }
}

fn read_secret(
    vars: &HashMap<String, String>,
    read_file: &impl Fn(&Path) -> std::io::Result<String>,
    suffix: &str,
) -> Result<Option<Secret>, ConfigError> {
    let var = format!("SEMBANG_{suffix}");
    let file_var = format!("{var}_FILE");
    let value = match (vars.get(&var), vars.get(&file_var)) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Secret {
                var,
                message: format!("set either it or {file_var}, not both"),
            })
        }
        (Some(value), None) => value.clone(),
        (None, Some(path)) => read_file(Path::new(path))
            .map_err(|e| ConfigError::Secret {
                var: file_var.clone(),
                message: format!("cannot read {path}: {e}"),
            })?
            .trim()
            .to_string(),
        (None, None) => return Ok(None),
    };
    if value.trim().is_empty() {
        return Err(ConfigError::Secret {
            var,
            message: "is empty".into(),
        });
    }
    Ok(Some(Secret(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn no_files(_: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ))
    }

    #[test]
    fn reads_from_variable_or_file() {
        let secrets = Secrets::from_env(
            &vars(&[
                ("SEMBANG_WHATSAPP_APP_SECRET", "s3cret"),
                ("SEMBANG_WHATSAPP_ACCESS_TOKEN_FILE", "/run/token"),
                ("SEMBANG_ADMIN_API_KEYS", "admin:abc, analyst:def"),
            ]),
            |path| {
                assert_eq!(path, Path::new("/run/token"));
                Ok("tok\n".into())
            },
        )
        .unwrap();
        assert_eq!(secrets.whatsapp_app_secret.unwrap().expose(), "s3cret");
        assert_eq!(secrets.whatsapp_access_token.unwrap().expose(), "tok");
        assert_eq!(secrets.admin_api_keys.len(), 2);
        assert!(secrets.ic_encryption_key.is_none());
    }

    #[test]
    fn debug_never_shows_values() {
        let secrets = Secrets::from_env(
            &vars(&[("SEMBANG_WHATSAPP_APP_SECRET", "s3cret")]),
            no_files,
        )
        .unwrap();
        assert!(!format!("{secrets:?}").contains("s3cret"));
    }

    #[test]
    fn errors_name_the_variable() {
        let both = Secrets::from_env(
            &vars(&[
                ("SEMBANG_IC_HASH_KEY", "a"),
                ("SEMBANG_IC_HASH_KEY_FILE", "/x"),
            ]),
            no_files,
        )
        .unwrap_err();
        assert!(both.to_string().contains("SEMBANG_IC_HASH_KEY"));
        let missing_file =
            Secrets::from_env(&vars(&[("SEMBANG_IC_HASH_KEY_FILE", "/nope")]), no_files)
                .unwrap_err();
        assert!(missing_file.to_string().contains("/nope"));
        let short_key =
            Secrets::from_env(&vars(&[("SEMBANG_IC_ENCRYPTION_KEY", "abcd")]), no_files)
                .unwrap_err();
        assert!(short_key.to_string().contains("64 hex digits"));
        let empty = Secrets::from_env(&vars(&[("SEMBANG_WHATSAPP_VERIFY_TOKEN", " ")]), no_files)
            .unwrap_err();
        assert!(empty.to_string().contains("is empty"));
    }

    #[test]
    fn recognizes_secret_variables() {
        assert!(is_secret_variable("SEMBANG_IC_HASH_KEY"));
        assert!(is_secret_variable("SEMBANG_IC_HASH_KEY_FILE"));
        assert!(!is_secret_variable("SEMBANG_BUS_PARTITIONS"));
    }
}
