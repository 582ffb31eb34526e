//! The connector API: Kafka Connect's `Connector`, `SourceTask` and `SinkTask` contracts,
//! in Rust. Built-in connectors implement these; the worker (`worker/`) runs them.
//!
//! A [`Plugin`] names a connector class (Kafka's or Debezium's class name, so existing
//! connector JSON works unchanged), its type, its own configuration keys and how to make
//! its connector and tasks. The connector splits its work into task configurations; each
//! task runs on its own tokio task:
//!
//! * a [`SourceTask`] is polled for [`SourceRecord`]s; the worker converts, transforms and
//!   produces them, and writes their source offsets to the offset store once Kafka has
//!   acknowledged every record before them, then calls [`SourceTask::commit`];
//! * a [`SinkTask`] is given consumed records with [`SinkTask::put`]; before the worker
//!   commits the consumer's offsets it calls [`SinkTask::flush`], so an offset is committed
//!   only for records the task has written to its store.
//!
//! Errors: [`ConnectError::Retriable`] is retried by the worker (a sink batch is given
//! again after a backoff, as Kafka's `RetriableException`); anything else fails the task,
//! which then shows `FAILED` with the error as its trace.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::config::{ConnectorType, Key, Props};
use crate::record::ConnectRecord;
use crate::storage::OffsetMap;

/// An error of a connector or task.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// A configuration the connector cannot run with (Kafka's `ConfigException`).
    #[error("{0}")]
    Config(String),
    /// A transient failure: the worker retries (Kafka's `RetriableException`).
    #[error("{0}")]
    Retriable(String),
    /// The task or connector fails (Kafka's `ConnectException`).
    #[error("{0}")]
    Fatal(String),
}

impl ConnectError {
    /// The Java class Kafka would name in a trace.
    pub fn class_name(&self) -> &'static str {
        match self {
            ConnectError::Config(_) => "org.apache.kafka.common.config.ConfigException",
            ConnectError::Retriable(_) => "org.apache.kafka.connect.errors.RetriableException",
            ConnectError::Fatal(_) => "org.apache.kafka.connect.errors.ConnectException",
        }
    }

    pub fn is_retriable(&self) -> bool {
        matches!(self, ConnectError::Retriable(_))
    }
}

/// A record a source task produced, with where it came from (Kafka's `SourceRecord`).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceRecord {
    /// Which part of the source the record is from (a file, a table, a binlog), as
    /// `{"key": value}` pairs; offsets are kept per source partition.
    pub source_partition: OffsetMap,
    /// How far into that partition this record is; a restarted task resumes after it.
    pub source_offset: OffsetMap,
    /// Topic, key, value, headers, timestamp; `kafka_offset` is unused.
    pub record: ConnectRecord,
}

/// The committed source offsets a task resumes from (Kafka's `OffsetStorageReader`): a
/// snapshot the worker read before starting the task.
pub trait OffsetStorageReader: Send + Sync {
    /// The last committed offset of one source partition.
    fn offset(&self, partition: &OffsetMap) -> Option<OffsetMap>;
}

/// What a connector or task may tell the worker beyond its return values.
#[derive(Clone, Debug, Default)]
pub struct StatusReporter {
    warning: Arc<Mutex<Option<String>>>,
    reconfigure: Arc<std::sync::atomic::AtomicBool>,
}

impl StatusReporter {
    /// A warning shown in `/status` (in the task's or connector's `warning` field) and
    /// logged once when it changes; `None` clears it. For example: the replication slot's
    /// retained WAL or the binlog retention is about to be exceeded.
    pub fn set_warning(&self, warning: Option<String>) {
        let mut w = self.warning.lock();
        if *w != warning {
            if let Some(m) = &warning {
                tracing::warn!("{m}");
            }
            *w = warning;
        }
    }

    pub fn warning(&self) -> Option<String> {
        self.warning.lock().clone()
    }

    /// Kafka's `ConnectorContext.requestTaskReconfiguration`: the worker asks the
    /// connector for its task configs again (for example: the tables to capture changed).
    pub fn request_task_reconfiguration(&self) {
        self.reconfigure
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether a reconfiguration was requested since the last call.
    pub fn take_reconfiguration_request(&self) -> bool {
        self.reconfigure
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

/// What the worker gives a starting connector.
#[derive(Clone)]
pub struct ConnectorContext {
    /// The connector's name.
    pub name: String,
    /// The worker's `bootstrap.servers` and client security settings, as librdkafka
    /// properties, for connectors that keep their own topics (Debezium's schema history).
    pub kafka_client_props: Props,
    pub status: StatusReporter,
    /// The committed source offsets (sources only; empty for sinks).
    pub offsets: Arc<dyn OffsetStorageReader>,
}

/// What the worker gives a starting task.
#[derive(Clone)]
pub struct TaskContext {
    /// The connector's name.
    pub connector: String,
    /// The task's number.
    pub task: i32,
    /// As [`ConnectorContext::kafka_client_props`].
    pub kafka_client_props: Props,
    pub status: StatusReporter,
    /// The committed source offsets (sources only).
    pub offsets: Arc<dyn OffsetStorageReader>,
}

/// Kafka's `Connector`: configures the work and splits it into task configurations.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Errors beyond the keys' own checks, as (key, message): Kafka's `Connector.validate`
    /// (for example: the database is unreachable with these settings). Runs on the REST
    /// request's behalf, so it must finish within a few seconds.
    async fn validate(&self, _props: &Props) -> Vec<(String, String)> {
        Vec::new()
    }

    async fn start(&mut self, props: &Props, ctx: ConnectorContext) -> Result<(), ConnectError>;

    /// The configurations of at most `max_tasks` tasks.
    async fn task_configs(&mut self, max_tasks: usize) -> Result<Vec<Props>, ConnectError>;

    async fn stop(&mut self);

    /// KIP-875: whether the connector accepts these offsets written by
    /// `PATCH /connectors/{name}/offsets` (`None`: a reset). Kafka's default refuses.
    fn alter_offsets(
        &self,
        _props: &Props,
        _offsets: &[(OffsetMap, Option<OffsetMap>)],
    ) -> Result<bool, ConnectError> {
        Ok(false)
    }
}

/// Kafka's `SourceTask`.
#[async_trait]
pub trait SourceTask: Send {
    async fn start(&mut self, props: &Props, ctx: TaskContext) -> Result<(), ConnectError>;

    /// The next records. When none are ready the task waits a little (at most about one
    /// second) and returns an empty batch, so the worker can flush offsets, pause and stop.
    async fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectError>;

    /// Kafka's `SourceTask.commit`: the offsets of every record returned so far that Kafka
    /// acknowledged are now in the offset store (a CDC task may let its database free the
    /// log up to them).
    async fn commit(&mut self) -> Result<(), ConnectError> {
        Ok(())
    }

    async fn stop(&mut self);
}

/// Kafka's `SinkTask`.
#[async_trait]
pub trait SinkTask: Send {
    async fn start(&mut self, props: &Props, ctx: TaskContext) -> Result<(), ConnectError>;

    /// Records consumed, converted and transformed, in offset order per partition; each has
    /// `topic`, `partition` and `kafka_offset` set. The task may write them at once or
    /// buffer them until [`SinkTask::flush`]. A [`ConnectError::Retriable`] makes the
    /// worker give the same records again after a backoff.
    async fn put(&mut self, records: Vec<ConnectRecord>) -> Result<(), ConnectError>;

    /// Write out everything put so far: the worker then commits the consumer offsets of
    /// those records. `offsets` are the next offsets to consume per (topic, partition).
    async fn flush(&mut self, _offsets: &[(String, i32, i64)]) -> Result<(), ConnectError> {
        Ok(())
    }

    async fn stop(&mut self);
}

/// A built-in connector class.
#[derive(Clone, Copy)]
pub struct Plugin {
    /// The class name users write in `connector.class` (Kafka's, Debezium's, Confluent's).
    pub class: &'static str,
    /// The task class Kafka names in task configs (`task.class`).
    pub task_class: &'static str,
    pub connector_type: ConnectorType,
    pub version: &'static str,
    /// The connector's own keys (beyond the runtime's common keys).
    pub config_keys: &'static [Key],
    pub new_connector: fn() -> Box<dyn Connector>,
    /// The task of a source connector.
    pub new_source_task: Option<fn() -> Box<dyn SourceTask>>,
    /// The task of a sink connector.
    pub new_sink_task: Option<fn() -> Box<dyn SinkTask>>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("class", &self.class)
            .field("connector_type", &self.connector_type)
            .finish()
    }
}

/// An offset reader with nothing committed.
#[derive(Debug, Default)]
pub struct NoOffsets;

impl OffsetStorageReader for NoOffsets {
    fn offset(&self, _partition: &OffsetMap) -> Option<OffsetMap> {
        None
    }
}
