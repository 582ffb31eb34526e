//! Topic-level configuration: Kafka's names, defaults, synonyms and validation.

use moldau_storage::{CleanupPolicy, CompressionType, LogConfig, TimestampType, TOPIC_CONFIGS};

/// Kafka 4.x topic defaults, as `kafka-configs --describe --all` shows them.
const KAFKA_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.type", "producer"),
    ("delete.retention.ms", "86400000"),
    ("file.delete.delay.ms", "60000"),
    ("flush.messages", "9223372036854775807"),
    ("flush.ms", "9223372036854775807"),
    ("index.interval.bytes", "4096"),
    ("max.compaction.lag.ms", "9223372036854775807"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.after.max.ms", "3600000"),
    ("message.timestamp.before.max.ms", "9223372036854775807"),
    ("message.timestamp.type", "CreateTime"),
    ("min.cleanable.dirty.ratio", "0.5"),
    ("min.compaction.lag.ms", "0"),
    ("min.insync.replicas", "1"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.index.bytes", "10485760"),
    ("segment.jitter.ms", "0"),
    ("segment.ms", "604800000"),
];

#[test]
fn every_issue_key_is_defined_with_kafkas_default() {
    let defaults = LogConfig::default();
    for (key, default) in KAFKA_DEFAULTS {
        let def = TOPIC_CONFIGS
            .iter()
            .find(|d| d.name == *key)
            .unwrap_or_else(|| panic!("{key} missing from TOPIC_CONFIGS"));
        assert_eq!(def.default, *default, "default of {key}");
        assert_eq!(
            defaults.get(key).as_deref(),
            Some(*default),
            "LogConfig::default().get({key})"
        );
        assert!(
            ["long", "int", "double", "string", "list", "boolean"].contains(&def.config_type),
            "{key} has config type {:?}",
            def.config_type
        );
        assert!(!def.broker_synonym.is_empty(), "{key} has a broker synonym");
    }
}

#[test]
fn every_defined_key_parses_its_default_and_round_trips() {
    let defaults = LogConfig::default();
    for def in TOPIC_CONFIGS {
        let mut config = LogConfig::default();
        config
            .set(def.name, def.default)
            .unwrap_or_else(|e| panic!("{}: {e}", def.name));
        assert_eq!(
            config, defaults,
            "setting {} to its default changes nothing",
            def.name
        );
        let rendered = config
            .get(def.name)
            .unwrap_or_else(|| panic!("get({})", def.name));
        let mut again = LogConfig::default();
        again.set(def.name, &rendered).unwrap();
        assert_eq!(again, config, "{} round-trips through get/set", def.name);
    }
}

#[test]
fn broker_synonyms_follow_kafka() {
    let synonym = |key: &str| {
        TOPIC_CONFIGS
            .iter()
            .find(|d| d.name == key)
            .map(|d| d.broker_synonym)
    };
    assert_eq!(synonym("segment.bytes"), Some("log.segment.bytes"));
    assert_eq!(synonym("retention.ms"), Some("log.retention.ms"));
    assert_eq!(synonym("retention.bytes"), Some("log.retention.bytes"));
    assert_eq!(synonym("max.message.bytes"), Some("message.max.bytes"));
    assert_eq!(
        synonym("message.timestamp.type"),
        Some("log.message.timestamp.type")
    );
    assert_eq!(synonym("flush.ms"), Some("log.flush.interval.ms"));
    assert_eq!(
        synonym("flush.messages"),
        Some("log.flush.interval.messages")
    );
    assert_eq!(
        synonym("file.delete.delay.ms"),
        Some("log.segment.delete.delay.ms")
    );
    assert_eq!(synonym("cleanup.policy"), Some("log.cleanup.policy"));
    assert_eq!(synonym("segment.ms"), Some("log.roll.ms"));
    assert_eq!(synonym("segment.jitter.ms"), Some("log.roll.jitter.ms"));
    assert_eq!(
        synonym("index.interval.bytes"),
        Some("log.index.interval.bytes")
    );
    assert_eq!(
        synonym("segment.index.bytes"),
        Some("log.index.size.max.bytes")
    );
    assert_eq!(
        synonym("min.cleanable.dirty.ratio"),
        Some("log.cleaner.min.cleanable.ratio")
    );
    assert_eq!(
        synonym("delete.retention.ms"),
        Some("log.cleaner.delete.retention.ms")
    );
}

#[test]
fn every_key_parses_a_non_default_value() {
    let cases: &[(&str, &str)] = &[
        ("segment.bytes", "16777216"),
        ("segment.ms", "1000"),
        ("segment.jitter.ms", "10"),
        ("segment.index.bytes", "4096"),
        ("index.interval.bytes", "128"),
        ("retention.ms", "-1"),
        ("retention.bytes", "1048576"),
        ("cleanup.policy", "compact"),
        ("delete.retention.ms", "0"),
        ("min.cleanable.dirty.ratio", "0.1"),
        ("min.compaction.lag.ms", "500"),
        ("max.compaction.lag.ms", "60000"),
        ("max.message.bytes", "2000000"),
        ("message.timestamp.type", "LogAppendTime"),
        ("message.timestamp.before.max.ms", "86400000"),
        ("message.timestamp.after.max.ms", "0"),
        ("compression.type", "zstd"),
        ("flush.messages", "1"),
        ("flush.ms", "1000"),
        ("file.delete.delay.ms", "0"),
        ("min.insync.replicas", "2"),
    ];
    let config =
        LogConfig::with_overrides(&LogConfig::default(), cases.iter().copied()).expect("all valid");
    for (key, value) in cases {
        assert_eq!(config.get(key).as_deref(), Some(*value), "{key}");
    }
    assert_eq!(config.segment_bytes, 16 * 1024 * 1024);
    assert_eq!(config.segment_ms, 1000);
    assert_eq!(config.segment_jitter_ms, 10);
    assert_eq!(config.segment_index_bytes, 4096);
    assert_eq!(config.index_interval_bytes, 128);
    assert_eq!(config.retention_ms, -1);
    assert_eq!(config.retention_bytes, 1024 * 1024);
    assert_eq!(config.cleanup_policy, CleanupPolicy::Compact);
    assert_eq!(config.delete_retention_ms, 0);
    assert_eq!(config.min_cleanable_dirty_ratio, 0.1);
    assert_eq!(config.min_compaction_lag_ms, 500);
    assert_eq!(config.max_compaction_lag_ms, 60_000);
    assert_eq!(config.max_message_bytes, 2_000_000);
    assert_eq!(config.message_timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(config.message_timestamp_before_max_ms, 86_400_000);
    assert_eq!(config.message_timestamp_after_max_ms, 0);
    assert_eq!(config.compression_type, CompressionType::Zstd);
    assert_eq!(config.flush_messages, 1);
    assert_eq!(config.flush_ms, 1000);
    assert_eq!(config.file_delete_delay_ms, 0);
    assert_eq!(config.min_insync_replicas, 2);
}

#[test]
fn enumerated_values() {
    let mut c = LogConfig::default();
    for (value, policy, rendered) in [
        ("delete", CleanupPolicy::Delete, "delete"),
        ("compact", CleanupPolicy::Compact, "compact"),
        (
            "compact,delete",
            CleanupPolicy::CompactDelete,
            "compact,delete",
        ),
        (
            "delete,compact",
            CleanupPolicy::CompactDelete,
            "compact,delete",
        ),
    ] {
        c.set("cleanup.policy", value).unwrap();
        assert_eq!(c.cleanup_policy, policy, "{value}");
        assert_eq!(c.get("cleanup.policy").as_deref(), Some(rendered));
    }
    for (value, codec) in [
        ("producer", CompressionType::Producer),
        ("uncompressed", CompressionType::Uncompressed),
        ("gzip", CompressionType::Gzip),
        ("snappy", CompressionType::Snappy),
        ("lz4", CompressionType::Lz4),
        ("zstd", CompressionType::Zstd),
    ] {
        c.set("compression.type", value).unwrap();
        assert_eq!(c.compression_type, codec);
        assert_eq!(c.get("compression.type").as_deref(), Some(value));
    }
    for (value, ty) in [
        ("CreateTime", TimestampType::CreateTime),
        ("LogAppendTime", TimestampType::LogAppendTime),
    ] {
        c.set("message.timestamp.type", value).unwrap();
        assert_eq!(c.message_timestamp_type, ty);
        assert_eq!(c.get("message.timestamp.type").as_deref(), Some(value));
    }
}

#[test]
fn bad_values_give_a_config_error_naming_the_key() {
    let bad: &[(&str, &str)] = &[
        ("segment.bytes", "abc"),
        ("segment.bytes", "0"),
        ("segment.bytes", "4294967296"),
        ("segment.ms", "0"),
        ("segment.ms", "1.5"),
        ("segment.jitter.ms", "-1"),
        ("segment.index.bytes", "3"),
        ("index.interval.bytes", "-1"),
        ("retention.ms", "-2"),
        ("retention.ms", "seven days"),
        ("retention.bytes", "1e6"),
        ("cleanup.policy", "nope"),
        ("cleanup.policy", "compact,bogus"),
        ("delete.retention.ms", "-1"),
        ("min.cleanable.dirty.ratio", "1.5"),
        ("min.cleanable.dirty.ratio", "-0.1"),
        ("min.cleanable.dirty.ratio", "half"),
        ("min.compaction.lag.ms", "-1"),
        ("max.compaction.lag.ms", "0"),
        ("max.message.bytes", "-1"),
        ("message.timestamp.type", "CurrentTime"),
        ("message.timestamp.before.max.ms", "-1"),
        ("message.timestamp.after.max.ms", "x"),
        ("compression.type", "brotli"),
        ("flush.messages", "0"),
        ("flush.ms", "-1"),
        ("file.delete.delay.ms", "-5"),
        ("min.insync.replicas", "0"),
        ("no.such.config", "1"),
    ];
    for (key, value) in bad {
        let mut c = LogConfig::default();
        let err = c
            .set(key, value)
            .expect_err(&format!("{key}={value} must be rejected"));
        assert_eq!(err.key, *key, "error names the key for {key}={value}");
        assert_eq!(err.value, *value);
        assert!(err.to_string().contains(key), "message {err} names {key}");
        assert_eq!(
            c,
            LogConfig::default(),
            "a rejected value leaves the config unchanged ({key})"
        );
    }
}

#[test]
fn with_overrides_stops_at_the_first_bad_key() {
    let err = LogConfig::with_overrides(
        &LogConfig::default(),
        [
            ("retention.ms", "1000"),
            ("segment.bytes", "x"),
            ("flush.ms", "5"),
        ],
    )
    .unwrap_err();
    assert_eq!(err.key, "segment.bytes");
    let ok = LogConfig::with_overrides(&LogConfig::default(), [("retention.ms", "1000")]).unwrap();
    assert_eq!(ok.retention_ms, 1000);
    assert_eq!(ok.get("retention.ms").as_deref(), Some("1000"));
}

#[test]
fn storage_error_wraps_config_error() {
    let err = LogConfig::default().set("retention.ms", "x").unwrap_err();
    let storage: moldau_storage::StorageError = err.into();
    assert!(
        matches!(storage, moldau_storage::StorageError::InvalidConfig(ref e) if e.key == "retention.ms")
    );
}
