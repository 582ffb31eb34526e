//! The cluster's connector configs as the config topic holds them (Kafka's
//! `KafkaConfigBackingStore` and `ClusterConfigState`): every worker applies the records in
//! order; task configs take effect only when their `commit-<connector>` record arrives, so a
//! leader that dies mid-write leaves the previous task configs in force.

use std::collections::BTreeMap;

use crate::config::Props;
use crate::storage::{ConfigRecord, Properties, TargetState};

/// A restart the leader must carry out (`restart-connector-<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRestart {
    pub include_tasks: bool,
    pub only_failed: bool,
}

/// What the config topic says, up to `offset`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigState {
    /// The offset after the last record applied (the protocol's `config-offset`).
    pub offset: i64,
    pub connectors: BTreeMap<String, Props>,
    pub target_states: BTreeMap<String, TargetState>,
    /// Committed task configs per connector.
    pub tasks: BTreeMap<String, Vec<Props>>,
    /// Task configs written but not yet committed.
    deferred: BTreeMap<String, BTreeMap<i32, Props>>,
    pub restarts: BTreeMap<String, PendingRestart>,
    pub session_key: Option<(Vec<u8>, String, i64)>,
}

fn props(p: &Properties) -> Props {
    p.iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
        .collect()
}

fn properties(p: &Props) -> Properties {
    p.iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect()
}

impl ConfigState {
    /// Applies one record read at `offset`.
    pub fn apply(&mut self, record: ConfigRecord, offset: i64) {
        self.offset = self.offset.max(offset + 1);
        match record {
            ConfigRecord::ConnectorConfig {
                connector,
                properties,
            } => {
                self.target_states
                    .entry(connector.clone())
                    .or_insert(TargetState::Started);
                self.connectors.insert(connector, props(&properties));
            }
            ConfigRecord::ConnectorConfigRemoved { connector } => {
                self.connectors.remove(&connector);
                self.target_states.remove(&connector);
                self.tasks.remove(&connector);
                self.deferred.remove(&connector);
                self.restarts.remove(&connector);
            }
            ConfigRecord::TaskConfig {
                connector,
                task,
                properties,
            } => {
                self.deferred
                    .entry(connector)
                    .or_default()
                    .insert(task, props(&properties));
            }
            ConfigRecord::TasksCommit { connector, tasks } => {
                let deferred = self.deferred.remove(&connector).unwrap_or_default();
                // Kafka drops a commit whose task configs are not all there (an
                // inconsistent connector, reconfigured by the leader).
                let complete: Option<Vec<Props>> =
                    (0..tasks).map(|t| deferred.get(&t).cloned()).collect();
                match complete {
                    Some(configs) => {
                        self.tasks.insert(connector, configs);
                    }
                    None => tracing::warn!(
                        "commit of {tasks} task configs for connector {connector} without all of them: ignored"
                    ),
                }
            }
            ConfigRecord::TargetState { connector, state } => {
                self.target_states.insert(connector, state);
            }
            ConfigRecord::TargetStateRemoved { connector } => {
                self.target_states.remove(&connector);
            }
            ConfigRecord::RestartRequest {
                connector,
                include_tasks,
                only_failed,
            } => {
                self.restarts.insert(
                    connector,
                    PendingRestart {
                        include_tasks,
                        only_failed,
                    },
                );
            }
            ConfigRecord::SessionKey {
                key,
                algorithm,
                creation_timestamp,
            } => self.session_key = Some((key, algorithm, creation_timestamp)),
            ConfigRecord::TaskCount { .. } | ConfigRecord::LoggerLevel { .. } => {}
        }
    }

    /// The number of committed tasks of each connector (0 for stopped ones).
    pub fn task_counts(&self) -> BTreeMap<String, i32> {
        self.connectors
            .keys()
            .map(|c| {
                let n = match self.target_states.get(c) {
                    Some(TargetState::Stopped) => 0,
                    _ => self.tasks.get(c).map_or(0, |t| t.len() as i32),
                };
                (c.clone(), n)
            })
            .collect()
    }
}

/// The records that put a connector's config (with its target state first, as Kafka 3.5+
/// writes them).
pub fn put_connector_records(
    connector: &str,
    config: &Props,
    target: Option<TargetState>,
) -> Vec<ConfigRecord> {
    let mut out = Vec::new();
    if let Some(state) = target {
        out.push(ConfigRecord::TargetState {
            connector: connector.to_string(),
            state,
        });
    }
    out.push(ConfigRecord::ConnectorConfig {
        connector: connector.to_string(),
        properties: properties(config),
    });
    out
}

/// The records that replace a connector's task configs: each task, then the commit.
pub fn task_config_records(connector: &str, configs: &[Props]) -> Vec<ConfigRecord> {
    let mut out: Vec<ConfigRecord> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| ConfigRecord::TaskConfig {
            connector: connector.to_string(),
            task: i as i32,
            properties: properties(c),
        })
        .collect();
    out.push(ConfigRecord::TasksCommit {
        connector: connector.to_string(),
        tasks: configs.len() as i32,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> Props {
        Props::from([(k.to_string(), v.to_string())])
    }

    #[test]
    fn task_configs_apply_at_their_commit_and_deletes_clear_everything() {
        let mut s = ConfigState::default();
        for (i, r) in put_connector_records("c", &p("a", "1"), Some(TargetState::Paused))
            .into_iter()
            .enumerate()
        {
            s.apply(r, i as i64);
        }
        assert_eq!(s.target_states["c"], TargetState::Paused);
        let records = task_config_records("c", &[p("t", "0"), p("t", "1")]);
        let n = records.len();
        for (i, r) in records.into_iter().take(n - 1).enumerate() {
            s.apply(r, 10 + i as i64);
        }
        assert!(!s.tasks.contains_key("c"), "not committed yet");
        s.apply(
            ConfigRecord::TasksCommit {
                connector: "c".into(),
                tasks: 2,
            },
            20,
        );
        assert_eq!(s.tasks["c"].len(), 2);
        assert_eq!(s.offset, 21);
        assert_eq!(s.task_counts()["c"], 2);
        // A commit claiming more tasks than were written is ignored.
        s.apply(
            ConfigRecord::TasksCommit {
                connector: "c".into(),
                tasks: 3,
            },
            21,
        );
        assert_eq!(s.tasks["c"].len(), 2);
        s.apply(
            ConfigRecord::ConnectorConfigRemoved {
                connector: "c".into(),
            },
            22,
        );
        assert!(s.connectors.is_empty() && s.tasks.is_empty() && s.target_states.is_empty());
    }
}
