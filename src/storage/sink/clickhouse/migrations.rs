//! The ClickHouse schema and how it is applied.

use super::*;

/// The ClickHouse schema, applied by [`ClickHouseSink::migrate`] with `${DATABASE}`
/// replaced by the configured database.
pub const CLICKHOUSE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        text: include_str!("../../../../schemas/clickhouse/0001_events.sql"),
    },
    Migration {
        version: 2,
        name: "views",
        text: include_str!("../../../../schemas/clickhouse/0002_views.sql"),
    },
    Migration {
        version: 3,
        name: "campaign_revenue",
        text: include_str!("../../../../schemas/clickhouse/0003_campaign_revenue.sql"),
    },
    Migration {
        version: 4,
        name: "personal_data_access",
        text: include_str!("../../../../schemas/clickhouse/0004_personal_data_access.sql"),
    },
];

/// Records applied versions in `${DATABASE}.schema_migrations`.
pub struct ClickHouseMigrations {
    pub(super) sink: ClickHouseSink,
}

impl ClickHouseMigrations {
    fn target_error(&self, error: SinkError) -> MigrateError {
        MigrateError::Target {
            target: SERVICE,
            detail: error.to_string(),
        }
    }
}

#[async_trait]
impl MigrationTarget for ClickHouseMigrations {
    fn name(&self) -> &'static str {
        SERVICE
    }

    async fn prepare(&self) -> Result<(), MigrateError> {
        let db = &self.sink.config.database;
        self.sink
            .execute(
                "create database",
                &format!("CREATE DATABASE IF NOT EXISTS {db}"),
            )
            .await
            .map_err(|e| self.target_error(e))?;
        self.sink
            .execute(
                "create schema_migrations",
                &format!(
                    "CREATE TABLE IF NOT EXISTS {db}.schema_migrations \
                     (version UInt32, name String, applied_at DateTime('UTC')) \
                     ENGINE = MergeTree() ORDER BY version"
                ),
            )
            .await
            .map_err(|e| self.target_error(e))
    }

    async fn applied_version(&self) -> Result<u32, MigrateError> {
        let sql = format!(
            "SELECT max(version) FROM {}.schema_migrations",
            self.sink.config.database
        );
        let versions: Vec<u32> = self
            .sink
            .fetch(sql)
            .await
            .map_err(|e| self.target_error(e))?;
        Ok(versions.first().copied().unwrap_or(0))
    }

    async fn apply(
        &self,
        migration: &Migration,
        statements: &[String],
    ) -> Result<(), MigrateError> {
        let failed = |detail: String| MigrateError::Failed {
            target: SERVICE,
            version: migration.version,
            name: migration.name,
            detail,
        };
        for statement in statements {
            self.sink
                .execute("migrate", statement)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        let record = format!(
            "INSERT INTO {}.schema_migrations (version, name, applied_at) \
             SELECT toUInt32({}), '{}', now()",
            self.sink.config.database,
            migration.version,
            migration.name.replace(['\\', '\''], "")
        );
        self.sink
            .execute("record migration", &record)
            .await
            .map_err(|e| failed(e.to_string()))
    }
}

// ---- rows as ClickHouse stores them ------------------------------------------------------
