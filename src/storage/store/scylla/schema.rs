//! The CQL schema (schemas/cql/) and its migration target.
//!
//! Where the version lives: `<keyspace>.schema_migrations`, one row per applied file in a
//! single partition (`scope = 'schema'`), newest first. `prepare` creates the keyspace (from
//! the target's keyspace name and replication map) and that table if missing, so it works on
//! an empty cluster; 0001 creates the keyspace again with `IF NOT EXISTS`, so the files also
//! stand alone. Every statement in the files is idempotent (`IF NOT EXISTS`), so a migration
//! interrupted between its statements and its version record is simply applied again.
//!
//! ```text
//! let target = CqlMigrationTarget::connect(&config, "{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}").await?;
//! migrate(&target, CQL_MIGRATIONS, &target.vars()).await?;
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use scylla::client::session::Session;
use scylla::statement::unprepared::Statement;
use scylla::statement::Consistency;

use super::{connect_session, valid_keyspace, ScyllaConfig, SERVICE};
use crate::storage::migrate::{MigrateError, Migration, MigrationTarget};
use crate::storage::store::StoreError;

/// The CQL schema files, in order. Placeholders: `${KEYSPACE}`, `${REPLICATION}`.
pub const CQL_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "keyspace",
        text: include_str!("../../../../schemas/cql/0001_keyspace.cql"),
    },
    Migration {
        version: 2,
        name: "contacts",
        text: include_str!("../../../../schemas/cql/0002_contacts.cql"),
    },
    Migration {
        version: 3,
        name: "messages",
        text: include_str!("../../../../schemas/cql/0003_messages.cql"),
    },
    Migration {
        version: 4,
        name: "segments_campaigns",
        text: include_str!("../../../../schemas/cql/0004_segments_campaigns.cql"),
    },
    Migration {
        version: 5,
        name: "frozen_recent_events",
        text: include_str!("../../../../schemas/cql/0005_frozen_recent_events.cql"),
    },
    Migration {
        version: 6,
        name: "inbound_messages",
        text: include_str!("../../../../schemas/cql/0006_inbound_messages.cql"),
    },
    Migration {
        version: 7,
        name: "drop_inbound_seen",
        text: include_str!("../../../../schemas/cql/0007_drop_inbound_seen.cql"),
    },
    Migration {
        version: 8,
        name: "send_results",
        text: include_str!("../../../../schemas/cql/0008_send_results.cql"),
    },
    Migration {
        version: 9,
        name: "campaign_touches",
        text: include_str!("../../../../schemas/cql/0009_campaign_touches.cql"),
    },
    Migration {
        version: 10,
        name: "campaign_recipients",
        text: include_str!("../../../../schemas/cql/0010_campaign_recipients.cql"),
    },
    Migration {
        version: 11,
        name: "recipient_cap_retries",
        text: include_str!("../../../../schemas/cql/0011_recipient_cap_retries.cql"),
    },
    Migration {
        version: 12,
        name: "messaging_reach",
        text: include_str!("../../../../schemas/cql/0012_messaging_reach.cql"),
    },
];

/// The table holding applied versions, inside the keyspace.
pub const VERSION_TABLE: &str = "schema_migrations";

/// A Cassandra / ScyllaDB keyspace as a [`MigrationTarget`].
pub struct CqlMigrationTarget {
    session: Arc<Session>,
    keyspace: String,
    replication: String,
}

impl CqlMigrationTarget {
    /// Connects without a keyspace (it may not exist yet). `replication` is a CQL map such
    /// as `{'class': 'SimpleStrategy', 'replication_factor': 1}`.
    pub async fn connect(config: &ScyllaConfig, replication: &str) -> Result<Self, StoreError> {
        let session = connect_session(config).await?;
        Self::new(Arc::new(session), &config.keyspace, replication)
    }

    /// On an existing session (e.g. [`super::ScyllaStore::session`]).
    pub fn new(
        session: Arc<Session>,
        keyspace: &str,
        replication: &str,
    ) -> Result<Self, StoreError> {
        valid_keyspace(keyspace)?;
        Ok(CqlMigrationTarget {
            session,
            keyspace: keyspace.to_string(),
            replication: replication.to_string(),
        })
    }

    /// The placeholder values for [`CQL_MIGRATIONS`]: `KEYSPACE` and `REPLICATION`.
    pub fn vars(&self) -> [(&str, &str); 2] {
        [
            ("KEYSPACE", self.keyspace.as_str()),
            ("REPLICATION", self.replication.as_str()),
        ]
    }

    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Records `version` as applied without applying anything (tests, manual repairs).
    pub async fn record_version(&self, version: u32, name: &str) -> Result<(), MigrateError> {
        let statement = format!(
            "INSERT INTO {}.{VERSION_TABLE} (scope, version, name, applied_at) \
             VALUES ('schema', ?, ?, toTimestamp(now()))",
            self.keyspace
        );
        let version = i32::try_from(version).map_err(|_| MigrateError::Target {
            target: SERVICE,
            detail: format!("version {version} does not fit a CQL int"),
        })?;
        self.session
            .query_unpaged(ddl(statement), (version, name))
            .await
            .map_err(|e| target_error(format!("recording version {version}: {e}")))?;
        Ok(())
    }

    async fn run(&self, statement: String) -> Result<(), String> {
        self.session
            .query_unpaged(ddl(statement.clone()), ())
            .await
            .map(|_| ())
            .map_err(|e| format!("{e} (in: {})", first_line(&statement)))
    }
}

/// Schema statements. The driver awaits schema agreement after each DDL statement; a
/// table creation can take seconds on a loaded node, so these get a longer timeout than the
/// store's requests.
fn ddl(text: String) -> Statement {
    let mut statement = Statement::new(text);
    statement.set_consistency(Consistency::LocalQuorum);
    statement.set_request_timeout(Some(DDL_TIMEOUT));
    statement
}

const DDL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

fn first_line(statement: &str) -> &str {
    statement.lines().next().unwrap_or(statement)
}

fn target_error(detail: String) -> MigrateError {
    MigrateError::Target {
        target: SERVICE,
        detail,
    }
}

#[async_trait]
impl MigrationTarget for CqlMigrationTarget {
    fn name(&self) -> &'static str {
        SERVICE
    }

    async fn prepare(&self) -> Result<(), MigrateError> {
        self.run(format!(
            "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {}",
            self.keyspace, self.replication
        ))
        .await
        .map_err(target_error)?;
        self.run(format!(
            "CREATE TABLE IF NOT EXISTS {}.{VERSION_TABLE} (\n  scope text,\n  version int,\n  \
             name text,\n  applied_at timestamp,\n  PRIMARY KEY ((scope), version)\n) \
             WITH CLUSTERING ORDER BY (version DESC)",
            self.keyspace
        ))
        .await
        .map_err(target_error)
    }

    async fn applied_version(&self) -> Result<u32, MigrateError> {
        let statement = format!(
            "SELECT version FROM {}.{VERSION_TABLE} WHERE scope = 'schema' LIMIT 1",
            self.keyspace
        );
        let rows = self
            .session
            .query_unpaged(ddl(statement), ())
            .await
            .map_err(|e| target_error(format!("reading the schema version: {e}")))?
            .into_rows_result()
            .map_err(|e| target_error(format!("reading the schema version: {e}")))?;
        let version: Option<(i32,)> = rows
            .maybe_first_row()
            .map_err(|e| target_error(format!("reading the schema version: {e}")))?;
        match version {
            None => Ok(0),
            Some((v,)) => u32::try_from(v)
                .map_err(|_| target_error(format!("recorded schema version {v} is negative"))),
        }
    }

    async fn apply(
        &self,
        migration: &Migration,
        statements: &[String],
    ) -> Result<(), MigrateError> {
        for statement in statements {
            self.run(statement.clone())
                .await
                .map_err(|detail| MigrateError::Failed {
                    target: SERVICE,
                    version: migration.version,
                    name: migration.name,
                    detail,
                })?;
        }
        self.record_version(migration.version, migration.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_fill_every_placeholder() {
        for (i, migration) in CQL_MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, i + 1);
            let statements =
                migration.statements(&[("KEYSPACE", "ks"), ("REPLICATION", "{'x': 1}")]);
            assert!(
                !statements.is_empty(),
                "{} has no statements",
                migration.name
            );
            for statement in statements {
                assert!(!statement.contains("${"), "{statement}");
                // CREATEs and DROPs are idempotent; an ALTER (ScyllaDB has no IF [NOT]
                // EXISTS for columns) runs once, under the version recorded after it.
                assert!(
                    statement.contains("IF NOT EXISTS")
                        || statement.starts_with("DROP TABLE IF EXISTS")
                        || statement.starts_with("ALTER TABLE"),
                    "{statement}"
                );
                assert!(!statement.contains(';'), "{statement}");
            }
        }
    }
}
