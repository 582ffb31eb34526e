//! Metadata writes cannot half-happen: once a change is committed the node serves it and
//! can always start again, whatever the disk did with its side effects (a partition dir
//! that cannot be created, a deleted topic's dir that cannot be renamed). Driven with
//! librdkafka against a real broker, across restarts.

mod common;

use std::time::{Duration, Instant};

use common::wire::WireClient;
use common::{poll_messages, TestBroker};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DeleteRecordsRequest, DeleteRecordsResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureRecord;
use rdkafka::TopicPartitionList;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn produce_one(broker: &TestBroker, topic: &str, partition: i32, payload: &str) {
    broker
        .producer()
        .send(
            FutureRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(payload),
            TIMEOUT,
        )
        .await
        .expect("record acknowledged");
}

/// How many times Metadata lists a topic of this name.
fn listed(broker: &TestBroker, topic: &str) -> usize {
    let metadata = broker
        .consumer()
        .fetch_metadata(None, TIMEOUT)
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .count()
}

fn read_all(broker: &TestBroker, topic: &str, partition: i32, count: usize) -> Vec<String> {
    let consumer = broker.consumer();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    poll_messages(&consumer, count, TIMEOUT)
        .iter()
        .map(|m| String::from_utf8_lossy(rdkafka::Message::payload(m).unwrap()).into_owned())
        .collect()
}

/// Every API that reads a partition answers KAFKA_STORAGE_ERROR for an offline one, as
/// Kafka does for a partition on a failed log dir (not UNKNOWN_TOPIC_OR_PARTITION, which
/// would make clients refresh metadata in a loop).
async fn assert_offline_answers(broker: &TestBroker, topic: &str, partition: i32) {
    let storage_error = ResponseError::KafkaStorageError.code();
    let name = TopicName(StrBytes::from_string(topic.to_string()));
    let mut client = WireClient::connect(&broker.bootstrap()).await;

    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name.clone())
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = client.call(ApiKey::Fetch, 11, &fetch).await;
    assert_eq!(
        response.responses[0].partitions[0].error_code,
        storage_error
    );

    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name.clone())
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 7, &list).await;
    assert_eq!(response.topics[0].partitions[0].error_code, storage_error);

    let epochs = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name.clone())
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_leader_epoch(0)])]);
    let response: OffsetForLeaderEpochResponse =
        client.call(ApiKey::OffsetForLeaderEpoch, 4, &epochs).await;
    assert_eq!(response.topics[0].partitions[0].error_code, storage_error);

    let delete = DeleteRecordsRequest::default()
        .with_timeout_ms(5_000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(name)
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(partition)
                .with_offset(0)])]);
    let response: DeleteRecordsResponse = client.call(ApiKey::DeleteRecords, 2, &delete).await;
    assert_eq!(response.topics[0].partitions[0].error_code, storage_error);
}

async fn delete_topic(broker: &TestBroker, topic: &str) {
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    for result in broker
        .admin()
        .delete_topics(&[topic], &options)
        .await
        .expect("delete_topics request")
    {
        result.expect("topic deleted");
    }
}

/// Kafka's longest topic name: its delete dir name (`<name>-0.<uuid>-delete`) is longer
/// than a file name may be unless the topic part is shortened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_249_character_topic_can_be_deleted_and_the_node_restarts() {
    let mut broker = TestBroker::start().await;
    let long = "m".repeat(249);
    broker.create_topic(&long, 1).await;
    broker.create_topic("other", 1).await;
    for i in 0..3 {
        produce_one(&broker, &long, 0, &format!("old-{i}")).await;
    }
    produce_one(&broker, "other", 0, "kept").await;

    delete_topic(&broker, &long).await;
    assert_eq!(listed(&broker, &long), 0);
    broker.restart().await;
    assert_eq!(listed(&broker, &long), 0);
    assert_eq!(read_all(&broker, "other", 0, 1), vec!["kept"]);

    // Created again: listed once, and never with the deleted topic's records.
    broker.create_topic(&long, 1).await;
    assert_eq!(listed(&broker, &long), 1);
    broker.restart().await;
    assert_eq!(listed(&broker, &long), 1);
    if let Ok((low, high)) = broker
        .consumer()
        .fetch_watermarks(&long, 0, Duration::from_secs(3))
    {
        assert_eq!(
            (low, high),
            (0, 0),
            "the re-created topic shows old records"
        );
    }
    // It takes records, which survive a restart.
    produce_one(&broker, &long, 0, "new").await;
    broker.restart().await;
    assert_eq!(read_all(&broker, &long, 0, 1), vec!["new"]);
    delete_topic(&broker, &long).await;
    broker.restart().await;
    assert_eq!(listed(&broker, &long), 0);
    assert_eq!(read_all(&broker, "other", 0, 1), vec!["kept"]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_cannot_be_created_is_offline_then_reconciled() {
    let mut broker = TestBroker::start().await;
    // A regular file where the partition's dir must go: creating its log fails.
    let obstacle = broker.data_dir().join("blocked-0");
    std::fs::write(&obstacle, b"in the way").unwrap();
    broker.create_topic("blocked", 2).await;
    assert_eq!(listed(&broker, "blocked"), 1);
    // Committed once: a retry is refused, it does not commit a second topic of the name.
    let again = broker
        .admin()
        .create_topics(
            &[NewTopic::new("blocked", 2, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await
        .expect("create_topics request");
    assert!(matches!(
        again[0],
        Err((_, RDKafkaErrorCode::TopicAlreadyExists))
    ));
    produce_one(&broker, "blocked", 1, "p1").await;

    let producer: rdkafka::producer::FutureProducer = broker
        .client_config()
        .set("message.timeout.ms", "2000")
        .create()
        .unwrap();
    let refused = producer
        .send(
            FutureRecord::<(), _>::to("blocked")
                .partition(0)
                .payload("x"),
            TIMEOUT,
        )
        .await;
    assert!(
        refused.is_err(),
        "an offline partition acknowledged a record"
    );
    assert_offline_answers(&broker, "blocked", 0).await;

    // The node starts with the obstacle still there and serves the rest.
    broker.restart().await;
    assert_eq!(listed(&broker, "blocked"), 1);
    assert_eq!(read_all(&broker, "blocked", 1, 1), vec!["p1"]);

    // Once the obstacle is gone the reconciler opens the partition.
    std::fs::remove_file(&obstacle).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sent = producer
            .send(
                FutureRecord::<(), _>::to("blocked")
                    .partition(0)
                    .payload("p0"),
                TIMEOUT,
            )
            .await;
        if sent.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "partition never came online");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    broker.restart().await;
    assert_eq!(read_all(&broker, "blocked", 0, 1), vec!["p0"]);
    broker.shutdown().await;
}

/// An offsets partition whose log cannot be created (when FindCoordinator creates the
/// topic) neither fails the other groups nor the restart, and groups keep their partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_offsets_partition_leaves_other_groups_working() {
    let mut broker = TestBroker::start_with(&[("offsets.topic.num.partitions", "3")]).await;
    std::fs::write(
        broker.data_dir().join("__consumer_offsets-1"),
        b"in the way",
    )
    .unwrap();
    broker.create_topic("t", 1).await;
    // abs(javaHashCode("group-4")) % 3 == 2, an online partition (% 2 would be 0).
    let group = "group-4";
    let commit_and_read = |broker: &TestBroker, offset: Option<i64>| {
        let consumer: rdkafka::consumer::BaseConsumer = broker
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition("t", 0);
        if let Some(offset) = offset {
            list.set_all_offsets(rdkafka::Offset::Offset(offset))
                .unwrap();
            consumer
                .commit(&list, rdkafka::consumer::CommitMode::Sync)
                .expect("offset committed");
        }
        let committed = consumer
            .committed_offsets(list, TIMEOUT)
            .expect("committed");
        committed.elements()[0].offset()
    };
    produce_one(&broker, "t", 0, "r").await;
    assert_eq!(
        commit_and_read(&broker, Some(1)),
        rdkafka::Offset::Offset(1)
    );
    broker.restart().await;
    assert_eq!(commit_and_read(&broker, None), rdkafka::Offset::Offset(1));
    broker.shutdown().await;
}
