//! Kafka's example connectors, `FileStreamSource` and `FileStreamSink`
//! (`org.apache.kafka.connect.file.*`): lines of a file into a topic, records of topics
//! into a file, with Kafka's keys and offsets (`{"filename": ..}` / `{"position": ..}`),
//! so an existing standalone setup and its offsets carry over.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::config::{
    key, parse_config, ConfigType, ConnectorType, DefaultValue, Key, Props, Validator,
};
use crate::connector::{
    ConnectError, Connector, ConnectorContext, Plugin, SinkTask, SourceRecord, SourceTask,
    TaskContext,
};
use crate::data::{Schema, Type, Value};
use crate::record::ConnectRecord;
use crate::storage::OffsetMap;

pub const SOURCE_CLASS: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
pub const SINK_CLASS: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";
const VERSION: &str = env!("CARGO_PKG_VERSION");

const FILE: &str = "file";
const TOPIC: &str = "topic";
const BATCH_SIZE: &str = "batch.size";

fn non_blank(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        Err("String must be non-empty".into())
    } else if s.contains(',') {
        Err("FileStreamSourceConnector supports exactly one topic".into())
    } else {
        Ok(())
    }
}

const SOURCE_KEYS: &[Key] = &[
    key(FILE, ConfigType::String, DefaultValue::Null, Validator::None)
        .doc("Source filename. If not specified, the standard input will be used")
        .importance("HIGH"),
    key(TOPIC, ConfigType::String, DefaultValue::Required, Validator::Custom(non_blank))
        .doc("The topic to publish data to")
        .importance("HIGH"),
    key(BATCH_SIZE, ConfigType::Int, DefaultValue::Value("2000"), Validator::None)
        .doc("The maximum number of records the source task can read from the file each time it is polled"),
];

const SINK_KEYS: &[Key] = &[key(
    FILE,
    ConfigType::String,
    DefaultValue::Null,
    Validator::None,
)
.doc("Destination filename. If not specified, the standard output will be used")
.importance("HIGH")];

pub const SOURCE_PLUGIN: Plugin = Plugin {
    class: SOURCE_CLASS,
    task_class: "org.apache.kafka.connect.file.FileStreamSourceTask",
    connector_type: ConnectorType::Source,
    version: VERSION,
    config_keys: SOURCE_KEYS,
    new_connector: || {
        Box::new(FileConnector {
            keys: SOURCE_KEYS,
            props: Props::new(),
        })
    },
    new_source_task: Some(|| Box::new(FileSourceTask::default())),
    new_sink_task: None,
};

pub const SINK_PLUGIN: Plugin = Plugin {
    class: SINK_CLASS,
    task_class: "org.apache.kafka.connect.file.FileStreamSinkTask",
    connector_type: ConnectorType::Sink,
    version: VERSION,
    config_keys: SINK_KEYS,
    new_connector: || {
        Box::new(FileConnector {
            keys: SINK_KEYS,
            props: Props::new(),
        })
    },
    new_source_task: None,
    new_sink_task: Some(|| Box::new(FileSinkTask::default())),
};

/// Both connectors: one task for a source (a file has one reader), `max_tasks` copies of
/// the config for a sink, as Kafka's.
struct FileConnector {
    keys: &'static [Key],
    props: Props,
}

#[async_trait]
impl Connector for FileConnector {
    async fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<(), ConnectError> {
        parse_config(self.keys, props).map_err(|e| ConnectError::Config(e.to_string()))?;
        self.props = props.clone();
        Ok(())
    }

    async fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<Props>, ConnectError> {
        let n = if self.keys.len() == SOURCE_KEYS.len() {
            1
        } else {
            max_tasks
        };
        Ok(vec![self.props.clone(); n])
    }

    async fn stop(&mut self) {}

    /// Kafka's FileStreamSourceConnector accepts offsets for its own file partition with a
    /// `position` that is a non-negative number.
    fn alter_offsets(
        &self,
        _props: &Props,
        offsets: &[(OffsetMap, Option<OffsetMap>)],
    ) -> Result<bool, ConnectError> {
        if self.keys.len() != SOURCE_KEYS.len() {
            return Ok(true);
        }
        for (partition, offset) in offsets {
            if !partition.iter().any(|(k, _)| k == "filename") {
                return Err(ConnectError::Config(
                    "Partition objects should contain the key 'filename'".into(),
                ));
            }
            if let Some(offset) = offset {
                match offset.iter().find(|(k, _)| k == "position") {
                    Some((_, Value::Int64(p))) if *p >= 0 => {}
                    Some((_, Value::Int32(p))) if *p >= 0 => {}
                    Some(_) => {
                        return Err(ConnectError::Config(
                            "The value for the 'position' key in the offset is expected to be a \
                             non-negative Long value"
                                .into(),
                        ))
                    }
                    None => {
                        return Err(ConnectError::Config(
                            "Offset objects should either be null or contain the key 'position'"
                                .into(),
                        ))
                    }
                }
            }
        }
        Ok(true)
    }
}

/// Reads the file from the committed position; a line is emitted only when its newline
/// has arrived (a half-written last line waits).
#[derive(Default)]
pub struct FileSourceTask {
    path: Option<PathBuf>,
    topic: String,
    batch_size: usize,
    file: Option<tokio::fs::File>,
    /// The file position of `buffer`'s first byte.
    position: u64,
    buffer: Vec<u8>,
    stdin: Option<tokio::io::Stdin>,
}

impl FileSourceTask {
    fn partition(&self) -> OffsetMap {
        let name = self
            .path
            .as_ref()
            .map(|p| Value::String(p.display().to_string()))
            .unwrap_or(Value::Null);
        vec![("filename".into(), name)]
    }

    /// Complete lines in the buffer, `\n`, `\r` or `\r\n` ended, as Kafka's task splits.
    fn take_lines(&mut self) -> Vec<(String, u64)> {
        let mut lines = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buffer.len() && lines.len() < self.batch_size {
            let b = self.buffer[i];
            if b == b'\n' || b == b'\r' {
                // A `\r` at the buffer's end may be the first half of `\r\n`: wait.
                if b == b'\r' && i + 1 == self.buffer.len() {
                    break;
                }
                let end = i;
                if b == b'\r' && self.buffer[i + 1] == b'\n' {
                    i += 1;
                }
                i += 1;
                let line = String::from_utf8_lossy(&self.buffer[start..end]).into_owned();
                lines.push((line, self.position + i as u64));
                start = i;
                continue;
            }
            i += 1;
        }
        self.buffer.drain(..start);
        self.position += start as u64;
        lines
    }
}

#[async_trait]
impl SourceTask for FileSourceTask {
    async fn start(&mut self, props: &Props, ctx: TaskContext) -> Result<(), ConnectError> {
        let c =
            parse_config(SOURCE_KEYS, props).map_err(|e| ConnectError::Config(e.to_string()))?;
        self.path = c.string(FILE).filter(|f| !f.is_empty()).map(PathBuf::from);
        self.topic = c.string(TOPIC).unwrap_or_default();
        self.batch_size = c.num(BATCH_SIZE).unwrap_or(2000).max(1) as usize;
        if self.path.is_some() {
            let committed = ctx.offsets.offset(&self.partition());
            self.position = committed
                .and_then(|o| {
                    o.into_iter().find_map(|(k, v)| match (k.as_str(), v) {
                        ("position", Value::Int64(p)) => Some(p.max(0) as u64),
                        ("position", Value::Int32(p)) => Some(p.max(0) as u64),
                        _ => None,
                    })
                })
                .unwrap_or(0);
        } else {
            self.stdin = Some(tokio::io::stdin());
        }
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectError> {
        if self.stdin.is_none() && self.file.is_none() {
            let path = self.path.clone().expect("a file when not stdin");
            match tokio::fs::File::open(&path).await {
                Ok(mut f) => {
                    f.seek(SeekFrom::Start(self.position)).await.map_err(|e| {
                        ConnectError::Fatal(format!("seek in {}: {e}", path.display()))
                    })?;
                    self.file = Some(f);
                }
                // Kafka's task waits for the file to appear.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    return Ok(Vec::new());
                }
                Err(e) => {
                    return Err(ConnectError::Fatal(format!(
                        "Couldn't find or open file {} for FileStreamSourceTask: {e}",
                        path.display()
                    )))
                }
            }
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let n = match (&mut self.file, &mut self.stdin) {
            (Some(f), _) => f.read(&mut chunk).await,
            (None, Some(s)) => s.read(&mut chunk).await,
            (None, None) => Ok(0),
        }
        .map_err(|e| ConnectError::Fatal(format!("Error while reading from file: {e}")))?;
        self.buffer.extend_from_slice(&chunk[..n]);
        let lines = self.take_lines();
        if lines.is_empty() {
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            return Ok(Vec::new());
        }
        let partition = self.partition();
        let schema = Schema::primitive(Type::String, false);
        Ok(lines
            .into_iter()
            .map(|(line, next_position)| SourceRecord {
                source_partition: partition.clone(),
                source_offset: vec![("position".into(), Value::Int64(next_position as i64))],
                record: ConnectRecord::new(
                    self.topic.clone(),
                    Some(schema.clone()),
                    Value::String(line),
                ),
            })
            .collect())
    }

    async fn stop(&mut self) {
        self.file = None;
    }
}

/// Appends each record's value, one per line, flushed (and synced) on `flush`.
#[derive(Default)]
pub struct FileSinkTask {
    path: Option<PathBuf>,
    file: Option<tokio::fs::File>,
}

#[async_trait]
impl SinkTask for FileSinkTask {
    async fn start(&mut self, props: &Props, _ctx: TaskContext) -> Result<(), ConnectError> {
        let c = parse_config(SINK_KEYS, props).map_err(|e| ConnectError::Config(e.to_string()))?;
        self.path = c.string(FILE).filter(|f| !f.is_empty()).map(PathBuf::from);
        if let Some(path) = &self.path {
            let f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .map_err(|e| {
                    ConnectError::Fatal(format!(
                        "Couldn't find or create file '{}' for FileStreamSinkTask: {e}",
                        path.display()
                    ))
                })?;
            self.file = Some(f);
        }
        Ok(())
    }

    async fn put(&mut self, records: Vec<ConnectRecord>) -> Result<(), ConnectError> {
        let mut out = String::new();
        for r in &records {
            out.push_str(&java_to_string(&r.value));
            out.push('\n');
        }
        match &mut self.file {
            Some(f) => f
                .write_all(out.as_bytes())
                .await
                .map_err(|e| ConnectError::Retriable(format!("write to file: {e}"))),
            None => {
                print!("{out}");
                Ok(())
            }
        }
    }

    async fn flush(&mut self, _offsets: &[(String, i32, i64)]) -> Result<(), ConnectError> {
        if let Some(f) = &mut self.file {
            f.flush()
                .await
                .and(f.sync_data().await)
                .map_err(|e| ConnectError::Retriable(format!("flush file: {e}")))?;
        }
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(mut f) = self.file.take() {
            let _ = f.flush().await;
        }
    }
}

/// Java's `String.valueOf(value)` for Connect data, as Kafka's FileStreamSinkTask prints.
pub fn java_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        Value::Boolean(b) => b.to_string(),
        Value::Int8(n) => n.to_string(),
        Value::Int16(n) => n.to_string(),
        Value::Int32(n) => n.to_string(),
        Value::Int64(n) => n.to_string(),
        Value::Float32(f) => format!("{f:?}"),
        Value::Float64(f) => format!("{f:?}"),
        Value::Bytes(b) => format!("[B@{:x}", b.len()),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(java_to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}={}", java_to_string(k), java_to_string(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Struct(s) => format!(
            "Struct{{{}}}",
            s.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(f, v)| format!("{}={}", f.name, java_to_string(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => format!("{other:?}"),
    }
}
