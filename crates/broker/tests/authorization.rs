//! The data path under the StandardAuthorizer: every client API (produce, fetch, offsets,
//! groups, transactions, metadata) as a principal without ACLs gets Kafka's exact error
//! (over the protocol, `common::wire`), and real clients (librdkafka) are refused, then
//! let through by the ACLs Kafka asks for; DENY wins over ALLOW; prefixed ACLs; and a
//! client certificate's subject, mapped by `ssl.principal.mapping.rules`, is the principal
//! ACLs name.

mod common;

use std::time::Duration;

use common::secured::{secured_broker, AUTHORIZER, PLAIN_JAAS};
use common::wire::WireClient;
use common::{poll_messages, TestBroker};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use moldau_security::test_pki::TestPki;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::Message;

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const TRANSACTIONAL_ID: i8 = 5;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn acl(rt: i8, name: &str, pt: i8, principal: &str, op: i8, permission: i8) -> AclCreation {
    AclCreation::default()
        .with_resource_type(rt)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pt)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(op)
        .with_permission_type(permission)
}

async fn create_acls(broker: &TestBroker, creations: Vec<AclCreation>) {
    let mut admin =
        WireClient::connect_sasl_plain(&broker.bootstrap(), "admin", "admin-secret").await;
    let response: CreateAclsResponse = admin
        .call(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(creations),
        )
        .await;
    assert!(
        response.results.iter().all(|r| r.error_code == 0),
        "{response:?}"
    );
}

fn client(broker: &TestBroker, user: &str, password: &str) -> ClientConfig {
    let mut config = broker.client_config();
    config
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", user)
        .set("sasl.password", password);
    config
}

/// A topic made by the admin (a super user).
async fn admin_topic(broker: &TestBroker, name: &str) {
    let producer: FutureProducer = client(broker, "admin", "admin-secret").create().unwrap();
    producer
        .send(
            FutureRecord::to(name).key("k").payload("by admin"),
            Duration::from_secs(10),
        )
        .await
        .expect("the admin writes anything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_api_refuses_a_principal_without_acls_with_kafkas_error() {
    let broker = secured_broker().await;
    admin_topic(&broker, "orders").await;
    let mut alice =
        WireClient::connect_sasl_plain(&broker.bootstrap(), "alice", "alice-secret").await;
    let orders = || TopicName(s("orders"));

    // Produce: WRITE on the topic.
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(orders())
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::from_static(&[0u8; 70]))),
            ])]);
    let r: ProduceResponse = alice.call(ApiKey::Produce, 9, &produce).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        TOPIC_DENIED
    );

    // Fetch and ListOffsets: READ / DESCRIBE on the topic.
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(orders())
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20)])]);
    let r: FetchResponse = alice.call(ApiKey::Fetch, 12, &fetch).await;
    assert_eq!(r.responses[0].partitions[0].error_code, TOPIC_DENIED);
    let list = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(orders())
            .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)]),
    ]);
    let r: ListOffsetsResponse = alice.call(ApiKey::ListOffsets, 7, &list).await;
    assert_eq!(r.topics[0].partitions[0].error_code, TOPIC_DENIED);

    // Metadata: the topic is hidden from "all topics", refused by name.
    let r: MetadataResponse = alice
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    assert!(r.topics.is_empty(), "{:?}", r.topics);
    let named = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(orders())),
    ]));
    let r: MetadataResponse = alice.call(ApiKey::Metadata, 12, &named).await;
    assert_eq!(r.topics[0].error_code, TOPIC_DENIED);

    // Groups: READ / DESCRIBE / DELETE on the group.
    let group = || GroupId(s("billing"));
    let r: FindCoordinatorResponse = alice
        .call(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("billing")]),
        )
        .await;
    assert_eq!(r.coordinators[0].error_code, GROUP_DENIED);
    let join = JoinGroupRequest::default()
        .with_group_id(group())
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"));
    let r: JoinGroupResponse = alice.call(ApiKey::JoinGroup, 7, &join).await;
    assert_eq!(r.error_code, GROUP_DENIED);
    let r: HeartbeatResponse = alice
        .call(
            ApiKey::Heartbeat,
            4,
            &HeartbeatRequest::default().with_group_id(group()),
        )
        .await;
    assert_eq!(r.error_code, GROUP_DENIED);
    let r: SyncGroupResponse = alice
        .call(
            ApiKey::SyncGroup,
            5,
            &SyncGroupRequest::default().with_group_id(group()),
        )
        .await;
    assert_eq!(r.error_code, GROUP_DENIED);
    let r: LeaveGroupResponse = alice
        .call(
            ApiKey::LeaveGroup,
            4,
            &LeaveGroupRequest::default().with_group_id(group()),
        )
        .await;
    assert_eq!(r.error_code, GROUP_DENIED);
    let commit = OffsetCommitRequest::default()
        .with_group_id(group())
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(orders())
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    let r: OffsetCommitResponse = alice.call(ApiKey::OffsetCommit, 8, &commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, GROUP_DENIED);
    let fetch_offsets = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(group()),
    ]);
    let r: OffsetFetchResponse = alice.call(ApiKey::OffsetFetch, 8, &fetch_offsets).await;
    assert_eq!(r.groups[0].error_code, GROUP_DENIED);
    let r: DescribeGroupsResponse = alice
        .call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![group()]),
        )
        .await;
    assert_eq!(r.groups[0].error_code, GROUP_DENIED);
    let r: DeleteGroupsResponse = alice
        .call(
            ApiKey::DeleteGroups,
            2,
            &DeleteGroupsRequest::default().with_groups_names(vec![group()]),
        )
        .await;
    assert_eq!(r.results[0].error_code, GROUP_DENIED);
    let r: OffsetDeleteResponse = alice
        .call(
            ApiKey::OffsetDelete,
            0,
            &OffsetDeleteRequest::default().with_group_id(group()),
        )
        .await;
    assert_eq!(r.error_code, GROUP_DENIED);
    let r: ConsumerGroupHeartbeatResponse = alice
        .call(
            ApiKey::ConsumerGroupHeartbeat,
            0,
            &ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group())
                .with_member_epoch(0)
                .with_rebalance_timeout_ms(10_000)
                .with_subscribed_topic_names(Some(vec![orders()])),
        )
        .await;
    assert_eq!(r.error_code, GROUP_DENIED);
    let r: ConsumerGroupDescribeResponse = alice
        .call(
            ApiKey::ConsumerGroupDescribe,
            0,
            &ConsumerGroupDescribeRequest::default().with_group_ids(vec![group()]),
        )
        .await;
    assert_eq!(r.groups[0].error_code, GROUP_DENIED);
    // ListGroups without DESCRIBE on the cluster lists only groups she may describe.
    let r: ListGroupsResponse = alice
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    assert_eq!(r.error_code, 0);
    assert!(r.groups.is_empty());

    // Transactions: WRITE on the transactional id; an idempotent producer needs
    // IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
    let txn = || TransactionalId(s("tx-1"));
    let r: FindCoordinatorResponse = alice
        .call(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s("tx-1")]),
        )
        .await;
    assert_eq!(r.coordinators[0].error_code, TXN_DENIED);
    let init = |id: Option<TransactionalId>| {
        InitProducerIdRequest::default()
            .with_transactional_id(id)
            .with_transaction_timeout_ms(10_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let r: InitProducerIdResponse = alice
        .call(ApiKey::InitProducerId, 4, &init(Some(txn())))
        .await;
    assert_eq!(r.error_code, TXN_DENIED);
    let r: InitProducerIdResponse = alice.call(ApiKey::InitProducerId, 4, &init(None)).await;
    assert_eq!(r.error_code, CLUSTER_DENIED);
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn())
        .with_v3_and_below_producer_id(ProducerId(1))
        .with_v3_and_below_producer_epoch(0)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(orders())
                .with_partitions(vec![0]),
        ]);
    let r: AddPartitionsToTxnResponse = alice.call(ApiKey::AddPartitionsToTxn, 3, &add).await;
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        TXN_DENIED
    );
    let r: AddOffsetsToTxnResponse = alice
        .call(
            ApiKey::AddOffsetsToTxn,
            3,
            &AddOffsetsToTxnRequest::default()
                .with_transactional_id(txn())
                .with_group_id(group()),
        )
        .await;
    assert_eq!(r.error_code, TXN_DENIED);
    let r: EndTxnResponse = alice
        .call(
            ApiKey::EndTxn,
            3,
            &EndTxnRequest::default().with_transactional_id(txn()),
        )
        .await;
    assert_eq!(r.error_code, TXN_DENIED);
    let txn_commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(txn())
        .with_group_id(group())
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(orders())
                .with_partitions(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    let r: TxnOffsetCommitResponse = alice.call(ApiKey::TxnOffsetCommit, 3, &txn_commit).await;
    assert_eq!(r.topics[0].partitions[0].error_code, TXN_DENIED);
    broker.shutdown().await;
}

fn error_code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    e.rdkafka_error_code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_are_refused_then_let_through_by_kafkas_acls() {
    let broker = secured_broker().await;
    admin_topic(&broker, "orders").await;
    admin_topic(&broker, "pay-eu").await;
    let alice = client(&broker, "alice", "alice-secret");

    let producer: FutureProducer = alice
        .clone()
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    let refused = producer
        .send(
            FutureRecord::to("orders").key("k").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&refused.0),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{refused:?}"
    );

    // Produce to orders and to every pay-* topic (prefixed); consume orders in group billing.
    create_acls(
        &broker,
        vec![
            acl(TOPIC, "orders", LITERAL, "User:alice", WRITE, ALLOW),
            acl(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW),
            acl(TOPIC, "pay-", PREFIXED, "User:alice", WRITE, ALLOW),
            acl(GROUP, "billing", LITERAL, "User:alice", READ, ALLOW),
        ],
    )
    .await;
    let producer: FutureProducer = alice.create().unwrap();
    for topic in ["orders", "pay-eu"] {
        producer
            .send(
                FutureRecord::to(topic).key("k").payload("by alice"),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|e| panic!("{topic}: {e:?}"));
    }
    let consumer: BaseConsumer = alice
        .clone()
        .set("group.id", "billing")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["orders"]).unwrap();
    let got = poll_messages(&consumer, 2, Duration::from_secs(30));
    assert_eq!(got.len(), 2, "both records of orders");
    assert_eq!(got[1].payload(), Some(&b"by alice"[..]));
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();

    // DENY wins over ALLOW.
    create_acls(
        &broker,
        vec![acl(TOPIC, "orders", LITERAL, "User:alice", WRITE, DENY)],
    )
    .await;
    let producer: FutureProducer = client(&broker, "alice", "alice-secret")
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    let refused = producer
        .send(
            FutureRecord::to("orders").key("k").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&refused.0),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed)
    );

    // Transactions: WRITE on the transactional id (and on the topic).
    let txn_producer: FutureProducer = client(&broker, "alice", "alice-secret")
        .set("transactional.id", "alice-tx")
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    let refused = txn_producer
        .init_transactions(Duration::from_secs(10))
        .unwrap_err();
    assert_eq!(
        error_code(&refused),
        Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed),
        "{refused:?}"
    );
    create_acls(
        &broker,
        vec![
            acl(
                TRANSACTIONAL_ID,
                "alice-tx",
                LITERAL,
                "User:alice",
                WRITE,
                ALLOW,
            ),
            acl(
                TRANSACTIONAL_ID,
                "alice-tx",
                LITERAL,
                "User:alice",
                DESCRIBE,
                ALLOW,
            ),
        ],
    )
    .await;
    let txn_producer: FutureProducer = client(&broker, "alice", "alice-secret")
        .set("transactional.id", "alice-tx")
        .create()
        .unwrap();
    txn_producer
        .init_transactions(Duration::from_secs(20))
        .expect("init with WRITE on the transactional id");
    txn_producer.begin_transaction().unwrap();
    txn_producer
        .send(
            FutureRecord::to("pay-eu")
                .key("k")
                .payload("in a transaction"),
            Duration::from_secs(10),
        )
        .await
        .expect("transactional produce");
    txn_producer
        .commit_transaction(Duration::from_secs(20))
        .expect("commit");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_subject_mapped_by_the_rules_is_the_principal_acls_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let server = pki.write_leaf(dir.path(), "broker", "broker", &["127.0.0.1"]);
    let ca = pki.write_ca(dir.path());
    let key_store = server.key_store.display().to_string();
    let trust_store = ca.display().to_string();
    // SASL first (the admin's, and the one `bootstrap()` names), SSL on a port picked here.
    let ssl_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listeners = format!("SASL_PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:{ssl_port}");
    let broker = TestBroker::start_with(&[
        ("listeners", listeners.as_str()),
        ("inter.broker.listener.name", "SASL_PLAINTEXT"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
        (
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            PLAIN_JAAS,
        ),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", key_store.as_str()),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", trust_store.as_str()),
        ("ssl.client.auth", "required"),
        // CN=Alice,OU=payments,O=Acme -> alice
        (
            "ssl.principal.mapping.rules",
            "RULE:^CN=([^,]+),OU=payments,.*$/$1/L,DEFAULT",
        ),
        ("authorizer.class.name", AUTHORIZER),
        ("super.users", "User:admin"),
    ])
    .await;
    admin_topic(&broker, "certs").await;
    create_acls(
        &broker,
        vec![acl(TOPIC, "certs", LITERAL, "User:alice", WRITE, ALLOW)],
    )
    .await;
    let send_as = |cn: &'static str, ou: &'static str| {
        let (chain, key, _) = pki.leaf_with_subject(
            // DER order O, OU, CN (as CAs issue them), which Java prints
            // most specific first: CN=..,OU=..,O=Acme.
            &[
                (moldau_security::test_pki::DnType::OrganizationName, "Acme"),
                (
                    moldau_security::test_pki::DnType::OrganizationalUnitName,
                    ou,
                ),
                (moldau_security::test_pki::DnType::CommonName, cn),
            ],
            &[],
        );
        let mut config = broker.client_config();
        config
            .set("bootstrap.servers", format!("127.0.0.1:{ssl_port}"))
            .set("security.protocol", "ssl")
            .set("ssl.ca.pem", pki.ca_pem.clone())
            .set("ssl.certificate.pem", chain)
            .set("ssl.key.pem", key)
            .set("message.timeout.ms", "5000");
        config
    };
    let producer: FutureProducer = send_as("Alice", "payments").create().unwrap();
    producer
        .send(
            FutureRecord::to("certs").key("k").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .expect("CN=Alice,OU=payments maps to User:alice, whom the ACL allows");
    // Another unit: no rule applies but DEFAULT, the principal is the whole subject.
    let producer: FutureProducer = send_as("Alice", "marketing").create().unwrap();
    let refused = producer
        .send(
            FutureRecord::to("certs").key("k").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&refused.0),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed)
    );
    broker.shutdown().await;
}
