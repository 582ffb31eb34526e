//! ACLs over the wire: CreateAcls, DescribeAcls and DeleteAcls as Kafka answers them (and
//! across a restart), and the admin APIs' authorization: for each, a principal without an
//! ACL gets Kafka's error, and the ACL Kafka asks for lets it through.
//!
//! The broker has a SASL_PLAINTEXT PLAIN listener and the StandardAuthorizer; `admin` is a
//! super user, `alice` is not. No Rust client exposes these admin APIs (rdkafka 0.39 has no
//! ACL calls), so the tests speak the protocol (`common::wire`), authenticated with SASL.

mod common;

use common::secured::secured_broker;
use common::wire::WireClient;
use common::TestBroker;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use uuid::Uuid;

// Kafka's codes: resource types, pattern types, operations, permissions.
const TOPIC: i8 = 2;
const CLUSTER: i8 = 4;
const TRANSACTIONAL_ID: i8 = 5;
const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DELETE: i8 = 6;
const ALTER: i8 = 7;
const DESCRIBE: i8 = 8;
const CLUSTER_ACTION: i8 = 9;
const DESCRIBE_CONFIGS: i8 = 10;
const ALTER_CONFIGS: i8 = 11;
const ALLOW: i8 = 3;

// Kafka's error codes.
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const SECURITY_DISABLED: i16 = 54;

async fn admin(broker: &TestBroker) -> WireClient {
    WireClient::connect_sasl_plain(&broker.bootstrap(), "admin", "admin-secret").await
}

async fn alice(broker: &TestBroker) -> WireClient {
    WireClient::connect_sasl_plain(&broker.bootstrap(), "alice", "alice-secret").await
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

fn creation(rt: i8, name: &str, pt: i8, principal: &str, op: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(rt)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pt)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(op)
        .with_permission_type(ALLOW)
}

/// "code message" per result, `null` for no message.
fn summary(code: i16, message: &Option<StrBytes>) -> String {
    format!("{code} {}", message.as_deref().unwrap_or("null"))
}

async fn create_acls(client: &mut WireClient, creations: Vec<AclCreation>) -> Vec<String> {
    let response: CreateAclsResponse = client
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(creations),
        )
        .await;
    response
        .results
        .iter()
        .map(|r| summary(r.error_code, &r.error_message))
        .collect()
}

fn any_filter() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(ANY)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(ANY)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(ANY)
        .with_permission_type(ANY)
}

async fn describe_acls(
    client: &mut WireClient,
    filter: DescribeAclsRequest,
) -> DescribeAclsResponse {
    client.call(ApiKey::DescribeAcls, 3, &filter).await
}

/// Every binding as `TYPE:name:pattern principal op`, sorted.
fn bindings(response: &DescribeAclsResponse) -> Vec<String> {
    let mut all: Vec<String> = response
        .resources
        .iter()
        .flat_map(|r| {
            r.acls.iter().map(move |a| {
                format!(
                    "{}:{}:{} {} {}",
                    r.resource_type,
                    r.resource_name.as_str(),
                    r.pattern_type,
                    a.principal.as_str(),
                    a.operation
                )
            })
        })
        .collect();
    all.sort();
    all
}

fn exact_filter(acl: &AclCreation) -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(acl.resource_type)
        .with_resource_name_filter(Some(acl.resource_name.clone()))
        .with_pattern_type_filter(acl.resource_pattern_type)
        .with_principal_filter(Some(acl.principal.clone()))
        .with_host_filter(Some(acl.host.clone()))
        .with_operation(acl.operation)
        .with_permission_type(acl.permission_type)
}

async fn delete_acls(
    client: &mut WireClient,
    filters: Vec<DeleteAclsFilter>,
) -> DeleteAclsResponse {
    client
        .call(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(filters),
        )
        .await
}

/// Lets alice do `op` on the literal resource, as the admin.
async fn grant(admin: &mut WireClient, rt: i8, name: &str, op: i8) -> AclCreation {
    let acl = creation(rt, name, LITERAL, "User:alice", op);
    assert_eq!(create_acls(admin, vec![acl.clone()]).await, vec!["0 "]);
    acl
}

async fn revoke(admin: &mut WireClient, acl: &AclCreation) {
    let response = delete_acls(admin, vec![exact_filter(acl)]).await;
    assert_eq!(response.filter_results[0].error_code, 0);
    assert_eq!(response.filter_results[0].matching_acls.len(), 1);
}

async fn create_topics(
    client: &mut WireClient,
    names: &[&str],
    partitions: i32,
) -> CreateTopicsResponse {
    let topics = names
        .iter()
        .map(|n| {
            create_topics_request::CreatableTopic::default()
                .with_name(topic(n))
                .with_num_partitions(partitions)
                .with_replication_factor(1)
        })
        .collect();
    client
        .call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(10_000),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_apis_without_an_authorizer_are_security_disabled() {
    let broker = TestBroker::start().await;
    let mut client = WireClient::connect(&broker.bootstrap()).await;
    let acl = creation(TOPIC, "t", LITERAL, "User:alice", READ);
    assert_eq!(
        create_acls(&mut client, vec![acl.clone(), acl.clone()]).await,
        vec![
            "54 No Authorizer is configured.",
            "54 No Authorizer is configured."
        ]
    );
    let described = describe_acls(&mut client, any_filter()).await;
    assert_eq!(
        summary(described.error_code, &described.error_message),
        "54 No Authorizer is configured on the broker"
    );
    let deleted = delete_acls(&mut client, vec![exact_filter(&acl)]).await;
    assert_eq!(deleted.filter_results.len(), 1);
    assert_eq!(deleted.filter_results[0].error_code, SECURITY_DISABLED);
    assert_eq!(
        deleted.filter_results[0].error_message.as_deref(),
        Some("No Authorizer is configured.")
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_are_created_described_deleted_and_survive_a_restart() {
    let mut broker = secured_broker().await;
    let mut admin_client = admin(&broker).await;
    let read_orders = creation(TOPIC, "orders", LITERAL, "User:alice", READ);
    let write_ord = creation(TOPIC, "ord", PREFIXED, "User:alice", WRITE);
    let bob_group = creation(3, "g", LITERAL, "User:bob", DESCRIBE);
    let results = create_acls(
        &mut admin_client,
        vec![
            read_orders.clone(),
            write_ord.clone(),
            bob_group.clone(),
            // A duplicate, in the request and of nothing yet: one binding.
            read_orders.clone(),
            creation(CLUSTER, "other", LITERAL, "User:alice", ALTER),
            creation(TOPIC, "", LITERAL, "User:alice", READ),
            creation(TOPIC, "t", LITERAL, "alice", READ),
            creation(99, "t", LITERAL, "User:alice", READ),
        ],
    )
    .await;
    assert_eq!(
        results,
        vec![
            "0 ",
            "0 ",
            "0 ",
            "0 ",
            "42 The only valid name for the CLUSTER resource is kafka-cluster",
            "42 Invalid empty resource name",
            "42 Could not parse principal from `alice` (no colon is present separating the \
             principal type from the principal name)",
            "42 Invalid resourceType UNKNOWN",
        ]
    );
    // Again: an existing binding is a success that adds nothing.
    assert_eq!(
        create_acls(&mut admin_client, vec![read_orders.clone()]).await,
        vec!["0 "]
    );
    // A filter value where a binding needs a specific one fails every creation.
    let mut any_pattern = read_orders.clone();
    any_pattern.resource_pattern_type = ANY;
    assert_eq!(
        create_acls(&mut admin_client, vec![bob_group.clone(), any_pattern]).await,
        vec!["-1 null", "-1 null"]
    );

    let expected = vec![
        "2:ord:4 User:alice 4".to_string(),
        "2:orders:3 User:alice 3".to_string(),
        "3:g:3 User:bob 8".to_string(),
    ];
    let all = describe_acls(&mut admin_client, any_filter()).await;
    assert_eq!(all.error_code, 0);
    assert_eq!(bindings(&all), expected);
    assert_eq!(all.resources.len(), 3, "grouped by resource pattern");
    // MATCH: the bindings that apply to topic "orders" (its literal and the prefix).
    let matching = describe_acls(
        &mut admin_client,
        any_filter()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(s("orders")))
            .with_pattern_type_filter(MATCH),
    )
    .await;
    assert_eq!(bindings(&matching), expected[..2].to_vec());
    let bobs = describe_acls(
        &mut admin_client,
        any_filter().with_principal_filter(Some(s("User:bob"))),
    )
    .await;
    assert_eq!(bindings(&bobs), expected[2..].to_vec());

    // Alice is no super user and has no ALTER / DESCRIBE on the cluster.
    let mut alice_client = alice(&broker).await;
    let refused = create_acls(&mut alice_client, vec![read_orders.clone()]).await;
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].starts_with("31 Request Request(session=Session(User:alice,/127.0.0.1)")
            && refused[0].ends_with("is not authorized."),
        "{refused:?}"
    );
    let refused = describe_acls(&mut alice_client, any_filter()).await;
    assert_eq!(refused.error_code, CLUSTER_AUTHORIZATION_FAILED);
    assert!(refused.resources.is_empty());
    let refused = delete_acls(&mut alice_client, vec![exact_filter(&bob_group)]).await;
    assert_eq!(
        refused.filter_results[0].error_code,
        CLUSTER_AUTHORIZATION_FAILED
    );
    assert!(refused.filter_results[0].matching_acls.is_empty());

    // A creation with an UNKNOWN (0) code does not decode in Kafka: the connection closes.
    let mut raw = admin(&broker).await.into_raw();
    let mut body = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::CreateAcls as i16)
        .with_request_api_version(3)
        .with_correlation_id(1)
        .encode(&mut body, ApiKey::CreateAcls.request_header_version(3))
        .unwrap();
    let mut unknown = read_orders.clone();
    unknown.operation = 0;
    CreateAclsRequest::default()
        .with_creations(vec![unknown])
        .encode(&mut body, 3)
        .unwrap();
    raw.send_frame(&body).await;
    raw.expect_closed("CreateAcls with an UNKNOWN operation")
        .await;

    drop((admin_client, alice_client));
    broker.restart().await;
    let mut admin_client = admin(&broker).await;
    assert_eq!(
        bindings(&describe_acls(&mut admin_client, any_filter()).await),
        expected
    );

    // Each filter lists what it matched; a filter with an unknown part is refused alone.
    let deleted = delete_acls(
        &mut admin_client,
        vec![
            DeleteAclsFilter::default()
                .with_resource_type_filter(ANY)
                .with_resource_name_filter(None)
                .with_pattern_type_filter(ANY)
                .with_principal_filter(Some(s("User:alice")))
                .with_host_filter(None)
                .with_operation(ANY)
                .with_permission_type(ANY),
            exact_filter(&read_orders).with_operation(99),
        ],
    )
    .await;
    let results = &deleted.filter_results;
    assert_eq!(
        summary(results[0].error_code, &results[0].error_message),
        "0 null"
    );
    let mut matched: Vec<String> = results[0]
        .matching_acls
        .iter()
        .map(|m| {
            format!(
                "{}:{} {}",
                m.resource_name.as_str(),
                m.pattern_type,
                m.operation
            )
        })
        .collect();
    matched.sort();
    assert_eq!(matched, vec!["ord:4 4", "orders:3 3"]);
    assert_eq!(
        summary(results[1].error_code, &results[1].error_message),
        "42 Unknown entryFilter."
    );
    assert_eq!(
        bindings(&describe_acls(&mut admin_client, any_filter()).await),
        expected[2..].to_vec()
    );
    drop(admin_client);
    broker.restart().await;
    let mut admin_client = admin(&broker).await;
    assert_eq!(
        bindings(&describe_acls(&mut admin_client, any_filter()).await),
        expected[2..].to_vec()
    );
    drop(admin_client);
    broker.shutdown().await;
}

fn not_authorized(message: &Option<StrBytes>) -> bool {
    message
        .as_deref()
        .is_some_and(|m| m.starts_with("Request Request(") && m.ends_with("is not authorized."))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_apis_need_their_acls() {
    let broker = secured_broker().await;
    let mut admin = admin(&broker).await;
    let mut alice = alice(&broker).await;
    let created = create_topics(&mut admin, &["base", "doomed"], 1).await;
    assert!(
        created.topics.iter().all(|t| t.error_code == 0),
        "{created:?}"
    );
    let doomed_id = created.topics[1].topic_id;

    // CreateTopics: CREATE on the topic (or the cluster); configs need DESCRIBE_CONFIGS.
    let refused = create_topics(&mut alice, &["alice-t"], 1).await;
    let t = &refused.topics[0];
    assert_eq!(
        summary(t.error_code, &t.error_message),
        "29 Authorization failed."
    );
    let create = grant(&mut admin, TOPIC, "alice-t", CREATE).await;
    let created = create_topics(&mut alice, &["alice-t"], 1).await;
    let t = &created.topics[0];
    assert_eq!(t.error_code, 0, "{t:?}");
    assert_eq!(t.topic_config_error_code, TOPIC_AUTHORIZATION_FAILED);
    assert_eq!((t.num_partitions, t.replication_factor), (-1, -1));
    assert!(t.configs.as_ref().is_none_or(|c| c.is_empty()));
    revoke(&mut admin, &create).await;
    let cluster_create = grant(&mut admin, CLUSTER, "kafka-cluster", CREATE).await;
    let configs = grant(&mut admin, TOPIC, "alice-u", DESCRIBE_CONFIGS).await;
    let created = create_topics(&mut alice, &["alice-u"], 2).await;
    let t = &created.topics[0];
    assert_eq!((t.error_code, t.topic_config_error_code), (0, 0), "{t:?}");
    assert_eq!(t.num_partitions, 2);
    assert!(t.configs.as_ref().is_some_and(|c| !c.is_empty()));
    revoke(&mut admin, &cluster_create).await;
    revoke(&mut admin, &configs).await;

    // DeleteTopics: a topic alice may not DESCRIBE is refused before it is looked up; by
    // id, without its name.
    let delete_topics = async |client: &mut WireClient, by_name: Option<&str>, id: Uuid| {
        let state = delete_topics_request::DeleteTopicState::default()
            .with_name(by_name.map(topic))
            .with_topic_id(id);
        let response: DeleteTopicsResponse = client
            .call(
                ApiKey::DeleteTopics,
                6,
                &DeleteTopicsRequest::default()
                    .with_topics(vec![state])
                    .with_timeout_ms(10_000),
            )
            .await;
        let r = &response.responses[0];
        (
            r.name.as_ref().map(|n| n.0.to_string()),
            summary(r.error_code, &r.error_message),
        )
    };
    let denied = "29 Topic authorization failed.".to_string();
    for name in ["doomed", "missing"] {
        assert_eq!(
            delete_topics(&mut alice, Some(name), Uuid::nil()).await,
            (Some(name.to_string()), denied.clone())
        );
    }
    assert_eq!(
        delete_topics(&mut alice, None, doomed_id).await,
        (None, denied.clone())
    );
    let describe = grant(&mut admin, TOPIC, "doomed", DESCRIBE).await;
    assert_eq!(
        delete_topics(&mut alice, None, doomed_id).await,
        (Some("doomed".into()), denied.clone())
    );
    assert_eq!(
        delete_topics(&mut alice, Some("doomed"), Uuid::nil()).await,
        (Some("doomed".into()), denied.clone())
    );
    revoke(&mut admin, &describe).await;
    let delete = grant(&mut admin, TOPIC, "doomed", DELETE).await;
    assert_eq!(
        delete_topics(&mut alice, Some("doomed"), Uuid::nil())
            .await
            .1,
        "0 null"
    );
    revoke(&mut admin, &delete).await;

    // CreatePartitions: ALTER on the topic; refused without a message.
    let create_partitions = async |client: &mut WireClient| {
        let response: CreatePartitionsResponse = client
            .call(
                ApiKey::CreatePartitions,
                3,
                &CreatePartitionsRequest::default()
                    .with_topics(vec![
                        create_partitions_request::CreatePartitionsTopic::default()
                            .with_name(topic("alice-t"))
                            .with_count(2)
                            .with_assignments(None),
                    ])
                    .with_timeout_ms(10_000),
            )
            .await;
        summary(
            response.results[0].error_code,
            &response.results[0].error_message,
        )
    };
    assert_eq!(create_partitions(&mut alice).await, "29 null");
    let alter = grant(&mut admin, TOPIC, "alice-t", ALTER).await;
    assert_eq!(create_partitions(&mut alice).await, "0 null");
    revoke(&mut admin, &alter).await;

    // DeleteRecords: DELETE on the topic.
    let delete_records = async |client: &mut WireClient| {
        let response: DeleteRecordsResponse = client
            .call(
                ApiKey::DeleteRecords,
                2,
                &DeleteRecordsRequest::default()
                    .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                        .with_name(topic("base"))
                        .with_partitions(vec![
                            delete_records_request::DeleteRecordsPartition::default()
                                .with_partition_index(0)
                                .with_offset(0),
                        ])])
                    .with_timeout_ms(10_000),
            )
            .await;
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.low_watermark)
    };
    assert_eq!(
        delete_records(&mut alice).await,
        (TOPIC_AUTHORIZATION_FAILED, -1)
    );
    let delete = grant(&mut admin, TOPIC, "base", DELETE).await;
    assert_eq!(delete_records(&mut alice).await, (0, 0));
    revoke(&mut admin, &delete).await;

    // OffsetForLeaderEpoch: DESCRIBE on the topic (or CLUSTER_ACTION, a follower).
    let epochs = async |client: &mut WireClient| {
        let response: OffsetForLeaderEpochResponse = client
            .call(
                ApiKey::OffsetForLeaderEpoch,
                4,
                &OffsetForLeaderEpochRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                            .with_topic(topic("base"))
                            .with_partitions(vec![
                                offset_for_leader_epoch_request::OffsetForLeaderPartition::default(
                                )
                                .with_partition(0)
                                .with_current_leader_epoch(-1)
                                .with_leader_epoch(0),
                            ]),
                    ]),
            )
            .await;
        response.topics[0].partitions[0].error_code
    };
    assert_eq!(epochs(&mut alice).await, TOPIC_AUTHORIZATION_FAILED);
    for (rt, name, op) in [
        (TOPIC, "base", DESCRIBE),
        (CLUSTER, "kafka-cluster", CLUSTER_ACTION),
    ] {
        let acl = grant(&mut admin, rt, name, op).await;
        assert_eq!(epochs(&mut alice).await, 0);
        revoke(&mut admin, &acl).await;
    }

    // DescribeProducers: READ on the topic, refused with Kafka's message.
    let producers = async |client: &mut WireClient| {
        let response: DescribeProducersResponse = client
            .call(
                ApiKey::DescribeProducers,
                0,
                &DescribeProducersRequest::default().with_topics(vec![
                    describe_producers_request::TopicRequest::default()
                        .with_name(topic("base"))
                        .with_partition_indexes(vec![0]),
                ]),
            )
            .await;
        let p = &response.topics[0].partitions[0];
        summary(p.error_code, &p.error_message)
    };
    assert_eq!(
        producers(&mut alice).await,
        "29 Topic authorization failed."
    );
    let read = grant(&mut admin, TOPIC, "base", READ).await;
    assert!(producers(&mut alice).await.starts_with("0 "));
    revoke(&mut admin, &read).await;
    drop((admin, alice));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_apis_need_describe_configs_and_alter_configs() {
    let broker = secured_broker().await;
    let mut admin = admin(&broker).await;
    let mut alice = alice(&broker).await;
    create_topics(&mut admin, &["base"], 1).await;

    let describe = async |client: &mut WireClient| {
        let resources = [(TOPIC, "base"), (4, "1")]
            .into_iter()
            .map(|(rt, name)| {
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(rt)
                    .with_resource_name(s(name))
                    .with_configuration_keys(None)
            })
            .collect();
        let response: DescribeConfigsResponse = client
            .call(
                ApiKey::DescribeConfigs,
                4,
                &DescribeConfigsRequest::default().with_resources(resources),
            )
            .await;
        response
            .results
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.resource_name.as_str(),
                    summary(r.error_code, &r.error_message)
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        describe(&mut alice).await,
        vec![
            "base 29 Topic authorization failed.",
            "1 31 Cluster authorization failed."
        ]
    );
    // Kafka answers the authorized resources first.
    let topic_configs = grant(&mut admin, TOPIC, "base", DESCRIBE_CONFIGS).await;
    let cluster_configs = grant(&mut admin, CLUSTER, "kafka-cluster", DESCRIBE_CONFIGS).await;
    let answers = describe(&mut alice).await;
    assert!(answers.iter().all(|a| a.contains(" 0 ")), "{answers:?}");
    revoke(&mut admin, &cluster_configs).await;
    let answers = describe(&mut alice).await;
    assert!(answers[0].starts_with("base 0 "), "{answers:?}");
    assert_eq!(answers[1], "1 31 Cluster authorization failed.");
    revoke(&mut admin, &topic_configs).await;

    // AlterConfigs and IncrementalAlterConfigs: ALTER_CONFIGS on the topic / the cluster.
    let alter = async |client: &mut WireClient| {
        let resources = [
            (TOPIC, "base", "retention.ms", "60000"),
            (4, "1", "log.retention.ms", "7200000"),
        ]
        .into_iter()
        .map(|(rt, name, key, value)| {
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(rt)
                .with_resource_name(s(name))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(s(key))
                    .with_value(Some(s(value)))])
        })
        .collect();
        let response: AlterConfigsResponse = client
            .call(
                ApiKey::AlterConfigs,
                2,
                &AlterConfigsRequest::default().with_resources(resources),
            )
            .await;
        response
            .responses
            .iter()
            .map(|r| summary(r.error_code, &r.error_message))
            .collect::<Vec<_>>()
    };
    let incremental = async |client: &mut WireClient| {
        let resources = [
            (TOPIC, "base", "retention.ms", "120000"),
            (4, "1", "log.retention.ms", "3600000"),
            (8, "1", "kafka.server", "DEBUG"),
        ]
        .into_iter()
        .map(|(rt, name, key, value)| {
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(rt)
                .with_resource_name(s(name))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s(key))
                        .with_config_operation(0)
                        .with_value(Some(s(value))),
                ])
        })
        .collect();
        let response: IncrementalAlterConfigsResponse = client
            .call(
                ApiKey::IncrementalAlterConfigs,
                1,
                &IncrementalAlterConfigsRequest::default().with_resources(resources),
            )
            .await;
        response
            .responses
            .iter()
            .map(|r| summary(r.error_code, &r.error_message))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        alter(&mut alice).await,
        vec![
            "29 Topic authorization failed.",
            "31 Cluster authorization failed."
        ]
    );
    assert_eq!(
        incremental(&mut alice).await,
        vec![
            "29 Topic authorization failed.",
            "31 Cluster authorization failed.",
            "31 null"
        ]
    );
    let topic_alter = grant(&mut admin, TOPIC, "base", ALTER_CONFIGS).await;
    let cluster_alter = grant(&mut admin, CLUSTER, "kafka-cluster", ALTER_CONFIGS).await;
    assert_eq!(alter(&mut alice).await, vec!["0 null", "0 null"]);
    let answers = incremental(&mut alice).await;
    assert_eq!(answers[..2], ["0 null", "0 null"]);
    assert!(answers[2].starts_with("42 "), "{answers:?}");
    revoke(&mut admin, &topic_alter).await;
    revoke(&mut admin, &cluster_alter).await;
    drop((admin, alice));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_apis_need_describe_alter_or_cluster_action() {
    let broker = secured_broker().await;
    let mut admin = admin(&broker).await;
    let mut alice = alice(&broker).await;
    create_topics(&mut admin, &["base"], 1).await;

    // DescribeCluster: never refused; the cluster's operations need DESCRIBE.
    let operations = async |client: &mut WireClient| {
        let response: DescribeClusterResponse = client
            .call(
                ApiKey::DescribeCluster,
                1,
                &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
            )
            .await;
        assert_eq!(response.error_code, 0);
        response.cluster_authorized_operations
    };
    assert_eq!(operations(&mut alice).await, 0);
    let all_cluster_operations: i32 = [5, 9, 10, 11, 12, 7, 8].iter().map(|op| 1 << op).sum();
    assert_eq!(operations(&mut admin).await, all_cluster_operations);

    // DESCRIBE on the cluster: DescribeLogDirs, ListPartitionReassignments, DescribeQuorum,
    // DescribeUserScramCredentials.
    let log_dirs = async |client: &mut WireClient| {
        let response: DescribeLogDirsResponse = client
            .call(
                ApiKey::DescribeLogDirs,
                4,
                &DescribeLogDirsRequest::default().with_topics(None),
            )
            .await;
        (response.error_code, response.results.len())
    };
    let reassignments = async |client: &mut WireClient| {
        let response: ListPartitionReassignmentsResponse = client
            .call(
                ApiKey::ListPartitionReassignments,
                0,
                &ListPartitionReassignmentsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(None),
            )
            .await;
        (response.error_code, response.error_message)
    };
    let quorum = async |client: &mut WireClient| {
        let response: DescribeQuorumResponse = client
            .call(
                ApiKey::DescribeQuorum,
                2,
                &DescribeQuorumRequest::default().with_topics(vec![
                    describe_quorum_request::TopicData::default()
                        .with_topic_name(topic("__cluster_metadata"))
                        .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
                ]),
            )
            .await;
        summary(response.error_code, &response.error_message)
    };
    let scram = async |client: &mut WireClient| {
        let response: DescribeUserScramCredentialsResponse = client
            .call(
                ApiKey::DescribeUserScramCredentials,
                0,
                &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                    describe_user_scram_credentials_request::UserName::default()
                        .with_name(s("carol")),
                ])),
            )
            .await;
        let mut out = vec![summary(response.error_code, &response.error_message)];
        out.extend(response.results.iter().map(|r| {
            format!(
                "'{}' {}",
                r.user.as_str(),
                summary(r.error_code, &r.error_message)
            )
        }));
        out
    };
    assert_eq!(
        log_dirs(&mut alice).await,
        (CLUSTER_AUTHORIZATION_FAILED, 0)
    );
    let (code, message) = reassignments(&mut alice).await;
    assert_eq!(code, CLUSTER_AUTHORIZATION_FAILED);
    assert!(not_authorized(&message), "{message:?}");
    assert_eq!(quorum(&mut alice).await, "31 Cluster authorization failed.");
    assert_eq!(scram(&mut alice).await, vec!["31 null", "'' 31 null"]);
    let describe = grant(&mut admin, CLUSTER, "kafka-cluster", DESCRIBE).await;
    assert_eq!(operations(&mut alice).await, 1 << DESCRIBE);
    assert_eq!(log_dirs(&mut alice).await, (0, 1));
    assert_eq!(reassignments(&mut alice).await.0, 0);
    assert!(quorum(&mut alice).await.starts_with("0 "));
    assert_eq!(
        scram(&mut alice).await[1],
        "'carol' 91 Attempt to describe a user credential that does not exist: carol"
    );
    revoke(&mut admin, &describe).await;

    // ALTER on the cluster: ElectLeaders, AlterPartitionReassignments, AlterReplicaLogDirs,
    // AddRaftVoter, RemoveRaftVoter, UnregisterBroker, AlterUserScramCredentials.
    let elect = async |client: &mut WireClient| {
        let response: ElectLeadersResponse = client
            .call(
                ApiKey::ElectLeaders,
                2,
                &ElectLeadersRequest::default()
                    .with_election_type(0)
                    .with_topic_partitions(Some(vec![
                        elect_leaders_request::TopicPartitions::default()
                            .with_topic(topic("base"))
                            .with_partitions(vec![0]),
                    ]))
                    .with_timeout_ms(10_000),
            )
            .await;
        let p = &response.replica_election_results[0].partition_result[0];
        (response.error_code, p.error_code, p.error_message.clone())
    };
    let reassign = async |client: &mut WireClient| {
        let response: AlterPartitionReassignmentsResponse = client
            .call(
                ApiKey::AlterPartitionReassignments,
                0,
                &AlterPartitionReassignmentsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(vec![
                        alter_partition_reassignments_request::ReassignableTopic::default()
                            .with_name(topic("base"))
                            .with_partitions(vec![
                            alter_partition_reassignments_request::ReassignablePartition::default()
                                .with_partition_index(0)
                                .with_replicas(None),
                        ]),
                    ]),
            )
            .await;
        (response.error_code, response.error_message)
    };
    let move_dirs = async |client: &mut WireClient| {
        let response: AlterReplicaLogDirsResponse = client
            .call(
                ApiKey::AlterReplicaLogDirs,
                2,
                &AlterReplicaLogDirsRequest::default().with_dirs(vec![
                    alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                        .with_path(s("/nowhere"))
                        .with_topics(vec![
                            alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                                .with_name(topic("base"))
                                .with_partitions(vec![0]),
                        ]),
                ]),
            )
            .await;
        response.results[0].partitions[0].error_code
    };
    let add_voter = async |client: &mut WireClient| {
        let response: AddRaftVoterResponse = client
            .call(
                ApiKey::AddRaftVoter,
                0,
                &AddRaftVoterRequest::default()
                    .with_voter_id(7)
                    .with_timeout_ms(1000),
            )
            .await;
        summary(response.error_code, &response.error_message)
    };
    let remove_voter = async |client: &mut WireClient| {
        let response: RemoveRaftVoterResponse = client
            .call(
                ApiKey::RemoveRaftVoter,
                0,
                &RemoveRaftVoterRequest::default().with_voter_id(7),
            )
            .await;
        summary(response.error_code, &response.error_message)
    };
    let unregister = async |client: &mut WireClient| {
        let response: UnregisterBrokerResponse = client
            .call(
                ApiKey::UnregisterBroker,
                0,
                &UnregisterBrokerRequest::default().with_broker_id(BrokerId(99)),
            )
            .await;
        response.error_code
    };
    let set_scram = async |client: &mut WireClient| {
        let response: AlterUserScramCredentialsResponse = client
            .call(
                ApiKey::AlterUserScramCredentials,
                0,
                &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                    alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
                        .with_name(s("carol"))
                        .with_mechanism(1)
                        .with_iterations(4096)
                        .with_salt(bytes::Bytes::from_static(b"salt"))
                        .with_salted_password(bytes::Bytes::from_static(b"salted")),
                ]),
            )
            .await;
        let r = &response.results[0];
        (r.user.to_string(), r.error_code, r.error_message.clone())
    };
    let (top, partition, message) = elect(&mut alice).await;
    assert_eq!(
        (top, partition),
        (CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED)
    );
    assert!(not_authorized(&message), "{message:?}");
    let (code, message) = reassign(&mut alice).await;
    assert_eq!(code, CLUSTER_AUTHORIZATION_FAILED);
    assert!(not_authorized(&message), "{message:?}");
    assert_eq!(move_dirs(&mut alice).await, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(
        add_voter(&mut alice).await,
        "31 Cluster authorization failed."
    );
    assert_eq!(
        remove_voter(&mut alice).await,
        "31 Cluster authorization failed."
    );
    assert_eq!(unregister(&mut alice).await, CLUSTER_AUTHORIZATION_FAILED);
    let (user, code, message) = set_scram(&mut alice).await;
    assert_eq!(
        (user.as_str(), code),
        ("carol", CLUSTER_AUTHORIZATION_FAILED)
    );
    assert!(not_authorized(&message), "{message:?}");
    let alter = grant(&mut admin, CLUSTER, "kafka-cluster", ALTER).await;
    let (top, partition, _) = elect(&mut alice).await;
    assert_eq!(top, 0);
    assert_ne!(partition, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(reassign(&mut alice).await.0, 0);
    assert_eq!(move_dirs(&mut alice).await, 57, "LOG_DIR_NOT_FOUND");
    for answer in [add_voter(&mut alice).await, remove_voter(&mut alice).await] {
        assert!(!answer.starts_with("31 "), "{answer}");
    }
    assert_ne!(unregister(&mut alice).await, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(set_scram(&mut alice).await.1, 0);
    revoke(&mut admin, &alter).await;

    // CLUSTER_ACTION on the cluster: the APIs nodes send each other.
    let node_apis = async |client: &mut WireClient| {
        let update: UpdateRaftVoterResponse = client
            .call(
                ApiKey::UpdateRaftVoter,
                0,
                &UpdateRaftVoterRequest::default().with_voter_id(7),
            )
            .await;
        let registration: BrokerRegistrationResponse = client
            .call(
                ApiKey::BrokerRegistration,
                4,
                &BrokerRegistrationRequest::default()
                    .with_broker_id(BrokerId(99))
                    .with_cluster_id(s("another-cluster")),
            )
            .await;
        let heartbeat: BrokerHeartbeatResponse = client
            .call(
                ApiKey::BrokerHeartbeat,
                1,
                &BrokerHeartbeatRequest::default()
                    .with_broker_id(BrokerId(99))
                    .with_broker_epoch(5),
            )
            .await;
        let controller: ControllerRegistrationResponse = client
            .call(
                ApiKey::ControllerRegistration,
                0,
                &ControllerRegistrationRequest::default().with_controller_id(1),
            )
            .await;
        let isr: AlterPartitionResponse = client
            .call(
                ApiKey::AlterPartition,
                3,
                &AlterPartitionRequest::default()
                    .with_broker_id(BrokerId(99))
                    .with_broker_epoch(5),
            )
            .await;
        let ids: AllocateProducerIdsResponse = client
            .call(
                ApiKey::AllocateProducerIds,
                0,
                &AllocateProducerIdsRequest::default()
                    .with_broker_id(BrokerId(99))
                    .with_broker_epoch(5),
            )
            .await;
        let markers: WriteTxnMarkersResponse = client
            .call(
                ApiKey::WriteTxnMarkers,
                1,
                &WriteTxnMarkersRequest::default().with_markers(vec![
                    write_txn_markers_request::WritableTxnMarker::default()
                        .with_producer_id(ProducerId(4242))
                        .with_topics(vec![
                            write_txn_markers_request::WritableTxnMarkerTopic::default()
                                .with_name(topic("nowhere"))
                                .with_partition_indexes(vec![0]),
                        ]),
                ]),
            )
            .await;
        vec![
            ("UpdateRaftVoter", update.error_code, None),
            ("BrokerRegistration", registration.error_code, None),
            ("BrokerHeartbeat", heartbeat.error_code, None),
            (
                "ControllerRegistration",
                controller.error_code,
                controller.error_message.map(|m| m.to_string()),
            ),
            ("AlterPartition", isr.error_code, None),
            ("AllocateProducerIds", ids.error_code, None),
            (
                "WriteTxnMarkers",
                markers.markers[0].topics[0].partitions[0].error_code,
                None,
            ),
        ]
    };
    for (api, code, message) in node_apis(&mut alice).await {
        assert_eq!(code, CLUSTER_AUTHORIZATION_FAILED, "{api}");
        if api == "ControllerRegistration" {
            assert_eq!(message.as_deref(), Some("Cluster authorization failed."));
        }
    }
    let cluster_action = grant(&mut admin, CLUSTER, "kafka-cluster", CLUSTER_ACTION).await;
    for (api, code, _) in node_apis(&mut alice).await {
        assert_ne!(code, CLUSTER_AUTHORIZATION_FAILED, "{api}");
    }
    revoke(&mut admin, &cluster_action).await;
    // WriteTxnMarkers also takes ALTER on the cluster.
    let alter = grant(&mut admin, CLUSTER, "kafka-cluster", ALTER).await;
    let answers = node_apis(&mut alice).await;
    assert_ne!(answers[6].1, CLUSTER_AUTHORIZATION_FAILED);
    assert_eq!(answers[0].1, CLUSTER_AUTHORIZATION_FAILED);
    revoke(&mut admin, &alter).await;
    drop((admin, alice));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_listed_and_described_with_describe_on_the_transactional_id() {
    let broker = secured_broker().await;
    let mut admin = admin(&broker).await;
    let mut alice = alice(&broker).await;
    create_topics(&mut admin, &["base"], 1).await;

    // The admin opens a transaction on base-0 (InitProducerId, AddPartitionsToTxn).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (producer_id, producer_epoch) = loop {
        let _: FindCoordinatorResponse = admin
            .call(
                ApiKey::FindCoordinator,
                4,
                &FindCoordinatorRequest::default()
                    .with_key_type(1)
                    .with_coordinator_keys(vec![s("tx-1")]),
            )
            .await;
        let init: InitProducerIdResponse = admin
            .call(
                ApiKey::InitProducerId,
                4,
                &InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(s("tx-1"))))
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
            .await;
        if init.error_code == 0 {
            break (init.producer_id, init.producer_epoch);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "InitProducerId: {init:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let added: AddPartitionsToTxnResponse = admin
        .call(
            ApiKey::AddPartitionsToTxn,
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s("tx-1")))
                .with_v3_and_below_producer_id(producer_id)
                .with_v3_and_below_producer_epoch(producer_epoch)
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(topic("base"))
                        .with_partitions(vec![0]),
                ]),
        )
        .await;
    let code = added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code;
    assert_eq!(code, 0, "{added:?}");

    let list = async |client: &mut WireClient| {
        let response: ListTransactionsResponse = client
            .call(
                ApiKey::ListTransactions,
                1,
                &ListTransactionsRequest::default().with_duration_filter(-1),
            )
            .await;
        response
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.0.to_string())
            .collect::<Vec<_>>()
    };
    let describe = async |client: &mut WireClient| {
        let response: DescribeTransactionsResponse = client
            .call(
                ApiKey::DescribeTransactions,
                0,
                &DescribeTransactionsRequest::default()
                    .with_transactional_ids(vec![TransactionalId(s("tx-1"))]),
            )
            .await;
        response.transaction_states[0].clone()
    };
    assert_eq!(list(&mut admin).await, vec!["tx-1"]);
    assert!(list(&mut alice).await.is_empty());
    let refused = describe(&mut alice).await;
    assert_eq!(refused.error_code, TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    assert_eq!(refused.transactional_id.0.as_str(), "tx-1");
    assert_eq!(refused.transaction_state.as_str(), "");
    assert!(refused.topics.is_empty());

    let describe_id = grant(&mut admin, TRANSACTIONAL_ID, "tx-1", DESCRIBE).await;
    assert_eq!(list(&mut alice).await, vec!["tx-1"]);
    let described = describe(&mut alice).await;
    assert_eq!(described.error_code, 0);
    assert_eq!(described.transaction_state.as_str(), "Ongoing");
    assert!(
        described.topics.is_empty(),
        "base is hidden without DESCRIBE on it"
    );
    let describe_topic = grant(&mut admin, TOPIC, "base", DESCRIBE).await;
    let described = describe(&mut alice).await;
    assert_eq!(described.topics.len(), 1);
    assert_eq!(described.topics[0].topic.0.as_str(), "base");
    revoke(&mut admin, &describe_topic).await;
    revoke(&mut admin, &describe_id).await;
    assert!(list(&mut alice).await.is_empty());
    drop((admin, alice));
    broker.shutdown().await;
}
