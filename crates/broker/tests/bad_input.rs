//! Bad input: a hostile client sends broken frames, lying lengths, unknown api keys and
//! corrupt record batches. Each gets an error response or a closed connection, while a real
//! librdkafka producer and consumer on other connections keep working and every record
//! acknowledged before, during and after is still readable.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::raw::{raw_header, RawConnection};
use common::wire::WireClient;
use common::{poll_messages, TestBroker};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceRequest, ProduceResponse,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

const TOPIC: &str = "survivor";
/// Kafka's default `socket.request.max.bytes`.
const SOCKET_REQUEST_MAX_BYTES: i32 = 104_857_600;
const PRODUCE_VERSION: i16 = 9;

/// A well-behaved user on their own connections: a producer whose acknowledged records are
/// remembered, and a check that reads them all back.
struct Session {
    producer: FutureProducer,
    acked: Vec<String>,
}

impl Session {
    /// Creates the topic and acknowledges a first few records.
    async fn begin(broker: &TestBroker) -> Session {
        broker.create_topic(TOPIC, 1).await;
        let mut session = Session {
            producer: broker.producer(),
            acked: Vec::new(),
        };
        session.produce(5).await;
        session
    }

    async fn produce(&mut self, count: usize) {
        for _ in 0..count {
            let value = format!("record-{}", self.acked.len());
            self.producer
                .send(
                    FutureRecord::to(TOPIC).key("k").payload(&value),
                    Duration::from_secs(30),
                )
                .await
                .expect("the well-behaved producer is acknowledged");
            self.acked.push(value);
        }
    }

    /// The producer's connection still works, and the topic holds exactly what was
    /// acknowledged: nothing lost, nothing from the hostile client.
    async fn still_works(&mut self, broker: &TestBroker) {
        self.produce(5).await;
        let consumer = broker.consumer();
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(TOPIC, 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let expected = self.acked.len();
        let messages = tokio::task::spawn_blocking(move || {
            poll_messages(&consumer, expected, Duration::from_secs(60))
        })
        .await
        .unwrap();
        let values: Vec<String> = messages
            .iter()
            .map(|m| String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap())
            .collect();
        assert_eq!(values, self.acked, "acknowledged records read back");
        let offsets: Vec<i64> = messages.iter().map(|m| m.offset()).collect();
        assert_eq!(offsets, (0..expected as i64).collect::<Vec<_>>());
    }
}

/// Starts a broker with a session, runs the hostile client, checks the session.
async fn survive<F, Fut>(hostile: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let broker = TestBroker::start().await;
    let mut session = Session::begin(&broker).await;
    hostile(broker.bootstrap()).await;
    session.still_works(&broker).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frames_close_the_connection() {
    survive(|addr| async move {
        // A length prefix, part of the frame, then EOF.
        let mut conn = RawConnection::connect(&addr).await;
        let mut partial = 100i32.to_be_bytes().to_vec();
        partial.extend_from_slice(&raw_header(ApiKey::Metadata as i16, 1, 1, false));
        conn.send(&partial).await;
        conn.finish_writing().await;
        conn.expect_closed("frame cut after its header").await;

        // Half a length prefix, then EOF.
        let mut conn = RawConnection::connect(&addr).await;
        conn.send(&[0, 0]).await;
        conn.finish_writing().await;
        conn.expect_closed("length prefix cut in half").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_prefixes_outside_the_limit_close_the_connection() {
    survive(|addr| async move {
        for size in [SOCKET_REQUEST_MAX_BYTES + 1, i32::MAX, -1, i32::MIN] {
            // Only the prefix: the broker must not wait for (or allocate) the body.
            let mut conn = RawConnection::connect(&addr).await;
            conn.send(&size.to_be_bytes()).await;
            conn.expect_closed(&format!("length prefix {size}")).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_shorter_than_a_header_close_the_connection() {
    survive(|addr| async move {
        for body in [&[][..], &[0, 3][..], &[0, 3, 0, 1, 0, 0, 0][..]] {
            let mut conn = RawConnection::connect(&addr).await;
            conn.send_frame(body).await;
            conn.expect_closed(&format!("{}-byte frame", body.len()))
                .await;
        }
        // Long enough, but the client id claims more bytes than the frame has.
        let mut header = raw_header(ApiKey::Metadata as i16, 1, 7, false);
        header.truncate(8);
        header.put_i16(100);
        let mut conn = RawConnection::connect(&addr).await;
        conn.send_frame(&header).await;
        conn.expect_closed("client id longer than the frame").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_keys_close_the_connection() {
    survive(|addr| async move {
        for api_key in [999i16, -1, i16::MAX] {
            let mut conn = RawConnection::connect(&addr).await;
            conn.send_frame(&raw_header(api_key, 0, 1, false)).await;
            conn.expect_closed(&format!("api key {api_key}")).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_of_an_unknown_version_gets_the_v0_answer() {
    survive(|addr| async move {
        let mut conn = RawConnection::connect(&addr).await;
        let mut request = raw_header(ApiKey::ApiVersions as i16, 99, 42, true);
        request.extend_from_slice(b"whatever a v99 body holds");
        conn.send_frame(&request).await;
        let mut response = conn.expect_frame("ApiVersions v99").await;
        // ApiVersions responses always carry a v0 header; the body is in v0 format.
        let header = ResponseHeader::decode(&mut response, 0).unwrap();
        assert_eq!(header.correlation_id, 42);
        let body = ApiVersionsResponse::decode(&mut response, 0).unwrap();
        assert_eq!(body.error_code, ResponseError::UnsupportedVersion.code());
        let keys: Vec<i16> = body.api_keys.iter().map(|k| k.api_key).collect();
        for key in [
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::Metadata,
            ApiKey::ApiVersions,
        ] {
            assert!(keys.contains(&(key as i16)), "{key:?} listed in {keys:?}");
        }
        let own = body
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::ApiVersions as i16)
            .unwrap();
        assert_eq!((own.min_version, own.max_version), (0, 4));

        // The client retries with a version it finds there, on the same connection.
        conn.send_frame(&raw_header(ApiKey::ApiVersions as i16, 0, 43, false))
            .await;
        let mut response = conn.expect_frame("ApiVersions v0 retry").await;
        let header = ResponseHeader::decode(&mut response, 0).unwrap();
        assert_eq!(header.correlation_id, 43);
        let body = ApiVersionsResponse::decode(&mut response, 0).unwrap();
        assert_eq!(body.error_code, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_apis_at_unsupported_versions_close_the_connection() {
    survive(|addr| async move {
        for (api_key, version, flexible) in [
            (ApiKey::Metadata, 99, true),
            (ApiKey::Produce, 2, false),
            (ApiKey::Fetch, i16::MAX, true),
            (ApiKey::Metadata, -1, false),
        ] {
            let mut conn = RawConnection::connect(&addr).await;
            conn.send_frame(&raw_header(api_key as i16, version, 1, flexible))
                .await;
            conn.expect_closed(&format!("{api_key:?} v{version}")).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_a_valid_header_closes_the_connection() {
    survive(|addr| async move {
        for (api_key, version, flexible) in [
            (ApiKey::Metadata, 1, false),
            (ApiKey::Metadata, 12, true),
            (ApiKey::Produce, PRODUCE_VERSION, true),
            (ApiKey::Fetch, 4, false),
            (ApiKey::CreateTopics, 5, true),
        ] {
            let mut request = raw_header(api_key as i16, version, 1, flexible);
            request.extend_from_slice(&[0xfe; 13]);
            let mut conn = RawConnection::connect(&addr).await;
            conn.send_frame(&request).await;
            conn.expect_closed(&format!("{api_key:?} v{version} + garbage"))
                .await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn array_counts_of_two_to_the_31_close_the_connection() {
    // Before the kafka-protocol patch (third_party/README.md) each of these made the codec
    // ask for >100 GB up front, and the failed allocation aborted the whole broker.
    survive(|addr| async move {
        let mut metadata_v1 = raw_header(ApiKey::Metadata as i16, 1, 1, false);
        metadata_v1.put_i32(i32::MAX);
        let mut metadata_v12 = raw_header(ApiKey::Metadata as i16, 12, 1, true);
        metadata_v12.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // varint u32::MAX
        let mut produce_v3 = raw_header(ApiKey::Produce as i16, 3, 1, false);
        produce_v3.put_i16(-1); // transactional id: null
        produce_v3.put_i16(-1); // acks
        produce_v3.put_i32(30_000); // timeout
        produce_v3.put_i32(i32::MIN + 1); // topics: negative, then a huge one
        let mut produce_v3_huge = produce_v3.clone();
        let len = produce_v3_huge.len();
        produce_v3_huge[len - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
        for (what, request) in [
            ("Metadata v1 topics", metadata_v1),
            ("Metadata v12 topics", metadata_v12),
            ("Produce v3 negative topics", produce_v3),
            ("Produce v3 topics", produce_v3_huge),
        ] {
            let mut conn = RawConnection::connect(&addr).await;
            conn.send_frame(&request).await;
            conn.expect_closed(what).await;
        }
    })
    .await;
}

/// One record batch as a producer would send it, encoded with kafka-protocol.
fn record_batch(value: &str) -> BytesMut {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: IndexMap::new(),
    };
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, &[record], &options).unwrap();
    batch
}

// RecordBatch v2 header fields (byte offsets).
const BATCH_LENGTH: usize = 8;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const RECORD_COUNT: usize = 57;

fn put_i32_at(batch: &mut [u8], at: usize, value: i32) {
    batch[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Recomputes the CRC, so that the broker has to find the lie elsewhere.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c(&batch[ATTRIBUTES..]);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// CRC-32C (Castagnoli), bit by bit: a few batches per test need no table.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82f6_3b78 & (!(crc & 1)).wrapping_add(1));
        }
    }
    !crc
}

/// Produces `records` to partition 0 of `topic` over a hand-rolled connection and returns
/// the partition's error code. The connection stays open: it is used again afterwards.
async fn produce_raw(client: &mut WireClient, topic: &str, records: BytesMut) -> i16 {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records.freeze()))])]);
    let response: ProduceResponse = client
        .call(ApiKey::Produce, PRODUCE_VERSION, &request)
        .await;
    response.responses[0].partition_responses[0].error_code
}

const CORRUPT_MESSAGE: i16 = 2;
const INVALID_RECORD: i16 = 87;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_record_batches_get_a_partition_error_and_append_nothing() {
    survive(|addr| async move {
        let mut client = WireClient::connect(&addr).await;

        let mut wrong_crc = record_batch("hostile: wrong crc");
        let last = wrong_crc.len() - 1;
        wrong_crc[last] ^= 0x55;
        let code = produce_raw(&mut client, TOPIC, wrong_crc).await;
        assert_eq!(code, CORRUPT_MESSAGE, "wrong CRC");

        let mut too_long = record_batch("hostile: length past the end");
        let len = too_long.len() as i32 - 12;
        put_i32_at(&mut too_long, BATCH_LENGTH, len + 100);
        let code = produce_raw(&mut client, TOPIC, too_long).await;
        assert!(
            [CORRUPT_MESSAGE, INVALID_RECORD].contains(&code),
            "length past the end: {code}"
        );

        let mut too_short = record_batch("hostile: length short of the end");
        put_i32_at(&mut too_short, BATCH_LENGTH, len - 5);
        let code = produce_raw(&mut client, TOPIC, too_short).await;
        assert!(
            [CORRUPT_MESSAGE, INVALID_RECORD].contains(&code),
            "length short: {code}"
        );

        let mut negative = record_batch("hostile: negative length");
        put_i32_at(&mut negative, BATCH_LENGTH, -1);
        let code = produce_raw(&mut client, TOPIC, negative).await;
        assert!(
            [CORRUPT_MESSAGE, INVALID_RECORD].contains(&code),
            "negative length: {code}"
        );

        // Record count and last offset delta disagree (CRC valid).
        let mut count = record_batch("hostile: record count");
        put_i32_at(&mut count, RECORD_COUNT, 5);
        fix_crc(&mut count);
        let code = produce_raw(&mut client, TOPIC, count).await;
        assert!(
            [CORRUPT_MESSAGE, INVALID_RECORD].contains(&code),
            "record count: {code}"
        );

        // Kafka answers these with an error and keeps the connection.
        let response: ApiVersionsResponse = client
            .call(ApiKey::ApiVersions, 3, &api_versions_v3())
            .await;
        assert_eq!(response.error_code, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistent_lie_about_the_record_count_is_rejected() {
    // Count and last offset delta agree (5 records, delta 4) and the CRC is valid, but the
    // batch holds one record. Kafka iterates the records and answers CORRUPT_MESSAGE or
    // INVALID_RECORD; appending it would hand consumers offsets that hold no record.
    survive(|addr| async move {
        let mut client = WireClient::connect(&addr).await;
        let mut batch = record_batch("hostile: five records claimed");
        put_i32_at(&mut batch, RECORD_COUNT, 5);
        put_i32_at(&mut batch, LAST_OFFSET_DELTA, 4);
        fix_crc(&mut batch);
        let code = produce_raw(&mut client, TOPIC, batch).await;
        assert!(
            [CORRUPT_MESSAGE, INVALID_RECORD].contains(&code),
            "record count: {code}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_count_of_two_to_the_31_on_a_compacted_topic_is_rejected() {
    // Compacted topics read every record to check keys. A decoder that preallocates by this
    // count (kafka-protocol 0.18 before the patch in third_party/) asks for 378 GB and aborts.
    survive(|addr| async move {
        let broker_admin = {
            let mut config = rdkafka::ClientConfig::new();
            config.set("bootstrap.servers", &addr);
            config
                .create::<rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext>>()
                .unwrap()
        };
        let topic = NewTopic::new("compacted", 1, TopicReplication::Fixed(1))
            .set("cleanup.policy", "compact");
        let created = broker_admin
            .create_topics(&[topic], &AdminOptions::new())
            .await
            .unwrap();
        created.into_iter().for_each(|r| {
            r.expect("compacted topic created");
        });
        let mut client = WireClient::connect(&addr).await;
        let mut batch = record_batch("hostile: 2^31 records claimed");
        put_i32_at(&mut batch, RECORD_COUNT, i32::MAX);
        put_i32_at(&mut batch, LAST_OFFSET_DELTA, i32::MAX - 1);
        fix_crc(&mut batch);
        let code = produce_raw(&mut client, "compacted", batch).await;
        assert!(
            [CORRUPT_MESSAGE, INVALID_RECORD].contains(&code),
            "record count: {code}"
        );
        // A valid keyed batch still goes in on the same connection.
        let code = produce_raw(&mut client, "compacted", record_batch("compacted ok")).await;
        assert_eq!(code, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_after_a_closed_one_is_served() {
    survive(|addr| async move {
        let mut conn = RawConnection::connect(&addr).await;
        conn.send(&(-5i32).to_be_bytes()).await;
        conn.expect_closed("negative length").await;
        let mut client = WireClient::connect(&addr).await;
        let response: ApiVersionsResponse = client
            .call(ApiKey::ApiVersions, 3, &api_versions_v3())
            .await;
        assert_eq!(response.error_code, 0);
    })
    .await;
}

fn api_versions_v3() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("moldau-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_explicit_partition_assignments_than_the_limit_get_policy_violation() {
    use kafka_protocol::messages::create_topics_request::{
        CreatableReplicaAssignment, CreatableTopic,
    };
    use kafka_protocol::messages::{BrokerId, CreateTopicsRequest, CreateTopicsResponse};
    // Without a bound, one 200 KB request would create 20,000 partition logs.
    survive(|addr| async move {
        let assignments = (0..20_000)
            .map(|p| {
                CreatableReplicaAssignment::default()
                    .with_partition_index(p)
                    .with_broker_ids(vec![BrokerId(1)])
            })
            .collect();
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("too-many")))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
                .with_assignments(assignments)]);
        let mut client = WireClient::connect(&addr).await;
        let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 5, &request).await;
        // Kafka's answer: more than 10,000 partitions in one request.
        assert_eq!(
            response.topics[0].error_code,
            ResponseError::PolicyViolation.code()
        );
    })
    .await;
}
