//! Kafka Connect's configuration, parsed and validated as Kafka 4.x does it.
//!
//! * [`WorkerConfig::parse`]: a worker's properties in standalone or distributed mode
//!   (Kafka's `StandaloneConfig` / `DistributedConfig`), with Kafka's defaults, the converter
//!   and client (`producer.`, `consumer.`, `admin.`) sub-configurations extracted, and the
//!   keys the worker does not know listed for a warning (they are kept: Kafka passes them on).
//! * [`validate_connector_config`]: a connector's configuration checked as Kafka's
//!   `AbstractHerder.validateConnectorConfig` checks the keys common to all connectors,
//!   answering Kafka's `ConfigInfos` ([`ConfigInfos::to_json`] is the body of
//!   `PUT /connector-plugins/{plugin}/config/validate`); [`ConnectorConfig::parse`] is the
//!   same check as a plain `Result` for the runtime.
//!
//! Errors carry Kafka's `ConfigException` messages, naming the key.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value as Json};

use crate::convert::{
    converter_for_class, header_converter_for_class, ConvertError, CONVERTER_CLASSES,
    SIMPLE_HEADER_CONVERTER,
};
use crate::transforms::{TransformError, TransformationChain};

/// A configuration: key to value.
pub type Props = BTreeMap<String, String>;

/// Kafka's `ConfigException`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required key without a value.
    #[error("Missing required configuration \"{0}\" which has no default value.")]
    Missing(String),
    /// `new ConfigException(name, value, message)`.
    #[error("Invalid value {value} for configuration {key}: {message}")]
    Invalid {
        key: String,
        value: String,
        message: String,
    },
    /// `new ConfigException(message)`.
    #[error("{0}")]
    Message(String),
}

impl ConfigError {
    /// Kafka's `new ConfigException(name, value, message)`.
    pub fn invalid(key: &str, value: impl std::fmt::Display, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// A small ConfigDef: types, defaults, validators.

/// Kafka's `ConfigDef.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    List,
    Class,
    /// A secret: validated as a string, shown as `[hidden]`.
    Password,
    Double,
}

impl ConfigType {
    /// The type's name as Kafka prints it (`INT`, `LIST`...).
    pub fn name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
            ConfigType::Double => "DOUBLE",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Parsed {
    Bool(bool),
    Str(String),
    Num(i64),
    List(Vec<String>),
    Password(String),
    Double(f64),
}

impl Parsed {
    /// Kafka's `ConfigDef.convertToString`.
    fn text(&self) -> String {
        match self {
            Parsed::Bool(b) => b.to_string(),
            Parsed::Str(s) => s.clone(),
            Parsed::Num(n) => n.to_string(),
            Parsed::List(l) => l.join(","),
            Parsed::Password(_) => "[hidden]".to_string(),
            Parsed::Double(d) => format!("{d:?}"),
        }
    }
}

/// A key's default (Kafka's `ConfigDef.NO_DEFAULT_VALUE`, `null`, or a value).
#[derive(Clone, Copy, Debug)]
pub enum DefaultValue {
    Required,
    Null,
    Value(&'static str),
}

/// A key's validator (Kafka's `ConfigDef.Validator`s the runtime and its connectors use).
#[derive(Clone, Copy, Debug)]
pub enum Validator {
    None,
    AtLeast(i64),
    Between(i64, i64),
    In(&'static [&'static str]),
    InCaseInsensitive(&'static [&'static str]),
    NonEmptyNoControl,
    NonEmpty,
    Partitions,
    ReplicationFactor,
    ConnectProtocol,
    UniqueAliases,
    Listeners,
    Regex,
    /// A key/value converter class (checked when parsing, as Kafka loads the class).
    Converter,
    /// A header converter class.
    HeaderConverter,
    /// A connector's own check of a present string value: the error's reason.
    Custom(fn(&str) -> Result<(), String>),
}

/// One key of a `ConfigDef`: the runtime's keys and each connector's own.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    name: &'static str,
    documentation: &'static str,
    ty: ConfigType,
    default: DefaultValue,
    validator: Validator,
    importance: &'static str,
    group: Option<&'static str>,
    order: i32,
    width: &'static str,
    display: &'static str,
}

/// A key with low importance and no group (set them with [`Key::meta`]).
pub const fn key(
    name: &'static str,
    ty: ConfigType,
    default: DefaultValue,
    validator: Validator,
) -> Key {
    Key {
        name,
        documentation: "",
        ty,
        default,
        validator,
        importance: "LOW",
        group: None,
        order: -1,
        width: "NONE",
        display: name,
    }
}

impl Key {
    /// The key's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// With documentation, as `GET .../config/validate` shows it.
    pub const fn doc(mut self, documentation: &'static str) -> Key {
        self.documentation = documentation;
        self
    }

    /// With importance (`HIGH`, `MEDIUM`, `LOW`) only.
    pub const fn importance(mut self, importance: &'static str) -> Key {
        self.importance = importance;
        self
    }

    /// With importance (`HIGH`, `MEDIUM`, `LOW`), group, order in it, width and display name.
    pub const fn meta(
        mut self,
        importance: &'static str,
        group: &'static str,
        order: i32,
        width: &'static str,
        display: &'static str,
    ) -> Key {
        self.importance = importance;
        self.group = Some(group);
        self.order = order;
        self.width = width;
        self.display = display;
        self
    }
}

fn java_is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// Kafka's `ConfigDef.parseType` for a string value.
fn parse_type(key: &Key, raw: &str) -> Result<Parsed, ConfigError> {
    let name = key.name;
    let trimmed = raw.trim();
    let nan = || ConfigError::invalid(name, raw, format!("Not a number of type {}", key.ty.name()));
    Ok(match key.ty {
        ConfigType::Boolean => {
            if trimmed.eq_ignore_ascii_case("true") {
                Parsed::Bool(true)
            } else if trimmed.eq_ignore_ascii_case("false") {
                Parsed::Bool(false)
            } else {
                return Err(ConfigError::invalid(
                    name,
                    raw,
                    "Expected value to be either true or false",
                ));
            }
        }
        ConfigType::String => Parsed::Str(trimmed.to_string()),
        ConfigType::Int => Parsed::Num(trimmed.parse::<i32>().map_err(|_| nan())? as i64),
        ConfigType::Short => Parsed::Num(trimmed.parse::<i16>().map_err(|_| nan())? as i64),
        ConfigType::Long => Parsed::Num(trimmed.parse::<i64>().map_err(|_| nan())?),
        ConfigType::List => Parsed::List(parse_list(trimmed)),
        ConfigType::Password => Parsed::Password(raw.to_string()),
        ConfigType::Double => Parsed::Double(trimmed.parse::<f64>().map_err(|_| nan())?),
        ConfigType::Class => {
            let known = match key.validator {
                Validator::Converter => CONVERTER_CLASSES.contains(&trimmed),
                Validator::HeaderConverter => {
                    trimmed == SIMPLE_HEADER_CONVERTER || CONVERTER_CLASSES.contains(&trimmed)
                }
                _ => true,
            };
            if !known {
                return Err(ConfigError::invalid(
                    name,
                    raw,
                    format!("Class {raw} could not be found."),
                ));
            }
            Parsed::Str(trimmed.to_string())
        }
    })
}

/// A `LIST` value: comma separated, whitespace around the commas dropped.
fn parse_list(trimmed: &str) -> Vec<String> {
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed.split(',').map(|s| s.trim().to_string()).collect()
}

fn java_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// The key's validator, as Kafka's `ensureValid`.
fn ensure_valid(key: &Key, value: Option<&Parsed>) -> Result<(), ConfigError> {
    let name = key.name;
    let num = |v: Option<&Parsed>| match v {
        Some(Parsed::Num(n)) => Some(*n),
        _ => None,
    };
    match key.validator {
        Validator::AtLeast(min) => match num(value) {
            None => Err(ConfigError::invalid(name, "null", "Value must be non-null")),
            Some(n) if n < min => Err(ConfigError::invalid(
                name,
                n,
                format!("Value must be at least {min}"),
            )),
            Some(_) => Ok(()),
        },
        Validator::Between(min, max) => match num(value) {
            None => Err(ConfigError::invalid(name, "null", "Value must be non-null")),
            Some(n) if n < min => Err(ConfigError::invalid(
                name,
                n,
                format!("Value must be at least {min}"),
            )),
            Some(n) if n > max => Err(ConfigError::invalid(
                name,
                n,
                format!("Value must be no more than {max}"),
            )),
            Some(_) => Ok(()),
        },
        Validator::Partitions => match num(value) {
            Some(n) if n != -1 && n < 1 => Err(ConfigError::invalid(
                name,
                n,
                "Number of partitions must be positive, or -1 to use the broker's default",
            )),
            _ => Ok(()),
        },
        Validator::ReplicationFactor => match num(value) {
            Some(n) if n != -1 && n < 1 => Err(ConfigError::invalid(
                name,
                n,
                "Replication factor must be positive and not larger than the number of brokers \
                 in the Kafka cluster, or -1 to use the broker's default",
            )),
            _ => Ok(()),
        },
        Validator::In(options) => match value {
            Some(Parsed::Str(s)) if !options.contains(&s.as_str()) => Err(ConfigError::invalid(
                name,
                s,
                format!("String must be one of: {}", options.join(", ")),
            )),
            _ => Ok(()),
        },
        Validator::InCaseInsensitive(options) => match value {
            Some(Parsed::Str(s)) if !options.iter().any(|o| o.eq_ignore_ascii_case(s)) => {
                Err(ConfigError::invalid(
                    name,
                    s,
                    format!(
                        "String must be one of (case insensitive): {}",
                        options
                            .iter()
                            .map(|o| o.to_ascii_uppercase())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
            _ => Ok(()),
        },
        Validator::NonEmptyNoControl => match value {
            Some(Parsed::Str(s)) if s.is_empty() => {
                Err(ConfigError::invalid(name, s, "String may not be empty"))
            }
            Some(Parsed::Str(s)) => {
                let bad: Vec<String> = s
                    .chars()
                    .filter(|c| c.is_control())
                    .map(|c| (c as u32).to_string())
                    .collect();
                if bad.is_empty() {
                    Ok(())
                } else {
                    Err(ConfigError::invalid(
                        name,
                        s,
                        format!(
                            "String may not contain control sequences but had the following \
                             ASCII chars: {}",
                            bad.join(", ")
                        ),
                    ))
                }
            }
            _ => Ok(()),
        },
        Validator::NonEmpty => match value {
            Some(Parsed::Str(s)) if s.is_empty() => {
                Err(ConfigError::invalid(name, s, "String must be non-empty"))
            }
            _ => Ok(()),
        },
        Validator::ConnectProtocol => match value {
            Some(Parsed::Str(s)) if ConnectProtocol::parse(s).is_none() => Err(
                ConfigError::invalid(name, s, "Invalid Connect protocol compatibility"),
            ),
            _ => Ok(()),
        },
        Validator::UniqueAliases => match value {
            Some(Parsed::List(l)) if l.iter().collect::<BTreeSet<_>>().len() < l.len() => Err(
                ConfigError::invalid(name, java_list(l), "Duplicate alias provided."),
            ),
            _ => Ok(()),
        },
        Validator::Listeners => match value {
            Some(Parsed::List(l)) if l.is_empty() => Err(ConfigError::Message(
                "Invalid value for listeners, at least one URL is expected, ex: \
                 http://localhost:8080,https://localhost:8443."
                    .into(),
            )),
            Some(Parsed::List(l)) if l.iter().any(|u| java_is_blank(u)) => Err(
                ConfigError::Message("Empty URL found when parsing listeners list.".into()),
            ),
            _ => Ok(()),
        },
        Validator::Regex => match value {
            Some(Parsed::Str(s)) => match regex::Regex::new(s) {
                Ok(_) => Ok(()),
                Err(e) => Err(ConfigError::invalid(name, s, format!("Invalid regex: {e}"))),
            },
            _ => Ok(()),
        },
        Validator::Custom(check) => match value {
            Some(Parsed::Str(s)) => {
                check(s).map_err(|reason| ConfigError::invalid(name, s, reason))
            }
            _ => Ok(()),
        },
        Validator::None | Validator::Converter | Validator::HeaderConverter => Ok(()),
    }
}

/// Kafka's `AbstractConfig` parse: every key in order, the first error thrown.
fn parse_all(keys: &[Key], props: &Props) -> Result<BTreeMap<&'static str, Parsed>, ConfigError> {
    let mut out = BTreeMap::new();
    for key in keys {
        let value = match props.get(key.name) {
            Some(raw) => Some(parse_type(key, raw)?),
            None => match key.default {
                DefaultValue::Required => return Err(ConfigError::Missing(key.name.to_string())),
                DefaultValue::Null => None,
                DefaultValue::Value(d) => Some(parse_type(key, d)?),
            },
        };
        ensure_valid(key, value.as_ref())?;
        if let Some(v) = value {
            out.insert(key.name, v);
        }
    }
    Ok(out)
}

/// One key's result of Kafka's `ConfigDef.validateAll`.
struct Validated {
    value: Option<Parsed>,
    errors: Vec<String>,
}

fn validate_key(key: &Key, props: &Props) -> Validated {
    let mut errors = Vec::new();
    let value = match props.get(key.name) {
        Some(raw) => match parse_type(key, raw) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        },
        None => match key.default {
            DefaultValue::Required => {
                errors.push(ConfigError::Missing(key.name.to_string()).to_string());
                None
            }
            DefaultValue::Null => None,
            DefaultValue::Value(d) => parse_type(key, d).ok(),
        },
    };
    if let Err(e) = ensure_valid(key, value.as_ref()) {
        errors.push(e.to_string());
    }
    Validated { value, errors }
}

/// A connector's own configuration, parsed by its keys (Kafka's `AbstractConfig`).
#[derive(Clone, Debug)]
pub struct ParsedConfig(BTreeMap<&'static str, Parsed>);

/// Parses `props` by `keys` as Kafka's `AbstractConfig` constructor: the first error.
pub fn parse_config(keys: &[Key], props: &Props) -> Result<ParsedConfig, ConfigError> {
    parse_all(keys, props).map(ParsedConfig)
}

impl ParsedConfig {
    /// A `STRING` or `CLASS` value (`None` when null).
    pub fn string(&self, k: &str) -> Option<String> {
        Parsed2(&self.0).string(k)
    }
    /// A `PASSWORD` value.
    pub fn password(&self, k: &str) -> Option<String> {
        match self.0.get(k) {
            Some(Parsed::Password(s)) => Some(s.clone()),
            _ => None,
        }
    }
    /// An `INT`, `SHORT` or `LONG` value (`None` when null).
    pub fn num(&self, k: &str) -> Option<i64> {
        Parsed2(&self.0).opt_num(k)
    }
    /// A `DOUBLE` value.
    pub fn double(&self, k: &str) -> Option<f64> {
        match self.0.get(k) {
            Some(Parsed::Double(d)) => Some(*d),
            _ => None,
        }
    }
    /// A `BOOLEAN` value (`false` when null).
    pub fn boolean(&self, k: &str) -> bool {
        Parsed2(&self.0).boolean(k)
    }
    /// A `LIST` value (empty when null).
    pub fn list(&self, k: &str) -> Vec<String> {
        Parsed2(&self.0).list(k)
    }
}

struct Parsed2<'a>(&'a BTreeMap<&'static str, Parsed>);

impl Parsed2<'_> {
    fn string(&self, k: &str) -> Option<String> {
        match self.0.get(k) {
            Some(Parsed::Str(s)) => Some(s.clone()),
            _ => None,
        }
    }
    fn num(&self, k: &str) -> i64 {
        match self.0.get(k) {
            Some(Parsed::Num(n)) => *n,
            _ => 0,
        }
    }
    fn opt_num(&self, k: &str) -> Option<i64> {
        match self.0.get(k) {
            Some(Parsed::Num(n)) => Some(*n),
            _ => None,
        }
    }
    fn boolean(&self, k: &str) -> bool {
        matches!(self.0.get(k), Some(Parsed::Bool(true)))
    }
    fn list(&self, k: &str) -> Vec<String> {
        match self.0.get(k) {
            Some(Parsed::List(l)) => l.clone(),
            _ => Vec::new(),
        }
    }
}

/// The keys under `prefix`, prefix stripped (Kafka's `originalsWithPrefix`).
pub fn with_prefix(props: &Props, prefix: &str) -> Props {
    props
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v.clone())))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Worker configuration.

/// How the worker runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerMode {
    Standalone,
    Distributed,
}

/// `connect.protocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectProtocol {
    Eager,
    Compatible,
    Sessioned,
}

impl ConnectProtocol {
    /// By enum name, any case (Kafka's `ConnectProtocolCompatibility.compatibility`).
    pub fn parse(s: &str) -> Option<ConnectProtocol> {
        match s.to_ascii_lowercase().as_str() {
            "eager" => Some(ConnectProtocol::Eager),
            "compatible" => Some(ConnectProtocol::Compatible),
            "sessioned" => Some(ConnectProtocol::Sessioned),
            _ => None,
        }
    }
}

/// `exactly.once.source.support`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExactlyOnceSourceSupport {
    Disabled,
    Preparing,
    Enabled,
}

/// `connector.client.config.override.policy`: what `*.override.*` keys a connector may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverridePolicy {
    /// Every client key (Kafka's default).
    All,
    /// None.
    None,
    /// Only `sasl.jaas.config`, `sasl.mechanism` and `security.protocol`.
    Principal,
}

impl OverridePolicy {
    /// By alias (`All`) or class name, as Kafka's plugin lookup finds them.
    pub fn parse(s: &str) -> Option<OverridePolicy> {
        let s = s.trim();
        let alias = s
            .strip_prefix("org.apache.kafka.connect.connector.policy.")
            .and_then(|c| c.strip_suffix("ConnectorClientConfigOverridePolicy"))
            .or_else(|| s.strip_suffix("ConnectorClientConfigOverridePolicy"))
            .unwrap_or(s);
        match alias {
            "All" => Some(OverridePolicy::All),
            "None" => Some(OverridePolicy::None),
            "Principal" => Some(OverridePolicy::Principal),
            _ => None,
        }
    }

    /// Kafka's policy name (`All`, `None`, `Principal`).
    pub fn name(self) -> &'static str {
        match self {
            OverridePolicy::All => "All",
            OverridePolicy::None => "None",
            OverridePolicy::Principal => "Principal",
        }
    }

    fn allows(self, client_key: &str) -> bool {
        match self {
            OverridePolicy::All => true,
            OverridePolicy::None => false,
            OverridePolicy::Principal => matches!(
                client_key,
                "sasl.jaas.config" | "sasl.mechanism" | "security.protocol"
            ),
        }
    }
}

/// A storage topic of a distributed worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageTopic {
    pub topic: String,
    /// `-1`: the broker's default.
    pub replication_factor: i16,
    /// `-1`: the broker's default; always 1 for the config topic.
    pub partitions: i32,
    /// Other `<prefix>.*` topic settings (Kafka's `topicSettings`; `cleanup.policy` dropped).
    pub settings: Props,
}

/// The distributed-mode settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributedSettings {
    pub group_id: String,
    pub config_storage: StorageTopic,
    pub offset_storage: StorageTopic,
    pub status_storage: StorageTopic,
    pub connect_protocol: ConnectProtocol,
    pub scheduled_rebalance_max_delay_ms: i32,
    pub heartbeat_interval_ms: i32,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub exactly_once_source_support: ExactlyOnceSourceSupport,
}

/// A converter class and its `<key>.*` options (prefix stripped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConverterConfig {
    pub class: String,
    pub props: Props,
}

/// A worker's configuration (Kafka's `WorkerConfig` with `StandaloneConfig` /
/// `DistributedConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    pub mode: WorkerMode,
    pub bootstrap_servers: Vec<String>,
    pub key_converter: ConverterConfig,
    pub value_converter: ConverterConfig,
    pub header_converter: ConverterConfig,
    pub task_shutdown_graceful_timeout_ms: i64,
    pub offset_flush_interval_ms: i64,
    pub offset_flush_timeout_ms: i64,
    pub listeners: Vec<String>,
    pub rest_advertised_host_name: Option<String>,
    pub rest_advertised_port: Option<i32>,
    pub rest_advertised_listener: Option<String>,
    pub connector_client_config_override_policy: OverridePolicy,
    pub topic_creation_enable: bool,
    /// `producer.*`, `consumer.*`, `admin.*`, prefix stripped.
    pub producer: Props,
    pub consumer: Props,
    pub admin: Props,
    /// Standalone: `offset.storage.file.filename`.
    pub offset_storage_file_filename: Option<String>,
    /// Distributed mode's settings.
    pub distributed: Option<DistributedSettings>,
    /// Every key as given (Kafka's `originals`).
    pub originals: Props,
    /// Keys the worker does not know (kept; Kafka warns about them).
    pub unknown_keys: Vec<String>,
}

use ConfigType as T;
use DefaultValue as D;
use Validator as V;

const WORKER_KEYS: &[Key] = &[
    key(
        "bootstrap.servers",
        T::List,
        D::Value("localhost:9092"),
        V::None,
    ),
    key(
        "client.dns.lookup",
        T::String,
        D::Value("use_all_dns_ips"),
        V::In(&[
            "use_all_dns_ips",
            "resolve_canonical_bootstrap_servers_only",
        ]),
    ),
    key("key.converter", T::Class, D::Required, V::Converter),
    key("value.converter", T::Class, D::Required, V::Converter),
    key(
        "task.shutdown.graceful.timeout.ms",
        T::Long,
        D::Value("5000"),
        V::None,
    ),
    key(
        "offset.flush.interval.ms",
        T::Long,
        D::Value("60000"),
        V::None,
    ),
    key(
        "offset.flush.timeout.ms",
        T::Long,
        D::Value("5000"),
        V::None,
    ),
    key("plugin.path", T::List, D::Null, V::None),
    key(
        "plugin.discovery",
        T::String,
        D::Value("hybrid_warn"),
        V::InCaseInsensitive(&["only_scan", "hybrid_warn", "hybrid_fail", "service_load"]),
    ),
    key(
        "metrics.sample.window.ms",
        T::Long,
        D::Value("30000"),
        V::AtLeast(0),
    ),
    key("metrics.num.samples", T::Int, D::Value("2"), V::AtLeast(1)),
    key(
        "metrics.recording.level",
        T::String,
        D::Value("INFO"),
        V::In(&["INFO", "DEBUG"]),
    ),
    key("metric.reporters", T::List, D::Null, V::None),
    key(
        "header.converter",
        T::Class,
        D::Value(SIMPLE_HEADER_CONVERTER),
        V::HeaderConverter,
    ),
    key("config.providers", T::List, D::Value(""), V::None),
    key(
        "connector.client.config.override.policy",
        T::String,
        D::Value("All"),
        V::None,
    ),
    key(
        "topic.creation.enable",
        T::Boolean,
        D::Value("true"),
        V::None,
    ),
    key(
        "topic.tracking.enable",
        T::Boolean,
        D::Value("true"),
        V::None,
    ),
    key(
        "topic.tracking.allow.reset",
        T::Boolean,
        D::Value("true"),
        V::None,
    ),
    key("listeners", T::List, D::Value("http://:8083"), V::Listeners),
    key("rest.advertised.host.name", T::String, D::Null, V::None),
    key("rest.advertised.port", T::Int, D::Null, V::None),
    key("rest.advertised.listener", T::String, D::Null, V::None),
    key(
        "access.control.allow.origin",
        T::String,
        D::Value(""),
        V::None,
    ),
    key(
        "access.control.allow.methods",
        T::String,
        D::Value(""),
        V::None,
    ),
    key("admin.listeners", T::List, D::Null, V::None),
    key("rest.extension.classes", T::List, D::Value(""), V::None),
    key(
        "response.http.headers.config",
        T::String,
        D::Value(""),
        V::None,
    ),
];

const STANDALONE_KEYS: &[Key] = &[key(
    "offset.storage.file.filename",
    T::String,
    D::Required,
    V::None,
)];

const DISTRIBUTED_KEYS: &[Key] = &[
    key("group.id", T::String, D::Required, V::None),
    key("session.timeout.ms", T::Int, D::Value("10000"), V::None),
    key("rebalance.timeout.ms", T::Int, D::Value("60000"), V::None),
    key("heartbeat.interval.ms", T::Int, D::Value("3000"), V::None),
    key(
        "exactly.once.source.support",
        T::String,
        D::Value("disabled"),
        V::InCaseInsensitive(&["disabled", "preparing", "enabled"]),
    ),
    key("worker.sync.timeout.ms", T::Int, D::Value("3000"), V::None),
    key(
        "worker.unsync.backoff.ms",
        T::Int,
        D::Value("300000"),
        V::None,
    ),
    key("offset.storage.topic", T::String, D::Required, V::None),
    key(
        "offset.storage.partitions",
        T::Int,
        D::Value("25"),
        V::Partitions,
    ),
    key(
        "offset.storage.replication.factor",
        T::Short,
        D::Value("3"),
        V::ReplicationFactor,
    ),
    key("config.storage.topic", T::String, D::Required, V::None),
    key(
        "config.storage.replication.factor",
        T::Short,
        D::Value("3"),
        V::ReplicationFactor,
    ),
    key("status.storage.topic", T::String, D::Required, V::None),
    key(
        "status.storage.partitions",
        T::Int,
        D::Value("5"),
        V::Partitions,
    ),
    key(
        "status.storage.replication.factor",
        T::Short,
        D::Value("3"),
        V::ReplicationFactor,
    ),
    key(
        "connect.protocol",
        T::String,
        D::Value("sessioned"),
        V::ConnectProtocol,
    ),
    key(
        "scheduled.rebalance.max.delay.ms",
        T::Int,
        D::Value("300000"),
        V::Between(0, i32::MAX as i64),
    ),
    key(
        "inter.worker.key.ttl.ms",
        T::Int,
        D::Value("3600000"),
        V::Between(0, i32::MAX as i64),
    ),
];

/// Keys Kafka's worker defines that are not modelled here (client security, SSL, metadata,
/// inter-worker keys): known, so not warned about.
const OTHER_WORKER_KEYS: &[&str] = &[
    "client.id",
    "metadata.max.age.ms",
    "send.buffer.bytes",
    "receive.buffer.bytes",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "socket.connection.setup.timeout.ms",
    "socket.connection.setup.timeout.max.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "request.timeout.ms",
    "connections.max.idle.ms",
    "security.protocol",
    "inter.worker.key.generation.algorithm",
    "inter.worker.key.size",
    "inter.worker.signature.algorithm",
    "inter.worker.verification.algorithms",
    "metadata.recovery.strategy",
    "ssl.client.auth",
];

/// Prefixes whose keys the worker hands on to something (never warned about).
const WORKER_PREFIXES: &[&str] = &[
    "producer.",
    "consumer.",
    "admin.",
    "key.converter.",
    "value.converter.",
    "header.converter.",
    "config.storage.",
    "offset.storage.",
    "status.storage.",
    "config.providers.",
    "listeners.https.",
    "ssl.",
    "sasl.",
    "metrics.context.",
];

fn storage_topic(
    props: &Props,
    p: &Parsed2,
    prefix: &str,
    partitions: Option<&str>,
) -> StorageTopic {
    let mut settings = with_prefix(props, &format!("{prefix}."));
    for k in [
        "topic",
        "replication.factor",
        "partitions",
        "cleanup.policy",
    ] {
        settings.remove(k);
    }
    StorageTopic {
        topic: p.string(&format!("{prefix}.topic")).unwrap_or_default(),
        replication_factor: p.num(&format!("{prefix}.replication.factor")) as i16,
        partitions: partitions.map_or(1, |k| p.num(k) as i32),
        settings,
    }
}

impl WorkerConfig {
    /// Parses a worker's properties as Kafka's `StandaloneConfig` / `DistributedConfig`
    /// constructor does: the first bad or missing key is the error.
    pub fn parse(props: &Props, mode: WorkerMode) -> Result<WorkerConfig, ConfigError> {
        let mut keys: Vec<Key> = WORKER_KEYS.to_vec();
        keys.extend_from_slice(match mode {
            WorkerMode::Standalone => STANDALONE_KEYS,
            WorkerMode::Distributed => DISTRIBUTED_KEYS,
        });
        let parsed = parse_all(&keys, props)?;
        let p = Parsed2(&parsed);
        let policy_raw = p
            .string("connector.client.config.override.policy")
            .unwrap_or_default();
        let policy = OverridePolicy::parse(&policy_raw).ok_or_else(|| {
            ConfigError::invalid(
                "connector.client.config.override.policy",
                &policy_raw,
                format!("Class {policy_raw} could not be found."),
            )
        })?;
        let converter = |k: &str| ConverterConfig {
            class: p.string(k).unwrap_or_default(),
            props: with_prefix(props, &format!("{k}.")),
        };
        let distributed = (mode == WorkerMode::Distributed).then(|| DistributedSettings {
            group_id: p.string("group.id").unwrap_or_default(),
            config_storage: storage_topic(props, &p, "config.storage", None),
            offset_storage: storage_topic(
                props,
                &p,
                "offset.storage",
                Some("offset.storage.partitions"),
            ),
            status_storage: storage_topic(
                props,
                &p,
                "status.storage",
                Some("status.storage.partitions"),
            ),
            connect_protocol: ConnectProtocol::parse(
                &p.string("connect.protocol").unwrap_or_default(),
            )
            .unwrap_or(ConnectProtocol::Sessioned),
            scheduled_rebalance_max_delay_ms: p.num("scheduled.rebalance.max.delay.ms") as i32,
            heartbeat_interval_ms: p.num("heartbeat.interval.ms") as i32,
            session_timeout_ms: p.num("session.timeout.ms") as i32,
            rebalance_timeout_ms: p.num("rebalance.timeout.ms") as i32,
            exactly_once_source_support: match p
                .string("exactly.once.source.support")
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str()
            {
                "enabled" => ExactlyOnceSourceSupport::Enabled,
                "preparing" => ExactlyOnceSourceSupport::Preparing,
                _ => ExactlyOnceSourceSupport::Disabled,
            },
        });
        let unknown_keys = props
            .keys()
            .filter(|k| {
                !keys.iter().any(|key| key.name == k.as_str())
                    && !OTHER_WORKER_KEYS.contains(&k.as_str())
                    && !WORKER_PREFIXES.iter().any(|pre| k.starts_with(pre))
            })
            .cloned()
            .collect();
        Ok(WorkerConfig {
            mode,
            bootstrap_servers: p.list("bootstrap.servers"),
            key_converter: converter("key.converter"),
            value_converter: converter("value.converter"),
            header_converter: converter("header.converter"),
            task_shutdown_graceful_timeout_ms: p.num("task.shutdown.graceful.timeout.ms"),
            offset_flush_interval_ms: p.num("offset.flush.interval.ms"),
            offset_flush_timeout_ms: p.num("offset.flush.timeout.ms"),
            listeners: p.list("listeners"),
            rest_advertised_host_name: p.string("rest.advertised.host.name"),
            rest_advertised_port: p.opt_num("rest.advertised.port").map(|n| n as i32),
            rest_advertised_listener: p.string("rest.advertised.listener"),
            connector_client_config_override_policy: policy,
            topic_creation_enable: p.boolean("topic.creation.enable"),
            producer: with_prefix(props, "producer."),
            consumer: with_prefix(props, "consumer."),
            admin: with_prefix(props, "admin."),
            offset_storage_file_filename: p.string("offset.storage.file.filename"),
            distributed,
            originals: props.clone(),
            unknown_keys,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Kafka's ConfigInfos.

/// Kafka's `ConfigKeyInfo`: a key's definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigKeyInfo {
    pub name: String,
    pub type_name: String,
    pub required: bool,
    pub default_value: Option<String>,
    pub importance: String,
    pub documentation: String,
    pub group: Option<String>,
    pub order: i32,
    pub width: String,
    pub display_name: String,
    pub dependents: Vec<String>,
}

/// Kafka's `ConfigValueInfo`: a key's value and its errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigValueInfo {
    pub name: String,
    pub value: Option<String>,
    pub recommended_values: Vec<String>,
    pub errors: Vec<String>,
    pub visible: bool,
}

/// Kafka's `ConfigInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigInfo {
    pub definition: Option<ConfigKeyInfo>,
    pub value: Option<ConfigValueInfo>,
}

/// Kafka's `ConfigInfos`: the answer of `PUT /connector-plugins/{plugin}/config/validate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigInfos {
    pub name: String,
    pub error_count: usize,
    pub groups: Vec<String>,
    pub configs: Vec<ConfigInfo>,
}

impl ConfigInfos {
    /// Kafka's JSON.
    pub fn to_json(&self) -> Json {
        let configs: Vec<Json> = self
            .configs
            .iter()
            .map(|c| {
                json!({
                    "definition": c.definition.as_ref().map(|d| json!({
                        "name": d.name,
                        "type": d.type_name,
                        "required": d.required,
                        "default_value": d.default_value,
                        "importance": d.importance,
                        "documentation": d.documentation,
                        "group": d.group,
                        "order": d.order,
                        "width": d.width,
                        "display_name": d.display_name,
                        "dependents": d.dependents,
                    })),
                    "value": c.value.as_ref().map(|v| json!({
                        "name": v.name,
                        "value": v.value,
                        "recommended_values": v.recommended_values,
                        "errors": v.errors,
                        "visible": v.visible,
                    })),
                })
            })
            .collect();
        json!({
            "name": self.name,
            "error_count": self.error_count,
            "groups": self.groups,
            "configs": configs,
        })
    }

    /// Every error message, in order.
    pub fn errors(&self) -> Vec<String> {
        self.configs
            .iter()
            .filter_map(|c| c.value.as_ref())
            .flat_map(|v| v.errors.iter().cloned())
            .collect()
    }

    /// The errors of one key.
    pub fn errors_of(&self, name: &str) -> Vec<String> {
        self.configs
            .iter()
            .filter_map(|c| c.value.as_ref())
            .filter(|v| v.name == name)
            .flat_map(|v| v.errors.iter().cloned())
            .collect()
    }

    /// Kafka's `BadRequestException` message when creating a connector whose configuration
    /// has errors; `None` when it has none.
    pub fn error_message(&self) -> Option<String> {
        if self.error_count == 0 {
            return None;
        }
        let mut m = format!(
            "Connector configuration is invalid and contains the following {} error(s):",
            self.error_count
        );
        for e in self.errors() {
            m.push('\n');
            m.push_str(&e);
        }
        m.push_str(
            "\nYou can also find the above list of errors at the endpoint \
             `/connector-plugins/{connectorType}/config/validate`",
        );
        Some(m)
    }
}

// ---------------------------------------------------------------------------------------
// Connector configuration.

/// Source or sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorType {
    Source,
    Sink,
}

/// `errors.tolerance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToleranceType {
    None,
    All,
}

const COMMON: &str = "Common";
const ERRORS: &str = "Error Handling";

/// The version every built-in plugin reports (KIP-891's `*.plugin.version` keys).
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");

const CONNECTOR_KEYS: &[Key] = &[
    key("name", T::String, D::Required, V::NonEmptyNoControl).meta(
        "HIGH",
        COMMON,
        1,
        "MEDIUM",
        "Connector name",
    ),
    key("connector.class", T::String, D::Required, V::None).meta(
        "HIGH",
        COMMON,
        2,
        "LONG",
        "Connector class",
    ),
    key(
        "connector.plugin.version",
        T::String,
        D::Value(PLUGIN_VERSION),
        V::None,
    )
    .meta("MEDIUM", COMMON, 3, "MEDIUM", "Connector version"),
    key("tasks.max", T::Int, D::Value("1"), V::AtLeast(1)).meta(
        "HIGH",
        COMMON,
        4,
        "SHORT",
        "Tasks max",
    ),
    key("tasks.max.enforce", T::Boolean, D::Value("true"), V::None).meta(
        "LOW",
        COMMON,
        5,
        "SHORT",
        "Enforce tasks max",
    ),
    key("key.converter", T::Class, D::Null, V::Converter).meta(
        "LOW",
        COMMON,
        6,
        "SHORT",
        "Key converter class",
    ),
    key(
        "key.converter.plugin.version",
        T::String,
        D::Value(PLUGIN_VERSION),
        V::None,
    )
    .meta("LOW", COMMON, 7, "SHORT", "Key converter version"),
    key("value.converter", T::Class, D::Null, V::Converter).meta(
        "LOW",
        COMMON,
        8,
        "SHORT",
        "Value converter class",
    ),
    key(
        "value.converter.plugin.version",
        T::String,
        D::Value(PLUGIN_VERSION),
        V::None,
    )
    .meta("LOW", COMMON, 9, "SHORT", "Value converter version"),
    key("header.converter", T::Class, D::Null, V::HeaderConverter).meta(
        "LOW",
        COMMON,
        10,
        "SHORT",
        "Header converter class",
    ),
    key(
        "header.converter.plugin.version",
        T::String,
        D::Value(PLUGIN_VERSION),
        V::None,
    )
    .meta("LOW", COMMON, 11, "SHORT", "Header converter version"),
    key("transforms", T::List, D::Value(""), V::UniqueAliases).meta(
        "LOW",
        "Transforms",
        12,
        "LONG",
        "Transforms",
    ),
    key("predicates", T::List, D::Value(""), V::UniqueAliases).meta(
        "LOW",
        "Predicates",
        13,
        "LONG",
        "Predicates",
    ),
    key(
        "config.action.reload",
        T::String,
        D::Value("restart"),
        V::In(&["none", "restart"]),
    )
    .meta("LOW", COMMON, 14, "MEDIUM", "Reload Action"),
    key("errors.retry.timeout", T::Long, D::Value("0"), V::None).meta(
        "MEDIUM",
        ERRORS,
        1,
        "MEDIUM",
        "Retry Timeout for Errors",
    ),
    key(
        "errors.retry.delay.max.ms",
        T::Long,
        D::Value("60000"),
        V::None,
    )
    .meta(
        "MEDIUM",
        ERRORS,
        2,
        "MEDIUM",
        "Maximum Delay Between Retries for Errors",
    ),
    key(
        "errors.tolerance",
        T::String,
        D::Value("none"),
        V::In(&["none", "all"]),
    )
    .meta("MEDIUM", ERRORS, 3, "SHORT", "Error Tolerance"),
    key("errors.log.enable", T::Boolean, D::Value("false"), V::None).meta(
        "MEDIUM",
        ERRORS,
        4,
        "SHORT",
        "Log Errors",
    ),
    key(
        "errors.log.include.messages",
        T::Boolean,
        D::Value("false"),
        V::None,
    )
    .meta("MEDIUM", ERRORS, 5, "SHORT", "Log Error Details"),
];

const SINK_KEYS: &[Key] = &[
    key("topics", T::List, D::Value(""), V::None).meta("HIGH", COMMON, 4, "LONG", "Topics"),
    key("topics.regex", T::String, D::Value(""), V::Regex).meta(
        "HIGH",
        COMMON,
        4,
        "LONG",
        "Topics regex",
    ),
    key(
        "errors.deadletterqueue.topic.name",
        T::String,
        D::Value(""),
        V::None,
    )
    .meta(
        "MEDIUM",
        ERRORS,
        6,
        "MEDIUM",
        "Dead Letter Queue Topic Name",
    ),
    key(
        "errors.deadletterqueue.topic.replication.factor",
        T::Short,
        D::Value("3"),
        V::None,
    )
    .meta(
        "MEDIUM",
        ERRORS,
        7,
        "MEDIUM",
        "Dead Letter Queue Topic Replication Factor",
    ),
    key(
        "errors.deadletterqueue.context.headers.enable",
        T::Boolean,
        D::Value("false"),
        V::None,
    )
    .meta(
        "MEDIUM",
        ERRORS,
        8,
        "MEDIUM",
        "Enable Error Context Headers",
    ),
];

const EOS: &str = "Exactly Once Support";

const SOURCE_KEYS: &[Key] = &[
    key(
        "topic.creation.groups",
        T::List,
        D::Value(""),
        V::UniqueAliases,
    )
    .meta("LOW", "Topic Creation", 1, "LONG", "Topic Creation Groups"),
    key(
        "exactly.once.support",
        T::String,
        D::Value("requested"),
        V::InCaseInsensitive(&["requested", "required"]),
    )
    .meta("MEDIUM", EOS, 2, "SHORT", "Exactly once support"),
    key(
        "transaction.boundary",
        T::String,
        D::Value("poll"),
        V::InCaseInsensitive(&["poll", "interval", "connector"]),
    )
    .meta("MEDIUM", EOS, 3, "SHORT", "Transaction Boundary"),
    key(
        "transaction.boundary.interval.ms",
        T::Long,
        D::Null,
        V::None,
    )
    .meta("LOW", EOS, 4, "SHORT", "Transaction boundary interval"),
    key("offsets.storage.topic", T::String, D::Null, V::NonEmpty).meta(
        "LOW",
        "offsets.topic",
        1,
        "LONG",
        "Offsets topic",
    ),
];

fn connector_keys(ty: ConnectorType) -> Vec<Key> {
    let mut keys = CONNECTOR_KEYS.to_vec();
    keys.extend_from_slice(match ty {
        ConnectorType::Source => SOURCE_KEYS,
        ConnectorType::Sink => SINK_KEYS,
    });
    keys
}

fn key_info(k: &Key) -> ConfigKeyInfo {
    ConfigKeyInfo {
        name: k.name.to_string(),
        type_name: k.ty.name().to_string(),
        required: matches!(k.default, DefaultValue::Required),
        default_value: match k.default {
            DefaultValue::Value(d) => parse_type(k, d).ok().map(|p| p.text()),
            _ => None,
        },
        importance: k.importance.to_string(),
        documentation: k.documentation.to_string(),
        group: k.group.map(str::to_string),
        order: k.order,
        width: k.width.to_string(),
        display_name: k.display.to_string(),
        dependents: Vec::new(),
    }
}

/// Kafka's recommenders: the installed converters for the converter keys, this plugin
/// version for the `*.plugin.version` keys.
fn recommended_values(name: &str) -> Vec<String> {
    match name {
        "key.converter" | "value.converter" | "header.converter" => {
            let mut classes: Vec<String> =
                CONVERTER_CLASSES.iter().map(|c| c.to_string()).collect();
            if name == "header.converter" {
                classes.push(SIMPLE_HEADER_CONVERTER.to_string());
            }
            classes.sort();
            classes
        }
        n if n.ends_with(".plugin.version") => vec![PLUGIN_VERSION.to_string()],
        _ => Vec::new(),
    }
}

fn value_info(name: &str, value: Option<String>, errors: Vec<String>) -> ConfigValueInfo {
    ConfigValueInfo {
        name: name.to_string(),
        value,
        recommended_values: Vec::new(),
        errors,
        visible: true,
    }
}

/// The key a transforms error is about: the `configuration X` / `"X"` / `'X'` it names.
fn transform_error_key(message: &str) -> String {
    if let Some(rest) = message.split(" for configuration ").nth(1) {
        if let Some(k) = rest.split(':').next() {
            return k.to_string();
        }
    }
    for q in ['"', '\''] {
        let mut parts = message.split(q);
        if let (Some(_), Some(k)) = (parts.next(), parts.next()) {
            if k.starts_with("transforms.") || k.starts_with("predicates.") {
                return k.to_string();
            }
        }
    }
    "transforms".to_string()
}

fn converter_error(prefix: &str, class: &str, e: ConvertError) -> (String, String) {
    match e {
        ConvertError::Config { ref key, .. } => (format!("{prefix}.{key}"), e.to_string()),
        e => (
            prefix.to_string(),
            format!("Invalid value {class} for configuration {prefix}: {e}"),
        ),
    }
}

/// Validates a connector's configuration as Kafka's `AbstractHerder.validateConnectorConfig`
/// does for the keys common to every source or sink connector; connector-specific keys pass
/// through unchecked. `policy` is the worker's `connector.client.config.override.policy`.
pub fn validate_connector_config(
    props: &Props,
    ty: ConnectorType,
    policy: OverridePolicy,
) -> ConfigInfos {
    validate_plugin_config(props, ty, policy, &[], &[])
}

/// [`validate_connector_config`] with the connector's own keys (Kafka merges the
/// connector's `ConfigDef` after the runtime's) and the errors of the connector's own
/// `validate` (key, message), such as an unreachable database.
pub fn validate_plugin_config(
    props: &Props,
    ty: ConnectorType,
    policy: OverridePolicy,
    plugin_keys: &[Key],
    plugin_errors: &[(String, String)],
) -> ConfigInfos {
    let mut keys = connector_keys(ty);
    keys.extend(
        plugin_keys
            .iter()
            .filter(|p| !keys.iter().any(|k| k.name == p.name))
            .copied()
            .collect::<Vec<_>>(),
    );
    let mut validated: Vec<(Key, Validated)> =
        keys.iter().map(|k| (*k, validate_key(k, props))).collect();
    // Extra errors on keys, defined or not (name -> (value, errors)).
    let mut extra: BTreeMap<String, (Option<String>, Vec<String>)> = BTreeMap::new();
    let mut add = |name: &str, value: Option<&String>, message: String| {
        extra
            .entry(name.to_string())
            .or_insert_with(|| (value.cloned(), Vec::new()))
            .1
            .push(message);
    };
    for (name, message) in plugin_errors {
        add(name, props.get(name), message.clone());
    }

    if ty == ConnectorType::Sink {
        sink_checks(props, &mut add);
    }

    // Transformations and predicates.
    if let Err(TransformError::Config(m) | TransformError::Data(m)) =
        TransformationChain::from_connector_config(props)
    {
        let k = transform_error_key(&m);
        let already = validated
            .iter()
            .any(|(key, v)| key.name == k && !v.errors.is_empty());
        if !already {
            add(&k, props.get(&k), m);
        }
    }

    // Converter overrides, with their options.
    for (k, is_key) in [
        ("key.converter", Some(true)),
        ("value.converter", Some(false)),
        ("header.converter", None),
    ] {
        let Some((_, v)) = validated.iter().find(|(key, _)| key.name == k) else {
            continue;
        };
        let Some(Parsed::Str(class)) = &v.value else {
            continue;
        };
        let sub = with_prefix(props, &format!("{k}."));
        let result = match is_key {
            Some(is_key) => converter_for_class(class, &sub, is_key).map(|_| ()),
            None => header_converter_for_class(class, &sub).map(|_| ()),
        };
        if let Err(e) = result {
            let (name, message) = converter_error(k, class, e);
            add(&name, props.get(&name), message);
        }
    }

    // Client overrides, as the worker's policy allows.
    let uses_dlq = props
        .get("errors.deadletterqueue.topic.name")
        .is_some_and(|t| !java_is_blank(t));
    let uses_topic_creation = props.keys().any(|k| k.starts_with("topic.creation."));
    let clients = [
        (
            "producer.override.",
            ty == ConnectorType::Source || uses_dlq,
        ),
        ("consumer.override.", ty == ConnectorType::Sink),
        (
            "admin.override.",
            match ty {
                ConnectorType::Source => uses_topic_creation,
                ConnectorType::Sink => uses_dlq,
            },
        ),
    ];
    let mut override_infos = Vec::new();
    let mut override_errors = 0;
    for (prefix, used) in clients {
        if !used {
            continue;
        }
        for (k, v) in with_prefix(props, prefix) {
            let mut errors = Vec::new();
            if !policy.allows(&k) {
                errors.push(format!(
                    "The '{}' policy does not allow '{k}' to be overridden in the connector \
                     configuration.",
                    policy.name()
                ));
                override_errors += 1;
            }
            override_infos.push(ConfigInfo {
                definition: None,
                value: Some(value_info(&format!("{prefix}{k}"), Some(v), errors)),
            });
        }
    }

    // Assemble as Kafka's generateResult: undefined keys first, then the definitions.
    let mut configs = Vec::new();
    let mut error_count = 0;
    for (name, (value, errors)) in &extra {
        if !keys.iter().any(|k| k.name == name) {
            error_count += errors.len();
            configs.push(ConfigInfo {
                definition: None,
                value: Some(value_info(name, value.clone(), errors.clone())),
            });
        }
    }
    for (k, v) in validated.iter_mut() {
        if let Some((_, errors)) = extra.get(k.name) {
            v.errors.extend(errors.iter().cloned());
        }
        error_count += v.errors.len();
        let mut value = value_info(k.name, v.value.as_ref().map(Parsed::text), v.errors.clone());
        value.recommended_values = recommended_values(k.name);
        configs.push(ConfigInfo {
            definition: Some(key_info(k)),
            value: Some(value),
        });
    }
    configs.extend(override_infos);
    error_count += override_errors;
    let mut groups: Vec<String> = Vec::new();
    for k in &keys {
        if let Some(g) = k.group {
            if !groups.iter().any(|x| x == g) {
                groups.push(g.to_string());
            }
        }
    }
    ConfigInfos {
        name: props.get("connector.class").cloned().unwrap_or_default(),
        error_count,
        groups,
        configs,
    }
}

/// Kafka's `SinkConnectorConfig.validate`: `topics` xor `topics.regex`, and the DLQ topic not
/// among the consumed topics.
fn sink_checks(props: &Props, add: &mut impl FnMut(&str, Option<&String>, String)) {
    let topics = props.get("topics");
    let regex = props.get("topics.regex");
    let dlq = props
        .get("errors.deadletterqueue.topic.name")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let has_topics = topics.is_some_and(|t| !java_is_blank(t));
    let has_regex = regex.is_some_and(|t| !java_is_blank(t));
    if has_topics && has_regex {
        let m = "topics and topics.regex are mutually exclusive options, but both are set.";
        add("topics", topics, m.into());
        add("topics.regex", regex, m.into());
    }
    if !has_topics && !has_regex {
        let m = "Must configure one of topics or topics.regex";
        add("topics", topics, m.into());
        add("topics.regex", regex, m.into());
    }
    if !java_is_blank(&dlq) {
        if let Some(t) = topics.filter(|_| has_topics) {
            let mut list: Vec<String> = Vec::new();
            for topic in parse_list(t.trim()) {
                if !topic.is_empty() && !list.contains(&topic) {
                    list.push(topic);
                }
            }
            if list.contains(&dlq) {
                add(
                    "topics",
                    topics,
                    format!(
                        "The DLQ topic '{dlq}' may not be included in the list of topics \
                         ('topics={}') consumed by the connector",
                        java_list(&list)
                    ),
                );
            }
        }
        if let Some(r) = regex.filter(|_| has_regex) {
            if let Ok(re) = regex::Regex::new(&format!("^(?:{r})$")) {
                if re.is_match(&dlq) {
                    add(
                        "topics.regex",
                        regex,
                        format!(
                            "The DLQ topic '{dlq}' may not be matched by the regex for the \
                             topics ('topics.regex={r}') consumed by the connector"
                        ),
                    );
                }
            }
        }
    }
}

/// Sink-only settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSettings {
    pub topics: Vec<String>,
    pub topics_regex: Option<String>,
    pub dlq_topic_name: Option<String>,
    pub dlq_topic_replication_factor: i16,
    pub dlq_context_headers_enable: bool,
}

/// A connector's validated configuration (Kafka's `ConnectorConfig` and its sink and source
/// subclasses), for the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorConfig {
    pub name: String,
    pub connector_class: String,
    pub connector_type: ConnectorType,
    pub tasks_max: i32,
    pub tasks_max_enforce: bool,
    /// Overrides of the worker's converters, with their options.
    pub key_converter: Option<ConverterConfig>,
    pub value_converter: Option<ConverterConfig>,
    pub header_converter: Option<ConverterConfig>,
    pub transforms: Vec<String>,
    pub predicates: Vec<String>,
    pub errors_retry_timeout: i64,
    pub errors_retry_delay_max_ms: i64,
    pub errors_tolerance: ToleranceType,
    pub errors_log_enable: bool,
    pub errors_log_include_messages: bool,
    /// For sinks.
    pub sink: Option<SinkSettings>,
    /// `producer.override.*`, `consumer.override.*`, `admin.override.*`, prefix stripped.
    pub producer_overrides: Props,
    pub consumer_overrides: Props,
    pub admin_overrides: Props,
    /// Keys this runtime accepts but does not act on (`topic.creation.*` of sources).
    pub unsupported: Vec<String>,
    /// Every key as given: connector-specific keys are here.
    pub originals: Props,
}

impl ConnectorConfig {
    /// Validates as [`validate_connector_config`]; any error is Kafka's `BadRequest` message
    /// listing them all.
    pub fn parse(
        props: &Props,
        ty: ConnectorType,
        policy: OverridePolicy,
    ) -> Result<ConnectorConfig, ConfigError> {
        let infos = validate_connector_config(props, ty, policy);
        if let Some(m) = infos.error_message() {
            return Err(ConfigError::Message(m));
        }
        let parsed = parse_all(&connector_keys(ty), props)?;
        let p = Parsed2(&parsed);
        let converter = |k: &str| {
            p.string(k).map(|class| ConverterConfig {
                class,
                props: with_prefix(props, &format!("{k}.")),
            })
        };
        let sink = (ty == ConnectorType::Sink).then(|| SinkSettings {
            topics: p
                .list("topics")
                .into_iter()
                .filter(|t| !t.is_empty())
                .collect(),
            topics_regex: p.string("topics.regex").filter(|s| !s.is_empty()),
            dlq_topic_name: p
                .string("errors.deadletterqueue.topic.name")
                .filter(|s| !s.is_empty()),
            dlq_topic_replication_factor: p.num("errors.deadletterqueue.topic.replication.factor")
                as i16,
            dlq_context_headers_enable: p.boolean("errors.deadletterqueue.context.headers.enable"),
        });
        let unsupported = match ty {
            ConnectorType::Source => props
                .keys()
                .filter(|k| k.starts_with("topic.creation."))
                .cloned()
                .collect(),
            ConnectorType::Sink => Vec::new(),
        };
        Ok(ConnectorConfig {
            name: p.string("name").unwrap_or_default(),
            connector_class: p.string("connector.class").unwrap_or_default(),
            connector_type: ty,
            tasks_max: p.num("tasks.max") as i32,
            tasks_max_enforce: p.boolean("tasks.max.enforce"),
            key_converter: converter("key.converter"),
            value_converter: converter("value.converter"),
            header_converter: converter("header.converter"),
            transforms: p.list("transforms"),
            predicates: p.list("predicates"),
            errors_retry_timeout: p.num("errors.retry.timeout"),
            errors_retry_delay_max_ms: p.num("errors.retry.delay.max.ms"),
            errors_tolerance: if p.string("errors.tolerance").as_deref() == Some("all") {
                ToleranceType::All
            } else {
                ToleranceType::None
            },
            errors_log_enable: p.boolean("errors.log.enable"),
            errors_log_include_messages: p.boolean("errors.log.include.messages"),
            sink,
            producer_overrides: with_prefix(props, "producer.override."),
            consumer_overrides: with_prefix(props, "consumer.override."),
            admin_overrides: with_prefix(props, "admin.override."),
            unsupported,
            originals: props.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const JSON: &str = "org.apache.kafka.connect.json.JsonConverter";

    fn distributed() -> Props {
        props(&[
            ("bootstrap.servers", "kafka1:9092, kafka2:9092"),
            ("group.id", "connect-cluster"),
            ("config.storage.topic", "connect-configs"),
            ("offset.storage.topic", "connect-offsets"),
            ("status.storage.topic", "connect-status"),
            ("key.converter", JSON),
            ("value.converter", JSON),
        ])
    }

    #[test]
    fn config_worker_distributed_defaults() {
        let w = WorkerConfig::parse(&distributed(), WorkerMode::Distributed).unwrap();
        assert_eq!(w.bootstrap_servers, ["kafka1:9092", "kafka2:9092"]);
        assert_eq!(w.offset_flush_interval_ms, 60000);
        assert_eq!(w.offset_flush_timeout_ms, 5000);
        assert_eq!(w.task_shutdown_graceful_timeout_ms, 5000);
        assert_eq!(w.listeners, ["http://:8083"]);
        assert_eq!(w.header_converter.class, SIMPLE_HEADER_CONVERTER);
        assert_eq!(
            w.connector_client_config_override_policy,
            OverridePolicy::All
        );
        assert!(w.topic_creation_enable);
        assert!(w.unknown_keys.is_empty());
        let d = w.distributed.unwrap();
        assert_eq!(d.group_id, "connect-cluster");
        assert_eq!(d.offset_storage.partitions, 25);
        assert_eq!(d.status_storage.partitions, 5);
        assert_eq!(d.config_storage.partitions, 1);
        assert_eq!(d.offset_storage.replication_factor, 3);
        assert_eq!(d.connect_protocol, ConnectProtocol::Sessioned);
        assert_eq!(d.scheduled_rebalance_max_delay_ms, 300000);
        assert_eq!(d.heartbeat_interval_ms, 3000);
        assert_eq!(d.session_timeout_ms, 10000);
        assert_eq!(d.rebalance_timeout_ms, 60000);
        assert_eq!(
            d.exactly_once_source_support,
            ExactlyOnceSourceSupport::Disabled
        );
    }

    #[test]
    fn config_worker_prefixes_and_unknown_keys() {
        let mut p = distributed();
        p.extend(props(&[
            ("key.converter.schemas.enable", "false"),
            ("producer.linger.ms", "5"),
            ("consumer.max.poll.records", "100"),
            ("admin.request.timeout.ms", "1000"),
            ("offset.storage.replication.factor", "-1"),
            ("offset.storage.partitions", "-1"),
            ("config.storage.min.insync.replicas", "2"),
            ("config.storage.cleanup.policy", "delete"),
            ("connect.protocol", "EAGER"),
            ("exactly.once.source.support", "Enabled"),
            ("connector.client.config.override.policy", "None"),
            ("rest.advertised.host.name", "connect-1"),
            ("rest.advertised.port", "8084"),
            ("my.custom.key", "x"),
        ]));
        let w = WorkerConfig::parse(&p, WorkerMode::Distributed).unwrap();
        assert_eq!(w.key_converter.props, props(&[("schemas.enable", "false")]));
        assert_eq!(w.producer, props(&[("linger.ms", "5")]));
        assert_eq!(w.consumer, props(&[("max.poll.records", "100")]));
        assert_eq!(w.admin, props(&[("request.timeout.ms", "1000")]));
        assert_eq!(w.unknown_keys, ["my.custom.key"]);
        assert_eq!(w.originals.get("my.custom.key").unwrap(), "x");
        assert_eq!(
            w.connector_client_config_override_policy,
            OverridePolicy::None
        );
        assert_eq!(w.rest_advertised_host_name.as_deref(), Some("connect-1"));
        assert_eq!(w.rest_advertised_port, Some(8084));
        let d = w.distributed.unwrap();
        assert_eq!(d.offset_storage.replication_factor, -1);
        assert_eq!(d.offset_storage.partitions, -1);
        assert_eq!(
            d.config_storage.settings,
            props(&[("min.insync.replicas", "2")])
        );
        assert_eq!(d.connect_protocol, ConnectProtocol::Eager);
        assert_eq!(
            d.exactly_once_source_support,
            ExactlyOnceSourceSupport::Enabled
        );
    }

    #[test]
    fn config_worker_standalone() {
        let p = props(&[
            ("key.converter", JSON),
            (
                "value.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            ("offset.storage.file.filename", "/tmp/connect.offsets"),
            ("offset.flush.interval.ms", "10000"),
        ]);
        let w = WorkerConfig::parse(&p, WorkerMode::Standalone).unwrap();
        assert_eq!(
            w.offset_storage_file_filename.as_deref(),
            Some("/tmp/connect.offsets")
        );
        assert_eq!(w.offset_flush_interval_ms, 10000);
        assert_eq!(w.bootstrap_servers, ["localhost:9092"]);
        assert!(w.distributed.is_none());
        let mut missing = p.clone();
        missing.remove("offset.storage.file.filename");
        assert_eq!(
            WorkerConfig::parse(&missing, WorkerMode::Standalone).unwrap_err().to_string(),
            "Missing required configuration \"offset.storage.file.filename\" which has no default value."
        );
    }

    fn worker_err(extra: &[(&str, &str)], remove: &[&str]) -> String {
        let mut p = distributed();
        p.extend(props(extra));
        for k in remove {
            p.remove(*k);
        }
        WorkerConfig::parse(&p, WorkerMode::Distributed)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn config_worker_errors() {
        for k in [
            "key.converter",
            "value.converter",
            "group.id",
            "config.storage.topic",
            "offset.storage.topic",
            "status.storage.topic",
        ] {
            assert_eq!(
                worker_err(&[], &[k]),
                format!("Missing required configuration \"{k}\" which has no default value.")
            );
        }
        assert_eq!(
            worker_err(&[("offset.flush.interval.ms", "soon")], &[]),
            "Invalid value soon for configuration offset.flush.interval.ms: Not a number of type LONG"
        );
        assert_eq!(
            worker_err(&[("heartbeat.interval.ms", "99999999999")], &[]),
            "Invalid value 99999999999 for configuration heartbeat.interval.ms: Not a number of type INT"
        );
        assert_eq!(
            worker_err(&[("status.storage.replication.factor", "40000")], &[]),
            "Invalid value 40000 for configuration status.storage.replication.factor: Not a number of type SHORT"
        );
        assert_eq!(
            worker_err(&[("topic.creation.enable", "yes")], &[]),
            "Invalid value yes for configuration topic.creation.enable: Expected value to be either true or false"
        );
        assert_eq!(
            worker_err(&[("offset.storage.partitions", "0")], &[]),
            "Invalid value 0 for configuration offset.storage.partitions: Number of partitions must be positive, or -1 to use the broker's default"
        );
        assert_eq!(
            worker_err(&[("config.storage.replication.factor", "-2")], &[]),
            "Invalid value -2 for configuration config.storage.replication.factor: Replication factor must be positive and not larger than the number of brokers in the Kafka cluster, or -1 to use the broker's default"
        );
        assert_eq!(
            worker_err(&[("connect.protocol", "v2")], &[]),
            "Invalid value v2 for configuration connect.protocol: Invalid Connect protocol compatibility"
        );
        assert_eq!(
            worker_err(&[("scheduled.rebalance.max.delay.ms", "-1")], &[]),
            "Invalid value -1 for configuration scheduled.rebalance.max.delay.ms: Value must be at least 0"
        );
        assert_eq!(
            worker_err(&[("exactly.once.source.support", "maybe")], &[]),
            "Invalid value maybe for configuration exactly.once.source.support: String must be one of (case insensitive): DISABLED, PREPARING, ENABLED"
        );
        assert_eq!(
            worker_err(&[("key.converter", "com.example.Nope")], &[]),
            "Invalid value com.example.Nope for configuration key.converter: Class com.example.Nope could not be found."
        );
        assert_eq!(
            worker_err(&[("listeners", "")], &[]),
            "Invalid value for listeners, at least one URL is expected, ex: http://localhost:8080,https://localhost:8443."
        );
        assert_eq!(
            worker_err(&[("listeners", "http://:8083, ,")], &[]),
            "Empty URL found when parsing listeners list."
        );
        assert_eq!(
            worker_err(&[("connector.client.config.override.policy", "Some")], &[]),
            "Invalid value Some for configuration connector.client.config.override.policy: Class Some could not be found."
        );
        assert_eq!(
            OverridePolicy::parse("org.apache.kafka.connect.connector.policy.PrincipalConnectorClientConfigOverridePolicy"),
            Some(OverridePolicy::Principal)
        );
    }

    fn debezium() -> Props {
        props(&[
            ("name", "inventory-connector"),
            (
                "connector.class",
                "io.debezium.connector.postgresql.PostgresConnector",
            ),
            ("tasks.max", "1"),
            ("database.hostname", "postgres"),
            ("database.port", "5432"),
            ("database.user", "postgres"),
            ("database.password", "postgres"),
            ("database.dbname", "inventory"),
            ("topic.prefix", "dbserver1"),
            ("plugin.name", "pgoutput"),
            ("key.converter", JSON),
            ("key.converter.schemas.enable", "false"),
            ("value.converter", JSON),
            ("value.converter.schemas.enable", "false"),
            ("transforms", "unwrap,route"),
            (
                "transforms.unwrap.type",
                "io.debezium.transforms.ExtractNewRecordState",
            ),
            ("transforms.unwrap.drop.tombstones", "false"),
            (
                "transforms.route.type",
                "org.apache.kafka.connect.transforms.RegexRouter",
            ),
            ("transforms.route.regex", "dbserver1\\.inventory\\.(.*)"),
            ("transforms.route.replacement", "$1"),
            ("producer.override.compression.type", "lz4"),
            ("errors.tolerance", "all"),
        ])
    }

    fn jdbc_sink() -> Props {
        props(&[
            ("name", "jdbc-sink"),
            (
                "connector.class",
                "io.confluent.connect.jdbc.JdbcSinkConnector",
            ),
            ("tasks.max", "3"),
            ("topics", "orders, customers"),
            ("connection.url", "jdbc:postgresql://db:5432/warehouse"),
            ("auto.create", "true"),
            ("insert.mode", "upsert"),
            ("pk.mode", "record_key"),
            ("errors.tolerance", "all"),
            ("errors.deadletterqueue.topic.name", "dlq-jdbc"),
            ("errors.deadletterqueue.topic.replication.factor", "1"),
            ("errors.deadletterqueue.context.headers.enable", "true"),
            ("errors.log.enable", "true"),
            ("consumer.override.max.poll.records", "500"),
        ])
    }

    #[test]
    fn config_connector_debezium_source_is_valid() {
        let infos =
            validate_connector_config(&debezium(), ConnectorType::Source, OverridePolicy::All);
        assert_eq!(infos.errors(), Vec::<String>::new());
        assert_eq!(infos.error_count, 0);
        assert_eq!(
            infos.name,
            "io.debezium.connector.postgresql.PostgresConnector"
        );
        let c = ConnectorConfig::parse(&debezium(), ConnectorType::Source, OverridePolicy::All)
            .unwrap();
        assert_eq!(c.name, "inventory-connector");
        assert_eq!(c.tasks_max, 1);
        assert!(c.tasks_max_enforce);
        assert_eq!(c.transforms, ["unwrap", "route"]);
        assert_eq!(c.errors_tolerance, ToleranceType::All);
        assert_eq!(c.errors_retry_delay_max_ms, 60000);
        assert_eq!(
            c.key_converter.unwrap().props,
            props(&[("schemas.enable", "false")])
        );
        assert!(c.header_converter.is_none());
        assert_eq!(c.producer_overrides, props(&[("compression.type", "lz4")]));
        assert_eq!(c.originals.get("database.dbname").unwrap(), "inventory");
        assert!(c.sink.is_none());
        let json = infos.to_json();
        assert_eq!(json["error_count"], 0);
        assert_eq!(json["groups"][0], "Common");
        let name = json["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == "tasks.max")
            .unwrap();
        assert_eq!(name["definition"]["type"], "INT");
        assert_eq!(name["definition"]["default_value"], "1");
        assert_eq!(name["value"]["value"], "1");
        assert_eq!(name["value"]["errors"], json!([]));
        assert_eq!(name["value"]["visible"], true);
    }

    #[test]
    fn config_connector_source_topic_creation_unsupported() {
        let mut p = debezium();
        p.insert("topic.creation.default.partitions".into(), "3".into());
        p.insert("admin.override.request.timeout.ms".into(), "100".into());
        let c = ConnectorConfig::parse(&p, ConnectorType::Source, OverridePolicy::All).unwrap();
        assert_eq!(c.unsupported, ["topic.creation.default.partitions"]);
        assert_eq!(c.admin_overrides, props(&[("request.timeout.ms", "100")]));
    }

    #[test]
    fn config_connector_jdbc_sink_is_valid() {
        let c =
            ConnectorConfig::parse(&jdbc_sink(), ConnectorType::Sink, OverridePolicy::All).unwrap();
        let s = c.sink.unwrap();
        assert_eq!(s.topics, ["orders", "customers"]);
        assert_eq!(s.dlq_topic_name.as_deref(), Some("dlq-jdbc"));
        assert_eq!(s.dlq_topic_replication_factor, 1);
        assert!(s.dlq_context_headers_enable);
        assert_eq!(c.tasks_max, 3);
        assert!(c.errors_log_enable);
        assert!(!c.errors_log_include_messages);
        assert_eq!(c.consumer_overrides, props(&[("max.poll.records", "500")]));
        assert_eq!(c.originals.get("pk.mode").unwrap(), "record_key");
    }

    fn sink_errors(extra: &[(&str, &str)], remove: &[&str], key: &str) -> Vec<String> {
        let mut p = jdbc_sink();
        for k in remove {
            p.remove(*k);
        }
        p.extend(props(extra));
        validate_connector_config(&p, ConnectorType::Sink, OverridePolicy::All).errors_of(key)
    }

    #[test]
    fn config_connector_topics_and_regex() {
        let both = "topics and topics.regex are mutually exclusive options, but both are set.";
        assert_eq!(
            sink_errors(&[("topics.regex", "orders.*")], &[], "topics"),
            [both]
        );
        assert_eq!(
            sink_errors(&[("topics.regex", "orders.*")], &[], "topics.regex"),
            [both]
        );
        let none = "Must configure one of topics or topics.regex";
        assert_eq!(sink_errors(&[], &["topics"], "topics"), [none]);
        assert_eq!(
            sink_errors(&[("topics", "  ")], &[], "topics.regex"),
            [none]
        );
        assert!(
            sink_errors(&[("topics.regex", "orders.*")], &["topics"], "topics.regex").is_empty()
        );
        let bad = sink_errors(&[("topics.regex", "(")], &["topics"], "topics.regex");
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].starts_with("Invalid value ( for configuration topics.regex: Invalid regex: ")
        );
    }

    #[test]
    fn config_connector_dlq_rules() {
        assert_eq!(
            sink_errors(&[("topics", "orders,dlq-jdbc,orders")], &[], "topics"),
            ["The DLQ topic 'dlq-jdbc' may not be included in the list of topics ('topics=[orders, dlq-jdbc]') consumed by the connector"]
        );
        assert_eq!(
            sink_errors(&[("topics.regex", "dlq-.*")], &["topics"], "topics.regex"),
            ["The DLQ topic 'dlq-jdbc' may not be matched by the regex for the topics ('topics.regex=dlq-.*') consumed by the connector"]
        );
        // A partial match is no match (Java's Matcher.matches).
        assert!(sink_errors(&[("topics.regex", "dlq")], &["topics"], "topics.regex").is_empty());
        assert_eq!(
            sink_errors(&[("errors.deadletterqueue.topic.replication.factor", "x")], &[], "errors.deadletterqueue.topic.replication.factor"),
            ["Invalid value x for configuration errors.deadletterqueue.topic.replication.factor: Not a number of type SHORT"]
        );
    }

    fn source_errors(extra: &[(&str, &str)], remove: &[&str], key: &str) -> Vec<String> {
        let mut p = debezium();
        for k in remove {
            p.remove(*k);
        }
        p.extend(props(extra));
        validate_connector_config(&p, ConnectorType::Source, OverridePolicy::All).errors_of(key)
    }

    #[test]
    fn config_connector_common_errors() {
        assert_eq!(
            source_errors(&[], &["name"], "name"),
            ["Missing required configuration \"name\" which has no default value."]
        );
        assert_eq!(
            source_errors(&[("name", "")], &[], "name"),
            ["Invalid value  for configuration name: String may not be empty"]
        );
        assert_eq!(
            source_errors(&[("name", "a\tb")], &[], "name"),
            ["Invalid value a\tb for configuration name: String may not contain control sequences but had the following ASCII chars: 9"]
        );
        assert_eq!(
            source_errors(&[], &["connector.class"], "connector.class"),
            ["Missing required configuration \"connector.class\" which has no default value."]
        );
        assert_eq!(
            source_errors(&[("tasks.max", "0")], &[], "tasks.max"),
            ["Invalid value 0 for configuration tasks.max: Value must be at least 1"]
        );
        assert_eq!(
            source_errors(&[("tasks.max", "many")], &[], "tasks.max"),
            [
                "Invalid value many for configuration tasks.max: Not a number of type INT",
                "Invalid value null for configuration tasks.max: Value must be non-null",
            ]
        );
        assert_eq!(
            source_errors(&[("tasks.max.enforce", "maybe")], &[], "tasks.max.enforce"),
            ["Invalid value maybe for configuration tasks.max.enforce: Expected value to be either true or false"]
        );
        assert_eq!(
            source_errors(&[("errors.tolerance", "some")], &[], "errors.tolerance"),
            ["Invalid value some for configuration errors.tolerance: String must be one of: none, all"]
        );
        assert_eq!(
            source_errors(&[("errors.retry.timeout", "1m")], &[], "errors.retry.timeout"),
            ["Invalid value 1m for configuration errors.retry.timeout: Not a number of type LONG"]
        );
        assert_eq!(
            source_errors(&[("errors.retry.delay.max.ms", "x")], &[], "errors.retry.delay.max.ms"),
            ["Invalid value x for configuration errors.retry.delay.max.ms: Not a number of type LONG"]
        );
        assert_eq!(
            source_errors(&[("errors.log.enable", "x")], &[], "errors.log.enable"),
            ["Invalid value x for configuration errors.log.enable: Expected value to be either true or false"]
        );
        assert_eq!(
            source_errors(&[("errors.log.include.messages", "x")], &[], "errors.log.include.messages"),
            ["Invalid value x for configuration errors.log.include.messages: Expected value to be either true or false"]
        );
        assert_eq!(
            source_errors(&[("value.converter", "com.example.AvroConverter")], &[], "value.converter"),
            ["Invalid value com.example.AvroConverter for configuration value.converter: Class com.example.AvroConverter could not be found."]
        );
        assert_eq!(
            source_errors(&[("exactly.once.support", "always")], &[], "exactly.once.support"),
            ["Invalid value always for configuration exactly.once.support: String must be one of (case insensitive): REQUESTED, REQUIRED"]
        );
        // The converter's own options are checked too.
        assert_eq!(
            source_errors(
                &[("key.converter.schemas.enable", "perhaps")],
                &[],
                "key.converter.schemas.enable"
            )
            .len(),
            1
        );
    }

    #[test]
    fn config_connector_transforms_errors() {
        assert_eq!(
            source_errors(&[("transforms", "unwrap,unwrap")], &[], "transforms"),
            ["Invalid value [unwrap, unwrap] for configuration transforms: Duplicate alias provided."]
        );
        assert_eq!(
            source_errors(&[], &["transforms.route.type"], "transforms.route.type"),
            ["Missing required configuration \"transforms.route.type\" which has no default value."]
        );
        let e = source_errors(
            &[("transforms.route.type", "com.example.Nope")],
            &[],
            "transforms.route.type",
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("Invalid value com.example.Nope for configuration transforms.route.type: Class com.example.Nope could not be found"));
    }

    #[test]
    fn config_connector_overrides_policy() {
        let mut p = jdbc_sink();
        p.insert("consumer.override.sasl.mechanism".into(), "PLAIN".into());
        let infos = validate_connector_config(&p, ConnectorType::Sink, OverridePolicy::Principal);
        assert_eq!(
            infos.errors_of("consumer.override.max.poll.records"),
            ["The 'Principal' policy does not allow 'max.poll.records' to be overridden in the connector configuration."]
        );
        assert!(infos
            .errors_of("consumer.override.sasl.mechanism")
            .is_empty());
        assert_eq!(infos.error_count, 1);
        let none = validate_connector_config(&p, ConnectorType::Sink, OverridePolicy::None);
        assert_eq!(none.error_count, 2);
        let err =
            ConnectorConfig::parse(&p, ConnectorType::Sink, OverridePolicy::None).unwrap_err();
        assert!(err.to_string().starts_with(
            "Connector configuration is invalid and contains the following 2 error(s):\nThe 'None' policy does not allow"
        ));
        // A producer override of a sink without a DLQ is not validated (no producer).
        let mut q = jdbc_sink();
        q.remove("errors.deadletterqueue.topic.name");
        q.insert("producer.override.acks".into(), "1".into());
        let infos = validate_connector_config(&q, ConnectorType::Sink, OverridePolicy::None);
        assert!(infos.errors_of("producer.override.acks").is_empty());
    }
}
