//! What Connect's tests run against: an in-process Moldau broker on a free 127.0.0.1 port,
//! and real database servers (MariaDB, PostgreSQL) started in the test's own temporary
//! directory (`databases.rs`).
#![allow(dead_code)]

pub mod databases;

use std::time::Duration;

use moldau_broker::{Broker, ServerConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

/// Logs on the test's output when `RUST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A record's key and value bytes.
pub type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A single-node broker in this process, in a fresh temporary directory.
pub struct TestBroker {
    broker: Option<Broker>,
    _temp: tempfile::TempDir,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        TestBroker::start_with(&[("listeners", "PLAINTEXT://127.0.0.1:0")]).await
    }

    /// A broker with these server properties (`listeners` among them), in a fresh
    /// temporary directory.
    pub async fn start_with(properties: &[(&str, &str)]) -> TestBroker {
        init_tracing();
        let temp = tempfile::tempdir().expect("tempdir");
        let mut overrides: Vec<(String, String)> = properties
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        overrides.push(("log.dirs".to_string(), temp.path().display().to_string()));
        let (config, _warnings) = ServerConfig::load(None, &overrides).expect("test config");
        let broker = Broker::start(config).await.expect("broker starts");
        TestBroker {
            broker: Some(broker),
            _temp: temp,
        }
    }

    pub fn bootstrap(&self) -> String {
        self.broker
            .as_ref()
            .expect("running")
            .bound_addr()
            .to_string()
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        c
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            self.client_config().create().expect("admin");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let results = admin
            .create_topics([&topic], &AdminOptions::new())
            .await
            .expect("create topics");
        for r in results {
            r.expect("topic created");
        }
    }

    /// Every record of a topic from the beginning as (key, value), read (by assignment,
    /// without a group) until `count` have arrived or `timeout` passed.
    pub fn read_topic(&self, topic: &str, count: usize, timeout: Duration) -> Vec<KeyValue> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", "unused")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let deadline = std::time::Instant::now() + timeout;
        let partitions = loop {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .expect("metadata");
            let n = metadata
                .topics()
                .first()
                .map_or(0, |t| t.partitions().len());
            if n > 0 || std::time::Instant::now() >= deadline {
                break n;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p as i32, rdkafka::Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        while out.len() < count && std::time::Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec)));
            }
        }
        out
    }

    pub async fn shutdown(mut self) {
        if let Some(b) = self.broker.take() {
            let _ = b.shutdown().await;
        }
    }
}
