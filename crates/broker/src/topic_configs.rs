//! Effective topic configs and where each value comes from, as DescribeConfigs and
//! CreateTopics report them.

use std::collections::BTreeMap;

use moldau_storage::TOPIC_CONFIGS;

use crate::state::BrokerState;

/// Kafka's DescribeConfigs config sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
}

pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// Every topic-level key with its effective value: the topic's override, else the broker's
/// static `log.*` setting, else Kafka's default.
pub fn effective(state: &BrokerState, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    let defaults = state.replica_manager.log_defaults();
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            if let Some(value) = overrides.get(def.name) {
                ConfigEntry {
                    name: def.name.to_string(),
                    value: Some(value.clone()),
                    source: ConfigSource::TopicConfig,
                }
            } else {
                let from_broker = state.config.static_configs.contains_key(def.broker_synonym);
                ConfigEntry {
                    name: def.name.to_string(),
                    value: defaults.get(def.name),
                    source: if from_broker {
                        ConfigSource::StaticBrokerConfig
                    } else {
                        ConfigSource::DefaultConfig
                    },
                }
            }
        })
        .collect()
}
