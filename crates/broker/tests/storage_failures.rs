//! Storage failures stay local (issue #8 item 7), seen by real clients (the 249-character
//! topic name is in metadata_contract.rs): a corrupt tail after a
//! clean shutdown is truncated at start; a partition whose files fail answers
//! KAFKA_STORAGE_ERROR while the others serve; a broker on a full disk refuses with
//! KAFKA_STORAGE_ERROR, loses no acked record, starts again and serves reads.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{poll_messages, TestBroker};
use moldau_broker::{Broker, BrokerError, ServerConfig};
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

/// The only `.log` file of a partition with a single segment.
fn segment_file(log_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    log_dir
        .join(format!("{topic}-{partition}"))
        .join("00000000000000000000.log")
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

/// A partition that cannot be opened at all at start (here its segment is a directory)
/// is offline while the node starts and serves the rest; once repaired it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unopenable_partition_at_start_is_offline_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let log_dirs = dir.path().display().to_string();
    let broker = TestBroker::start_with(&[("log.dirs", &log_dirs)]).await;
    broker.create_topic("broken", 2).await;
    let producer = broker.producer();
    for partition in [0, 1] {
        send(&producer, "broken", partition, b"first")
            .await
            .expect("acked");
    }
    drop(producer);
    broker.shutdown().await;
    let segment = segment_file(dir.path(), "broken", 0);
    let saved = dir.path().join("saved-segment");
    fs::rename(&segment, &saved).unwrap();
    fs::create_dir(&segment).unwrap();

    let broker = TestBroker::start_with(&[("log.dirs", &log_dirs)]).await;
    let no_retry: FutureProducer = broker.client_config().set("retries", "0").create().unwrap();
    let err = send(&no_retry, "broken", 0, b"refused").await.unwrap_err();
    assert_eq!(
        err,
        KafkaError::MessageProduction(RDKafkaErrorCode::KafkaStorageError),
        "{err}"
    );
    send(&no_retry, "broken", 1, b"second")
        .await
        .expect("the other partition serves");

    // Repaired underneath the running node: the reconciler opens it again.
    fs::remove_dir(&segment).unwrap();
    fs::rename(&saved, &segment).unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while send(&no_retry, "broken", 0, b"second").await.is_err() {
        assert!(std::time::Instant::now() < deadline, "never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        consume(&broker, "broken", 0, 2),
        vec![b"first".to_vec(), b"second".to_vec()]
    );
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

/// A tmpfs of `size` mounted on a temp dir for the test's life; unmounted on drop,
/// also when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// None (with the reason printed) where the test may not mount, e.g. not root.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs { dir }),
            other => {
                eprintln!("skipped: cannot mount a tmpfs (needs root): {other:?}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn start_broker(log_dir: &Path, port: u16) -> Result<Broker, BrokerError> {
    common::init_tracing();
    let overrides = [
        (
            "listeners".to_string(),
            format!("PLAINTEXT://127.0.0.1:{port}"),
        ),
        ("log.dirs".to_string(), log_dir.display().to_string()),
        // A deleted topic or segment frees its space at once.
        ("log.segment.delete.delay.ms".to_string(), "0".to_string()),
        (
            "log.retention.check.interval.ms".to_string(),
            "200".to_string(),
        ),
    ];
    let (config, _warnings) = ServerConfig::load(None, &overrides).expect("test config");
    Broker::start(config).await
}

/// Starts on a dir the previous broker released (also after a failed shutdown).
async fn restart_broker(log_dir: &Path, port: u16) -> Broker {
    match start_broker(log_dir, port).await {
        Ok(broker) => broker,
        Err(e) => panic!("starts on a full disk: {e}"),
    }
}

fn client(bootstrap: &str) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "10000")
        .set("retries", "0");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_loses_no_acked_record_and_the_node_restarts() {
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let broker = start_broker(disk.path(), 0).await.expect("starts");
    let bootstrap = broker.bound_addr().to_string();
    let admin: rdkafka::admin::AdminClient<_> = client(&bootstrap).create().unwrap();
    for topic in ["fill", "spare"] {
        // Small segments, so that DeleteRecords can free most of the disk later.
        let new =
            rdkafka::admin::NewTopic::new(topic, 1, rdkafka::admin::TopicReplication::Fixed(1))
                .set("segment.bytes", "1048576");
        let results = admin.create_topics(&[new], &options()).await.unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }
    let producer: FutureProducer = client(&bootstrap).create().unwrap();
    send(&producer, "spare", 0, b"spare").await.expect("acked");
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..400u32 {
        let value = vec![(i % 251) as u8; 64 * 1024];
        match send(&producer, "fill", 0, &value).await {
            Ok(()) => acked.push(value),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(KafkaError::MessageProduction(
            RDKafkaErrorCode::KafkaStorageError
        )),
        "after {} acked records",
        acked.len()
    );
    assert!(!acked.is_empty());
    let port = broker.bound_addr().port();
    drop((producer, admin));
    // Closing may not be clean for lack of space; the next start recovers.
    if let Err(e) = broker.shutdown().await {
        eprintln!("shutdown on a full disk: {e}");
    }

    let broker = restart_broker(disk.path(), port).await;
    let consumer: rdkafka::consumer::BaseConsumer = client(&bootstrap)
        .set("group.id", "unused-assign-only")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("fill", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let read: Vec<Vec<u8>> = poll_messages(&consumer, acked.len(), TIMEOUT)
        .iter()
        .map(|m| rdkafka::Message::payload(m).unwrap_or_default().to_vec())
        .collect();
    assert_eq!(read.len(), acked.len(), "every acked record survives");
    assert!(read == acked, "acked records come back unchanged");
    drop(consumer);

    // The operator frees space with DeleteRecords on the running node; produce then works
    // again without a restart (the partitions that failed were reopened by the restart).
    let admin: rdkafka::admin::AdminClient<_> = client(&bootstrap).create().unwrap();
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset("fill", 0, Offset::Offset(acked.len() as i64))
        .unwrap();
    admin
        .delete_records(&before, &options())
        .await
        .expect("DeleteRecords on a full disk");
    let producer: FutureProducer = client(&bootstrap).create().unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        // Only after the retention pass has removed the segments below the new start.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let fill = topic_dir_bytes(disk.path(), "fill-0");
        if fill < 2 * 1024 * 1024 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "DeleteRecords freed nothing: {fill} bytes left"
        );
    }
    send(&producer, "spare", 0, b"after")
        .await
        .expect("produce works once space is freed");
    drop((producer, admin));
    broker.shutdown().await.expect("clean shutdown with space");
}

/// Bytes of the files in one partition dir.
fn topic_dir_bytes(log_dir: &Path, dir_name: &str) -> u64 {
    std::fs::read_dir(log_dir.join(dir_name))
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}
