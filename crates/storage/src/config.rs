//! Topic-level log configuration with Kafka 4.x names, defaults and validation.
//!
//! `LogConfig::set` validates like Kafka's `ConfigDef` (same value ranges); building a
//! `LogConfig` literal bypasses validation, which tests use for tiny segments.

use std::fmt;

/// `cleanup.policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CleanupPolicy {
    Delete,
    Compact,
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether time/size retention applies.
    pub fn is_delete(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }

    /// Whether the log cleaner compacts this log.
    pub fn is_compact(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
}

/// `message.timestamp.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// `compression.type` (topic level; `Producer` keeps the producer's codec).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompressionType {
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl CompressionType {
    /// Kafka's name for the value.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }

    /// The codec id stored in batch attributes bits 0-2, or None for `producer`.
    pub fn codec_id(self) -> Option<u8> {
        match self {
            CompressionType::Producer => None,
            CompressionType::Uncompressed => Some(0),
            CompressionType::Gzip => Some(1),
            CompressionType::Snappy => Some(2),
            CompressionType::Lz4 => Some(3),
            CompressionType::Zstd => Some(4),
        }
    }
}

/// One supported topic-level key, as Kafka's `DescribeConfigs` reports it.
#[derive(Clone, Copy, Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub broker_synonym: &'static str,
    pub default: &'static str,
    pub config_type: &'static str,
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    broker_synonym: &'static str,
    default: &'static str,
    config_type: &'static str,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        broker_synonym,
        default,
        config_type,
        doc,
    }
}

/// Every topic-level key this crate understands (Kafka 4.x names and defaults).
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "cleanup.policy",
        "log.cleanup.policy",
        "delete",
        "list",
        "Retention policy for old log segments: delete, compact, or both.",
    ),
    def(
        "compression.type",
        "compression.type",
        "producer",
        "string",
        "Final compression type for the topic; producer keeps the producer's codec.",
    ),
    def(
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        "86400000",
        "long",
        "How long delete tombstones are retained on compacted topics.",
    ),
    def(
        "file.delete.delay.ms",
        "log.segment.delete.delay.ms",
        "60000",
        "long",
        "Time to wait before deleting a file from the filesystem.",
    ),
    def(
        "flush.messages",
        "log.flush.interval.messages",
        "9223372036854775807",
        "long",
        "Messages written between forced fsyncs.",
    ),
    def(
        "flush.ms",
        "log.flush.interval.ms",
        "9223372036854775807",
        "long",
        "Maximum time between forced fsyncs.",
    ),
    def(
        "index.interval.bytes",
        "log.index.interval.bytes",
        "4096",
        "int",
        "Bytes of log between offset index entries.",
    ),
    def(
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        "9223372036854775807",
        "long",
        "Maximum time a message stays ineligible for compaction.",
    ),
    def(
        "max.message.bytes",
        "message.max.bytes",
        "1048588",
        "int",
        "Largest record batch size allowed.",
    ),
    def(
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        "3600000",
        "long",
        "Allowed amount a CreateTime timestamp may be ahead of the broker time.",
    ),
    def(
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        "9223372036854775807",
        "long",
        "Allowed amount a CreateTime timestamp may be behind the broker time.",
    ),
    def(
        "message.timestamp.type",
        "log.message.timestamp.type",
        "CreateTime",
        "string",
        "CreateTime or LogAppendTime.",
    ),
    def(
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        "0.5",
        "double",
        "Minimum dirty/total ratio before the log is compacted.",
    ),
    def(
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        "0",
        "long",
        "Minimum time a message remains uncompacted.",
    ),
    def(
        "min.insync.replicas",
        "min.insync.replicas",
        "1",
        "int",
        "Minimum in-sync replicas for acks=all writes.",
    ),
    def(
        "retention.bytes",
        "log.retention.bytes",
        "-1",
        "long",
        "Maximum partition size before old segments are deleted; -1 is unlimited.",
    ),
    def(
        "retention.ms",
        "log.retention.ms",
        "604800000",
        "long",
        "Maximum age of a segment before deletion; -1 is unlimited.",
    ),
    def(
        "segment.bytes",
        "log.segment.bytes",
        "1073741824",
        "int",
        "Segment file size.",
    ),
    def(
        "segment.index.bytes",
        "log.index.size.max.bytes",
        "10485760",
        "int",
        "Size of the offset and time index files.",
    ),
    def(
        "segment.jitter.ms",
        "log.roll.jitter.ms",
        "0",
        "long",
        "Maximum random jitter subtracted from segment.ms.",
    ),
    def(
        "segment.ms",
        "log.roll.ms",
        "604800000",
        "long",
        "Time after which a segment is rolled even if not full.",
    ),
    def(
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        "false",
        "boolean",
        "Whether a replica outside the ISR may become leader as a last resort (data may be lost).",
    ),
];

/// Topic keys without a broker-level default (Kafka's `CONFIGS_WITH_NO_SERVER_DEFAULTS`):
/// the replication throttles, which name `partition:broker` replicas (or `*`).
pub static TOPIC_CONFIGS_WITHOUT_SERVER_DEFAULT: &[TopicConfigDef] = &[
    def(
        "follower.replication.throttled.replicas",
        "",
        "",
        "list",
        "Replicas whose replication is throttled on the follower side: \
         [PartitionId]:[BrokerId],... or * for every replica of the topic.",
    ),
    def(
        "leader.replication.throttled.replicas",
        "",
        "",
        "list",
        "Replicas whose replication is throttled on the leader side: \
         [PartitionId]:[BrokerId],... or * for every replica of the topic.",
    ),
];

/// An invalid or unknown config value; `key` names the config.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid value {value:?} for config {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Topic-level configuration of one partition log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: i32,
    pub segment_ms: i64,
    pub segment_jitter_ms: i64,
    pub segment_index_bytes: i32,
    pub index_interval_bytes: i32,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub cleanup_policy: CleanupPolicy,
    pub delete_retention_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub max_message_bytes: i32,
    pub message_timestamp_type: TimestampType,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_after_max_ms: i64,
    pub compression_type: CompressionType,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub file_delete_delay_ms: i64,
    /// `min.insync.replicas`; stored here so all topic configs live in one place.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`; read by the active controller, not by the log.
    pub unclean_leader_election_enable: bool,
    /// `leader.replication.throttled.replicas`, normalized (items trimmed, joined by ",").
    pub leader_replication_throttled_replicas: String,
    /// `follower.replication.throttled.replicas`, normalized.
    pub follower_replication_throttled_replicas: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_jitter_ms: 0,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            // 1 MiB + LOG_OVERHEAD (12 bytes of offset + length).
            max_message_bytes: 1024 * 1024 + 12,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 60 * 60 * 1000,
            compression_type: CompressionType::Producer,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            leader_replication_throttled_replicas: String::new(),
            follower_replication_throttled_replicas: String::new(),
        }
    }
}

/// Kafka's `ThrottledReplicaListValidator`: the literal `*`, or a list of
/// `partition:broker` items (empty items allowed); returned normalized.
fn parse_throttled_replicas(key: &str, value: &str) -> Result<String, ConfigError> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.concat() == "*" {
        return Ok("*".to_string());
    }
    let replica = |item: &str| match item.split_once(':') {
        Some((p, b)) => {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            digits(p) && digits(b)
        }
        None => item.is_empty(),
    };
    if !items.iter().all(|item| replica(item)) {
        return Err(ConfigError::new(
            key,
            value,
            format!(
                "{key} must be the literal '*' or a list of replicas in the following format: \
                 [partitionId]:[brokerId],[partitionId]:[brokerId],..."
            ),
        ));
    }
    Ok(items
        .into_iter()
        .filter(|item| !item.is_empty())
        .collect::<Vec<_>>()
        .join(","))
}

/// Kafka 4.x lower bound of `segment.bytes` (KIP-1030).
pub const MIN_SEGMENT_BYTES: i32 = 1024 * 1024;

fn parse_long(key: &str, value: &str, min: i64) -> Result<i64, ConfigError> {
    let v: i64 = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(key, value, "expected a long"))?;
    if v < min {
        return Err(ConfigError::new(
            key,
            value,
            format!("value must be at least {min}"),
        ));
    }
    Ok(v)
}

fn parse_int(key: &str, value: &str, min: i32) -> Result<i32, ConfigError> {
    let v: i32 = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(key, value, "expected an int"))?;
    if v < min {
        return Err(ConfigError::new(
            key,
            value,
            format!("value must be at least {min}"),
        ));
    }
    Ok(v)
}

fn parse_ratio(key: &str, value: &str) -> Result<f64, ConfigError> {
    let v: f64 = value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(key, value, "expected a double"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(ConfigError::new(
            key,
            value,
            "value must be between 0 and 1",
        ));
    }
    Ok(v)
}

/// A boolean as Kafka's `ConfigDef` reads one: `true` or `false` in any case.
fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ConfigError::new(
            key,
            value,
            "expected value to be either true or false",
        ))
    }
}

fn parse_cleanup_policy(key: &str, value: &str) -> Result<CleanupPolicy, ConfigError> {
    let (mut compact, mut delete) = (false, false);
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "compact" => compact = true,
            "delete" => delete = true,
            _ => {
                return Err(ConfigError::new(
                    key,
                    value,
                    "valid values are [compact, delete]",
                ))
            }
        }
    }
    match (compact, delete) {
        (true, true) => Ok(CleanupPolicy::CompactDelete),
        (true, false) => Ok(CleanupPolicy::Compact),
        (false, true) => Ok(CleanupPolicy::Delete),
        (false, false) => Err(ConfigError::new(
            key,
            value,
            "valid values are [compact, delete]",
        )),
    }
}

fn parse_timestamp_type(key: &str, value: &str) -> Result<TimestampType, ConfigError> {
    match value.trim() {
        "CreateTime" => Ok(TimestampType::CreateTime),
        "LogAppendTime" => Ok(TimestampType::LogAppendTime),
        _ => Err(ConfigError::new(
            key,
            value,
            "valid values are [CreateTime, LogAppendTime]",
        )),
    }
}

fn parse_compression(key: &str, value: &str) -> Result<CompressionType, ConfigError> {
    match value.trim() {
        "producer" => Ok(CompressionType::Producer),
        "uncompressed" => Ok(CompressionType::Uncompressed),
        "gzip" => Ok(CompressionType::Gzip),
        "snappy" => Ok(CompressionType::Snappy),
        "lz4" => Ok(CompressionType::Lz4),
        "zstd" => Ok(CompressionType::Zstd),
        _ => Err(ConfigError::new(
            key,
            value,
            "valid values are [uncompressed, zstd, lz4, snappy, gzip, producer]",
        )),
    }
}

impl LogConfig {
    /// Sets one topic-level key (Kafka name). Unknown key or bad value -> error naming the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "segment.bytes" => self.segment_bytes = parse_int(key, value, MIN_SEGMENT_BYTES)?,
            "segment.ms" => self.segment_ms = parse_long(key, value, 1)?,
            "segment.jitter.ms" => self.segment_jitter_ms = parse_long(key, value, 0)?,
            "segment.index.bytes" => self.segment_index_bytes = parse_int(key, value, 4)?,
            "index.interval.bytes" => self.index_interval_bytes = parse_int(key, value, 0)?,
            "retention.ms" => self.retention_ms = parse_long(key, value, -1)?,
            "retention.bytes" => self.retention_bytes = parse_long(key, value, i64::MIN)?,
            "cleanup.policy" => self.cleanup_policy = parse_cleanup_policy(key, value)?,
            "delete.retention.ms" => self.delete_retention_ms = parse_long(key, value, 0)?,
            "min.cleanable.dirty.ratio" => {
                self.min_cleanable_dirty_ratio = parse_ratio(key, value)?
            }
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = parse_long(key, value, 0)?,
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = parse_long(key, value, 1)?,
            "max.message.bytes" => self.max_message_bytes = parse_int(key, value, 0)?,
            "message.timestamp.type" => {
                self.message_timestamp_type = parse_timestamp_type(key, value)?
            }
            "message.timestamp.before.max.ms" => {
                self.message_timestamp_before_max_ms = parse_long(key, value, 0)?
            }
            "message.timestamp.after.max.ms" => {
                self.message_timestamp_after_max_ms = parse_long(key, value, 0)?
            }
            "compression.type" => self.compression_type = parse_compression(key, value)?,
            "flush.messages" => self.flush_messages = parse_long(key, value, 1)?,
            "flush.ms" => self.flush_ms = parse_long(key, value, 0)?,
            "file.delete.delay.ms" => self.file_delete_delay_ms = parse_long(key, value, 0)?,
            "min.insync.replicas" => self.min_insync_replicas = parse_int(key, value, 1)?,
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = parse_bool(key, value)?
            }
            "leader.replication.throttled.replicas" => {
                self.leader_replication_throttled_replicas = parse_throttled_replicas(key, value)?
            }
            "follower.replication.throttled.replicas" => {
                self.follower_replication_throttled_replicas = parse_throttled_replicas(key, value)?
            }
            _ => return Err(ConfigError::new(key, value, "unknown topic config")),
        }
        Ok(())
    }

    /// `base` with each (key, value) applied via [`LogConfig::set`].
    pub fn with_overrides<'a>(
        base: &LogConfig,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<LogConfig, ConfigError> {
        let mut config = base.clone();
        for (key, value) in overrides {
            config.set(key, value)?;
        }
        Ok(config)
    }

    /// Current value of a topic key rendered as Kafka renders it.
    pub fn get(&self, key: &str) -> Option<String> {
        let v = match key {
            "segment.bytes" => self.segment_bytes.to_string(),
            "segment.ms" => self.segment_ms.to_string(),
            "segment.jitter.ms" => self.segment_jitter_ms.to_string(),
            "segment.index.bytes" => self.segment_index_bytes.to_string(),
            "index.interval.bytes" => self.index_interval_bytes.to_string(),
            "retention.ms" => self.retention_ms.to_string(),
            "retention.bytes" => self.retention_bytes.to_string(),
            "cleanup.policy" => self.cleanup_policy.to_string(),
            "delete.retention.ms" => self.delete_retention_ms.to_string(),
            "min.cleanable.dirty.ratio" => render_double(self.min_cleanable_dirty_ratio),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms.to_string(),
            "max.compaction.lag.ms" => self.max_compaction_lag_ms.to_string(),
            "max.message.bytes" => self.max_message_bytes.to_string(),
            "message.timestamp.type" => self.message_timestamp_type.to_string(),
            "message.timestamp.before.max.ms" => self.message_timestamp_before_max_ms.to_string(),
            "message.timestamp.after.max.ms" => self.message_timestamp_after_max_ms.to_string(),
            "compression.type" => self.compression_type.name().to_string(),
            "flush.messages" => self.flush_messages.to_string(),
            "flush.ms" => self.flush_ms.to_string(),
            "file.delete.delay.ms" => self.file_delete_delay_ms.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "unclean.leader.election.enable" => self.unclean_leader_election_enable.to_string(),
            "leader.replication.throttled.replicas" => {
                self.leader_replication_throttled_replicas.clone()
            }
            "follower.replication.throttled.replicas" => {
                self.follower_replication_throttled_replicas.clone()
            }
            _ => return None,
        };
        Some(v)
    }

    /// Definition of a topic key, if supported.
    pub fn definition(key: &str) -> Option<&'static TopicConfigDef> {
        TOPIC_CONFIGS
            .iter()
            .chain(TOPIC_CONFIGS_WITHOUT_SERVER_DEFAULT)
            .find(|d| d.name == key)
    }
}

/// Java renders doubles with at least one fractional digit ("1.0", "0.5").
fn render_double(v: f64) -> String {
    if v.fract() == 0.0 && v.is_finite() {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        })
    }
}

impl fmt::Display for TimestampType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_get() {
        let config = LogConfig::default();
        for def in TOPIC_CONFIGS {
            assert_eq!(
                config.get(def.name).as_deref(),
                Some(def.default),
                "{}",
                def.name
            );
            let mut c = LogConfig::default();
            c.set(def.name, def.default).unwrap();
            assert_eq!(c, config, "{}", def.name);
        }
    }

    #[test]
    fn throttled_replica_lists_are_checked_as_kafka_checks_them() {
        let key = "leader.replication.throttled.replicas";
        let mut c = LogConfig::default();
        for ok in ["", "*", " * ", "0:1", "0:1, 1:2", "0:1,,2:3"] {
            c.set(key, ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
        assert_eq!(c.get(key).unwrap(), "0:1,2:3");
        c.set(key, " * ").unwrap();
        assert_eq!(c.get(key).unwrap(), "*");
        for bad in ["1", "a:b", "0:1,*", "0:-1", "0:1:2", "*,*"] {
            let err = c.set(key, bad).unwrap_err();
            assert!(
                err.reason.contains("must be the literal '*'"),
                "{bad:?}: {err}"
            );
        }
        let follower = "follower.replication.throttled.replicas";
        assert_eq!(LogConfig::definition(follower).unwrap().config_type, "list");
        for def in TOPIC_CONFIGS_WITHOUT_SERVER_DEFAULT {
            let mut c = LogConfig::default();
            c.set(def.name, def.default).unwrap();
            assert_eq!(c, LogConfig::default());
            assert_eq!(c.get(def.name).as_deref(), Some(def.default));
        }
    }

    #[test]
    fn invalid_values_name_the_key() {
        let mut c = LogConfig::default();
        let err = c.set("retention.ms", "-2").unwrap_err();
        assert_eq!(err.key, "retention.ms");
        assert!(c.set("segment.bytes", "1000").is_err());
        assert!(c.set("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(c.set("cleanup.policy", "compact,bogus").is_err());
        assert!(c.set("no.such.key", "1").is_err());
        assert!(c.set("unclean.leader.election.enable", "yes").is_err());
        c.set("unclean.leader.election.enable", " TRUE ").unwrap();
        assert_eq!(c.get("unclean.leader.election.enable").unwrap(), "true");
        c.set("cleanup.policy", "delete, compact").unwrap();
        assert_eq!(c.get("cleanup.policy").unwrap(), "compact,delete");
        let c = LogConfig::with_overrides(&c, [("min.cleanable.dirty.ratio", "1")]).unwrap();
        assert_eq!(c.get("min.cleanable.dirty.ratio").unwrap(), "1.0");
    }
}
