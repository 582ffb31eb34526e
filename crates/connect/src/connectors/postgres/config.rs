//! The connector's configuration: Debezium's key names and defaults.

use regex::Regex;

use super::types::{BinaryMode, DecimalMode, Modes, TimeMode};
use crate::config::{
    key, parse_config, ConfigType as T, DefaultValue as D, Key, Props, Validator as V,
};
use crate::connector::ConnectError;
use crate::connectors::debezium::NameFilter;

fn plugin_name(v: &str) -> Result<(), String> {
    match v {
        "pgoutput" => Ok(()),
        "decoderbufs" => Err(
            "decoderbufs is not supported: this connector decodes PostgreSQL's built-in pgoutput plugin only; set plugin.name=pgoutput".into(),
        ),
        other => Err(format!("unknown logical decoding plugin {other:?}: only pgoutput is supported")),
    }
}

/// PostgreSQL's rule for replication slot names.
fn slot_name(v: &str) -> Result<(), String> {
    if v.is_empty()
        || v.len() > 63
        || !v
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(
            "a replication slot name is 1 to 63 lower case letters, digits and underscores".into(),
        );
    }
    Ok(())
}

fn regex_list(v: &str) -> Result<(), String> {
    for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        Regex::new(p).map_err(|e| format!("invalid regular expression {p:?}: {e}"))?;
    }
    Ok(())
}

/// `<kind>.include.list` and `<kind>.exclude.list` (comma separated patterns).
fn name_filter(c: &crate::config::ParsedConfig, kind: &str) -> Result<NameFilter, ConnectError> {
    let list = |key: &str| -> Vec<String> {
        c.string(key)
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let (inc, exc) = (
        format!("{kind}.include.list"),
        format!("{kind}.exclude.list"),
    );
    NameFilter::new((&inc, &list(&inc)), (&exc, &list(&exc)), false)
}

fn skipped_operations(v: &str) -> Result<(), String> {
    for op in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !matches!(op, "c" | "u" | "d" | "t" | "none") {
            return Err(format!(
                "unknown operation {op:?}: expected c, u, d, t or none"
            ));
        }
    }
    Ok(())
}

/// The connector's own keys.
pub const KEYS: &[Key] = &[
    key("database.hostname", T::String, D::Required, V::NonEmpty)
        .doc("Resolvable hostname or IP address of the database server."),
    key("database.port", T::Int, D::Value("5432"), V::Between(1, 65535))
        .doc("Port of the database server."),
    key("database.user", T::String, D::Required, V::NonEmpty)
        .doc("Name of the database user to be used when connecting to the database."),
    key("database.password", T::Password, D::Null, V::None)
        .doc("Password of the database user to be used when connecting to the database."),
    key("database.dbname", T::String, D::Required, V::NonEmpty)
        .doc("The name of the database from which the connector should capture changes"),
    key("database.sslmode", T::String, D::Value("prefer"), V::In(&["disable", "prefer"]))
        .doc("Whether to use an encrypted connection; only disable and prefer (plain when the server does not offer TLS) are supported."),
    key("topic.prefix", T::String, D::Required, V::NonEmpty)
        .doc("Topic prefix that identifies and provides a namespace for the particular database server/cluster is capturing changes."),
    key("plugin.name", T::String, D::Value("decoderbufs"), V::Custom(plugin_name))
        .doc("The name of the Postgres logical decoding plugin installed on the server. Only pgoutput is supported (Debezium's default, decoderbufs, is refused: set pgoutput)."),
    key("slot.name", T::String, D::Value("debezium"), V::Custom(slot_name))
        .doc("The name of the Postgres logical decoding slot created for streaming changes from a plugin."),
    key("publication.name", T::String, D::Value("dbz_publication"), V::NonEmpty)
        .doc("The name of the Postgres 10+ publication used for streaming changes from a plugin."),
    key("publication.autocreate.mode", T::String, D::Value("all_tables"), V::In(&["all_tables", "disabled", "filtered"]))
        .doc("Applies only when streaming changes using pgoutput. all_tables: create a publication for all tables; disabled: the publication must exist; filtered: a publication for the captured tables."),
    key("schema.include.list", T::String, D::Null, V::Custom(regex_list))
        .doc("The schemas for which events should be captured (regular expressions)."),
    key("schema.exclude.list", T::String, D::Null, V::Custom(regex_list))
        .doc("The schemas for which events must not be captured (regular expressions)."),
    key("table.include.list", T::String, D::Null, V::Custom(regex_list))
        .doc("The tables for which changes are to be captured (regular expressions matching schema.table)."),
    key("table.exclude.list", T::String, D::Null, V::Custom(regex_list))
        .doc("A comma-separated list of regular expressions that match the fully-qualified names of tables to be excluded from monitoring."),
    key("column.include.list", T::String, D::Null, V::Custom(regex_list))
        .doc("Regular expressions matching fully-qualified names of columns (schema.table.column) to include in change events."),
    key("column.exclude.list", T::String, D::Null, V::Custom(regex_list))
        .doc("Regular expressions matching fully-qualified names of columns (schema.table.column) to exclude from change events."),
    key("snapshot.mode", T::String, D::Value("initial"), V::In(&["initial", "never", "no_data", "initial_only", "when_needed", "always"]))
        .doc("The criteria for running a snapshot upon startup of the connector: initial, never/no_data, initial_only, when_needed, always."),
    key("snapshot.fetch.size", T::Int, D::Value("10240"), V::AtLeast(1))
        .doc("The maximum number of records read from the database per snapshot chunk (keyset pagination on the primary key)."),
    key("tombstones.on.delete", T::Boolean, D::Value("true"), V::None)
        .doc("Whether delete operations should be represented by a delete event and a subsequent tombstone event (true) or only by a delete event (false)."),
    key("skipped.operations", T::String, D::Value("t"), V::Custom(skipped_operations))
        .doc("The comma-separated list of operations to skip during streaming: c (insert/create), u (update), d (delete), t (truncate), none."),
    key("heartbeat.interval.ms", T::Int, D::Value("0"), V::AtLeast(0))
        .doc("Length of an interval in milli-seconds in in which the connector periodically sends heartbeat messages to a heartbeat topic. 0 disables heartbeats."),
    key("heartbeat.action.query", T::String, D::Null, V::None)
        .doc("The query executed with every heartbeat, so that an idle database's replication slot still advances."),
    key("topic.heartbeat.prefix", T::String, D::Value("__debezium-heartbeat"), V::NonEmpty)
        .doc("The prefix that is used to name heartbeat topics."),
    key("binary.handling.mode", T::String, D::Value("bytes"), V::In(&["bytes", "base64", "base64-url-safe", "hex"]))
        .doc("How binary (bytea) columns are represented: bytes, base64, base64-url-safe or hex."),
    key("decimal.handling.mode", T::String, D::Value("precise"), V::In(&["precise", "double", "string"]))
        .doc("How DECIMAL and NUMERIC columns are represented: precise (Decimal), double or string."),
    key("time.precision.mode", T::String, D::Value("adaptive"), V::In(&["adaptive", "adaptive_time_microseconds", "connect"]))
        .doc("Time, date and timestamps can be represented with different kinds of precisions: adaptive, adaptive_time_microseconds, connect."),
    key("max.batch.size", T::Int, D::Value("2048"), V::AtLeast(1))
        .doc("Maximum size of each batch of source records."),
    key("poll.interval.ms", T::Long, D::Value("500"), V::AtLeast(0))
        .doc("Time to wait for new change events to appear after receiving no events, in milliseconds."),
    key("slot.drop.on.stop", T::Boolean, D::Value("false"), V::None)
        .doc("Whether or not to drop the logical replication slot when the connector finishes orderly."),
    key("slot.max.retries", T::Int, D::Value("6"), V::AtLeast(0))
        .doc("How many times to retry connecting to a replication slot when an attempt fails."),
    key("slot.retry.delay.ms", T::Long, D::Value("10000"), V::AtLeast(0))
        .doc("Time to wait between retry attempts when the connector fails to connect to a replication slot, in milliseconds."),
];

/// Keys whose Debezium semantics this connector does not implement: setting them would
/// silently change nothing, so they are refused.
pub const UNSUPPORTED_KEYS: &[&str] = &[
    "snapshot.select.statement.overrides",
    "snapshot.custom.class",
    "message.key.columns",
    "signal.data.collection",
    "incremental.snapshot.chunk.size",
    "slot.stream.params",
    "replica.identity.autoset.values",
    "column.mask.hash.v2.hex",
    "column.propagate.source.type",
    "datatype.propagate.source.type",
    "hstore.handling.mode",
    "database.initial.statements",
    "publish.via.partition.root",
    "snapshot.include.collection.list",
];

/// Keys refused only with a value other than Debezium's default.
const UNSUPPORTED_VALUES: &[(&str, &str)] = &[
    ("provide.transaction.metadata", "false"),
    ("include.unknown.datatypes", "false"),
    ("snapshot.locking.mode", "none"),
    ("interval.handling.mode", "numeric"),
];

/// `snapshot.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMode {
    Initial,
    NoData,
    InitialOnly,
    WhenNeeded,
    Always,
}

/// `publication.autocreate.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicationMode {
    AllTables,
    Disabled,
    Filtered,
}

/// The parsed configuration.
#[derive(Clone, Debug)]
pub struct PgConfig {
    pub hostname: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub topic_prefix: String,
    pub slot_name: String,
    pub publication_name: String,
    pub publication_mode: PublicationMode,
    pub schemas: NameFilter,
    pub tables: NameFilter,
    pub columns: NameFilter,
    pub snapshot_mode: SnapshotMode,
    pub snapshot_fetch_size: usize,
    pub tombstones_on_delete: bool,
    pub skip_creates: bool,
    pub skip_updates: bool,
    pub skip_deletes: bool,
    pub skip_truncates: bool,
    pub heartbeat_interval_ms: u64,
    pub heartbeat_action_query: Option<String>,
    pub heartbeat_topic_prefix: String,
    pub modes: Modes,
    pub max_batch_size: usize,
    pub poll_interval_ms: u64,
    pub slot_drop_on_stop: bool,
    pub slot_max_retries: u32,
    pub slot_retry_delay_ms: u64,
}

/// Errors of keys this connector refuses, as (key, message).
pub fn unsupported(props: &Props) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for k in UNSUPPORTED_KEYS {
        if props.contains_key(*k) {
            out.push((
                k.to_string(),
                format!("{k} is not supported by this PostgreSQL connector"),
            ));
        }
    }
    for (k, default) in UNSUPPORTED_VALUES {
        if let Some(v) = props.get(*k) {
            if !v.trim().eq_ignore_ascii_case(default) {
                out.push((
                    k.to_string(),
                    format!(
                        "{k}={v} is not supported by this PostgreSQL connector (only {default})"
                    ),
                ));
            }
        }
    }
    out
}

impl PgConfig {
    pub fn parse(props: &Props) -> Result<PgConfig, ConnectError> {
        if let Some((_, m)) = unsupported(props).into_iter().next() {
            return Err(ConnectError::Config(m));
        }
        let c = parse_config(KEYS, props).map_err(|e| ConnectError::Config(e.to_string()))?;
        let s = |k: &str| c.string(k).unwrap_or_default();
        let n = |k: &str| c.num(k).unwrap_or(0).max(0);
        let skipped: Vec<String> = s("skipped.operations")
            .split(',')
            .map(|o| o.trim().to_string())
            .collect();
        let skip = |op: &str| skipped.iter().any(|o| o == op);
        Ok(PgConfig {
            hostname: s("database.hostname"),
            port: u16::try_from(n("database.port")).unwrap_or(5432),
            user: s("database.user"),
            password: c.password("database.password"),
            dbname: s("database.dbname"),
            topic_prefix: s("topic.prefix"),
            slot_name: s("slot.name"),
            publication_name: s("publication.name"),
            publication_mode: match s("publication.autocreate.mode").as_str() {
                "disabled" => PublicationMode::Disabled,
                "filtered" => PublicationMode::Filtered,
                _ => PublicationMode::AllTables,
            },
            schemas: name_filter(&c, "schema")?,
            tables: name_filter(&c, "table")?,
            columns: name_filter(&c, "column")?,
            snapshot_mode: match s("snapshot.mode").as_str() {
                "never" | "no_data" => SnapshotMode::NoData,
                "initial_only" => SnapshotMode::InitialOnly,
                "when_needed" => SnapshotMode::WhenNeeded,
                "always" => SnapshotMode::Always,
                _ => SnapshotMode::Initial,
            },
            snapshot_fetch_size: n("snapshot.fetch.size").max(1) as usize,
            tombstones_on_delete: c.boolean("tombstones.on.delete"),
            skip_creates: skip("c"),
            skip_updates: skip("u"),
            skip_deletes: skip("d"),
            skip_truncates: skip("t"),
            heartbeat_interval_ms: n("heartbeat.interval.ms") as u64,
            heartbeat_action_query: c
                .string("heartbeat.action.query")
                .filter(|q| !q.trim().is_empty()),
            heartbeat_topic_prefix: s("topic.heartbeat.prefix"),
            modes: Modes {
                decimal: match s("decimal.handling.mode").as_str() {
                    "double" => DecimalMode::Double,
                    "string" => DecimalMode::String,
                    _ => DecimalMode::Precise,
                },
                time: match s("time.precision.mode").as_str() {
                    "connect" => TimeMode::Connect,
                    "adaptive_time_microseconds" => TimeMode::AdaptiveTimeMicroseconds,
                    _ => TimeMode::Adaptive,
                },
                binary: match s("binary.handling.mode").as_str() {
                    "base64" => BinaryMode::Base64,
                    "base64-url-safe" => BinaryMode::Base64UrlSafe,
                    "hex" => BinaryMode::Hex,
                    _ => BinaryMode::Bytes,
                },
            },
            max_batch_size: n("max.batch.size").max(1) as usize,
            poll_interval_ms: n("poll.interval.ms") as u64,
            slot_drop_on_stop: c.boolean("slot.drop.on.stop"),
            slot_max_retries: n("slot.max.retries") as u32,
            slot_retry_delay_ms: n("slot.retry.delay.ms") as u64,
        })
    }

    /// Whether a table (`schema`, `table`) is captured. System schemas never are.
    pub fn captures_table(&self, schema: &str, table: &str) -> bool {
        !matches!(schema, "pg_catalog" | "information_schema" | "pg_toast")
            && self.schemas.matches(schema)
            && self.tables.matches(&format!("{schema}.{table}"))
    }

    /// Whether a column (`schema.table.column`) is captured.
    pub fn captures_column(&self, schema: &str, table: &str, column: &str) -> bool {
        self.columns.matches(&format!("{schema}.{table}.{column}"))
    }

    /// A tokio-postgres configuration for the database.
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.hostname)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("moldau-connect-postgres")
            .connect_timeout(std::time::Duration::from_secs(5));
        if let Some(p) = &self.password {
            c.password(p);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(extra: &[(&str, &str)]) -> Props {
        let mut p: Props = [
            ("database.hostname", "localhost"),
            ("database.user", "postgres"),
            ("database.dbname", "db"),
            ("topic.prefix", "srv"),
            ("plugin.name", "pgoutput"),
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
        let c = PgConfig::parse(&props(&[])).unwrap();
        assert_eq!(c.port, 5432);
        assert_eq!(c.slot_name, "debezium");
        assert_eq!(c.publication_name, "dbz_publication");
        assert_eq!(c.snapshot_mode, SnapshotMode::Initial);
        assert!(c.tombstones_on_delete && c.skip_truncates && !c.skip_deletes);
        assert_eq!((c.max_batch_size, c.poll_interval_ms), (2048, 500));
    }

    #[test]
    fn decoderbufs_and_unsupported_keys_are_refused() {
        let mut p = props(&[]);
        p.remove("plugin.name");
        let e = PgConfig::parse(&p).unwrap_err().to_string();
        assert!(e.contains("decoderbufs is not supported"), "{e}");
        let e = PgConfig::parse(&props(&[("message.key.columns", "x")])).unwrap_err();
        assert!(e.to_string().contains("message.key.columns"));
        assert!(PgConfig::parse(&props(&[("provide.transaction.metadata", "false")])).is_ok());
        let e = PgConfig::parse(&props(&[("slot.name", "Bad-Name")])).unwrap_err();
        assert!(e.to_string().contains("slot.name"), "{e}");
    }

    #[test]
    fn filters_full_match_schema_dot_table() {
        let c = PgConfig::parse(&props(&[
            ("table.include.list", "public\\.a.*,inv\\.b"),
            ("column.exclude.list", "public\\.a1\\.secret"),
        ]))
        .unwrap();
        assert!(c.captures_table("public", "a1"));
        assert!(!c.captures_table("public", "b"));
        assert!(c.captures_table("inv", "b"));
        assert!(!c.captures_table("inv", "bb"), "full match");
        assert!(!c.captures_table("pg_catalog", "a"));
        assert!(!c.captures_column("public", "a1", "secret"));
        assert!(c.captures_column("public", "a1", "name"));
    }
}
