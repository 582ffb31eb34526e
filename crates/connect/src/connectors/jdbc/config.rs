//! The JDBC sink's options (Confluent's names, types and defaults) and its connection URL.

use chrono::FixedOffset;

use crate::config::{key, parse_config, ConfigType, DefaultValue, Key, Props, Validator};
use crate::connector::ConnectError;

pub const CONNECTION_URL: &str = "connection.url";
pub const CONNECTION_USER: &str = "connection.user";
pub const CONNECTION_PASSWORD: &str = "connection.password";
pub const CONNECTION_ATTEMPTS: &str = "connection.attempts";
pub const CONNECTION_BACKOFF_MS: &str = "connection.backoff.ms";
pub const INSERT_MODE: &str = "insert.mode";
pub const BATCH_SIZE: &str = "batch.size";
pub const DELETE_ENABLED: &str = "delete.enabled";
pub const TABLE_NAME_FORMAT: &str = "table.name.format";
pub const PK_MODE: &str = "pk.mode";
pub const PK_FIELDS: &str = "pk.fields";
pub const FIELDS_WHITELIST: &str = "fields.whitelist";
/// The newer name of `fields.whitelist` (used when the old one is empty).
pub const FIELDS_INCLUDE_LIST: &str = "fields.include.list";
pub const AUTO_CREATE: &str = "auto.create";
pub const AUTO_EVOLVE: &str = "auto.evolve";
pub const QUOTE_SQL_IDENTIFIERS: &str = "quote.sql.identifiers";
pub const MAX_RETRIES: &str = "max.retries";
pub const RETRY_BACKOFF_MS: &str = "retry.backoff.ms";
pub const DB_TIMEZONE: &str = "db.timezone";
pub const DIALECT_NAME: &str = "dialect.name";

const CONNECTION: &str = "Connection";
const WRITES: &str = "Writes";
const DATA_MAPPING: &str = "Data Mapping";
const DDL: &str = "DDL Support";
const RETRIES: &str = "Retries";

fn check_url(url: &str) -> Result<(), String> {
    ConnectionUrl::parse(url).map(|_| ())
}

fn check_timezone(tz: &str) -> Result<(), String> {
    parse_timezone(tz).map(|_| ())
}

fn check_dialect(name: &str) -> Result<(), String> {
    if name.is_empty() || Dialect::from_name(name).is_some() {
        Ok(())
    } else {
        Err(
            "Supported dialects: PostgreSqlDatabaseDialect, MySqlDatabaseDialect, \
             SqliteDatabaseDialect"
                .into(),
        )
    }
}

/// The connector's keys, as Confluent's `JdbcSinkConfig`.
pub const KEYS: &[Key] = &[
    key(CONNECTION_URL, ConfigType::String, DefaultValue::Required, Validator::Custom(check_url))
        .doc(
            "JDBC connection URL: jdbc:postgresql://host:port/db, jdbc:mysql://host:port/db, \
             jdbc:mariadb://host:port/db or jdbc:sqlite:/path (user and password may be given \
             as ?user=...&password=...).",
        )
        .meta("HIGH", CONNECTION, 1, "LONG", "JDBC URL"),
    key(CONNECTION_USER, ConfigType::String, DefaultValue::Null, Validator::None)
        .doc("JDBC connection user.")
        .meta("HIGH", CONNECTION, 2, "MEDIUM", "JDBC User"),
    key(CONNECTION_PASSWORD, ConfigType::Password, DefaultValue::Null, Validator::None)
        .doc("JDBC connection password.")
        .meta("HIGH", CONNECTION, 3, "MEDIUM", "JDBC Password"),
    key(CONNECTION_ATTEMPTS, ConfigType::Int, DefaultValue::Value("3"), Validator::AtLeast(1))
        .doc("Maximum number of attempts to retrieve a valid JDBC connection.")
        .meta("LOW", CONNECTION, 4, "SHORT", "JDBC connection attempts"),
    key(CONNECTION_BACKOFF_MS, ConfigType::Long, DefaultValue::Value("10000"), Validator::None)
        .doc("Backoff time in milliseconds between connection attempts.")
        .meta("LOW", CONNECTION, 5, "SHORT", "JDBC connection backoff in milliseconds"),
    key(
        INSERT_MODE,
        ConfigType::String,
        DefaultValue::Value("insert"),
        Validator::InCaseInsensitive(&["insert", "upsert", "update"]),
    )
    .doc(
        "The insertion mode to use: insert (standard INSERT), upsert (INSERT ... ON CONFLICT / \
         ON DUPLICATE KEY UPDATE), update (UPDATE ... WHERE key).",
    )
    .meta("HIGH", WRITES, 1, "MEDIUM", "Insert Mode"),
    key(BATCH_SIZE, ConfigType::Int, DefaultValue::Value("3000"), Validator::AtLeast(0))
        .doc("Specifies how many records to attempt to batch together for insertion into the destination table, when possible.")
        .meta("MEDIUM", WRITES, 2, "SHORT", "Batch Size"),
    key(DELETE_ENABLED, ConfigType::Boolean, DefaultValue::Value("false"), Validator::None)
        .doc("Whether to treat null record values as deletes. Requires pk.mode to be record_key.")
        .meta("MEDIUM", WRITES, 3, "SHORT", "Enable deletes"),
    key(TABLE_NAME_FORMAT, ConfigType::String, DefaultValue::Value("${topic}"), Validator::None)
        .doc("A format string for the destination table name, which may contain '${topic}' as a placeholder for the originating topic name.")
        .meta("MEDIUM", DATA_MAPPING, 1, "LONG", "Table Name Format"),
    key(
        PK_MODE,
        ConfigType::String,
        DefaultValue::Value("none"),
        Validator::InCaseInsensitive(&["none", "kafka", "record_key", "record_value"]),
    )
    .doc("The primary key mode: none, kafka (__connect_topic, __connect_partition, __connect_offset), record_key, record_value.")
    .meta("HIGH", DATA_MAPPING, 2, "MEDIUM", "Primary Key Mode"),
    key(PK_FIELDS, ConfigType::List, DefaultValue::Value(""), Validator::None)
        .doc("List of comma-separated primary key field names; its meaning depends on pk.mode.")
        .meta("MEDIUM", DATA_MAPPING, 3, "LONG", "Primary Key Fields"),
    key(FIELDS_WHITELIST, ConfigType::List, DefaultValue::Value(""), Validator::None)
        .doc("List of comma-separated record value field names. If empty, all fields from the record value are utilized.")
        .meta("MEDIUM", DATA_MAPPING, 4, "LONG", "Fields Whitelist"),
    key(FIELDS_INCLUDE_LIST, ConfigType::List, DefaultValue::Value(""), Validator::None)
        .doc("The newer name of fields.whitelist (used when fields.whitelist is empty).")
        .meta("MEDIUM", DATA_MAPPING, 5, "LONG", "Fields Include List"),
    key(DB_TIMEZONE, ConfigType::String, DefaultValue::Value("UTC"), Validator::Custom(check_timezone))
        .doc("Name of the timezone used for TIMESTAMP columns: UTC or a fixed offset such as +02:00.")
        .meta("MEDIUM", DATA_MAPPING, 6, "MEDIUM", "DB Time Zone"),
    key(AUTO_CREATE, ConfigType::Boolean, DefaultValue::Value("false"), Validator::None)
        .doc("Whether to automatically create the destination table based on record schema if it is found to be missing by issuing CREATE.")
        .meta("MEDIUM", DDL, 1, "SHORT", "Auto-Create"),
    key(AUTO_EVOLVE, ConfigType::Boolean, DefaultValue::Value("false"), Validator::None)
        .doc("Whether to automatically add columns in the table schema when found to be missing relative to the record schema by issuing ALTER.")
        .meta("MEDIUM", DDL, 2, "SHORT", "Auto-Evolve"),
    key(
        QUOTE_SQL_IDENTIFIERS,
        ConfigType::String,
        DefaultValue::Value("always"),
        Validator::InCaseInsensitive(&["always", "never"]),
    )
    .doc("When to quote table names, column names, and other identifiers in SQL statements.")
    .meta("MEDIUM", DDL, 3, "SHORT", "Quote Identifiers"),
    key(DIALECT_NAME, ConfigType::String, DefaultValue::Value(""), Validator::Custom(check_dialect))
        .doc("The name of the database dialect; empty: chosen from the JDBC URL.")
        .meta("LOW", CONNECTION, 6, "LONG", "Database Dialect"),
    key(MAX_RETRIES, ConfigType::Int, DefaultValue::Value("10"), Validator::AtLeast(0))
        .doc("The maximum number of times to retry on errors before failing the task.")
        .meta("MEDIUM", RETRIES, 1, "SHORT", "Maximum Retries"),
    key(RETRY_BACKOFF_MS, ConfigType::Int, DefaultValue::Value("3000"), Validator::AtLeast(0))
        .doc("The time in milliseconds to wait following an error before a retry attempt is made.")
        .meta("MEDIUM", RETRIES, 2, "SHORT", "Retry Backoff (millis)"),
];

/// The database behind a URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    /// Confluent's `dialect.name` values.
    pub fn from_name(name: &str) -> Option<Dialect> {
        match name {
            "PostgreSqlDatabaseDialect" => Some(Dialect::Postgres),
            "MySqlDatabaseDialect" => Some(Dialect::MySql),
            "SqliteDatabaseDialect" => Some(Dialect::Sqlite),
            _ => None,
        }
    }
}

/// A parsed `connection.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionUrl {
    pub dialect: Dialect,
    pub host: String,
    pub port: u16,
    pub database: Option<String>,
    /// SQLite's file (or `:memory:`).
    pub path: String,
    pub user: Option<String>,
    pub password: Option<String>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ConnectionUrl {
    /// Parses the URL forms the JDBC drivers accept (the subset this sink speaks).
    pub fn parse(url: &str) -> Result<ConnectionUrl, String> {
        let rest = url
            .strip_prefix("jdbc:")
            .ok_or_else(|| format!("not a JDBC URL (expected jdbc:...): {url}"))?;
        let (scheme, rest) = rest
            .split_once(':')
            .ok_or_else(|| format!("no database type in JDBC URL {url}"))?;
        let (dialect, default_port) = match scheme {
            "postgresql" => (Dialect::Postgres, 5432),
            "mysql" | "mariadb" => (Dialect::MySql, 3306),
            "sqlite" => (Dialect::Sqlite, 0),
            other => {
                return Err(format!(
                    "unsupported database type '{other}' (supported: postgresql, mysql, mariadb, sqlite)"
                ))
            }
        };
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        let mut parsed = ConnectionUrl {
            dialect,
            host: String::new(),
            port: default_port,
            database: None,
            path: String::new(),
            user: None,
            password: None,
        };
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "user" => parsed.user = Some(percent_decode(v)),
                "password" => parsed.password = Some(percent_decode(v)),
                // Other driver properties (sslmode, useSSL, ...) are not used here.
                _ => {}
            }
        }
        if dialect == Dialect::Sqlite {
            if main.is_empty() {
                return Err(format!("no database file in JDBC URL {url}"));
            }
            parsed.path = main.to_string();
            return Ok(parsed);
        }
        let authority_and_path = main
            .strip_prefix("//")
            .ok_or_else(|| format!("expected //host:port/database in JDBC URL {url}"))?;
        let (authority, database) = match authority_and_path.split_once('/') {
            Some((a, d)) => (a, Some(d)),
            None => (authority_and_path, None),
        };
        // user:password@host is accepted by both drivers' URL forms.
        let host_port = match authority.rsplit_once('@') {
            Some((credentials, host)) => {
                let (u, p) = credentials.split_once(':').unwrap_or((credentials, ""));
                parsed.user.get_or_insert_with(|| percent_decode(u));
                if !p.is_empty() {
                    parsed.password.get_or_insert_with(|| percent_decode(p));
                }
                host
            }
            None => authority,
        };
        // Several hosts (failover) are not supported: the first one is used.
        let host_port = host_port.split(',').next().unwrap_or_default();
        let (host, port) = match host_port.strip_prefix('[') {
            Some(v6) => {
                let (h, p) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("bad IPv6 host in JDBC URL {url}"))?;
                (h.to_string(), p.strip_prefix(':'))
            }
            None => match host_port.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (host_port.to_string(), None),
            },
        };
        if host.is_empty() {
            return Err(format!("no host in JDBC URL {url}"));
        }
        parsed.host = host;
        if let Some(p) = port.filter(|p| !p.is_empty()) {
            parsed.port = p
                .parse()
                .map_err(|_| format!("bad port '{p}' in JDBC URL {url}"))?;
        }
        parsed.database = database.filter(|d| !d.is_empty()).map(percent_decode);
        Ok(parsed)
    }
}

/// `db.timezone`: UTC or a fixed offset (`+02:00`, `UTC-05:30`, `GMT+1`).
pub fn parse_timezone(tz: &str) -> Result<FixedOffset, String> {
    let unsupported = || {
        format!(
            "Invalid time zone '{tz}': this sink supports UTC and fixed offsets such as +02:00 \
             (named regions need a time zone database)"
        )
    };
    let t = tz.trim();
    let offset = ["UTC", "GMT", "Z", "Etc/UTC", "Etc/GMT"]
        .iter()
        .find_map(|p| t.strip_prefix(p))
        .unwrap_or(t);
    if offset.is_empty() {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let (sign, digits) = match offset.as_bytes().first() {
        Some(b'+') => (1, &offset[1..]),
        Some(b'-') => (-1, &offset[1..]),
        _ => return Err(unsupported()),
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let (h, m): (i32, i32) = match (h.parse(), m.parse()) {
        (Ok(h), Ok(m)) if (0..=18).contains(&h) && (0..60).contains(&m) => (h, m),
        _ => return Err(unsupported()),
    };
    FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(unsupported)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertMode {
    Insert,
    Upsert,
    Update,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkMode {
    None,
    Kafka,
    RecordKey,
    RecordValue,
}

/// The parsed options a task runs with.
#[derive(Clone, Debug)]
pub struct JdbcSinkConfig {
    pub url: ConnectionUrl,
    pub connection_attempts: u32,
    pub connection_backoff_ms: u64,
    pub insert_mode: InsertMode,
    pub batch_size: usize,
    pub delete_enabled: bool,
    pub table_name_format: String,
    pub pk_mode: PkMode,
    pub pk_fields: Vec<String>,
    pub fields_whitelist: Vec<String>,
    pub auto_create: bool,
    pub auto_evolve: bool,
    pub quote_identifiers: bool,
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
    pub db_timezone: FixedOffset,
}

impl JdbcSinkConfig {
    pub fn parse(props: &Props) -> Result<JdbcSinkConfig, ConnectError> {
        let c = parse_config(KEYS, props).map_err(|e| ConnectError::Config(e.to_string()))?;
        let config_err = ConnectError::Config;
        let mut url = ConnectionUrl::parse(&c.string(CONNECTION_URL).unwrap_or_default())
            .map_err(config_err)?;
        if let Some(d) = c
            .string(DIALECT_NAME)
            .as_deref()
            .and_then(Dialect::from_name)
        {
            if d != url.dialect {
                return Err(ConnectError::Config(format!(
                    "dialect.name does not match the database of connection.url {}",
                    c.string(CONNECTION_URL).unwrap_or_default()
                )));
            }
        }
        // The options win over the URL's user and password, as with the JDBC drivers'
        // Properties.
        if let Some(u) = c.string(CONNECTION_USER) {
            url.user = Some(u);
        }
        if let Some(p) = c.password(CONNECTION_PASSWORD) {
            url.password = Some(p);
        }
        let insert_mode = match c
            .string(INSERT_MODE)
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "upsert" => InsertMode::Upsert,
            "update" => InsertMode::Update,
            _ => InsertMode::Insert,
        };
        let pk_mode = match c
            .string(PK_MODE)
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "kafka" => PkMode::Kafka,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            _ => PkMode::None,
        };
        let delete_enabled = c.boolean(DELETE_ENABLED);
        if let Some((_, message)) =
            cross_check(delete_enabled, pk_mode, insert_mode, &c.list(PK_FIELDS)).first()
        {
            return Err(ConnectError::Config(message.clone()));
        }
        let mut fields_whitelist = c.list(FIELDS_WHITELIST);
        if fields_whitelist.is_empty() {
            fields_whitelist = c.list(FIELDS_INCLUDE_LIST);
        }
        let db_timezone =
            parse_timezone(&c.string(DB_TIMEZONE).unwrap_or_default()).map_err(config_err)?;
        Ok(JdbcSinkConfig {
            url,
            connection_attempts: c.num(CONNECTION_ATTEMPTS).unwrap_or(3).max(1) as u32,
            connection_backoff_ms: c.num(CONNECTION_BACKOFF_MS).unwrap_or(10000).max(0) as u64,
            insert_mode,
            batch_size: c.num(BATCH_SIZE).unwrap_or(3000).max(1) as usize,
            delete_enabled,
            table_name_format: c
                .string(TABLE_NAME_FORMAT)
                .unwrap_or_else(|| "${topic}".into()),
            pk_mode,
            pk_fields: c.list(PK_FIELDS),
            fields_whitelist,
            auto_create: c.boolean(AUTO_CREATE),
            auto_evolve: c.boolean(AUTO_EVOLVE),
            quote_identifiers: !c
                .string(QUOTE_SQL_IDENTIFIERS)
                .is_some_and(|q| q.eq_ignore_ascii_case("never")),
            max_retries: c.num(MAX_RETRIES).unwrap_or(10).max(0) as u32,
            retry_backoff_ms: c.num(RETRY_BACKOFF_MS).unwrap_or(3000).max(0) as u64,
            db_timezone,
        })
    }
}

/// The checks between keys (key, message), as Confluent's connector validation.
pub fn cross_check(
    delete_enabled: bool,
    pk_mode: PkMode,
    insert_mode: InsertMode,
    pk_fields: &[String],
) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    if delete_enabled && pk_mode != PkMode::RecordKey {
        let message = "Deletes are only supported for pk.mode record_key".to_string();
        errors.push((DELETE_ENABLED.to_string(), message.clone()));
        errors.push((PK_MODE.to_string(), message));
    }
    if pk_mode == PkMode::Kafka && !pk_fields.is_empty() && pk_fields.len() != 3 {
        errors.push((
            PK_FIELDS.to_string(),
            "PK mode for table is KAFKA so there should either be no field names defined for \
             defaults __connect_topic, __connect_partition and __connect_offset to be used, or \
             exactly three"
                .to_string(),
        ));
    }
    if pk_mode == PkMode::None && insert_mode != InsertMode::Insert {
        errors.push((
            PK_MODE.to_string(),
            format!(
                "insert.mode {} requires key fields: set pk.mode to kafka, record_key or record_value",
                if insert_mode == InsertMode::Upsert { "upsert" } else { "update" }
            ),
        ));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_each_driver_parse() {
        let u = ConnectionUrl::parse(
            "jdbc:postgresql://db.example:6543/shop?user=a%40b&password=p%26w",
        )
        .unwrap();
        assert_eq!(u.dialect, Dialect::Postgres);
        assert_eq!((u.host.as_str(), u.port), ("db.example", 6543));
        assert_eq!(u.database.as_deref(), Some("shop"));
        assert_eq!(u.user.as_deref(), Some("a@b"));
        assert_eq!(u.password.as_deref(), Some("p&w"));
        let u = ConnectionUrl::parse("jdbc:mariadb://127.0.0.1/x").unwrap();
        assert_eq!((u.dialect, u.port), (Dialect::MySql, 3306));
        let u = ConnectionUrl::parse("jdbc:mysql://root:pw@[::1]:3307/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 3307));
        assert_eq!(u.password.as_deref(), Some("pw"));
        let u = ConnectionUrl::parse("jdbc:sqlite:/tmp/a.db").unwrap();
        assert_eq!((u.dialect, u.path.as_str()), (Dialect::Sqlite, "/tmp/a.db"));
        assert!(ConnectionUrl::parse("postgresql://x/y").is_err());
        assert!(ConnectionUrl::parse("jdbc:oracle:thin:@x").is_err());
        assert!(ConnectionUrl::parse("jdbc:postgresql://h:notaport/db").is_err());
        assert!(ConnectionUrl::parse("jdbc:postgresql://h:5432/db?x=%").is_ok());
    }

    #[test]
    fn timezones_are_utc_or_fixed_offsets() {
        assert_eq!(parse_timezone("UTC").unwrap().local_minus_utc(), 0);
        assert_eq!(parse_timezone("+02:00").unwrap().local_minus_utc(), 7200);
        assert_eq!(
            parse_timezone("UTC-05:30").unwrap().local_minus_utc(),
            -19800
        );
        assert_eq!(parse_timezone("GMT+1").unwrap().local_minus_utc(), 3600);
        assert!(parse_timezone("Europe/Prague").is_err());
        assert!(parse_timezone("+99").is_err());
    }

    #[test]
    fn options_get_confluents_defaults_and_checks() {
        let mut props = Props::new();
        props.insert(CONNECTION_URL.into(), "jdbc:sqlite:/tmp/x.db".into());
        let c = JdbcSinkConfig::parse(&props).unwrap();
        assert_eq!(c.insert_mode, InsertMode::Insert);
        assert_eq!(c.pk_mode, PkMode::None);
        assert_eq!(c.batch_size, 3000);
        assert_eq!((c.max_retries, c.retry_backoff_ms), (10, 3000));
        assert_eq!((c.connection_attempts, c.connection_backoff_ms), (3, 10000));
        assert_eq!(c.table_name_format, "${topic}");
        assert!(c.quote_identifiers && !c.auto_create && !c.auto_evolve && !c.delete_enabled);
        props.insert(DELETE_ENABLED.into(), "true".into());
        let err = JdbcSinkConfig::parse(&props).unwrap_err();
        assert!(err.to_string().contains("record_key"), "{err}");
        props.insert(PK_MODE.into(), "record_key".into());
        JdbcSinkConfig::parse(&props).unwrap();
        props.insert(INSERT_MODE.into(), "merge".into());
        assert!(matches!(
            JdbcSinkConfig::parse(&props),
            Err(ConnectError::Config(_))
        ));
    }
}
