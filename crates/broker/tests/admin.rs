//! An operator's session with the admin APIs: librdkafka's AdminClient where it has the call
//! (delete topics, create partitions, describe and alter configs, delete records), and
//! kafka-protocol requests on the wire where no Rust client has one (DescribeCluster,
//! DescribeLogDirs, OffsetForLeaderEpoch, IncrementalAlterConfigs, synonyms). Every change
//! is checked again after a restart.

mod common;

use std::time::Duration;

use common::wire::WireClient;
use common::{poll_messages, TestBroker};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, ApiVersionsRequest, ApiVersionsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, MetadataRequest,
    MetadataResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use rdkafka::admin::{
    AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(10);
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

async fn produce(broker: &TestBroker, topic: &str, partition: i32, count: usize) {
    let producer = broker.producer();
    for i in 0..count {
        let payload = format!("record-{i}");
        producer
            .send(
                FutureRecord::<(), _>::to(topic)
                    .partition(partition)
                    .payload(&payload),
                TIMEOUT,
            )
            .await
            .expect("record acknowledged");
    }
}

/// The topic's id and partition count as Metadata reports them, None if it does not exist.
async fn topic_metadata(client: &mut WireClient, topic: &str) -> Option<(Uuid, usize)> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(s(topic).into()))
        ]))
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = client.call(ApiKey::Metadata, 12, &request).await;
    let t = &response.topics[0];
    (t.error_code == 0).then_some((t.topic_id, t.partitions.len()))
}

async fn describe(
    client: &mut WireClient,
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
) -> DescribeConfigsResult {
    let request = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configuration_keys(
                keys.map(|k| k.iter().map(|k| s(k)).collect()),
            )]);
    let mut response: DescribeConfigsResponse =
        client.call(ApiKey::DescribeConfigs, 4, &request).await;
    response.results.remove(0)
}

/// (value, source, synonyms as (name, value, source)) of one config.
type Described = (Option<String>, i8, Vec<(String, Option<String>, i8)>);

async fn describe_one(
    client: &mut WireClient,
    resource_type: i8,
    name: &str,
    key: &str,
) -> Described {
    let result = describe(client, resource_type, name, Some(&[key])).await;
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    assert_eq!(result.configs.len(), 1, "{key} of {name}");
    let c = &result.configs[0];
    (
        c.value.as_ref().map(|v| v.to_string()),
        c.config_source,
        c.synonyms
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.value.as_ref().map(|v| v.to_string()),
                    s.source,
                )
            })
            .collect(),
    )
}

async fn incremental(
    client: &mut WireClient,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        AlterableConfig::default()
                            .with_name(s(k))
                            .with_config_operation(*op)
                            .with_value(v.map(s))
                    })
                    .collect(),
            )]);
    let response: IncrementalAlterConfigsResponse = client
        .call(ApiKey::IncrementalAlterConfigs, 1, &request)
        .await;
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topics_by_name_and_by_id() {
    let mut broker = TestBroker::start().await;
    broker.create_topic("doomed", 2).await;
    broker.create_topic("by-id", 1).await;
    broker.create_topic("kept", 1).await;
    produce(&broker, "doomed", 0, 3).await;

    let admin = broker.admin();
    let results = admin
        .delete_topics(&["doomed", "never-was"], &options())
        .await
        .expect("delete_topics request");
    assert_eq!(results[0], Ok("doomed".to_string()));
    assert_eq!(
        results[1],
        Err((
            "never-was".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))
    );

    // By topic id (v6), as the Java client's deleteTopics(TopicCollection.ofTopicIds) sends.
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let (id, _) = topic_metadata(&mut client, "by-id")
        .await
        .expect("by-id exists");
    let unknown_id = Uuid::new_v4();
    let request = DeleteTopicsRequest::default().with_topics(vec![
        kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
            .with_topic_id(id),
        kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
            .with_topic_id(unknown_id),
        kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
            .with_name(Some(s("kept").into()))
            .with_topic_id(Uuid::new_v4()),
    ]);
    let response: DeleteTopicsResponse = client.call(ApiKey::DeleteTopics, 6, &request).await;
    let code_of = |id: Uuid| {
        response
            .responses
            .iter()
            .find(|r| r.topic_id == id)
            .map(|r| (r.error_code, r.name.as_ref().map(|n| n.to_string())))
    };
    assert_eq!(code_of(id), Some((0, Some("by-id".to_string()))));
    assert_eq!(
        code_of(unknown_id).map(|c| c.0),
        Some(ResponseError::UnknownTopicId.code())
    );
    let both = response
        .responses
        .iter()
        .find(|r| r.name.as_ref().is_some_and(|n| n.as_str() == "kept"))
        .expect("answer for kept");
    assert_eq!(both.error_code, ResponseError::InvalidRequest.code());
    assert_eq!(
        both.error_message.as_deref(),
        Some("You may not specify both topic name and topic id.")
    );

    assert_eq!(topic_metadata(&mut client, "doomed").await, None);
    assert_eq!(topic_metadata(&mut client, "by-id").await, None);
    assert!(!broker.data_dir().join("doomed-0").exists());

    // Deletion is durable, and the name can be used again for a new, empty topic.
    drop(client);
    broker.restart().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    assert_eq!(topic_metadata(&mut client, "doomed").await, None);
    assert_eq!(topic_metadata(&mut client, "by-id").await, None);
    assert!(topic_metadata(&mut client, "kept").await.is_some());
    broker.create_topic("doomed", 1).await;
    let consumer = broker.consumer();
    let (low, high) = consumer
        .fetch_watermarks("doomed", 0, TIMEOUT)
        .expect("watermarks");
    assert_eq!((low, high), (0, 0));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_creates_at_most_ten_thousand_partitions() {
    let broker = TestBroker::start().await;
    let admin = broker.admin();
    let refused = |names: &[&str]| {
        names
            .iter()
            .map(|n| Err((n.to_string(), RDKafkaErrorCode::PolicyViolation)))
            .collect::<Vec<_>>()
    };
    // Over the request: 10,001 partitions, or two topics that together pass 10,000.
    let one = [NewTopic::new("one", 10_001, TopicReplication::Fixed(1))];
    let results = admin.create_topics(&one, &options()).await.unwrap();
    assert_eq!(results, refused(&["one"]));
    let two = [
        NewTopic::new("two-a", 5_001, TopicReplication::Fixed(1)),
        NewTopic::new("two-b", 5_000, TopicReplication::Fixed(1)),
    ];
    let results = admin.create_topics(&two, &options()).await.unwrap();
    assert_eq!(results, refused(&["two-a", "two-b"]));
    // 10,000 partitions fit the request but not the records bound (one more for the topic).
    let exact = [NewTopic::new("exact", 10_000, TopicReplication::Fixed(1))];
    let results = admin.create_topics(&exact, &options()).await.unwrap();
    assert_eq!(results, refused(&["exact"]));

    let mut client = WireClient::connect(&broker.bootstrap()).await;
    for name in ["one", "two-a", "two-b", "exact"] {
        assert_eq!(topic_metadata(&mut client, name).await, None, "{name}");
    }
    // Within the bounds: created.
    let fits = [NewTopic::new("fits", 3, TopicReplication::Fixed(1))];
    let results = admin.create_topics(&fits, &options()).await.unwrap();
    assert_eq!(results, vec![Ok("fits".to_string())]);
    drop(client);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_partitions_grows_only() {
    let mut broker = TestBroker::start().await;
    broker.create_topic("grow", 1).await;
    let admin = broker.admin();

    let results = admin
        .create_partitions(&[NewPartitions::new("grow", 3)], &options())
        .await
        .expect("create_partitions request");
    assert_eq!(results, vec![Ok("grow".to_string())]);

    let refused = [
        (
            NewPartitions::new("grow", 3),
            RDKafkaErrorCode::InvalidPartitions,
        ),
        (
            NewPartitions::new("grow", 2),
            RDKafkaErrorCode::InvalidPartitions,
        ),
        (
            NewPartitions::new("missing", 2),
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ),
        // Kafka: more than 10,000 new partitions' records in one operation.
        (
            NewPartitions::new("grow", 100_000),
            RDKafkaErrorCode::PolicyViolation,
        ),
    ];
    for (request, code) in refused {
        let name = request.topic_name.to_string();
        let results = admin
            .create_partitions(&[request], &options())
            .await
            .expect("create_partitions request");
        assert_eq!(results, vec![Err((name, code))]);
    }
    let assigned: [&[i32]; 1] = [&[7]];
    let with_unknown_broker = NewPartitions::new("grow", 4).assign(&assigned);
    let results = admin
        .create_partitions(&[with_unknown_broker], &options())
        .await
        .expect("create_partitions request");
    assert_eq!(
        results,
        vec![Err((
            "grow".to_string(),
            RDKafkaErrorCode::InvalidReplicaAssignment
        ))]
    );
    let results = admin
        .create_partitions(
            &[NewPartitions::new("grow", 5)],
            &options().validate_only(true),
        )
        .await
        .expect("create_partitions request");
    assert_eq!(results, vec![Ok("grow".to_string())]);

    let mut client = WireClient::connect(&broker.bootstrap()).await;
    assert_eq!(
        topic_metadata(&mut client, "grow").await.map(|m| m.1),
        Some(3)
    );

    // The new partition takes records, and everything survives a restart.
    produce(&broker, "grow", 2, 2).await;
    drop(client);
    broker.restart().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    assert_eq!(
        topic_metadata(&mut client, "grow").await.map(|m| m.1),
        Some(3)
    );
    let consumer = broker.consumer();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("grow", 2, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let messages = poll_messages(&consumer, 2, TIMEOUT);
    assert_eq!(messages.len(), 2);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_reports_sources_and_synonyms() {
    let broker = TestBroker::start_with(&[
        ("log.retention.hours", "48"),
        ("log.segment.bytes", "2097152"),
    ])
    .await;
    let admin = broker.admin();
    admin
        .create_topics(
            &[NewTopic::new("configured", 1, TopicReplication::Fixed(1))
                .set("retention.ms", "1000")
                .set("cleanup.policy", "compact")],
            &options(),
        )
        .await
        .expect("create_topics request")
        .remove(0)
        .expect("topic created");

    let results = admin
        .describe_configs(
            &[
                ResourceSpecifier::Topic("configured"),
                ResourceSpecifier::Topic("missing"),
                ResourceSpecifier::Broker(1),
            ],
            &options(),
        )
        .await
        .expect("describe_configs request");
    let topic = results[0].as_ref().expect("topic configs");
    let retention = topic.get("retention.ms").expect("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("1000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    assert!(!retention.is_read_only);
    let segment = topic.get("segment.bytes").expect("segment.bytes");
    assert_eq!(segment.value.as_deref(), Some("2097152"));
    assert_eq!(segment.source, ConfigSource::StaticBroker);
    let max_bytes = topic.get("max.message.bytes").expect("max.message.bytes");
    assert_eq!(max_bytes.value.as_deref(), Some("1048588"));
    assert_eq!(max_bytes.source, ConfigSource::Default);
    assert_eq!(
        topic.get("cleanup.policy").unwrap().value.as_deref(),
        Some("compact")
    );
    let broker_configs = results[2].as_ref().expect("broker configs");
    let hours = broker_configs.get("log.retention.hours").unwrap();
    assert_eq!(hours.value.as_deref(), Some("48"));
    assert_eq!(hours.source, ConfigSource::StaticBroker);
    assert!(hours.is_read_only);
    let ms = broker_configs.get("log.retention.ms").unwrap();
    assert_eq!(ms.value, None);
    assert!(!ms.is_read_only);

    // Synonyms in Kafka's order; a key filter; documentation and types (v3+).
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let (value, source, synonyms) =
        describe_one(&mut client, TOPIC, "configured", "retention.ms").await;
    assert_eq!((value.as_deref(), source), (Some("1000"), 1));
    assert_eq!(
        synonyms,
        vec![("retention.ms".to_string(), Some("1000".to_string()), 1)]
    );
    let (value, source, synonyms) =
        describe_one(&mut client, BROKER, "1", "log.retention.hours").await;
    assert_eq!((value.as_deref(), source), (Some("48"), 4));
    assert_eq!(
        synonyms,
        vec![
            ("log.retention.hours".to_string(), Some("48".to_string()), 4),
            (
                "log.retention.hours".to_string(),
                Some("168".to_string()),
                5
            ),
        ]
    );
    let result = describe(&mut client, TOPIC, "configured", Some(&["segment.bytes"])).await;
    let segment = &result.configs[0];
    assert_eq!(segment.config_type, 3, "INT");
    assert!(segment.documentation.is_some());
    assert_eq!(
        segment
            .synonyms
            .iter()
            .map(|s| (s.name.to_string(), s.source))
            .collect::<Vec<_>>(),
        vec![
            ("log.segment.bytes".to_string(), 4),
            ("log.segment.bytes".to_string(), 5)
        ]
    );
    // rust-rdkafka's describe_configs drops per-resource errors: check them on the wire.
    let missing = describe(&mut client, TOPIC, "missing", None).await;
    assert_eq!(
        (missing.error_code, missing.configs.len()),
        (ResponseError::UnknownTopicOrPartition.code(), 0)
    );
    let invalid = describe(&mut client, TOPIC, "bad/name", None).await;
    assert_eq!(
        invalid.error_code,
        ResponseError::InvalidTopicException.code()
    );
    let other_broker = describe(&mut client, BROKER, "2", None).await;
    assert_eq!(
        other_broker.error_code,
        ResponseError::InvalidRequest.code()
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_configs_replaces_the_whole_set() {
    let mut broker = TestBroker::start().await;
    let admin = broker.admin();
    admin
        .create_topics(
            &[NewTopic::new("legacy", 1, TopicReplication::Fixed(1))
                .set("retention.ms", "1000")
                .set("cleanup.policy", "compact")],
            &options(),
        )
        .await
        .expect("create_topics request")
        .remove(0)
        .expect("topic created");

    let alter = AlterConfig::new(ResourceSpecifier::Topic("legacy")).set("segment.ms", "60000");
    let results = admin
        .alter_configs(&[alter], &options())
        .await
        .expect("alter_configs request");
    assert!(results[0].is_ok(), "{:?}", results[0]);

    // Refused: a bad value, an unknown key, an unknown topic (on the wire: rust-rdkafka's
    // alter_configs reports every resource as altered, whatever the broker answered).
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let refused = [
        (
            "legacy",
            "retention.ms",
            "-7",
            ResponseError::InvalidConfig,
            "Invalid value -7 for configuration retention.ms: value must be at least -1",
        ),
        (
            "legacy",
            "retention.mss",
            "7",
            ResponseError::InvalidConfig,
            "Unknown topic config name: retention.mss",
        ),
        (
            "missing",
            "retention.ms",
            "7",
            ResponseError::UnknownTopicOrPartition,
            "The topic 'missing' does not exist.",
        ),
    ];
    for (topic, key, value, code, message) in refused {
        use kafka_protocol::messages::alter_configs_request as legacy;
        let request = AlterConfigsRequest::default().with_resources(vec![
            legacy::AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(s(topic))
                .with_configs(vec![legacy::AlterableConfig::default()
                    .with_name(s(key))
                    .with_value(Some(s(value)))]),
        ]);
        let response: AlterConfigsResponse = client.call(ApiKey::AlterConfigs, 2, &request).await;
        let r = &response.responses[0];
        assert_eq!(r.error_code, code.code(), "{key}={value} on {topic}");
        assert_eq!(r.error_message.as_deref(), Some(message));
    }
    drop(client);
    let results = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("legacy")).set("retention.ms", "5")],
            &options().validate_only(true),
        )
        .await
        .expect("alter_configs request");
    assert!(results[0].is_ok());

    broker.restart().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let (value, source, _) = describe_one(&mut client, TOPIC, "legacy", "segment.ms").await;
    assert_eq!((value.as_deref(), source), (Some("60000"), 1));
    // The keys the request left out went back to their defaults.
    let (value, source, _) = describe_one(&mut client, TOPIC, "legacy", "retention.ms").await;
    assert_eq!((value.as_deref(), source), (Some("604800000"), 5));
    let (value, source, _) = describe_one(&mut client, TOPIC, "legacy", "cleanup.policy").await;
    assert_eq!((value.as_deref(), source), (Some("delete"), 5));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_on_a_topic() {
    let mut broker = TestBroker::start().await;
    broker.create_topic("inc", 1).await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;

    let ok = (0, None);
    assert_eq!(
        incremental(
            &mut client,
            TOPIC,
            "inc",
            &[("cleanup.policy", APPEND, Some("compact"))],
            false
        )
        .await,
        ok
    );
    let (value, source, _) = describe_one(&mut client, TOPIC, "inc", "cleanup.policy").await;
    assert_eq!((value.as_deref(), source), (Some("delete,compact"), 1));
    assert_eq!(
        incremental(
            &mut client,
            TOPIC,
            "inc",
            &[("cleanup.policy", SUBTRACT, Some("delete"))],
            false
        )
        .await,
        ok
    );
    assert_eq!(
        incremental(
            &mut client,
            TOPIC,
            "inc",
            &[
                ("retention.ms", SET, Some("3600000")),
                ("segment.ms", SET, Some("7200000"))
            ],
            false
        )
        .await,
        ok
    );
    assert_eq!(
        incremental(
            &mut client,
            TOPIC,
            "inc",
            &[("segment.ms", DELETE, None)],
            false
        )
        .await,
        ok
    );
    assert_eq!(
        incremental(
            &mut client,
            TOPIC,
            "inc",
            &[("retention.ms", SET, Some("1"))],
            true
        )
        .await,
        ok
    );

    // Refusals name what is wrong.
    let (code, message) = incremental(
        &mut client,
        TOPIC,
        "inc",
        &[("retention.ms", APPEND, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert_eq!(
        message.as_deref(),
        Some("Can't APPEND to key retention.ms because its type is not LIST.")
    );
    let (code, message) = incremental(
        &mut client,
        TOPIC,
        "inc",
        &[("retention.ms", SET, Some("soon"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert!(message.unwrap().contains("retention.ms"));
    let (code, _) = incremental(
        &mut client,
        TOPIC,
        "inc",
        &[("retention.ms", SET, None)],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::InvalidRequest.code());
    let (code, message) = incremental(
        &mut client,
        TOPIC,
        "nope",
        &[("retention.ms", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
    assert_eq!(message.as_deref(), Some("The topic 'nope' does not exist."));

    drop(client);
    broker.restart().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let (value, _, _) = describe_one(&mut client, TOPIC, "inc", "cleanup.policy").await;
    assert_eq!(value.as_deref(), Some("compact"));
    let (value, source, _) = describe_one(&mut client, TOPIC, "inc", "retention.ms").await;
    assert_eq!((value.as_deref(), source), (Some("3600000"), 1));
    let (value, source, _) = describe_one(&mut client, TOPIC, "inc", "segment.ms").await;
    assert_eq!((value.as_deref(), source), (Some("604800000"), 5));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_broker_defaults_reach_topics_without_overrides() {
    let mut broker = TestBroker::start().await;
    broker.create_topic("plain", 1).await;
    let admin = broker.admin();
    admin
        .create_topics(
            &[NewTopic::new("own", 1, TopicReplication::Fixed(1))
                .set("max.message.bytes", "100000")],
            &options(),
        )
        .await
        .expect("create_topics request")
        .remove(0)
        .expect("topic created");
    let mut client = WireClient::connect(&broker.bootstrap()).await;

    // The cluster-wide default, then this broker's own value, which wins.
    let ok = (0, None);
    assert_eq!(
        incremental(
            &mut client,
            BROKER,
            "",
            &[("log.retention.ms", SET, Some("12345"))],
            false
        )
        .await,
        ok
    );
    assert_eq!(
        incremental(
            &mut client,
            BROKER,
            "1",
            &[("log.retention.ms", SET, Some("999"))],
            false
        )
        .await,
        ok
    );
    let (value, source, synonyms) = describe_one(&mut client, TOPIC, "plain", "retention.ms").await;
    assert_eq!((value.as_deref(), source), (Some("999"), 2));
    assert_eq!(
        synonyms,
        vec![
            ("log.retention.ms".to_string(), Some("999".to_string()), 2),
            ("log.retention.ms".to_string(), Some("12345".to_string()), 3),
            (
                "log.retention.hours".to_string(),
                Some("168".to_string()),
                5
            ),
        ]
    );
    let cluster = describe(&mut client, BROKER, "", None).await;
    assert_eq!(
        cluster
            .configs
            .iter()
            .map(|c| (c.name.to_string(), c.config_source))
            .collect::<Vec<_>>(),
        vec![("log.retention.ms".to_string(), 3)]
    );

    // Refused as Kafka refuses them.
    let (code, message) = incremental(
        &mut client,
        BROKER,
        "1",
        &[("log.dirs", SET, Some("/elsewhere"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::InvalidRequest.code());
    assert_eq!(
        message.as_deref(),
        Some("Cannot update these configs dynamically: Set(log.dirs)")
    );
    let (code, _) = incremental(
        &mut client,
        BROKER,
        "2",
        &[("log.retention.ms", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::InvalidRequest.code());
    let (code, message) = incremental(
        &mut client,
        BROKER,
        "",
        &[("log.retention.ms", SET, Some("x"))],
        false,
    )
    .await;
    assert_eq!(code, ResponseError::InvalidRequest.code());
    assert!(message.unwrap().contains("log.retention.ms"));

    // A dynamic default reaches the logs: a smaller message.max.bytes refuses a big record
    // on the topic without an override, not on the one with its own.
    assert_eq!(
        incremental(
            &mut client,
            BROKER,
            "",
            &[("message.max.bytes", SET, Some("2000"))],
            false
        )
        .await,
        ok
    );
    let producer = broker.producer();
    let big = vec![b'x'; 10_000];
    let refused = producer
        .send(
            FutureRecord::<(), _>::to("plain")
                .partition(0)
                .payload(&big),
            TIMEOUT,
        )
        .await;
    assert!(
        matches!(
            refused,
            Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                _
            ))
        ),
        "{refused:?}"
    );
    producer
        .send(
            FutureRecord::<(), _>::to("own").partition(0).payload(&big),
            TIMEOUT,
        )
        .await
        .expect("topic override wins over the dynamic default");

    // Durable: after a restart the dynamic configs still apply; removing one restores the
    // static default.
    drop(client);
    broker.restart().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let (value, source, _) = describe_one(&mut client, TOPIC, "plain", "retention.ms").await;
    assert_eq!((value.as_deref(), source), (Some("999"), 2));
    let (value, source, _) = describe_one(&mut client, TOPIC, "plain", "max.message.bytes").await;
    assert_eq!((value.as_deref(), source), (Some("2000"), 3));
    assert_eq!(
        incremental(
            &mut client,
            BROKER,
            "",
            &[("message.max.bytes", DELETE, None)],
            false
        )
        .await,
        ok
    );
    let producer = broker.producer();
    producer
        .send(
            FutureRecord::<(), _>::to("plain")
                .partition(0)
                .payload(&big),
            TIMEOUT,
        )
        .await
        .expect("default limit again");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_advances_the_low_watermark() {
    let mut broker = TestBroker::start().await;
    broker.create_topic("trim", 1).await;
    produce(&broker, "trim", 0, 10).await;
    let admin = broker.admin();

    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("trim", 0, Offset::Offset(4))
        .unwrap();
    let result = admin
        .delete_records(&offsets, &options())
        .await
        .expect("delete_records");
    let p = result.find_partition("trim", 0).expect("partition result");
    assert!(p.error().is_ok(), "{:?}", p.error());
    assert_eq!(p.offset(), Offset::Offset(4));

    let consumer = broker.consumer();
    assert_eq!(
        consumer.fetch_watermarks("trim", 0, TIMEOUT).unwrap(),
        (4, 10)
    );
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("trim", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let messages = poll_messages(&consumer, 6, TIMEOUT);
    assert_eq!(
        messages
            .iter()
            .map(rdkafka::Message::offset)
            .collect::<Vec<_>>(),
        (4..10).collect::<Vec<_>>()
    );

    // Past the high watermark is out of range; -1 means the high watermark.
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let delete = |offset: i64| {
        DeleteRecordsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![kafka_protocol::messages::delete_records_request::DeleteRecordsTopic::default()
                .with_name(s("trim").into())
                .with_partitions(vec![
                    kafka_protocol::messages::delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(offset),
                ])])
    };
    let response: DeleteRecordsResponse = client.call(ApiKey::DeleteRecords, 2, &delete(11)).await;
    let p = &response.topics[0].partitions[0];
    assert_eq!(
        (p.error_code, p.low_watermark),
        (ResponseError::OffsetOutOfRange.code(), -1)
    );
    let response: DeleteRecordsResponse = client.call(ApiKey::DeleteRecords, 2, &delete(-1)).await;
    let p = &response.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (0, 10));

    drop(client);
    broker.restart().await;
    let consumer = broker.consumer();
    assert_eq!(
        consumer.fetch_watermarks("trim", 0, TIMEOUT).unwrap(),
        (10, 10)
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_respects_the_cleanup_policy() {
    let broker = TestBroker::start().await;
    let admin = broker.admin();
    admin
        .create_topics(
            &[NewTopic::new("compacted", 1, TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact")],
            &options(),
        )
        .await
        .expect("create_topics request")
        .remove(0)
        .expect("topic created");
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("compacted", 0, Offset::Offset(0))
        .unwrap();
    let result = admin.delete_records(&offsets, &options()).await;
    let errors: Vec<_> = match &result {
        Ok(list) => list.elements().iter().map(|e| e.error().err()).collect(),
        Err(e) => panic!("delete_records: {e}"),
    };
    assert_eq!(
        errors,
        vec![Some(KafkaError::OffsetFetch(
            RDKafkaErrorCode::PolicyViolation
        ))]
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_log_dirs_and_leader_epochs() {
    let broker = TestBroker::start().await;
    broker.create_topic("dirs", 2).await;
    produce(&broker, "dirs", 1, 5).await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;

    // ApiVersions advertises every admin API with the codec's full range.
    let versions: ApiVersionsResponse = client
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    for (key, min, max) in [
        (ApiKey::DeleteTopics, 1, 6),
        (ApiKey::CreatePartitions, 0, 3),
        (ApiKey::DescribeConfigs, 1, 4),
        (ApiKey::AlterConfigs, 0, 2),
        (ApiKey::IncrementalAlterConfigs, 0, 1),
        (ApiKey::DeleteRecords, 0, 2),
        (ApiKey::DescribeCluster, 0, 2),
        (ApiKey::DescribeLogDirs, 1, 4),
        (ApiKey::OffsetForLeaderEpoch, 2, 4),
    ] {
        let v = versions
            .api_keys
            .iter()
            .find(|v| v.api_key == key as i16)
            .unwrap_or_else(|| panic!("{key:?} advertised"));
        assert_eq!((v.min_version, v.max_version), (min, max), "{key:?}");
    }

    let metadata: MetadataResponse = client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    for version in 0..=2 {
        let request =
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
        let cluster: DescribeClusterResponse = client
            .call(ApiKey::DescribeCluster, version, &request)
            .await;
        assert_eq!(cluster.error_code, 0);
        assert_eq!(Some(&cluster.cluster_id), metadata.cluster_id.as_ref());
        assert_eq!(cluster.controller_id.0, 1);
        assert_eq!(cluster.brokers.len(), 1);
        assert_eq!(cluster.brokers[0].broker_id.0, 1);
        assert_eq!(
            format!(
                "{}:{}",
                cluster.brokers[0].host.as_str(),
                cluster.brokers[0].port
            ),
            broker.bootstrap()
        );
        assert!(cluster.cluster_authorized_operations > 0);
    }
    let controllers: DescribeClusterResponse = client
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default().with_endpoint_type(2),
        )
        .await;
    assert_eq!(
        controllers.error_code,
        ResponseError::MismatchedEndpointType.code()
    );

    let dirs: DescribeLogDirsResponse = client
        .call(
            ApiKey::DescribeLogDirs,
            4,
            &DescribeLogDirsRequest::default().with_topics(None),
        )
        .await;
    assert_eq!(dirs.results.len(), 1);
    let dir = &dirs.results[0];
    assert_eq!(dir.error_code, 0);
    assert_eq!(
        std::path::Path::new(dir.log_dir.as_str()),
        std::path::absolute(broker.data_dir()).unwrap()
    );
    assert!(dir.total_bytes >= dir.usable_bytes && dir.usable_bytes > 0);
    let topic = dir
        .topics
        .iter()
        .find(|t| t.name.as_str() == "dirs")
        .unwrap_or_else(|| panic!("topic listed: {dir:?}"));
    assert_eq!(topic.partitions.len(), 2);
    let written = topic
        .partitions
        .iter()
        .find(|p| p.partition_index == 1)
        .unwrap();
    assert!(written.partition_size > 0);
    assert_eq!((written.offset_lag, written.is_future_key), (0, false));
    assert!(dir
        .topics
        .iter()
        .all(|t| t.name.as_str() != "__cluster_metadata"));
    let filtered = DescribeLogDirsRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic::default()
            .with_topic(s("dirs").into())
            .with_partitions(vec![0]),
    ]));
    let dirs: DescribeLogDirsResponse = client.call(ApiKey::DescribeLogDirs, 1, &filtered).await;
    let topics = &dirs.results[0].topics;
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].partitions.len(), 1);
    assert_eq!(topics[0].partitions[0].partition_index, 0);

    // Everything was written in leader epoch 0: its end is the log end offset.
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    let epochs = |partition: i32, current_leader_epoch: i32, leader_epoch: i32| {
        OffsetForLeaderEpochRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(s("dirs").into())
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(current_leader_epoch)
                    .with_leader_epoch(leader_epoch)])])
    };
    for version in 2..=4 {
        let response: OffsetForLeaderEpochResponse = client
            .call(ApiKey::OffsetForLeaderEpoch, version, &epochs(1, 0, 0))
            .await;
        let p = &response.topics[0].partitions[0];
        assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 0, 5));
    }
    let cases = [
        (epochs(1, 1, 0), ResponseError::UnknownLeaderEpoch.code()),
        (
            epochs(9, -1, 0),
            ResponseError::UnknownTopicOrPartition.code(),
        ),
    ];
    for (request, code) in cases {
        let response: OffsetForLeaderEpochResponse =
            client.call(ApiKey::OffsetForLeaderEpoch, 4, &request).await;
        assert_eq!(response.topics[0].partitions[0].error_code, code);
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_rack_is_reported_in_metadata_and_describe_cluster() {
    let broker = TestBroker::start_with(&[("broker.rack", "rack-a")]).await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let metadata: MetadataResponse = client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    assert_eq!(
        metadata.brokers[0].rack.as_ref().map(|r| r.as_str()),
        Some("rack-a")
    );
    let cluster: DescribeClusterResponse = client
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default(),
        )
        .await;
    assert_eq!(
        cluster.brokers[0].rack.as_ref().map(|r| r.as_str()),
        Some("rack-a")
    );
    drop(client);
    broker.shutdown().await;
}
