//! A Kafka user's session with librdkafka: create a topic, produce keyed records with headers
//! under every codec, read them back, look offsets up by time, restart, read again.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{poll_messages, TestBroker};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

const CODECS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];

#[derive(Debug, Clone, PartialEq)]
struct Seen {
    partition: i32,
    offset: i64,
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: Option<i64>,
}

fn seen(m: &rdkafka::message::OwnedMessage) -> Seen {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    Seen {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().unwrap_or_default().to_vec(),
        value: m.payload().unwrap_or_default().to_vec(),
        headers,
        timestamp: m.timestamp().to_millis(),
    }
}

/// Kafka's murmur2 partitioner (the Java default and librdkafka's `murmur2_random`).
fn murmur2_partition(key: &[u8], partitions: i32) -> i32 {
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let mut h: u32 = seed ^ (key.len() as u32);
    let chunks = key.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(m);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(m);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(m);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    ((h & 0x7fff_ffff) % partitions as u32) as i32
}

async fn produce_all(broker: &TestBroker, topic: &str, codec: &str, count: usize) -> Vec<Seen> {
    let producer: rdkafka::producer::FutureProducer = broker
        .client_config()
        .set("compression.codec", codec)
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut sent = Vec::new();
    for i in 0..count {
        let key = format!("{codec}-key-{}", i % 17);
        let value = format!("{codec} value {i} {}", "x".repeat(i % 300));
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "codec",
                value: Some(codec),
            })
            .insert(Header {
                key: "i",
                value: Some(&i.to_string()),
            });
        let timestamp = 1_700_000_000_000 + i as i64;
        let rdkafka::producer::future_producer::Delivery {
            partition, offset, ..
        } = producer
            .send(
                FutureRecord::to(topic)
                    .key(&key)
                    .payload(&value)
                    .headers(headers)
                    .timestamp(timestamp),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
        assert_eq!(
            partition,
            murmur2_partition(key.as_bytes(), 3),
            "keyed record lands where murmur2 puts it"
        );
        sent.push(Seen {
            partition,
            offset,
            key: key.into_bytes(),
            value: value.into_bytes(),
            headers: vec![
                ("codec".into(), codec.as_bytes().to_vec()),
                ("i".into(), i.to_string().into_bytes()),
            ],
            timestamp: Some(timestamp),
        });
    }
    sent
}

fn consume_all(broker: &TestBroker, topic: &str, partitions: i32, count: usize) -> Vec<Seen> {
    let consumer = broker.consumer();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    poll_messages(&consumer, count, Duration::from_secs(30))
        .iter()
        .map(seen)
        .collect()
}

fn by_position(records: Vec<Seen>) -> BTreeMap<(i32, i64), Seen> {
    records
        .into_iter()
        .map(|s| ((s.partition, s.offset), s))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_with_headers_round_trip_under_every_codec_and_survive_restart() {
    let mut broker = TestBroker::start().await;
    broker.create_topic("events", 3).await;
    let mut sent = Vec::new();
    for codec in CODECS {
        sent.extend(produce_all(&broker, "events", codec, 60).await);
    }
    let expected = by_position(sent);
    let received = by_position(consume_all(&broker, "events", 3, expected.len()));
    assert_eq!(received.len(), expected.len());
    assert_eq!(received, expected);

    broker.restart().await;
    let after_restart = by_position(consume_all(&broker, "events", 3, expected.len()));
    assert_eq!(after_restart, expected);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_finds_the_first_record_at_or_after_a_timestamp() {
    let broker = TestBroker::start().await;
    broker.create_topic("timed", 1).await;
    let producer = broker.producer();
    for i in 0..10i64 {
        producer
            .send(
                FutureRecord::<(), _>::to("timed")
                    .payload("v")
                    .timestamp(1_000_000 + i * 1000),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    let consumer = broker.consumer();
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset("timed", 0, Offset::Offset(1_004_500))
        .unwrap();
    let found = consumer
        .offsets_for_times(query, Duration::from_secs(10))
        .expect("offsets_for_times");
    assert_eq!(
        found.find_partition("timed", 0).unwrap().offset(),
        Offset::Offset(5)
    );
    let (low, high) = consumer
        .fetch_watermarks("timed", 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, 10));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_one_and_all_are_all_durable_in_the_log() {
    let broker = TestBroker::start().await;
    broker.create_topic("acks", 1).await;
    for acks in ["0", "1", "all"] {
        let producer: rdkafka::producer::FutureProducer = broker
            .client_config()
            .set("acks", acks)
            .create()
            .expect("producer");
        for i in 0..5 {
            producer
                .send(
                    FutureRecord::<(), _>::to("acks").payload(&format!("{acks}-{i}")),
                    Duration::from_secs(10),
                )
                .await
                .expect("delivered");
        }
        rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).unwrap();
    }
    let values: Vec<String> = consume_all(&broker, "acks", 1, 15)
        .into_iter()
        .map(|s| String::from_utf8(s.value).unwrap())
        .collect();
    assert_eq!(values.len(), 15);
    assert!(values.contains(&"0-4".to_string()));
    assert!(values.contains(&"all-4".to_string()));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_consumer_is_woken_by_an_append() {
    let broker = TestBroker::start().await;
    broker.create_topic("wake", 1).await;
    let consumer = broker.consumer();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("wake", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    // Nothing there yet: the consumer's fetches park on the partition.
    assert!(poll_messages(&consumer, 1, Duration::from_millis(500)).is_empty());
    broker
        .producer()
        .send(
            FutureRecord::<(), _>::to("wake").payload("hello"),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered");
    let got = poll_messages(&consumer, 1, Duration::from_secs(30));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload(), Some(&b"hello"[..]));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producing_to_an_unknown_topic_auto_creates_it() {
    let broker = TestBroker::start_with(&[("num.partitions", "2")]).await;
    let offset = broker
        .producer()
        .send(
            FutureRecord::<(), _>::to("created-on-demand").payload("x"),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered")
        .offset;
    assert_eq!(offset, 0);
    let metadata = broker
        .consumer()
        .fetch_metadata(Some("created-on-demand"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 2);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_creation_can_be_disabled() {
    let broker = TestBroker::start_with(&[("auto.create.topics.enable", "false")]).await;
    let producer: rdkafka::producer::FutureProducer = broker
        .client_config()
        .set("message.timeout.ms", "2000")
        .create()
        .unwrap();
    let result = producer
        .send(
            FutureRecord::<(), _>::to("never-created").payload("x"),
            Duration::from_secs(5),
        )
        .await;
    assert!(result.is_err(), "no topic, no delivery");
    let metadata = broker
        .consumer()
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    assert!(metadata
        .topics()
        .iter()
        .all(|t| t.name() != "never-created"));
    broker.shutdown().await;
}
