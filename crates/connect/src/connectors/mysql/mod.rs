//! The MySQL/MariaDB change-data-capture source: Debezium's MySQL connector
//! (`io.debezium.connector.mysql.MySqlConnector`, and its MariaDB twin
//! `io.debezium.connector.mariadb.MariaDbConnector`) with the same configuration keys,
//! change events, offsets, schema history topic and schema change events, reading the
//! database with `mysql_async` (queries for the snapshot, the binlog for changes).
//!
//! * [`config`]: the keys; semantics-changing Debezium keys it does not implement are
//!   refused at validation.
//! * [`schema`]: columns from `information_schema`, their Connect schemas and values.
//! * [`source`]: the `source` block and the binlog offsets.
//! * [`history`]: the schema history topic; [`schema_change`]: schema change events.
//! * [`incremental`]: incremental snapshots started by the signal table.
//! * [`reader`]: snapshot, then the binlog; the task polls its batches and starts it
//!   again from the last record it received after a transient failure.

pub mod config;
pub mod history;
pub mod incremental;
pub mod reader;
pub mod schema;
pub mod schema_change;
pub mod source;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::task::JoinHandle;

use self::config::MySqlConfig;
use self::reader::{binlog_problems, connect, Batch, CommittedPosition, Reader, TaskLinks};
use self::source::{source_schema_for, BinlogOffset, Flavor};
use crate::config::{ConnectorType, Props};
use crate::connector::{
    ConnectError, Connector, ConnectorContext, OffsetStorageReader, Plugin, SourceRecord,
    SourceTask, TaskContext,
};
use crate::storage::OffsetMap;

/// `io.debezium.connector.mysql.MySqlConnector`.
pub const PLUGIN: Plugin = Plugin {
    class: "io.debezium.connector.mysql.MySqlConnector",
    task_class: "io.debezium.connector.mysql.MySqlConnectorTask",
    connector_type: ConnectorType::Source,
    version: env!("CARGO_PKG_VERSION"),
    config_keys: config::KEYS,
    new_connector: new_mysql_connector,
    new_source_task: Some(new_mysql_task),
    new_sink_task: None,
};

/// `io.debezium.connector.mariadb.MariaDbConnector`: the same connector, whose events name
/// `mariadb` as their connector.
pub const MARIADB_PLUGIN: Plugin = Plugin {
    class: "io.debezium.connector.mariadb.MariaDbConnector",
    task_class: "io.debezium.connector.mariadb.MariaDbConnectorTask",
    connector_type: ConnectorType::Source,
    version: env!("CARGO_PKG_VERSION"),
    config_keys: config::KEYS,
    new_connector: new_mariadb_connector,
    new_source_task: Some(new_mariadb_task),
    new_sink_task: None,
};

fn new_mysql_connector() -> Box<dyn Connector> {
    Box::new(MySqlConnector::default())
}

fn new_mariadb_connector() -> Box<dyn Connector> {
    Box::new(MySqlConnector::default())
}

fn new_mysql_task() -> Box<dyn SourceTask> {
    Box::new(MySqlSourceTask::new(Flavor::MySql))
}

fn new_mariadb_task() -> Box<dyn SourceTask> {
    Box::new(MySqlSourceTask::new(Flavor::MariaDb))
}

/// How long validation may spend reaching the database.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct MySqlConnector {
    props: Props,
}

#[async_trait]
impl Connector for MySqlConnector {
    async fn validate(&self, props: &Props) -> Vec<(String, String)> {
        let mut errors = config::unsupported(props);
        let cfg = match MySqlConfig::parse(props) {
            Ok(c) => c,
            // The keys' own errors are reported by the runtime from `config_keys`.
            Err(_) => return errors,
        };
        let mut conn = match connect(&cfg, VALIDATE_TIMEOUT.min(cfg.connect_timeout())).await {
            Ok(c) => c,
            Err(e) => {
                errors.push(("database.hostname".into(), e.to_string()));
                return errors;
            }
        };
        match tokio::time::timeout(VALIDATE_TIMEOUT, binlog_problems(&mut conn)).await {
            Ok(Ok(problems)) => {
                for (_, message) in problems {
                    errors.push(("database.hostname".into(), message));
                }
            }
            Ok(Err(e)) => errors.push(("database.hostname".into(), e.to_string())),
            Err(_) => errors.push((
                "database.hostname".into(),
                "timed out reading the server's binlog settings".into(),
            )),
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.disconnect()).await;
        errors
    }

    async fn start(&mut self, props: &Props, _ctx: ConnectorContext) -> Result<(), ConnectError> {
        MySqlConfig::parse(props)?;
        self.props = props.clone();
        Ok(())
    }

    /// One task: the binlog is a single ordered stream.
    async fn task_configs(&mut self, _max_tasks: usize) -> Result<Vec<Props>, ConnectError> {
        Ok(vec![self.props.clone()])
    }

    async fn stop(&mut self) {}
}

pub struct MySqlSourceTask {
    flavor: Flavor,
    rx: Option<mpsc::Receiver<Batch>>,
    reader: Option<JoinHandle<()>>,
    pending: VecDeque<SourceRecord>,
    max_batch_size: usize,
    poll_interval: Duration,
    failure: Option<ConnectError>,
    /// What the reader was started with, to start it again after a transient failure.
    started: Option<(Props, TaskContext)>,
    /// The offset of the last record received from the reader: a restarted reader
    /// resumes after it (those records are on their way to Kafka already).
    last_received: Option<OffsetMap>,
    /// Consecutive transient failures, for the backoff.
    retries: u32,
    /// The position of the last record returned by `poll`, and of the last committed.
    last_returned: Option<(String, i64)>,
    committed: CommittedPosition,
}

/// The offset a restarted reader resumes from: the last record it had handed over.
struct ResumeFrom(OffsetMap);

impl OffsetStorageReader for ResumeFrom {
    fn offset(&self, _partition: &OffsetMap) -> Option<OffsetMap> {
        Some(self.0.clone())
    }
}

impl MySqlSourceTask {
    pub fn new(flavor: Flavor) -> MySqlSourceTask {
        MySqlSourceTask {
            flavor,
            rx: None,
            reader: None,
            pending: VecDeque::new(),
            max_batch_size: 2048,
            poll_interval: Duration::from_millis(500),
            failure: None,
            started: None,
            last_received: None,
            retries: 0,
            last_returned: None,
            committed: CommittedPosition::default(),
        }
    }

    fn take_batch(&mut self) -> Vec<SourceRecord> {
        let n = self.pending.len().min(self.max_batch_size);
        let batch: Vec<SourceRecord> = self.pending.drain(..n).collect();
        if let Some(o) = batch
            .last()
            .and_then(|r| BinlogOffset::from_map(&r.source_offset))
        {
            self.last_returned = Some((o.file, o.ts_sec));
        }
        batch
    }

    fn spawn_reader(&mut self) -> Result<(), ConnectError> {
        let Some((props, ctx)) = &self.started else {
            return Err(ConnectError::Fatal("the task is not started".into()));
        };
        let cfg = MySqlConfig::parse(props)?;
        // The queue is bounded in records by the semaphore; the channel only orders them.
        let queue = Arc::new(tokio::sync::Semaphore::new(cfg.max_queue_size.max(1)));
        let (tx, rx) = mpsc::channel(cfg.max_queue_size.max(16));
        let offsets: Arc<dyn OffsetStorageReader> = match &self.last_received {
            Some(o) => Arc::new(ResumeFrom(o.clone())),
            None => ctx.offsets.clone(),
        };
        let links = TaskLinks {
            tx,
            queue,
            status: ctx.status.clone(),
            offsets,
            kafka_client_props: ctx.kafka_client_props.clone(),
            committed: self.committed.clone(),
        };
        let reader = Reader::new(cfg, source_schema_for(self.flavor), links);
        self.reader = Some(tokio::spawn(reader.run()));
        self.rx = Some(rx);
        Ok(())
    }

    /// Takes a batch off the queue (its permits are released with it).
    fn received(&mut self, (batch, _permit): (Vec<SourceRecord>, OwnedSemaphorePermit)) {
        if let Some(last) = batch.last() {
            self.last_received = Some(last.source_offset.clone());
            self.retries = 0;
        }
        self.pending.extend(batch);
    }

    /// A transient failure (the connection dropped): start the reader again from the
    /// last record received, after a backoff; anything else fails the task.
    async fn reader_failed(&mut self, e: ConnectError) -> Result<(), ConnectError> {
        if !e.is_retriable() {
            self.failure = Some(e.clone());
            return Err(e);
        }
        if let Some(h) = self.reader.take() {
            h.abort();
            let _ = h.await;
        }
        self.retries = self.retries.saturating_add(1);
        let backoff_ms = (500u64 << self.retries.min(5)).min(10_000);
        tracing::warn!("{e}; reconnecting in {backoff_ms} ms");
        tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
        self.spawn_reader()
    }
}

#[async_trait]
impl SourceTask for MySqlSourceTask {
    async fn start(&mut self, props: &Props, ctx: TaskContext) -> Result<(), ConnectError> {
        let cfg = MySqlConfig::parse(props)?;
        self.max_batch_size = cfg.max_batch_size;
        self.poll_interval = Duration::from_millis(cfg.poll_interval_ms.min(1000));
        self.started = Some((props.clone(), ctx));
        self.spawn_reader()
    }

    async fn poll(&mut self) -> Result<Vec<SourceRecord>, ConnectError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        if self.pending.len() >= self.max_batch_size {
            return Ok(self.take_batch());
        }
        let Some(rx) = self.rx.as_mut() else {
            return Err(ConnectError::Fatal("the task is not started".into()));
        };
        if self.pending.is_empty() {
            match tokio::time::timeout(self.poll_interval, rx.recv()).await {
                Err(_) => return Ok(Vec::new()),
                Ok(None) => {
                    // The reader finished (initial_only after its snapshot): nothing more.
                    tokio::time::sleep(self.poll_interval).await;
                    return Ok(Vec::new());
                }
                Ok(Some(Err(e))) => {
                    self.reader_failed(e).await?;
                    return Ok(Vec::new());
                }
                Ok(Some(Ok(batch))) => self.received(batch),
            }
        }
        while self.pending.len() < self.max_batch_size {
            let Some(rx) = self.rx.as_mut() else { break };
            match rx.try_recv() {
                Ok(Ok(batch)) => self.received(batch),
                Ok(Err(e)) => {
                    // Hand out what came before the failure first.
                    let batch = self.take_batch();
                    self.reader_failed(e).await?;
                    return Ok(batch);
                }
                Err(_) => break,
            }
        }
        Ok(self.take_batch())
    }

    /// Every record returned so far is committed: the retention check now watches the
    /// last one's binlog file.
    async fn commit(&mut self) -> Result<(), ConnectError> {
        if let Some(p) = &self.last_returned {
            *self.committed.lock() = Some(p.clone());
        }
        Ok(())
    }

    async fn stop(&mut self) {
        if let Some(h) = self.reader.take() {
            h.abort();
            let _ = h.await;
        }
        self.rx = None;
    }
}
