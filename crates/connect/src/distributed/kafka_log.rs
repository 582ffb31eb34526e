//! Kafka's `KafkaBasedLog`: one of the worker's internal topics (configs, offsets,
//! statuses), compacted, created when missing, written with an idempotent acks=all
//! producer and read from the beginning by a consumer that is assigned every partition
//! (no group), so every worker sees every record.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{Props, StorageTopic};
use crate::worker::{client_config, WorkerError};

const TIMEOUT: Duration = Duration::from_secs(30);

/// An internal topic.
pub struct KafkaLog {
    topic: String,
    partitions: i32,
    producer: FutureProducer,
    consumer: Arc<BaseConsumer>,
}

fn kafka(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Kafka(e.to_string())
}

impl KafkaLog {
    /// Opens (creating if missing, compacted) the topic. `client_props` are the worker's
    /// librdkafka properties.
    pub async fn open(
        client_props: &Props,
        settings: &StorageTopic,
    ) -> Result<KafkaLog, WorkerError> {
        let admin: AdminClient<DefaultClientContext> =
            client_config(client_props).create().map_err(kafka)?;
        let mut config: Vec<(String, String)> = vec![("cleanup.policy".into(), "compact".into())];
        config.extend(
            settings
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        let replication = if settings.replication_factor < 0 {
            TopicReplication::Fixed(-1)
        } else {
            TopicReplication::Fixed(settings.replication_factor as i32)
        };
        let mut new_topic = NewTopic::new(&settings.topic, settings.partitions, replication);
        for (k, v) in &config {
            new_topic = new_topic.set(k, v);
        }
        let results = admin
            .create_topics(
                [&new_topic],
                &AdminOptions::new().request_timeout(Some(TIMEOUT)),
            )
            .await
            .map_err(kafka)?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, e)) => {
                    return Err(WorkerError::Kafka(format!(
                        "Unable to create topic {t}: {e}"
                    )))
                }
            }
        }
        let mut producer_props = client_props.clone();
        producer_props.insert("acks".into(), "all".into());
        producer_props.insert("enable.idempotence".into(), "true".into());
        let producer: FutureProducer = client_config(&producer_props).create().map_err(kafka)?;
        let mut consumer_props = client_props.clone();
        consumer_props.insert(
            "group.id".into(),
            format!("moldau-connect-log-{}", settings.topic),
        );
        consumer_props.insert("enable.auto.commit".into(), "false".into());
        let consumer: BaseConsumer = client_config(&consumer_props).create().map_err(kafka)?;
        let consumer = Arc::new(consumer);
        let topic = settings.topic.clone();
        let c = consumer.clone();
        let t = topic.clone();
        let partitions = tokio::task::spawn_blocking(move || -> Result<i32, WorkerError> {
            let deadline = std::time::Instant::now() + TIMEOUT;
            loop {
                let md = c
                    .fetch_metadata(Some(&t), Duration::from_secs(5))
                    .map_err(kafka)?;
                let n = md
                    .topics()
                    .first()
                    .map_or(0, |t| t.partitions().len() as i32);
                if n > 0 {
                    let mut tpl = TopicPartitionList::new();
                    for p in 0..n {
                        tpl.add_partition_offset(&t, p, Offset::Beginning)
                            .map_err(kafka)?;
                    }
                    c.assign(&tpl).map_err(kafka)?;
                    return Ok(n);
                }
                if std::time::Instant::now() > deadline {
                    return Err(WorkerError::Kafka(format!("topic {t} has no partitions")));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .await
        .map_err(kafka)??;
        Ok(KafkaLog {
            topic,
            partitions,
            producer,
            consumer,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Writes a record and waits for all replicas; returns its partition and offset.
    pub async fn send(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        partition: Option<i32>,
    ) -> Result<(i32, i64), WorkerError> {
        let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).key(key);
        if let Some(v) = value {
            r = r.payload(v);
        }
        if let Some(p) = partition {
            r = r.partition(p);
        }
        self.producer
            .send(r, TIMEOUT)
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(e, _)| WorkerError::Kafka(format!("write to {}: {e}", self.topic)))
    }

    /// Reads every record after what was read before, up to the end offsets as of now;
    /// returns them in order per partition (Kafka's `readToEnd`).
    pub async fn read_to_end(&self) -> Result<Vec<OwnedMessage>, WorkerError> {
        let c = self.consumer.clone();
        let topic = self.topic.clone();
        let partitions = self.partitions;
        tokio::task::spawn_blocking(move || -> Result<Vec<OwnedMessage>, WorkerError> {
            let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
            for p in 0..partitions {
                let (_, high) = c.fetch_watermarks(&topic, p, TIMEOUT).map_err(kafka)?;
                ends.insert(p, high);
            }
            let position = |c: &BaseConsumer, p: i32| -> i64 {
                c.position()
                    .ok()
                    .and_then(|tpl| tpl.find_partition(&topic, p).map(|e| e.offset()))
                    .and_then(|o| match o {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(0)
            };
            let mut out = Vec::new();
            let deadline = std::time::Instant::now() + TIMEOUT;
            loop {
                let behind = ends.iter().any(|(p, end)| position(&c, *p) < *end);
                if !behind {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(WorkerError::Kafka(format!(
                        "timed out reading {topic} to its end"
                    )));
                }
                match c.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => out.push(m.detach()),
                    Some(Err(e)) => tracing::warn!("reading {topic}: {e}"),
                    None => {}
                }
            }
            Ok(out)
        })
        .await
        .map_err(kafka)?
    }
}

/// A message's key and value bytes.
pub fn key_value(m: &OwnedMessage) -> (Option<&[u8]>, Option<&[u8]>) {
    (m.key(), m.payload())
}
