//! KIP-848 consumer groups without sockets: members join, converge to disjoint assignments
//! through revocation before reassignment, and leave.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use moldau_coordinator::{
    CoordinatorRecord, GroupConfig, GroupShard, RequestInfo, TopicInfo, Topics,
};
use uuid::Uuid;

const TOPIC: Uuid = Uuid::from_u128(7);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The metadata image of these tests: topic "t" with 6 partitions, and "other".
struct Image;

impl Topics for Image {
    fn get(&self, name: &str) -> Option<TopicInfo> {
        match name {
            "t" => Some(TopicInfo {
                id: TOPIC,
                partitions: 6,
            }),
            "other" => Some(TopicInfo {
                id: Uuid::from_u128(8),
                partitions: 2,
            }),
            _ => None,
        }
    }

    fn names(&self) -> Vec<String> {
        vec!["__consumer_offsets".into(), "other".into(), "t".into()]
    }
}

/// A client as librdkafka behaves: it owns what it was last assigned.
struct Client {
    member_id: String,
    epoch: i32,
    owned: BTreeSet<i32>,
}

fn info(now_ms: i64) -> RequestInfo {
    RequestInfo {
        now_ms,
        api_version: 1,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn heartbeat(
    shard: &mut GroupShard,
    c: &mut Client,
    now_ms: i64,
) -> ConsumerGroupHeartbeatResponse {
    heartbeat_logged(shard, c, now_ms, &mut Vec::new())
}

fn heartbeat_logged(
    shard: &mut GroupShard,
    c: &mut Client,
    now_ms: i64,
    log: &mut Vec<CoordinatorRecord>,
) -> ConsumerGroupHeartbeatResponse {
    let owned = vec![TopicPartitions::default()
        .with_topic_id(TOPIC)
        .with_partitions(c.owned.iter().copied().collect())];
    let mut request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(&c.member_id))
        .with_member_epoch(c.epoch)
        .with_rebalance_timeout_ms(if c.epoch == 0 { 30_000 } else { -1 })
        .with_topic_partitions(Some(if c.epoch == 0 { vec![] } else { owned }));
    if c.epoch == 0 {
        request.subscribed_topic_names = Some(vec![TopicName(s("t"))]);
    }
    let fresh = Uuid::new_v4().to_string();
    let (records, response) = shard.consumer_heartbeat(&info(now_ms), &request, &fresh, &Image);
    shard.apply_written(&records, now_ms);
    log.extend(records);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    c.member_id = response.member_id.as_ref().unwrap().to_string();
    c.epoch = response.member_epoch;
    if let Some(assignment) = &response.assignment {
        c.owned = assignment
            .topic_partitions
            .iter()
            .flat_map(|tp| tp.partitions.iter().copied())
            .collect();
    }
    response
}

fn new_client() -> Client {
    Client {
        member_id: String::new(),
        epoch: 0,
        owned: BTreeSet::new(),
    }
}

/// Heartbeats every client until their assignments cover all 6 partitions disjointly;
/// checks at every step that no partition is owned twice.
fn converge(shard: &mut GroupShard, clients: &mut [Client], now_ms: &mut i64) {
    for round in 0..60 {
        let i = round % clients.len();
        *now_ms += 100;
        heartbeat(shard, &mut clients[i], *now_ms);
        let mut seen = BTreeSet::new();
        for p in clients.iter().flat_map(|c| c.owned.iter()) {
            assert!(seen.insert(*p), "partition {p} owned twice");
        }
        let balanced = seen.len() == 6 && clients.iter().all(|c| !c.owned.is_empty());
        let settled = clients.iter().all(|c| c.epoch == clients[0].epoch);
        if balanced && settled {
            return;
        }
    }
    panic!(
        "no convergence: {:?}",
        clients.iter().map(|c| &c.owned).collect::<Vec<_>>()
    );
}

#[test]
fn members_converge_without_double_ownership_and_leave() {
    let mut shard = GroupShard::new(GroupConfig::default());
    shard.finish_load(0);
    let mut now_ms = 0;
    let mut clients = vec![new_client()];
    heartbeat(&mut shard, &mut clients[0], now_ms);
    assert_eq!(clients[0].owned.len(), 6, "a sole member gets everything");
    clients.push(new_client());
    converge(&mut shard, &mut clients, &mut now_ms);
    clients.push(new_client());
    converge(&mut shard, &mut clients, &mut now_ms);
    let sizes: Vec<usize> = clients.iter().map(|c| c.owned.len()).collect();
    assert_eq!(sizes, vec![2, 2, 2]);
    // One leaves; the others take over its partitions.
    let leaving = clients.pop().unwrap();
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(&leaving.member_id))
        .with_member_epoch(-1);
    let response = shard
        .consumer_heartbeat(&info(now_ms), &request, "x", &Image)
        .1;
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_epoch, -1);
    converge(&mut shard, &mut clients, &mut now_ms);
    let listed = shard.list_groups();
    assert_eq!(listed[0].group_type, "consumer");
    assert_eq!(listed[0].state, "Stable");
}

#[test]
fn stale_epochs_are_fenced_and_silent_members_expire() {
    let mut shard = GroupShard::new(GroupConfig::default());
    shard.finish_load(0);
    let mut a = new_client();
    heartbeat(&mut shard, &mut a, 0);
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(&a.member_id))
        .with_member_epoch(a.epoch + 5);
    let response = shard.consumer_heartbeat(&info(10), &request, "x", &Image).1;
    assert_eq!(response.error_code, ResponseError::FencedMemberEpoch.code());
    let mut b = new_client();
    heartbeat(&mut shard, &mut b, 20);
    // a stops heartbeating: after the session timeout it is removed and b gets everything.
    heartbeat(&mut shard, &mut b, 40_000);
    let fx = shard.tick(50_000);
    // The expiry is persisted: a's records become tombstones, the group epoch moves.
    assert!(fx.records.iter().any(|r| r.value.is_none()));
    shard.apply_written(&fx.records, 50_000);
    let mut now_ms = 50_000;
    for _ in 0..3 {
        now_ms += 100;
        heartbeat(&mut shard, &mut b, now_ms);
    }
    assert_eq!(b.owned.len(), 6);
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s(&a.member_id))
        .with_member_epoch(a.epoch);
    let response = shard
        .consumer_heartbeat(&info(now_ms), &request, "x", &Image)
        .1;
    assert_eq!(response.error_code, ResponseError::UnknownMemberId.code());
}

#[test]
fn consumer_groups_survive_replay_of_their_records() {
    let mut shard = GroupShard::new(GroupConfig::default());
    shard.finish_load(0);
    let mut log = Vec::new();
    let mut clients = [new_client(), new_client()];
    let mut now_ms = 0;
    for round in 0..20 {
        now_ms += 100;
        let i = round % 2;
        heartbeat_logged(&mut shard, &mut clients[i], now_ms, &mut log);
    }
    assert_eq!(clients[0].owned.len() + clients[1].owned.len(), 6);
    // Rebuild from the log, as after a restart: the members carry on with their epochs.
    let mut restarted = GroupShard::new(GroupConfig::default());
    for r in &log {
        restarted.replay(r, now_ms);
    }
    restarted.finish_load(now_ms);
    assert_eq!(
        restarted.consumer_describe("g"),
        shard.consumer_describe("g"),
        "replay rebuilds the group"
    );
    for c in clients.iter_mut() {
        let owned = c.owned.clone();
        let response = heartbeat(&mut restarted, c, now_ms + 100);
        assert_eq!(response.error_code, 0);
        assert_eq!(c.owned, owned);
    }
}

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Join(usize),
        Leave(usize),
        Heartbeat(usize),
        Advance(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            1 => (0..4usize).prop_map(Op::Join),
            1 => (0..4usize).prop_map(Op::Leave),
            4 => (0..4usize).prop_map(Op::Heartbeat),
            1 => (0..20_000i64).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever members do, no partition is ever owned by two live members at once,
        /// and once everyone keeps heartbeating the group settles on a complete, disjoint
        /// assignment; the log replays to the same group.
        #[test]
        fn reconciliation_never_double_assigns(ops in proptest::collection::vec(op(), 1..60)) {
            let mut shard = GroupShard::new(GroupConfig::default());
            shard.finish_load(0);
            let mut log = Vec::new();
            let mut now_ms = 0;
            let mut clients: Vec<Option<Client>> = vec![None, None, None, None];
            let beat = |shard: &mut GroupShard, c: &mut Client, now_ms: i64, log: &mut Vec<CoordinatorRecord>| -> bool {
                let owned = vec![TopicPartitions::default()
                    .with_topic_id(TOPIC)
                    .with_partitions(c.owned.iter().copied().collect())];
                let mut request = ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_member_id(s(&c.member_id))
                    .with_member_epoch(c.epoch)
                    .with_rebalance_timeout_ms(if c.epoch == 0 { 30_000 } else { -1 })
                    .with_topic_partitions(Some(if c.epoch == 0 { vec![] } else { owned }));
                if c.epoch == 0 {
                    request.subscribed_topic_names = Some(vec![TopicName(s("t"))]);
                }
                let (records, response) =
                    shard.consumer_heartbeat(&info(now_ms), &request, &Uuid::new_v4().to_string(), &Image);
                shard.apply_written(&records, now_ms);
                log.extend(records);
                if response.error_code != 0 {
                    return false;
                }
                c.member_id = response.member_id.as_ref().unwrap().to_string();
                c.epoch = response.member_epoch;
                if let Some(a) = &response.assignment {
                    c.owned = a.topic_partitions.iter().flat_map(|tp| tp.partitions.iter().copied()).collect();
                }
                true
            };
            for op in ops {
                match op {
                    Op::Join(i) => {
                        if clients[i].is_none() {
                            let mut c = new_client();
                            if beat(&mut shard, &mut c, now_ms, &mut log) {
                                clients[i] = Some(c);
                            }
                        }
                    }
                    Op::Leave(i) => {
                        if let Some(c) = clients[i].take() {
                            let request = ConsumerGroupHeartbeatRequest::default()
                                .with_group_id(GroupId(s("g")))
                                .with_member_id(s(&c.member_id))
                                .with_member_epoch(-1);
                            let (records, _) = shard.consumer_heartbeat(&info(now_ms), &request, "x", &Image);
                            shard.apply_written(&records, now_ms);
                            log.extend(records);
                        }
                    }
                    Op::Heartbeat(i) => {
                        if let Some(c) = clients[i].as_mut() {
                            if !beat(&mut shard, c, now_ms, &mut log) {
                                // Fenced or expired: the client drops everything.
                                clients[i] = None;
                            }
                        }
                    }
                    Op::Advance(ms) => {
                        now_ms += ms;
                        let fx = shard.tick(now_ms);
                        shard.apply_written(&fx.records, now_ms);
                        log.extend(fx.records);
                    }
                }
                // Invariant: a partition has at most one owner among the clients whose
                // membership the coordinator still knows (an expired zombie is fenced).
                let known: BTreeSet<String> = shard
                    .consumer_describe("g")
                    .members
                    .iter()
                    .map(|m| m.member_id.to_string())
                    .collect();
                let mut seen = BTreeSet::new();
                for c in clients.iter().flatten().filter(|c| known.contains(&c.member_id)) {
                    for p in &c.owned {
                        prop_assert!(seen.insert(*p), "partition {} owned twice", p);
                    }
                }
            }
            // Everyone left keeps heartbeating: the group settles.
            let live: Vec<usize> = (0..4).filter(|i| clients[*i].is_some()).collect();
            if !live.is_empty() {
                for round in 0..(live.len() * 10) {
                    now_ms += 10;
                    let i = live[round % live.len()];
                    let c = clients[i].as_mut().unwrap();
                    if !beat(&mut shard, c, now_ms, &mut log) {
                        // Expired meanwhile: like librdkafka, drop everything and rejoin.
                        *c = new_client();
                        prop_assert!(beat(&mut shard, c, now_ms, &mut log));
                    }
                }
                let total: usize = live.iter().map(|i| clients[*i].as_ref().unwrap().owned.len()).sum();
                prop_assert_eq!(total, 6, "the live members own every partition");
            }
            let mut restarted = GroupShard::new(GroupConfig::default());
            for r in &log {
                restarted.replay(r, now_ms);
            }
            restarted.finish_load(now_ms);
            prop_assert_eq!(restarted.consumer_describe("g"), shard.consumer_describe("g"));
        }
    }
}

#[test]
fn a_static_member_restart_keeps_its_partitions_without_a_new_epoch() {
    let mut shard = GroupShard::new(GroupConfig::default());
    shard.finish_load(0);
    let join = |shard: &mut GroupShard, instance: &str, member_id: &str, now_ms: i64| {
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(member_id))
            .with_member_epoch(0)
            .with_instance_id(Some(s(instance)))
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(s("t"))]))
            .with_topic_partitions(Some(vec![]));
        let (records, response) = shard.consumer_heartbeat(&info(now_ms), &request, "x", &Image);
        shard.apply_written(&records, now_ms);
        response
    };
    let a = join(&mut shard, "a", "a-1", 0);
    let b = join(&mut shard, "b", "b-1", 10);
    assert_eq!((a.error_code, b.error_code), (0, 0));
    let mut clients = [
        Client {
            member_id: "a-1".into(),
            epoch: a.member_epoch,
            owned: BTreeSet::new(),
        },
        Client {
            member_id: "b-1".into(),
            epoch: b.member_epoch,
            owned: BTreeSet::new(),
        },
    ];
    let mut now_ms = 100;
    for round in 0..20 {
        now_ms += 10;
        heartbeat(&mut shard, &mut clients[round % 2], now_ms);
    }
    let epoch = shard.consumer_describe("g").group_epoch;
    let a_owned = clients[0].owned.clone();
    assert_eq!(a_owned.len(), 3);
    // a closes as a static member (-2), then restarts with a new member id.
    let leave = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s("a-1"))
        .with_member_epoch(-2)
        .with_instance_id(Some(s("a")));
    let (records, left) = shard.consumer_heartbeat(&info(now_ms), &leave, "x", &Image);
    shard.apply_written(&records, now_ms);
    assert_eq!((left.error_code, left.member_epoch), (0, -2));
    // Someone else cannot take the instance id while... it can, once it is away: a-2 is a.
    let back = join(&mut shard, "a", "a-2", now_ms + 10);
    assert_eq!(back.error_code, 0);
    let owned: BTreeSet<i32> = back
        .assignment
        .expect("assignment")
        .topic_partitions
        .iter()
        .flat_map(|tp| tp.partitions.iter().copied())
        .collect();
    assert_eq!(owned, a_owned, "the same partitions");
    assert_eq!(
        shard.consumer_describe("g").group_epoch,
        epoch,
        "no rebalance"
    );
    // A second process with the same instance id while a-2 is active is refused.
    let dup = join(&mut shard, "a", "a-3", now_ms + 20);
    assert_eq!(dup.error_code, ResponseError::UnreleasedInstanceId.code());
}

#[test]
fn regex_subscriptions_match_whole_names_and_never_internal_topics() {
    let mut shard = GroupShard::new(GroupConfig::default());
    shard.finish_load(0);
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_member_id(s("m"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_regex(Some(s(".*")))
        .with_topic_partitions(Some(vec![]));
    let (_, response) = shard.consumer_heartbeat(&info(0), &request, "x", &Image);
    assert_eq!(response.error_code, 0);
    let topics: BTreeSet<Uuid> = response
        .assignment
        .unwrap()
        .topic_partitions
        .iter()
        .map(|tp| tp.topic_id)
        .collect();
    assert_eq!(topics, [TOPIC, Uuid::from_u128(8)].into());
    let bad = request
        .clone()
        .with_member_id(s("n"))
        .with_subscribed_topic_regex(Some(s("(")));
    let (_, response) = shard.consumer_heartbeat(&info(0), &bad, "x", &Image);
    assert_eq!(
        response.error_code,
        ResponseError::InvalidRegularExpression.code()
    );
    // "t" alone: a partial match ("other" contains a t) does not count.
    let only_t = request
        .with_member_id(s("o"))
        .with_group_id(GroupId(s("h")))
        .with_subscribed_topic_regex(Some(s("t")));
    let (_, response) = shard.consumer_heartbeat(&info(0), &only_t, "x", &Image);
    let topics: Vec<Uuid> = response
        .assignment
        .unwrap()
        .topic_partitions
        .iter()
        .map(|tp| tp.topic_id)
        .collect();
    assert_eq!(topics, vec![TOPIC]);
}
