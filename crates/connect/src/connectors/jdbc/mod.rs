//! A JDBC-style sink, `io.confluent.connect.jdbc.JdbcSinkConnector`, writing records to
//! PostgreSQL, MySQL/MariaDB or SQLite through their native Rust clients (the
//! `connection.url` keeps the JDBC form, so existing connector JSON works).
//!
//! Implemented, with Confluent's names and defaults: `connection.url` (`?user=&password=`
//! and `user:password@host` accepted), `connection.user`, `connection.password`,
//! `connection.attempts`, `connection.backoff.ms`, `insert.mode` (insert, upsert, update),
//! `batch.size`, `delete.enabled`, `table.name.format` (`${topic}`), `pk.mode` (none,
//! kafka, record_key, record_value), `pk.fields`, `fields.whitelist` (or
//! `fields.include.list`), `auto.create`, `auto.evolve`, `quote.sql.identifiers`,
//! `max.retries`, `retry.backoff.ms`, `db.timezone` (UTC or a fixed offset) and
//! `dialect.name`.
//!
//! Semantics: a record value must be a Struct with a schema; a tombstone deletes by key
//! with `delete.enabled` (which needs `pk.mode=record_key`) and is an error otherwise, as
//! in Confluent. Upserts are `INSERT ... ON CONFLICT (pk) DO UPDATE` (PostgreSQL, SQLite)
//! or `INSERT ... ON DUPLICATE KEY UPDATE` (MySQL), so redelivered batches are idempotent.
//! Each batch is one transaction; `flush` returns only after everything put is committed.
//! Lost connections and deadlocks are `Retriable` (until `max.retries` is used up); bad
//! records and schema mismatches are `Fatal`, naming the record's topic, partition and
//! offset.
//!
//! Not implemented: `table.types` (views), `db.timezone` region names, multi-host URLs,
//! TLS connection options, arrays/maps/structs as columns (flatten them first).

mod config;
mod db;
mod dialect;
mod rows;
mod task;

use async_trait::async_trait;

use crate::config::{parse_config, ConnectorType, Props};
use crate::connector::{ConnectError, Connector, ConnectorContext, Plugin, SinkTask};

pub use config::{ConnectionUrl, Dialect, InsertMode, JdbcSinkConfig, PkMode, KEYS};
pub use task::JdbcSinkTask;

// Shared with the HTTP sink: record locations and the text of logical values.
pub(crate) use dialect::{date_of, decimal_text, time_of};
pub(crate) use rows::location;

/// The connector class users name.
pub const CLASS: &str = "io.confluent.connect.jdbc.JdbcSinkConnector";

fn new_connector() -> Box<dyn Connector> {
    Box::new(JdbcSinkConnector::default())
}

fn new_task() -> Box<dyn SinkTask> {
    Box::new(JdbcSinkTask::default())
}

pub const PLUGIN: Plugin = Plugin {
    class: CLASS,
    task_class: "io.confluent.connect.jdbc.sink.JdbcSinkTask",
    connector_type: ConnectorType::Sink,
    version: env!("CARGO_PKG_VERSION"),
    config_keys: KEYS,
    new_connector,
    new_source_task: None,
    new_sink_task: Some(new_task),
};

/// The connector: checks the configuration and the database, and gives every task the
/// same configuration (records are split between tasks by partition).
#[derive(Default)]
pub struct JdbcSinkConnector {
    props: Props,
}

/// How long validation may spend reaching the database.
const VALIDATE_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[async_trait]
impl Connector for JdbcSinkConnector {
    async fn validate(&self, props: &Props) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        // The keys' own errors come from their definitions; these are between keys.
        if let Ok(c) = parse_config(KEYS, props) {
            let insert_mode = match c
                .string(config::INSERT_MODE)
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str()
            {
                "upsert" => InsertMode::Upsert,
                "update" => InsertMode::Update,
                _ => InsertMode::Insert,
            };
            let pk_mode = match c
                .string(config::PK_MODE)
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str()
            {
                "kafka" => PkMode::Kafka,
                "record_key" => PkMode::RecordKey,
                "record_value" => PkMode::RecordValue,
                _ => PkMode::None,
            };
            errors.extend(config::cross_check(
                c.boolean(config::DELETE_ENABLED),
                pk_mode,
                insert_mode,
                &c.list(config::PK_FIELDS),
            ));
        }
        // Reachability, with the URL's own credentials overridden by the options.
        let Some(Ok(mut url)) = props
            .get(config::CONNECTION_URL)
            .map(|u| ConnectionUrl::parse(u))
        else {
            return errors;
        };
        if let Some(u) = props.get(config::CONNECTION_USER) {
            url.user = Some(u.clone());
        }
        if let Some(p) = props.get(config::CONNECTION_PASSWORD) {
            url.password = Some(p.clone());
        }
        let reached = tokio::time::timeout(
            VALIDATE_CONNECT_TIMEOUT,
            db::Db::connect(&url, VALIDATE_CONNECT_TIMEOUT),
        )
        .await;
        match reached {
            Ok(Ok(db)) => db.close().await,
            Ok(Err(e)) => errors.push((
                config::CONNECTION_URL.to_string(),
                format!("Could not connect to the database: {}", e.message),
            )),
            Err(_) => errors.push((
                config::CONNECTION_URL.to_string(),
                format!(
                    "Could not connect to the database within {} s",
                    VALIDATE_CONNECT_TIMEOUT.as_secs()
                ),
            )),
        }
        errors
    }

    async fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<(), ConnectError> {
        JdbcSinkConfig::parse(props)?;
        self.props = props.clone();
        Ok(())
    }

    async fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<Props>, ConnectError> {
        Ok(vec![self.props.clone(); max_tasks])
    }

    async fn stop(&mut self) {}
}
