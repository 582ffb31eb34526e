//! The transactional consume-transform-produce pipeline (Kafka Streams' exactly-once v2):
//! two members of the classic-protocol group `sim-pipeline` split the partitions of
//! `sim-events` (JoinGroup / SyncGroup with the leader's range assignment, Heartbeat every
//! second). Each member has its own transactional id and, per transaction, reads a chunk
//! of its partitions, writes each value transformed to the same partition of
//! `sim-pipeline-out`, and commits the next offsets with TxnOffsetCommit under its group
//! generation (KIP-447), so that output and progress commit together. On any failure it
//! forgets what it held, re-initializes its producer (which ends the open transaction)
//! and starts again from the group's offsets, fetched with `require_stable`.
//!
//! Once a run, one member (drawn from the seed) fails mid-transaction for longer than its
//! session, so that the group rebalances without it ([`MemberFaultKind`]).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, OffsetFetchRequest, OffsetFetchResponse, ProducerId, SyncGroupRequest,
    TopicName, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, Request, StrBytes};
use kafka_protocol::ResponseError;

use crate::offsets::{first_error, with_coordinator};
use crate::transactions::{self, Producer};
use crate::workload::{note, value_of, Admin, Shared, WorkloadSpec, TOPIC};

pub const GROUP: &str = "sim-pipeline";
pub const OUTPUT_TOPIC: &str = "sim-pipeline-out";
const PROTOCOL_TYPE: &str = "consumer";
const ASSIGNOR: &str = "range";
/// Kafka's `group.min.session.timeout.ms` is 6 s: a little above, so that a partition
/// or crash of a few seconds costs a rebalance only sometimes.
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// How long the coordinator waits for members to rejoin: a member finishes the step of a
/// transaction it is in (at most a step's timeout) before it rejoins.
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// The version of the consumer protocol's embedded messages, as Kafka 3.x clients write.
const CONSUMER_PROTOCOL_VERSION: i16 = 3;
/// Input records of one partition per transaction.
const MAX_RECORDS: usize = 50;
/// Once the cluster is healed, the pipeline gives up after this long without a commit.
const NO_PROGRESS_LIMIT: Duration = Duration::from_secs(120);
/// How long the last OffsetFetch may wait for the group's offsets to be stable.
const FINAL_FETCH_LIMIT: Duration = Duration::from_secs(120);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const IDLE: Duration = Duration::from_millis(200);
/// Kafka's producer default: longer than a member's [`MemberFault`], so that a paused
/// member's transaction is still open when it goes on.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// A member's failure in the middle of a transaction.
#[derive(Clone, Copy, Debug)]
pub struct MemberFault {
    pub member: usize,
    /// When (simulated time since the start): the first transaction after it fails.
    pub at: Duration,
    /// How long the member is gone.
    pub down: Duration,
    pub kind: MemberFaultKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberFaultKind {
    /// Stops (heartbeats included) before its TxnOffsetCommit, then goes on as if nothing
    /// happened: a zombie, refused for its old generation (KIP-447).
    PauseBeforeOffsets,
    /// Stops after its TxnOffsetCommit and then commits the transaction, if it was not
    /// timed out meanwhile: the new owner of its partitions must wait for that
    /// (`require_stable`) rather than read the offsets the transaction is about to move.
    PauseBeforeEnd,
    /// Crashes after its TxnOffsetCommit and restarts with no memory (no member id, no
    /// producer epoch): the open transaction ends when the coordinator times it out or
    /// the restarted member's InitProducerId aborts it.
    Crash,
}

/// What the pipeline writes for an input value.
pub fn transform(value: &str) -> String {
    format!("ctp:{value}")
}

/// One member's view of its group membership, shared by its worker and its heartbeats.
struct Membership {
    coordinator: Option<String>,
    member_id: String,
    /// -1: not a member of a generation.
    generation: i32,
    /// Partitions of `sim-events` assigned in `generation`.
    assigned: Vec<i32>,
    /// The coordinator asked for a rejoin (or the member learned it was fenced).
    rejoin: bool,
    /// The worker is in JoinGroup / SyncGroup: no heartbeats meanwhile.
    joining: bool,
    /// The member is paused ([`MemberFault`]): nor any heartbeat.
    paused: bool,
    stopped: bool,
}

/// How far the pipeline as a whole got.
struct Progress {
    /// The group's offsets reach the end of the input.
    finished: bool,
    /// It gave up ([`Observations::pipeline_failure`](crate::workload::Observations) says
    /// why).
    failed: bool,
    /// What each member is doing, for the failure message.
    doing: [&'static str; 2],
    /// When a transaction last committed (or the cluster was healed, if later).
    last_commit: tokio::time::Instant,
    healed_at: Option<tokio::time::Instant>,
}

/// Runs both members until the group's committed offsets reach the end of every input
/// partition (or the pipeline gives up), then returns those offsets.
pub(crate) async fn run(
    spec: &WorkloadSpec,
    shared: &Shared,
    heal: &RefCell<bool>,
) -> BTreeMap<i32, i64> {
    let mut admin = Admin::new(spec.bootstrap.clone());
    admin.create_topic(TOPIC, spec.partitions, shared).await;
    admin
        .create_topic(OUTPUT_TOPIC, spec.partitions, shared)
        .await;
    let progress = RefCell::new(Progress {
        finished: false,
        failed: false,
        doing: ["starting"; 2],
        last_commit: tokio::time::Instant::now(),
        healed_at: None,
    });
    tokio::join!(
        member(0, spec, shared, heal, &progress),
        member(1, spec, shared, heal, &progress)
    );
    // What the group committed, once no transaction is open any more.
    let mut coordinator = None;
    let give_up = tokio::time::Instant::now() + FINAL_FETCH_LIMIT;
    while tokio::time::Instant::now() < give_up {
        let all: Vec<i32> = (0..spec.partitions).collect();
        if let Some(committed) = committed(&mut admin, &mut coordinator, &all, shared).await {
            return committed;
        }
    }
    fail(
        shared,
        format!(
            "the group's offsets were not stable within {} s",
            FINAL_FETCH_LIMIT.as_secs()
        ),
    );
    BTreeMap::new()
}

/// Records why the pipeline failed (the first reason only).
fn fail(shared: &Shared, reason: String) {
    let mut shared = shared.borrow_mut();
    if shared.pipeline_failure.is_none() {
        shared.pipeline_failure = Some(reason);
    }
}

/// One member: its heartbeats beside its worker.
async fn member(
    index: usize,
    spec: &WorkloadSpec,
    shared: &Shared,
    heal: &RefCell<bool>,
    progress: &RefCell<Progress>,
) {
    let membership = RefCell::new(Membership {
        coordinator: None,
        member_id: String::new(),
        generation: -1,
        assigned: Vec::new(),
        rejoin: false,
        joining: false,
        paused: false,
        stopped: false,
    });
    let mut heartbeat_admin = Admin::new(spec.bootstrap.clone());
    let join_timeout = Duration::from_millis(REBALANCE_TIMEOUT_MS as u64 + 5_000);
    let mut group_admin = Admin::with_timeout(spec.bootstrap.clone(), join_timeout);
    let mut admin = Admin::new(spec.bootstrap.clone());
    let worker = Worker {
        index,
        spec,
        shared,
        heal,
        progress,
        membership: &membership,
        fault: Cell::new(spec.pipeline_fault.filter(|f| f.member == index)),
    };
    let work = async {
        // A worker stuck in a step that never ends (InitProducerId answering
        // CONCURRENT_TRANSACTIONS forever, say) is given up on too.
        tokio::select! {
            () = worker.run(&mut group_admin, &mut admin) => {}
            () = worker.watchdog() => {}
        }
        membership.borrow_mut().stopped = true;
    };
    tokio::join!(heartbeats(&mut heartbeat_admin, &membership, shared), work);
}

/// Heartbeats while the member is in a generation, as the consumer's heartbeat thread:
/// a rebalance or a fencing the coordinator reports makes the worker rejoin.
async fn heartbeats(admin: &mut Admin, membership: &RefCell<Membership>, shared: &Shared) {
    let mut last_error = String::new();
    loop {
        tokio::time::sleep(HEARTBEAT_INTERVAL).await;
        let (coordinator, member_id, generation) = {
            let m = membership.borrow();
            if m.stopped {
                return;
            }
            if m.joining || m.paused || m.generation < 0 {
                continue;
            }
            (m.coordinator.clone(), m.member_id.clone(), m.generation)
        };
        let Some(coordinator) = coordinator else {
            let found = admin.find_coordinator(GROUP, 0).await;
            membership.borrow_mut().coordinator = found;
            continue;
        };
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member_id.clone()));
        let error = match admin.send(&coordinator, &request, 4).await {
            Ok(r) => ResponseError::try_from_code(r.error_code),
            Err(e) => {
                membership.borrow_mut().coordinator = None;
                let error = format!("Heartbeat: {e}");
                if error != last_error {
                    note(shared, error.clone());
                    last_error = error;
                }
                continue;
            }
        };
        let mut m = membership.borrow_mut();
        // The worker may have rejoined meanwhile: the answer is about another generation.
        if m.generation != generation || m.member_id != member_id {
            continue;
        }
        match error {
            None => last_error.clear(),
            Some(e) => {
                match e {
                    ResponseError::RebalanceInProgress | ResponseError::IllegalGeneration => {
                        m.rejoin = true
                    }
                    ResponseError::UnknownMemberId | ResponseError::FencedInstanceId => {
                        m.member_id.clear();
                        m.generation = -1;
                        m.rejoin = true;
                    }
                    // The coordinator moved: heartbeat the new one (which knows the group
                    // from its log, or answers UNKNOWN_MEMBER_ID).
                    _ => m.coordinator = None,
                }
                let error = format!("Heartbeat of {member_id} generation {generation}: {e:?}");
                if error != last_error {
                    drop(m);
                    note(shared, error.clone());
                    last_error = error;
                }
            }
        }
    }
}

/// The input of one transaction: by partition, the values read and the offset after them.
type Chunk = BTreeMap<i32, (Vec<String>, i64)>;

struct Worker<'a> {
    index: usize,
    spec: &'a WorkloadSpec,
    shared: &'a Shared,
    heal: &'a RefCell<bool>,
    progress: &'a RefCell<Progress>,
    membership: &'a RefCell<Membership>,
    /// This member's failure, until it happens.
    fault: Cell<Option<MemberFault>>,
}

impl Worker<'_> {
    async fn run(&self, group_admin: &mut Admin, admin: &mut Admin) {
        let shared = self.shared;
        let mut producer = Producer::new(&self.transactional_id(), TRANSACTION_TIMEOUT);
        self.doing("InitProducerId");
        transactions::init(admin, &mut producer, shared).await;
        // The next offset of each assigned partition; `None`: to be fetched.
        let mut positions: Option<BTreeMap<i32, i64>> = None;
        let pace = self.spec.pace(self.spec.pipeline_transactions);
        let mut idle = false;
        loop {
            if self.progress.borrow().finished || self.stalled() {
                break;
            }
            if !shared.borrow().producing_done {
                tokio::time::sleep(pace).await;
            } else if idle {
                tokio::time::sleep(IDLE).await;
            }
            idle = false;
            let needs_join = {
                let m = self.membership.borrow();
                m.rejoin || m.generation < 0
            };
            if needs_join {
                positions = None;
                self.doing("JoinGroup / SyncGroup");
                if !self.join(group_admin).await {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    continue;
                }
            }
            // The group membership this work belongs to: its offsets are committed under
            // it even if the member has since been told it is gone (as a consumer's
            // `groupMetadata()` of the poll), so that the coordinator fences a zombie.
            let (assigned, member) = {
                let m = self.membership.borrow();
                (m.assigned.clone(), (m.generation, m.member_id.clone()))
            };
            let from = match positions.take() {
                Some(from) => from,
                None => {
                    let mut coordinator = self.membership.borrow().coordinator.clone();
                    self.doing("OffsetFetch (require_stable)");
                    let found = committed(admin, &mut coordinator, &assigned, shared).await;
                    self.membership.borrow_mut().coordinator = coordinator;
                    match found {
                        // Nothing committed yet: from the start (auto.offset.reset=earliest).
                        Some(c) => c.into_iter().map(|(p, o)| (p, o.max(0))).collect(),
                        None => continue,
                    }
                }
            };
            self.doing("Fetch");
            let chunk = read_chunk(admin, &from).await;
            if chunk.is_empty() {
                positions = Some(from);
                idle = true;
                if *self.heal.borrow() && self.input_consumed(admin).await {
                    self.progress.borrow_mut().finished = true;
                }
                continue;
            }
            self.doing("a transaction");
            match self
                .transaction(admin, &mut producer, &chunk, &member)
                .await
            {
                Ok(()) => {
                    let mut next = from;
                    for (partition, (_, end)) in &chunk {
                        next.insert(*partition, *end);
                    }
                    positions = Some(next);
                    self.progress.borrow_mut().last_commit = tokio::time::Instant::now();
                }
                Err(error) => {
                    note(
                        shared,
                        format!("pipeline member {}: {error}; starting over", self.index),
                    );
                    // A new epoch ends the open transaction (aborted, or completed if its
                    // commit was already logged); the group's offsets say where to go on.
                    self.doing("InitProducerId after a failure");
                    transactions::init(admin, &mut producer, shared).await;
                }
            }
        }
    }

    /// Ends once the pipeline has [stalled](Self::stalled).
    async fn watchdog(&self) {
        while !self.stalled() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn doing(&self, what: &'static str) {
        self.progress.borrow_mut().doing[self.index] = what;
    }

    fn transactional_id(&self) -> String {
        format!("{GROUP}-{}", self.index)
    }

    /// Whether this member's failure is one of `kinds` and due now (it happens once).
    fn fault_due(&self, kinds: &[MemberFaultKind]) -> Option<MemberFault> {
        let now = turmoil::sim_elapsed().unwrap_or_default();
        let fault = self
            .fault
            .get()
            .filter(|f| kinds.contains(&f.kind) && now >= f.at)?;
        self.fault.set(None);
        note(
            self.shared,
            format!(
                "pipeline member {}: {:?} for {} ms",
                self.index,
                fault.kind,
                fault.down.as_millis()
            ),
        );
        Some(fault)
    }

    /// Silent past its session, heartbeats included: the group goes on without it.
    async fn pause(&self, fault: MemberFault) {
        self.membership.borrow_mut().paused = true;
        tokio::time::sleep(fault.down).await;
        self.membership.borrow_mut().paused = false;
    }

    /// Whether the pipeline gave up: no commit for too long since the heal.
    fn stalled(&self) -> bool {
        let mut progress = self.progress.borrow_mut();
        if progress.failed {
            return true;
        }
        if progress.finished || !*self.heal.borrow() {
            return false;
        }
        let now = tokio::time::Instant::now();
        let healed_at = *progress.healed_at.get_or_insert(now);
        let since = progress.last_commit.max(healed_at);
        if now.duration_since(since) < NO_PROGRESS_LIMIT {
            return false;
        }
        progress.failed = true;
        fail(
            self.shared,
            format!(
                "the pipeline committed nothing for {} s after the heal (member 0 in {}, \
                 member 1 in {})",
                NO_PROGRESS_LIMIT.as_secs(),
                progress.doing[0],
                progress.doing[1]
            ),
        );
        true
    }

    /// Whether the group's committed offsets reach the high watermark of every input
    /// partition (asked once this member's own partitions are consumed).
    async fn input_consumed(&self, admin: &mut Admin) -> bool {
        let all: Vec<i32> = (0..self.spec.partitions).collect();
        let mut coordinator = self.membership.borrow().coordinator.clone();
        let Some(committed) = committed(admin, &mut coordinator, &all, self.shared).await else {
            return false;
        };
        for (partition, offset) in committed {
            let offset = offset.max(0);
            match admin.fetch(TOPIC, partition, offset, 0).await {
                Some(data) if data.high_watermark <= offset => {}
                _ => return false,
            }
        }
        note(
            self.shared,
            "pipeline: every input partition consumed".into(),
        );
        true
    }

    /// JoinGroup (again with the member id the coordinator asks for) and SyncGroup, the
    /// leader assigning; `false` when the member is not in a generation afterwards.
    async fn join(&self, admin: &mut Admin) -> bool {
        self.membership.borrow_mut().joining = true;
        let joined = self.join_and_sync(admin).await;
        let mut m = self.membership.borrow_mut();
        m.joining = false;
        match joined {
            Ok((generation, assigned)) => {
                note(
                    self.shared,
                    format!(
                        "pipeline member {} ({}) in generation {generation} with {assigned:?}",
                        self.index, m.member_id
                    ),
                );
                m.generation = generation;
                m.assigned = assigned;
                m.rejoin = false;
                true
            }
            Err(error) => {
                m.generation = -1;
                drop(m);
                note(
                    self.shared,
                    format!("pipeline member {} joining: {error}", self.index),
                );
                false
            }
        }
    }

    async fn join_and_sync(&self, admin: &mut Admin) -> Result<(i32, Vec<i32>), String> {
        let known = self.membership.borrow().coordinator.clone();
        let coordinator = match known {
            Some(c) => c,
            None => admin
                .find_coordinator(GROUP, 0)
                .await
                .ok_or("no coordinator")?,
        };
        self.membership.borrow_mut().coordinator = Some(coordinator.clone());
        // MEMBER_ID_REQUIRED, then a rebalance or two under way: a few rounds at most.
        for _ in 0..5 {
            let member_id = self.membership.borrow().member_id.clone();
            let request = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
                .with_member_id(StrBytes::from_string(member_id))
                .with_protocol_type(StrBytes::from_static_str(PROTOCOL_TYPE))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str(ASSIGNOR))
                    .with_metadata(subscription())]);
            let joined = self.send(admin, &coordinator, &request, 9).await?;
            match ResponseError::try_from_code(joined.error_code) {
                None => {}
                Some(ResponseError::MemberIdRequired) => {
                    self.membership.borrow_mut().member_id = joined.member_id.to_string();
                    continue;
                }
                Some(e) => return Err(self.group_error("JoinGroup", e)),
            }
            let member_id = joined.member_id.to_string();
            self.membership.borrow_mut().member_id = member_id.clone();
            let assignments = if joined.leader.as_str() == member_id && !joined.skip_assignment {
                assign(&joined.members, self.spec.partitions)
            } else {
                Vec::new()
            };
            let request = SyncGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
                .with_generation_id(joined.generation_id)
                .with_member_id(StrBytes::from_string(member_id))
                .with_protocol_type(Some(StrBytes::from_static_str(PROTOCOL_TYPE)))
                .with_protocol_name(Some(StrBytes::from_static_str(ASSIGNOR)))
                .with_assignments(assignments);
            let synced = self.send(admin, &coordinator, &request, 5).await?;
            match ResponseError::try_from_code(synced.error_code) {
                None => {}
                Some(ResponseError::RebalanceInProgress) => continue,
                Some(e) => return Err(self.group_error("SyncGroup", e)),
            }
            let assigned = decode_versioned::<ConsumerProtocolAssignment>(synced.assignment)
                .ok_or("the assignment does not decode")?
                .assigned_partitions
                .into_iter()
                .filter(|t| t.topic.as_str() == TOPIC)
                .flat_map(|t| t.partitions)
                .collect();
            return Ok((joined.generation_id, assigned));
        }
        Err("still rebalancing".into())
    }

    /// Sends to the group coordinator; after a connection error, it is looked up again.
    async fn send<R: Request>(
        &self,
        admin: &mut Admin,
        coordinator: &str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, String> {
        let sent = admin.send(coordinator, request, version).await;
        sent.map_err(|e| {
            self.membership.borrow_mut().coordinator = None;
            e.to_string()
        })
    }

    /// What a group error means for the member: a fenced member id is dropped, a moved
    /// coordinator looked up again.
    fn group_error(&self, what: &str, error: ResponseError) -> String {
        let mut m = self.membership.borrow_mut();
        match error {
            ResponseError::UnknownMemberId | ResponseError::FencedInstanceId => m.member_id.clear(),
            ResponseError::NotCoordinator
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress => m.coordinator = None,
            _ => {}
        }
        format!("{what}: {error:?}")
    }

    /// One transaction: the chunk transformed into `sim-pipeline-out`, the next offsets
    /// committed with it. `Err` names the step that failed (the transaction is left open
    /// for the caller to end).
    async fn transaction(
        &self,
        admin: &mut Admin,
        producer: &mut Producer,
        chunk: &Chunk,
        member: &(i32, String),
    ) -> Result<(), String> {
        let shared = self.shared;
        let partitions: Vec<i32> = chunk.keys().copied().collect();
        if !transactions::add_partitions(admin, producer, OUTPUT_TOPIC, &partitions, shared).await {
            return Err("AddPartitionsToTxn failed".into());
        }
        for (partition, (values, _)) in chunk {
            let output: Vec<String> = values.iter().map(|v| transform(v)).collect();
            let written =
                transactions::produce(admin, producer, OUTPUT_TOPIC, *partition, &output, shared);
            if !written.await {
                return Err(format!("produce to {OUTPUT_TOPIC}-{partition} failed"));
            }
        }
        if let Some(fault) = self.fault_due(&[MemberFaultKind::PauseBeforeOffsets]) {
            self.pause(fault).await;
        }
        if !transactions::add_offsets(admin, producer, GROUP, shared).await {
            return Err("AddOffsetsToTxn failed".into());
        }
        self.commit_offsets(admin, producer, chunk, member).await?;
        let kinds = [MemberFaultKind::PauseBeforeEnd, MemberFaultKind::Crash];
        match self.fault_due(&kinds) {
            Some(fault) if fault.kind == MemberFaultKind::Crash => {
                // Its transaction stays open, offsets included, until the coordinator
                // times it out or the restarted member's InitProducerId ends it.
                *producer = Producer::new(&self.transactional_id(), TRANSACTION_TIMEOUT);
                {
                    let mut m = self.membership.borrow_mut();
                    m.coordinator = None;
                    m.member_id.clear();
                    m.generation = -1;
                    m.assigned.clear();
                }
                tokio::time::sleep(fault.down).await;
                return Err("restarted after a crash".into());
            }
            Some(fault) => self.pause(fault).await,
            None => {}
        }
        transactions::end(admin, producer, true, shared)
            .await
            .ok_or_else(|| "EndTxn (commit) failed, outcome unknown".to_string())
    }

    /// TxnOffsetCommit of the chunk's next offsets under the member's generation: a
    /// member fenced by a rebalance (KIP-447) is refused and rejoins.
    async fn commit_offsets(
        &self,
        admin: &mut Admin,
        producer: &Producer,
        chunk: &Chunk,
        (generation, member_id): &(i32, String),
    ) -> Result<(), String> {
        let (generation, member_id) = (*generation, member_id.clone());
        let mut coordinator = self.membership.borrow().coordinator.clone();
        let request = TxnOffsetCommitRequest::default()
            .with_transactional_id(producer.transactional_id())
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_producer_id(ProducerId(producer.producer_id))
            .with_producer_epoch(producer.producer_epoch)
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member_id))
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(
                    chunk
                        .iter()
                        .map(|(partition, (_, next))| {
                            TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(*partition)
                                .with_committed_offset(*next)
                                .with_committed_leader_epoch(-1)
                        })
                        .collect(),
                )]);
        let errors = |r: &kafka_protocol::messages::TxnOffsetCommitResponse| {
            first_error(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            )
        };
        let shared = self.shared;
        let what = "TxnOffsetCommit";
        let result = with_coordinator(
            admin,
            GROUP,
            &mut coordinator,
            shared,
            what,
            errors,
            &request,
            3,
        )
        .await;
        let mut m = self.membership.borrow_mut();
        m.coordinator = coordinator;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                if let Some(
                    ResponseError::IllegalGeneration
                    | ResponseError::UnknownMemberId
                    | ResponseError::FencedInstanceId
                    | ResponseError::RebalanceInProgress,
                ) = error
                {
                    m.rejoin = true;
                }
                let error = error.map_or("no answer in time".to_string(), |e| format!("{e:?}"));
                Err(format!("TxnOffsetCommit failed: {error}"))
            }
        }
    }
}

/// Up to [`MAX_RECORDS`] records of each partition from its position, below the high
/// watermark; partitions without new records (or whose fetch failed) left out.
async fn read_chunk(admin: &mut Admin, from: &BTreeMap<i32, i64>) -> Chunk {
    let mut chunk = Chunk::new();
    for (&partition, &offset) in from {
        let Some(data) = admin.fetch(TOPIC, partition, offset, 0).await else {
            continue;
        };
        let high_watermark = data.high_watermark;
        let mut values = Vec::new();
        let mut next = offset;
        for record in crate::workload::decode(data.records) {
            if record.offset < next || record.offset >= high_watermark {
                continue;
            }
            if values.len() == MAX_RECORDS {
                break;
            }
            values.push(value_of(&record));
            next = record.offset + 1;
        }
        if !values.is_empty() {
            chunk.insert(partition, (values, next));
        }
    }
    chunk
}

/// The group's committed offsets of `partitions` of `sim-events` (-1 where none), asked
/// with `require_stable`: a partition whose commit a transaction still holds is retried
/// until the transaction ends. `None` when the coordinator did not answer in time.
async fn committed(
    admin: &mut Admin,
    coordinator: &mut Option<String>,
    partitions: &[i32],
    shared: &Shared,
) -> Option<BTreeMap<i32, i64>> {
    let request = OffsetFetchRequest::default()
        .with_require_stable(true)
        .with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_indexes(partitions.to_vec())]))]);
    let errors = |r: &OffsetFetchResponse| {
        first_error(r.groups.iter().flat_map(|g| {
            g.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .chain(std::iter::once(g.error_code))
        }))
    };
    let what = "OffsetFetch (require_stable)";
    let response = with_coordinator(admin, GROUP, coordinator, shared, what, errors, &request, 8)
        .await
        .ok()?;
    let mut offsets: BTreeMap<i32, i64> = partitions.iter().map(|p| (*p, -1)).collect();
    for p in response
        .groups
        .iter()
        .flat_map(|g| g.topics.iter())
        .filter(|t| t.name.as_str() == TOPIC)
        .flat_map(|t| t.partitions.iter())
    {
        offsets.insert(p.partition_index, p.committed_offset);
    }
    Some(offsets)
}

/// This member's subscription, as a Kafka consumer writes it into JoinGroup.
fn subscription() -> Bytes {
    let subscription =
        ConsumerProtocolSubscription::default().with_topics(vec![StrBytes::from_static_str(TOPIC)]);
    versioned(&subscription)
}

/// The leader's range assignment: the partitions of `sim-events` in contiguous ranges
/// over the members that subscribe to it, in member id order (Kafka's RangeAssignor).
fn assign(members: &[JoinGroupResponseMember], partitions: i32) -> Vec<SyncGroupRequestAssignment> {
    let mut subscribed: Vec<&JoinGroupResponseMember> = members
        .iter()
        .filter(|m| {
            decode_versioned::<ConsumerProtocolSubscription>(m.metadata.clone())
                .is_some_and(|s| s.topics.iter().any(|t| t.as_str() == TOPIC))
        })
        .collect();
    subscribed.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let count = subscribed.len().max(1) as i32;
    let (each, extra) = (partitions / count, partitions % count);
    let mut assignments: Vec<SyncGroupRequestAssignment> = subscribed
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let i = i as i32;
            let start = i * each + i.min(extra);
            let length = each + i32::from(i < extra);
            let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
                AssignedPartitions::default()
                    .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partitions((start..start + length).collect()),
            ]);
            SyncGroupRequestAssignment::default()
                .with_member_id(m.member_id.clone())
                .with_assignment(versioned(&assignment))
        })
        .collect();
    // Members that do not subscribe get an empty assignment.
    for m in members {
        if !subscribed.iter().any(|s| s.member_id == m.member_id) {
            assignments.push(
                SyncGroupRequestAssignment::default()
                    .with_member_id(m.member_id.clone())
                    .with_assignment(versioned(&ConsumerProtocolAssignment::default())),
            );
        }
    }
    assignments
}

/// A consumer protocol message with its version in front (Kafka's
/// `MessageUtil.toVersionPrefixedBytes`).
fn versioned<M: Encodable>(message: &M) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(CONSUMER_PROTOCOL_VERSION);
    if message.encode(&mut buf, CONSUMER_PROTOCOL_VERSION).is_err() {
        // Our own small messages always encode; an empty one is what a bug would send.
        return Bytes::new();
    }
    buf.freeze()
}

/// A version-prefixed consumer protocol message; newer versions read as the newest this
/// crate knows (their new fields are tagged or trailing, as Kafka's clients read them).
fn decode_versioned<M: Decodable + Message>(mut bytes: Bytes) -> Option<M> {
    if bytes.remaining() < 2 {
        return None;
    }
    let version = bytes.get_i16();
    if version < M::VERSIONS.min {
        return None;
    }
    M::decode(&mut bytes, version.min(M::VERSIONS.max)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, metadata: Bytes) -> JoinGroupResponseMember {
        JoinGroupResponseMember::default()
            .with_member_id(StrBytes::from_string(id.to_string()))
            .with_metadata(metadata)
    }

    #[test]
    fn the_leader_assigns_ranges_in_member_id_order() {
        let other = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("elsewhere")]);
        let members = [
            member("m-b", subscription()),
            member("m-c", versioned(&other)),
            member("m-a", subscription()),
        ];
        let assigned: Vec<(String, Vec<i32>)> = assign(&members, 3)
            .into_iter()
            .map(|a| {
                let decoded =
                    decode_versioned::<ConsumerProtocolAssignment>(a.assignment).expect("decodes");
                let partitions = decoded
                    .assigned_partitions
                    .into_iter()
                    .flat_map(|t| t.partitions)
                    .collect();
                (a.member_id.to_string(), partitions)
            })
            .collect();
        assert_eq!(
            assigned,
            [
                ("m-a".to_string(), vec![0, 1]),
                ("m-b".to_string(), vec![2]),
                ("m-c".to_string(), vec![]),
            ]
        );
    }

    #[test]
    fn consumer_protocol_messages_carry_their_version() {
        let bytes = subscription();
        assert_eq!(&bytes[..2], &CONSUMER_PROTOCOL_VERSION.to_be_bytes());
        assert!(
            decode_versioned::<ConsumerProtocolSubscription>(Bytes::from_static(&[0])).is_none()
        );
    }
}
