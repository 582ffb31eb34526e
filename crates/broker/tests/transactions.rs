//! Transactions as a Kafka user sees them, with librdkafka's transactional producer and
//! read_committed / read_uncommitted consumers. No timing is asserted: a reader waits for
//! a committed sentinel written after the records under test, and deadlines only guard
//! against hangs.

mod common;

use std::time::{Duration, Instant};

use common::TestBroker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

const HANG_GUARD: Duration = Duration::from_secs(90);
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

fn txn_producer(config: ClientConfig, transactional_id: &str) -> BaseProducer {
    let mut config = config;
    let producer: BaseProducer = config
        .set("transactional.id", transactional_id)
        .create()
        .expect("transactional producer");
    producer
        .init_transactions(TXN_TIMEOUT)
        .expect("init_transactions");
    producer
}

fn send(producer: &BaseProducer, topic: &str, values: &[&str]) {
    for v in values {
        producer
            .send(BaseRecord::<(), str>::to(topic).payload(*v).partition(0))
            .expect("enqueue");
    }
    producer.flush(TXN_TIMEOUT).expect("flush");
}

/// One whole committed transaction.
fn commit(producer: &BaseProducer, topic: &str, values: &[&str]) {
    producer.begin_transaction().expect("begin");
    send(producer, topic, values);
    producer.commit_transaction(TXN_TIMEOUT).expect("commit");
}

/// Reads partition 0 from the start with `isolation.level` until `last` arrives.
fn read_until(config: ClientConfig, topic: &str, isolation: &str, last: &str) -> Vec<String> {
    let mut config = config;
    let consumer: BaseConsumer = config
        .set("group.id", "txn-test-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + HANG_GUARD;
    let mut values = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "{isolation} reader never saw {last:?}; got {values:?}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default()).to_string();
            let done = value == last;
            values.push(value);
            if done {
                return values;
            }
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_is_visible_and_abort_only_to_read_uncommitted() {
    let broker = TestBroker::start().await;
    broker.create_topic("txn-basic", 1).await;
    let config = broker.client_config();
    blocking(move || {
        let producer = txn_producer(config, "basic");
        producer.begin_transaction().expect("begin");
        send(&producer, "txn-basic", &["a1", "a2"]);
        producer.abort_transaction(TXN_TIMEOUT).expect("abort");
        commit(&producer, "txn-basic", &["c1", "c2"]);
    })
    .await;
    let config = broker.client_config();
    let committed = blocking(move || read_until(config, "txn-basic", "read_committed", "c2")).await;
    assert_eq!(committed, ["c1", "c2"]);
    let config = broker.client_config();
    let all = blocking(move || read_until(config, "txn-basic", "read_uncommitted", "c2")).await;
    assert_eq!(all, ["a1", "a2", "c1", "c2"]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_transactions_keep_the_last_stable_offset() {
    let broker = TestBroker::start().await;
    broker.create_topic("txn-interleaved", 1).await;
    let (c1, c2) = (broker.client_config(), broker.client_config());
    blocking(move || {
        let t = "txn-interleaved";
        let p1 = txn_producer(c1, "inter-1");
        let p2 = txn_producer(c2, "inter-2");
        p1.begin_transaction().expect("begin 1");
        p2.begin_transaction().expect("begin 2");
        send(&p1, t, &["x1"]);
        send(&p2, t, &["y1"]);
        send(&p1, t, &["x2"]);
        p2.commit_transaction(TXN_TIMEOUT).expect("commit 2");
        p1.abort_transaction(TXN_TIMEOUT).expect("abort 1");
        p1.begin_transaction().expect("begin 1 again");
        send(&p1, t, &["x3"]);
        p2.begin_transaction().expect("begin 2 again");
        send(&p2, t, &["y2"]);
        p1.commit_transaction(TXN_TIMEOUT).expect("commit 1");
        p2.commit_transaction(TXN_TIMEOUT).expect("commit 2 again");
    })
    .await;
    let config = broker.client_config();
    let committed =
        blocking(move || read_until(config, "txn-interleaved", "read_committed", "y2")).await;
    assert_eq!(committed, ["y1", "x3", "y2"]);
    let config = broker.client_config();
    let all =
        blocking(move || read_until(config, "txn-interleaved", "read_uncommitted", "y2")).await;
    assert_eq!(all, ["x1", "y1", "x2", "x3", "y2"]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_producer_is_fenced() {
    let broker = TestBroker::start().await;
    broker.create_topic("txn-zombie", 1).await;
    let (c1, c2) = (broker.client_config(), broker.client_config());
    let zombie_commit = blocking(move || {
        let t = "txn-zombie";
        let zombie = txn_producer(c1, "zombie");
        zombie.begin_transaction().expect("begin");
        send(&zombie, t, &["z1"]);
        // A new instance with the same transactional.id fences the old one and aborts its
        // open transaction.
        let fresh = txn_producer(c2, "zombie");
        commit(&fresh, t, &["f1"]);
        zombie.commit_transaction(TXN_TIMEOUT)
    })
    .await;
    let error = zombie_commit.expect_err("the zombie cannot commit");
    let fenced = format!("{error:?}");
    assert!(fenced.contains("enced"), "unexpected error {fenced}");
    let config = broker.client_config();
    let committed =
        blocking(move || read_until(config, "txn-zombie", "read_committed", "f1")).await;
    assert_eq!(committed, ["f1"]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_survives_a_broker_restart() {
    let mut broker = TestBroker::start().await;
    broker.create_topic("txn-restart", 1).await;
    let config = broker.client_config();
    let producer = blocking(move || {
        let producer = txn_producer(config, "restart");
        producer.begin_transaction().expect("begin");
        send(&producer, "txn-restart", &["r1"]);
        producer
    })
    .await;
    broker.restart().await;
    blocking(move || {
        send(&producer, "txn-restart", &["r2"]);
        producer.commit_transaction(TXN_TIMEOUT).expect("commit");
        commit(&producer, "txn-restart", &["r3"]);
    })
    .await;
    let config = broker.client_config();
    let committed =
        blocking(move || read_until(config, "txn-restart", "read_committed", "r3")).await;
    assert_eq!(committed, ["r1", "r2", "r3"]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_transaction_is_aborted() {
    let broker = TestBroker::start_with(&[(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "200",
    )])
    .await;
    broker.create_topic("txn-timeout", 1).await;
    let (mut c1, c2) = (broker.client_config(), broker.client_config());
    let stale_commit = blocking(move || {
        c1.set("transaction.timeout.ms", "5000")
            .set("socket.timeout.ms", "5000")
            .set("message.timeout.ms", "5000");
        let stale = txn_producer(c1, "timeout-stale");
        stale.begin_transaction().expect("begin");
        send(&stale, "txn-timeout", &["lost"]);
        // The coordinator aborts the open transaction: only then can the committed one
        // behind it become visible to read_committed readers.
        let other = txn_producer(c2, "timeout-other");
        commit(&other, "txn-timeout", &["kept"]);
        stale
    })
    .await;
    let config = broker.client_config();
    let committed =
        blocking(move || read_until(config, "txn-timeout", "read_committed", "kept")).await;
    assert_eq!(committed, ["kept"]);
    // The producer that timed out is fenced: its epoch was bumped by the abort.
    let result = blocking(move || stale_commit.commit_transaction(TXN_TIMEOUT)).await;
    assert!(result.is_err(), "a timed-out transaction cannot commit");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_commit_only_with_it() {
    let broker = TestBroker::start().await;
    broker.create_topic("eos-in", 1).await;
    broker.create_topic("eos-out", 1).await;
    let (c1, c2, c3, c4) = (
        broker.client_config(),
        broker.client_config(),
        broker.client_config(),
        broker.client_config(),
    );
    let committed = blocking(move || {
        commit(
            &txn_producer(c1, "eos-source"),
            "eos-in",
            &["i0", "i1", "i2"],
        );
        let mut c2 = c2;
        let consumer: BaseConsumer = c2
            .set("group.id", "eos-group")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("eos-in", 0, Offset::Beginning)
            .expect("partition");
        consumer.assign(&tpl).expect("assign");
        let deadline = Instant::now() + HANG_GUARD;
        let mut next_offset = 0;
        let mut outputs = Vec::new();
        while outputs.len() < 3 {
            assert!(Instant::now() < deadline, "inputs never arrived");
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.expect("consume");
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                outputs.push(format!("out-{value}"));
                next_offset = message.offset() + 1;
            }
        }
        let group = consumer.group_metadata().expect("group metadata");
        let offsets = |offset: i64| {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset("eos-in", 0, Offset::Offset(offset))
                .expect("partition");
            tpl
        };
        let producer = txn_producer(c3, "eos-transform");
        producer.begin_transaction().expect("begin");
        let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        send(&producer, "eos-out", &refs);
        producer
            .send_offsets_to_transaction(&offsets(next_offset), &group, TXN_TIMEOUT)
            .expect("send offsets");
        producer.commit_transaction(TXN_TIMEOUT).expect("commit");
        // Offsets sent in an aborted transaction are never committed.
        producer.begin_transaction().expect("begin again");
        producer
            .send_offsets_to_transaction(&offsets(next_offset + 100), &group, TXN_TIMEOUT)
            .expect("send offsets again");
        producer.abort_transaction(TXN_TIMEOUT).expect("abort");

        let mut c4 = c4;
        let reader: BaseConsumer = c4
            .set("group.id", "eos-group")
            .set("enable.auto.commit", "false")
            .create()
            .expect("reader");
        let committed = reader
            .committed_offsets(offsets(0), TXN_TIMEOUT)
            .expect("committed offsets");
        let offset = committed
            .find_partition("eos-in", 0)
            .expect("partition")
            .offset();
        (offset, next_offset)
    })
    .await;
    assert_eq!(committed.0, Offset::Offset(committed.1));
    let config = broker.client_config();
    let outputs = blocking(move || read_until(config, "eos-out", "read_committed", "out-i2")).await;
    assert_eq!(outputs, ["out-i0", "out-i1", "out-i2"]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_apis_describe_an_open_transaction() {
    use common::wire::WireClient;
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::ResponseError;

    let broker = TestBroker::start().await;
    broker.create_topic("txn-admin", 1).await;
    let config = broker.client_config();
    let producer = blocking(move || {
        let producer = txn_producer(config, "admin-tx");
        producer.begin_transaction().expect("begin");
        send(&producer, "txn-admin", &["open"]);
        producer
    })
    .await;
    let mut wire = WireClient::connect(&broker.bootstrap()).await;
    let listed: ListTransactionsResponse = wire
        .call(
            ApiKey::ListTransactions,
            1,
            &ListTransactionsRequest::default()
                .with_state_filters(vec![StrBytes::from_static_str("Ongoing")])
                .with_duration_filter(-1),
        )
        .await;
    let ids: Vec<String> = listed
        .transaction_states
        .iter()
        .map(|t| format!("{}={}", t.transactional_id.as_str(), t.transaction_state))
        .collect();
    assert_eq!(ids, ["admin-tx=Ongoing"]);
    for (pattern, expected) in [("admin-.*", 1), ("admin", 0)] {
        let listed: ListTransactionsResponse = wire
            .call(
                ApiKey::ListTransactions,
                2,
                &ListTransactionsRequest::default()
                    .with_duration_filter(-1)
                    .with_transactional_id_pattern(Some(StrBytes::from_static_str(pattern))),
            )
            .await;
        assert_eq!(listed.transaction_states.len(), expected, "{pattern}");
    }

    let described: DescribeTransactionsResponse = wire
        .call(
            ApiKey::DescribeTransactions,
            0,
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![
                TransactionalId(StrBytes::from_static_str("admin-tx")),
                TransactionalId(StrBytes::from_static_str("nobody")),
            ]),
        )
        .await;
    let open = &described.transaction_states[0];
    assert_eq!(open.error_code, 0);
    assert_eq!(open.transaction_state.as_str(), "Ongoing");
    assert_eq!(open.topics.len(), 1);
    assert_eq!(open.topics[0].topic.as_str(), "txn-admin");
    assert_eq!(open.topics[0].partitions, [0]);
    assert_eq!(
        described.transaction_states[1].error_code,
        ResponseError::TransactionalIdNotFound.code()
    );

    let producers: DescribeProducersResponse = wire
        .call(
            ApiKey::DescribeProducers,
            0,
            &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
                .with_name(TopicName(StrBytes::from_static_str("txn-admin")))
                .with_partition_indexes(vec![0])]),
        )
        .await;
    let active = &producers.topics[0].partitions[0].active_producers;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].producer_id, open.producer_id);
    assert_eq!(active[0].current_txn_start_offset, 0);

    // transaction.timeout.ms above transaction.max.timeout.ms is refused.
    let refused: InitProducerIdResponse = wire
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("too-long"))))
                .with_transaction_timeout_ms(900_001),
        )
        .await;
    assert_eq!(
        refused.error_code,
        ResponseError::InvalidTransactionTimeout.code()
    );

    blocking(move || producer.commit_transaction(TXN_TIMEOUT).expect("commit")).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_before_a_restart_commit_after_it() {
    let mut broker = TestBroker::start().await;
    broker.create_topic("eos-restart-in", 1).await;
    broker.create_topic("eos-restart-out", 1).await;
    let (c1, c2) = (broker.client_config(), broker.client_config());
    let offsets = || {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("eos-restart-in", 0, Offset::Offset(7))
            .expect("partition");
        tpl
    };
    let producer = blocking(move || {
        let mut c1 = c1;
        let consumer: BaseConsumer = c1
            .set("group.id", "eos-restart-group")
            .create()
            .expect("consumer");
        let group = consumer.group_metadata().expect("group metadata");
        let producer = txn_producer(c2, "eos-restart");
        producer.begin_transaction().expect("begin");
        send(&producer, "eos-restart-out", &["o1"]);
        producer
            .send_offsets_to_transaction(&offsets(), &group, TXN_TIMEOUT)
            .expect("send offsets");
        producer
    })
    .await;
    broker.restart().await;
    let config = broker.client_config();
    let committed = blocking(move || {
        producer.commit_transaction(TXN_TIMEOUT).expect("commit");
        let mut config = config;
        let reader: BaseConsumer = config
            .set("group.id", "eos-restart-group")
            .create()
            .expect("reader");
        let committed = reader
            .committed_offsets(offsets(), TXN_TIMEOUT)
            .expect("committed offsets");
        committed
            .find_partition("eos-restart-in", 0)
            .expect("partition")
            .offset()
    })
    .await;
    assert_eq!(committed, Offset::Offset(7));
    // Replay applies them again from the transactional batch and its COMMIT marker.
    broker.restart().await;
    let config = broker.client_config();
    let replayed = blocking(move || {
        let mut config = config;
        let reader: BaseConsumer = config
            .set("group.id", "eos-restart-group")
            .create()
            .expect("reader");
        reader
            .committed_offsets(offsets(), TXN_TIMEOUT)
            .expect("committed offsets")
            .find_partition("eos-restart-in", 0)
            .expect("partition")
            .offset()
    })
    .await;
    assert_eq!(replayed, Offset::Offset(7));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_batch_needs_its_partition_in_the_transaction() {
    use bytes::{Bytes, BytesMut};
    use common::wire::WireClient;
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use kafka_protocol::ResponseError;

    let broker = TestBroker::start().await;
    broker.create_topic("txn-verify", 1).await;
    let mut wire = WireClient::connect(&broker.bootstrap()).await;
    let txn_id = || TransactionalId(StrBytes::from_static_str("verify-tx"));
    let topic = || TopicName(StrBytes::from_static_str("txn-verify"));
    let _: FindCoordinatorResponse = wire
        .call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str("verify-tx"))
                .with_key_type(1),
        )
        .await;
    let init: InitProducerIdResponse = wire
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(txn_id()))
                .with_transaction_timeout_ms(60_000),
        )
        .await;
    assert_eq!(init.error_code, 0);
    let (producer_id, epoch) = (init.producer_id, init.producer_epoch);

    let batch = || {
        let record = Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer_id.0,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: 0,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &[record],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        buf.freeze()
    };
    let produce = |version: i16| {
        let request = ProduceRequest::default()
            .with_transactional_id(Some(txn_id()))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch()))])]);
        (version, request)
    };
    let code = |response: ProduceResponse| response.responses[0].partition_responses[0].error_code;

    // Not added yet: refused, with the error each produce version knows.
    let (v, request) = produce(10);
    let refused: ProduceResponse = wire.call(ApiKey::Produce, v, &request).await;
    assert_eq!(code(refused), ResponseError::InvalidTxnState.code());
    let (v, request) = produce(11);
    let refused: ProduceResponse = wire.call(ApiKey::Produce, v, &request).await;
    assert_eq!(code(refused), ResponseError::TransactionAbortable.code());

    // Verify-only (v4, as a broker asks) reports the same without adding.
    let verify = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(txn_id())
            .with_producer_id(producer_id)
            .with_producer_epoch(epoch)
            .with_verify_only(true)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(topic())
                .with_partitions(vec![0])]),
    ]);
    let verified: AddPartitionsToTxnResponse =
        wire.call(ApiKey::AddPartitionsToTxn, 4, &verify).await;
    let result = &verified.results_by_transaction[0].topic_results[0].results_by_partition[0];
    assert_eq!(
        result.partition_error_code,
        ResponseError::InvalidTxnState.code()
    );

    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id())
        .with_v3_and_below_producer_id(producer_id)
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(topic())
            .with_partitions(vec![0])]);
    let added: AddPartitionsToTxnResponse = wire.call(ApiKey::AddPartitionsToTxn, 3, &add).await;
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    let (v, request) = produce(11);
    let accepted: ProduceResponse = wire.call(ApiKey::Produce, v, &request).await;
    assert_eq!(code(accepted), 0);

    let ended: EndTxnResponse = wire
        .call(
            ApiKey::EndTxn,
            3,
            &EndTxnRequest::default()
                .with_transactional_id(txn_id())
                .with_producer_id(producer_id)
                .with_producer_epoch(epoch)
                .with_committed(true),
        )
        .await;
    assert_eq!(ended.error_code, 0);
    // A stale epoch is fenced; before v2 as INVALID_PRODUCER_EPOCH.
    let stale = |v: i16| {
        (
            v,
            EndTxnRequest::default()
                .with_transactional_id(txn_id())
                .with_producer_id(producer_id)
                .with_producer_epoch(epoch - 1)
                .with_committed(true),
        )
    };
    let (v, request) = stale(1);
    let old: EndTxnResponse = wire.call(ApiKey::EndTxn, v, &request).await;
    assert_eq!(old.error_code, ResponseError::InvalidProducerEpoch.code());
    let (v, request) = stale(3);
    let new: EndTxnResponse = wire.call(ApiKey::EndTxn, v, &request).await;
    assert_eq!(new.error_code, ResponseError::ProducerFenced.code());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_transactional_id_expires() {
    use common::wire::WireClient;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::ResponseError;

    let broker = TestBroker::start_with(&[
        ("transactional.id.expiration.ms", "500"),
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            "100",
        ),
    ])
    .await;
    broker.create_topic("txn-expire", 1).await;
    let config = broker.client_config();
    blocking(move || commit(&txn_producer(config, "expiring"), "txn-expire", &["e1"])).await;
    let mut wire = WireClient::connect(&broker.bootstrap()).await;
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let described: DescribeTransactionsResponse = wire
            .call(
                ApiKey::DescribeTransactions,
                0,
                &DescribeTransactionsRequest::default().with_transactional_ids(vec![
                    TransactionalId(StrBytes::from_static_str("expiring")),
                ]),
            )
            .await;
        if described.transaction_states[0].error_code
            == ResponseError::TransactionalIdNotFound.code()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the id never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.shutdown().await;
}

/// A restart between PrepareCommit and its markers: the coordinator finds the transaction
/// in PrepareCommit when it replays `__transaction_state`, writes the markers and completes
/// the commit. The PrepareCommit record is written the way the coordinator writes it, by a
/// plain produce to its `__transaction_state` partition (Kafka refuses client produce to
/// internal topics; should Moldau too, write the record through the data dir instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_completes_a_prepared_commit() {
    use bytes::{Bytes, BytesMut};
    use common::wire::WireClient;
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use moldau_coordinator::txn::{txn_record, TxnMetadata, TxnState, TRANSACTION_STATE_TOPIC};

    let mut broker = TestBroker::start().await;
    broker.create_topic("txn-prepared", 1).await;
    let mut wire = WireClient::connect(&broker.bootstrap()).await;
    let txn_id = || TransactionalId(StrBytes::from_static_str("prepared-tx"));
    let topic = |name: &'static str| TopicName(StrBytes::from_static_str(name));
    let _: FindCoordinatorResponse = wire
        .call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str("prepared-tx"))
                .with_key_type(1),
        )
        .await;
    let init: InitProducerIdResponse = wire
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(txn_id()))
                .with_transaction_timeout_ms(60_000),
        )
        .await;
    let (producer_id, epoch) = (init.producer_id, init.producer_epoch);
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id())
        .with_v3_and_below_producer_id(producer_id)
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(topic("txn-prepared"))
            .with_partitions(vec![0])]);
    let _: AddPartitionsToTxnResponse = wire.call(ApiKey::AddPartitionsToTxn, 3, &add).await;

    let batch = |transactional: bool, key: Option<Bytes>, value: Bytes| {
        let record = Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: if transactional { producer_id.0 } else { -1 },
            producer_epoch: if transactional { epoch } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: if transactional { 0 } else { -1 },
            timestamp: 0,
            key,
            value: Some(value),
            headers: Default::default(),
        };
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &[record],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        buf.freeze()
    };
    let produce = |name: &'static str, partition: i32, records: Bytes, txn: bool| {
        ProduceRequest::default()
            .with_transactional_id(txn.then(txn_id))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic(name))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])])
    };
    let request = produce(
        "txn-prepared",
        0,
        batch(true, None, Bytes::from_static(b"p1")),
        true,
    );
    let produced: ProduceResponse = wire.call(ApiKey::Produce, 9, &request).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);

    let mut metadata = TxnMetadata {
        producer_id: producer_id.0,
        producer_epoch: epoch,
        timeout_ms: 60_000,
        state: TxnState::PrepareCommit,
        partitions: Default::default(),
        last_update_ms: 0,
        start_ms: 0,
        last_producer_epoch: -1,
    };
    metadata.partitions.insert(("txn-prepared".to_string(), 0));
    let record = txn_record("prepared-tx", &metadata);
    let partition = moldau_coordinator::partition_for("prepared-tx", 50);
    let request = produce(
        TRANSACTION_STATE_TOPIC,
        partition,
        batch(false, Some(record.key), record.value.expect("value")),
        false,
    );
    let written: ProduceResponse = wire.call(ApiKey::Produce, 9, &request).await;
    assert_eq!(written.responses[0].partition_responses[0].error_code, 0);
    drop(wire);

    broker.restart().await;
    let config = broker.client_config();
    let committed = blocking(move || {
        commit(
            &txn_producer(config.clone(), "prepared-after"),
            "txn-prepared",
            &["after"],
        );
        read_until(config, "txn-prepared", "read_committed", "after")
    })
    .await;
    assert_eq!(committed, ["p1", "after"]);
    broker.shutdown().await;
}
