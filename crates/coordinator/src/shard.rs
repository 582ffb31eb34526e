//! One `__consumer_offsets` partition's worth of groups and offsets, as a state machine.
//!
//! The runtime owns I/O and time. It calls an operation with `now_ms`, appends the
//! returned records to the partition, and only then delivers the returned answers:
//!
//! - Group operations (join, sync, leave, heartbeat, timers) change the in-memory group at
//!   once; their GroupMetadata records are the durable echo of that state.
//! - Offset and deletion operations only validate and return records; the state changes
//!   when the runtime hands the appended records back through [`GroupShard::apply_written`].
//!   So a commit is visible (and acknowledged) only once it is in the log.
//!
//! At startup the runtime replays the partition's log through [`GroupShard::replay`] and
//! calls [`GroupShard::finish_load`]. Parked JoinGroup and SyncGroup requests are named by
//! a [`Waiter`] the runtime chooses; their answers come back in [`Effects`].

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribeAssignment, DescribedGroup as ConsumerDescribedGroup,
    Member as DescribeMember, TopicPartitions as DescribeTopicPartitions,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as ConsumerGroupAssignment, TopicPartitions as HeartbeatTopicPartitions,
};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest, OffsetCommitResponse,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::consumer::{
    self, ConsumerGroup, ConsumerMember, MemberState, Partitions, TopicRegex, Topics,
};
use crate::group::{ClassicGroup, GroupState, JoinTimer, Member, Waiter};
use crate::records::{self, CoordinatorRecord, OffsetCommitValue, RecordKey};
use crate::GroupConfig;

/// What the request is, beyond its body: who sent it, with which version, and when.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub now_ms: i64,
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

/// Records to append, then answers to deliver once they are appended.
#[derive(Debug, Default)]
pub struct Effects {
    pub records: Vec<CoordinatorRecord>,
    pub join_replies: Vec<(Waiter, JoinGroupResponse)>,
    pub sync_replies: Vec<(Waiter, SyncGroupResponse)>,
    /// A leader's assignment whose GroupMetadata record is among `records`: if the append
    /// fails, the runtime calls [`GroupShard::assignment_write_failed`].
    pub assignment_written: Option<(String, i32)>,
}

impl Effects {
    fn join(&mut self, waiter: Waiter, response: JoinGroupResponse) {
        self.join_replies.push((waiter, response));
    }

    fn join_error(&mut self, waiter: Waiter, member_id: &str, error: ResponseError) {
        self.join(waiter, join_error(member_id, error));
    }

    fn sync_error(&mut self, waiter: Waiter, error: ResponseError) {
        self.sync_replies.push((
            waiter,
            SyncGroupResponse::default().with_error_code(error.code()),
        ));
    }
}

/// A committed offset as OffsetFetch returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedOffset {
    pub partition: i32,
    /// -1 when nothing is committed.
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// Kafka's state name ("Stable", "Empty", "Reconciling", ...).
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: &'static str,
}

pub struct GroupShard {
    config: GroupConfig,
    groups: BTreeMap<String, ClassicGroup>,
    /// KIP-848 groups (a group id names a classic or a consumer group, never both).
    consumer_groups: BTreeMap<String, ConsumerGroup>,
    /// group → (topic, partition) → committed offset.
    offsets: BTreeMap<String, BTreeMap<(String, i32), OffsetCommitValue>>,
    next_expiry_check_ms: i64,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn join_error(member_id: &str, error: ResponseError) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(error.code())
        .with_generation_id(-1)
        .with_member_id(s(member_id))
}

impl GroupShard {
    pub fn new(config: GroupConfig) -> Self {
        GroupShard {
            config,
            groups: BTreeMap::new(),
            consumer_groups: BTreeMap::new(),
            offsets: BTreeMap::new(),
            next_expiry_check_ms: 0,
        }
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    // ---- loading and applying records ----

    /// Replays one record of the partition's log (at load).
    pub fn replay(&mut self, record: &CoordinatorRecord, now_ms: i64) {
        self.apply(record, now_ms, true);
    }

    /// Applies records this shard returned, now that they are in the log.
    pub fn apply_written(&mut self, records: &[CoordinatorRecord], now_ms: i64) {
        for record in records {
            self.apply(record, now_ms, false);
        }
    }

    fn apply(&mut self, record: &CoordinatorRecord, now_ms: i64, loading: bool) {
        let key = match records::decode_key(&record.key) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!("skipping __consumer_offsets record: {e}");
                return;
            }
        };
        match key {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => match &record.value {
                Some(value) => match records::decode_offset_commit_value(value) {
                    Ok(value) => {
                        if !self.consumer_groups.contains_key(&group) {
                            self.groups
                                .entry(group.clone())
                                .or_insert_with(|| ClassicGroup::new(&group, now_ms));
                        }
                        self.offsets
                            .entry(group)
                            .or_default()
                            .insert((topic, partition), value);
                    }
                    Err(e) => tracing::warn!("skipping offset of group {group}: {e}"),
                },
                None => {
                    if let Some(offsets) = self.offsets.get_mut(&group) {
                        offsets.remove(&(topic, partition));
                        if offsets.is_empty() {
                            self.offsets.remove(&group);
                        }
                    }
                }
            },
            RecordKey::GroupMetadata { group } => match &record.value {
                // Live, the group in memory is ahead of its GroupMetadata records.
                Some(_) if !loading => {}
                Some(value) => match records::decode_group_metadata_value(value) {
                    Ok(value) => {
                        let loaded = ClassicGroup::from_record_value(&group, &value, now_ms);
                        self.groups.insert(group, loaded);
                    }
                    Err(e) => tracing::warn!("skipping metadata of group {group}: {e}"),
                },
                None => {
                    if let Some(mut g) = self.groups.remove(&group) {
                        g.transition(GroupState::Dead, now_ms);
                    }
                    self.consumer_groups.remove(&group);
                    self.offsets.remove(&group);
                }
            },
            RecordKey::Other(_) => {}
            RecordKey::ConsumerGroupMetadata { ref group }
            | RecordKey::ConsumerGroupPartitionMetadata { ref group }
            | RecordKey::ConsumerGroupMemberMetadata { ref group, .. }
            | RecordKey::ConsumerGroupTargetAssignmentMetadata { ref group }
            | RecordKey::ConsumerGroupTargetAssignmentMember { ref group, .. }
            | RecordKey::ConsumerGroupCurrentMemberAssignment { ref group, .. } => {
                let group = group.clone();
                let group_tombstone = matches!(key, RecordKey::ConsumerGroupMetadata { .. })
                    && record.value.is_none();
                if group_tombstone {
                    self.consumer_groups.remove(&group);
                    self.offsets.remove(&group);
                    return;
                }
                // Live, the group in memory is ahead of its records.
                if !loading {
                    return;
                }
                // A consumer group replaces a simple (offsets-only) classic group.
                self.groups.remove(&group);
                let g = self
                    .consumer_groups
                    .entry(group.clone())
                    .or_insert_with(|| ConsumerGroup::new(&group, now_ms));
                if let Err(e) = g.replay(&key, record.value.as_deref()) {
                    tracing::warn!("skipping record of consumer group {group}: {e}");
                }
            }
        }
    }

    /// After replay: every loaded member gets a full session to heartbeat again.
    pub fn finish_load(&mut self, now_ms: i64) {
        let session_ms = i64::from(self.config.consumer_session_timeout_ms);
        for group in self.consumer_groups.values_mut() {
            group.finish_load(now_ms, session_ms);
        }
        for group in self.groups.values_mut() {
            for member in group.members.values_mut() {
                member.heartbeat_deadline_ms = now_ms + i64::from(member.session_timeout_ms);
            }
        }
        self.next_expiry_check_ms = now_ms + self.config.offsets_retention_check_interval_ms;
    }

    // ---- JoinGroup ----

    pub fn join_group(
        &mut self,
        info: &RequestInfo,
        waiter: Waiter,
        request: &JoinGroupRequest,
        fresh_id: &str,
    ) -> Effects {
        let mut fx = Effects::default();
        let group_id = request.group_id.0.to_string();
        let member_id = request.member_id.to_string();
        if group_id.is_empty() {
            fx.join_error(waiter, &member_id, ResponseError::InvalidGroupId);
            return fx;
        }
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            fx.join_error(waiter, &member_id, ResponseError::InvalidSessionTimeout);
            return fx;
        }
        let is_unknown = member_id.is_empty();
        if let Some(cg) = self.consumer_groups.get(&group_id) {
            if !cg.members.is_empty() {
                fx.join_error(waiter, &member_id, ResponseError::InconsistentGroupProtocol);
                return fx;
            }
            // An empty consumer group becomes a classic one (its offsets stay).
            self.consumer_groups.remove(&group_id);
        }
        if !self.groups.contains_key(&group_id) {
            if !is_unknown {
                fx.join_error(waiter, &member_id, ResponseError::UnknownMemberId);
                return fx;
            }
            self.groups
                .insert(group_id.clone(), ClassicGroup::new(&group_id, info.now_ms));
        }
        let join = Join::from_request(info, request);
        let config = self.config.clone();
        let group = self.groups.get_mut(&group_id).expect("group exists");
        let mut ops = Ops {
            config: &config,
            now_ms: info.now_ms,
            fx: &mut fx,
        };
        if !ops.accept_joining_member(group, &member_id) {
            ops.remove_member(group, &member_id);
            ops.fx
                .join_error(waiter, "", ResponseError::GroupMaxSizeReached);
        } else if is_unknown {
            ops.join_new_member(group, info, waiter, join, fresh_id);
        } else {
            ops.join_existing_member(group, info, waiter, join, member_id);
        }
        fx
    }

    // ---- SyncGroup ----

    pub fn sync_group(
        &mut self,
        info: &RequestInfo,
        waiter: Waiter,
        request: &SyncGroupRequest,
    ) -> Effects {
        let mut fx = Effects::default();
        let group_id = request.group_id.0.to_string();
        let member_id = request.member_id.to_string();
        let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
        if group_id.is_empty() {
            fx.sync_error(waiter, ResponseError::InvalidGroupId);
            return fx;
        }
        let config = self.config.clone();
        let Some(group) = self.groups.get_mut(&group_id) else {
            fx.sync_error(waiter, ResponseError::UnknownMemberId);
            return fx;
        };
        if group.is(GroupState::Dead) {
            fx.sync_error(waiter, ResponseError::CoordinatorNotAvailable);
            return fx;
        }
        if let Err(e) = validate_member(group, &member_id, instance.as_deref()) {
            fx.sync_error(waiter, e);
            return fx;
        }
        if request.generation_id != group.generation_id {
            fx.sync_error(waiter, ResponseError::IllegalGeneration);
            return fx;
        }
        let type_mismatch = request
            .protocol_type
            .as_ref()
            .is_some_and(|t| group.protocol_type.as_deref() != Some(t.as_str()));
        let name_mismatch = request
            .protocol_name
            .as_ref()
            .is_some_and(|n| group.protocol_name.as_deref() != Some(n.as_str()));
        if type_mismatch || name_mismatch {
            fx.sync_error(waiter, ResponseError::InconsistentGroupProtocol);
            return fx;
        }
        let mut ops = Ops {
            config: &config,
            now_ms: info.now_ms,
            fx: &mut fx,
        };
        match group.state {
            GroupState::PreparingRebalance => ops
                .fx
                .sync_error(waiter, ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance => {
                let member = group.members.get_mut(&member_id).expect("validated");
                if let Some(old) = member.sync_waiter.replace(waiter) {
                    ops.fx.sync_error(old, ResponseError::RebalanceInProgress);
                }
                ops.remove_pending_sync(group, &member_id);
                if group.leader_id.as_deref() == Some(member_id.as_str()) {
                    let mut assignment: BTreeMap<String, Bytes> = request
                        .assignments
                        .iter()
                        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                        .collect();
                    for member in group.members.values_mut() {
                        member.assignment =
                            assignment.remove(&member.member_id).unwrap_or_default();
                    }
                    group.transition(GroupState::Stable, info.now_ms);
                    tracing::info!(
                        "assignment received from leader {member_id} for group {} generation {}",
                        group.group_id,
                        group.generation_id
                    );
                    ops.fx.records.push(records::group_metadata_record(
                        &group.group_id,
                        &group.to_record_value(),
                    ));
                    ops.fx.assignment_written = Some((group.group_id.clone(), group.generation_id));
                    ops.propagate_assignment(group, None);
                }
            }
            GroupState::Stable => {
                ops.remove_pending_sync(group, &member_id);
                let member = &group.members[&member_id];
                ops.fx.sync_replies.push((
                    waiter,
                    SyncGroupResponse::default()
                        .with_protocol_type(group.protocol_type.as_deref().map(s))
                        .with_protocol_name(group.protocol_name.as_deref().map(s))
                        .with_assignment(member.assignment.clone()),
                ));
            }
            GroupState::Empty | GroupState::Dead => {
                ops.fx.sync_error(waiter, ResponseError::UnknownMemberId)
            }
        }
        fx
    }

    /// The append of a leader's assignment failed: the members get the error and rejoin.
    pub fn assignment_write_failed(
        &mut self,
        group_id: &str,
        generation_id: i32,
        waiters: &[Waiter],
        error: ResponseError,
        now_ms: i64,
    ) -> Effects {
        let mut fx = Effects::default();
        for waiter in waiters {
            fx.sync_error(*waiter, error);
        }
        let config = self.config.clone();
        if let Some(group) = self.groups.get_mut(group_id) {
            if group.generation_id == generation_id && group.is(GroupState::Stable) {
                let mut ops = Ops {
                    config: &config,
                    now_ms,
                    fx: &mut fx,
                };
                for member in group.members.values_mut() {
                    member.assignment = Bytes::new();
                }
                ops.prepare_rebalance(group);
            }
        }
        fx
    }

    // ---- Heartbeat ----

    pub fn heartbeat(
        &mut self,
        info: &RequestInfo,
        request: &HeartbeatRequest,
    ) -> Result<(), ResponseError> {
        let group_id = request.group_id.0.to_string();
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let Some(group) = self.groups.get_mut(&group_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if group.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let member_id = request.member_id.to_string();
        let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
        validate_member(group, &member_id, instance.as_deref())?;
        if request.generation_id != group.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        let member = group.members.get_mut(&member_id).expect("validated");
        member.heartbeat_deadline_ms = info.now_ms + i64::from(member.session_timeout_ms);
        match group.state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Empty => Err(ResponseError::UnknownMemberId),
            _ => Ok(()),
        }
    }

    // ---- LeaveGroup ----

    /// Removes members, each named by member id and/or group.instance.id (KIP-345). Returns
    /// the top-level error and one response per member.
    pub fn leave_group(
        &mut self,
        info: &RequestInfo,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (Effects, Option<ResponseError>, Vec<MemberResponse>) {
        let mut fx = Effects::default();
        let respond = |(member_id, instance): &(String, Option<String>),
                       error: Option<ResponseError>| {
            MemberResponse::default()
                .with_member_id(s(member_id))
                .with_group_instance_id(instance.as_deref().map(s))
                .with_error_code(error.map_or(0, |e| e.code()))
        };
        if group_id.is_empty() {
            return (fx, Some(ResponseError::InvalidGroupId), vec![]);
        }
        let config = self.config.clone();
        let Some(group) = self.groups.get_mut(group_id) else {
            let responses = members
                .iter()
                .map(|m| respond(m, Some(ResponseError::UnknownMemberId)))
                .collect();
            return (fx, None, responses);
        };
        if group.is(GroupState::Dead) {
            return (fx, Some(ResponseError::CoordinatorNotAvailable), vec![]);
        }
        let mut ops = Ops {
            config: &config,
            now_ms: info.now_ms,
            fx: &mut fx,
        };
        let mut responses = Vec::with_capacity(members.len());
        let mut removed = 0;
        for m in members {
            let (member_id, instance) = m;
            let error = if member_id.is_empty() {
                match instance.as_ref().and_then(|i| group.static_members.get(i)) {
                    Some(current) => {
                        let current = current.clone();
                        ops.remove_member(group, &current);
                        None
                    }
                    None => Some(ResponseError::UnknownMemberId),
                }
            } else if group.pending_members.remove(member_id).is_some() {
                None
            } else {
                match validate_member(group, member_id, instance.as_deref()) {
                    Ok(()) => {
                        ops.remove_member(group, member_id);
                        None
                    }
                    Err(e) => Some(e),
                }
            };
            if error.is_none() {
                removed += 1;
            }
            responses.push(respond(m, error));
        }
        if removed > 0 {
            match group.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    ops.maybe_prepare_rebalance_or_complete_join(group)
                }
                GroupState::PreparingRebalance => ops.maybe_complete_join_phase(group),
                _ => {}
            }
        }
        (fx, None, responses)
    }

    // ---- timers ----

    /// The earliest time `tick` has something to do.
    pub fn next_deadline_ms(&self) -> i64 {
        self.groups
            .values()
            .filter_map(ClassicGroup::next_deadline_ms)
            .chain(
                self.consumer_groups
                    .values()
                    .filter_map(ConsumerGroup::next_deadline_ms),
            )
            .chain(std::iter::once(self.next_expiry_check_ms))
            .min()
            .expect("at least the expiry check")
    }

    /// Fires every timer due at `now_ms`: member sessions, pending member ids, the join and
    /// sync phases of rebalances, and offset expiry.
    pub fn tick(&mut self, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        let config = self.config.clone();
        let mut ops = Ops {
            config: &config,
            now_ms,
            fx: &mut fx,
        };
        for group in self.groups.values_mut() {
            if group.next_deadline_ms().is_none_or(|d| d > now_ms) {
                continue;
            }
            ops.fire_timers(group);
        }
        for (group_id, group) in self.consumer_groups.iter_mut() {
            if group.next_deadline_ms().is_none_or(|d| d > now_ms) {
                continue;
            }
            let before = group.clone();
            expire_consumer_members(group, now_ms);
            fx.records.extend(consumer::records_between(
                group_id,
                Some(&before),
                Some(group),
            ));
        }
        if now_ms >= self.next_expiry_check_ms {
            self.next_expiry_check_ms = now_ms + config.offsets_retention_check_interval_ms;
            let expired = self.expired_offset_records(now_ms);
            fx.records.extend(expired);
        }
        fx
    }

    /// Tombstones for offsets past offsets.retention.minutes, and for empty groups left with
    /// no offsets. Applied through `apply_written` once appended.
    fn expired_offset_records(&self, now_ms: i64) -> Vec<CoordinatorRecord> {
        let retention_ms = self.config.offsets_retention_ms;
        let mut out = Vec::new();
        for (group_id, group) in &self.groups {
            let offsets = self.offsets.get(group_id);
            let subscribed = group.subscription_topics();
            // Kafka's condition: simple groups from each commit; empty consumer groups from
            // when they became empty; stable consumer groups only for topics they dropped.
            let base: Box<dyn Fn(&OffsetCommitValue) -> i64> = match &group.protocol_type {
                None => Box::new(|v| v.commit_timestamp_ms),
                Some(_) if group.is(GroupState::Empty) => {
                    let since = group.state_timestamp_ms;
                    Box::new(move |v| {
                        if since >= 0 {
                            since
                        } else {
                            v.commit_timestamp_ms
                        }
                    })
                }
                Some(_) if group.is(GroupState::Stable) && subscribed.is_some() => {
                    Box::new(|v| v.commit_timestamp_ms)
                }
                Some(_) => continue,
            };
            let mut remaining = 0;
            for ((topic, partition), value) in offsets.into_iter().flatten() {
                if subscribed.as_ref().is_some_and(|t| t.contains(topic)) {
                    remaining += 1;
                    continue;
                }
                let expired = if value.expire_timestamp_ms >= 0 {
                    now_ms >= value.expire_timestamp_ms
                } else {
                    now_ms - base(value) >= retention_ms
                };
                if expired {
                    out.push(records::offset_commit_tombstone(
                        group_id, topic, *partition,
                    ));
                } else {
                    remaining += 1;
                }
            }
            if remaining == 0 && group.is(GroupState::Empty) && group.pending_members.is_empty() {
                out.push(records::group_metadata_tombstone(group_id));
            }
        }
        for (group_id, group) in &self.consumer_groups {
            if !group.members.is_empty() {
                continue;
            }
            let mut remaining = 0;
            for ((topic, partition), value) in self.offsets.get(group_id).into_iter().flatten() {
                let base = group.state_timestamp_ms.max(value.commit_timestamp_ms);
                if now_ms - base >= retention_ms {
                    out.push(records::offset_commit_tombstone(
                        group_id, topic, *partition,
                    ));
                } else {
                    remaining += 1;
                }
            }
            if remaining == 0 {
                out.extend(consumer::records_between(group_id, Some(group), None));
            }
        }
        out
    }

    // ---- offsets ----

    /// Validates a commit and returns the records to append and the response to send once
    /// they are appended (nothing changes here until `apply_written`).
    pub fn commit_offsets(
        &mut self,
        info: &RequestInfo,
        request: &OffsetCommitRequest,
    ) -> (Vec<CoordinatorRecord>, OffsetCommitResponse) {
        self.commit_offsets_as(info, request, false)
    }

    /// [`Self::commit_offsets`] for TxnOffsetCommit (as an OffsetCommit request), which
    /// Kafka validates more loosely: its member fields are optional, and a classic
    /// group's state is not enforced.
    pub fn txn_commit_offsets(
        &mut self,
        info: &RequestInfo,
        request: &OffsetCommitRequest,
    ) -> (Vec<CoordinatorRecord>, OffsetCommitResponse) {
        self.commit_offsets_as(info, request, true)
    }

    fn commit_offsets_as(
        &mut self,
        info: &RequestInfo,
        request: &OffsetCommitRequest,
        transactional: bool,
    ) -> (Vec<CoordinatorRecord>, OffsetCommitResponse) {
        let group_id = request.group_id.0.to_string();
        let error = self.validate_offset_commit(info, request, transactional);
        let mut out = Vec::new();
        let expire_timestamp_ms =
            if (2..=4).contains(&info.api_version) && request.retention_time_ms != -1 {
                info.now_ms.saturating_add(request.retention_time_ms)
            } else {
                -1
            };
        let topics = request
            .topics
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let metadata = p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default();
                        let code = if let Err(e) = error {
                            e.code()
                        } else if metadata.len() > self.config.offset_metadata_max_bytes {
                            ResponseError::OffsetMetadataTooLarge.code()
                        } else {
                            let value = OffsetCommitValue {
                                offset: p.committed_offset,
                                leader_epoch: p.committed_leader_epoch,
                                metadata,
                                commit_timestamp_ms: info.now_ms,
                                expire_timestamp_ms,
                            };
                            out.push(records::offset_commit_record(
                                &group_id,
                                topic.name.as_str(),
                                p.partition_index,
                                &value,
                            ));
                            0
                        };
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        (out, OffsetCommitResponse::default().with_topics(topics))
    }

    fn validate_offset_commit(
        &mut self,
        info: &RequestInfo,
        request: &OffsetCommitRequest,
        transactional: bool,
    ) -> Result<(), ResponseError> {
        let group_id = request.group_id.0.to_string();
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let generation = request.generation_id_or_member_epoch;
        let member_id = request.member_id.to_string();
        let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
        if let Some(group) = self.consumer_groups.get(&group_id) {
            if generation < 0 && group.members.is_empty() {
                return Ok(());
            }
            // TxnOffsetCommit's member fields are optional: checked only when given.
            if transactional && generation < 0 && member_id.is_empty() && instance.is_none() {
                return Ok(());
            }
            let member = group
                .members
                .get(&member_id)
                .ok_or(ResponseError::UnknownMemberId)?;
            if !transactional && info.api_version < 9 {
                return Err(ResponseError::UnsupportedVersion);
            }
            if generation != member.member_epoch {
                return Err(ResponseError::StaleMemberEpoch);
            }
            return Ok(());
        }
        let group = match self.groups.get(&group_id) {
            Some(group) => group,
            None if generation < 0 => {
                // A "simple" group: assign()-consumers and admin tools commit without joining.
                self.groups
                    .insert(group_id.clone(), ClassicGroup::new(&group_id, info.now_ms));
                return Ok(());
            }
            None if info.api_version >= 9 => return Err(ResponseError::GroupIdNotFound),
            None => return Err(ResponseError::IllegalGeneration),
        };
        if group.is(GroupState::Dead) {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if generation < 0 && group.is(GroupState::Empty) {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance.is_some() {
            validate_member(group, &member_id, instance.as_deref())?;
            if generation != group.generation_id {
                return Err(ResponseError::IllegalGeneration);
            }
        } else if !transactional && !group.is(GroupState::Empty) {
            // Without member id and generation, only an empty group takes commits; not so
            // for TxnOffsetCommit, whose older versions carry neither.
            return Err(ResponseError::UnknownMemberId);
        }
        // A member that has its generation but not yet its assignment retries; Kafka does
        // not enforce the group's state on transactional commits.
        if !transactional && group.is(GroupState::CompletingRebalance) {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Committed offsets: of the given partitions (-1 where nothing is committed), or of
    /// every partition the group has committed when `topics` is `None`.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<(String, Vec<FetchedOffset>)>, ResponseError> {
        self.fetch_offsets_as(group_id, None, topics)
    }

    /// OffsetFetch v9+: a KIP-848 member names itself and its epoch, which must be current.
    pub fn fetch_offsets_as(
        &self,
        group_id: &str,
        member: Option<(&str, i32)>,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<(String, Vec<FetchedOffset>)>, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if let (Some(group), Some((member_id, epoch))) =
            (self.consumer_groups.get(group_id), member)
        {
            if epoch >= 0 || !member_id.is_empty() {
                let m = group
                    .members
                    .get(member_id)
                    .ok_or(ResponseError::UnknownMemberId)?;
                if m.member_epoch != epoch {
                    return Err(ResponseError::StaleMemberEpoch);
                }
            }
        }
        let committed = self.offsets.get(group_id);
        let fetched = |topic: &str, partition: i32| {
            let value = committed.and_then(|o| o.get(&(topic.to_string(), partition)));
            FetchedOffset {
                partition,
                offset: value.map_or(-1, |v| v.offset),
                leader_epoch: value.map_or(-1, |v| v.leader_epoch),
                metadata: value.map(|v| v.metadata.clone()).unwrap_or_default(),
            }
        };
        Ok(match topics {
            Some(topics) => topics
                .iter()
                .map(|(topic, partitions)| {
                    let p = partitions.iter().map(|p| fetched(topic, *p)).collect();
                    (topic.clone(), p)
                })
                .collect(),
            None => {
                let mut out: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
                for (topic, partition) in committed.into_iter().flat_map(|o| o.keys()) {
                    match out.last_mut() {
                        Some((t, p)) if t == topic => p.push(fetched(topic, *partition)),
                        _ => out.push((topic.clone(), vec![fetched(topic, *partition)])),
                    }
                }
                out
            }
        })
    }

    /// OffsetDelete: tombstones for the given partitions unless the group still consumes
    /// the topic. Returns the group-level error or per-partition errors with the records.
    #[allow(clippy::type_complexity)]
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<
        (
            Vec<CoordinatorRecord>,
            Vec<(String, Vec<(i32, Option<ResponseError>)>)>,
        ),
        ResponseError,
    > {
        let subscribed: BTreeSet<String> = if let Some(cg) = self.consumer_groups.get(group_id) {
            cg.members
                .values()
                .flat_map(|m| m.subscribed.iter().chain(&m.regex_topics))
                .cloned()
                .collect()
        } else {
            let group = match self.groups.get(group_id) {
                Some(g) if !g.is(GroupState::Dead) => g,
                _ => return Err(ResponseError::GroupIdNotFound),
            };
            if !group.is(GroupState::Empty) && group.protocol_type.as_deref() != Some("consumer") {
                return Err(ResponseError::NonEmptyGroup);
            }
            if group.is(GroupState::Empty) {
                BTreeSet::new()
            } else {
                group.subscription_topics().unwrap_or_default()
            }
        };
        let committed = self.offsets.get(group_id);
        let mut out = Vec::new();
        let results = topics
            .iter()
            .map(|(topic, partitions)| {
                let errors = partitions
                    .iter()
                    .map(|p| {
                        if subscribed.contains(topic) {
                            return (*p, Some(ResponseError::GroupSubscribedToTopic));
                        }
                        if committed.is_some_and(|c| c.contains_key(&(topic.clone(), *p))) {
                            out.push(records::offset_commit_tombstone(group_id, topic, *p));
                        }
                        (*p, None)
                    })
                    .collect();
                (topic.clone(), errors)
            })
            .collect();
        Ok((out, results))
    }

    /// DeleteGroups: tombstones for each deletable group's offsets and metadata.
    pub fn delete_groups(
        &self,
        group_ids: &[String],
    ) -> (Vec<CoordinatorRecord>, Vec<(String, Option<ResponseError>)>) {
        let mut out = Vec::new();
        let results = group_ids
            .iter()
            .map(|group_id| {
                let consumer_group_empty = self
                    .consumer_groups
                    .get(group_id)
                    .map(|g| g.members.is_empty());
                let error = match self.groups.get(group_id) {
                    None if consumer_group_empty == Some(false) => {
                        Some(ResponseError::NonEmptyGroup)
                    }
                    None if consumer_group_empty == Some(true) => {
                        for (topic, partition) in self
                            .offsets
                            .get(group_id)
                            .into_iter()
                            .flat_map(|o| o.keys())
                        {
                            out.push(records::offset_commit_tombstone(
                                group_id, topic, *partition,
                            ));
                        }
                        out.extend(consumer::records_between(
                            group_id,
                            self.consumer_groups.get(group_id),
                            None,
                        ));
                        None
                    }
                    None => Some(ResponseError::GroupIdNotFound),
                    Some(g) if g.is(GroupState::Dead) => Some(ResponseError::GroupIdNotFound),
                    Some(g) if !g.is(GroupState::Empty) => Some(ResponseError::NonEmptyGroup),
                    Some(_) => {
                        for (topic, partition) in self
                            .offsets
                            .get(group_id)
                            .into_iter()
                            .flat_map(|o| o.keys())
                        {
                            out.push(records::offset_commit_tombstone(
                                group_id, topic, *partition,
                            ));
                        }
                        out.push(records::group_metadata_tombstone(group_id));
                        None
                    }
                };
                (group_id.clone(), error)
            })
            .collect();
        (out, results)
    }

    // ---- listing and describing ----

    pub fn list_groups(&self) -> Vec<ListedGroup> {
        self.groups
            .values()
            .filter(|g| !g.is(GroupState::Dead))
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name(),
                group_type: "classic",
            })
            .chain(self.consumer_groups.values().map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: "consumer".into(),
                state: g.state_name(),
                group_type: "consumer",
            }))
            .collect()
    }

    /// DescribeGroups for one group; an unknown group is reported Dead, with
    /// GROUP_ID_NOT_FOUND from version 6 on.
    pub fn describe_group(&self, group_id: &str, api_version: i16) -> DescribedGroup {
        let described = DescribedGroup::default()
            .with_group_id(GroupId(s(group_id)))
            .with_authorized_operations(i32::MIN);
        let Some(group) = self
            .groups
            .get(group_id)
            .filter(|g| !g.is(GroupState::Dead))
        else {
            let described = described.with_group_state(s(GroupState::Dead.name()));
            if api_version >= 6 {
                return described
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(s(&format!("Group {group_id} not found."))));
            }
            return described;
        };
        let stable = group.is(GroupState::Stable);
        let protocol = group.protocol_name.clone().unwrap_or_default();
        let members = group
            .members
            .values()
            .map(|m| {
                let member = DescribedGroupMember::default()
                    .with_member_id(s(&m.member_id))
                    .with_group_instance_id(m.group_instance_id.as_deref().map(s))
                    .with_client_id(s(&m.client_id))
                    .with_client_host(s(&m.client_host));
                if stable {
                    member
                        .with_member_metadata(m.metadata(&protocol).cloned().unwrap_or_default())
                        .with_member_assignment(m.assignment.clone())
                } else {
                    member
                }
            })
            .collect();
        described
            .with_group_state(s(group.state.name()))
            .with_protocol_type(s(group.protocol_type.as_deref().unwrap_or("")))
            .with_protocol_data(s(if stable { &protocol } else { "" }))
            .with_members(members)
    }

    /// The state of a group, if it exists (for tests and tools).
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.groups.get(group_id).map(|g| g.state)
    }

    pub fn group_generation(&self, group_id: &str) -> Option<i32> {
        self.groups.get(group_id).map(|g| g.generation_id)
    }
}

fn validate_member(
    group: &ClassicGroup,
    member_id: &str,
    instance: Option<&str>,
) -> Result<(), ResponseError> {
    if let Some(instance) = instance {
        match group.static_members.get(instance) {
            None => return Err(ResponseError::UnknownMemberId),
            Some(current) if current != member_id => return Err(ResponseError::FencedInstanceId),
            Some(_) => {}
        }
    }
    if !group.members.contains_key(member_id) {
        return Err(ResponseError::UnknownMemberId);
    }
    Ok(())
}

/// A JoinGroup request's contents, decoded once.
struct Join {
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    group_instance_id: Option<String>,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
}

impl Join {
    fn from_request(info: &RequestInfo, request: &JoinGroupRequest) -> Self {
        Join {
            session_timeout_ms: request.session_timeout_ms,
            // v0 has no rebalance timeout: the session timeout serves as both.
            rebalance_timeout_ms: if info.api_version == 0 || request.rebalance_timeout_ms < 0 {
                request.session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            },
            group_instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
        }
    }
}

/// The transitions of a classic group, with the config, the time and the effects at hand.
struct Ops<'a> {
    config: &'a crate::GroupConfig,
    now_ms: i64,
    fx: &'a mut Effects,
}

impl Ops<'_> {
    fn accept_joining_member(&self, group: &ClassicGroup, member_id: &str) -> bool {
        let max = self.config.max_size as usize;
        match group.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                group
                    .members
                    .get(member_id)
                    .is_some_and(|m| m.join_waiter.is_some())
                    || group.awaiting_join_count() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.members.contains_key(member_id) || group.members.len() < max
            }
        }
    }

    fn join_new_member(
        &mut self,
        group: &mut ClassicGroup,
        info: &RequestInfo,
        waiter: Waiter,
        join: Join,
        fresh_id: &str,
    ) {
        if group.is(GroupState::Dead) {
            return self
                .fx
                .join_error(waiter, "", ResponseError::CoordinatorNotAvailable);
        }
        if !group.supports_protocols(&join.protocol_type, &join.protocols) {
            return self
                .fx
                .join_error(waiter, "", ResponseError::InconsistentGroupProtocol);
        }
        let prefix = join.group_instance_id.as_deref().unwrap_or(&info.client_id);
        let new_member_id = format!("{prefix}-{fresh_id}");
        match join.group_instance_id.clone() {
            Some(instance) => match group.static_members.get(&instance).cloned() {
                Some(old_member_id) => self.update_static_member(
                    group,
                    info,
                    waiter,
                    join,
                    &old_member_id,
                    &new_member_id,
                ),
                None => self.add_member_then_rebalance(group, info, waiter, join, new_member_id),
            },
            None if info.api_version >= 4 => {
                // KIP-394: hand out an id and have the member come back with it.
                group.pending_members.insert(
                    new_member_id.clone(),
                    self.now_ms + i64::from(join.session_timeout_ms),
                );
                self.fx
                    .join_error(waiter, &new_member_id, ResponseError::MemberIdRequired);
            }
            None => self.add_member_then_rebalance(group, info, waiter, join, new_member_id),
        }
    }

    fn join_existing_member(
        &mut self,
        group: &mut ClassicGroup,
        info: &RequestInfo,
        waiter: Waiter,
        join: Join,
        member_id: String,
    ) {
        if group.is(GroupState::Dead) {
            return self
                .fx
                .join_error(waiter, &member_id, ResponseError::CoordinatorNotAvailable);
        }
        if !group.supports_protocols(&join.protocol_type, &join.protocols) {
            return self.fx.join_error(
                waiter,
                &member_id,
                ResponseError::InconsistentGroupProtocol,
            );
        }
        if group.pending_members.contains_key(&member_id) {
            return self.add_member_then_rebalance(group, info, waiter, join, member_id);
        }
        if let Err(e) = validate_member(group, &member_id, join.group_instance_id.as_deref()) {
            return self.fx.join_error(waiter, &member_id, e);
        }
        let is_leader = group.leader_id.as_deref() == Some(member_id.as_str());
        let matches = group.members[&member_id].matches(&join.protocols);
        match group.state {
            GroupState::PreparingRebalance => {
                self.update_member(group, &member_id, join, waiter);
                self.maybe_prepare_rebalance_or_complete_join(group);
            }
            GroupState::CompletingRebalance if matches => {
                // The member missed its JoinGroup answer: send the current generation again.
                let response = self.current_generation_response(group, &member_id, is_leader);
                self.fx.join(waiter, response);
            }
            GroupState::Stable if !is_leader && matches => {
                let response = self.current_generation_response(group, &member_id, false);
                self.fx.join(waiter, response);
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(group, &member_id, join, waiter);
                self.maybe_prepare_rebalance_or_complete_join(group);
            }
            GroupState::Empty | GroupState::Dead => {
                self.fx
                    .join_error(waiter, &member_id, ResponseError::UnknownMemberId)
            }
        }
    }

    fn current_generation_response(
        &self,
        group: &ClassicGroup,
        member_id: &str,
        with_members: bool,
    ) -> JoinGroupResponse {
        JoinGroupResponse::default()
            .with_members(if with_members {
                member_list(group)
            } else {
                vec![]
            })
            .with_member_id(s(member_id))
            .with_generation_id(group.generation_id)
            .with_protocol_name(group.protocol_name.as_deref().map(s))
            .with_protocol_type(group.protocol_type.as_deref().map(s))
            .with_leader(s(group.leader_id.as_deref().unwrap_or("")))
    }

    fn update_member(
        &mut self,
        group: &mut ClassicGroup,
        member_id: &str,
        join: Join,
        waiter: Waiter,
    ) {
        let member = group.members.get_mut(member_id).expect("member exists");
        member.protocols = join.protocols;
        member.rebalance_timeout_ms = join.rebalance_timeout_ms;
        member.session_timeout_ms = join.session_timeout_ms;
        if let Some(old) = member.join_waiter.replace(waiter) {
            self.fx
                .join_error(old, member_id, ResponseError::RebalanceInProgress);
        }
    }

    fn add_member_then_rebalance(
        &mut self,
        group: &mut ClassicGroup,
        info: &RequestInfo,
        waiter: Waiter,
        join: Join,
        member_id: String,
    ) {
        let member = Member {
            member_id,
            group_instance_id: join.group_instance_id,
            client_id: info.client_id.clone(),
            client_host: info.client_host.clone(),
            rebalance_timeout_ms: join.rebalance_timeout_ms,
            session_timeout_ms: join.session_timeout_ms,
            protocol_type: join.protocol_type,
            protocols: join.protocols,
            assignment: Bytes::new(),
            join_waiter: Some(waiter),
            sync_waiter: None,
            is_new: true,
            // A new member cannot heartbeat before its first answer: it gets the (long)
            // new-member join timeout instead of its session timeout.
            heartbeat_deadline_ms: self.now_ms + self.config.new_member_join_timeout_ms,
        };
        if group.is(GroupState::PreparingRebalance) && group.previous_state == GroupState::Empty {
            group.new_member_added = true;
        }
        group.add_member(member);
        self.maybe_prepare_rebalance_or_complete_join(group);
    }

    fn update_static_member(
        &mut self,
        group: &mut ClassicGroup,
        info: &RequestInfo,
        waiter: Waiter,
        join: Join,
        old_member_id: &str,
        new_member_id: &str,
    ) {
        let old_leader = group.leader_id.clone();
        let mut member = group
            .members
            .remove(old_member_id)
            .expect("static member exists");
        // The old incarnation's parked requests are fenced.
        if let Some(w) = member.join_waiter.take() {
            self.fx
                .join_error(w, old_member_id, ResponseError::FencedInstanceId);
        }
        if let Some(w) = member.sync_waiter.take() {
            self.fx.sync_error(w, ResponseError::FencedInstanceId);
        }
        let old_protocol_pending = group.pending_sync.remove(old_member_id);
        member.member_id = new_member_id.to_string();
        member.heartbeat_deadline_ms = self.now_ms + i64::from(join.session_timeout_ms);
        member.protocols = join.protocols;
        member.rebalance_timeout_ms = join.rebalance_timeout_ms;
        member.session_timeout_ms = join.session_timeout_ms;
        member.join_waiter = Some(waiter);
        let instance = join.group_instance_id.expect("static member");
        group
            .static_members
            .insert(instance, new_member_id.to_string());
        if old_leader.as_deref() == Some(old_member_id) {
            group.leader_id = Some(new_member_id.to_string());
        }
        if old_protocol_pending {
            group.pending_sync.insert(new_member_id.to_string());
        }
        group.members.insert(new_member_id.to_string(), member);
        match group.state {
            GroupState::Stable => {
                if group.protocol_name == group.select_protocol() {
                    // Same protocol: persist the new member id and hand back the current
                    // assignment without a rebalance.
                    self.fx.records.push(records::group_metadata_record(
                        &group.group_id,
                        &group.to_record_value(),
                    ));
                    let is_leader = group.leader_id.as_deref() == Some(new_member_id);
                    let member = group.members.get_mut(new_member_id).expect("inserted");
                    member.join_waiter = None;
                    let mut response =
                        self.current_generation_response(group, new_member_id, false);
                    if info.api_version >= 9 {
                        // The leader need not assign again (KIP-814).
                        if is_leader {
                            response.members = member_list(group);
                        }
                        response.skip_assignment = is_leader;
                    } else {
                        response.leader = s(old_leader.as_deref().unwrap_or(""));
                    }
                    self.fx.join(waiter, response);
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(group);
                }
            }
            GroupState::CompletingRebalance => self.prepare_rebalance(group),
            _ => self.maybe_complete_join_phase(group),
        }
    }

    fn maybe_prepare_rebalance_or_complete_join(&mut self, group: &mut ClassicGroup) {
        if group.can_rebalance() {
            self.prepare_rebalance(group);
        } else {
            self.maybe_complete_join_phase(group);
        }
    }

    fn maybe_complete_join_phase(&mut self, group: &mut ClassicGroup) {
        if group.is(GroupState::PreparingRebalance)
            && group.previous_state != GroupState::Empty
            && group.has_all_members_joined()
        {
            self.complete_join(group);
        }
    }

    fn prepare_rebalance(&mut self, group: &mut ClassicGroup) {
        if group.is(GroupState::CompletingRebalance) {
            for member in group.members.values_mut() {
                member.assignment = Bytes::new();
            }
            self.propagate_assignment(group, Some(ResponseError::RebalanceInProgress));
        }
        group.pending_sync.clear();
        group.sync_deadline = None;
        let initial = group.is(GroupState::Empty);
        // Rebalances are what operators ask about: log them as Kafka's coordinator does.
        tracing::info!(
            "preparing to rebalance group {} in state {:?} with old generation {} ({} members)",
            group.group_id,
            group.state,
            group.generation_id,
            group.members.len()
        );
        if initial {
            let delay_ms = i64::from(self.config.initial_rebalance_delay_ms);
            group.join_timer = Some(JoinTimer::InitialDelay {
                deadline_ms: self.now_ms + delay_ms,
                delay_ms,
                remaining_ms: (group.rebalance_timeout_ms() - delay_ms).max(0),
            });
        }
        group.transition(GroupState::PreparingRebalance, self.now_ms);
        if !initial {
            if group.has_all_members_joined() {
                self.complete_join(group);
            } else {
                group.join_timer = Some(JoinTimer::Rebalance {
                    deadline_ms: self.now_ms + group.rebalance_timeout_ms(),
                });
            }
        }
    }

    fn complete_join(&mut self, group: &mut ClassicGroup) {
        group.join_timer = None;
        let not_rejoined: Vec<String> = group
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in not_rejoined {
            self.remove_member(group, &member_id);
        }
        if group.is(GroupState::Dead) {
            return;
        }
        if !group.maybe_elect_joined_leader() && !group.members.is_empty() {
            // Only static members that have not rejoined are left: wait for them.
            group.join_timer = Some(JoinTimer::Rebalance {
                deadline_ms: self.now_ms + group.rebalance_timeout_ms(),
            });
            return;
        }
        group.generation_id += 1;
        if group.members.is_empty() {
            group.protocol_name = None;
            group.leader_id = None;
            group.transition(GroupState::Empty, self.now_ms);
            self.fx.records.push(records::group_metadata_record(
                &group.group_id,
                &group.to_record_value(),
            ));
            return;
        }
        group.protocol_name = group.select_protocol();
        group.transition(GroupState::CompletingRebalance, self.now_ms);
        tracing::info!(
            "stabilized group {} generation {} with {} members (leader {})",
            group.group_id,
            group.generation_id,
            group.members.len(),
            group.leader_id.as_deref().unwrap_or("")
        );
        let leader_members = member_list(group);
        let leader = group.leader_id.clone().unwrap_or_default();
        for member in group.members.values_mut() {
            let is_leader = member.member_id == leader;
            let response = JoinGroupResponse::default()
                .with_members(if is_leader {
                    leader_members.clone()
                } else {
                    vec![]
                })
                .with_member_id(s(&member.member_id))
                .with_generation_id(group.generation_id)
                .with_protocol_name(group.protocol_name.as_deref().map(s))
                .with_protocol_type(group.protocol_type.as_deref().map(s))
                .with_leader(s(&leader));
            if let Some(waiter) = member.join_waiter.take() {
                self.fx.join(waiter, response);
            }
            member.heartbeat_deadline_ms = self.now_ms + i64::from(member.session_timeout_ms);
            member.is_new = false;
            group.pending_sync.insert(member.member_id.clone());
        }
        group.sync_deadline = Some((
            self.now_ms + group.rebalance_timeout_ms(),
            group.generation_id,
        ));
    }

    /// Answers every parked SyncGroup: the member's assignment, or `error`.
    fn propagate_assignment(&mut self, group: &mut ClassicGroup, error: Option<ResponseError>) {
        for member in group.members.values_mut() {
            let Some(waiter) = member.sync_waiter.take() else {
                continue;
            };
            let response = match error {
                Some(e) => SyncGroupResponse::default().with_error_code(e.code()),
                None => SyncGroupResponse::default()
                    .with_protocol_type(group.protocol_type.as_deref().map(s))
                    .with_protocol_name(group.protocol_name.as_deref().map(s))
                    .with_assignment(member.assignment.clone()),
            };
            self.fx.sync_replies.push((waiter, response));
            member.heartbeat_deadline_ms = self.now_ms + i64::from(member.session_timeout_ms);
        }
    }

    fn remove_pending_sync(&mut self, group: &mut ClassicGroup, member_id: &str) {
        group.pending_sync.remove(member_id);
        if group.pending_sync.is_empty() {
            group.sync_deadline = None;
        }
    }

    /// Removes a member, answering its parked requests with UNKNOWN_MEMBER_ID so that a
    /// client still alive rejoins.
    fn remove_member(&mut self, group: &mut ClassicGroup, member_id: &str) {
        if let Some(member) = group.remove_member(member_id) {
            if let Some(w) = member.join_waiter {
                self.fx.join_error(w, "", ResponseError::UnknownMemberId);
            }
            if let Some(w) = member.sync_waiter {
                self.fx.sync_error(w, ResponseError::UnknownMemberId);
            }
        }
    }

    fn fire_timers(&mut self, group: &mut ClassicGroup) {
        let now = self.now_ms;
        let expired_pending: Vec<String> = group
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for member_id in expired_pending {
            tracing::info!(
                "pending member {member_id} in group {} removed: it did not rejoin within its session timeout",
                group.group_id
            );
            group.pending_members.remove(&member_id);
            if group.is(GroupState::PreparingRebalance) && group.has_all_members_joined() {
                self.complete_join(group);
            }
        }
        let due: Vec<String> = group
            .members
            .values()
            .filter(|m| m.heartbeat_deadline_ms <= now)
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in due {
            self.expire_member(group, &member_id);
        }
        if let Some(timer) = group.join_timer.filter(|t| t.deadline_ms() <= now) {
            match timer {
                JoinTimer::InitialDelay {
                    delay_ms,
                    remaining_ms,
                    ..
                } if group.new_member_added && remaining_ms != 0 => {
                    group.new_member_added = false;
                    let next_delay = delay_ms.min(remaining_ms);
                    group.join_timer = Some(JoinTimer::InitialDelay {
                        deadline_ms: now + next_delay,
                        delay_ms: next_delay,
                        remaining_ms: (remaining_ms - delay_ms).max(0),
                    });
                }
                _ => {
                    group.new_member_added = false;
                    self.complete_join(group);
                }
            }
        }
        if let Some((deadline, generation)) = group.sync_deadline {
            if deadline <= now {
                group.sync_deadline = None;
                let syncing = matches!(
                    group.state,
                    GroupState::CompletingRebalance | GroupState::Stable
                );
                if generation == group.generation_id && syncing && !group.pending_sync.is_empty() {
                    let missing: Vec<String> = group.pending_sync.iter().cloned().collect();
                    tracing::info!(
                        "group {} generation {}: members {missing:?} sent no SyncGroup within the rebalance timeout, removing them",
                        group.group_id,
                        group.generation_id
                    );
                    for member_id in missing {
                        self.remove_member(group, &member_id);
                    }
                    self.prepare_rebalance(group);
                }
            }
        }
    }

    fn expire_member(&mut self, group: &mut ClassicGroup, member_id: &str) {
        let member = group.members.get_mut(member_id).expect("due member exists");
        let awaiting = member.join_waiter.is_some() || member.sync_waiter.is_some();
        if awaiting && !member.is_new {
            // A parked member cannot heartbeat; the rebalance timeouts govern it.
            member.heartbeat_deadline_ms = self.now_ms + i64::from(member.session_timeout_ms);
            return;
        }
        tracing::info!(
            "member {member_id} in group {} has failed (no heartbeat within its session timeout), removing it",
            group.group_id
        );
        self.remove_member(group, member_id);
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(group)
            }
            GroupState::PreparingRebalance if group.has_all_members_joined() => {
                self.complete_join(group)
            }
            _ => {}
        }
    }
}

fn member_list(group: &ClassicGroup) -> Vec<JoinGroupResponseMember> {
    let protocol = group
        .protocol_name
        .clone()
        .or_else(|| group.select_protocol())
        .unwrap_or_default();
    group
        .members
        .values()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(s(&m.member_id))
                .with_group_instance_id(m.group_instance_id.as_deref().map(s))
                .with_metadata(m.metadata(&protocol).cloned().unwrap_or_default())
        })
        .collect()
}

/// Removes consumer-group members whose session or revocation deadline passed; the group
/// epoch moves and the target is recomputed so that the others pick up their partitions.
fn expire_consumer_members(group: &mut ConsumerGroup, now_ms: i64) {
    let expired: Vec<String> = group
        .members
        .values()
        .filter(|m| {
            m.session_deadline_ms <= now_ms || m.revocation_deadline_ms.is_some_and(|d| d <= now_ms)
        })
        .map(|m| m.member_id.clone())
        .collect();
    if expired.is_empty() {
        return;
    }
    for member_id in expired {
        group.members.remove(&member_id);
        group.target.remove(&member_id);
    }
    group.group_epoch += 1;
    if group.members.is_empty() {
        group.state_timestamp_ms = now_ms;
    }
    group.compute_target();
}

type HeartbeatError = (ResponseError, Option<String>);

fn invalid(message: &str) -> HeartbeatError {
    (ResponseError::InvalidRequest, Some(message.to_string()))
}

impl GroupShard {
    /// ConsumerGroupHeartbeat (KIP-848): join (epoch 0), heartbeat, leave (-1, or -2 for a
    /// static member). `topics` looks a topic up in the metadata image. Returns the records
    /// that persist the change (Kafka's ConsumerGroup* records) with the answer to send
    /// once they are appended.
    pub fn consumer_heartbeat(
        &mut self,
        info: &RequestInfo,
        request: &ConsumerGroupHeartbeatRequest,
        fresh_id: &str,
        topics: &dyn Topics,
    ) -> (Vec<CoordinatorRecord>, ConsumerGroupHeartbeatResponse) {
        let group_id = request.group_id.0.to_string();
        let before = self.consumer_groups.get(&group_id).cloned();
        let response = match self.consumer_heartbeat_inner(info, request, fresh_id, topics) {
            Ok(response) => response,
            Err((error, message)) => ConsumerGroupHeartbeatResponse::default()
                .with_error_code(error.code())
                .with_error_message(message.map(|m| s(&m))),
        };
        let after = self.consumer_groups.get(&group_id);
        let records = consumer::records_between(&group_id, before.as_ref(), after);
        (records, response)
    }

    fn consumer_heartbeat_inner(
        &mut self,
        info: &RequestInfo,
        request: &ConsumerGroupHeartbeatRequest,
        fresh_id: &str,
        topics: &dyn Topics,
    ) -> Result<ConsumerGroupHeartbeatResponse, HeartbeatError> {
        let group_id = request.group_id.0.to_string();
        let epoch = request.member_epoch;
        let instance_id = request.instance_id.as_ref().map(|i| i.to_string());
        let owned: Option<Partitions> = request.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .filter(|tp| !tp.partitions.is_empty())
                .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
                .collect()
        });
        // Kafka's request validation.
        if group_id.is_empty() {
            return Err(invalid("GroupId can't be empty."));
        }
        if instance_id.as_deref() == Some("") {
            return Err(invalid("InstanceId can't be empty."));
        }
        if request.rack_id.as_ref().is_some_and(|r| r.is_empty()) {
            return Err(invalid("RackId can't be empty."));
        }
        // Some(""): no regex (librdkafka sends it so); None: unchanged.
        let regex = match request.subscribed_topic_regex.as_deref() {
            None => None,
            Some("") => Some(None),
            Some(source) => match TopicRegex::new(source) {
                Ok(re) => Some(Some(re)),
                Err(e) => {
                    let message = format!("SubscribedTopicRegex `{source}` is invalid: {e}.");
                    return Err((ResponseError::InvalidRegularExpression, Some(message)));
                }
            },
        };
        let has_regex = matches!(regex, Some(Some(_)));
        match epoch {
            e if e > 0 || e == -1 || e == -2 => {
                if request.member_id.is_empty() {
                    return Err(invalid("MemberId can't be empty."));
                }
                if e == -2 && instance_id.is_none() {
                    return Err(invalid("InstanceId can't be null."));
                }
            }
            0 => {
                if request.rebalance_timeout_ms == -1 {
                    return Err(invalid(
                        "RebalanceTimeoutMs must be provided in first request.",
                    ));
                }
                if owned.as_ref().is_none_or(|o| !o.is_empty()) {
                    return Err(invalid("TopicPartitions must be empty when (re-)joining."));
                }
                if request
                    .subscribed_topic_names
                    .as_ref()
                    .is_none_or(|n| n.is_empty())
                    && !has_regex
                {
                    return Err(invalid(
                        "SubscribedTopicNames must be set in first request.",
                    ));
                }
            }
            _ => return Err(invalid("MemberEpoch is invalid.")),
        }
        if let Some(assignor) = &request.server_assignor {
            if !consumer::ASSIGNORS.contains(&assignor.as_str()) {
                return Err((
                    ResponseError::UnsupportedAssignor,
                    Some(format!(
                        "ServerAssignor {assignor} is not supported. Supported assignors: {}.",
                        consumer::ASSIGNORS.join(", ")
                    )),
                ));
            }
        }
        // A classic group with members keeps its id; an empty one (offsets only) converts.
        if let Some(classic) = self.groups.get(&group_id) {
            if !classic.members.is_empty() || !classic.pending_members.is_empty() {
                return Err((
                    ResponseError::GroupIdNotFound,
                    Some(format!("Group {group_id} is not a consumer group.")),
                ));
            }
            if epoch != 0 {
                return Err((ResponseError::UnknownMemberId, None));
            }
            self.groups.remove(&group_id);
        }
        let now_ms = info.now_ms;
        let session_timeout_ms = i64::from(self.config.consumer_session_timeout_ms);
        let heartbeat_interval_ms = self.config.consumer_heartbeat_interval_ms;
        if epoch != 0 && !self.consumer_groups.contains_key(&group_id) {
            // Not known here (e.g. after a coordinator restart): the member rejoins.
            return Err((ResponseError::UnknownMemberId, None));
        }
        let group = self
            .consumer_groups
            .entry(group_id.clone())
            .or_insert_with(|| ConsumerGroup::new(&group_id, now_ms));
        let member_id = if request.member_id.is_empty() {
            fresh_id.to_string()
        } else {
            request.member_id.to_string()
        };

        if epoch == -2 {
            // A static member leaving temporarily keeps its partitions until its session
            // expires, so that its restart (same instance id) causes no rebalance.
            let member = group
                .members
                .get_mut(&member_id)
                .ok_or((ResponseError::UnknownMemberId, None))?;
            if member.instance_id != instance_id {
                return Err((ResponseError::FencedInstanceId, None));
            }
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = -2;
            return Ok(ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(s(&member_id)))
                .with_member_epoch(epoch)
                .with_heartbeat_interval_ms(heartbeat_interval_ms));
        }
        if epoch < 0 {
            if group.members.remove(&member_id).is_none() {
                return Err((ResponseError::UnknownMemberId, None));
            }
            group.target.remove(&member_id);
            group.group_epoch += 1;
            if group.members.is_empty() {
                group.state_timestamp_ms = now_ms;
            }
            group.topics = group.subscribed_topics(topics);
            group.compute_target();
            return Ok(ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(s(&member_id)))
                .with_member_epoch(epoch)
                .with_heartbeat_interval_ms(heartbeat_interval_ms));
        }

        let mut bump = false;
        if epoch == 0 {
            let mut replaced = None;
            if let Some(instance) = &instance_id {
                let holder = group
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(instance) && m.member_id != member_id)
                    .cloned();
                match holder {
                    Some(h) if h.member_epoch != -2 => {
                        return Err((
                            ResponseError::UnreleasedInstanceId,
                            Some(format!("Static member {instance} is still in use.")),
                        ));
                    }
                    Some(h) => {
                        // The restarted static member takes over its predecessor's
                        // partitions and target: no rebalance.
                        group.members.remove(&h.member_id);
                        if let Some(target) = group.target.remove(&h.member_id) {
                            group.target.insert(member_id.clone(), target);
                        }
                        replaced = Some(h);
                    }
                    None => {}
                }
            }
            // (Re)joining owns nothing: a previous incarnation's partitions are released.
            group.members.remove(&member_id);
            let (subscribed, subscribed_regex, server_assignor, assigned) = match &replaced {
                Some(h) => (
                    h.subscribed.clone(),
                    h.subscribed_regex.clone(),
                    h.server_assignor.clone(),
                    h.assigned.clone(),
                ),
                None => (vec![], None, None, Partitions::new()),
            };
            bump = replaced.is_none();
            group.members.insert(
                member_id.clone(),
                ConsumerMember {
                    member_id: member_id.clone(),
                    instance_id: instance_id.clone(),
                    rack_id: None,
                    client_id: info.client_id.clone(),
                    client_host: info.client_host.clone(),
                    member_epoch: 0,
                    previous_member_epoch: -1,
                    state: MemberState::Stable,
                    rebalance_timeout_ms: request.rebalance_timeout_ms,
                    subscribed,
                    subscribed_regex,
                    regex_topics: vec![],
                    server_assignor,
                    assigned,
                    revoking: Partitions::new(),
                    session_deadline_ms: now_ms + session_timeout_ms,
                    revocation_deadline_ms: None,
                },
            );
        } else {
            let member = group
                .members
                .get(&member_id)
                .ok_or((ResponseError::UnknownMemberId, None))?;
            group
                .check_epoch(member, epoch, owned.as_ref())
                .map_err(|e| (e, None))?;
        }
        let before = group.members[&member_id].assigned.clone();
        {
            let member = group.members.get_mut(&member_id).expect("member exists");
            if let Some(names) = &request.subscribed_topic_names {
                let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
                names.sort();
                names.dedup();
                if names != member.subscribed {
                    member.subscribed = names;
                    bump = true;
                }
            }
            if let Some(regex) = regex {
                let old = member.subscribed_regex.as_ref().map(|r| r.source.as_str());
                if old != regex.as_ref().map(|r| r.source.as_str()) {
                    member.subscribed_regex = regex;
                    bump = true;
                }
            }
            if request.rebalance_timeout_ms != -1 {
                member.rebalance_timeout_ms = request.rebalance_timeout_ms;
            }
            if let Some(assignor) = &request.server_assignor {
                if member.server_assignor.as_deref() != Some(assignor.as_str()) {
                    member.server_assignor = Some(assignor.to_string());
                    bump = true;
                }
            }
            if request.rack_id.is_some() {
                member.rack_id = request.rack_id.as_ref().map(|r| r.to_string());
            }
            member.client_id = info.client_id.clone();
            member.client_host = info.client_host.clone();
            member.session_deadline_ms = now_ms + session_timeout_ms;
        }
        // Partition counts of subscribed topics may have changed (CreatePartitions), and
        // topics matching a regex may have come or gone.
        group.resolve_regexes(topics);
        let subscribed = group.subscribed_topics(topics);
        if subscribed != group.topics {
            group.topics = subscribed;
            bump = true;
        }
        if bump {
            group.group_epoch += 1;
        }
        if group.group_epoch > group.assignment_epoch {
            group.compute_target();
        }
        group.reconcile(&member_id, owned.as_ref(), now_ms);
        let member = &group.members[&member_id];
        let full = epoch == 0
            || (request.rebalance_timeout_ms != -1
                && request.subscribed_topic_names.is_some()
                && request.topic_partitions.is_some());
        let mut response = ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(s(&member_id)))
            .with_member_epoch(member.member_epoch)
            .with_heartbeat_interval_ms(heartbeat_interval_ms);
        if full || member.assigned != before {
            response.assignment = Some(
                ConsumerGroupAssignment::default().with_topic_partitions(
                    member
                        .assigned
                        .iter()
                        .map(|(topic_id, partitions)| {
                            HeartbeatTopicPartitions::default()
                                .with_topic_id(*topic_id)
                                .with_partitions(partitions.iter().copied().collect())
                        })
                        .collect(),
                ),
            );
        }
        Ok(response)
    }

    /// ConsumerGroupDescribe for one group.
    pub fn consumer_describe(&self, group_id: &str) -> ConsumerDescribedGroup {
        let described = ConsumerDescribedGroup::default()
            .with_group_id(GroupId(s(group_id)))
            .with_authorized_operations(i32::MIN);
        let Some(group) = self.consumer_groups.get(group_id) else {
            let message = if self.groups.contains_key(group_id) {
                format!("Group {group_id} is not a consumer group.")
            } else {
                format!("Group {group_id} not found.")
            };
            return described
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(s(&message)));
        };
        let assignment = |partitions: &Partitions| {
            DescribeAssignment::default().with_topic_partitions(
                partitions
                    .iter()
                    .map(|(id, ps)| {
                        DescribeTopicPartitions::default()
                            .with_topic_id(*id)
                            .with_topic_name(TopicName(s(group.topic_name(id).unwrap_or(""))))
                            .with_partitions(ps.iter().copied().collect())
                    })
                    .collect(),
            )
        };
        let members = group
            .members
            .values()
            .map(|m| {
                DescribeMember::default()
                    .with_member_id(s(&m.member_id))
                    .with_instance_id(m.instance_id.as_deref().map(s))
                    .with_rack_id(m.rack_id.as_deref().map(s))
                    .with_member_epoch(m.member_epoch)
                    .with_client_id(s(&m.client_id))
                    .with_client_host(s(&m.client_host))
                    .with_subscribed_topic_names(
                        m.subscribed.iter().map(|t| TopicName(s(t))).collect(),
                    )
                    .with_subscribed_topic_regex(m.subscribed_regex.as_ref().map(|r| s(&r.source)))
                    .with_assignment(assignment(&m.assigned))
                    .with_target_assignment(assignment(
                        &group.target.get(&m.member_id).cloned().unwrap_or_default(),
                    ))
                    .with_member_type(1)
            })
            .collect();
        described
            .with_group_state(s(group.state_name()))
            .with_group_epoch(group.group_epoch)
            .with_assignment_epoch(group.assignment_epoch)
            .with_assignor_name(s(group.assignor_name()))
            .with_members(members)
    }
}
