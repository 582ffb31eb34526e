//! The connector's configuration: Debezium's MySQL connector keys, names and defaults.
//!
//! Keys that would change what Debezium emits but that this connector does not implement
//! are refused at validation ([`unsupported`]), so a configuration never silently means
//! something else here than under Debezium.

use std::time::Duration;

use crate::config::{
    key, parse_config, ConfigType as T, DefaultValue as D, Key, Props, Validator as V,
};
use crate::connector::ConnectError;
use crate::connectors::debezium::NameFilter;

pub const SNAPSHOT_MODES: &[&str] = &[
    "initial",
    "when_needed",
    "never",
    "no_data",
    "schema_only",
    "initial_only",
    "always",
    "recovery",
    "schema_only_recovery",
];

fn check_server_id(s: &str) -> Result<(), String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n > 0 && n <= u32::MAX as u64 => Ok(()),
        _ => Err("must be a number between 1 and 4294967295".into()),
    }
}

/// The connector's own keys (Debezium's names and defaults).
pub const KEYS: &[Key] = &[
    key("topic.prefix", T::String, D::Required, V::NonEmptyNoControl)
        .doc("Topic prefix that identifies this database server; the change topics are <prefix>.<db>.<table>."),
    key("database.hostname", T::String, D::Required, V::NonEmpty)
        .doc("Resolvable hostname or IP address of the database server."),
    key("database.port", T::Int, D::Value("3306"), V::Between(1, 65535))
        .doc("Port of the database server."),
    key("database.user", T::String, D::Required, V::NonEmpty)
        .doc("Name of the database user to connect as (needs REPLICATION SLAVE, REPLICATION CLIENT, SELECT, RELOAD)."),
    key("database.password", T::Password, D::Null, V::None)
        .doc("Password of the database user."),
    key("database.server.id", T::Long, D::Null, V::Custom(check_server_id))
        .doc("A numeric ID of this client, unique among the server's replicas. Default: a random number between 5400 and 6400."),
    key("database.include.list", T::List, D::Null, V::None)
        .doc("Regular expressions matching the databases to capture (full match)."),
    key("database.exclude.list", T::List, D::Null, V::None)
        .doc("Regular expressions matching the databases not to capture."),
    key("table.include.list", T::List, D::Null, V::None)
        .doc("Regular expressions matching <db>.<table> identifiers of tables to capture."),
    key("table.exclude.list", T::List, D::Null, V::None)
        .doc("Regular expressions matching <db>.<table> identifiers of tables not to capture."),
    key("column.include.list", T::List, D::Null, V::None)
        .doc("Regular expressions matching <db>.<table>.<column> of the columns to include."),
    key("column.exclude.list", T::List, D::Null, V::None)
        .doc("Regular expressions matching <db>.<table>.<column> of the columns to leave out."),
    key("snapshot.mode", T::String, D::Value("initial"), V::InCaseInsensitive(SNAPSHOT_MODES))
        .doc("initial: snapshot then stream; when_needed: snapshot when there is no offset or its binlog is gone; never/no_data/schema_only: stream only; initial_only: snapshot only; always: snapshot at every start; recovery/schema_only_recovery: rewrite the schema history from the current tables, then stream from the offset."),
    key("snapshot.fetch.size", T::Int, D::Null, V::None)
        .doc("Rows read per query (chunk) during the snapshot. Default 10240."),
    key("snapshot.max.threads", T::Int, D::Value("1"), V::Between(1, 1))
        .doc("Only 1 is supported."),
    key("schema.history.internal.kafka.topic", T::String, D::Null, V::None)
        .doc("The topic the connector writes and reads its database schema history to."),
    key("schema.history.internal.kafka.bootstrap.servers", T::String, D::Null, V::None)
        .doc("The Kafka brokers of the schema history topic (default: the worker's)."),
    key("schema.history.internal.store.only.captured.tables.ddl", T::Boolean, D::Value("false"), V::None)
        .doc("Accepted; the history always records the captured tables' DDL only."),
    key("binary.handling.mode", T::String, D::Value("bytes"), V::InCaseInsensitive(&["bytes", "base64", "base64-url-safe", "hex"]))
        .doc("How binary columns are represented: bytes, base64, base64-url-safe or hex strings."),
    key("time.precision.mode", T::String, D::Value("adaptive_time_microseconds"), V::InCaseInsensitive(&["adaptive_time_microseconds", "connect"]))
        .doc("adaptive_time_microseconds: io.debezium.time types; connect: Kafka Connect's logical types."),
    key("decimal.handling.mode", T::String, D::Value("precise"), V::InCaseInsensitive(&["precise", "double", "string"]))
        .doc("precise: Connect Decimal; double: float64; string: text."),
    key("bigint.unsigned.handling.mode", T::String, D::Value("long"), V::InCaseInsensitive(&["long", "precise"]))
        .doc("long: int64 (values above 2^63-1 wrap); precise: Decimal with scale 0."),
    key("tombstones.on.delete", T::Boolean, D::Value("true"), V::None)
        .doc("Whether a delete event is followed by a tombstone (null value, same key)."),
    key("heartbeat.interval.ms", T::Int, D::Value("0"), V::AtLeast(0))
        .doc("How often a heartbeat record carrying the current binlog offset is sent; 0 disables heartbeats."),
    key("topic.heartbeat.prefix", T::String, D::Value("__debezium-heartbeat"), V::NonEmpty)
        .doc("Prefix of the heartbeat topic <prefix>.<topic.prefix>."),
    key("max.batch.size", T::Int, D::Value("2048"), V::AtLeast(1))
        .doc("Maximum number of records returned by one poll."),
    key("max.queue.size", T::Int, D::Value("8192"), V::AtLeast(1))
        .doc("Maximum number of records buffered between the database reader and poll."),
    key("poll.interval.ms", T::Long, D::Value("500"), V::AtLeast(1))
        .doc("How long a poll waits for records before returning an empty batch."),
    key("connect.timeout.ms", T::Long, D::Value("30000"), V::AtLeast(1))
        .doc("How long to wait for a connection to the database."),
    key("database.connectionTimeZone", T::String, D::Null, V::None)
        .doc("Accepted; TIMESTAMP columns are read in UTC (the session time zone is set to +00:00)."),
    key("database.serverTimezone", T::String, D::Null, V::None)
        .doc("Accepted (legacy name of database.connectionTimeZone)."),
    key("signal.data.collection", T::String, D::Null, V::None)
        .doc("The signal table (<db>.<table>, columns id, type, data) whose execute-snapshot rows start incremental snapshots."),
    key("incremental.snapshot.chunk.size", T::Int, D::Value("1024"), V::AtLeast(1))
        .doc("Rows read per chunk of an incremental snapshot."),
    key("include.schema.changes", T::Boolean, D::Value("true"), V::None)
        .doc("Whether DDL changes are also sent as schema change events to the <topic.prefix> topic."),
];

/// Debezium keys whose non-default values change the events or the protocol in ways this
/// connector does not implement: refused rather than ignored (the value shown is what is
/// accepted).
const UNSUPPORTED: &[(&str, &[&str])] = &[
    ("snapshot.locking.mode", &["minimal", "none"]),
    ("gtid.source.includes", &[]),
    ("gtid.source.excludes", &[]),
    ("message.key.columns", &[]),
    ("column.mask.hash", &[]),
    ("column.propagate.source.type", &[]),
    ("datatype.propagate.source.type", &[]),
    ("converters", &[]),
    ("snapshot.select.statement.overrides", &[]),
    ("provide.transaction.metadata", &["false"]),
    ("skipped.operations", &["t", "none"]),
    ("event.deserialization.failure.handling.mode", &["fail"]),
    ("inconsistent.schema.handling.mode", &["fail"]),
    ("database.ssl.mode", &["disabled", "preferred"]),
    ("include.query", &["false"]),
    ("snapshot.new.tables", &["off"]),
    ("enable.time.adjuster", &["true"]),
    ("table.ignore.builtin", &["true"]),
    ("schema.name.adjustment.mode", &["none"]),
    ("field.name.adjustment.mode", &["none"]),
    (
        "topic.naming.strategy",
        &["io.debezium.schema.DefaultTopicNamingStrategy"],
    ),
    (
        "incremental.snapshot.watermarking.strategy",
        &["insert_insert"],
    ),
    ("read.only", &["false"]),
    ("heartbeat.action.query", &[]),
    ("snapshot.include.collection.list", &[]),
    ("database.initial.statements", &[]),
    ("skip.messages.without.change", &["false"]),
    ("snapshot.query.mode", &["select_all"]),
    ("post.processors", &[]),
    ("event.processing.failure.handling.mode", &["fail"]),
    ("signal.enabled.channels", &["source"]),
    ("incremental.snapshot.allow.schema.changes", &["false"]),
];

/// (key, message) for every configured key this connector refuses.
pub fn unsupported(props: &Props) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, allowed) in UNSUPPORTED {
        if let Some(v) = props.get(*k) {
            let v = v.trim();
            let accepted_value = allowed.iter().any(|a| a.eq_ignore_ascii_case(v))
                || (allowed.is_empty() && v.is_empty());
            if !accepted_value {
                let accepted = if allowed.is_empty() {
                    "it must not be set".to_string()
                } else {
                    format!("accepted values: {}", allowed.join(", "))
                };
                out.push((
                    k.to_string(),
                    format!("{k}={v} is not supported by Moldau's MySQL connector ({accepted})"),
                ));
            }
        }
    }
    for k in props.keys() {
        if k.starts_with("column.mask.with.") || k.starts_with("column.truncate.to.") {
            out.push((
                k.clone(),
                format!("{k} is not supported by Moldau's MySQL connector"),
            ));
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMode {
    Initial,
    WhenNeeded,
    Never,
    InitialOnly,
    Always,
    Recovery,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryMode {
    Bytes,
    Base64,
    Base64UrlSafe,
    Hex,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecimalMode {
    Precise,
    Double,
    String,
}

/// How column values become Connect values (shared by snapshot and binlog).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueModes {
    pub binary: BinaryMode,
    pub decimal: DecimalMode,
    /// `time.precision.mode=connect`.
    pub connect_time: bool,
    /// `bigint.unsigned.handling.mode=precise`.
    pub bigint_unsigned_precise: bool,
}

/// Which databases, tables and columns are captured.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    databases: NameFilter,
    tables: NameFilter,
    columns: NameFilter,
}

/// MySQL's own databases, never captured (Debezium's `table.ignore.builtin`).
const BUILTIN_DATABASES: &[&str] = &["mysql", "information_schema", "performance_schema", "sys"];

impl Filters {
    pub fn database(&self, db: &str) -> bool {
        !BUILTIN_DATABASES.iter().any(|b| b.eq_ignore_ascii_case(db)) && self.databases.matches(db)
    }

    pub fn table(&self, db: &str, table: &str) -> bool {
        self.database(db) && self.tables.matches(&format!("{db}.{table}"))
    }

    pub fn column(&self, db: &str, table: &str, column: &str) -> bool {
        self.columns.matches(&format!("{db}.{table}.{column}"))
    }
}

/// The parsed configuration.
#[derive(Clone, Debug)]
pub struct MySqlConfig {
    pub topic_prefix: String,
    pub hostname: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub server_id: u32,
    pub filters: Filters,
    pub snapshot_mode: SnapshotMode,
    pub snapshot_fetch_size: usize,
    pub history_topic: Option<String>,
    pub history_bootstrap: Option<String>,
    pub modes: ValueModes,
    pub tombstones_on_delete: bool,
    pub heartbeat_interval_ms: u64,
    pub heartbeat_prefix: String,
    pub max_batch_size: usize,
    pub max_queue_size: usize,
    pub poll_interval_ms: u64,
    pub connect_timeout_ms: u64,
    pub include_schema_changes: bool,
    /// `db.table` of the signal table.
    pub signal_data_collection: Option<String>,
    pub incremental_chunk_size: usize,
}

impl MySqlConfig {
    pub fn parse(props: &Props) -> Result<MySqlConfig, ConnectError> {
        let c = parse_config(KEYS, props).map_err(|e| ConnectError::Config(e.to_string()))?;
        if let Some((_, m)) = unsupported(props).into_iter().next() {
            return Err(ConnectError::Config(m));
        }
        let s = |k: &str| c.string(k).unwrap_or_default();
        let lower = |k: &str| s(k).to_ascii_lowercase();
        // Debezium matches MySQL's names case-insensitively.
        let filter = |kind: &str| {
            let (inc, exc) = (
                format!("{kind}.include.list"),
                format!("{kind}.exclude.list"),
            );
            NameFilter::new((&inc, &c.list(&inc)), (&exc, &c.list(&exc)), true)
        };
        let filters = Filters {
            databases: filter("database")?,
            tables: filter("table")?,
            columns: filter("column")?,
        };
        let snapshot_mode = match lower("snapshot.mode").as_str() {
            "when_needed" => SnapshotMode::WhenNeeded,
            "never" | "no_data" | "schema_only" => SnapshotMode::Never,
            "initial_only" => SnapshotMode::InitialOnly,
            "always" => SnapshotMode::Always,
            "recovery" | "schema_only_recovery" => SnapshotMode::Recovery,
            _ => SnapshotMode::Initial,
        };
        let server_id = match c.num("database.server.id") {
            Some(n) => n as u32,
            // Debezium's default: a random id in 5400..=6400.
            None => 5400 + (uuid::Uuid::new_v4().as_u128() % 1001) as u32,
        };
        let modes = ValueModes {
            binary: match lower("binary.handling.mode").as_str() {
                "base64" => BinaryMode::Base64,
                "base64-url-safe" => BinaryMode::Base64UrlSafe,
                "hex" => BinaryMode::Hex,
                _ => BinaryMode::Bytes,
            },
            decimal: match lower("decimal.handling.mode").as_str() {
                "double" => DecimalMode::Double,
                "string" => DecimalMode::String,
                _ => DecimalMode::Precise,
            },
            connect_time: lower("time.precision.mode") == "connect",
            bigint_unsigned_precise: lower("bigint.unsigned.handling.mode") == "precise",
        };
        let fetch = c.num("snapshot.fetch.size").unwrap_or(10240);
        Ok(MySqlConfig {
            topic_prefix: s("topic.prefix"),
            hostname: s("database.hostname"),
            port: c.num("database.port").unwrap_or(3306) as u16,
            user: s("database.user"),
            password: c.password("database.password"),
            server_id,
            filters,
            snapshot_mode,
            snapshot_fetch_size: fetch.clamp(1, 1_000_000) as usize,
            history_topic: c
                .string("schema.history.internal.kafka.topic")
                .filter(|t| !t.is_empty()),
            history_bootstrap: c
                .string("schema.history.internal.kafka.bootstrap.servers")
                .filter(|t| !t.is_empty()),
            modes,
            tombstones_on_delete: c.boolean("tombstones.on.delete"),
            heartbeat_interval_ms: c.num("heartbeat.interval.ms").unwrap_or(0) as u64,
            heartbeat_prefix: s("topic.heartbeat.prefix"),
            max_batch_size: c.num("max.batch.size").unwrap_or(2048) as usize,
            max_queue_size: c.num("max.queue.size").unwrap_or(8192) as usize,
            poll_interval_ms: c.num("poll.interval.ms").unwrap_or(500) as u64,
            connect_timeout_ms: c.num("connect.timeout.ms").unwrap_or(30000) as u64,
            include_schema_changes: c.boolean("include.schema.changes"),
            signal_data_collection: c.string("signal.data.collection").filter(|s| !s.is_empty()),
            incremental_chunk_size: c
                .num("incremental.snapshot.chunk.size")
                .unwrap_or(1024)
                .max(1) as usize,
        })
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> Props {
        let mut p: Props = [
            ("topic.prefix", "shop"),
            ("database.hostname", "localhost"),
            ("database.user", "debezium"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            p.insert(k.to_string(), v.to_string());
        }
        p
    }

    #[test]
    fn defaults_are_debeziums() {
        let c = MySqlConfig::parse(&props(&[])).unwrap();
        assert_eq!(c.port, 3306);
        assert!((5400..=6400).contains(&c.server_id));
        assert_eq!(c.snapshot_mode, SnapshotMode::Initial);
        assert!(c.tombstones_on_delete);
        assert_eq!(c.max_batch_size, 2048);
        assert_eq!(c.poll_interval_ms, 500);
        assert_eq!(c.modes.decimal, DecimalMode::Precise);
        assert_eq!(c.heartbeat_prefix, "__debezium-heartbeat");
    }

    #[test]
    fn filters_match_whole_identifiers() {
        let c = MySqlConfig::parse(&props(&[
            ("table.include.list", "inv\\.cust.*,inv.orders"),
            ("column.exclude.list", "inv.customers.secret"),
        ]))
        .unwrap();
        assert!(c.filters.table("inv", "customers"));
        assert!(c.filters.table("inv", "orders"));
        assert!(!c.filters.table("inv", "orders2"));
        assert!(!c.filters.table("mysql", "user"));
        assert!(!c.filters.column("inv", "customers", "secret"));
        assert!(c.filters.column("inv", "customers", "secret2"));
    }

    #[test]
    fn semantic_keys_it_does_not_implement_are_refused() {
        let e = MySqlConfig::parse(&props(&[("message.key.columns", "inv.t:a")])).unwrap_err();
        assert!(e.to_string().contains("message.key.columns"), "{e}");
        let e = MySqlConfig::parse(&props(&[("snapshot.mode", "bogus")])).unwrap_err();
        assert!(e.to_string().contains("snapshot.mode"), "{e}");
        assert!(MySqlConfig::parse(&props(&[("include.query", "false")])).is_ok());
        assert!(MySqlConfig::parse(&props(&[("snapshot.mode", "no_data")])).is_ok());
        let e = MySqlConfig::parse(&props(&[("table.include.list", "(")])).unwrap_err();
        assert!(e.to_string().contains("table.include.list"), "{e}");
    }
}
