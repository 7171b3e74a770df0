//! Schema migrations, shared by every backend. A schema is an ordered list of numbered
//! files (`0001_keyspace.cql`, ...) compiled into the binary. Applying records each version
//! in the database; applying again does nothing; a database whose version is newer than
//! any this binary knows is refused, so an old binary never runs against a newer schema.

use async_trait::async_trait;
use thiserror::Error;

/// One numbered schema file: statements separated by `;` at line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub text: &'static str,
}

impl Migration {
    /// The file's statements, comments (`--` lines) removed, with `${NAME}` placeholders
    /// replaced from `vars`.
    pub fn statements(&self, vars: &[(&str, &str)]) -> Vec<String> {
        let mut text: String = self
            .text
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        for (name, value) in vars {
            text = text.replace(&format!("${{{name}}}"), value);
        }
        text.split(";\n")
            .chain(std::iter::once(""))
            .flat_map(|chunk| chunk.strip_suffix(';').or(Some(chunk)))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug, Error)]
pub enum MigrateError {
    #[error("{target} schema is at version {found}, newer than this binary knows ({known}); upgrade sembang before running it against this database")]
    NewerThanKnown {
        target: &'static str,
        found: u32,
        known: u32,
    },
    #[error("{target} migration {version} ({name}) failed: {detail}")]
    Failed {
        target: &'static str,
        version: u32,
        name: &'static str,
        detail: String,
    },
    #[error("{target}: {detail}")]
    Target {
        target: &'static str,
        detail: String,
    },
}

/// A database that can hold a schema.
#[async_trait]
pub trait MigrationTarget: Send + Sync {
    /// Short name for messages: "cassandra", "clickhouse".
    fn name(&self) -> &'static str;

    /// Creates whatever holds the version record, if missing (idempotent).
    async fn prepare(&self) -> Result<(), MigrateError>;

    /// The highest applied version, 0 for an empty database.
    async fn applied_version(&self) -> Result<u32, MigrateError>;

    /// Applies one migration's statements (each statement must be idempotent: `IF NOT
    /// EXISTS`), then records its version.
    async fn apply(&self, migration: &Migration, statements: &[String])
        -> Result<(), MigrateError>;
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationReport {
    pub target: &'static str,
    pub from_version: u32,
    pub to_version: u32,
    pub applied: Vec<u32>,
}

pub async fn migrate(
    target: &dyn MigrationTarget,
    migrations: &[Migration],
    vars: &[(&str, &str)],
) -> Result<MigrationReport, MigrateError> {
    let known = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    target.prepare().await?;
    let from_version = target.applied_version().await?;
    if from_version > known {
        return Err(MigrateError::NewerThanKnown {
            target: target.name(),
            found: from_version,
            known,
        });
    }
    let mut pending: Vec<&Migration> = migrations
        .iter()
        .filter(|m| m.version > from_version)
        .collect();
    pending.sort_by_key(|m| m.version);
    let mut applied = Vec::new();
    for migration in pending {
        target.apply(migration, &migration.statements(vars)).await?;
        applied.push(migration.version);
    }
    Ok(MigrationReport {
        target: target.name(),
        from_version,
        to_version: from_version.max(known),
        applied,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Recorder {
        version: Mutex<u32>,
        statements: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl MigrationTarget for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        async fn prepare(&self) -> Result<(), MigrateError> {
            Ok(())
        }
        async fn applied_version(&self) -> Result<u32, MigrateError> {
            Ok(*self.version.lock().unwrap())
        }
        async fn apply(&self, m: &Migration, statements: &[String]) -> Result<(), MigrateError> {
            self.statements
                .lock()
                .unwrap()
                .extend(statements.iter().cloned());
            *self.version.lock().unwrap() = m.version;
            Ok(())
        }
    }

    const MIGRATIONS: [Migration; 2] = [
        Migration {
            version: 1,
            name: "one",
            text:
                "-- a comment\nCREATE TABLE ${KS}.a (x int);\nCREATE TABLE ${KS}.b (\n  y int\n);\n",
        },
        Migration {
            version: 2,
            name: "two",
            text: "ALTER TABLE ${KS}.a ADD z int",
        },
    ];

    fn recorder(version: u32) -> Recorder {
        Recorder {
            version: Mutex::new(version),
            statements: Mutex::new(vec![]),
        }
    }

    #[test]
    fn splits_statements_and_fills_placeholders() {
        let statements = MIGRATIONS[0].statements(&[("KS", "sembang")]);
        assert_eq!(
            statements,
            vec![
                "CREATE TABLE sembang.a (x int)",
                "CREATE TABLE sembang.b (\n  y int\n)"
            ]
        );
    }

    #[tokio::test]
    async fn applies_pending_in_order_then_nothing() {
        let target = recorder(0);
        let report = migrate(&target, &MIGRATIONS, &[("KS", "k")]).await.unwrap();
        assert_eq!(report.applied, vec![1, 2]);
        assert_eq!(target.statements.lock().unwrap().len(), 3);
        let again = migrate(&target, &MIGRATIONS, &[("KS", "k")]).await.unwrap();
        assert!(again.applied.is_empty());
        assert_eq!(again.from_version, 2);
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let target = recorder(3);
        let err = migrate(&target, &MIGRATIONS, &[]).await.unwrap_err();
        assert!(matches!(
            err,
            MigrateError::NewerThanKnown {
                found: 3,
                known: 2,
                ..
            }
        ));
    }
}
