//! AlterPartitionReassignments: moves partitions to other brokers (`kafka-reassign-partitions
//! --execute|--cancel`, the Java Admin's `alterPartitionReassignments`), as Kafka's KRaft
//! controller does (`ReplicationControlManager.alterPartitionReassignments`). Served by the
//! active controller; any other node forwards the request to it, as Kafka's brokers do.
//!
//! A reassignment runs in the partition's metadata, in Kafka's three steps:
//! 1. Start: one `PartitionChange` makes the replicas the target followed by the current
//!    replicas it drops (`replicas` = target ∪ current, target first), with
//!    `adding_replicas` = target − current and `removing_replicas` = current − target. The
//!    ISR and the leader stay; the new replicas create their logs and fetch from the leader.
//! 2. Catch-up: the leader adds each new replica to the ISR once it has caught up
//!    (AlterPartition, as for any follower).
//! 3. Completion, in the same decision as the ISR change that puts the last target replica
//!    in the ISR (Kafka's `PartitionChangeBuilder.completeReassignmentIfNeeded`): replicas
//!    become the target, the ISR loses the removed replicas, `adding`/`removing` are
//!    cleared, and a leader that is no longer a replica hands over to the first target
//!    replica in the ISR (new leader epoch; the removed leader's AlterPartition is answered
//!    NEW_LEADER_ELECTED). A completion that only drops replicas starts a new leader epoch
//!    too, so the dropped ones are fenced. A reassignment whose target is already in the ISR
//!    (a reordering, a shrink) completes at once.
//!
//! Cancelling (`replicas` null) reverts to the original replicas (the replicas without the
//! ones being added) and takes the added ones out of the ISR; if only added replicas were
//! in sync, the first original replica becomes the ISR alone, which needs
//! `unclean.leader.election.enable` (else INVALID_REPLICA_ASSIGNMENT). A partition with no
//! reassignment is NO_REASSIGNMENT_IN_PROGRESS.
//!
//! Target checks (Kafka's `validateManualPartitionAssignment`): non-empty, no broker twice,
//! every broker registered (a fenced one may be a target: it catches up once it is back),
//! else INVALID_REPLICA_ASSIGNMENT; with v1's `allow_replication_factor_change` false
//! (KIP-860) a target whose size differs from the partition's replication factor is
//! INVALID_REPLICATION_FACTOR. Unknown topics and partitions are UNKNOWN_TOPIC_OR_PARTITION.
//! The request is decided against one image and committed as one write; a partition named
//! twice is decided the second time against the state the first one leads to.

use std::collections::HashMap;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataImage, MetadataRecord, PartitionImage, Uuid};
use moldau_security::acl::AclOperation;

use super::{authz, forward_to_controller, str_bytes, topic_name};
use crate::api::RequestContext;
use crate::broker_lifecycle::ElectionConfig;
use crate::error::BrokerError;
use crate::state::BrokerState;

/// v1 adds `allow_replication_factor_change` (KIP-860).
pub const VERSIONS: VersionRange = AlterPartitionReassignmentsRequest::VERSIONS;

/// How a change picks a leader when the current one may not stay (Kafka's
/// `PartitionChangeBuilder.Election`, without PREFERRED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Election {
    /// From the in-sync replicas only.
    Online,
    /// From the in-sync replicas, else any usable replica, which becomes the ISR alone
    /// (`unclean.leader.election.enable`).
    Unclean,
}

/// Kafka's `PartitionChangeBuilder` for the fields Moldau has (no directories or leader
/// recovery state; ELR as Kafka 4.1 has it on by default, `last_known_elr` holding the
/// last known leader): the targets start as the partition's current state; `build` completes a
/// reassignment the target ISR allows, tracks the eligible leader replicas (KIP-966),
/// elects a leader when the current one may not stay, and yields the fields that differ.
pub(crate) struct ChangeBuilder<'a> {
    partition: &'a PartitionImage,
    pub target_isr: Vec<i32>,
    pub target_replicas: Vec<i32>,
    pub target_adding: Vec<i32>,
    pub target_removing: Vec<i32>,
    pub election: Election,
    /// The topic's effective `min.insync.replicas`: below it, replicas leaving the ISR
    /// become eligible leader replicas.
    pub min_isr: usize,
    /// A broker that restarted uncleanly (a new incarnation): it may have lost records
    /// below the high watermark, so it may not become an eligible leader replica.
    pub unclean_shutdown: Option<i32>,
    target_elr: Vec<i32>,
}

/// The fields of one `PartitionChange` (`None`: unchanged) and the partition it leads to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BuiltChange {
    pub leader: Option<i32>,
    pub isr: Option<Vec<i32>>,
    pub replicas: Option<Vec<i32>>,
    pub adding_replicas: Option<Vec<i32>>,
    pub removing_replicas: Option<Vec<i32>>,
    pub eligible_leader_replicas: Option<Vec<i32>>,
    pub last_known_elr: Option<Vec<i32>>,
    pub next: PartitionImage,
}

impl BuiltChange {
    pub fn record(&self, topic_id: Uuid, partition_id: i32) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            topic_id,
            partition_id,
            leader: self.leader,
            isr: self.isr.clone(),
            replicas: self.replicas.clone(),
            adding_replicas: self.adding_replicas.clone(),
            removing_replicas: self.removing_replicas.clone(),
            eligible_leader_replicas: self.eligible_leader_replicas.clone(),
            last_known_elr: self.last_known_elr.clone(),
        }
    }
}

impl<'a> ChangeBuilder<'a> {
    pub fn new(partition: &'a PartitionImage, min_isr: usize) -> Self {
        ChangeBuilder {
            partition,
            target_isr: partition.isr.clone(),
            target_replicas: partition.replicas.clone(),
            target_adding: partition.adding_replicas.clone(),
            target_removing: partition.removing_replicas.clone(),
            election: Election::Online,
            min_isr,
            unclean_shutdown: None,
            target_elr: partition.eligible_leader_replicas.clone(),
        }
    }

    /// Kafka's `PartitionReassignmentReplicas.maybeCompleteReassignment`: once every
    /// replica that stays is in the target ISR, the removed ones leave both lists.
    fn complete_reassignment_if_possible(&mut self) {
        if self.target_adding.is_empty() && self.target_removing.is_empty() {
            return;
        }
        let removing = &self.target_removing;
        let isr: Vec<i32> = self
            .target_isr
            .iter()
            .copied()
            .filter(|id| !removing.contains(id))
            .collect();
        let replicas: Vec<i32> = self
            .target_replicas
            .iter()
            .copied()
            .filter(|id| !removing.contains(id))
            .collect();
        if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|id| isr.contains(id)) {
            return;
        }
        self.target_isr = isr;
        self.target_replicas = replicas;
        self.target_adding.clear();
        self.target_removing.clear();
    }

    /// Kafka's `maybePopulateTargetElr`: at or above `min.insync.replicas` there are no
    /// eligible leader replicas; below it, every replica that was in the ISR or the ELR
    /// and is not in the target ISR is one (the high watermark could not advance since,
    /// so it holds every committed record), except one that restarted uncleanly.
    fn populate_target_elr(&mut self) {
        if self.target_isr.len() >= self.min_isr {
            self.target_elr.clear();
            return;
        }
        let p = self.partition;
        let candidate = |id: &i32| p.isr.contains(id) || p.eligible_leader_replicas.contains(id);
        self.target_elr = self
            .target_replicas
            .iter()
            .copied()
            .filter(|id| candidate(id) && !self.target_isr.contains(id))
            .filter(|id| Some(*id) != self.unclean_shutdown)
            .collect();
    }

    /// Kafka's `electAnyLeader`: the current leader while it is a valid leader, else the
    /// first replica (in target order) that is, else the last known leader when neither
    /// ISR nor ELR has anyone (as before ELR, when every replica was offline), else
    /// (unclean) the first usable replica; `(leader, unclean)`, -1 for none. Valid: usable
    /// and in the target ISR, or, when the ISR is empty, an eligible leader replica.
    fn elect(&self, usable: &impl Fn(i32) -> bool) -> (i32, bool) {
        let valid = |id: i32| {
            (self.target_isr.contains(&id)
                || (self.target_isr.is_empty() && self.target_elr.contains(&id)))
                && usable(id)
        };
        if self.partition.leader >= 0 && valid(self.partition.leader) {
            return (self.partition.leader, false);
        }
        if let Some(id) = self.target_replicas.iter().copied().find(|id| valid(*id)) {
            return (id, false);
        }
        if let [last_leader] = self.partition.last_known_elr[..] {
            if self.target_isr.is_empty() && self.target_elr.is_empty() && usable(last_leader) {
                return (last_leader, true);
            }
        }
        if self.election == Election::Unclean {
            if let Some(id) = self.target_replicas.iter().copied().find(|id| usable(*id)) {
                return (id, true);
            }
        }
        (-1, false)
    }

    /// Kafka's `maybeUpdateLastKnownLeader`: the leader of the moment the ISR first empties
    /// is remembered (`last_known_elr`), and forgotten once the partition has a leader.
    fn last_known_leader(&self, leader: Option<i32>, isr: Option<&[i32]>) -> Vec<i32> {
        let p = self.partition;
        if isr.is_some_and(|isr| isr.is_empty()) && p.last_known_elr[..] != [p.leader] {
            return vec![p.leader];
        }
        let has_leader = match leader {
            Some(leader) => leader >= 0,
            None => p.leader != -1,
        };
        if has_leader {
            return Vec::new();
        }
        p.last_known_elr.clone()
    }

    /// The change, `None` when nothing would change. `usable`: may lead (registered,
    /// unfenced).
    pub fn build(mut self, usable: impl Fn(i32) -> bool) -> Option<BuiltChange> {
        let p = self.partition;
        self.complete_reassignment_if_possible();
        self.populate_target_elr();
        let mut leader = None;
        let mut isr = None;
        let (elected, unclean) = self.elect(&usable);
        if elected != p.leader {
            leader = Some(elected);
            if unclean {
                isr = Some(vec![elected]);
                // Kafka's maybeUpdateRecordElr: an unclean election ends the ELR.
                self.target_elr.clear();
            } else if !self.target_isr.contains(&elected) && self.target_elr.contains(&elected) {
                // Elected from the ELR: it alone is in sync now.
                self.target_isr = vec![elected];
                self.target_elr.retain(|id| *id != elected);
            }
        }
        // Kafka's triggerLeaderEpochBumpForReplicaReassignmentIfNeeded: replicas that
        // leave must not keep following the old epoch.
        if leader.is_none()
            && !p
                .replicas
                .iter()
                .all(|id| self.target_replicas.contains(id))
        {
            leader = Some(p.leader);
        }
        // With eligible leader replicas the ISR may become empty (its last member left).
        if isr.is_none() && self.target_isr != p.isr {
            isr = Some(self.target_isr.clone());
        }
        let replicas = (!self.target_replicas.is_empty() && self.target_replicas != p.replicas)
            .then(|| self.target_replicas.clone());
        let removing =
            (self.target_removing != p.removing_replicas).then(|| self.target_removing.clone());
        let adding = (self.target_adding != p.adding_replicas).then(|| self.target_adding.clone());
        let elr = (self.target_elr != p.eligible_leader_replicas).then(|| self.target_elr.clone());
        let last_known = self.last_known_leader(leader, isr.as_deref());
        let last_known_elr = (last_known != p.last_known_elr).then_some(last_known);
        if leader.is_none()
            && isr.is_none()
            && replicas.is_none()
            && adding.is_none()
            && removing.is_none()
            && elr.is_none()
            && last_known_elr.is_none()
        {
            return None;
        }
        let next = p.merge_with_elr(
            leader,
            isr.as_deref(),
            replicas.as_deref(),
            adding.as_deref(),
            removing.as_deref(),
            elr.as_deref(),
            last_known_elr.as_deref(),
        );
        Some(BuiltChange {
            leader,
            isr,
            replicas,
            adding_replicas: adding,
            removing_replicas: removing,
            eligible_leader_replicas: elr,
            last_known_elr,
            next,
        })
    }
}

/// Kafka's `PartitionReassignmentReplicas(current, target)`: the replicas while moving
/// (target first, then the ones dropped, in id order), the ones added and dropped (in id
/// order).
pub(crate) fn reassignment_replicas(current: &[i32], target: &[i32]) -> ReassignmentReplicas {
    let mut removing: Vec<i32> = current
        .iter()
        .copied()
        .filter(|id| !target.contains(id))
        .collect();
    removing.sort_unstable();
    removing.dedup();
    let mut adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|id| !current.contains(id))
        .collect();
    adding.sort_unstable();
    adding.dedup();
    let mut replicas = target.to_vec();
    replicas.extend(&removing);
    ReassignmentReplicas {
        replicas,
        adding,
        removing,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReassignmentReplicas {
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// The replicas a partition had before its reassignment began (Kafka's
/// `originalReplicas`: the replicas without the ones being added).
pub(crate) fn original_replicas(partition: &PartitionImage) -> Vec<i32> {
    partition
        .replicas
        .iter()
        .copied()
        .filter(|id| !partition.adding_replicas.contains(id))
        .collect()
}

/// A refused partition: the code and Kafka's message.
pub(crate) type Refusal = (ResponseError, String);

/// One topic's answers, per partition in request order.
pub(crate) type TopicAnswers = (String, Vec<(i32, Result<(), Refusal>)>);

/// What one request asks: per topic, per partition the target replicas (`None`: cancel).
pub(crate) type Targets = Vec<(String, Vec<(i32, Option<Vec<i32>>)>)>;

/// Decides a whole request against `image`: the records to commit (at most one per
/// partition named) and every partition's answer.
pub(crate) fn decide(
    image: &MetadataImage,
    targets: &Targets,
    allow_replication_factor_change: bool,
    unclean: ElectionConfig,
) -> (Vec<MetadataRecord>, Vec<TopicAnswers>) {
    let usable = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced);
    let mut decided: HashMap<(Uuid, i32), PartitionImage> = HashMap::new();
    // A partition named twice gets one record, from the state before the request.
    let mut record_index: HashMap<(Uuid, i32), usize> = HashMap::new();
    let mut records: Vec<Option<MetadataRecord>> = Vec::new();
    let mut answers = Vec::with_capacity(targets.len());
    for (name, partitions) in targets {
        let topic = image.topic_by_name(name);
        let mut topic_answers = Vec::with_capacity(partitions.len());
        for (partition_id, target) in partitions {
            let answer = (|| {
                let topic = topic.ok_or_else(|| {
                    (
                        ResponseError::UnknownTopicOrPartition,
                        format!("Unable to find a topic named {name}."),
                    )
                })?;
                let key = (topic.topic_id, *partition_id);
                let original = topic.partitions.get(partition_id).ok_or_else(|| {
                    (
                        ResponseError::UnknownTopicOrPartition,
                        format!("Unable to find partition {name}:{partition_id}."),
                    )
                })?;
                let current = decided.get(&key).unwrap_or(original);
                let builder = match target {
                    None => cancel(image, name, *partition_id, current, unclean)?,
                    Some(target) => {
                        validate_target(image, target)?;
                        if !allow_replication_factor_change {
                            check_replication_factor(current, target)?;
                        }
                        start(current, target, unclean.min_isr(image, name))
                    }
                };
                if let Some(change) = builder.build(usable) {
                    // One record from the state before the request, whatever came first.
                    let whole = whole_change(original, &change.next);
                    let record = whole.map(|w| w.record(topic.topic_id, *partition_id));
                    match record_index.get(&key) {
                        Some(i) => records[*i] = record,
                        None => {
                            record_index.insert(key, records.len());
                            records.push(record);
                        }
                    }
                    decided.insert(key, change.next);
                }
                Ok(())
            })();
            if let Err((error, message)) = &answer {
                tracing::info!(
                    topic = %name,
                    partition = partition_id,
                    "unable to alter the partition reassignment: {error:?}: {message}"
                );
            }
            topic_answers.push((*partition_id, answer));
        }
        answers.push((name.clone(), topic_answers));
    }
    (records.into_iter().flatten().collect(), answers)
}

/// The change from `from` to `to` as one record's fields (a partition changed twice in
/// one request is written once); `None` when they do not differ.
fn whole_change(from: &PartitionImage, to: &PartitionImage) -> Option<BuiltChange> {
    let changed = |a: &Vec<i32>, b: &Vec<i32>| (a != b).then(|| b.clone());
    let leader = (to.leader_epoch != from.leader_epoch).then_some(to.leader);
    let isr = changed(&from.isr, &to.isr);
    let replicas = changed(&from.replicas, &to.replicas);
    let adding = changed(&from.adding_replicas, &to.adding_replicas);
    let removing = changed(&from.removing_replicas, &to.removing_replicas);
    let elr = changed(&from.eligible_leader_replicas, &to.eligible_leader_replicas);
    let last_known_elr = changed(&from.last_known_elr, &to.last_known_elr);
    if leader.is_none()
        && isr.is_none()
        && replicas.is_none()
        && adding.is_none()
        && removing.is_none()
        && elr.is_none()
        && last_known_elr.is_none()
    {
        return None;
    }
    let next = from.merge_with_elr(
        leader,
        isr.as_deref(),
        replicas.as_deref(),
        adding.as_deref(),
        removing.as_deref(),
        elr.as_deref(),
        last_known_elr.as_deref(),
    );
    Some(BuiltChange {
        leader,
        isr,
        replicas,
        adding_replicas: adding,
        removing_replicas: removing,
        eligible_leader_replicas: elr,
        last_known_elr,
        next,
    })
}

/// Kafka's `validateManualPartitionAssignment`.
fn validate_target(image: &MetadataImage, target: &[i32]) -> Result<(), Refusal> {
    let invalid = |message: String| (ResponseError::InvalidReplicaAssignment, message);
    if target.is_empty() {
        return Err(invalid(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    for (i, id) in sorted.iter().enumerate() {
        if !image.brokers.contains_key(id) {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {id}, but no such broker is \
                 registered."
            )));
        }
        if i > 0 && sorted[i - 1] == *id {
            return Err(invalid(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
    }
    Ok(())
}

/// KIP-860: the partition's replication factor is its replicas without the ones an
/// ongoing reassignment removes.
fn check_replication_factor(current: &PartitionImage, target: &[i32]) -> Result<(), Refusal> {
    let factor = current
        .replicas
        .iter()
        .filter(|id| !current.removing_replicas.contains(id))
        .count();
    if factor != target.len() {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!(
                "The replication factor is changed from {factor} to {} and \
                 allowReplicationFactorChange is false.",
                target.len()
            ),
        ));
    }
    Ok(())
}

/// Kafka's `changePartitionReassignment`: the builder of the start (which may complete at
/// once).
fn start<'a>(current: &'a PartitionImage, target: &[i32], min_isr: usize) -> ChangeBuilder<'a> {
    let moving = reassignment_replicas(&current.replicas, target);
    let mut builder = ChangeBuilder::new(current, min_isr);
    builder.target_replicas = moving.replicas;
    builder.target_removing = moving.removing;
    builder.target_adding = moving.adding;
    builder
}

/// Kafka's `cancelPartitionReassignment` with `PartitionReassignmentRevert`.
fn cancel<'a>(
    image: &MetadataImage,
    topic: &str,
    partition_id: i32,
    current: &'a PartitionImage,
    unclean: ElectionConfig,
) -> Result<ChangeBuilder<'a>, Refusal> {
    if !current.is_reassigning() {
        return Err((
            ResponseError::NoReassignmentInProgress,
            "No partition reassignment is in progress.".into(),
        ));
    }
    let replicas = original_replicas(current);
    let mut isr: Vec<i32> = current
        .isr
        .iter()
        .copied()
        .filter(|id| !current.adding_replicas.contains(id))
        .collect();
    let unclean_enabled = unclean.unclean_enabled(image, topic);
    if isr.is_empty() {
        let Some(first) = replicas.first() else {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                "Invalid replica assignment: addingReplicas contains all replicas.".into(),
            ));
        };
        if !unclean_enabled {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Unable to revert partition assignment for {topic}:{partition_id} because \
                     it would require an unclean leader election."
                ),
            ));
        }
        isr.push(*first);
    }
    let mut builder = ChangeBuilder::new(current, unclean.min_isr(image, topic));
    if unclean_enabled {
        builder.election = Election::Unclean;
    }
    builder.target_isr = isr;
    builder.target_replicas = replicas;
    builder.target_adding = Vec::new();
    builder.target_removing = Vec::new();
    Ok(builder)
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    // Kafka's controller asks ALTER on the cluster first.
    if let Err(message) = authz::authorize_cluster_unless_forwarded(state, ctx, AclOperation::Alter)
    {
        return top_level_error(
            &request,
            ResponseError::ClusterAuthorizationFailed,
            Some(message),
        );
    }
    if !state.controller.quorum().is_leader() {
        if let Some(response) = forward_to_controller(state, ctx.api_version, &request).await {
            return response;
        }
        return top_level_error(&request, ResponseError::NotController, None);
    }
    let targets: Targets = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let replicas = p
                        .replicas
                        .as_ref()
                        .map(|r| r.iter().map(|id| id.0).collect());
                    (p.partition_index, replicas)
                })
                .collect();
            (t.name.to_string(), partitions)
        })
        .collect();
    // v0 has no flag: changing the replication factor is allowed, as before KIP-860.
    let allow_change = ctx.api_version < 1 || request.allow_replication_factor_change;
    let unclean = ElectionConfig::of(state);
    let written = state
        .controller
        .write(|image| {
            let (records, answers) = decide(image, &targets, allow_change, unclean);
            Ok::<_, BrokerError>((records, answers))
        })
        .await;
    match written {
        Ok(answers) => {
            let done: usize = answers
                .iter()
                .flat_map(|(_, a)| a)
                .filter(|(_, a)| a.is_ok())
                .count();
            let total: usize = answers.iter().map(|(_, a)| a.len()).sum();
            tracing::info!("altered {done} of {total} partition reassignment(s)");
            AlterPartitionReassignmentsResponse::default()
                .with_allow_replication_factor_change(request.allow_replication_factor_change)
                .with_responses(answers.into_iter().map(topic_response).collect())
        }
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::warn!(%e, "AlterPartitionReassignments failed");
            }
            top_level_error(&request, e.response_error(), Some(e.to_string()))
        }
    }
}

fn topic_response((name, answers): TopicAnswers) -> ReassignableTopicResponse {
    ReassignableTopicResponse::default()
        .with_name(topic_name(&name))
        .with_partitions(
            answers
                .into_iter()
                .map(|(partition_index, answer)| {
                    let response = ReassignablePartitionResponse::default()
                        .with_partition_index(partition_index);
                    match answer {
                        Ok(()) => response,
                        Err((error, message)) => response
                            .with_error_code(error.code())
                            .with_error_message(Some(str_bytes(message))),
                    }
                })
                .collect(),
        )
}

/// The whole request refused: the top-level error, and every partition with it too (the
/// Java Admin reads the partitions' codes).
fn top_level_error(
    request: &AlterPartitionReassignmentsRequest,
    error: ResponseError,
    message: Option<String>,
) -> AlterPartitionReassignmentsResponse {
    let message = message.unwrap_or_else(|| error.to_string());
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(message.clone())))
        .with_responses(
            request
                .topics
                .iter()
                .map(|t| {
                    topic_response((
                        t.name.to_string(),
                        t.partitions
                            .iter()
                            .map(|p| (p.partition_index, Err((error, message.clone()))))
                            .collect(),
                    ))
                })
                .collect(),
        )
}

#[cfg(test)]
mod tests {
    use moldau_metadata::MetadataDelta;

    use super::*;

    const TOPIC: Uuid = Uuid::from_u128(9);

    const CLEAN: ElectionConfig = ElectionConfig {
        node_id: 1,
        unclean_default: false,
        min_isr_default: 1,
    };
    const UNCLEAN: ElectionConfig = ElectionConfig {
        node_id: 1,
        unclean_default: true,
        min_isr_default: 1,
    };

    /// Brokers 1-4 registered (`fenced` ones fenced); topic "t" of one partition on
    /// `replicas` with `isr`, led by the first of the ISR at leader epoch 2, partition
    /// epoch 5.
    fn image(fenced: &[i32], replicas: &[i32], isr: &[i32]) -> MetadataImage {
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        let mut offset = 0;
        let mut replay = |record: MetadataRecord| {
            delta.replay(offset, &record).unwrap();
            offset += 1;
        };
        for id in 1..=4 {
            replay(MetadataRecord::RegisterBroker {
                broker_id: id,
                broker_epoch: 10 + id as i64,
                host: "h".into(),
                port: 1,
                rack: None,
                fenced: fenced.contains(&id),
                incarnation_id: None,
                listeners: vec![],
            });
        }
        replay(MetadataRecord::Topic {
            name: "t".into(),
            topic_id: TOPIC,
        });
        replay(MetadataRecord::Partition {
            topic_id: TOPIC,
            partition_id: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            adding_replicas: vec![],
            removing_replicas: vec![],
            leader: isr[0],
            leader_epoch: 2,
            partition_epoch: 5,
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
        });
        delta.apply()
    }

    fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            delta.replay(image.offset + 1 + i as i64, record).unwrap();
        }
        delta.apply()
    }

    fn partition(image: &MetadataImage) -> PartitionImage {
        image.topic_by_name("t").unwrap().partitions[&0].clone()
    }

    fn reassign(
        image: &MetadataImage,
        target: Option<&[i32]>,
        unclean: ElectionConfig,
    ) -> (Vec<MetadataRecord>, Result<(), Refusal>) {
        let targets = vec![("t".to_string(), vec![(0, target.map(<[i32]>::to_vec))])];
        let (records, answers) = decide(image, &targets, true, unclean);
        (records, answers[0].1[0].1.clone())
    }

    #[test]
    fn reassignment_replicas_put_the_target_first() {
        assert_eq!(
            reassignment_replicas(&[1, 2, 3], &[4, 3, 2]),
            ReassignmentReplicas {
                replicas: vec![4, 3, 2, 1],
                adding: vec![4],
                removing: vec![1],
            }
        );
        assert_eq!(
            reassignment_replicas(&[3, 1], &[5, 4]),
            ReassignmentReplicas {
                replicas: vec![5, 4, 1, 3],
                adding: vec![4, 5],
                removing: vec![1, 3],
            }
        );
    }

    #[test]
    fn a_move_starts_then_completes_when_the_target_is_in_sync() {
        // [1] -> [2, 3], led by 1.
        let image = image(&[], &[1], &[1]);
        let (records, answer) = reassign(&image, Some(&[2, 3]), CLEAN);
        assert!(answer.is_ok());
        assert_eq!(
            records,
            vec![MetadataRecord::PartitionChange {
                topic_id: TOPIC,
                partition_id: 0,
                leader: None,
                isr: None,
                replicas: Some(vec![2, 3, 1]),
                adding_replicas: Some(vec![2, 3]),
                removing_replicas: Some(vec![1]),
                eligible_leader_replicas: None,
                last_known_elr: None,
            }]
        );
        let started = apply(&image, &records);
        let p = partition(&started);
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 2, 6));
        assert!(p.is_reassigning());

        // 2 catches up: not complete yet (3 is missing).
        let mut builder = ChangeBuilder::new(&p, 1);
        builder.target_isr = vec![1, 2];
        let half = builder.build(|_| true).unwrap();
        assert_eq!(half.isr, Some(vec![1, 2]));
        assert_eq!((half.leader, half.replicas.clone()), (None, None));
        assert!(half.next.is_reassigning());

        // 3 too: replicas become the target, 1 leaves the ISR and hands over to 2.
        let mut builder = ChangeBuilder::new(&half.next, 1);
        builder.target_isr = vec![1, 2, 3];
        let done = builder.build(|_| true).unwrap();
        assert_eq!(done.leader, Some(2));
        assert_eq!(done.isr, Some(vec![2, 3]));
        assert_eq!(done.replicas, Some(vec![2, 3]));
        assert_eq!(done.adding_replicas, Some(vec![]));
        assert_eq!(done.removing_replicas, Some(vec![]));
        assert_eq!((done.next.leader_epoch, done.next.partition_epoch), (3, 8));
        assert!(!done.next.is_reassigning());
    }

    #[test]
    fn a_reassignment_the_isr_already_satisfies_completes_at_once() {
        // A reordering: same replicas, nothing to wait for, the leader stays.
        let image = image(&[], &[1, 2, 3], &[1, 2, 3]);
        let (records, answer) = reassign(&image, Some(&[3, 2, 1]), CLEAN);
        assert!(answer.is_ok());
        let p = partition(&apply(&image, &records));
        assert_eq!(p.replicas, vec![3, 2, 1]);
        assert_eq!((p.leader, p.leader_epoch), (1, 2));
        assert!(!p.is_reassigning());
        // A shrink away from the leader: a new leader and epoch at once.
        let (records, _) = reassign(&image, Some(&[2, 3]), CLEAN);
        let p = partition(&apply(&image, &records));
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![2, 3], vec![2, 3])
        );
        assert_eq!((p.leader, p.leader_epoch), (2, 3));
        // A shrink that keeps the leader still bumps the epoch (the dropped are fenced).
        let (records, _) = reassign(&image, Some(&[1, 2]), CLEAN);
        let p = partition(&apply(&image, &records));
        assert_eq!(
            (p.leader, p.leader_epoch, p.isr.clone()),
            (1, 3, vec![1, 2])
        );
        // The same assignment again writes nothing.
        let (records, answer) = reassign(&image, Some(&[1, 2, 3]), CLEAN);
        assert!(answer.is_ok() && records.is_empty());
    }

    #[test]
    fn targets_are_checked_as_kafka_checks_manual_assignments() {
        // 3 is fenced: still a valid target. 5 is not registered.
        let image = image(&[3], &[1], &[1]);
        for (target, needle) in [
            (&[][..], "empty replica list"),
            (&[2, 5], "broker 5, but no such broker is registered"),
            (&[2, 2], "broker 2 more than once"),
        ] {
            let (records, answer) = reassign(&image, Some(target), CLEAN);
            let (error, message) = answer.unwrap_err();
            assert_eq!(error, ResponseError::InvalidReplicaAssignment);
            assert!(message.contains(needle), "{message}");
            assert!(records.is_empty());
        }
        let (records, answer) = reassign(&image, Some(&[3]), CLEAN);
        assert!(answer.is_ok());
        assert_eq!(partition(&apply(&image, &records)).adding_replicas, vec![3]);

        let targets = vec![
            ("nope".to_string(), vec![(0, Some(vec![1]))]),
            ("t".to_string(), vec![(7, Some(vec![1]))]),
        ];
        let (records, answers) = decide(&image, &targets, true, CLEAN);
        assert!(records.is_empty());
        for (_, partitions) in &answers {
            assert_eq!(
                partitions[0].1.as_ref().unwrap_err().0,
                ResponseError::UnknownTopicOrPartition
            );
        }
        // KIP-860: the replication factor may not change unless allowed.
        let targets = vec![("t".to_string(), vec![(0, Some(vec![2, 3]))])];
        let (records, answers) = decide(&image, &targets, false, CLEAN);
        assert!(records.is_empty());
        assert_eq!(
            answers[0].1[0].1.as_ref().unwrap_err().0,
            ResponseError::InvalidReplicationFactor
        );
        let targets = vec![("t".to_string(), vec![(0, Some(vec![2]))])];
        let (records, _) = decide(&image, &targets, false, CLEAN);
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn cancel_reverts_to_the_original_replicas() {
        let image = image(&[], &[1, 2], &[1, 2]);
        let (none, answer) = reassign(&image, None, CLEAN);
        assert!(none.is_empty());
        assert_eq!(
            answer.unwrap_err().0,
            ResponseError::NoReassignmentInProgress
        );
        // [1, 2] -> [3, 4]: 3 has caught up, 4 not yet.
        let (records, _) = reassign(&image, Some(&[3, 4]), CLEAN);
        let started = apply(&image, &records);
        let p = partition(&started);
        let mut builder = ChangeBuilder::new(&p, 1);
        builder.target_isr = vec![1, 2, 3];
        let caught_up = builder.build(|_| true).unwrap();
        let caught_up = apply(&started, &[caught_up.record(TOPIC, 0)]);
        assert_eq!(partition(&caught_up).replicas, vec![3, 4, 1, 2]);

        let (records, answer) = reassign(&caught_up, None, CLEAN);
        assert!(answer.is_ok());
        let p = partition(&apply(&caught_up, &records));
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![1, 2], vec![1, 2])
        );
        assert!(!p.is_reassigning());
        // Replicas left: a new leader epoch, same leader.
        assert_eq!((p.leader, p.leader_epoch), (1, 3));
    }

    #[test]
    fn a_cancel_that_leaves_no_in_sync_replica_needs_unclean_election() {
        // [1] -> [2]: 2 joined the ISR, then 1 left it (it fell behind).
        let image = image(&[], &[1], &[1]);
        let (records, _) = reassign(&image, Some(&[2, 3]), CLEAN);
        let started = apply(&image, &records);
        let p = partition(&started);
        let changed = p.merge(Some(2), Some(&[2]), None, None, None);
        let mut delta = MetadataDelta::new(&started);
        let record = whole_change(&p, &changed).unwrap().record(TOPIC, 0);
        delta.replay(started.offset + 1, &record).unwrap();
        let stuck = delta.apply();
        let (records, answer) = reassign(&stuck, None, CLEAN);
        let (error, message) = answer.unwrap_err();
        assert_eq!(error, ResponseError::InvalidReplicaAssignment);
        assert!(message.contains("unclean leader election"), "{message}");
        assert!(records.is_empty());
        let (records, answer) = reassign(&stuck, None, UNCLEAN);
        assert!(answer.is_ok());
        let p = partition(&apply(&stuck, &records));
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader),
            (vec![1], vec![1], 1)
        );
    }

    #[test]
    fn a_partition_named_twice_ends_as_the_second_asks_in_one_record() {
        let image = image(&[], &[1], &[1]);
        let targets = vec![("t".to_string(), vec![(0, Some(vec![2])), (0, None)])];
        let (records, answers) = decide(&image, &targets, true, CLEAN);
        assert!(answers[0].1.iter().all(|(_, a)| a.is_ok()));
        assert_eq!(records.len(), 1);
        let p = partition(&apply(&image, &records));
        assert_eq!(p.replicas, vec![1]);
        assert!(!p.is_reassigning());
    }
}
