//! `SEMBANG_…` environment overrides. The variable for a key is derived from the key's path
//! in the schema (`bus.kafka_brokers` → `SEMBANG_BUS_KAFKA_BROKERS`), so every key is
//! overridable without a hand-kept list, and a misspelt variable is an error rather than a
//! silently ignored setting.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::error::ConfigError;
use super::secrets::is_secret_variable;

pub const PREFIX: &str = "SEMBANG_";

/// Variables that select the configuration rather than set a key.
const CONTROL_VARIABLES: [&str; 3] = ["SEMBANG_CONFIG", "SEMBANG_PROFILE", "SEMBANG_LOG"];

/// Variables reserved for tests and for deploy/local (the development stack), never read
/// by the engine.
const RESERVED_PREFIXES: [&str; 2] = ["SEMBANG_TEST_", "SEMBANG_LOCAL_"];

/// The environment variable for a key path.
pub fn variable_for(path: &[String]) -> String {
    format!("{PREFIX}{}", path.join("_").to_ascii_uppercase())
}

/// Every leaf key of `schema` (a serialized default config) with the value that gives its type.
fn leaves(schema: &Table) -> Vec<(Vec<String>, &Value)> {
    fn walk<'a>(
        table: &'a Table,
        prefix: &mut Vec<String>,
        out: &mut Vec<(Vec<String>, &'a Value)>,
    ) {
        for (key, value) in table {
            prefix.push(key.clone());
            match value {
                Value::Table(inner) => walk(inner, prefix, out),
                leaf => out.push((prefix.clone(), leaf)),
            }
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), &mut out);
    out
}

/// Applies the overrides found in `vars` to `tree`, typed after the schema's defaults.
/// Returns the keys that were overridden, for the start-up log.
pub fn apply_overrides<'v>(
    tree: &mut Table,
    schema: &Table,
    vars: impl IntoIterator<Item = (&'v str, &'v str)>,
) -> Result<Vec<String>, ConfigError> {
    let by_variable: BTreeMap<String, (Vec<String>, &Value)> = leaves(schema)
        .into_iter()
        .map(|(path, value)| (variable_for(&path), (path, value)))
        .collect();
    let mut applied = Vec::new();
    for (var, raw) in vars {
        if !var.starts_with(PREFIX)
            || CONTROL_VARIABLES.contains(&var)
            || RESERVED_PREFIXES.iter().any(|p| var.starts_with(p))
            || is_secret_variable(var)
        {
            continue;
        }
        let Some((path, default)) = by_variable.get(var) else {
            return Err(ConfigError::UnknownOverride { var: var.into() });
        };
        let key = path.join(".");
        let value = typed_like(default, raw).map_err(|message| ConfigError::BadOverride {
            var: var.into(),
            key: key.clone(),
            message,
        })?;
        set(tree, path, value);
        applied.push(key);
    }
    applied.sort();
    Ok(applied)
}

fn typed_like(default: &Value, raw: &str) -> Result<Value, String> {
    let trimmed = raw.trim();
    match default {
        Value::String(_) => Ok(Value::String(raw.to_string())),
        Value::Integer(_) => trimmed
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("expected a whole number, got {raw:?}")),
        Value::Float(_) => trimmed
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("expected a number, got {raw:?}")),
        Value::Boolean(_) => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {raw:?}")),
        },
        // Lists are written comma-separated: SEMBANG_ENGINE_ROLES=ingress,engine
        Value::Array(_) => Ok(Value::Array(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_string()))
                .collect(),
        )),
        Value::Datetime(_) | Value::Table(_) => {
            Err("this key cannot be set from the environment".into())
        }
    }
}

fn set(tree: &mut Table, path: &[String], value: Value) {
    let (last, parents) = path.split_last().expect("leaf paths are never empty");
    let mut table = tree;
    for key in parents {
        let entry = table
            .entry(key.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        table = entry.as_table_mut().expect("just made a table");
    }
    table.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Table {
        toml::from_str(
            r#"
            profile = "embedded"
            [bus]
            partitions = 8
            kafka_brokers = "a:1"
            [admin]
            require_api_key = true
            [engine]
            roles = ["ingress"]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn derives_variable_names_from_paths() {
        assert_eq!(
            variable_for(&["bus".into(), "kafka_brokers".into()]),
            "SEMBANG_BUS_KAFKA_BROKERS"
        );
    }

    #[test]
    fn overrides_are_typed_after_the_schema() {
        let mut tree = Table::new();
        let applied = apply_overrides(
            &mut tree,
            &schema(),
            [
                ("SEMBANG_BUS_PARTITIONS", "16"),
                ("SEMBANG_ADMIN_REQUIRE_API_KEY", "false"),
                ("SEMBANG_ENGINE_ROLES", "ingress, engine"),
                ("PATH", "/bin"),
                ("SEMBANG_PROFILE", "local"),
                ("SEMBANG_TEST_ANYTHING", "x"),
                ("SEMBANG_LOCAL_KAFKA_PORT", "9092"),
            ],
        )
        .unwrap();
        assert_eq!(
            applied,
            vec!["admin.require_api_key", "bus.partitions", "engine.roles"]
        );
        assert_eq!(tree["bus"]["partitions"].as_integer(), Some(16));
        assert_eq!(tree["admin"]["require_api_key"].as_bool(), Some(false));
        assert_eq!(
            tree["engine"]["roles"].as_array().unwrap().len(),
            2,
            "comma-separated list"
        );
    }

    #[test]
    fn bad_values_name_variable_and_key() {
        let err = apply_overrides(
            &mut Table::new(),
            &schema(),
            [("SEMBANG_BUS_PARTITIONS", "many")],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("SEMBANG_BUS_PARTITIONS") && text.contains("bus.partitions"),
            "{text}"
        );
    }

    #[test]
    fn misspelt_variables_are_rejected() {
        let err = apply_overrides(
            &mut Table::new(),
            &schema(),
            [("SEMBANG_BUS_PARTITONS", "4")],
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::UnknownOverride { var } if var == "SEMBANG_BUS_PARTITONS")
        );
    }
}
