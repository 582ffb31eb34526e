//! Consumer groups as a Kafka user sees them, with librdkafka: members share a topic's
//! partitions with each assignor, hand them over when one leaves, keep their committed
//! offsets across a broker restart, reset as auto.offset.reset says, and a static member's
//! restart causes no rebalance. No timing is asserted; deadlines only guard against hangs.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestBroker;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

const HANG_GUARD: Duration = Duration::from_secs(90);

/// Counts rebalances a member goes through.
#[derive(Clone, Default)]
struct Rebalances(Arc<AtomicUsize>);

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

type Member = BaseConsumer<Rebalances>;

async fn start_broker() -> TestBroker {
    TestBroker::start_with(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "5"),
    ])
    .await
}

fn member(
    broker: &TestBroker,
    group: &str,
    strategy: &str,
    extra: &[(&str, &str)],
) -> (Member, Rebalances) {
    let context = Rebalances::default();
    let mut config = broker.client_config();
    config
        .set("group.id", group)
        .set("partition.assignment.strategy", strategy)
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "300")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let consumer: Member = config
        .create_with_context(context.clone())
        .expect("consumer");
    (consumer, context)
}

fn assigned(consumer: &Member) -> BTreeSet<i32> {
    consumer
        .assignment()
        .expect("assignment")
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// Polls every member until their assignments are disjoint, cover `0..partitions`, and each
/// member has at least one partition. Returns each member's partitions.
fn poll_until_balanced(members: &[&Member], partitions: i32) -> Vec<BTreeSet<i32>> {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        for m in members {
            if let Some(Err(e)) = m.poll(Duration::from_millis(20)) {
                panic!("consumer error: {e}");
            }
        }
        let sets: Vec<BTreeSet<i32>> = members.iter().map(|m| assigned(m)).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
        let complete = union == (0..partitions).collect::<BTreeSet<i32>>();
        if complete && total == partitions as usize && sets.iter().all(|s| !s.is_empty()) {
            return sets;
        }
        assert!(
            Instant::now() < deadline,
            "no balanced assignment within {HANG_GUARD:?}: {sets:?}"
        );
    }
}

/// Runs blocking librdkafka polling off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

async fn members_share_and_hand_over(strategy: &'static str) {
    let broker = start_broker().await;
    let topic = format!("shared-{strategy}");
    broker.create_topic(&topic, 6).await;
    let group = format!("group-{strategy}");
    let make = |n: usize| {
        (0..n)
            .map(|_| {
                let (m, _) = member(&broker, &group, strategy, &[]);
                m.subscribe(&[&topic]).expect("subscribe");
                m
            })
            .collect::<Vec<_>>()
    };
    let members = make(2);
    let (mut members, before) = blocking(move || {
        let sets = poll_until_balanced(&members.iter().collect::<Vec<_>>(), 6);
        (members, sets)
    })
    .await;
    members.extend(make(1));
    let members = blocking(move || {
        let sets = poll_until_balanced(&members.iter().collect::<Vec<_>>(), 6);
        assert_eq!(sets.len(), 3);
        if strategy == "cooperative-sticky" {
            // Only the partitions that must move do: the first two only give some up.
            assert!(sets[0].is_subset(&before[0]), "{sets:?} vs {before:?}");
            assert!(sets[1].is_subset(&before[1]), "{sets:?} vs {before:?}");
        }
        members
    })
    .await;
    // Closing a member (LeaveGroup) hands its partitions to the other two.
    let mut members = members;
    let leaving = members.pop().expect("three members");
    blocking(move || {
        leaving.unsubscribe();
        drop(leaving);
        poll_until_balanced(&members.iter().collect::<Vec<_>>(), 6);
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_members_get_disjoint_complete_assignments() {
    members_share_and_hand_over("range").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundrobin_members_get_disjoint_complete_assignments() {
    members_share_and_hand_over("roundrobin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_members_get_disjoint_complete_assignments() {
    members_share_and_hand_over("cooperative-sticky").await;
}

async fn produce(broker: &TestBroker, topic: &str, partition: i32, count: usize) {
    let producer = broker.producer();
    for i in 0..count {
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(partition)
                    .key("k")
                    .payload(&format!("v{i}")),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }
}

/// Polls until `count` messages arrived (or the hang guard), returning their offsets.
fn consume(consumer: &Member, count: usize) -> Vec<(i32, i64)> {
    let deadline = Instant::now() + HANG_GUARD;
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {out:?} of {count} messages"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            out.push((message.partition(), message.offset()));
        }
    }
    out
}

/// Polls for `window` and returns whatever arrived: used where nothing should.
fn consume_for(consumer: &Member, window: Duration) -> Vec<Result<i64, KafkaError>> {
    let end = Instant::now() + window;
    let mut out = Vec::new();
    while Instant::now() < end {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            out.push(message.map(|m| m.offset()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_broker_restart() {
    let mut broker = TestBroker::start_with(&[("group.initial.rebalance.delay.ms", "0")]).await;
    broker.create_topic("durable", 2).await;
    produce(&broker, "durable", 0, 5).await;
    produce(&broker, "durable", 1, 3).await;
    let (consumer, _) = member(&broker, "durable-group", "range", &[]);
    consumer.subscribe(&["durable"]).expect("subscribe");
    let consumer = blocking(move || {
        let seen = consume(&consumer, 8);
        assert_eq!(seen.len(), 8);
        consumer
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
        consumer
    })
    .await;
    drop(consumer);

    broker.restart().await;

    let (consumer, _) = member(&broker, "durable-group", "range", &[]);
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("durable", 0);
    wanted.add_partition("durable", 1);
    let consumer = blocking(move || {
        let committed = consumer
            .committed_offsets(wanted, Duration::from_secs(30))
            .expect("committed offsets");
        let offsets: Vec<Offset> = committed.elements().iter().map(|e| e.offset()).collect();
        assert_eq!(offsets, vec![Offset::Offset(5), Offset::Offset(3)]);
        consumer.subscribe(&["durable"]).expect("subscribe");
        consumer
    })
    .await;
    produce(&broker, "durable", 1, 1).await;
    blocking(move || {
        let seen = consume(&consumer, 1);
        assert_eq!(seen, vec![(1, 3)], "resumes after the committed offsets");
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_offset_reset_earliest_latest_and_none() {
    let broker = start_broker().await;
    broker.create_topic("reset", 1).await;
    produce(&broker, "reset", 0, 4).await;

    let (earliest, _) = member(
        &broker,
        "reset-earliest",
        "range",
        &[("auto.offset.reset", "earliest")],
    );
    let (latest, _) = member(
        &broker,
        "reset-latest",
        "range",
        &[("auto.offset.reset", "latest")],
    );
    let (none, _) = member(
        &broker,
        "reset-none",
        "range",
        &[("auto.offset.reset", "error")],
    );
    for c in [&earliest, &latest, &none] {
        c.subscribe(&["reset"]).expect("subscribe");
    }
    let (earliest, mut latest, none) = blocking(move || {
        let seen = consume(&earliest, 4);
        assert_eq!(
            seen.iter().map(|s| s.1).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        let deadline = Instant::now() + HANG_GUARD;
        while assigned(&latest).is_empty() {
            assert!(Instant::now() < deadline, "latest consumer never assigned");
            let _ = latest.poll(Duration::from_millis(100));
        }
        // Kafka's "none" is librdkafka's "error": nothing committed, so the reset fails.
        let errors = {
            let deadline = Instant::now() + HANG_GUARD;
            loop {
                assert!(
                    Instant::now() < deadline,
                    "no error for auto.offset.reset=none"
                );
                match none.poll(Duration::from_millis(100)) {
                    Some(Err(KafkaError::MessageConsumption(code))) => break code,
                    Some(Err(e)) => panic!("unexpected error {e}"),
                    Some(Ok(m)) => panic!("auto.offset.reset=none consumed offset {}", m.offset()),
                    None => {}
                }
            }
        };
        assert_eq!(errors, RDKafkaErrorCode::AutoOffsetReset);
        (earliest, latest, none)
    })
    .await;
    // "latest" never sees the records that were there before it joined: keep producing
    // until it sees one (its reset may land after some of these), and check which.
    let deadline = Instant::now() + HANG_GUARD;
    let first_seen = loop {
        assert!(Instant::now() < deadline, "latest consumer saw nothing");
        produce(&broker, "reset", 0, 1).await;
        let (latest_back, seen) = blocking(move || {
            let seen = consume_for(&latest, Duration::from_millis(300));
            (latest, seen)
        })
        .await;
        latest = latest_back;
        if let Some(first) = seen.into_iter().next() {
            break first.expect("consume");
        }
    };
    assert!(first_seen >= 4, "latest consumed old offset {first_seen}");
    blocking(move || {
        assert_eq!(consume(&earliest, 1), vec![(0, 4)]);
        drop(none);
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restart_within_session_timeout_causes_no_rebalance() {
    let broker = start_broker().await;
    broker.create_topic("static", 6).await;
    let static_member = |instance: &str| {
        let (m, rebalances) = member(
            &broker,
            "static-group",
            "range",
            &[
                ("group.instance.id", instance),
                ("session.timeout.ms", "30000"),
            ],
        );
        m.subscribe(&["static"]).expect("subscribe");
        (m, rebalances)
    };
    let (a, _) = static_member("instance-a");
    let (b, b_rebalances) = static_member("instance-b");
    let (a, b, a_partitions) = blocking(move || {
        let sets = poll_until_balanced(&[&a, &b], 6);
        (a, b, sets[0].clone())
    })
    .await;
    let before = b_rebalances.0.load(Ordering::SeqCst);
    // A static member does not leave on close: its restart rejoins under the same instance.
    drop(a);
    let (a2, _) = static_member("instance-a");
    blocking(move || {
        let sets = poll_until_balanced(&[&a2, &b], 6);
        assert_eq!(
            sets[0], a_partitions,
            "the restarted member gets its partitions back"
        );
        // Keep both polling a little: a rebalance would show up as a new assignment on b.
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            let _ = a2.poll(Duration::from_millis(50));
            let _ = b.poll(Duration::from_millis(50));
        }
    })
    .await;
    assert_eq!(
        b_rebalances.0.load(Ordering::SeqCst),
        before,
        "the other member saw no rebalance"
    );
    broker.shutdown().await;
}

/// A KIP-848 member: the broker assigns, librdkafka reconciles.
fn consumer_protocol_member(broker: &TestBroker, group: &str) -> Member {
    let mut config = broker.client_config();
    config
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    config
        .create_with_context(Rebalances::default())
        .expect("consumer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_members_share_and_hand_over() {
    let broker = TestBroker::start_with(&[
        ("offsets.topic.num.partitions", "5"),
        ("group.consumer.heartbeat.interval.ms", "300"),
    ])
    .await;
    broker.create_topic("kip848", 6).await;
    let members: Vec<Member> = (0..3)
        .map(|_| {
            let m = consumer_protocol_member(&broker, "kip848-group");
            m.subscribe(&["kip848"]).expect("subscribe");
            m
        })
        .collect();
    let mut members = blocking(move || {
        poll_until_balanced(&members.iter().collect::<Vec<_>>(), 6);
        members
    })
    .await;
    let leaving = members.pop().expect("three members");
    let members = blocking(move || {
        leaving.unsubscribe();
        drop(leaving);
        poll_until_balanced(&members.iter().collect::<Vec<_>>(), 6);
        members
    })
    .await;
    // The owner of partition 0 reads new records and commits with its member epoch.
    produce(&broker, "kip848", 0, 3).await;
    blocking(move || {
        let owner = members
            .iter()
            .find(|m| assigned(m).contains(&0))
            .expect("partition 0 is assigned");
        let seen = consume(owner, 3);
        assert!(seen.iter().all(|(p, _)| *p == 0));
        owner
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
    })
    .await;
    broker.shutdown().await;
}

fn sb(v: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(v.to_string())
}

/// Every version of the classic group APIs on the wire: a one-member group per JoinGroup
/// version goes through join, sync, heartbeat, commit, fetch, describe, leave and delete.
/// A response field that a version lacks must stay at its default, or the response cannot
/// be encoded at all (old clients are real: kafka-python, kcat's librdkafka 2.0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_of_the_group_apis_answers() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::*;

    let broker = start_broker().await;
    broker.create_topic("wire", 2).await;
    let mut client = common::wire::WireClient::connect(&broker.bootstrap()).await;
    let port = broker
        .bootstrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<i32>()
        .unwrap();
    for v in 0..=6 {
        let mut request = FindCoordinatorRequest::default();
        if v >= 4 {
            request.coordinator_keys = vec![sb("wire-find")];
        } else {
            request.key = sb("wire-find");
        }
        let response: FindCoordinatorResponse =
            client.call(ApiKey::FindCoordinator, v, &request).await;
        let (error, found_port) = if v >= 4 {
            (
                response.coordinators[0].error_code,
                response.coordinators[0].port,
            )
        } else {
            (response.error_code, response.port)
        };
        assert_eq!((error, found_port), (0, port), "FindCoordinator v{v}");
    }
    for v in 0..=9i16 {
        let group = GroupId(sb(&format!("wire-{v}")));
        let mut join = JoinGroupRequest::default()
            .with_group_id(group.clone())
            .with_session_timeout_ms(10_000)
            .with_protocol_type(sb("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(sb("range"))
                .with_metadata(bytes::Bytes::from_static(b"subscription"))]);
        if v >= 1 {
            join.rebalance_timeout_ms = 10_000;
        }
        let mut joined: JoinGroupResponse = client.call(ApiKey::JoinGroup, v, &join).await;
        if v >= 4 {
            assert_eq!(joined.error_code, 79, "JoinGroup v{v} asks for a member id");
            join.member_id = joined.member_id.clone();
            joined = client.call(ApiKey::JoinGroup, v, &join).await;
        }
        assert_eq!(joined.error_code, 0, "JoinGroup v{v}");
        assert_eq!(joined.leader, joined.member_id);
        let member_id = joined.member_id.clone();
        let generation = joined.generation_id;

        let sync_version = v.min(5);
        let mut sync = SyncGroupRequest::default()
            .with_group_id(group.clone())
            .with_generation_id(generation)
            .with_member_id(member_id.clone())
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(member_id.clone())
                .with_assignment(bytes::Bytes::from_static(b"assignment"))]);
        if sync_version >= 5 {
            sync.protocol_type = Some(sb("consumer"));
            sync.protocol_name = Some(sb("range"));
        }
        let synced: SyncGroupResponse = client.call(ApiKey::SyncGroup, sync_version, &sync).await;
        assert_eq!(synced.error_code, 0, "SyncGroup v{sync_version}");
        assert_eq!(&synced.assignment[..], b"assignment");

        let heartbeat = HeartbeatRequest::default()
            .with_group_id(group.clone())
            .with_generation_id(generation)
            .with_member_id(member_id.clone());
        let beat: HeartbeatResponse = client.call(ApiKey::Heartbeat, v.min(4), &heartbeat).await;
        assert_eq!(beat.error_code, 0, "Heartbeat v{}", v.min(4));

        let commit_version = v.clamp(2, 9);
        let commit = OffsetCommitRequest::default()
            .with_group_id(group.clone())
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(member_id.clone())
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb("wire")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(100 + i64::from(v))
                    .with_committed_metadata(Some(sb("meta")))])]);
        let committed: OffsetCommitResponse = client
            .call(ApiKey::OffsetCommit, commit_version, &commit)
            .await;
        assert_eq!(
            committed.topics[0].partitions[0].error_code, 0,
            "OffsetCommit v{commit_version}"
        );

        let fetch_version = v.clamp(1, 9);
        let mut fetch = OffsetFetchRequest::default();
        if fetch_version >= 8 {
            fetch.groups = vec![OffsetFetchRequestGroup::default()
                .with_group_id(group.clone())
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(TopicName(sb("wire")))
                    .with_partition_indexes(vec![0, 1])]))];
        } else {
            fetch.group_id = group.clone();
            fetch.topics = Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(sb("wire")))
                .with_partition_indexes(vec![0, 1])]);
        }
        let fetched: OffsetFetchResponse = client
            .call(ApiKey::OffsetFetch, fetch_version, &fetch)
            .await;
        let offsets: Vec<i64> = if fetch_version >= 8 {
            fetched.groups[0].topics[0]
                .partitions
                .iter()
                .map(|p| p.committed_offset)
                .collect()
        } else {
            fetched.topics[0]
                .partitions
                .iter()
                .map(|p| p.committed_offset)
                .collect()
        };
        assert_eq!(
            offsets,
            vec![-1, 100 + i64::from(v)],
            "OffsetFetch v{fetch_version}"
        );

        let describe_version = v.min(6);
        let describe = DescribeGroupsRequest::default().with_groups(vec![group.clone()]);
        let described: DescribeGroupsResponse = client
            .call(ApiKey::DescribeGroups, describe_version, &describe)
            .await;
        let g = &described.groups[0];
        assert_eq!(
            (g.error_code, g.group_state.as_str(), g.members.len()),
            (0, "Stable", 1),
            "DescribeGroups v{describe_version}"
        );
        assert_eq!(&g.members[0].member_assignment[..], b"assignment");

        let leave_version = v.min(5);
        let mut leave = LeaveGroupRequest::default().with_group_id(group.clone());
        if leave_version >= 3 {
            leave.members = vec![MemberIdentity::default().with_member_id(member_id.clone())];
        } else {
            leave.member_id = member_id.clone();
        }
        let left: LeaveGroupResponse = client.call(ApiKey::LeaveGroup, leave_version, &leave).await;
        assert_eq!(left.error_code, 0, "LeaveGroup v{leave_version}");
        assert!(left.members.iter().all(|m| m.error_code == 0));

        let delete_version = v.min(2);
        let delete = DeleteGroupsRequest::default().with_groups_names(vec![group.clone()]);
        let deleted: DeleteGroupsResponse = client
            .call(ApiKey::DeleteGroups, delete_version, &delete)
            .await;
        assert_eq!(
            deleted.results[0].error_code, 0,
            "DeleteGroups v{delete_version}"
        );
    }
    for v in 0..=5 {
        let listed: ListGroupsResponse = client
            .call(ApiKey::ListGroups, v, &ListGroupsRequest::default())
            .await;
        assert_eq!(listed.error_code, 0, "ListGroups v{v}");
        assert!(listed.groups.is_empty(), "every group was deleted");
    }
    for v in 0..=1 {
        let request =
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(sb("wire-0"))]);
        let described: ConsumerGroupDescribeResponse = client
            .call(ApiKey::ConsumerGroupDescribe, v, &request)
            .await;
        assert_eq!(
            described.groups[0].error_code, 69,
            "ConsumerGroupDescribe v{v}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_group_survives_a_broker_restart() {
    use kafka_protocol::messages::{
        ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId,
    };
    let mut broker = TestBroker::start_with(&[
        ("offsets.topic.num.partitions", "5"),
        ("group.consumer.heartbeat.interval.ms", "300"),
    ])
    .await;
    broker.create_topic("kip848-restart", 4).await;
    let members: Vec<Member> = (0..2)
        .map(|_| {
            let m = consumer_protocol_member(&broker, "kip848-restart-group");
            m.subscribe(&["kip848-restart"]).expect("subscribe");
            m
        })
        .collect();
    let (members, before) = blocking(move || {
        let sets = poll_until_balanced(&members.iter().collect::<Vec<_>>(), 4);
        (members, sets)
    })
    .await;
    let describe = |bootstrap: String| async move {
        let mut client = common::wire::WireClient::connect(&bootstrap).await;
        let request = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(sb("kip848-restart-group"))]);
        let response: ConsumerGroupDescribeResponse = client
            .call(ApiKey::ConsumerGroupDescribe, 1, &request)
            .await;
        response.groups.into_iter().next().expect("one group")
    };
    let described = describe(broker.bootstrap()).await;
    assert_eq!(described.error_code, 0);
    assert_eq!(described.members.len(), 2);

    broker.restart().await;

    // Replayed from __consumer_offsets: same epoch, same members, same assignments.
    let reloaded = describe(broker.bootstrap()).await;
    assert_eq!(reloaded.error_code, 0);
    assert_eq!(reloaded.group_epoch, described.group_epoch);
    assert_eq!(reloaded.assignment_epoch, described.assignment_epoch);
    let ids = |g: &kafka_protocol::messages::consumer_group_describe_response::DescribedGroup| {
        g.members
            .iter()
            .map(|m| (m.member_id.to_string(), m.member_epoch))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&reloaded), ids(&described));
    let members = blocking(move || {
        // The members carry on after reconnecting, with the partitions they had.
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            for m in &members {
                let _ = m.poll(Duration::from_millis(50));
            }
        }
        let after = poll_until_balanced(&members.iter().collect::<Vec<_>>(), 4);
        assert_eq!(after, before);
        members
    })
    .await;
    let still = describe(broker.bootstrap()).await;
    assert_eq!(still.group_epoch, described.group_epoch, "no rebalance");
    blocking(move || drop(members)).await;
    broker.shutdown().await;
}

/// Waits (without blocking a runtime worker) until `done` holds for the count.
async fn wait_for(count: &AtomicUsize, what: &str, done: impl Fn(usize) -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !done(count.load(Ordering::SeqCst)) {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A member that dies without leaving (a raw protocol client that stops heartbeating) loses
/// its partitions to the live member once its session times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_member_is_expired_and_its_partitions_move() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Encodable;

    let broker = TestBroker::start_with(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "5"),
        ("group.min.session.timeout.ms", "500"),
    ])
    .await;
    broker.create_topic("silent", 6).await;
    let (live, _) = member(&broker, "silent-group", "range", &[]);
    live.subscribe(&["silent"]).expect("subscribe");
    let live = blocking(move || {
        poll_until_balanced(&[&live], 6);
        live
    })
    .await;

    // The doomed member speaks the protocol by hand; librdkafka keeps polling meanwhile
    // and publishes how many partitions it has.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(6));
    let poller = {
        let (stop, count) = (stop.clone(), count.clone());
        tokio::task::spawn_blocking(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = live.poll(Duration::from_millis(50));
                count.store(assigned(&live).len(), Ordering::SeqCst);
            }
            live
        })
    };
    let mut subscription = bytes::BytesMut::new();
    let mut encoded = bytes::BytesMut::new();
    ConsumerProtocolSubscription::default()
        .with_topics(vec![sb("silent")])
        .encode(&mut encoded, 0)
        .expect("encode subscription");
    subscription.extend_from_slice(&0i16.to_be_bytes());
    subscription.extend_from_slice(&encoded);
    let mut client = common::wire::WireClient::connect(&broker.bootstrap()).await;
    let mut join = JoinGroupRequest::default()
        .with_group_id(GroupId(sb("silent-group")))
        .with_session_timeout_ms(1_000)
        .with_rebalance_timeout_ms(30_000)
        .with_protocol_type(sb("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(sb("range"))
            .with_metadata(subscription.freeze())]);
    let first: JoinGroupResponse = client.call(ApiKey::JoinGroup, 7, &join).await;
    join.member_id = first.member_id;
    let joined: JoinGroupResponse = client.call(ApiKey::JoinGroup, 7, &join).await;
    assert_eq!(joined.error_code, 0);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(sb("silent-group")))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone());
    let synced: SyncGroupResponse = client.call(ApiKey::SyncGroup, 5, &sync).await;
    assert_eq!(synced.error_code, 0);
    assert!(
        !synced.assignment.is_empty(),
        "the doomed member got partitions"
    );
    wait_for(&count, "the live member never shared the topic", |n| n < 6).await;
    // Now the raw member goes silent: after its 1 s session the live member has all six.
    wait_for(&count, "the silent member's partitions never moved", |n| {
        n == 6
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let live = poller.await.expect("poller");
    blocking(move || {
        poll_until_balanced(&[&live], 6);
    })
    .await;
    drop(client);
    broker.shutdown().await;
}

/// If `__consumer_offsets` was created by hand with another partition count, groups hash
/// over the partitions it has (as Kafka), rather than over offsets.topic.num.partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_made_offsets_topic_is_used_with_its_partition_count() {
    let broker = start_broker().await;
    broker.create_topic("__consumer_offsets", 3).await;
    broker.create_topic("handmade", 1).await;
    produce(&broker, "handmade", 0, 2).await;
    // "my-group" hashes to partition 12 of 50, so it needs the real count, 3.
    let (consumer, _) = member(&broker, "my-group", "range", &[]);
    consumer.subscribe(&["handmade"]).expect("subscribe");
    blocking(move || {
        assert_eq!(consume(&consumer, 2).len(), 2);
        consumer
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            .expect("commit");
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition("handmade", 0);
        let committed = consumer
            .committed_offsets(wanted, Duration::from_secs(30))
            .expect("committed");
        assert_eq!(committed.elements()[0].offset(), Offset::Offset(2));
    })
    .await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_static_member_restart_keeps_its_partitions() {
    let broker = TestBroker::start_with(&[
        ("offsets.topic.num.partitions", "5"),
        ("group.consumer.heartbeat.interval.ms", "300"),
    ])
    .await;
    broker.create_topic("kip848-static", 6).await;
    let static_member = |instance: &str| {
        let mut config = broker.client_config();
        config
            .set("group.id", "kip848-static-group")
            .set("group.protocol", "consumer")
            .set("group.instance.id", instance)
            .set("enable.auto.commit", "false");
        let m: Member = config
            .create_with_context(Rebalances::default())
            .expect("consumer");
        m.subscribe(&["kip848-static"]).expect("subscribe");
        m
    };
    let group_epoch = |bootstrap: String| async move {
        use kafka_protocol::messages::*;
        let mut client = common::wire::WireClient::connect(&bootstrap).await;
        let request = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(sb("kip848-static-group"))]);
        let response: ConsumerGroupDescribeResponse = client
            .call(ApiKey::ConsumerGroupDescribe, 1, &request)
            .await;
        response.groups[0].group_epoch
    };
    let (a, b) = (static_member("a"), static_member("b"));
    let (a, b, a_partitions) = blocking(move || {
        let sets = poll_until_balanced(&[&a, &b], 6);
        (a, b, sets[0].clone())
    })
    .await;
    let epoch = group_epoch(broker.bootstrap()).await;
    // A static member's close leaves with epoch -2: its partitions wait for it.
    blocking(move || drop(a)).await;
    let a2 = static_member("a");
    let (a2, b) = blocking(move || {
        let sets = poll_until_balanced(&[&a2, &b], 6);
        assert_eq!(
            sets[0], a_partitions,
            "the restarted member gets its partitions"
        );
        (a2, b)
    })
    .await;
    assert_eq!(group_epoch(broker.bootstrap()).await, epoch, "no rebalance");
    blocking(move || drop((a2, b))).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_regex_subscription() {
    let broker = TestBroker::start_with(&[
        ("offsets.topic.num.partitions", "5"),
        ("group.consumer.heartbeat.interval.ms", "300"),
    ])
    .await;
    broker.create_topic("regex-a", 2).await;
    broker.create_topic("regex-b", 2).await;
    broker.create_topic("other", 2).await;
    produce(&broker, "regex-a", 0, 1).await;
    produce(&broker, "regex-b", 1, 1).await;
    produce(&broker, "other", 0, 1).await;
    let consumer = consumer_protocol_member(&broker, "regex-group");
    consumer.subscribe(&["^regex-.*"]).expect("subscribe");
    blocking(move || {
        use rdkafka::Message;
        let deadline = Instant::now() + HANG_GUARD;
        let mut topics = BTreeSet::new();
        while topics.len() < 2 {
            assert!(Instant::now() < deadline, "only {topics:?}");
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                topics.insert(message.expect("consume").topic().to_string());
            }
        }
        assert_eq!(topics, ["regex-a", "regex-b"].map(String::from).into());
        let assignment: BTreeSet<String> = consumer
            .assignment()
            .expect("assignment")
            .elements()
            .iter()
            .map(|e| e.topic().to_string())
            .collect();
        assert!(!assignment.contains("other"));
    })
    .await;
    broker.shutdown().await;
}

/// Classic and KIP-848 groups are listed together, each with its type; ListGroups filters
/// by type and state case-insensitively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_and_consumer_groups_are_listed_together() {
    use kafka_protocol::messages::*;
    let broker = TestBroker::start_with(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "5"),
        ("group.consumer.heartbeat.interval.ms", "300"),
    ])
    .await;
    broker.create_topic("listed", 2).await;
    let (classic, _) = member(&broker, "listed-classic", "range", &[]);
    classic.subscribe(&["listed"]).expect("subscribe");
    let modern = consumer_protocol_member(&broker, "listed-consumer");
    modern.subscribe(&["listed"]).expect("subscribe");
    let (classic, modern) = blocking(move || {
        poll_until_balanced(&[&classic], 2);
        poll_until_balanced(&[&modern], 2);
        (classic, modern)
    })
    .await;
    let mut client = common::wire::WireClient::connect(&broker.bootstrap()).await;
    let list = |types: &[&str], states: &[&str]| {
        ListGroupsRequest::default()
            .with_types_filter(types.iter().map(|t| sb(t)).collect())
            .with_states_filter(states.iter().map(|s| sb(s)).collect())
    };
    let names = |r: &ListGroupsResponse| {
        r.groups
            .iter()
            .map(|g| {
                (
                    g.group_id.to_string(),
                    g.group_type.to_string(),
                    g.group_state.to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let all: ListGroupsResponse = client.call(ApiKey::ListGroups, 5, &list(&[], &[])).await;
    assert_eq!(
        names(&all),
        vec![
            ("listed-classic".into(), "classic".into(), "Stable".into()),
            ("listed-consumer".into(), "consumer".into(), "Stable".into()),
        ]
    );
    let consumer_only: ListGroupsResponse = client
        .call(ApiKey::ListGroups, 5, &list(&["Consumer"], &[]))
        .await;
    assert_eq!(names(&consumer_only).len(), 1);
    assert_eq!(names(&consumer_only)[0].0, "listed-consumer");
    let empty_only: ListGroupsResponse = client
        .call(ApiKey::ListGroups, 5, &list(&[], &["empty"]))
        .await;
    assert!(empty_only.groups.is_empty());
    blocking(move || drop((classic, modern))).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_metadata_for_the_offsets_topic_creates_it_as_the_coordinator_would() {
    let broker = TestBroker::start().await;
    // A producer's metadata requests allow auto-creation (a consumer's do not by default).
    let producer = broker.producer();
    let metadata = rdkafka::producer::Producer::client(&producer)
        .fetch_metadata(Some("__consumer_offsets"), Duration::from_secs(10))
        .expect("metadata");
    // offsets.topic.num.partitions (50 by default), not num.partitions (1).
    assert_eq!(metadata.topics()[0].partitions().len(), 50);
    broker.shutdown().await;
}
