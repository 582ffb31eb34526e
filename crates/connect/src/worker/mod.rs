//! The Connect worker: runs connectors and their tasks with real Kafka clients (rdkafka).
//!
//! * [`plugins`]: the built-in connector classes and what `GET /connector-plugins` lists.
//! * [`offsets`]: source offset stores (standalone file; the distributed offsets topic).
//! * `source` / `sink`: the task loops, Kafka's `WorkerSourceTask` and `WorkerSinkTask`:
//!   converters, transforms, error handling (retry, tolerance, log, dead letter queue),
//!   producing and consuming, offset commits that never get ahead of what is stored.
//! * [`herder`]: the connectors of this worker and the operations of the REST API.

pub mod api;
pub mod herder;
pub mod offsets;
pub mod plugins;
mod sink;
pub(crate) mod sink_offsets;
mod source;

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::{ConnectorConfig, ConverterConfig, Props, WorkerConfig};
use crate::connector::{ConnectError, StatusReporter};
use crate::convert::{converter_for_class, header_converter_for_class, Converter, HeaderConverter};
use crate::errors::ErrorInfo;
use crate::rest::ConnectorTaskId;
use crate::security::{client_security, non_security, top_level, without_security};
use crate::storage::State;

pub use api::HerderApi;
pub use herder::Herder;
pub use offsets::{FileOffsetStore, MemoryOffsetStore, OffsetStore};
pub use plugins::Plugins;

/// A worker failure outside a connector's own code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Kafka(String),
    #[error("{0}")]
    Offsets(String),
}

/// What every connector and task of this worker shares.
pub struct WorkerContext {
    pub config: WorkerConfig,
    /// This worker's id in statuses: its REST `host:port`.
    pub worker_id: String,
    /// librdkafka properties every client of this worker starts from (`bootstrap.servers`
    /// and the worker's client security settings).
    pub kafka_props: Props,
    pub offsets: Arc<dyn OffsetStore>,
    pub plugins: Plugins,
}

impl WorkerContext {
    /// A producer's properties: the worker's, its `producer.*` keys, then the connector's
    /// `producer.override.*`; with Connect's safe defaults (all replicas acknowledge,
    /// idempotent, never give up on a record). Security keys of each layer are
    /// translated together (`crate::security`); one the translation refuses is an error
    /// naming it.
    pub fn producer_props(&self, overrides: &Props) -> Result<Props, WorkerError> {
        let mut p = without_security(&self.kafka_props);
        p.insert("acks".into(), "all".into());
        p.insert("enable.idempotence".into(), "true".into());
        p.insert("message.timeout.ms".into(), "0".into());
        p.extend(non_security(&self.config.producer));
        p.extend(non_security(overrides));
        p.extend(self.client_security(
            ("producer.", &self.config.producer),
            ("producer.override.", overrides),
            "the connector's producer",
        )?);
        Ok(p)
    }

    /// A sink consumer's properties: group `connect-<name>`, from the earliest offset, no
    /// automatic commits (the worker commits after the task flushed).
    pub fn consumer_props(&self, connector: &str, overrides: &Props) -> Result<Props, WorkerError> {
        let mut p = without_security(&self.kafka_props);
        p.insert("group.id".into(), format!("connect-{connector}"));
        p.insert("auto.offset.reset".into(), "earliest".into());
        p.insert("enable.auto.commit".into(), "false".into());
        p.insert("enable.auto.offset.store".into(), "false".into());
        p.extend(non_security(&self.config.consumer));
        p.extend(non_security(overrides));
        // Offsets are committed by the worker only after the task flushed.
        p.insert("enable.auto.commit".into(), "false".into());
        p.extend(self.client_security(
            ("consumer.", &self.config.consumer),
            ("consumer.override.", overrides),
            "the connector's consumer",
        )?);
        Ok(p)
    }

    /// A connector's admin client's properties: the worker's, its `admin.*` keys, then the
    /// connector's `admin.override.*`.
    pub fn admin_props(&self, overrides: &Props) -> Result<Props, WorkerError> {
        let mut p = without_security(&self.kafka_props);
        p.extend(non_security(&self.config.admin));
        p.extend(non_security(overrides));
        p.extend(self.client_security(
            ("admin.", &self.config.admin),
            ("admin.override.", overrides),
            "the connector's admin client",
        )?);
        Ok(p)
    }

    /// The translated security of one client: the worker's top-level keys, the worker's
    /// prefixed ones, the connector's overrides.
    fn client_security(
        &self,
        worker: (&str, &Props),
        connector: (&str, &Props),
        client: &str,
    ) -> Result<Props, WorkerError> {
        let top = top_level(&self.config.originals);
        client_security(&[("", &top), worker, connector], client).map_err(WorkerError::Config)
    }

    /// The connector's converters, or the worker's.
    pub fn converters(&self, c: &ConnectorConfig) -> Result<Converters, WorkerError> {
        let pick = |o: &Option<ConverterConfig>, w: &ConverterConfig| {
            o.clone().unwrap_or_else(|| w.clone())
        };
        let k = pick(&c.key_converter, &self.config.key_converter);
        let v = pick(&c.value_converter, &self.config.value_converter);
        let h = pick(&c.header_converter, &self.config.header_converter);
        let err = |e: crate::convert::ConvertError| WorkerError::Config(e.to_string());
        Ok(Converters {
            key: converter_for_class(&k.class, &k.props, true).map_err(err)?,
            value: converter_for_class(&v.class, &v.props, false).map_err(err)?,
            header: header_converter_for_class(&h.class, &h.props).map_err(err)?,
        })
    }
}

/// A task's converters.
pub struct Converters {
    pub key: Box<dyn Converter>,
    pub value: Box<dyn Converter>,
    pub header: Box<dyn HeaderConverter>,
}

/// Wall-clock milliseconds since the epoch (statuses, retry and restart clocks).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Builds an rdkafka client from properties (a bad key is an error naming it).
pub fn client_config(props: &Props) -> rdkafka::ClientConfig {
    let mut c = rdkafka::ClientConfig::new();
    for (k, v) in props {
        c.set(k, v);
    }
    c
}

/// A connector's or task's status as this worker knows it.
#[derive(Clone, Debug)]
pub struct StatusCell {
    inner: Arc<Mutex<StatusValue>>,
    pub reporter: StatusReporter,
}

#[derive(Clone, Debug)]
pub struct StatusValue {
    pub state: State,
    pub trace: Option<String>,
}

impl StatusCell {
    pub fn new(state: State) -> StatusCell {
        StatusCell {
            inner: Arc::new(Mutex::new(StatusValue { state, trace: None })),
            reporter: StatusReporter::default(),
        }
    }

    pub fn set(&self, state: State) {
        let mut s = self.inner.lock();
        s.state = state;
        if state != State::Failed {
            s.trace = None;
        }
    }

    pub fn fail(&self, trace: String) {
        let mut s = self.inner.lock();
        s.state = State::Failed;
        s.trace = Some(trace);
    }

    pub fn get(&self) -> StatusValue {
        self.inner.lock().clone()
    }
}

/// The trace shown in `/status` for a failure: what failed (Kafka's `ConnectException`)
/// caused by the connector's error, as Java prints them.
pub fn trace_of(context: &str, e: &ConnectError) -> String {
    ErrorInfo::new("org.apache.kafka.connect.errors.ConnectException", context)
        .with_cause(ErrorInfo::new(e.class_name(), e.to_string()))
        .stack_trace()
}

/// A running task's identity and what it was started with.
#[derive(Clone)]
pub struct TaskSpec {
    pub id: ConnectorTaskId,
    pub connector: ConnectorConfig,
    pub task_props: Props,
    pub plugin: crate::connector::Plugin,
    /// Topics the task produced to or consumed from (`GET /connectors/{name}/topics`).
    pub active_topics: Arc<Mutex<BTreeSet<String>>>,
}

impl TaskSpec {
    /// Notes a topic the task used (allocating only the first time: this is per record).
    pub fn note_topic(&self, topic: &str) {
        let mut topics = self.active_topics.lock();
        if !topics.contains(topic) {
            topics.insert(topic.to_string());
        }
    }
}
