//! Config values and where each comes from, as DescribeConfigs and CreateTopics report them,
//! and the checks AlterConfigs and IncrementalAlterConfigs apply before writing.
//!
//! A broker-level value is looked up in Kafka's order of layers: the dynamic config of this
//! broker (metadata `Config` records on the broker's id), the dynamic cluster default (on
//! ""), `server.properties`, and Kafka's default. A topic key falls back to its broker-level
//! synonyms (`retention.ms` -> `log.retention.ms`, `log.retention.minutes`,
//! `log.retention.hours`) when the topic has no override of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use kafka_protocol::ResponseError;
use moldau_metadata::{ConfigResource, ConfigResourceType, MetadataImage};
use moldau_storage::{
    LogConfig, TopicConfigDef, TOPIC_CONFIGS, TOPIC_CONFIGS_WITHOUT_SERVER_DEFAULT,
};

use crate::config::ServerConfig;
use crate::state::BrokerState;

/// Kafka's `ConfigResource.Type` ids on the wire.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_CLIENT_METRICS: i8 = 16;
pub const RESOURCE_GROUP: i8 = 32;

/// Kafka's DescribeConfigs config sources (named as Kafka names them).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
}

/// One place a config's value could come from, highest precedence first in a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// A config as DescribeConfigs reports it.
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    /// Where the value could come from, in Kafka's order (the first one is `source`).
    pub synonyms: Vec<Synonym>,
    /// Kafka's `DescribeConfigsResponse.ConfigType` id.
    pub config_type: i8,
    pub documentation: Option<&'static str>,
}

/// Kafka's id of a config type name ("long" -> LONG), 0 (UNKNOWN) when unknown.
pub fn config_type_id(type_name: Option<&str>) -> i8 {
    match type_name {
        Some("boolean") => 1,
        Some("string") => 2,
        Some("int") => 3,
        Some("short") => 4,
        Some("long") => 5,
        Some("double") => 6,
        Some("list") => 7,
        Some("class") => 8,
        Some("password") => 9,
        _ => 0,
    }
}

/// Broker keys that have no default in Kafka: the value comes from a lower-precedence
/// synonym (`log.retention.hours` for `log.retention.ms`, ...).
const BROKER_KEYS_WITHOUT_DEFAULT: &[&str] = &[
    "log.roll.ms",
    "log.roll.jitter.ms",
    "log.retention.ms",
    "log.retention.minutes",
    "log.flush.interval.ms",
];

/// Broker keys that are lower-precedence synonyms of a topic default, with Kafka's default.
const SECONDARY_SYNONYM_DEFAULTS: &[(&str, &str)] = &[
    ("log.roll.hours", "168"),
    ("log.roll.jitter.hours", "0"),
    ("log.retention.hours", "168"),
    ("log.flush.scheduler.interval.ms", "9223372036854775807"),
];

/// A broker key and its synonyms in Kafka's precedence order
/// (`DynamicBrokerConfig.brokerConfigSynonyms`).
pub fn broker_synonym_group(name: &str) -> Vec<&str> {
    match name {
        "log.roll.ms" | "log.roll.hours" => vec!["log.roll.ms", "log.roll.hours"],
        "log.roll.jitter.ms" | "log.roll.jitter.hours" => {
            vec!["log.roll.jitter.ms", "log.roll.jitter.hours"]
        }
        "log.flush.interval.ms" => vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => vec![
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        other => vec![other],
    }
}

/// The replication throttle rates (Kafka's `QuotaConfig.brokerQuotaConfigs`: dynamic only,
/// a long of at least 0 in bytes/s, default `Long.MAX_VALUE`), enforced by the replica
/// fetchers and the leaders' fetch answers (see `replication_quota`).
const REPLICATION_THROTTLE_RATES: &[(&str, &str)] = &[
    (
        crate::replication_quota::LEADER_RATE,
        "The upper bound (bytes/sec) on replication traffic for leaders enumerated in the \
         property leader.replication.throttled.replicas (for each topic).",
    ),
    (
        crate::replication_quota::FOLLOWER_RATE,
        "The upper bound (bytes/sec) on replication traffic for followers enumerated in the \
         property follower.replication.throttled.replicas (for each topic).",
    ),
];

fn throttle_rate(name: &str) -> Option<&'static str> {
    REPLICATION_THROTTLE_RATES
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, doc)| *doc)
}

/// Whether a broker key can be changed at runtime here: the broker-level defaults of topic
/// configs (Kafka's `DynamicLogConfig.ReconfigurableConfigs`) and the replication throttle
/// rates. Kafka can also change thread pools, listeners and the cleaner at runtime; Moldau
/// cannot yet.
pub fn is_dynamic_broker_key(name: &str) -> bool {
    throttle_rate(name).is_some() || TOPIC_CONFIGS.iter().any(|d| d.broker_synonym == name)
}

/// Whether the broker knows this key (dynamic or not); unknown keys are custom configs,
/// which Kafka stores without acting on them.
pub fn is_known_broker_key(name: &str) -> bool {
    ServerConfig::config_type(name).is_some() || default_broker_configs().contains_key(name)
}

/// Kafka's default of every broker key this broker knows (None: no default).
fn default_broker_configs() -> &'static BTreeMap<String, Option<String>> {
    static DEFAULTS: OnceLock<BTreeMap<String, Option<String>>> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        let mut defaults: BTreeMap<String, Option<String>> =
            match ServerConfig::from_properties(BTreeMap::new()) {
                Ok((config, _)) => config
                    .describe()
                    .into_iter()
                    .map(|(name, value, _)| (name, value))
                    .collect(),
                Err(_) => BTreeMap::new(),
            };
        for def in TOPIC_CONFIGS {
            defaults.insert(
                def.broker_synonym.to_string(),
                Some(def.default.to_string()),
            );
        }
        for key in BROKER_KEYS_WITHOUT_DEFAULT {
            defaults.insert(key.to_string(), None);
        }
        for (key, value) in SECONDARY_SYNONYM_DEFAULTS {
            defaults.insert(key.to_string(), Some(value.to_string()));
        }
        for (key, _) in REPLICATION_THROTTLE_RATES {
            defaults.insert(key.to_string(), Some(i64::MAX.to_string()));
        }
        defaults
    })
}

fn broker_resource(name: &str) -> ConfigResource {
    ConfigResource {
        resource_type: ConfigResourceType::Broker,
        name: name.to_string(),
    }
}

/// The layers of broker-level config values visible to this broker.
pub struct BrokerConfigs<'a> {
    dynamic_broker: Option<&'a BTreeMap<String, String>>,
    dynamic_default: Option<&'a BTreeMap<String, String>>,
    static_configs: &'a BTreeMap<String, String>,
}

impl<'a> BrokerConfigs<'a> {
    pub fn new(state: &'a BrokerState, image: &'a MetadataImage) -> Self {
        BrokerConfigs {
            dynamic_broker: image.configs(&broker_resource(&state.node_id.to_string())),
            dynamic_default: image.configs(&broker_resource("")),
            static_configs: &state.config.static_configs,
        }
    }

    /// Every source that sets one of `group`, Kafka-ordered: by source, then by the group's
    /// precedence; entries before the first one named `name` are dropped (as Kafka does, so
    /// `retention.ms` shows no synonyms when only `log.retention.hours` is set).
    fn synonyms(&self, name: &str, group: &[&str]) -> Vec<Synonym> {
        let mut all = Vec::new();
        let layers = [
            (self.dynamic_broker, ConfigSource::DynamicBrokerConfig),
            (
                self.dynamic_default,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
            (Some(self.static_configs), ConfigSource::StaticBrokerConfig),
        ];
        for (layer, source) in layers {
            let Some(layer) = layer else { continue };
            for key in group {
                if let Some(value) = layer.get(*key) {
                    all.push(Synonym {
                        name: key.to_string(),
                        value: Some(value.clone()),
                        source,
                    });
                }
            }
        }
        for key in group {
            if let Some(Some(value)) = default_broker_configs().get(*key) {
                all.push(Synonym {
                    name: key.to_string(),
                    value: Some(value.clone()),
                    source: ConfigSource::DefaultConfig,
                });
            }
        }
        match all.iter().position(|s| s.name == name) {
            Some(first) => all.split_off(first),
            None => Vec::new(),
        }
    }

    /// The broker keys of one broker resource: every known key for this broker's id, only
    /// the dynamic cluster defaults for "" (as Kafka lists them).
    pub fn describe_broker(&self, per_broker: bool) -> Vec<ConfigEntry> {
        let names: BTreeSet<&str> = if per_broker {
            default_broker_configs()
                .keys()
                .map(String::as_str)
                .chain(self.static_configs.keys().map(String::as_str))
                .chain(
                    self.dynamic_default
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.as_str()),
                )
                .chain(
                    self.dynamic_broker
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k.as_str()),
                )
                .collect()
        } else {
            self.dynamic_default
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str())
                .collect()
        };
        names
            .into_iter()
            .map(|name| self.broker_entry(name, per_broker))
            .collect()
    }

    fn broker_entry(&self, name: &str, per_broker: bool) -> ConfigEntry {
        let group = broker_synonym_group(name);
        let synonyms: Vec<Synonym> = self
            .synonyms(name, &group)
            .into_iter()
            .filter(|s| per_broker || s.source == ConfigSource::DynamicDefaultBrokerConfig)
            .collect();
        let value = if per_broker {
            self.dynamic_broker
                .and_then(|m| m.get(name).cloned())
                .or_else(|| self.dynamic_default.and_then(|m| m.get(name).cloned()))
                .or_else(|| self.static_configs.get(name).cloned())
                .or_else(|| default_broker_configs().get(name).cloned().flatten())
        } else {
            self.dynamic_default.and_then(|m| m.get(name).cloned())
        };
        let topic_def = TOPIC_CONFIGS.iter().find(|d| d.broker_synonym == name);
        ConfigEntry {
            name: name.to_string(),
            value,
            source: synonyms
                .first()
                .map_or(ConfigSource::DefaultConfig, |s| s.source),
            read_only: !is_dynamic_broker_key(name),
            synonyms,
            config_type: match throttle_rate(name) {
                Some(_) => config_type_id(Some("long")),
                None => config_type_id(ServerConfig::config_type(name)),
            },
            documentation: topic_def.map(|d| d.doc).or_else(|| throttle_rate(name)),
        }
    }

    /// A topic key's entry: the topic's override if any, then its broker-level synonyms.
    fn topic_entry(
        &self,
        def: &TopicConfigDef,
        effective: &LogConfig,
        overrides: &BTreeMap<String, String>,
    ) -> ConfigEntry {
        let override_value = overrides.get(def.name).map(|raw| {
            if def.config_type == "list" {
                normalize_list(raw)
            } else {
                effective.get(def.name).unwrap_or_else(|| raw.clone())
            }
        });
        let value = override_value.clone().or_else(|| effective.get(def.name));
        let mut synonyms = self.synonyms(
            def.broker_synonym,
            &broker_synonym_group(def.broker_synonym),
        );
        if override_value.is_some() {
            synonyms.insert(
                0,
                Synonym {
                    name: def.name.to_string(),
                    value: value.clone(),
                    source: ConfigSource::TopicConfig,
                },
            );
        }
        ConfigEntry {
            name: def.name.to_string(),
            value,
            source: synonyms
                .first()
                .map_or(ConfigSource::DefaultConfig, |s| s.source),
            read_only: false,
            synonyms,
            config_type: config_type_id(Some(def.config_type)),
            documentation: Some(def.doc),
        }
    }
}

/// A list value as Kafka renders it: items trimmed, empty items dropped, joined by ",".
fn normalize_list(raw: &str) -> String {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// Every topic-level key of a topic with these overrides: value, source and synonyms.
pub fn describe_topic(
    state: &BrokerState,
    image: &MetadataImage,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    let defaults = state.replica_manager.effective_log_defaults();
    let effective = LogConfig::with_overrides(
        &defaults,
        overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .unwrap_or_else(|_| (*defaults).clone());
    let layers = BrokerConfigs::new(state, image);
    TOPIC_CONFIGS
        .iter()
        .chain(TOPIC_CONFIGS_WITHOUT_SERVER_DEFAULT)
        .map(|def| layers.topic_entry(def, &effective, overrides))
        .collect()
}

/// Every topic-level key with its effective value, as CreateTopics reports a new topic.
pub fn effective(state: &BrokerState, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    describe_topic(state, &state.image(), overrides)
}

/// The topic defaults in force on this broker: the static `log.*` settings with the dynamic
/// cluster default and then this broker's dynamic configs applied on top. Only the first
/// synonym of each topic key can be dynamic, and it outranks the others, so each dynamic
/// value simply replaces the default. A value that no longer parses is skipped (logged).
pub fn dynamic_log_defaults(
    static_defaults: &LogConfig,
    image: &MetadataImage,
    node_id: i32,
) -> LogConfig {
    let mut config = static_defaults.clone();
    for name in [String::new(), node_id.to_string()] {
        let Some(dynamic) = image.configs(&broker_resource(&name)) else {
            continue;
        };
        for def in TOPIC_CONFIGS {
            if let Some(value) = dynamic.get(def.broker_synonym) {
                if let Err(e) = config.set(def.name, value) {
                    tracing::warn!("ignoring dynamic broker config {}: {e}", def.broker_synonym);
                }
            }
        }
    }
    config
}

/// A refused config change: the error code and Kafka's message.
pub type ConfigRefusal = (ResponseError, String);

/// Checks a topic's complete set of overrides as Kafka's `LogConfig.validate` does: every
/// key a topic config, every value valid (INVALID_CONFIG naming the key).
pub fn validate_topic_overrides(
    defaults: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<LogConfig, ConfigRefusal> {
    if let Some(unknown) = overrides
        .keys()
        .find(|k| LogConfig::definition(k).is_none())
    {
        return Err((
            ResponseError::InvalidConfig,
            format!("Unknown topic config name: {unknown}"),
        ));
    }
    LogConfig::with_overrides(
        defaults,
        overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| {
        (
            ResponseError::InvalidConfig,
            format!(
                "Invalid value {} for configuration {}: {}",
                e.value, e.key, e.reason
            ),
        )
    })
}

/// Checks dynamic broker configs as Kafka's `DynamicBrokerConfig.validate` does: keys Kafka
/// knows but cannot change at runtime are refused, values of dynamic keys must parse. Both
/// are INVALID_REQUEST, as Kafka answers (KAFKA-13609). Unknown keys are custom configs.
pub fn validate_broker_configs(configs: &BTreeMap<String, String>) -> Result<(), ConfigRefusal> {
    let non_dynamic: Vec<&str> = configs
        .keys()
        .map(String::as_str)
        .filter(|k| is_known_broker_key(k) && !is_dynamic_broker_key(k))
        .collect();
    if !non_dynamic.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "Cannot update these configs dynamically: Set({})",
                non_dynamic.join(", ")
            ),
        ));
    }
    for (key, _) in REPLICATION_THROTTLE_RATES {
        if let Some(value) = configs.get(*key) {
            let valid = value.trim().parse::<i64>().is_ok_and(|v| v >= 0);
            if !valid {
                return Err((
                    ResponseError::InvalidRequest,
                    format!(
                        "Invalid value {value} for configuration {key}: expected a long of \
                         at least 0"
                    ),
                ));
            }
        }
    }
    let mut scratch = LogConfig::default();
    for def in TOPIC_CONFIGS {
        if let Some(value) = configs.get(def.broker_synonym) {
            if let Err(e) = scratch.set(def.name, value) {
                return Err((
                    ResponseError::InvalidRequest,
                    format!(
                        "Invalid value {value} for configuration {}: {}",
                        def.broker_synonym, e.reason
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether a key is a list (APPEND and SUBTRACT apply) for a resource type.
pub fn is_list_config(resource_type: ConfigResourceType, key: &str) -> bool {
    match resource_type {
        ConfigResourceType::Topic => {
            LogConfig::definition(key).is_some_and(|d| d.config_type == "list")
        }
        ConfigResourceType::Broker => ServerConfig::config_type(key) == Some("list"),
    }
}

/// Kafka's default of a key, as APPEND and SUBTRACT start from it when the key is unset.
pub fn default_value(resource_type: ConfigResourceType, key: &str) -> Option<String> {
    match resource_type {
        ConfigResourceType::Topic => LogConfig::definition(key).map(|d| d.default.to_string()),
        ConfigResourceType::Broker => default_broker_configs().get(key).cloned().flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonym_groups_follow_kafka_precedence() {
        assert_eq!(
            broker_synonym_group("log.retention.hours"),
            [
                "log.retention.ms",
                "log.retention.minutes",
                "log.retention.hours"
            ]
        );
        assert_eq!(
            broker_synonym_group("log.segment.bytes"),
            ["log.segment.bytes"]
        );
        assert!(is_dynamic_broker_key("log.retention.ms"));
        assert!(!is_dynamic_broker_key("log.retention.hours"));
        assert!(!is_dynamic_broker_key("log.dirs"));
        assert!(is_known_broker_key("log.dirs"));
        assert!(!is_known_broker_key("no.such.key"));
    }

    #[test]
    fn broker_defaults_match_kafka() {
        let defaults = default_broker_configs();
        assert_eq!(defaults["log.retention.ms"], None);
        assert_eq!(defaults["log.retention.hours"].as_deref(), Some("168"));
        assert_eq!(defaults["log.segment.bytes"].as_deref(), Some("1073741824"));
        assert_eq!(defaults["num.partitions"].as_deref(), Some("1"));
    }

    #[test]
    fn broker_config_checks() {
        let ok: BTreeMap<String, String> = [("log.retention.ms".into(), "1000".into())].into();
        assert!(validate_broker_configs(&ok).is_ok());
        let bad: BTreeMap<String, String> = [("log.retention.ms".into(), "x".into())].into();
        let (code, message) = validate_broker_configs(&bad).unwrap_err();
        assert_eq!(code, ResponseError::InvalidRequest);
        assert!(message.contains("log.retention.ms"), "{message}");
        let fixed: BTreeMap<String, String> = [("log.dirs".into(), "/x".into())].into();
        let (_, message) = validate_broker_configs(&fixed).unwrap_err();
        assert_eq!(
            message,
            "Cannot update these configs dynamically: Set(log.dirs)"
        );
    }

    #[test]
    fn replication_throttles_are_dynamic_checked_and_known() {
        for key in [
            "leader.replication.throttled.rate",
            "follower.replication.throttled.rate",
        ] {
            assert!(is_dynamic_broker_key(key) && is_known_broker_key(key));
            assert_eq!(
                default_broker_configs()[key].as_deref(),
                Some("9223372036854775807")
            );
            let ok: BTreeMap<String, String> = [(key.into(), "1048576".into())].into();
            assert!(validate_broker_configs(&ok).is_ok());
            for bad in ["-1", "fast", "1.5"] {
                let configs: BTreeMap<String, String> = [(key.into(), bad.into())].into();
                let (code, message) = validate_broker_configs(&configs).unwrap_err();
                assert_eq!(code, ResponseError::InvalidRequest);
                assert!(message.contains(key), "{message}");
            }
        }
        let throttled: BTreeMap<String, String> = [
            (
                "leader.replication.throttled.replicas".into(),
                "0:1,1:2".into(),
            ),
            ("follower.replication.throttled.replicas".into(), "*".into()),
        ]
        .into();
        assert!(validate_topic_overrides(&LogConfig::default(), &throttled).is_ok());
        let bad: BTreeMap<String, String> =
            [("leader.replication.throttled.replicas".into(), "0-1".into())].into();
        let (code, message) = validate_topic_overrides(&LogConfig::default(), &bad).unwrap_err();
        assert_eq!(code, ResponseError::InvalidConfig);
        assert!(message.contains("must be the literal '*'"), "{message}");
        assert!(is_list_config(
            ConfigResourceType::Topic,
            "follower.replication.throttled.replicas"
        ));
    }

    #[test]
    fn topic_override_checks_name_the_key() {
        let unknown: BTreeMap<String, String> = [("retention.mss".into(), "1".into())].into();
        let (code, message) =
            validate_topic_overrides(&LogConfig::default(), &unknown).unwrap_err();
        assert_eq!(code, ResponseError::InvalidConfig);
        assert_eq!(message, "Unknown topic config name: retention.mss");
        let bad: BTreeMap<String, String> = [("retention.ms".into(), "-5".into())].into();
        let (_, message) = validate_topic_overrides(&LogConfig::default(), &bad).unwrap_err();
        assert!(message.starts_with("Invalid value -5 for configuration retention.ms"));
    }
}
