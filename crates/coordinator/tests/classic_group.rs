//! The classic group state machine driven without sockets or disks: a tiny runtime that
//! "appends" records to a Vec, delivers answers, and moves a fake clock.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use moldau_coordinator::{
    CoordinatorRecord, Effects, GroupConfig, GroupShard, GroupState, RequestInfo,
};
use proptest::prelude::*;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

struct Sim {
    shard: GroupShard,
    log: Vec<CoordinatorRecord>,
    now_ms: i64,
    next_waiter: u64,
    joins: HashMap<u64, JoinGroupResponse>,
    syncs: HashMap<u64, SyncGroupResponse>,
    ids: u64,
}

impl Sim {
    fn new(config: GroupConfig) -> Sim {
        let mut shard = GroupShard::new(config);
        shard.finish_load(1_000);
        Sim {
            shard,
            log: vec![],
            now_ms: 1_000,
            next_waiter: 1,
            joins: HashMap::new(),
            syncs: HashMap::new(),
            ids: 0,
        }
    }

    fn config() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        }
    }

    fn info(&self, api_version: i16) -> RequestInfo {
        RequestInfo {
            now_ms: self.now_ms,
            api_version,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    fn deliver(&mut self, fx: Effects) {
        // Group effects are already applied; only offset and tombstone records need it.
        self.shard.apply_written(&fx.records, self.now_ms);
        self.log.extend(fx.records);
        for (w, r) in fx.join_replies {
            assert!(
                self.joins.insert(w, r).is_none(),
                "waiter {w} answered twice"
            );
        }
        for (w, r) in fx.sync_replies {
            assert!(
                self.syncs.insert(w, r).is_none(),
                "waiter {w} answered twice"
            );
        }
    }

    /// Sends a JoinGroup; returns its waiter (answered now or later).
    fn join(
        &mut self,
        group: &str,
        member_id: &str,
        instance: Option<&str>,
        protocols: &[&str],
    ) -> u64 {
        let waiter = self.next_waiter;
        self.next_waiter += 1;
        let request = JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(member_id))
            .with_group_instance_id(instance.map(s))
            .with_protocol_type(s("consumer"))
            .with_protocols(
                protocols
                    .iter()
                    .map(|p| {
                        JoinGroupRequestProtocol::default()
                            .with_name(s(p))
                            .with_metadata(Bytes::from(format!("meta-{p}")))
                    })
                    .collect(),
            );
        self.ids += 1;
        let fx = self
            .shard
            .join_group(&self.info(9), waiter, &request, &format!("id{}", self.ids));
        self.deliver(fx);
        waiter
    }

    /// The KIP-394 dance: join, get MEMBER_ID_REQUIRED with an id, join again with it.
    fn join_new(&mut self, group: &str, protocols: &[&str]) -> u64 {
        let w = self.join(group, "", None, protocols);
        let r = self.joins.remove(&w).expect("immediate answer");
        assert_eq!(r.error_code, ResponseError::MemberIdRequired.code());
        let member_id = r.member_id.to_string();
        self.join(group, &member_id, None, protocols)
    }

    fn sync(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: &[(String, &str)],
    ) -> u64 {
        let waiter = self.next_waiter;
        self.next_waiter += 1;
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(member_id))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::from(a.to_string()))
                    })
                    .collect(),
            );
        let fx = self.shard.sync_group(&self.info(5), waiter, &request);
        self.deliver(fx);
        waiter
    }

    fn heartbeat(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
    ) -> Result<(), ResponseError> {
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(member_id));
        let info = self.info(4);
        self.shard.heartbeat(&info, &request)
    }

    fn advance(&mut self, ms: i64) {
        let target = self.now_ms + ms;
        loop {
            let next = self.shard.next_deadline_ms().max(self.now_ms);
            if next > target {
                break;
            }
            self.now_ms = next;
            let fx = self.shard.tick(self.now_ms);
            self.deliver(fx);
        }
        self.now_ms = target;
    }

    fn commit(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(&str, i32, i64)],
    ) -> Vec<i16> {
        self.commit_as(group, member_id, generation, offsets, false)
    }

    /// An OffsetCommit, or with `transactional` a TxnOffsetCommit (as the broker hands it
    /// to the shard, applied as if its transaction committed).
    fn commit_as(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(&str, i32, i64)],
        transactional: bool,
    ) -> Vec<i16> {
        let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
        for (t, p, o) in offsets {
            by_topic.entry(t).or_default().push((*p, *o));
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(member_id))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|(p, o)| {
                                        OffsetCommitRequestPartition::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(o)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let info = self.info(8);
        let (records, response) = if transactional {
            self.shard.txn_commit_offsets(&info, &request)
        } else {
            self.shard.commit_offsets(&info, &request)
        };
        self.shard.apply_written(&records, self.now_ms);
        self.log.extend(records);
        response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }

    fn offset(&self, group: &str, topic: &str, partition: i32) -> i64 {
        let topics = vec![(topic.to_string(), vec![partition])];
        self.shard.fetch_offsets(group, Some(&topics)).unwrap()[0].1[0].offset
    }

    /// A fresh shard rebuilt from everything "written" so far, as after a restart.
    fn restarted(&self) -> GroupShard {
        let mut shard = GroupShard::new(Self::config());
        for r in &self.log {
            shard.replay(r, self.now_ms);
        }
        shard.finish_load(self.now_ms);
        shard
    }
}

/// Two members form a group; returns (leader, follower, generation).
fn form_two(sim: &mut Sim) -> (String, String, i32) {
    let w1 = sim.join_new("g", &["range"]);
    let w2 = sim.join_new("g", &["range", "roundrobin"]);
    sim.advance(0);
    let r1 = sim.joins.remove(&w1).expect("join answered");
    let r2 = sim.joins.remove(&w2).expect("join answered");
    assert_eq!(r1.error_code, 0);
    assert_eq!(r2.error_code, 0);
    assert_eq!(r1.generation_id, r2.generation_id);
    assert_eq!(r1.protocol_name.as_deref(), Some("range"));
    let (leader, follower) = if r1.leader == r1.member_id {
        (r1, r2)
    } else {
        (r2, r1)
    };
    assert_eq!(
        leader.members.len(),
        2,
        "the leader gets every member's metadata"
    );
    assert!(follower.members.is_empty());
    let (l, f) = (leader.member_id.to_string(), follower.member_id.to_string());
    let gen = leader.generation_id;
    let ws = sim.sync("g", &f, gen, &[]);
    assert!(
        !sim.syncs.contains_key(&ws),
        "a follower's sync waits for the leader"
    );
    let wl = sim.sync("g", &l, gen, &[(l.clone(), "A"), (f.clone(), "B")]);
    assert_eq!(&sim.syncs[&wl].assignment[..], b"A");
    assert_eq!(&sim.syncs[&ws].assignment[..], b"B");
    assert_eq!(sim.shard.group_state("g"), Some(GroupState::Stable));
    (l, f, gen)
}

#[test]
fn two_members_join_sync_and_become_stable() {
    let mut sim = Sim::new(Sim::config());
    let (l, f, gen) = form_two(&mut sim);
    assert_eq!(sim.heartbeat("g", &l, gen), Ok(()));
    assert_eq!(
        sim.heartbeat("g", &f, gen + 1),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        sim.heartbeat("g", "nobody", gen),
        Err(ResponseError::UnknownMemberId)
    );
    // The assignment is persisted in Kafka's GroupMetadata record.
    let restarted = sim.restarted();
    assert_eq!(restarted.group_state("g"), Some(GroupState::Stable));
    assert_eq!(restarted.group_generation("g"), Some(gen));
}

#[test]
fn leaving_member_triggers_rebalance_to_the_rest() {
    let mut sim = Sim::new(Sim::config());
    let (l, f, gen) = form_two(&mut sim);
    let (_, top, members) = sim
        .shard
        .leave_group(&sim.info(5), "g", &[(f.clone(), None)]);
    assert!(top.is_none());
    assert_eq!(members[0].error_code, 0);
    assert_eq!(
        sim.shard.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
    assert_eq!(
        sim.heartbeat("g", &l, gen),
        Err(ResponseError::RebalanceInProgress)
    );
    let w = sim.join("g", &l, None, &["range"]);
    let r = sim
        .joins
        .remove(&w)
        .expect("sole member completes the join");
    assert_eq!(r.generation_id, gen + 1);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn session_expiry_removes_a_silent_member() {
    let mut sim = Sim::new(Sim::config());
    let (l, f, gen) = form_two(&mut sim);
    for _ in 0..5 {
        sim.advance(3_000);
        let result = sim.heartbeat("g", &l, gen);
        assert!(matches!(
            result,
            Ok(()) | Err(ResponseError::RebalanceInProgress)
        ));
    }
    assert_eq!(
        sim.shard.group_state("g"),
        Some(GroupState::PreparingRebalance)
    );
    assert_eq!(
        sim.heartbeat("g", &f, gen),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let mut sim = Sim::new(Sim::config());
    let (l, f, gen) = form_two(&mut sim);
    // The leader rejoins with new metadata; the follower keeps heartbeating but never rejoins.
    let w = sim.join("g", &l, None, &["roundrobin", "range"]);
    assert!(!sim.joins.contains_key(&w));
    for _ in 0..12 {
        sim.advance(3_000);
        let _ = sim.heartbeat("g", &f, gen);
    }
    let r = sim
        .joins
        .remove(&w)
        .expect("join completes at the rebalance timeout");
    assert_eq!(r.generation_id, gen + 1);
    assert_eq!(r.members.len(), 1);
    assert_eq!(
        r.protocol_name.as_deref(),
        Some("roundrobin"),
        "the sole member's preference"
    );
}

#[test]
fn static_member_rejoin_keeps_generation_and_fences_old_id() {
    let mut sim = Sim::new(Sim::config());
    let w = sim.join("g", "", Some("instance-1"), &["range"]);
    sim.advance(0);
    let r = sim.joins.remove(&w).unwrap();
    assert_eq!(r.error_code, 0, "static members skip MEMBER_ID_REQUIRED");
    let old = r.member_id.to_string();
    assert!(old.starts_with("instance-1-"));
    let gen = r.generation_id;
    sim.sync("g", &old, gen, &[(old.clone(), "A")]);
    // The process restarts: same instance id, no member id.
    let w = sim.join("g", "", Some("instance-1"), &["range"]);
    let r = sim.joins.remove(&w).expect("answered at once");
    assert_eq!(r.error_code, 0);
    assert_eq!(r.generation_id, gen, "no rebalance");
    assert!(r.skip_assignment, "the leader need not assign again");
    let new = r.member_id.to_string();
    assert_ne!(new, old);
    assert_eq!(sim.shard.group_state("g"), Some(GroupState::Stable));
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(gen)
        .with_member_id(s(&old))
        .with_group_instance_id(Some(s("instance-1")));
    assert_eq!(
        sim.shard.heartbeat(&sim.info(4), &request),
        Err(ResponseError::FencedInstanceId)
    );
    let ws = sim.sync("g", &new, gen, &[]);
    assert_eq!(
        &sim.syncs[&ws].assignment[..],
        b"A",
        "the assignment carries over"
    );
}

#[test]
fn initial_rebalance_delay_waits_for_more_members() {
    let mut sim = Sim::new(GroupConfig {
        initial_rebalance_delay_ms: 3_000,
        ..GroupConfig::default()
    });
    let w1 = sim.join_new("g", &["range"]);
    sim.advance(2_000);
    assert!(!sim.joins.contains_key(&w1));
    let w2 = sim.join_new("g", &["range"]);
    sim.advance(2_000);
    assert!(
        !sim.joins.contains_key(&w1),
        "a new member extends the delay"
    );
    sim.advance(2_000);
    assert_eq!(sim.joins[&w1].generation_id, 1);
    assert_eq!(sim.joins[&w2].generation_id, 1);
}

#[test]
fn group_max_size_and_session_timeout_bounds() {
    let mut sim = Sim::new(GroupConfig {
        max_size: 1,
        ..Sim::config()
    });
    let w = sim.join_new("g", &["range"]);
    sim.advance(0);
    assert_eq!(sim.joins[&w].error_code, 0);
    // A full group refuses a newcomer before handing out a member id, as Kafka does.
    let w = sim.join("g", "", None, &["range"]);
    assert_eq!(
        sim.joins[&w].error_code,
        ResponseError::GroupMaxSizeReached.code()
    );

    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(s("h")))
        .with_session_timeout_ms(1_000)
        .with_protocol_type(s("consumer"));
    let fx = sim.shard.join_group(&sim.info(5), 999, &request, "x");
    assert_eq!(
        fx.join_replies[0].1.error_code,
        ResponseError::InvalidSessionTimeout.code()
    );
}

#[test]
fn inconsistent_protocols_are_refused() {
    let mut sim = Sim::new(Sim::config());
    let w = sim.join_new("g", &["range"]);
    sim.advance(0);
    assert_eq!(sim.joins[&w].error_code, 0);
    let w = sim.join("g", "", None, &["cooperative-sticky"]);
    assert_eq!(
        sim.joins[&w].error_code,
        ResponseError::InconsistentGroupProtocol.code()
    );
}

#[test]
fn transactional_commits_need_no_member_and_skip_the_group_state() {
    let mut sim = Sim::new(Sim::config());
    let w1 = sim.join_new("g", &["range"]);
    let w2 = sim.join_new("g", &["range"]);
    sim.advance(0);
    let leader = sim.joins.remove(&w1).expect("join answered");
    sim.joins.remove(&w2).expect("join answered");
    let (member, gen) = (leader.member_id.to_string(), leader.generation_id);
    assert_eq!(
        sim.shard.group_state("g"),
        Some(GroupState::CompletingRebalance)
    );
    // Joined, not yet synced: a consumer's commit waits for the assignment (Kafka's
    // REBALANCE_IN_PROGRESS); a transactional one is taken, as Kafka takes it.
    assert_eq!(
        sim.commit("g", &member, gen, &[("t", 0, 3)]),
        vec![ResponseError::RebalanceInProgress.code()]
    );
    assert_eq!(
        sim.commit_as("g", &member, gen, &[("t", 0, 3)], true),
        vec![0]
    );
    // sendOffsetsToTransaction(offsets, "g") names no member and no generation.
    assert_eq!(sim.commit_as("g", "", -1, &[("t", 0, 4)], true), vec![0]);
    assert_eq!(sim.offset("g", "t", 0), 4);
    assert_eq!(
        sim.commit("g", "", -1, &[("t", 0, 5)]),
        vec![ResponseError::UnknownMemberId.code()]
    );
    // Given, the member fields are checked as for any commit.
    assert_eq!(
        sim.commit_as("g", &member, gen + 1, &[("t", 0, 6)], true),
        vec![ResponseError::IllegalGeneration.code()]
    );
}

#[test]
fn offsets_commit_fetch_and_survive_replay() {
    let mut sim = Sim::new(Sim::config());
    assert_eq!(sim.offset("g", "t", 0), -1, "nothing committed");
    // assign()-consumers commit with generation -1 to a group nobody joined.
    assert_eq!(
        sim.commit("g", "", -1, &[("t", 0, 5), ("t", 1, 7)]),
        vec![0, 0]
    );
    assert_eq!(sim.offset("g", "t", 0), 5);
    let (l, _f, gen) = form_two(&mut sim);
    assert_eq!(
        sim.commit("g", "", -1, &[("t", 0, 6)]),
        vec![ResponseError::UnknownMemberId.code()],
        "a simple commit to a live group is refused"
    );
    assert_eq!(
        sim.commit("g", &l, gen + 1, &[("t", 0, 6)]),
        vec![ResponseError::IllegalGeneration.code()]
    );
    assert_eq!(sim.commit("g", &l, gen, &[("t", 0, 9)]), vec![0]);
    let restarted = sim.restarted();
    let topics = vec![("t".to_string(), vec![0, 1, 2])];
    let fetched = restarted.fetch_offsets("g", Some(&topics)).unwrap();
    let offsets: Vec<i64> = fetched[0].1.iter().map(|o| o.offset).collect();
    assert_eq!(offsets, vec![9, 7, -1]);
    let all = restarted.fetch_offsets("g", None).unwrap();
    assert_eq!(all[0].1.len(), 2);
}

#[test]
fn delete_groups_and_offset_expiry() {
    let mut sim = Sim::new(GroupConfig {
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 10_000,
        ..Sim::config()
    });
    sim.commit("simple", "", -1, &[("t", 0, 1)]);
    let (l, f, gen) = form_two(&mut sim);
    sim.commit("g", &l, gen, &[("t", 0, 3)]);
    let (records, results) = sim.shard.delete_groups(&["g".into(), "nope".into()]);
    assert!(records.is_empty());
    assert_eq!(results[0].1, Some(ResponseError::NonEmptyGroup));
    assert_eq!(results[1].1, Some(ResponseError::GroupIdNotFound));
    let (fx, _, _) = sim
        .shard
        .leave_group(&sim.info(5), "g", &[(l, None), (f, None)]);
    sim.deliver(fx);
    assert_eq!(sim.shard.group_state("g"), Some(GroupState::Empty));
    // Empty groups' offsets expire after the retention; then the group goes too.
    sim.advance(80_000);
    assert_eq!(sim.offset("g", "t", 0), -1);
    assert_eq!(sim.offset("simple", "t", 0), -1);
    assert_eq!(sim.shard.group_state("g"), None);
    assert!(sim.shard.list_groups().is_empty());
    // And the log says the same after a restart.
    assert!(sim.restarted().list_groups().is_empty());
}

#[test]
fn delete_group_writes_tombstones() {
    let mut sim = Sim::new(Sim::config());
    sim.commit("g", "", -1, &[("t", 0, 1), ("u", 2, 3)]);
    let (records, results) = sim.shard.delete_groups(&["g".into()]);
    assert_eq!(results[0].1, None);
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.value.is_none()));
    sim.shard.apply_written(&records, sim.now_ms);
    sim.log.extend(records);
    assert_eq!(sim.shard.group_state("g"), None);
    assert_eq!(sim.restarted().group_state("g"), None);
}

#[derive(Clone, Debug)]
enum Op {
    Join(usize),
    Leave(usize),
    Heartbeat(usize),
    Sync(usize),
    Advance(i64),
    Commit(usize, i32, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize).prop_map(Op::Join),
        (0..4usize).prop_map(Op::Leave),
        (0..4usize).prop_map(Op::Heartbeat),
        (0..4usize).prop_map(Op::Sync),
        (0..15_000i64).prop_map(Op::Advance),
        (0..4usize, 0..3i32, 0..1000i64).prop_map(|(m, p, o)| Op::Commit(m, p, o)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Against a model of committed offsets: any interleaving of members joining, leaving,
    /// heartbeating, syncing and time passing answers each parked request at most once,
    /// never loses or invents an acknowledged commit, keeps generations increasing, and a
    /// replay of the written records agrees with the live offsets.
    #[test]
    fn random_sessions_keep_invariants(ops in proptest::collection::vec(op(), 1..80)) {
        let mut sim = Sim::new(Sim::config());
        // Per client: (member id, generation) as the client believes them.
        let mut clients: Vec<(String, i32)> = vec![(String::new(), -1); 4];
        let mut pending_join: Vec<Option<u64>> = vec![None; 4];
        let mut model: BTreeMap<i32, i64> = BTreeMap::new();
        let mut last_generation = 0;
        for op in ops {
            match op {
                Op::Join(c) => {
                    if pending_join[c].is_none() {
                        let w = sim.join("g", &clients[c].0.clone(), None, &["range"]);
                        pending_join[c] = Some(w);
                    }
                }
                Op::Leave(c) => {
                    let (fx, _, _) = sim.shard.leave_group(&sim.info(5), "g", &[(clients[c].0.clone(), None)]);
                    sim.deliver(fx);
                    clients[c] = (String::new(), -1);
                }
                Op::Heartbeat(c) => {
                    let (m, g) = clients[c].clone();
                    if sim.heartbeat("g", &m, g) == Err(ResponseError::UnknownMemberId) {
                        clients[c] = (String::new(), -1);
                    }
                }
                Op::Sync(c) => {
                    let (m, g) = clients[c].clone();
                    let assignment = vec![(m.clone(), "x")];
                    sim.sync("g", &m, g, &assignment);
                }
                Op::Advance(ms) => sim.advance(ms),
                Op::Commit(c, p, o) => {
                    let (m, g) = clients[c].clone();
                    let codes = sim.commit("g", &m, g, &[("t", p, o)]);
                    if codes[0] == 0 {
                        model.insert(p, o);
                    }
                }
            }
            for c in 0..4 {
                if let Some(w) = pending_join[c] {
                    if let Some(r) = sim.joins.remove(&w) {
                        pending_join[c] = None;
                        if r.error_code == 0 {
                            prop_assert!(r.generation_id >= last_generation);
                            last_generation = r.generation_id;
                            clients[c] = (r.member_id.to_string(), r.generation_id);
                        } else if r.error_code == ResponseError::MemberIdRequired.code() {
                            clients[c] = (r.member_id.to_string(), -1);
                        } else {
                            clients[c] = (String::new(), -1);
                        }
                    }
                }
            }
            for p in 0..3 {
                prop_assert_eq!(sim.offset("g", "t", p), model.get(&p).copied().unwrap_or(-1));
            }
        }
        let restarted = sim.restarted();
        let topics = vec![("t".to_string(), vec![0, 1, 2])];
        prop_assert_eq!(
            restarted.fetch_offsets("g", Some(&topics)).unwrap(),
            sim.shard.fetch_offsets("g", Some(&topics)).unwrap()
        );
    }
}
