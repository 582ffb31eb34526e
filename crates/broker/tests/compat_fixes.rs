//! Kafka behaviours real clients rely on: a waiting fetch completed from offsets (read
//! once), OffsetCommit to a topic that does not exist, KIP-467 record errors, and a failed
//! acks=0 produce closing the connection.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::raw::{RawConnection, HANG_GUARD};
use common::wire::WireClient;
use common::{poll_messages, TestBroker};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, FetchRequest, FetchResponse, GroupId,
    OffsetCommitRequest, OffsetCommitResponse, ProduceRequest, ProduceResponse, RequestHeader,
    TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};

const VALUE_BYTES: usize = 1000;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A request frame body (header + request) as a client would send it.
fn request_body<R: Encodable>(api_key: ApiKey, version: i16, request: &R) -> BytesMut {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("compat-test")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, api_key.request_header_version(version))
        .unwrap();
    request.encode(&mut body, version).unwrap();
    body
}

/// One batch of records with the given keys (None = no key), as a producer encodes it.
fn record_batch(keys: &[Option<&str>]) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let records: Vec<Record> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch unless offset - sequence stays constant.
            sequence: i as i32 - 1,
            timestamp: now,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::from_static(b"v")),
            headers: IndexMap::new(),
        })
        .collect();
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, &records, &options).unwrap();
    batch.freeze()
}

fn produce_request(topic: &str, acks: i16, batch: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))])])
}

async fn create_compacted_topic(broker: &TestBroker, name: &str) {
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    for r in broker
        .admin()
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("create_topics")
    {
        r.expect("topic created");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_is_completed_from_offsets_and_reads_once() {
    let broker = TestBroker::start().await;
    broker.create_topic("parked", 1).await;
    let log = broker.log("parked", 0);
    let min_bytes = 50 * VALUE_BYTES as i32;
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(25_000)
        .with_min_bytes(min_bytes)
        .with_max_bytes(10 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name("parked"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let reads_before = log.reads();
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let mut parked = tokio::spawn(async move {
        let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch).await;
        response
    });

    // Many small batches, one at a time, until the parked fetch answers.
    let producer = broker.producer();
    let value = "x".repeat(VALUE_BYTES);
    let mut appended = 0;
    let response = loop {
        assert!(
            appended < 200,
            "the fetch did not complete although {appended} records of {VALUE_BYTES} bytes \
             exceed its min_bytes {min_bytes}"
        );
        producer
            .send(
                FutureRecord::<(), _>::to("parked").payload(&value),
                Duration::from_secs(10),
            )
            .await
            .expect("acknowledged");
        appended += 1;
        if let Ok(done) = tokio::time::timeout(Duration::from_millis(1), &mut parked).await {
            break done.unwrap();
        }
    };
    let reads = log.reads() - reads_before;
    // One read when the fetch arrived (nothing yet), one to answer: none per append.
    assert!(
        reads <= 2,
        "{reads} reads for one fetch over {appended} appends"
    );

    // The answer holds every record up to the high watermark it saw, from offset 0.
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    let mut records = partition.records.clone().expect("records");
    assert!(
        records.len() >= min_bytes as usize,
        "{} bytes",
        records.len()
    );
    let set = RecordBatchDecoder::decode_all(&mut records).expect("whole batches");
    let offsets: Vec<i64> = set
        .iter()
        .flat_map(|s| s.records.iter().map(|r| r.offset))
        .collect();
    let expected: Vec<i64> = (0..offsets.len() as i64).collect();
    assert_eq!(offsets, expected);
    assert_eq!(offsets.len() as i64, partition.high_watermark);

    // A librdkafka consumer with a large fetch.min.bytes gets everything too.
    let consumer = broker
        .client_config()
        .set("group.id", "parked-reader")
        .set("fetch.min.bytes", min_bytes.to_string())
        .set("fetch.wait.max.ms", "2000")
        .create::<rdkafka::consumer::BaseConsumer>()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("parked", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let messages = tokio::task::spawn_blocking(move || {
        poll_messages(&consumer, appended, Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert_eq!(messages.len(), appended);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_wait_ms_is_bounded() {
    let broker = TestBroker::start().await;
    broker.create_topic("idle", 1).await;
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(i32::MAX)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name("idle"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    // The cap (30 s) is below the guard: an unbounded wait would trip it.
    let response: FetchResponse = tokio::time::timeout(
        HANG_GUARD + Duration::from_secs(10),
        client.call(ApiKey::Fetch, 12, &fetch),
    )
    .await
    .expect("a fetch with max_wait_ms = i32::MAX is answered within the cap");
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert_eq!(partition.records.as_ref().map(|r| r.len()), Some(0));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commit_to_an_unknown_topic_is_unknown_topic_or_partition() {
    let broker = TestBroker::start().await;
    broker.create_topic("known", 1).await;
    let consumer = broker
        .client_config()
        .set("group.id", "committer")
        .set("enable.auto.commit", "false")
        .create::<rdkafka::consumer::BaseConsumer>()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("no-such-topic", 0, Offset::Offset(5))
        .unwrap();
    let result = tokio::task::spawn_blocking(move || {
        let result = consumer.commit(&offsets, CommitMode::Sync);
        (result, consumer)
    })
    .await
    .unwrap();
    let (result, consumer) = result;
    assert_eq!(
        result,
        Err(KafkaError::ConsumerCommit(
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))
    );
    drop(consumer);

    // Per partition, as Kafka: the known partition is stored, the others are not.
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("committer")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(topic_name("known"))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(3),
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(7)
                        .with_committed_offset(3),
                ]),
            OffsetCommitRequestTopic::default()
                .with_name(topic_name("no-such-topic"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(3)]),
        ]);
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &commit).await;
    let mut errors: Vec<(String, i32, i16)> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index, p.error_code))
        })
        .collect();
    errors.sort();
    let unknown = ResponseError::UnknownTopicOrPartition.code();
    assert_eq!(
        errors,
        [
            ("known".to_string(), 0, 0),
            ("known".to_string(), 7, unknown),
            ("no-such-topic".to_string(), 0, unknown),
        ]
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_records_are_named_by_batch_index() {
    let broker = TestBroker::start().await;
    create_compacted_topic(&broker, "compacted").await;

    // librdkafka reports Kafka's error for a record without a key.
    let producer = broker.producer();
    let delivery = producer
        .send(
            FutureRecord::<(), _>::to("compacted").payload("no key"),
            Duration::from_secs(10),
        )
        .await;
    match delivery {
        Err((KafkaError::MessageProduction(code), _)) => {
            assert_eq!(code, RDKafkaErrorCode::InvalidRecord)
        }
        other => panic!("expected INVALID_RECORD, got {other:?}"),
    }

    // The response names the bad records of the batch (KIP-467, Produce v8+).
    let batch = record_batch(&[Some("a"), None, Some("c"), None]);
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let response: ProduceResponse = client
        .call(ApiKey::Produce, 9, &produce_request("compacted", -1, batch))
        .await;
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, ResponseError::InvalidRecord.code());
    let indexes: Vec<i32> = partition
        .record_errors
        .iter()
        .map(|e| e.batch_index)
        .collect();
    assert_eq!(indexes, [1, 3], "{partition:?}");
    for e in &partition.record_errors {
        let message = e.batch_index_error_message.as_ref().expect("message");
        assert!(message.contains("without a key"), "{message}");
    }
    let message = partition.error_message.as_ref().expect("error_message");
    assert!(message.contains("2 record"), "{message}");
    // Nothing of the batch was appended.
    assert_eq!(broker.log("compacted", 0).log_end_offset(), 0);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_acks0_produce_closes_the_connection() {
    let broker = TestBroker::start().await;
    create_compacted_topic(&broker, "compacted-acks0").await;
    let api_versions = request_body(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default());

    // A good acks=0 produce: no answer, and the connection keeps serving.
    let mut conn = RawConnection::connect(&broker.bootstrap()).await;
    let good = produce_request("compacted-acks0", 0, record_batch(&[Some("k")]));
    conn.send_frame(&request_body(ApiKey::Produce, 9, &good))
        .await;
    conn.send_frame(&api_versions).await;
    conn.expect_frame("ApiVersions after a good acks=0 produce")
        .await;

    // A rejected one: the connection is closed, the client's only way to notice.
    let bad = produce_request("compacted-acks0", 0, record_batch(&[None]));
    conn.send_frame(&request_body(ApiKey::Produce, 9, &bad))
        .await;
    conn.send_frame(&api_versions).await;
    conn.expect_closed("after a failed acks=0 produce").await;

    // Only the good record is in the log, and the broker serves new connections.
    assert_eq!(broker.log("compacted-acks0", 0).log_end_offset(), 1);
    let mut conn = RawConnection::connect(&broker.bootstrap()).await;
    conn.send_frame(&api_versions).await;
    conn.expect_frame("ApiVersions on a new connection").await;
    broker.shutdown().await;
}
