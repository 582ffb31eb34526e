//! Client quotas as a Kafka user meets them: AlterClientQuotas and DescribeClientQuotas on
//! the wire (as `kafka-configs --entity-type users|clients` sends them) with Kafka's
//! errors, quotas that survive a restart, who may alter and describe them, and the quotas
//! at work: a librdkafka producer and a client that ignores `throttle_time_ms` both held
//! near their `producer_byte_rate`, a consumer near its `consumer_byte_rate`, a busy
//! client over its `request_percentage`, and topic mutations over
//! `controller_mutation_rate` refused (KIP-599).

mod common;

use common::secured::PLAIN_JAAS;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::wire::WireClient;
use common::TestBroker;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

const KIB: f64 = 1024.0;
/// The client id of every `WireClient` request.
const WIRE_CLIENT_ID: &str = "moldau-wire-test";

const INVALID_REQUEST: i16 = 42;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const THROTTLING_QUOTA_EXCEEDED: i16 = 89;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// An entity as (type, name) pairs, `None` the default.
type Entity<'a> = &'a [(&'a str, Option<&'a str>)];

fn entry(entity: Entity, ops: &[(&str, Option<f64>)]) -> EntryData {
    EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(t, n)| {
                    EntityData::default()
                        .with_entity_type(s(t))
                        .with_entity_name(n.map(s))
                })
                .collect(),
        )
        .with_ops(
            ops.iter()
                .map(|(key, value)| {
                    OpData::default()
                        .with_key(s(key))
                        .with_value(value.unwrap_or(0.0))
                        .with_remove(value.is_none())
                })
                .collect(),
        )
}

/// Each entry's result as "type=name/... code message".
async fn alter(
    client: &mut WireClient,
    entries: Vec<EntryData>,
    validate_only: bool,
) -> Vec<String> {
    let request = AlterClientQuotasRequest::default()
        .with_entries(entries)
        .with_validate_only(validate_only);
    let response: AlterClientQuotasResponse =
        client.call(ApiKey::AlterClientQuotas, 1, &request).await;
    response
        .entries
        .iter()
        .map(|e| {
            let entity: Vec<String> = e
                .entity
                .iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c.entity_type.as_str(),
                        c.entity_name.as_deref().unwrap_or("<default>")
                    )
                })
                .collect();
            format!(
                "{} {} {}",
                entity.join("/"),
                e.error_code,
                e.error_message.as_deref().unwrap_or("null")
            )
        })
        .collect()
}

async fn set_quota(client: &mut WireClient, entity: Entity<'_>, key: &str, value: f64) {
    let results = alter(client, vec![entry(entity, &[(key, Some(value))])], false).await;
    assert!(results[0].ends_with(" 0 null"), "{results:?}");
}

/// (match type, entity type, name) components; `Err` is the response's error.
async fn describe(
    client: &mut WireClient,
    components: &[(i8, &str, Option<&str>)],
    strict: bool,
) -> Result<Vec<String>, (i16, String)> {
    let request = DescribeClientQuotasRequest::default()
        .with_components(
            components
                .iter()
                .map(|(match_type, t, n)| {
                    ComponentData::default()
                        .with_entity_type(s(t))
                        .with_match_type(*match_type)
                        .with_match(n.map(s))
                })
                .collect(),
        )
        .with_strict(strict);
    let response: DescribeClientQuotasResponse =
        client.call(ApiKey::DescribeClientQuotas, 1, &request).await;
    if response.error_code != 0 {
        assert!(response.entries.is_none());
        let message = response
            .error_message
            .as_deref()
            .unwrap_or("null")
            .to_string();
        return Err((response.error_code, message));
    }
    Ok(response
        .entries
        .expect("entries")
        .iter()
        .map(|e| {
            let entity: Vec<String> = e
                .entity
                .iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c.entity_type.as_str(),
                        c.entity_name.as_deref().unwrap_or("<default>")
                    )
                })
                .collect();
            let values: Vec<String> = e
                .values
                .iter()
                .map(|v| format!("{}={}", v.key.as_str(), v.value))
                .collect();
            format!("{} {}", entity.join("/"), values.join(","))
        })
        .collect())
}

const EXACT: i8 = 0;
const DEFAULT: i8 = 1;
const ANY: i8 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_altered_described_refused_and_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    assert_eq!(describe(&mut client, &[], false).await, Ok(vec![]));

    let results = alter(
        &mut client,
        vec![
            entry(
                &[("user", Some("alice")), ("client-id", Some("app"))],
                &[
                    ("producer_byte_rate", Some(1024.0)),
                    ("consumer_byte_rate", Some(2048.0)),
                ],
            ),
            entry(&[("user", None)], &[("request_percentage", Some(25.5))]),
            entry(
                &[("client-id", None)],
                &[("producer_byte_rate", Some(4096.0))],
            ),
            entry(
                &[("ip", Some("10.1.2.3"))],
                &[("connection_creation_rate", Some(10.0))],
            ),
            // Kafka's refusals leave the entity untouched.
            entry(
                &[("user", Some("bob"))],
                &[("connection_creation_rate", Some(1.0))],
            ),
            entry(
                &[("ip", Some("10.1.2.3")), ("client-id", Some("x"))],
                &[("connection_creation_rate", Some(1.0))],
            ),
            entry(
                &[("client-id", Some(""))],
                &[("producer_byte_rate", Some(1.0))],
            ),
            entry(
                &[("user", Some("carol"))],
                &[("producer_byte_rate", Some(0.5))],
            ),
        ],
        false,
    )
    .await;
    assert_eq!(
        results,
        vec![
            "client-id=app/user=alice 0 null",
            "user=<default> 0 null",
            "client-id=<default> 0 null",
            "ip=10.1.2.3 0 null",
            "user=bob 42 Invalid configuration key connection_creation_rate",
            "client-id=x/ip=10.1.2.3 42 Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId",
            "client-id= 42 Empty client-id not supported",
            "user=carol 42 producer_byte_rate cannot be a fractional value.",
        ]
    );
    // validate_only checks and answers, but stores nothing.
    let results = alter(
        &mut client,
        vec![
            entry(
                &[("user", Some("dave"))],
                &[("producer_byte_rate", Some(1.0))],
            ),
            entry(
                &[("user", Some("dave2"))],
                &[("producer_byte_rate", Some(-1.0))],
            ),
        ],
        true,
    )
    .await;
    assert_eq!(
        results,
        vec![
            "user=dave 0 null",
            "user=dave2 42 Quota producer_byte_rate must be greater than 0"
        ]
    );

    let all: Vec<String> = [
        "client-id=<default> producer_byte_rate=4096",
        "client-id=app/user=alice consumer_byte_rate=2048,producer_byte_rate=1024",
        "ip=10.1.2.3 connection_creation_rate=10",
        "user=<default> request_percentage=25.5",
    ]
    .map(String::from)
    .into();
    assert_eq!(describe(&mut client, &[], false).await, Ok(all.clone()));
    assert_eq!(
        describe(&mut client, &[(EXACT, "user", Some("alice"))], false).await,
        Ok(vec![all[1].to_string()])
    );
    // Strict: only entities of exactly the types given (kafka-configs' filters).
    assert_eq!(
        describe(&mut client, &[(EXACT, "user", Some("alice"))], true).await,
        Ok(vec![])
    );
    assert_eq!(
        describe(&mut client, &[(DEFAULT, "user", None)], true).await,
        Ok(vec![all[3].to_string()])
    );
    assert_eq!(
        describe(&mut client, &[(ANY, "client-id", None)], true).await,
        Ok(vec![all[0].to_string()])
    );
    assert_eq!(
        describe(
            &mut client,
            &[(ANY, "ip", None), (ANY, "user", None)],
            false
        )
        .await,
        Err((
            INVALID_REQUEST,
            "Invalid entity filter component combination. IP filter component should not be \
             used with user or clientId filter component."
                .to_string()
        ))
    );
    assert_eq!(
        describe(&mut client, &[(ANY, "topic", None)], false).await,
        Err((35, "Unsupported entity type topic".to_string()))
    );

    // A removal, then a restart: the quotas are in the metadata log.
    let results = alter(
        &mut client,
        vec![entry(
            &[("user", Some("alice")), ("client-id", Some("app"))],
            &[("consumer_byte_rate", None)],
        )],
        false,
    )
    .await;
    assert_eq!(results, vec!["client-id=app/user=alice 0 null"]);
    drop(client);
    broker.restart().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    assert_eq!(
        describe(&mut client, &[], false).await,
        Ok(vec![
            all[0].to_string(),
            "client-id=app/user=alice producer_byte_rate=1024".to_string(),
            all[2].to_string(),
            all[3].to_string(),
        ])
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_principals_allowed_cluster_configs_see_and_change_quotas() {
    let broker = TestBroker::start_with(&[
        ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
        ("inter.broker.listener.name", "SASL_PLAINTEXT"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        (
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            PLAIN_JAAS,
        ),
        (
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ),
        ("super.users", "User:admin"),
    ])
    .await;
    let bootstrap = broker.bootstrap();
    let mut alice = WireClient::connect_sasl_plain(&bootstrap, "alice", "alice-secret").await;
    let mut admin = WireClient::connect_sasl_plain(&bootstrap, "admin", "admin-secret").await;
    let quota = entry(
        &[("user", Some("alice"))],
        &[("producer_byte_rate", Some(1e6))],
    );

    // Alice may neither change (ALTER_CONFIGS) nor read (DESCRIBE_CONFIGS) quotas.
    assert_eq!(
        alter(&mut alice, vec![quota.clone()], false).await,
        vec!["user=alice 31 Cluster authorization failed."]
    );
    assert_eq!(
        describe(&mut alice, &[], false).await,
        Err((CLUSTER_AUTHORIZATION_FAILED, "null".to_string()))
    );
    assert_eq!(
        alter(&mut admin, vec![quota], false).await,
        vec!["user=alice 0 null"]
    );
    assert_eq!(
        describe(&mut admin, &[], false).await,
        Ok(vec!["user=alice producer_byte_rate=1000000".to_string()])
    );
    // The user a quota applies to is the principal: a tiny request quota on Alice
    // throttles her, not the admin on the same client id.
    let results = alter(
        &mut admin,
        vec![entry(
            &[("user", Some("alice"))],
            &[("request_percentage", Some(0.001))],
        )],
        false,
    )
    .await;
    assert_eq!(results, vec!["user=alice 0 null"]);
    let request = MetadataRequest::default().with_topics(Some(vec![]));
    let start = Instant::now();
    let throttled = loop {
        let response: MetadataResponse = alice.call(ApiKey::Metadata, 12, &request).await;
        if response.throttle_time_ms > 0 || start.elapsed() > Duration::from_secs(10) {
            break response.throttle_time_ms > 0;
        }
    };
    assert!(throttled, "alice was never throttled");
    for _ in 0..50 {
        let response: MetadataResponse = admin.call(ApiKey::Metadata, 12, &request).await;
        assert_eq!(response.throttle_time_ms, 0);
    }
    broker.shutdown().await;
}

/// Delivered payload bytes with their delivery times, and the largest throttle
/// librdkafka's statistics reported.
#[derive(Default)]
struct Meter {
    start: Mutex<Option<Instant>>,
    deliveries: Mutex<Vec<(Duration, usize)>>,
    max_throttle_ms: AtomicI64,
    failed: AtomicU64,
}

impl Meter {
    fn elapsed(&self) -> Duration {
        self.start
            .lock()
            .unwrap()
            .get_or_insert_with(Instant::now)
            .elapsed()
    }

    /// Bytes per second delivered between `from` and `to` after the start.
    fn rate(&self, from: Duration, to: Duration) -> f64 {
        let bytes: usize = self
            .deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, bytes)| bytes)
            .sum();
        bytes as f64 / (to - from).as_secs_f64()
    }
}

struct MeterContext(Arc<Meter>);

impl ClientContext for MeterContext {
    fn stats(&self, statistics: Statistics) {
        for broker in statistics.brokers.values() {
            if let Some(throttle) = &broker.throttle {
                self.0
                    .max_throttle_ms
                    .fetch_max(throttle.max, Ordering::Relaxed);
            }
        }
    }
}

impl ProducerContext for MeterContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let bytes = message.payload_len();
                let at = self.0.elapsed();
                self.0.deliveries.lock().unwrap().push((at, bytes));
            }
            // Purged at the end of the run: never sent.
            Err((
                KafkaError::MessageProduction(
                    RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight,
                ),
                _,
            )) => {}
            Err(_) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Produces 1 KiB records as fast as librdkafka takes them for `run_for`, in small
/// batches (so that each request is a small part of the quota).
fn produce_flat_out(
    bootstrap: String,
    topic: &str,
    client_id: &str,
    run_for: Duration,
) -> Arc<Meter> {
    let meter = Arc::new(Meter::default());
    let producer: BaseProducer<MeterContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "16384")
        .set("statistics.interval.ms", "500")
        .set("message.timeout.ms", "30000")
        .create_with_context(MeterContext(meter.clone()))
        .expect("producer");
    let payload = vec![b'q'; 1024];
    meter.elapsed();
    while meter.elapsed() < run_for {
        let record = BaseRecord::<(), [u8]>::to(topic).payload(&payload[..]);
        if producer.send(record).is_err() {
            // Queue full: the broker holds us back.
            producer.poll(Duration::from_millis(5));
        } else {
            producer.poll(Duration::ZERO);
        }
    }
    // What is still queued is not counted.
    producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    producer.poll(Duration::from_millis(100));
    meter
}

/// A 16 KiB record batch.
fn batch_16k() -> Bytes {
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
        timestamp: 0,
        key: None,
        value: Some(Bytes::from(vec![b'i'; 16 * 1024])),
        headers: IndexMap::new(),
    };
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, &[record], &options).unwrap();
    batch.freeze()
}

/// A client that ignores `throttle_time_ms`: it sends its next produce as soon as it has
/// the answer. Returns (seconds since start, bytes) per acknowledged request and the
/// largest throttle the broker answered.
async fn produce_ignoring_throttles(
    bootstrap: &str,
    topic: &str,
    run_for: Duration,
) -> (Vec<(f64, usize)>, i32) {
    let mut client = WireClient::connect(bootstrap).await;
    let batch = batch_16k();
    let start = Instant::now();
    let mut acked = Vec::new();
    let mut max_throttle_ms = 0;
    while start.elapsed() < run_for {
        let request = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(s(topic)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch.clone()))])]);
        let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await;
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        max_throttle_ms = max_throttle_ms.max(response.throttle_time_ms);
        acked.push((start.elapsed().as_secs_f64(), batch.len()));
    }
    (acked, max_throttle_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_are_held_near_their_byte_rate_whether_they_respect_throttles_or_not() {
    // Three one-second samples: a new client's allowance is two seconds' worth, so the
    // rate settles within the test (Kafka's default of 11 gives ten seconds').
    let broker = TestBroker::start_with(&[("quota.window.num", "3")]).await;
    broker.create_topic("metered", 1).await;
    broker.create_topic("ignored", 1).await;
    let quota = 100.0 * KIB;
    let mut admin = WireClient::connect(&broker.bootstrap()).await;
    set_quota(
        &mut admin,
        &[("client-id", Some("metered-producer"))],
        "producer_byte_rate",
        quota,
    )
    .await;
    set_quota(
        &mut admin,
        &[("client-id", Some(WIRE_CLIENT_ID))],
        "producer_byte_rate",
        quota,
    )
    .await;
    drop(admin);

    let run_for = Duration::from_secs(8);
    let bootstrap = broker.bootstrap();
    let librdkafka = tokio::task::spawn_blocking(move || {
        produce_flat_out(bootstrap, "metered", "metered-producer", run_for)
    });
    let (ignoring, ignoring_max_throttle_ms) =
        produce_ignoring_throttles(&broker.bootstrap(), "ignored", Duration::from_secs(6)).await;
    let meter = librdkafka.await.unwrap();

    // Kafka's sampled rate lets a burst through now and then (when an old sample leaves
    // the window), so the settled rate is taken over the last six seconds.
    let overall = meter.rate(Duration::ZERO, run_for);
    let settled = meter.rate(Duration::from_secs(2), run_for);
    let max_throttle_ms = meter.max_throttle_ms.load(Ordering::Relaxed);
    println!(
        "librdkafka: {:.1} KiB/s over {run_for:?}, {:.1} KiB/s after 2 s, max throttle \
         {max_throttle_ms} ms (quota {:.0} KiB/s)",
        overall / KIB,
        settled / KIB,
        quota / KIB
    );
    assert_eq!(
        meter.failed.load(Ordering::Relaxed),
        0,
        "no delivery failed"
    );
    assert!(max_throttle_ms > 0, "librdkafka saw no throttle");
    assert!(overall < 2.0 * quota, "{overall} B/s overall");
    assert!(
        (0.5 * quota..1.5 * quota).contains(&settled),
        "{settled} B/s once settled"
    );

    let late: usize = ignoring
        .iter()
        .filter(|(t, _)| *t >= 2.0)
        .map(|(_, b)| b)
        .sum();
    let ignoring_settled = late as f64 / 4.0;
    let ignoring_overall = ignoring.iter().map(|(_, b)| b).sum::<usize>() as f64 / 6.0;
    println!(
        "client ignoring throttles: {:.1} KiB/s over 6 s, {:.1} KiB/s after 2 s, max \
         throttle {ignoring_max_throttle_ms} ms",
        ignoring_overall / KIB,
        ignoring_settled / KIB
    );
    assert!(ignoring_max_throttle_ms > 0);
    assert!(
        ignoring_overall < 2.0 * quota,
        "{ignoring_overall} B/s overall"
    );
    assert!(
        ignoring_settled < 1.5 * quota,
        "{ignoring_settled} B/s once settled: the muted connection holds it back"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_is_held_near_its_byte_rate() {
    let broker = TestBroker::start_with(&[("quota.window.num", "3")]).await;
    broker.create_topic("backlog", 1).await;
    let producer: BaseProducer = broker
        .client_config()
        .set("batch.size", "4096")
        .create()
        .expect("producer");
    let payload = vec![b'c'; 1024];
    for _ in 0..300 {
        producer
            .send(BaseRecord::<(), [u8]>::to("backlog").payload(&payload[..]))
            .expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
    let quota = 10.0 * KIB;
    let mut admin = WireClient::connect(&broker.bootstrap()).await;
    set_quota(
        &mut admin,
        &[("client-id", Some("metered-consumer"))],
        "consumer_byte_rate",
        quota,
    )
    .await;

    let consumer: BaseConsumer = broker
        .client_config()
        .set("client.id", "metered-consumer")
        .set("group.id", "unused")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("backlog", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let start = Instant::now();
    let mut consumed = 0usize;
    while start.elapsed() < Duration::from_secs(4) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            consumed += message.payload_len();
        }
    }
    // Two seconds' allowance, then 10 KiB/s: far from the 300 KiB waiting.
    println!(
        "consumer: {} KiB in 4 s at a quota of 10 KiB/s",
        consumed / 1024
    );
    assert!(consumed > 0);
    assert!(
        (consumed as f64) < 2.0 * (2.0 + 4.0) * quota,
        "{consumed} bytes"
    );
    // Closed while the broker runs (a consumer closing later waits for it).
    drop(consumer);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_client_over_its_request_percentage_is_throttled_at_most_a_window() {
    let broker = TestBroker::start().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    set_quota(&mut client, &[("user", None)], "request_percentage", 0.01).await;
    let request = MetadataRequest::default().with_topics(None);
    let start = Instant::now();
    let throttle_ms = loop {
        let response: MetadataResponse = client.call(ApiKey::Metadata, 12, &request).await;
        if response.throttle_time_ms > 0 || start.elapsed() > Duration::from_secs(10) {
            break response.throttle_time_ms;
        }
    };
    // ANONYMOUS is a user too: the default user's quota applies.
    assert!(throttle_ms > 0, "never throttled");
    assert!(throttle_ms <= 1000, "{throttle_ms} ms: at most one window");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_mutations_over_the_controller_mutation_rate_are_refused() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let mut client = WireClient::connect(&bootstrap).await;
    // One partition per second: a bucket of 11.
    set_quota(
        &mut client,
        &[("client-id", Some(WIRE_CLIENT_ID))],
        "controller_mutation_rate",
        1.0,
    )
    .await;
    let create = |name: &str, partitions: i32| {
        CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(s(name)))
                .with_num_partitions(partitions)
                .with_replication_factor(1)])
    };
    // The bucket has 11: 20 partitions are let through (strict quotas refuse only once
    // it is empty), and leave it at -9.
    let response: CreateTopicsResponse = client
        .call(ApiKey::CreateTopics, 7, &create("first", 20))
        .await;
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(response.throttle_time_ms, 0);

    // v6+ is strict: refused, with the time until the bucket is back at zero.
    let mut client = WireClient::connect(&bootstrap).await;
    let response: CreateTopicsResponse = client
        .call(ApiKey::CreateTopics, 7, &create("second", 1))
        .await;
    assert_eq!(response.topics[0].error_code, THROTTLING_QUOTA_EXCEEDED);
    assert_eq!(
        response.topics[0].error_message.as_deref(),
        Some("The throttling quota has been exceeded.")
    );
    assert!(
        (7_000..=9_000).contains(&response.throttle_time_ms),
        "{}",
        response.throttle_time_ms
    );
    // So are DeleteTopics v5+ and CreatePartitions v3+.
    let mut client = WireClient::connect(&bootstrap).await;
    let delete = DeleteTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(TopicName(s("first"))))
        ]);
    let response: DeleteTopicsResponse = client.call(ApiKey::DeleteTopics, 6, &delete).await;
    assert_eq!(response.responses[0].error_code, THROTTLING_QUOTA_EXCEEDED);
    let mut client = WireClient::connect(&bootstrap).await;
    let grow = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(TopicName(s("first")))
            .with_count(21)
            .with_assignments(None)]);
    let response: CreatePartitionsResponse = client.call(ApiKey::CreatePartitions, 3, &grow).await;
    assert_eq!(response.results[0].error_code, THROTTLING_QUOTA_EXCEEDED);
    // Older versions are permissive: done, and throttled.
    let mut client = WireClient::connect(&bootstrap).await;
    let response: CreateTopicsResponse = client
        .call(ApiKey::CreateTopics, 5, &create("third", 1))
        .await;
    assert_eq!(response.topics[0].error_code, 0);
    assert!(response.throttle_time_ms > 0);
    broker.shutdown().await;
}
