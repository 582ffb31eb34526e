//! One way to start a broker for tests: in-process, on a free 127.0.0.1 port, in a fresh
//! temporary data directory, with real clients (rdkafka) pointed at it.
#![allow(dead_code)]

pub mod raw;
pub mod secured;
pub mod wire;

use std::path::{Path, PathBuf};
use std::time::Duration;

use moldau_broker::{Broker, ServerConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;

/// Broker logs on the test's output when `RUST_LOG` is set (e.g. `RUST_LOG=warn`).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

pub struct TestBroker {
    broker: Option<Broker>,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    overrides: Vec<(String, String)>,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::start_with(&[]).await
    }

    /// Starts with extra `server.properties` overrides (Kafka key names).
    pub async fn start_with(overrides: &[(&str, &str)]) -> TestBroker {
        let temp = tempfile::tempdir().expect("tempdir");
        let data_dir = temp.path().to_path_buf();
        let overrides = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut broker = TestBroker {
            broker: None,
            data_dir,
            _temp: Some(temp),
            overrides,
        };
        broker.boot(0).await;
        broker
    }

    async fn boot(&mut self, port: u16) {
        init_tracing();
        let mut overrides = vec![
            (
                "listeners".to_string(),
                format!("PLAINTEXT://127.0.0.1:{port}"),
            ),
            ("log.dirs".to_string(), self.data_dir.display().to_string()),
        ];
        overrides.extend(self.overrides.iter().cloned());
        let (config, _warnings) = ServerConfig::load(None, &overrides).expect("test config");
        self.broker = Some(Broker::start(config).await.expect("broker starts"));
    }

    pub fn bootstrap(&self) -> String {
        self.broker
            .as_ref()
            .expect("running")
            .bound_addr()
            .to_string()
    }

    /// The log of a partition the broker hosts.
    pub fn log(&self, topic: &str, partition: i32) -> std::sync::Arc<moldau_storage::Log> {
        let tp = moldau_storage::TopicPartition::new(topic.to_string(), partition);
        self.broker
            .as_ref()
            .expect("running")
            .partition_log(&tp)
            .expect("the broker hosts the partition")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Clean shutdown, then start again on the same port and data directory.
    pub async fn restart(&mut self) {
        let port = self.broker.as_ref().expect("running").bound_addr().port();
        self.broker
            .take()
            .expect("running")
            .shutdown()
            .await
            .expect("clean shutdown");
        self.boot(port).await;
    }

    pub async fn shutdown(mut self) {
        if let Some(b) = self.broker.take() {
            b.shutdown().await.expect("clean shutdown");
        }
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("socket.timeout.ms", "10000")
            .set("message.timeout.ms", "10000");
        config
    }

    pub fn producer(&self) -> FutureProducer {
        self.client_config().create().expect("producer")
    }

    pub fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client_config().create().expect("admin client")
    }

    pub fn consumer(&self) -> BaseConsumer {
        self.client_config()
            .set("group.id", "unused-assign-only")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .expect("consumer")
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let results = self
            .admin()
            .create_topics(
                &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .expect("create_topics request");
        for r in results {
            r.expect("topic created");
        }
    }
}

/// Reads until `count` messages arrived on the assigned partitions or `timeout` passed.
pub fn poll_messages(
    consumer: &BaseConsumer,
    count: usize,
    timeout: Duration,
) -> Vec<rdkafka::message::OwnedMessage> {
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && std::time::Instant::now() < deadline {
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            let message = result.expect("consume");
            out.push(message.detach());
        }
    }
    let _ = consumer.assignment();
    out
}
