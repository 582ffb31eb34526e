//! The record formats of Kafka Connect's internal topics, byte for byte as Kafka's
//! `KafkaConfigBackingStore`, `KafkaOffsetBackingStore` (through `OffsetStorageWriter`) and
//! `KafkaStatusBackingStore` write and read them, so a Java Connect cluster and the usual
//! tools read what Moldau writes and the other way round.
//!
//! Kafka serializes every internal topic's values (and the offset topic's keys) with a
//! `JsonConverter` configured `schemas.enable=false` (`Worker`'s internal converter): structs
//! become JSON objects with their fields in schema order (an unset optional field is written
//! as `null`), maps become objects in the map's iteration order and nothing is wrapped in a
//! `{"schema":...,"payload":...}` envelope. Reading back, every JSON integer is a `Long`
//! ([`Value::Int64`]). Record keys of the config and status topics are plain UTF-8 strings
//! (`StringSerializer`). A record with a null value is a tombstone.
//!
//! Decoding mirrors Kafka's consumers: where Kafka logs a record and skips it, the decoders
//! here return a [`StorageError`]; they never panic.
//!
//! * Config topic: [`ConfigRecord`].
//! * Offset topic: [`OffsetKey`], [`encode_offset_value`], [`decode_offset_value`], and the
//!   producer's default partitioner ([`murmur2`], [`to_positive`], [`default_partition`]).
//! * Status topic: [`StatusRecord`].
//! * Standalone offsets file: [`encode_offsets_file`], [`decode_offsets_file`] (Moldau's own
//!   format; Kafka's `FileOffsetBackingStore` uses Java serialization, see there).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::convert::{ConvertError, Converter, JsonConverter};
use crate::data::{DataError, Schema, SchemaBuilder, SchemaRef, Struct, Type, Value};

/// What goes wrong encoding or decoding an internal topic record.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StorageError {
    /// A key no record kind of the topic uses, or one that does not parse.
    #[error("invalid record key {0:?}")]
    InvalidKey(String),
    /// The value's bytes are not JSON (Kafka: "Failed to convert ... data").
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// JSON of the wrong shape for the record kind.
    #[error("{0}")]
    Malformed(String),
}

impl From<DataError> for StorageError {
    fn from(e: DataError) -> Self {
        StorageError::Malformed(e.0)
    }
}

fn malformed<T>(message: impl Into<String>) -> Result<T, StorageError> {
    Err(StorageError::Malformed(message.into()))
}

/// Kafka's internal converter: a `JsonConverter` with `schemas.enable=false`.
pub fn internal_converter() -> JsonConverter {
    JsonConverter {
        schemas_enabled: false,
        ..JsonConverter::default()
    }
}

fn to_bytes(schema: Option<&SchemaRef>, value: &Value) -> Result<Vec<u8>, StorageError> {
    internal_converter()
        .from_connect_data("", schema, value)?
        .ok_or_else(|| StorageError::Malformed("value serialized to null".into()))
}

fn from_bytes(bytes: &[u8]) -> Result<Value, StorageError> {
    Ok(internal_converter().to_connect_data("", Some(bytes))?.1)
}

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

fn required(t: Type) -> SchemaRef {
    Schema::primitive(t, false)
}

fn optional(t: Type) -> SchemaRef {
    Schema::primitive(t, true)
}

fn struct_schema(fields: &[(&str, SchemaRef)]) -> SchemaRef {
    let mut builder = SchemaBuilder::struct_builder();
    for (name, schema) in fields {
        builder = builder
            .field(*name, schema.clone())
            .expect("distinct, non-empty field names");
    }
    builder.build()
}

fn make_struct(schema: SchemaRef, values: Vec<(&str, Value)>) -> Result<Struct, StorageError> {
    let mut s = Struct::new(schema)?;
    for (name, value) in values {
        s.put(name, value)?;
    }
    Ok(s)
}

fn encode_struct(schema: SchemaRef, values: Vec<(&str, Value)>) -> Result<Vec<u8>, StorageError> {
    let s = make_struct(schema.clone(), values)?;
    to_bytes(Some(&schema), &Value::Struct(s))
}

/// The fields of a schemaless JSON object, or an error naming what it is instead.
fn as_object<'a>(value: &'a Value, what: &str) -> Result<&'a [(Value, Value)], StorageError> {
    match value {
        Value::Map(entries) => Ok(entries),
        other => malformed(format!(
            "{what} is in the wrong format: expected a Map but found {}",
            other.kind()
        )),
    }
}

fn field<'a>(entries: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| matches!(k, Value::String(k) if k == name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn string_field(
    entries: &[(Value, Value)],
    name: &str,
    what: &str,
) -> Result<String, StorageError> {
    match field(entries, name) {
        Some(Value::String(s)) => Ok(s.clone()),
        other => malformed(format!(
            "invalid data for {what}: '{name}' field should be a String but is {}",
            other.map_or("null", Value::kind)
        )),
    }
}

/// Kafka's `intValue`: an `Integer` or a `Long` (narrowed as Java's `(int)` does).
fn int_field(entries: &[(Value, Value)], name: &str, what: &str) -> Result<i32, StorageError> {
    match field(entries, name) {
        Some(Value::Int32(v)) => Ok(*v),
        Some(Value::Int64(v)) => Ok(*v as i32),
        other => malformed(format!(
            "invalid data for {what}: '{name}' field should be an Integer or Long but is {}",
            other.map_or("null", Value::kind)
        )),
    }
}

fn long_field(entries: &[(Value, Value)], name: &str, what: &str) -> Result<i64, StorageError> {
    match field(entries, name) {
        Some(Value::Int64(v)) => Ok(*v),
        other => malformed(format!(
            "invalid data for {what}: '{name}' field should be a Long but is {}",
            other.map_or("null", Value::kind)
        )),
    }
}

/// Java's `String.split("-")`: trailing empty strings are dropped.
fn java_split_dash(s: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split('-').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

/// A task id from a `-`-separated key whose first `skip` parts are its prefix, as Kafka's
/// `parseTaskId` (config topic, `skip` 1) and `parseConnectorTaskId` (status topic, 2).
fn parse_task_key(key: &str, skip: usize) -> Result<(String, i32), StorageError> {
    let parts = java_split_dash(key);
    if parts.len() < skip + 2 {
        return Err(StorageError::InvalidKey(key.to_string()));
    }
    let task = parts[parts.len() - 1]
        .parse::<i32>()
        .map_err(|_| StorageError::InvalidKey(key.to_string()))?;
    Ok((parts[skip..parts.len() - 1].join("-"), task))
}

// ---------------------------------------------------------------------------------------
// Config topic
// ---------------------------------------------------------------------------------------

/// Key prefix of a connector's configuration.
pub const CONNECTOR_PREFIX: &str = "connector-";
/// Key prefix of a task's configuration (`task-<connector>-<n>`).
pub const TASK_PREFIX: &str = "task-";
/// Key prefix of a connector's task-configuration commit.
pub const COMMIT_TASKS_PREFIX: &str = "commit-";
/// Key prefix of a connector's target state.
pub const TARGET_STATE_PREFIX: &str = "target-state-";
/// Key prefix of a connector's task count record (exactly-once source support).
pub const TASK_COUNT_RECORD_PREFIX: &str = "tasks-fencing-";
/// Key of the session key record.
pub const SESSION_KEY_KEY: &str = "session-key";
/// Key prefix of a connector restart request.
pub const RESTART_PREFIX: &str = "restart-connector-";
/// Key prefix of a cluster-wide logger level (KIP-976).
pub const LOGGER_CLUSTER_PREFIX: &str = "logger-cluster-";

/// A connector's or task's configuration: entries in the order written (values may be null,
/// Kafka's `map(STRING, OPTIONAL_STRING)`).
pub type Properties = Vec<(String, Option<String>)>;

/// Kafka's `TargetState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetState {
    Started,
    Paused,
    Stopped,
}

impl TargetState {
    /// The Java enum constant's name.
    pub fn name(self) -> &'static str {
        match self {
            TargetState::Started => "STARTED",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }

    /// Java's `TargetState.valueOf` (exact, case-sensitive).
    pub fn parse(name: &str) -> Option<TargetState> {
        Some(match name {
            "STARTED" => TargetState::Started,
            "PAUSED" => TargetState::Paused,
            "STOPPED" => TargetState::Stopped,
            _ => return None,
        })
    }
}

/// A record of the config topic (`config.storage.topic`).
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigRecord {
    /// `connector-<name>`: `{"properties":{...}}`.
    ConnectorConfig {
        connector: String,
        properties: Properties,
    },
    /// `connector-<name>` tombstone: the connector was deleted.
    ConnectorConfigRemoved { connector: String },
    /// `task-<name>-<n>`: `{"properties":{...}}`, applied at the next commit.
    TaskConfig {
        connector: String,
        task: i32,
        properties: Properties,
    },
    /// `commit-<name>`: `{"tasks":<n>}`.
    TasksCommit { connector: String, tasks: i32 },
    /// `target-state-<name>`: `{"state":...,"state.v2":...}`; `state` is `PAUSED` for
    /// `STOPPED`, for workers older than 3.5.
    TargetState {
        connector: String,
        state: TargetState,
    },
    /// `target-state-<name>` tombstone.
    TargetStateRemoved { connector: String },
    /// `tasks-fencing-<name>`: `{"task-count":<n>}`.
    TaskCount { connector: String, task_count: i32 },
    /// `session-key`: `{"key":<base64>,"algorithm":...,"creation-timestamp":<ms>}`.
    SessionKey {
        key: Vec<u8>,
        algorithm: String,
        creation_timestamp: i64,
    },
    /// `restart-connector-<name>`: `{"include-tasks":..,"only-failed":..}`.
    RestartRequest {
        connector: String,
        include_tasks: bool,
        only_failed: bool,
    },
    /// `logger-cluster-<namespace>`: `{"level":...}`.
    LoggerLevel { namespace: String, level: String },
}

fn properties_schema() -> SchemaRef {
    // CONNECTOR_CONFIGURATION_V0 == TASK_CONFIGURATION_V0
    let map = SchemaBuilder::map(required(Type::String), optional(Type::String)).build();
    struct_schema(&[("properties", map)])
}

fn properties_value(properties: &Properties) -> Value {
    Value::Map(
        properties
            .iter()
            .map(|(k, v)| (string(k), v.as_deref().map_or(Value::Null, string)))
            .collect(),
    )
}

fn decode_properties(value: &Value, what: &str) -> Result<Properties, StorageError> {
    let entries = as_object(value, what)?;
    let props = match field(entries, "properties") {
        Some(Value::Map(props)) => props,
        other => {
            return malformed(format!(
                "invalid data for {what}: 'properties' field should be a Map but is {}",
                other.map_or("null", Value::kind)
            ))
        }
    };
    props
        .iter()
        .map(|(k, v)| match (k, v) {
            (Value::String(k), Value::String(v)) => Ok((k.clone(), Some(v.clone()))),
            (Value::String(k), Value::Null) => Ok((k.clone(), None)),
            _ => malformed(format!(
                "invalid data for {what}: 'properties' should map strings to strings"
            )),
        })
        .collect()
}

impl ConfigRecord {
    /// The record's key.
    pub fn key(&self) -> String {
        match self {
            ConfigRecord::ConnectorConfig { connector, .. }
            | ConfigRecord::ConnectorConfigRemoved { connector } => {
                format!("{CONNECTOR_PREFIX}{connector}")
            }
            ConfigRecord::TaskConfig {
                connector, task, ..
            } => format!("{TASK_PREFIX}{connector}-{task}"),
            ConfigRecord::TasksCommit { connector, .. } => {
                format!("{COMMIT_TASKS_PREFIX}{connector}")
            }
            ConfigRecord::TargetState { connector, .. }
            | ConfigRecord::TargetStateRemoved { connector } => {
                format!("{TARGET_STATE_PREFIX}{connector}")
            }
            ConfigRecord::TaskCount { connector, .. } => {
                format!("{TASK_COUNT_RECORD_PREFIX}{connector}")
            }
            ConfigRecord::SessionKey { .. } => SESSION_KEY_KEY.to_string(),
            ConfigRecord::RestartRequest { connector, .. } => {
                format!("{RESTART_PREFIX}{connector}")
            }
            ConfigRecord::LoggerLevel { namespace, .. } => {
                format!("{LOGGER_CLUSTER_PREFIX}{namespace}")
            }
        }
    }

    /// The record's value as Kafka writes it; `None` is a tombstone.
    pub fn encode_value(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let bytes = match self {
            ConfigRecord::ConnectorConfig { properties, .. }
            | ConfigRecord::TaskConfig { properties, .. } => encode_struct(
                properties_schema(),
                vec![("properties", properties_value(properties))],
            )?,
            ConfigRecord::ConnectorConfigRemoved { .. }
            | ConfigRecord::TargetStateRemoved { .. } => return Ok(None),
            ConfigRecord::TasksCommit { tasks, .. } => encode_struct(
                struct_schema(&[("tasks", required(Type::Int32))]),
                vec![("tasks", Value::Int32(*tasks))],
            )?,
            ConfigRecord::TargetState { state, .. } => {
                // TARGET_STATE_V1; older workers don't know STOPPED and read `state`.
                let legacy = match state {
                    TargetState::Stopped => TargetState::Paused,
                    other => *other,
                };
                encode_struct(
                    struct_schema(&[
                        ("state", required(Type::String)),
                        ("state.v2", optional(Type::String)),
                    ]),
                    vec![
                        ("state", string(legacy.name())),
                        ("state.v2", string(state.name())),
                    ],
                )?
            }
            ConfigRecord::TaskCount { task_count, .. } => encode_struct(
                struct_schema(&[("task-count", required(Type::Int32))]),
                vec![("task-count", Value::Int32(*task_count))],
            )?,
            ConfigRecord::SessionKey {
                key,
                algorithm,
                creation_timestamp,
            } => encode_struct(
                struct_schema(&[
                    ("key", required(Type::String)),
                    ("algorithm", required(Type::String)),
                    ("creation-timestamp", required(Type::Int64)),
                ]),
                vec![
                    ("key", Value::String(BASE64.encode(key))),
                    ("algorithm", string(algorithm)),
                    ("creation-timestamp", Value::Int64(*creation_timestamp)),
                ],
            )?,
            ConfigRecord::RestartRequest {
                include_tasks,
                only_failed,
                ..
            } => encode_struct(
                struct_schema(&[
                    ("include-tasks", required(Type::Boolean)),
                    ("only-failed", required(Type::Boolean)),
                ]),
                vec![
                    ("include-tasks", Value::Boolean(*include_tasks)),
                    ("only-failed", Value::Boolean(*only_failed)),
                ],
            )?,
            ConfigRecord::LoggerLevel { level, .. } => encode_struct(
                struct_schema(&[("level", required(Type::String))]),
                vec![("level", string(level))],
            )?,
        };
        Ok(Some(bytes))
    }

    /// The record's key and value.
    pub fn encode(&self) -> Result<(String, Option<Vec<u8>>), StorageError> {
        Ok((self.key(), self.encode_value()?))
    }

    /// Reads a record as Kafka's config topic consumer does: the key's prefix picks the
    /// kind (in Kafka's order), a null value is a tombstone (only connector configs and
    /// target states have them; Kafka ignores any other null). Errors where Kafka logs and
    /// skips the record.
    pub fn decode(key: &str, value: Option<&[u8]>) -> Result<ConfigRecord, StorageError> {
        // Kafka converts the value before looking at the key.
        let value = match value {
            Some(bytes) => from_bytes(bytes)?,
            None => Value::Null,
        };
        let null = value.is_null();
        if let Some(connector) = key.strip_prefix(TARGET_STATE_PREFIX) {
            let connector = connector.to_string();
            if null {
                return Ok(ConfigRecord::TargetStateRemoved { connector });
            }
            let what = format!("target state for connector '{connector}'");
            let entries = as_object(&value, &what)?;
            // Prefer `state.v2` (if a String), then fall back on `state`.
            let name = match field(entries, "state.v2") {
                Some(Value::String(s)) => s.clone(),
                _ => string_field(entries, "state", &what)?,
            };
            let state = TargetState::parse(&name)
                .ok_or_else(|| StorageError::Malformed(format!("invalid {what}: {name}")))?;
            Ok(ConfigRecord::TargetState { connector, state })
        } else if let Some(connector) = key.strip_prefix(CONNECTOR_PREFIX) {
            let connector = connector.to_string();
            if null {
                return Ok(ConfigRecord::ConnectorConfigRemoved { connector });
            }
            let properties =
                decode_properties(&value, &format!("config for connector '{connector}'"))?;
            Ok(ConfigRecord::ConnectorConfig {
                connector,
                properties,
            })
        } else if key.starts_with(TASK_PREFIX) {
            let (connector, task) = parse_task_key(key, 1)?;
            if null {
                return malformed(format!(
                    "task configuration for task {connector}-{task} is unexpectedly null"
                ));
            }
            let properties =
                decode_properties(&value, &format!("config of task {connector}-{task}"))?;
            Ok(ConfigRecord::TaskConfig {
                connector,
                task,
                properties,
            })
        } else if let Some(connector) = key.strip_prefix(COMMIT_TASKS_PREFIX) {
            let what = format!("tasks commit for connector '{connector}'");
            let tasks = int_field(as_object(&value, &what)?, "tasks", &what)?;
            Ok(ConfigRecord::TasksCommit {
                connector: connector.to_string(),
                tasks,
            })
        } else if let Some(connector) = key.strip_prefix(RESTART_PREFIX) {
            let entries = as_object(&value, "restart request")?;
            // Kafka defaults a missing or non-boolean flag to false.
            let flag = |name| matches!(field(entries, name), Some(Value::Boolean(true)));
            Ok(ConfigRecord::RestartRequest {
                connector: connector.to_string(),
                include_tasks: flag("include-tasks"),
                only_failed: flag("only-failed"),
            })
        } else if let Some(connector) = key.strip_prefix(TASK_COUNT_RECORD_PREFIX) {
            let what = format!("task count record for connector '{connector}'");
            let task_count = int_field(as_object(&value, &what)?, "task-count", &what)?;
            Ok(ConfigRecord::TaskCount {
                connector: connector.to_string(),
                task_count,
            })
        } else if key == SESSION_KEY_KEY {
            let what = "session key";
            let entries = as_object(&value, what)?;
            let encoded = string_field(entries, "key", what)?;
            let key = BASE64.decode(encoded.as_bytes()).map_err(|e| {
                StorageError::Malformed(format!("invalid base64 in session key: {e}"))
            })?;
            Ok(ConfigRecord::SessionKey {
                key,
                algorithm: string_field(entries, "algorithm", what)?,
                creation_timestamp: long_field(entries, "creation-timestamp", what)?,
            })
        } else if let Some(namespace) = key.strip_prefix(LOGGER_CLUSTER_PREFIX) {
            let what = format!("logging level for namespace {namespace}");
            let level = string_field(as_object(&value, &what)?, "level", &what)?;
            Ok(ConfigRecord::LoggerLevel {
                namespace: namespace.to_string(),
                level,
            })
        } else {
            Err(StorageError::InvalidKey(key.to_string()))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Offset topic
// ---------------------------------------------------------------------------------------

/// A source partition or source offset: string keys to primitive values (or null), in the
/// map's iteration order, which is the order of the JSON object Kafka writes. Offsets are
/// looked up by the key's exact bytes, so a partition must list its entries in the same order
/// as whoever wrote it; [`java_hash_map_order`] gives a `java.util.HashMap`'s order.
pub type OffsetMap = Vec<(String, Value)>;

/// Kafka's `OffsetUtils.validateFormat`: values must be null or of a primitive type.
pub fn validate_offset_map(map: &OffsetMap) -> Result<(), StorageError> {
    for (name, value) in map {
        match value {
            Value::Null
            | Value::Int8(_)
            | Value::Int16(_)
            | Value::Int32(_)
            | Value::Int64(_)
            | Value::Float32(_)
            | Value::Float64(_)
            | Value::Boolean(_)
            | Value::String(_)
            | Value::Bytes(_) => {}
            other => {
                return malformed(format!(
                "Offsets may only contain primitive types as values, but field {name} contains {}",
                other.kind()
            ))
            }
        }
    }
    Ok(())
}

fn offset_map_value(map: &OffsetMap) -> Value {
    Value::Map(map.iter().map(|(k, v)| (string(k), v.clone())).collect())
}

fn decode_offset_map(value: &Value, what: &str) -> Result<OffsetMap, StorageError> {
    as_object(value, what)?
        .iter()
        .map(|(k, v)| match k {
            Value::String(k) => Ok((k.clone(), v.clone())),
            _ => malformed(format!("{what} may only use String keys")),
        })
        .collect()
}

/// An offset topic key: `["<connector name>",{<source partition>}]`.
#[derive(Clone, Debug, PartialEq)]
pub struct OffsetKey {
    /// The connector's name (`OffsetStorageWriter`'s namespace).
    pub connector: String,
    pub partition: OffsetMap,
}

impl OffsetKey {
    pub fn new(connector: impl Into<String>, partition: OffsetMap) -> OffsetKey {
        OffsetKey {
            connector: connector.into(),
            partition,
        }
    }

    /// The key's bytes, as `OffsetStorageWriter` serializes `[namespace, partition]`.
    pub fn encode(&self) -> Result<Vec<u8>, StorageError> {
        validate_offset_map(&self.partition)?;
        let list = Value::Array(vec![
            string(&self.connector),
            offset_map_value(&self.partition),
        ]);
        to_bytes(None, &list)
    }

    /// Reads a key as `OffsetUtils.processPartitionKey` does: a two-element JSON array of a
    /// string and an object (Kafka skips a null partition silently; that is an error here).
    pub fn decode(bytes: &[u8]) -> Result<OffsetKey, StorageError> {
        let value = from_bytes(bytes)?;
        let Value::Array(items) = value else {
            return malformed(format!(
                "offset partition key with an unexpected format: expected a List but found {}",
                value.kind()
            ));
        };
        let [connector, partition] = items.as_slice() else {
            return malformed(format!(
                "offset partition key with an unexpected number of elements. Expected: 2, actual: {}",
                items.len()
            ));
        };
        let Value::String(connector) = connector else {
            return malformed(format!(
                "offset partition key's first element should be a String but is {}",
                connector.kind()
            ));
        };
        Ok(OffsetKey {
            connector: connector.clone(),
            partition: decode_offset_map(partition, "offset partition")?,
        })
    }

    /// The offset topic partition the key goes to out of `num_partitions`.
    pub fn topic_partition(&self, num_partitions: i32) -> Result<i32, StorageError> {
        Ok(default_partition(&self.encode()?, num_partitions))
    }
}

/// An offset value's bytes: the source offset as a JSON object, `None` (a tombstone) to
/// delete the offset (KIP-875).
pub fn encode_offset_value(offset: Option<&OffsetMap>) -> Result<Option<Vec<u8>>, StorageError> {
    match offset {
        None => Ok(None),
        Some(map) => {
            validate_offset_map(map)?;
            Ok(Some(to_bytes(None, &offset_map_value(map))?))
        }
    }
}

/// Reads an offset value; a tombstone (or JSON `null`) is `None`.
pub fn decode_offset_value(bytes: Option<&[u8]>) -> Result<Option<OffsetMap>, StorageError> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let value = from_bytes(bytes)?;
    if value.is_null() {
        return Ok(None);
    }
    decode_offset_map(&value, "source offset").map(Some)
}

/// Kafka's `Utils.murmur2` (seed `0x9747b28c`), the default partitioner's hash.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit.
pub fn to_positive(number: i32) -> i32 {
    number & 0x7fff_ffff
}

/// The partition the producer's default partitioner picks for a keyed record
/// (`BuiltInPartitioner.partitionForKey`): `toPositive(murmur2(key)) % numPartitions`.
///
/// # Panics
/// If `num_partitions` is not positive.
pub fn default_partition(key: &[u8], num_partitions: i32) -> i32 {
    assert!(num_partitions > 0, "num_partitions must be positive");
    to_positive(murmur2(key)) % num_partitions
}

/// Java's `String.hashCode` (over UTF-16 code units).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Reorders entries into the iteration order of a `java.util.HashMap` created with
/// `new HashMap<>()` and filled by `put` in the given order (what most Java source
/// connectors pass as a source partition). Exact unless more than eight keys share a bucket
/// (Java then treeifies or resizes early); duplicate keys keep their first position.
pub fn java_hash_map_order<V>(entries: Vec<(String, V)>) -> Vec<(String, V)> {
    let mut capacity: usize = 16;
    while entries.len() > capacity / 4 * 3 {
        capacity *= 2;
    }
    let mut keyed: Vec<(usize, (String, V))> = entries
        .into_iter()
        .map(|(k, v)| {
            let h = java_string_hash(&k) as u32;
            let spread = h ^ (h >> 16);
            ((spread as usize) & (capacity - 1), (k, v))
        })
        .collect();
    keyed.sort_by_key(|(bucket, _)| *bucket); // stable: insertion order within a bucket
    keyed.into_iter().map(|(_, e)| e).collect()
}

// ---------------------------------------------------------------------------------------
// Status topic
// ---------------------------------------------------------------------------------------

/// Key prefix of a connector's status.
pub const CONNECTOR_STATUS_PREFIX: &str = "status-connector-";
/// Key prefix of a task's status (`status-task-<connector>-<n>`).
pub const TASK_STATUS_PREFIX: &str = "status-task-";
/// Key prefix of a topic's status (`status-topic-<topic>:connector-<connector>`).
pub const TOPIC_STATUS_PREFIX: &str = "status-topic-";
/// Separates topic and connector in a topic status key.
pub const TOPIC_STATUS_SEPARATOR: &str = ":connector-";

/// Kafka's `AbstractStatus.State`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Failed,
    /// Written when a connector or task is deleted; never shown to users.
    Destroyed,
    Restarting,
    Stopped,
}

impl State {
    /// The Java enum constant's name.
    pub fn name(self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
            State::Destroyed => "DESTROYED",
            State::Restarting => "RESTARTING",
            State::Stopped => "STOPPED",
        }
    }

    /// Java's `State.valueOf` (exact, case-sensitive).
    pub fn parse(name: &str) -> Option<State> {
        Some(match name {
            "UNASSIGNED" => State::Unassigned,
            "RUNNING" => State::Running,
            "PAUSED" => State::Paused,
            "FAILED" => State::Failed,
            "DESTROYED" => State::Destroyed,
            "RESTARTING" => State::Restarting,
            "STOPPED" => State::Stopped,
            _ => return None,
        })
    }
}

/// A connector's or task's status (`STATUS_SCHEMA_V0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    /// The failure's stack trace, for `FAILED`.
    pub trace: Option<String>,
    /// The worker's id (its REST URL host:port).
    pub worker_id: String,
    /// The group generation the status was written in.
    pub generation: i32,
}

/// A topic a connector used (KIP-558, `TOPIC_STATUS_VALUE_SCHEMA_V0`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicStatus {
    pub topic: String,
    pub connector: String,
    pub task: i32,
    /// Milliseconds since the epoch.
    pub discover_timestamp: i64,
}

/// A record of the status topic (`status.storage.topic`); `None` statuses are tombstones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusRecord {
    Connector {
        connector: String,
        status: Option<Status>,
    },
    Task {
        connector: String,
        task: i32,
        status: Option<Status>,
    },
    /// Keyed by the key's topic and connector; the value repeats them.
    Topic {
        topic: String,
        connector: String,
        status: Option<TopicStatus>,
    },
}

fn status_schema() -> SchemaRef {
    struct_schema(&[
        ("state", required(Type::String)),
        ("trace", optional(Type::String)),
        ("worker_id", required(Type::String)),
        ("generation", required(Type::Int32)),
    ])
}

fn topic_status_value_schema() -> SchemaRef {
    struct_schema(&[
        ("name", required(Type::String)),
        ("connector", required(Type::String)),
        ("task", required(Type::Int32)),
        ("discoverTimestamp", required(Type::Int64)),
    ])
}

fn encode_status(status: &Status) -> Result<Vec<u8>, StorageError> {
    let mut values = vec![("state", string(status.state.name()))];
    if let Some(trace) = &status.trace {
        values.push(("trace", string(trace)));
    }
    values.push(("worker_id", string(&status.worker_id)));
    values.push(("generation", Value::Int32(status.generation)));
    encode_struct(status_schema(), values)
}

/// Kafka's `parseConnectorStatus` / `parseTaskStatus`.
fn decode_status(bytes: &[u8]) -> Result<Status, StorageError> {
    let value = from_bytes(bytes)?;
    let what = "status";
    let entries = as_object(&value, what)?;
    let name = string_field(entries, "state", what)?;
    let state = State::parse(&name)
        .ok_or_else(|| StorageError::Malformed(format!("invalid status state {name}")))?;
    let trace = match field(entries, "trace") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return malformed(format!("status trace is a {}", other.kind())),
    };
    Ok(Status {
        state,
        trace,
        worker_id: string_field(entries, "worker_id", what)?,
        generation: long_field(entries, "generation", what)? as i32,
    })
}

fn encode_topic_status(status: &TopicStatus) -> Result<Vec<u8>, StorageError> {
    let inner = make_struct(
        topic_status_value_schema(),
        vec![
            ("name", string(&status.topic)),
            ("connector", string(&status.connector)),
            ("task", Value::Int32(status.task)),
            ("discoverTimestamp", Value::Int64(status.discover_timestamp)),
        ],
    )?;
    let schema = SchemaBuilder::map(required(Type::String), topic_status_value_schema()).build();
    let value = Value::Map(vec![(string("topic"), Value::Struct(inner))]);
    to_bytes(Some(&schema), &value)
}

fn decode_topic_status(bytes: &[u8]) -> Result<TopicStatus, StorageError> {
    let value = from_bytes(bytes)?;
    let entries = as_object(&value, "topic status value")?;
    let what = "topic status";
    let inner = match field(entries, "topic") {
        Some(Value::Map(inner)) => inner,
        _ => return malformed("invalid topic status value for field topic"),
    };
    Ok(TopicStatus {
        topic: string_field(inner, "name", what)?,
        connector: string_field(inner, "connector", what)?,
        task: long_field(inner, "task", what)? as i32,
        discover_timestamp: long_field(inner, "discoverTimestamp", what)?,
    })
}

/// Kafka's `readTopicStatus` key parsing: topic up to the first `:`, the connector after
/// the separator's length (Kafka does not check the separator's text).
fn parse_topic_status_key(key: &str) -> Result<(String, String), StorageError> {
    let invalid = || StorageError::InvalidKey(key.to_string());
    let delimiter = key.find(':').ok_or_else(invalid)?;
    if delimiter < TOPIC_STATUS_PREFIX.len() {
        return Err(invalid());
    }
    let topic = &key[TOPIC_STATUS_PREFIX.len()..delimiter];
    let connector = key
        .get(delimiter + TOPIC_STATUS_SEPARATOR.len()..)
        .ok_or_else(invalid)?;
    if topic.is_empty() || connector.is_empty() {
        return Err(invalid());
    }
    Ok((topic.to_string(), connector.to_string()))
}

impl StatusRecord {
    /// The record's key.
    pub fn key(&self) -> String {
        match self {
            StatusRecord::Connector { connector, .. } => {
                format!("{CONNECTOR_STATUS_PREFIX}{connector}")
            }
            StatusRecord::Task {
                connector, task, ..
            } => format!("{TASK_STATUS_PREFIX}{connector}-{task}"),
            StatusRecord::Topic {
                topic, connector, ..
            } => format!("{TOPIC_STATUS_PREFIX}{topic}{TOPIC_STATUS_SEPARATOR}{connector}"),
        }
    }

    /// The record's value as Kafka writes it; `None` is a tombstone.
    pub fn encode_value(&self) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            StatusRecord::Connector { status, .. } | StatusRecord::Task { status, .. } => {
                status.as_ref().map(encode_status).transpose()
            }
            StatusRecord::Topic { status, .. } => {
                status.as_ref().map(encode_topic_status).transpose()
            }
        }
    }

    /// The record's key and value.
    pub fn encode(&self) -> Result<(String, Option<Vec<u8>>), StorageError> {
        Ok((self.key(), self.encode_value()?))
    }

    /// Reads a record as Kafka's status topic consumer does. Errors where Kafka logs and
    /// skips the record.
    pub fn decode(key: &str, value: Option<&[u8]>) -> Result<StatusRecord, StorageError> {
        if let Some(connector) = key.strip_prefix(CONNECTOR_STATUS_PREFIX) {
            if connector.is_empty() {
                return Err(StorageError::InvalidKey(key.to_string()));
            }
            Ok(StatusRecord::Connector {
                connector: connector.to_string(),
                status: value.map(decode_status).transpose()?,
            })
        } else if key.starts_with(TASK_STATUS_PREFIX) {
            let (connector, task) = parse_task_key(key, 2)?;
            Ok(StatusRecord::Task {
                connector,
                task,
                status: value.map(decode_status).transpose()?,
            })
        } else if key.starts_with(TOPIC_STATUS_PREFIX) {
            let (topic, connector) = parse_topic_status_key(key)?;
            Ok(StatusRecord::Topic {
                topic,
                connector,
                status: value.map(decode_topic_status).transpose()?,
            })
        } else {
            Err(StorageError::InvalidKey(key.to_string()))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Standalone offsets file
// ---------------------------------------------------------------------------------------

/// One offset as stored: the offset topic's key bytes and value bytes (`None`: deleted).
pub type OffsetEntry = (Vec<u8>, Option<Vec<u8>>);

/// The first line of a Moldau standalone offsets file.
pub const OFFSETS_FILE_HEADER: &str = r#"{"format":"moldau-standalone-offsets","version":1}"#;

/// Encodes a standalone worker's offsets (`offset.storage.file.filename`).
///
/// Kafka's `FileOffsetBackingStore` writes a Java-serialized `HashMap<ByteBuffer,ByteBuffer>`,
/// which Moldau does not implement. Moldau's format instead is UTF-8 JSON lines:
///
/// * line 1: [`OFFSETS_FILE_HEADER`];
/// * then one line per entry, `{"key":"<key>","value":"<value>"}` where `<key>` and
///   `<value>` are the exact bytes of the offset topic's key and value (see [`OffsetKey`]
///   and [`encode_offset_value`]) as JSON strings, and `"value":null` is a deleted offset;
/// * every line ends with `\n`; a later line for the same key replaces an earlier one, so a
///   writer may append.
///
/// Key and value bytes must be UTF-8 (the internal JSON converter's always are).
pub fn encode_offsets_file(entries: &[OffsetEntry]) -> Result<String, StorageError> {
    let mut out = String::from(OFFSETS_FILE_HEADER);
    out.push('\n');
    let utf8 = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| StorageError::Malformed("offset bytes are not UTF-8".into()))
    };
    for (key, value) in entries {
        let mut line = serde_json::Map::new();
        line.insert("key".into(), serde_json::Value::String(utf8(key)?));
        let value = match value {
            Some(v) => serde_json::Value::String(utf8(v)?),
            None => serde_json::Value::Null,
        };
        line.insert("value".into(), value);
        out.push_str(&serde_json::Value::Object(line).to_string());
        out.push('\n');
    }
    Ok(out)
}

/// Decodes a file written by [`encode_offsets_file`] (or appended to): entries in order of
/// their first appearance, each with its last value (`None`: deleted). Blank lines are
/// skipped.
pub fn decode_offsets_file(text: &str) -> Result<Vec<OffsetEntry>, StorageError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header_ok = lines.next().is_some_and(|(_, l)| {
        serde_json::from_str::<serde_json::Value>(l).ok()
            == serde_json::from_str::<serde_json::Value>(OFFSETS_FILE_HEADER).ok()
    });
    if !header_ok {
        return malformed("not a Moldau standalone offsets file (bad or missing header)");
    }
    let mut entries: Vec<OffsetEntry> = Vec::new();
    for (n, line) in lines {
        let bad = || StorageError::Malformed(format!("offsets file line {}: bad entry", n + 1));
        let json: serde_json::Value = serde_json::from_str(line).map_err(|_| bad())?;
        let obj = json.as_object().ok_or_else(bad)?;
        if obj.len() != 2 {
            return Err(bad());
        }
        let key = obj.get("key").and_then(|k| k.as_str()).ok_or_else(bad)?;
        let value = match obj.get("value") {
            Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(v)) => Some(v.as_bytes().to_vec()),
            _ => return Err(bad()),
        };
        let key = key.as_bytes().to_vec();
        match entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: Option<Vec<u8>>) -> String {
        String::from_utf8(bytes.expect("not a tombstone")).unwrap()
    }

    fn props(entries: &[(&str, Option<&str>)]) -> Properties {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    /// Encodes, checks key and value bytes, decodes and checks the round trip.
    fn config_case(record: ConfigRecord, key: &str, json: Option<&str>) {
        let (k, v) = record.encode().unwrap();
        assert_eq!(k, key);
        assert_eq!(v.as_deref().map(|b| std::str::from_utf8(b).unwrap()), json);
        assert_eq!(ConfigRecord::decode(&k, v.as_deref()).unwrap(), record);
    }

    #[test]
    fn storage_config_records_round_trip_byte_exact() {
        config_case(
            ConfigRecord::ConnectorConfig {
                connector: "local-file-source".into(),
                properties: props(&[
                    ("connector.class", Some("FileStreamSource")),
                    ("tasks.max", Some("1")),
                    ("file", None),
                ]),
            },
            "connector-local-file-source",
            Some(
                r#"{"properties":{"connector.class":"FileStreamSource","tasks.max":"1","file":null}}"#,
            ),
        );
        config_case(
            ConfigRecord::ConnectorConfigRemoved {
                connector: "c".into(),
            },
            "connector-c",
            None,
        );
        config_case(
            ConfigRecord::TaskConfig {
                connector: "my-conn".into(),
                task: 3,
                properties: props(&[("task.class", Some("T"))]),
            },
            "task-my-conn-3",
            Some(r#"{"properties":{"task.class":"T"}}"#),
        );
        config_case(
            ConfigRecord::TasksCommit {
                connector: "my-conn".into(),
                tasks: 2,
            },
            "commit-my-conn",
            Some(r#"{"tasks":2}"#),
        );
        config_case(
            ConfigRecord::TargetState {
                connector: "c".into(),
                state: TargetState::Stopped,
            },
            "target-state-c",
            Some(r#"{"state":"PAUSED","state.v2":"STOPPED"}"#),
        );
        config_case(
            ConfigRecord::TargetState {
                connector: "c".into(),
                state: TargetState::Started,
            },
            "target-state-c",
            Some(r#"{"state":"STARTED","state.v2":"STARTED"}"#),
        );
        config_case(
            ConfigRecord::TargetStateRemoved {
                connector: "c".into(),
            },
            "target-state-c",
            None,
        );
        config_case(
            ConfigRecord::TaskCount {
                connector: "c".into(),
                task_count: 4,
            },
            "tasks-fencing-c",
            Some(r#"{"task-count":4}"#),
        );
        config_case(
            ConfigRecord::SessionKey {
                key: vec![0, 1, 2, 255],
                algorithm: "HmacSHA256".into(),
                creation_timestamp: 1_700_000_000_000,
            },
            "session-key",
            Some(
                r#"{"key":"AAEC/w==","algorithm":"HmacSHA256","creation-timestamp":1700000000000}"#,
            ),
        );
        config_case(
            ConfigRecord::RestartRequest {
                connector: "c".into(),
                include_tasks: true,
                only_failed: false,
            },
            "restart-connector-c",
            Some(r#"{"include-tasks":true,"only-failed":false}"#),
        );
        config_case(
            ConfigRecord::LoggerLevel {
                namespace: "org.apache.kafka.connect".into(),
                level: "DEBUG".into(),
            },
            "logger-cluster-org.apache.kafka.connect",
            Some(r#"{"level":"DEBUG"}"#),
        );
    }

    #[test]
    fn storage_config_decode_like_kafka() {
        let d = |k: &str, v: &str| ConfigRecord::decode(k, Some(v.as_bytes()));
        // A pre-3.5 worker's target state has no state.v2; a bad state.v2 falls back.
        for v in [
            r#"{"state":"PAUSED"}"#,
            r#"{"state":"PAUSED","state.v2":5}"#,
        ] {
            assert_eq!(
                d("target-state-c", v).unwrap(),
                ConfigRecord::TargetState {
                    connector: "c".into(),
                    state: TargetState::Paused
                }
            );
        }
        assert!(d("target-state-c", r#"{"state":"PAUSED","state.v2":"GONE"}"#).is_err());
        // Kafka's parseTaskId: split on '-', last part the task number.
        assert_eq!(
            d("task-a--b-7", r#"{"properties":{}}"#).unwrap(),
            ConfigRecord::TaskConfig {
                connector: "a--b".into(),
                task: 7,
                properties: vec![]
            }
        );
        // Restart flags default to false when missing or not booleans.
        assert_eq!(
            d("restart-connector-c", r#"{"only-failed":"yes"}"#).unwrap(),
            ConfigRecord::RestartRequest {
                connector: "c".into(),
                include_tasks: false,
                only_failed: false
            }
        );
        // `tasks` may be any integer JSON number.
        assert_eq!(
            d("commit-c", r#"{"tasks":12}"#).unwrap(),
            ConfigRecord::TasksCommit {
                connector: "c".into(),
                tasks: 12
            }
        );
    }

    #[test]
    fn storage_config_malformed_records_are_errors() {
        let d = |k: &str, v: Option<&str>| ConfigRecord::decode(k, v.map(str::as_bytes));
        assert!(matches!(
            d("connector-c", Some("{not json")),
            Err(StorageError::Convert(_))
        ));
        assert!(matches!(
            d("unknown-key", Some("{}")),
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            d("task-c-x", Some(r#"{"properties":{}}"#)),
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            d("task-0", Some(r#"{"properties":{}}"#)),
            Err(StorageError::InvalidKey(_))
        ));
        for (key, value) in [
            ("connector-c", Some("[1,2]")),
            ("connector-c", Some(r#"{"properties":"x"}"#)),
            ("connector-c", Some(r#"{"properties":{"a":1}}"#)),
            ("task-c-0", None),
            ("task-c-0", Some("{}")),
            ("commit-c", None),
            ("commit-c", Some(r#"{"tasks":"2"}"#)),
            ("commit-c", Some(r#"{"tasks":2.5}"#)),
            ("target-state-c", Some(r#"{"state":7}"#)),
            ("target-state-c", Some(r#""RUNNING""#)),
            ("tasks-fencing-c", Some(r#"{}"#)),
            ("session-key", None),
            (
                "session-key",
                Some(r#"{"key":"!!","algorithm":"a","creation-timestamp":1}"#),
            ),
            (
                "session-key",
                Some(r#"{"key":"AA==","algorithm":"a","creation-timestamp":1.5}"#),
            ),
            (
                "session-key",
                Some(r#"{"key":"AA==","creation-timestamp":1}"#),
            ),
            ("restart-connector-c", None),
            ("logger-cluster-x", None),
            ("logger-cluster-x", Some(r#"{"level":null}"#)),
        ] {
            assert!(
                matches!(d(key, value), Err(StorageError::Malformed(_))),
                "{key} {value:?}"
            );
        }
    }

    fn partition() -> OffsetMap {
        vec![("filename".into(), Value::String("/tmp/test.txt".into()))]
    }

    #[test]
    fn storage_offset_records_byte_exact() {
        let key = OffsetKey::new("local-file-source", partition());
        let bytes = key.encode().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"["local-file-source",{"filename":"/tmp/test.txt"}]"#
        );
        assert_eq!(OffsetKey::decode(&bytes).unwrap(), key);

        let offset: OffsetMap = vec![("position".into(), Value::Int64(42))];
        let value = encode_offset_value(Some(&offset)).unwrap();
        assert_eq!(text(value.clone()), r#"{"position":42}"#);
        assert_eq!(decode_offset_value(value.as_deref()).unwrap(), Some(offset));

        // KIP-875: a deleted offset is a tombstone.
        assert_eq!(encode_offset_value(None).unwrap(), None);
        assert_eq!(decode_offset_value(None).unwrap(), None);
        assert_eq!(decode_offset_value(Some(b"null")).unwrap(), None);

        // Other primitives as Kafka's JsonConverter writes them; ints read back as longs.
        let mixed: OffsetMap = vec![
            ("i".into(), Value::Int32(7)),
            ("f".into(), Value::Float64(1.5)),
            ("b".into(), Value::Boolean(true)),
            ("n".into(), Value::Null),
            ("bytes".into(), Value::Bytes(vec![1, 2, 3])),
        ];
        let value = encode_offset_value(Some(&mixed)).unwrap();
        assert_eq!(
            text(value.clone()),
            r#"{"i":7,"f":1.5,"b":true,"n":null,"bytes":"AQID"}"#
        );
        let back = decode_offset_value(value.as_deref()).unwrap().unwrap();
        assert_eq!(back[0], ("i".into(), Value::Int64(7)));
        assert_eq!(back[1], ("f".into(), Value::Float64(1.5)));

        // Key order is the map's order, not sorted.
        let key = OffsetKey::new(
            "c",
            vec![
                ("z".into(), Value::Int64(1)),
                ("a".into(), Value::String("x".into())),
            ],
        );
        assert_eq!(key.encode().unwrap(), br#"["c",{"z":1,"a":"x"}]"#.to_vec());
    }

    #[test]
    fn storage_offset_malformed() {
        let nested = vec![("x".to_string(), Value::Array(vec![]))];
        assert!(OffsetKey::new("c", nested.clone()).encode().is_err());
        assert!(encode_offset_value(Some(&nested)).is_err());
        for bad in [
            "i-am-not-json",
            r#"{"a":1}"#,
            r#"["c"]"#,
            r#"["c",{},1]"#,
            r#"[1,{}]"#,
            r#"["c","p"]"#,
            r#"["c",null]"#,
        ] {
            assert!(OffsetKey::decode(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(decode_offset_value(Some(b"[1]")).is_err());
        assert!(decode_offset_value(Some(b"{")).is_err());
    }

    #[test]
    fn storage_murmur2_kafka_vectors() {
        // Kafka's UtilsTest.testMurmur2.
        for (data, hash) in [
            (&b"21"[..], -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ] {
            assert_eq!(murmur2(data), hash, "{:?}", std::str::from_utf8(data));
        }
        assert_eq!(to_positive(-973932308), 1173551340);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(default_partition(b"21", 25), 1173551340 % 25);
        assert_eq!(default_partition(b"abc", 1), 0);
        let key = OffsetKey::new("c", partition());
        let p = key.topic_partition(25).unwrap();
        assert_eq!(p, to_positive(murmur2(&key.encode().unwrap())) % 25);
    }

    #[test]
    fn storage_java_hash_map_order() {
        // Orders printed by a JVM's `new HashMap<>()` after put()s in this order.
        let keys = [
            "filename",
            "position",
            "topic",
            "partition",
            "server",
            "database",
            "table",
            "lsn",
            "a",
            "Aa",
            "BB",
        ];
        let ordered = java_hash_map_order(keys.iter().map(|k| (k.to_string(), ())).collect());
        let names: Vec<&str> = ordered.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names.join(","),
            "Aa,BB,server,a,database,filename,partition,lsn,topic,position,table"
        );
        let many: Vec<(String, ())> = (0..20).map(|i| (format!("key{}", i * 7), ())).collect();
        let names: Vec<String> = java_hash_map_order(many)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            names.join(","),
            "key0,key91,key119,key84,key7,key105,key70,key126,key77,key21,key98,key42,key112,key63,key133,key14,key35,key56,key28,key49"
        );
        assert_eq!(java_string_hash("Aa"), java_string_hash("BB"));
        assert_eq!(java_string_hash("hello"), 99162322);
    }

    fn status_case(record: StatusRecord, key: &str, json: Option<&str>) {
        let (k, v) = record.encode().unwrap();
        assert_eq!(k, key);
        assert_eq!(v.as_deref().map(|b| std::str::from_utf8(b).unwrap()), json);
        assert_eq!(StatusRecord::decode(&k, v.as_deref()).unwrap(), record);
    }

    #[test]
    fn storage_status_records_round_trip_byte_exact() {
        status_case(
            StatusRecord::Connector {
                connector: "my-conn".into(),
                status: Some(Status {
                    state: State::Running,
                    trace: None,
                    worker_id: "10.0.0.1:8083".into(),
                    generation: 3,
                }),
            },
            "status-connector-my-conn",
            Some(r#"{"state":"RUNNING","trace":null,"worker_id":"10.0.0.1:8083","generation":3}"#),
        );
        status_case(
            StatusRecord::Task {
                connector: "my-conn".into(),
                task: 2,
                status: Some(Status {
                    state: State::Failed,
                    trace: Some(
                        "org.apache.kafka.connect.errors.ConnectException: boom\n\tat X".into(),
                    ),
                    worker_id: "w:8083".into(),
                    generation: 0,
                }),
            },
            "status-task-my-conn-2",
            Some(
                r#"{"state":"FAILED","trace":"org.apache.kafka.connect.errors.ConnectException: boom\n\tat X","worker_id":"w:8083","generation":0}"#,
            ),
        );
        status_case(
            StatusRecord::Task {
                connector: "c".into(),
                task: 0,
                status: None,
            },
            "status-task-c-0",
            None,
        );
        status_case(
            StatusRecord::Connector {
                connector: "c".into(),
                status: None,
            },
            "status-connector-c",
            None,
        );
        status_case(
            StatusRecord::Topic {
                topic: "orders".into(),
                connector: "sink".into(),
                status: Some(TopicStatus {
                    topic: "orders".into(),
                    connector: "sink".into(),
                    task: 0,
                    discover_timestamp: 1_600_000_000_000,
                }),
            },
            "status-topic-orders:connector-sink",
            Some(
                r#"{"topic":{"name":"orders","connector":"sink","task":0,"discoverTimestamp":1600000000000}}"#,
            ),
        );
        status_case(
            StatusRecord::Topic {
                topic: "orders".into(),
                connector: "sink".into(),
                status: None,
            },
            "status-topic-orders:connector-sink",
            None,
        );
        for state in [
            State::Unassigned,
            State::Running,
            State::Paused,
            State::Failed,
            State::Destroyed,
            State::Restarting,
            State::Stopped,
        ] {
            assert_eq!(State::parse(state.name()), Some(state));
        }
    }

    #[test]
    fn storage_status_malformed_like_kafka() {
        // Keys KafkaStatusBackingStoreFormatTest discards.
        let value =
            Some(&br#"{"state":"RUNNING","trace":null,"worker_id":"w","generation":1}"#[..]);
        for key in [
            "status-unknown",
            "status-connector-",
            "status-task-",
            "status-task-foo-#",
            "status-topic-",
            "status-topic-:connector-",
            "status-topic-foo:",
            "status-topic-foo:connector-",
        ] {
            assert!(
                matches!(
                    StatusRecord::decode(key, value),
                    Err(StorageError::InvalidKey(_))
                ),
                "{key}"
            );
        }
        for bad in [
            "invalid",
            "[]",
            r#"{"state":"RUNNING","worker_id":"w"}"#,
            r#"{"state":"running","worker_id":"w","generation":1}"#,
            r#"{"state":"RUNNING","worker_id":"w","generation":"1"}"#,
            r#"{"state":"RUNNING","worker_id":"w","generation":1.0}"#,
            r#"{"state":"RUNNING","trace":3,"worker_id":"w","generation":1}"#,
        ] {
            assert!(StatusRecord::decode("status-connector-c", Some(bad.as_bytes())).is_err());
            assert!(StatusRecord::decode("status-task-c-1", Some(bad.as_bytes())).is_err());
        }
        for bad in [
            r#"{"topic":5}"#,
            r#"{"name":"t"}"#,
            r#"{"topic":{"name":"t","connector":"c","task":0}}"#,
        ] {
            assert!(
                StatusRecord::decode("status-topic-t:connector-c", Some(bad.as_bytes())).is_err()
            );
        }
    }

    #[test]
    fn storage_offsets_file_round_trip() {
        let key = OffsetKey::new("c", partition()).encode().unwrap();
        let value =
            encode_offset_value(Some(&vec![("position".into(), Value::Int64(42))])).unwrap();
        let entries = vec![(key.clone(), value), (b"[\"d\",{}]".to_vec(), None)];
        let file = encode_offsets_file(&entries).unwrap();
        assert_eq!(
            file,
            concat!(
                r#"{"format":"moldau-standalone-offsets","version":1}"#,
                "\n",
                r#"{"key":"[\"c\",{\"filename\":\"/tmp/test.txt\"}]","value":"{\"position\":42}"}"#,
                "\n",
                r#"{"key":"[\"d\",{}]","value":null}"#,
                "\n"
            )
        );
        assert_eq!(decode_offsets_file(&file).unwrap(), entries);
        // Appended lines replace earlier values.
        let appended = format!("{file}{}\n", r#"{"key":"[\"d\",{}]","value":"{}"}"#);
        assert_eq!(
            decode_offsets_file(&appended).unwrap()[1],
            (b"[\"d\",{}]".to_vec(), Some(b"{}".to_vec()))
        );
        for bad in [
            "",
            "{}\n",
            &format!("{OFFSETS_FILE_HEADER}\n{{\"key\":1,\"value\":null}}\n"),
            &format!("{OFFSETS_FILE_HEADER}\n{{\"key\":\"k\"}}\n"),
            &format!("{OFFSETS_FILE_HEADER}\nnot json\n"),
        ] {
            assert!(decode_offsets_file(bad).is_err(), "{bad}");
        }
        assert!(encode_offsets_file(&[(vec![0xff], None)]).is_err());
    }
}
