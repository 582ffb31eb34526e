//! KIP-848 consumer groups: server-side assignment, member epochs and reconciliation.
//!
//! The group epoch moves when membership, subscriptions or the subscribed topics' partition
//! counts change; the target assignment is recomputed (uniform or range assignor) for that
//! epoch. Each member then converges to its target in steps that never give a partition to
//! two members at once: first it revokes what it must give up (UNREVOKED_PARTITIONS, same
//! epoch), then it takes the target's partitions that nobody else still holds, moving to the
//! target epoch (UNRELEASED_PARTITIONS while some are still held elsewhere).
//!
//! Every change is persisted as Kafka 4.0's ConsumerGroup* records (group epoch, subscribed
//! topic metadata, member subscriptions, target assignment, current member assignments),
//! produced by diffing the group before and after an operation (`records_between`) and
//! replayed at load (`ConsumerGroup::replay`), so members carry on across a restart.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::records::{self, CoordinatorRecord, RecordKey};

/// A topic's id and partition count, as the metadata image has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: Uuid,
    pub partitions: i32,
}

/// The topics of the metadata image, as the coordinator sees them.
pub trait Topics {
    fn get(&self, name: &str) -> Option<TopicInfo>;
    /// Every topic name, for regex subscriptions.
    fn names(&self) -> Vec<String>;
}

/// A KIP-848 regex subscription, matched against whole topic names (as Kafka's RE2J
/// `matches()`); internal topics never match.
#[derive(Clone, Debug)]
pub struct TopicRegex {
    pub source: String,
    compiled: regex::Regex,
}

impl TopicRegex {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let compiled = regex::Regex::new(&format!("^(?:{source})$"))?;
        Ok(TopicRegex {
            source: source.to_string(),
            compiled,
        })
    }

    pub fn matches(&self, topic: &str) -> bool {
        !topic.starts_with("__") && self.compiled.is_match(topic)
    }
}

/// Partitions by topic id.
pub type Partitions = BTreeMap<Uuid, BTreeSet<i32>>;

pub const ASSIGNORS: &[&str] = &["uniform", "range"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
}

#[derive(Clone, Debug)]
pub(crate) struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub rebalance_timeout_ms: i32,
    pub subscribed: Vec<String>,
    pub subscribed_regex: Option<TopicRegex>,
    /// The topics `subscribed_regex` matches now (resolved on each heartbeat, not stored).
    pub regex_topics: Vec<String>,
    pub server_assignor: Option<String>,
    pub assigned: Partitions,
    pub revoking: Partitions,
    pub session_deadline_ms: i64,
    pub revocation_deadline_ms: Option<i64>,
}

#[derive(Clone, Debug)]
pub(crate) struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Partitions>,
    /// The subscribed topics' metadata the target was computed with.
    pub topics: BTreeMap<String, TopicInfo>,
    pub state_timestamp_ms: i64,
}

impl ConsumerGroup {
    pub fn new(group_id: &str, now_ms: i64) -> Self {
        ConsumerGroup {
            group_id: group_id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            topics: BTreeMap::new(),
            state_timestamp_ms: now_ms,
        }
    }

    /// Kafka's consumer group states.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch != self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            // A static member away (epoch -2) keeps its partitions: not reconciling.
            .any(|m| {
                m.member_epoch != -2
                    && (m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
            })
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub fn topic_name(&self, id: &Uuid) -> Option<&str> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == *id)
            .map(|(n, _)| n.as_str())
    }

    /// Re-matches every member's regex subscription against the current topics.
    pub fn resolve_regexes(&mut self, topics: &dyn Topics) {
        if self.members.values().all(|m| m.subscribed_regex.is_none()) {
            return;
        }
        let names = topics.names();
        for m in self.members.values_mut() {
            m.regex_topics = match &m.subscribed_regex {
                Some(re) => names.iter().filter(|n| re.matches(n)).cloned().collect(),
                None => vec![],
            };
        }
    }

    /// Metadata of every subscribed topic that exists (by name or by regex).
    pub fn subscribed_topics(&self, topics: &dyn Topics) -> BTreeMap<String, TopicInfo> {
        let names: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed.iter().chain(&m.regex_topics))
            .collect();
        names
            .into_iter()
            .filter_map(|n| topics.get(n).map(|t| (n.clone(), t)))
            .collect()
    }

    /// The assignor the members prefer (most votes; ties to the first listed), else uniform.
    fn assignor(&self) -> &'static str {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a.as_str()).or_default() += 1;
            }
        }
        let best = votes.iter().max_by_key(|(_, n)| **n).map(|(a, _)| *a);
        ASSIGNORS
            .iter()
            .copied()
            .find(|a| Some(*a) == best)
            .unwrap_or("uniform")
    }

    pub fn assignor_name(&self) -> &'static str {
        self.assignor()
    }

    /// Recomputes the target assignment for the current group epoch.
    pub fn compute_target(&mut self) {
        let subscriptions: BTreeMap<&String, Vec<TopicInfo>> = self
            .members
            .iter()
            .map(|(id, m)| {
                let topics = m
                    .subscribed
                    .iter()
                    .chain(&m.regex_topics)
                    .filter_map(|t| self.topics.get(t).copied())
                    .collect();
                (id, topics)
            })
            .collect();
        let target = match self.assignor() {
            "range" => range_assign(&subscriptions),
            _ => uniform_assign(&subscriptions, &self.target),
        };
        self.target = target;
        self.assignment_epoch = self.group_epoch;
    }

    /// Who holds a partition now (assigned or still revoking), other than `except`.
    fn held_by_other(&self, except: &str, topic: &Uuid, partition: i32) -> bool {
        self.members.values().any(|m| {
            m.member_id != except
                && (m
                    .assigned
                    .get(topic)
                    .is_some_and(|p| p.contains(&partition))
                    || m.revoking
                        .get(topic)
                        .is_some_and(|p| p.contains(&partition)))
        })
    }

    /// Kafka's CurrentAssignmentBuilder: moves a member one step toward its target.
    /// `owned` is what the member says it owns (`None`: unchanged since last time).
    pub fn reconcile(&mut self, member_id: &str, owned: Option<&Partitions>, now_ms: i64) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let member = &self.members[member_id];
        match member.state {
            MemberState::UnrevokedPartitions => {
                // Waits until the member reports it no longer owns the revoked partitions.
                let still_owns = match owned {
                    None => true,
                    Some(owned) => intersects(owned, &member.revoking),
                };
                if still_owns {
                    return;
                }
            }
            MemberState::Stable if member.member_epoch == assignment_epoch => return,
            _ => {}
        }
        let member = &self.members[member_id];
        let current = member.assigned.clone();
        let keep: Partitions = intersect(&current, &target);
        let revoke: Partitions = difference(&current, &target);
        let mut next = keep.clone();
        let mut unreleased = false;
        for (topic, partitions) in difference(&target, &current) {
            for p in partitions {
                if self.held_by_other(member_id, &topic, p) {
                    unreleased = true;
                } else {
                    next.entry(topic).or_default().insert(p);
                }
            }
        }
        let rebalance_timeout_ms = i64::from(member.rebalance_timeout_ms.max(0));
        let member = self.members.get_mut(member_id).expect("member exists");
        if !revoke.is_empty() {
            member.state = MemberState::UnrevokedPartitions;
            member.assigned = keep;
            member.revoking = revoke;
            member.revocation_deadline_ms = Some(now_ms + rebalance_timeout_ms);
            return;
        }
        member.revoking.clear();
        member.revocation_deadline_ms = None;
        member.assigned = next;
        if member.member_epoch != assignment_epoch {
            member.previous_member_epoch = member.member_epoch;
            member.member_epoch = assignment_epoch;
        }
        member.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }

    /// Kafka's epoch check: a member may lag by one epoch if it owns a subset of its
    /// assignment (its last answer may have been lost).
    pub fn check_epoch(
        &self,
        member: &ConsumerMember,
        epoch: i32,
        owned: Option<&Partitions>,
    ) -> Result<(), ResponseError> {
        if epoch > member.member_epoch {
            return Err(ResponseError::FencedMemberEpoch);
        }
        if epoch < member.member_epoch {
            let subset = owned.is_some_and(|o| difference(o, &member.assigned).is_empty());
            if epoch != member.previous_member_epoch || !subset {
                return Err(ResponseError::FencedMemberEpoch);
            }
        }
        Ok(())
    }

    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| std::iter::once(m.session_deadline_ms).chain(m.revocation_deadline_ms))
            .min()
    }
}

fn intersects(a: &Partitions, b: &Partitions) -> bool {
    a.iter()
        .any(|(t, ps)| b.get(t).is_some_and(|other| !ps.is_disjoint(other)))
}

fn intersect(a: &Partitions, b: &Partitions) -> Partitions {
    let mut out = Partitions::new();
    for (t, ps) in a {
        if let Some(other) = b.get(t) {
            let common: BTreeSet<i32> = ps.intersection(other).copied().collect();
            if !common.is_empty() {
                out.insert(*t, common);
            }
        }
    }
    out
}

pub(crate) fn difference(a: &Partitions, b: &Partitions) -> Partitions {
    let mut out = Partitions::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(other) => ps.difference(other).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

/// Range: per topic, the subscribed members (sorted by id) get contiguous ranges, the
/// first `partitions % members` one partition more.
fn range_assign(subscriptions: &BTreeMap<&String, Vec<TopicInfo>>) -> BTreeMap<String, Partitions> {
    let mut out: BTreeMap<String, Partitions> = subscriptions
        .keys()
        .map(|m| ((*m).clone(), Partitions::new()))
        .collect();
    let topics: BTreeSet<(Uuid, i32)> = subscriptions
        .values()
        .flatten()
        .map(|t| (t.id, t.partitions))
        .collect();
    for (topic, count) in topics {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, ts)| ts.iter().any(|t| t.id == topic))
            .map(|(m, _)| *m)
            .collect();
        let n = members.len() as i32;
        let (per, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in members.iter().enumerate() {
            let take = per + i32::from((i as i32) < extra);
            let set: BTreeSet<i32> = (next..next + take).collect();
            next += take;
            if !set.is_empty() {
                out.get_mut(*m).expect("member").insert(topic, set);
            }
        }
    }
    out
}

/// Uniform: balances partition counts across the members subscribed to each partition's
/// topic, keeping each partition with its previous owner where that stays balanced.
fn uniform_assign(
    subscriptions: &BTreeMap<&String, Vec<TopicInfo>>,
    previous: &BTreeMap<String, Partitions>,
) -> BTreeMap<String, Partitions> {
    let mut out: BTreeMap<String, Partitions> = subscriptions
        .keys()
        .map(|m| ((*m).clone(), Partitions::new()))
        .collect();
    let mut all: Vec<(Uuid, i32)> = subscriptions
        .values()
        .flatten()
        .map(|t| (t.id, t.partitions))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .flat_map(|(id, n)| (0..n).map(move |p| (id, p)))
        .collect();
    if out.is_empty() || all.is_empty() {
        return out;
    }
    let subscribed = |m: &String, topic: &Uuid| subscriptions[m].iter().any(|t| t.id == *topic);
    let members = out.len();
    let quota = all.len() / members;
    let mut extra_slots = all.len() % members;
    let mut counts: BTreeMap<String, usize> = out.keys().map(|m| (m.clone(), 0)).collect();
    // Sticky pass: previous owners keep partitions up to their quota.
    let mut rest = Vec::new();
    for (topic, p) in all.drain(..) {
        let owner = previous
            .iter()
            .find(|(_, ps)| ps.get(&topic).is_some_and(|s| s.contains(&p)))
            .map(|(m, _)| m.clone())
            .filter(|m| out.contains_key(m) && subscribed(m, &topic));
        let keep = owner.filter(|m| {
            let c = counts[m];
            c < quota || (c == quota && extra_slots > 0)
        });
        match keep {
            Some(m) => {
                if counts[&m] == quota {
                    extra_slots -= 1;
                }
                *counts.get_mut(&m).expect("member") += 1;
                out.get_mut(&m)
                    .expect("member")
                    .entry(topic)
                    .or_default()
                    .insert(p);
            }
            None => rest.push((topic, p)),
        }
    }
    // The rest go to the least loaded subscribed member.
    for (topic, p) in rest {
        let best = counts
            .iter()
            .filter(|(m, _)| subscribed(m, &topic))
            .min_by_key(|(m, c)| (**c, (*m).clone()))
            .map(|(m, _)| m.clone());
        if let Some(m) = best {
            *counts.get_mut(&m).expect("member") += 1;
            out.get_mut(&m)
                .expect("member")
                .entry(topic)
                .or_default()
                .insert(p);
        }
    }
    out
}

// ---- persistence: Kafka's ConsumerGroup* records ----

fn to_list(partitions: &Partitions) -> records::TopicPartitionList {
    partitions
        .iter()
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect()
}

fn from_list(list: &records::TopicPartitionList) -> Partitions {
    list.iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect()
}

fn state_code(state: MemberState) -> i8 {
    match state {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

impl ConsumerMember {
    fn metadata(&self) -> records::ConsumerMemberMetadata {
        records::ConsumerMemberMetadata {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed.clone(),
            subscribed_topic_regex: self.subscribed_regex.as_ref().map(|r| r.source.clone()),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
        }
    }

    fn current_assignment(&self) -> records::ConsumerCurrentAssignment {
        records::ConsumerCurrentAssignment {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: state_code(self.state),
            assigned: to_list(&self.assigned),
            revoking: to_list(&self.revoking),
        }
    }

    fn empty(member_id: &str) -> Self {
        ConsumerMember {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            rebalance_timeout_ms: -1,
            subscribed: vec![],
            subscribed_regex: None,
            regex_topics: vec![],
            server_assignor: None,
            assigned: Partitions::new(),
            revoking: Partitions::new(),
            session_deadline_ms: 0,
            revocation_deadline_ms: None,
        }
    }
}

/// The records that take a group from `before` to `after` (`None`: absent), in an order
/// whose replay rebuilds `after`.
pub(crate) fn records_between(
    group_id: &str,
    before: Option<&ConsumerGroup>,
    after: Option<&ConsumerGroup>,
) -> Vec<CoordinatorRecord> {
    let mut out = Vec::new();
    let Some(after) = after else {
        if let Some(before) = before {
            for member_id in before.members.keys() {
                out.push(records::consumer_current_assignment_record(
                    group_id, member_id, None,
                ));
                out.push(records::consumer_target_assignment_member_record(
                    group_id, member_id, None,
                ));
                out.push(records::consumer_member_metadata_record(
                    group_id, member_id, None,
                ));
            }
            out.push(records::consumer_target_assignment_metadata_record(
                group_id, None,
            ));
            out.push(records::consumer_group_partition_metadata_record(
                group_id, None,
            ));
            out.push(records::consumer_group_metadata_record(group_id, None));
        }
        return out;
    };
    let empty = ConsumerGroup::new(group_id, 0);
    let before = before.unwrap_or(&empty);
    if after.topics != before.topics {
        let topics: Vec<(Uuid, String, i32)> = after
            .topics
            .iter()
            .map(|(n, t)| (t.id, n.clone(), t.partitions))
            .collect();
        out.push(records::consumer_group_partition_metadata_record(
            group_id,
            Some(&topics),
        ));
    }
    for (member_id, m) in &after.members {
        let old = before.members.get(member_id);
        if old.is_none_or(|o| o.metadata() != m.metadata()) {
            out.push(records::consumer_member_metadata_record(
                group_id,
                member_id,
                Some(&m.metadata()),
            ));
        }
    }
    if after.group_epoch != before.group_epoch {
        out.push(records::consumer_group_metadata_record(
            group_id,
            Some(after.group_epoch),
        ));
    }
    for (member_id, target) in &after.target {
        if before.target.get(member_id) != Some(target) {
            out.push(records::consumer_target_assignment_member_record(
                group_id,
                member_id,
                Some(&to_list(target)),
            ));
        }
    }
    if after.assignment_epoch != before.assignment_epoch {
        out.push(records::consumer_target_assignment_metadata_record(
            group_id,
            Some(after.assignment_epoch),
        ));
    }
    for (member_id, m) in &after.members {
        let old = before.members.get(member_id);
        if old.is_none_or(|o| o.current_assignment() != m.current_assignment()) {
            out.push(records::consumer_current_assignment_record(
                group_id,
                member_id,
                Some(&m.current_assignment()),
            ));
        }
    }
    for member_id in before.members.keys() {
        if !after.members.contains_key(member_id) {
            out.push(records::consumer_current_assignment_record(
                group_id, member_id, None,
            ));
            out.push(records::consumer_target_assignment_member_record(
                group_id, member_id, None,
            ));
            out.push(records::consumer_member_metadata_record(
                group_id, member_id, None,
            ));
        }
    }
    out
}

impl ConsumerGroup {
    /// Replays one ConsumerGroup* record (at load).
    pub fn replay(
        &mut self,
        key: &RecordKey,
        value: Option<&[u8]>,
    ) -> Result<(), records::RecordError> {
        match key {
            RecordKey::ConsumerGroupMetadata { .. } => {
                if let Some(v) = value {
                    self.group_epoch = records::decode_epoch_value(v)?;
                }
            }
            RecordKey::ConsumerGroupPartitionMetadata { .. } => {
                self.topics = match value {
                    Some(v) => records::decode_partition_metadata_value(v)?
                        .into_iter()
                        .map(|(id, name, partitions)| (name, TopicInfo { id, partitions }))
                        .collect(),
                    None => BTreeMap::new(),
                };
            }
            RecordKey::ConsumerGroupMemberMetadata { member, .. } => match value {
                Some(v) => {
                    let m = records::decode_member_metadata_value(v)?;
                    let entry = self
                        .members
                        .entry(member.clone())
                        .or_insert_with(|| ConsumerMember::empty(member));
                    entry.instance_id = m.instance_id;
                    entry.rack_id = m.rack_id;
                    entry.client_id = m.client_id;
                    entry.client_host = m.client_host;
                    entry.subscribed = m.subscribed_topic_names;
                    entry.subscribed_regex = m
                        .subscribed_topic_regex
                        .and_then(|r| TopicRegex::new(&r).ok());
                    entry.rebalance_timeout_ms = m.rebalance_timeout_ms;
                    entry.server_assignor = m.server_assignor;
                }
                None => {
                    self.members.remove(member);
                }
            },
            RecordKey::ConsumerGroupTargetAssignmentMetadata { .. } => {
                if let Some(v) = value {
                    self.assignment_epoch = records::decode_epoch_value(v)?;
                }
            }
            RecordKey::ConsumerGroupTargetAssignmentMember { member, .. } => match value {
                Some(v) => {
                    let list = records::decode_target_assignment_member_value(v)?;
                    self.target.insert(member.clone(), from_list(&list));
                }
                None => {
                    self.target.remove(member);
                }
            },
            RecordKey::ConsumerGroupCurrentMemberAssignment { member, .. } => {
                let current = value
                    .map(records::decode_current_assignment_value)
                    .transpose()?;
                if let Some(c) = current {
                    let entry = self
                        .members
                        .entry(member.clone())
                        .or_insert_with(|| ConsumerMember::empty(member));
                    entry.member_epoch = c.member_epoch;
                    entry.previous_member_epoch = c.previous_member_epoch;
                    entry.state = match c.state {
                        1 => MemberState::UnrevokedPartitions,
                        2 => MemberState::UnreleasedPartitions,
                        _ => MemberState::Stable,
                    };
                    entry.assigned = from_list(&c.assigned);
                    entry.revoking = from_list(&c.revoking);
                } else if let Some(m) = self.members.get_mut(member) {
                    m.assigned.clear();
                    m.revoking.clear();
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// After load: members get a full session, unrevoked ones a full rebalance timeout.
    pub fn finish_load(&mut self, now_ms: i64, session_timeout_ms: i64) {
        for m in self.members.values_mut() {
            m.session_deadline_ms = now_ms + session_timeout_ms;
            m.revocation_deadline_ms = (m.state == MemberState::UnrevokedPartitions)
                .then(|| now_ms + i64::from(m.rebalance_timeout_ms.max(0)));
        }
        if self.members.is_empty() {
            self.state_timestamp_ms = now_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u128, partitions: i32) -> TopicInfo {
        TopicInfo {
            id: Uuid::from_u128(n),
            partitions,
        }
    }

    #[test]
    fn uniform_is_balanced_complete_and_sticky() {
        let t = topic(1, 6);
        let (a, b, c) = ("a".to_string(), "b".to_string(), "c".to_string());
        let two: BTreeMap<&String, Vec<TopicInfo>> = [(&a, vec![t]), (&b, vec![t])].into();
        let first = uniform_assign(&two, &BTreeMap::new());
        assert_eq!(first["a"][&t.id].len(), 3);
        assert_eq!(first["b"][&t.id].len(), 3);
        let three: BTreeMap<&String, Vec<TopicInfo>> =
            [(&a, vec![t]), (&b, vec![t]), (&c, vec![t])].into();
        let second = uniform_assign(&three, &first);
        let counts: Vec<usize> = ["a", "b", "c"]
            .iter()
            .map(|m| second[*m].get(&t.id).map_or(0, |s| s.len()))
            .collect();
        assert_eq!(counts, vec![2, 2, 2]);
        // a and b only gave partitions up, never took someone else's.
        assert!(second["a"][&t.id].is_subset(&first["a"][&t.id]));
        assert!(second["b"][&t.id].is_subset(&first["b"][&t.id]));
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let t = topic(1, 5);
        let (a, b) = ("a".to_string(), "b".to_string());
        let subs: BTreeMap<&String, Vec<TopicInfo>> = [(&a, vec![t]), (&b, vec![t])].into();
        let out = range_assign(&subs);
        assert_eq!(out["a"][&t.id], (0..3).collect());
        assert_eq!(out["b"][&t.id], (3..5).collect());
    }
}
