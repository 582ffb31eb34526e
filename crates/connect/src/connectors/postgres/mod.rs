//! PostgreSQL change data capture, configured as Debezium's Postgres connector
//! (`io.debezium.connector.postgresql.PostgresConnector`, `plugin.name=pgoutput`) and
//! producing Debezium's change events: topics `<topic.prefix>.<schema>.<table>`, keys of the
//! primary key columns, `before`/`after`/`source`/`op` envelopes, tombstones after deletes,
//! heartbeats, and Debezium's offset keys (`lsn`, `lsn_commit`, `txId`, `ts_usec`, ...).
//!
//! # How changes are read
//!
//! `tokio-postgres` has no streaming replication (CopyBoth), so the task uses logical
//! decoding through SQL. The connector's slot (`slot.name`, plugin pgoutput) is the
//! durable position: it moves only in [`SourceTask::commit`], to the commit LSN of the last
//! returned transaction, with `pg_replication_slot_advance`. Each database session reads
//! through a temporary copy of that slot (`pg_copy_logical_replication_slot`, dropped with
//! the session) which it consumes with `pg_logical_slot_get_binary_changes(..., 'proto_version',
//! '1', 'publication_names', ...)`, so a poll decodes only new WAL rather than everything
//! since the last commit. After a crash or reconnect a new copy starts at the connector's
//! slot again, and the offset skips what was already emitted: whole transactions that
//! committed before the offset's `lsn_commit`, and in that transaction the first
//! `event_seq` change messages (decoding is deterministic, so the count is exact even for
//! multi-row inserts that share one LSN). No change is lost, none is emitted twice.
//!
//! Latency: when the slot has nothing new the task waits `poll.interval.ms` (default 500,
//! at most 1 s per poll) before asking again, so a change is seen within about that time
//! plus a round trip. The SQL interface returns whole transactions: a very large
//! transaction is held in memory while it is converted.
//!
//! # Snapshot consistency
//!
//! The SQL interface cannot export the slot's snapshot (`SET TRANSACTION SNAPSHOT` needs a
//! replication connection), so the snapshot is matched to the stream by transaction ids.
//! The slot is created first: `pg_create_logical_replication_slot` returns once decoding is
//! consistent, so every transaction either committed before that point (and is visible
//! to any snapshot taken later) or is decoded from the slot. Then a `REPEATABLE READ`
//! transaction takes its snapshot with its first statement, reading `pg_current_snapshot()`
//! (xmin, xmax, in-progress xids) and, after the snapshot was taken,
//! `pg_current_wal_insert_lsn()`. A decoded transaction is in the snapshot exactly when its
//! xid is visible in that MVCC snapshot (below xmax, not in progress): it is skipped;
//! every other one is streamed. Every visible transaction's commit record precedes that
//! LSN (the insert position, as an asynchronous commit can be visible before its record is
//! written), so the filter is only consulted below it, and it stays in the offset until
//! streaming passes the LSN. Whatever the slot's position (even a slot made long before),
//! nothing is lost and nothing seen by the snapshot is streamed again.
//! Tables are read in chunks by primary key (keyset pagination, `snapshot.fetch.size`)
//! with progress (`snapshot_table`, `snapshot_key`) in each record's offset, so an
//! interrupted snapshot resumes after the last returned row, in a new transaction: rows
//! changed while it was interrupted may then show both in the remaining snapshot rows and
//! as streamed events (at least once, as Debezium), never lost. A table without a primary
//! key is read through a cursor and, when interrupted, read again from its start. No
//! explicit locks are taken; the snapshot's reads hold ACCESS SHARE locks (which block only
//! DDL such as `ALTER TABLE`) until the snapshot's transaction ends.
//!
//! # Differences from Debezium
//!
//! See [`config::UNSUPPORTED_KEYS`] for the keys refused. One-dimensional arrays are
//! Connect arrays of their element's mapping (a multi-dimensional array value fails the
//! task). Types without a Debezium-specific mapping here are their text representation as
//! strings: where Debezium differs, that is money (Debezium: Decimal), bit strings (boolean
//! or bytes), geometric types (Debezium's Point struct) and hstore (Debezium: JSON).
//! Transaction metadata topics are not produced. A key-only `before` (REPLICA IDENTITY
//! DEFAULT delete) fills required non-key columns with their type's zero. A null decoded
//! for a column the catalog now says is NOT NULL (written before a `SET NOT NULL`) makes
//! that column optional in the table's schemas. Heartbeats are sent while streaming only.
//! `initial_only` creates no slot (it never streams, and a slot would hold WAL back).
//! Only unencrypted connections (`database.sslmode` disable or prefer).

pub mod catalog;
pub mod config;
pub mod offset;
pub mod pgoutput;
pub mod task;
pub mod types;

use std::time::Duration;

use async_trait::async_trait;

use crate::config::{ConnectorType, Props};
use crate::connector::{ConnectError, Connector, ConnectorContext, Plugin, SourceTask};

use config::PgConfig;

/// Debezium's connector class.
pub const CLASS: &str = "io.debezium.connector.postgresql.PostgresConnector";

/// How long `validate` may spend reaching the database.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(5);

/// The connector: one task (a replication slot has one reader).
#[derive(Default)]
pub struct PostgresConnector {
    props: Props,
}

/// Checks what only the database can tell: reachable with these settings, `wal_level`.
pub async fn check_database(cfg: &PgConfig) -> Vec<(String, String)> {
    let attempt = async {
        let (client, _conn) = task::connect(cfg).await?;
        let level = catalog::scalar(&client, "SHOW wal_level")
            .await
            .map_err(|e| catalog::pg_error("SHOW wal_level", &e))?;
        Ok::<_, ConnectError>(level)
    };
    match tokio::time::timeout(VALIDATE_TIMEOUT, attempt).await {
        Err(_) => vec![(
            "database.hostname".into(),
            format!(
                "cannot connect to {}:{} within {} s",
                cfg.hostname,
                cfg.port,
                VALIDATE_TIMEOUT.as_secs()
            ),
        )],
        Ok(Err(e)) => vec![("database.hostname".into(), e.to_string())],
        Ok(Ok(level)) if level.as_deref() != Some("logical") => vec![(
            "database.hostname".into(),
            format!(
                "PostgreSQL's wal_level must be logical for change data capture (it is {}): set wal_level = logical and restart the server",
                level.unwrap_or_default()
            ),
        )],
        Ok(Ok(_)) => Vec::new(),
    }
}

#[async_trait]
impl Connector for PostgresConnector {
    async fn validate(&self, props: &Props) -> Vec<(String, String)> {
        let mut errors = config::unsupported(props);
        // Key errors (missing, wrong type, plugin.name) are reported by the keys' own
        // checks; the database is only reached with a usable configuration.
        if errors.is_empty() {
            if let Ok(cfg) = PgConfig::parse(props) {
                errors.extend(check_database(&cfg).await);
            }
        }
        errors
    }

    async fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<(), ConnectError> {
        PgConfig::parse(props)?;
        self.props = props.clone();
        Ok(())
    }

    async fn task_configs(&mut self, _max_tasks: usize) -> Result<Vec<Props>, ConnectError> {
        Ok(vec![self.props.clone()])
    }

    async fn stop(&mut self) {}
}

fn new_connector() -> Box<dyn Connector> {
    Box::new(PostgresConnector::default())
}

fn new_source_task() -> Box<dyn SourceTask> {
    task::new_task()
}

/// The plugin.
pub const PLUGIN: Plugin = Plugin {
    class: CLASS,
    task_class: "io.debezium.connector.postgresql.PostgresConnectorTask",
    connector_type: ConnectorType::Source,
    version: env!("CARGO_PKG_VERSION"),
    config_keys: config::KEYS,
    new_connector,
    new_source_task: Some(new_source_task),
    new_sink_task: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{validate_plugin_config, OverridePolicy};

    #[test]
    fn the_runtime_validates_the_keys_with_debeziums_messages() {
        let props: Props = [
            ("connector.class", CLASS),
            ("name", "pg"),
            ("database.hostname", "localhost"),
            ("database.user", "postgres"),
            ("database.dbname", "db"),
            ("topic.prefix", "srv"),
            ("snapshot.mode", "custom"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let infos = validate_plugin_config(
            &props,
            ConnectorType::Source,
            OverridePolicy::All,
            PLUGIN.config_keys,
            &config::unsupported(&props),
        );
        let plugin = infos.errors_of("plugin.name").join(" ");
        assert!(plugin.contains("decoderbufs is not supported"), "{plugin}");
        assert!(!infos.errors_of("snapshot.mode").is_empty());
        assert!(
            infos.errors_of("database.port").is_empty(),
            "5432 by default"
        );
    }
}
