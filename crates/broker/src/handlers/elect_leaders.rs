//! ElectLeaders (`kafka-leader-election`, the Java Admin's `electLeaders`), and the active
//! controller's own elections: automatic leader rebalancing and unclean elections for
//! leaderless partitions of topics that allow them.
//!
//! Admin clients send ElectLeaders to the active controller (Metadata's controller id);
//! any other node forwards it there, as Kafka's brokers do. The controller decides each
//! partition against its image as Kafka's `ReplicationControlManager.electLeader` and
//! `PartitionChangeBuilder` do (without ELR):
//! - PREFERRED: ELECTION_NOT_NEEDED when the first replica leads; else the first replica
//!   leads if it is in the ISR and unfenced; else, when the current leader is still in
//!   sync and unfenced, PREFERRED_LEADER_NOT_AVAILABLE; else the first other in-sync
//!   unfenced replica leads (PREFERRED_LEADER_NOT_AVAILABLE when there is none).
//! - UNCLEAN: ELECTION_NOT_NEEDED when the partition has a leader; else the first in-sync
//!   unfenced replica leads, else the first unfenced replica with itself as the ISR
//!   (records only the others had are lost), else ELIGIBLE_LEADERS_NOT_AVAILABLE. This
//!   does not depend on `unclean.leader.election.enable`, as in Kafka.
//!
//! `topic_partitions = null` means every partition, and the answer then leaves out the
//! partitions that needed nothing (Kafka's controller, any version). Unknown topics and
//! partitions are UNKNOWN_TOPIC_OR_PARTITION. Every election is one `PartitionChange`
//! (new leader, and the ISR of an unclean one), committed in writes of at most
//! `MAX_RECORDS_PER_USER_OP` records, each decided against the image of its moment.
//!
//! The leader balancer ([`spawn_leader_balancer`]) runs on every node and acts while the
//! node is the active controller: every `leader.imbalance.check.interval.seconds` (with
//! `auto.leader.rebalance.enable`) it runs preferred elections for the brokers more than
//! `leader.imbalance.per.broker.percentage` of whose preferred partitions are led
//! elsewhere, for those partitions where the preferred replica is in sync and unfenced;
//! and on every metadata change (a topic's or the cluster's `unclean.leader.election.enable`
//! turned on, a broker back) it runs unclean elections for the leaderless partitions whose
//! topic allows them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataImage, MetadataRecord, PartitionImage, Uuid};
use moldau_security::acl::AclOperation;
use tokio::task::JoinHandle;

use super::{authz, forward_to_controller, str_bytes, topic_name};
use crate::api::RequestContext;
use crate::broker_lifecycle::ElectionConfig;
use crate::controller::MAX_RECORDS_PER_USER_OP;
use crate::error::BrokerError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ElectLeadersRequest::VERSIONS;

/// Kafka's `ElectionType` (the request's `election_type`; v0 knows only PREFERRED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

impl ElectionType {
    pub fn from_wire(value: i8) -> Option<Self> {
        match value {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }
}

/// A partition's new leader, and its new ISR when that changes (an unclean election, or
/// one from the eligible leader replicas), with the ELR fields that change with it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NewLeader {
    pub leader: i32,
    pub isr: Option<Vec<i32>>,
    pub eligible_leader_replicas: Option<Vec<i32>>,
    pub last_known_elr: Option<Vec<i32>>,
}

/// One partition's election (see the module doc), against its state `p` and which
/// brokers may lead (`usable`: registered and unfenced). `Err` is the partition's answer.
pub fn elect(
    p: &PartitionImage,
    election: ElectionType,
    usable: impl Fn(i32) -> bool,
) -> Result<NewLeader, ResponseError> {
    // With an empty ISR, the eligible leader replicas are in sync (KIP-966).
    let in_sync = |id: i32| {
        (p.isr.contains(&id) || (p.isr.is_empty() && p.eligible_leader_replicas.contains(&id)))
            && usable(id)
    };
    let clean = |leader| {
        if p.isr.contains(&leader) {
            NewLeader {
                leader,
                ..NewLeader::default()
            }
        } else {
            // From the ELR: it alone is in sync now.
            NewLeader {
                leader,
                isr: Some(vec![leader]),
                eligible_leader_replicas: Some(
                    p.eligible_leader_replicas
                        .iter()
                        .copied()
                        .filter(|id| *id != leader)
                        .collect(),
                ),
                last_known_elr: None,
            }
        }
    };
    // An unclean election ends the ELR (Kafka's maybeUpdateRecordElr).
    let cleared = |field: &Vec<i32>| (!field.is_empty()).then(Vec::new);
    match election {
        ElectionType::Preferred => {
            let Some((&preferred, others)) = p.replicas.split_first() else {
                return Err(ResponseError::PreferredLeaderNotAvailable);
            };
            if p.leader == preferred {
                return Err(ResponseError::ElectionNotNeeded);
            }
            if in_sync(preferred) {
                return Ok(clean(preferred));
            }
            if in_sync(p.leader) {
                // The current leader meets every constraint: nothing changes.
                return Err(ResponseError::PreferredLeaderNotAvailable);
            }
            others
                .iter()
                .copied()
                .find(|id| in_sync(*id))
                .map(clean)
                .ok_or(ResponseError::PreferredLeaderNotAvailable)
        }
        ElectionType::Unclean => {
            if p.leader != -1 {
                return Err(ResponseError::ElectionNotNeeded);
            }
            if let Some(id) = p.replicas.iter().copied().find(|id| in_sync(*id)) {
                return Ok(clean(id));
            }
            p.replicas
                .iter()
                .copied()
                .find(|id| usable(*id))
                .map(|id| NewLeader {
                    leader: id,
                    isr: Some(vec![id]),
                    eligible_leader_replicas: cleared(&p.eligible_leader_replicas),
                    last_known_elr: cleared(&p.last_known_elr),
                })
                .ok_or(ResponseError::EligibleLeadersNotAvailable)
        }
    }
}

/// A partition by topic name.
type Key = (String, i32);
/// A partition's answer: an error code and Kafka's message.
type Refusal = (ResponseError, Option<String>);
/// What one partition comes to: its topic id and new leader, or its answer.
type Decision = Result<(Uuid, NewLeader), Refusal>;

fn usable(image: &MetadataImage) -> impl Fn(i32) -> bool + '_ {
    |id| image.brokers.get(&id).is_some_and(|b| !b.fenced)
}

/// Kafka's message for each answer a partition can get (`Errors.message()`).
fn refusal(error: ResponseError) -> Refusal {
    let message = match error {
        ResponseError::ElectionNotNeeded => "Leader election not needed for topic partition.",
        ResponseError::PreferredLeaderNotAvailable => "The preferred leader was not available.",
        ResponseError::EligibleLeadersNotAvailable => {
            "Eligible topic partition leaders are not available."
        }
        _ => return (error, None),
    };
    (error, Some(message.to_string()))
}

/// The decisions of an ElectLeaders request against `image`: every partition of
/// `targets` (topic, partitions) in request order, or every partition of every topic
/// (sorted by name) when `targets` is `None`.
fn decide(
    image: &MetadataImage,
    election: ElectionType,
    targets: Option<&[(String, Vec<i32>)]>,
) -> Vec<(Key, Decision)> {
    let usable = usable(image);
    let mut decisions = Vec::new();
    let Some(targets) = targets else {
        for topic in image.topics() {
            for (partition_id, p) in &topic.partitions {
                let decision = elect(p, election, &usable)
                    .map(|new| (topic.topic_id, new))
                    .map_err(refusal);
                decisions.push(((topic.name.clone(), *partition_id), decision));
            }
        }
        return decisions;
    };
    for (name, partitions) in targets {
        let topic = image.topic_by_name(name);
        for partition_id in partitions {
            let decision = match topic {
                None => Err((
                    ResponseError::UnknownTopicOrPartition,
                    Some(format!("No such topic as {name}")),
                )),
                Some(topic) => match topic.partitions.get(partition_id) {
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        Some(format!("No such partition as {name}-{partition_id}")),
                    )),
                    Some(p) => elect(p, election, &usable)
                        .map(|new| (topic.topic_id, new))
                        .map_err(refusal),
                },
            };
            decisions.push(((name.clone(), *partition_id), decision));
        }
    }
    decisions
}

/// The record of one election. Replica fields stay as they are.
fn leader_change(topic_id: Uuid, partition_id: i32, new: NewLeader) -> MetadataRecord {
    MetadataRecord::PartitionChange {
        topic_id,
        partition_id,
        leader: Some(new.leader),
        isr: new.isr,
        replicas: None,
        adding_replicas: None,
        removing_replicas: None,
        eligible_leader_replicas: new.eligible_leader_replicas,
        last_known_elr: new.last_known_elr,
    }
}

/// Each partition's settled answer (`Ok`: a new leader was committed).
type Outcomes = HashMap<Key, Result<(), Refusal>>;

/// Commits the elections `decide` finds, in writes of at most `MAX_RECORDS_PER_USER_OP`
/// records, each decided against the image of its moment (a partition settled by an
/// earlier write keeps its answer). Returns the partitions in the first decision's order
/// and each one's answer.
async fn commit(
    state: &BrokerState,
    decide: impl Fn(&MetadataImage) -> Vec<(Key, Decision)>,
) -> Result<(Vec<Key>, Outcomes), BrokerError> {
    let mut order: Option<Vec<Key>> = None;
    let mut outcomes = Outcomes::new();
    loop {
        let (decided_order, settled, more) = state
            .controller
            .write(|image| {
                let decisions = decide(image);
                let decided_order: Vec<Key> = decisions.iter().map(|(k, _)| k.clone()).collect();
                let mut seen = HashSet::new();
                let mut records = Vec::new();
                let mut settled = Vec::new();
                let mut more = false;
                for (key, decision) in decisions {
                    if outcomes.contains_key(&key) || !seen.insert(key.clone()) {
                        continue;
                    }
                    match decision {
                        Ok(_) if records.len() == MAX_RECORDS_PER_USER_OP => more = true,
                        Ok((topic_id, new)) => {
                            if new.isr.is_some() {
                                tracing::warn!(
                                    topic = %key.0,
                                    partition = key.1,
                                    leader = new.leader,
                                    "unclean leader election: no in-sync replica is available; \
                                     records the old ISR had and this replica lacks are lost"
                                );
                            }
                            records.push(leader_change(topic_id, key.1, new));
                            settled.push((key, Ok(())));
                        }
                        Err(refusal) => settled.push((key, Err(refusal))),
                    }
                }
                Ok::<_, BrokerError>((records, (decided_order, settled, more)))
            })
            .await?;
        order.get_or_insert(decided_order);
        outcomes.extend(settled);
        if !more {
            return Ok((order.unwrap_or_default(), outcomes));
        }
    }
}

fn partition_result(partition_id: i32, outcome: Option<&Result<(), Refusal>>) -> PartitionResult {
    let result = PartitionResult::default().with_partition_id(partition_id);
    match outcome {
        // Kafka's ApiError.NONE has no message.
        Some(Ok(())) => result.with_error_message(None),
        Some(Err((error, message))) => result
            .with_error_code(error.code())
            .with_error_message(message.clone().map(str_bytes)),
        // Not reached: every requested partition is decided.
        None => result.with_error_code(ResponseError::UnknownServerError.code()),
    }
}

/// The answer: per requested topic in request order, or (all partitions asked for) per
/// topic, without the partitions that needed no election (as Kafka's controller).
fn response(
    targets: Option<&[(String, Vec<i32>)]>,
    order: &[Key],
    outcomes: &Outcomes,
) -> ElectLeadersResponse {
    let results = match targets {
        Some(targets) => targets
            .iter()
            .map(|(name, partitions)| {
                let partition_result = partitions
                    .iter()
                    .map(|p| partition_result(*p, outcomes.get(&(name.clone(), *p))))
                    .collect();
                ReplicaElectionResult::default()
                    .with_topic(topic_name(name))
                    .with_partition_result(partition_result)
            })
            .collect(),
        None => {
            let mut by_topic: Vec<(String, Vec<PartitionResult>)> = Vec::new();
            for key in order {
                if by_topic.last().is_none_or(|(name, _)| *name != key.0) {
                    by_topic.push((key.0.clone(), Vec::new()));
                }
                let outcome = outcomes.get(key);
                let not_needed =
                    matches!(outcome, Some(Err((ResponseError::ElectionNotNeeded, _))));
                if !not_needed {
                    if let Some((_, results)) = by_topic.last_mut() {
                        results.push(partition_result(key.1, outcome));
                    }
                }
            }
            by_topic
                .into_iter()
                .map(|(name, results)| {
                    ReplicaElectionResult::default()
                        .with_topic(topic_name(&name))
                        .with_partition_result(results)
                })
                .collect()
        }
    };
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// A whole request refused (Kafka's `ElectLeadersRequest.getErrorResponse`): the error on
/// every requested partition, and at the top (v1+; v0 has no top-level code).
fn error_response(
    targets: Option<&[(String, Vec<i32>)]>,
    api_version: i16,
    error: ResponseError,
    message: String,
) -> ElectLeadersResponse {
    let results = targets
        .unwrap_or_default()
        .iter()
        .map(|(name, partitions)| {
            let partition_result = partitions
                .iter()
                .map(|p| {
                    PartitionResult::default()
                        .with_partition_id(*p)
                        .with_error_code(error.code())
                        .with_error_message(Some(str_bytes(message.clone())))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(topic_name(name))
                .with_partition_result(partition_result)
        })
        .collect();
    let response = ElectLeadersResponse::default().with_replica_election_results(results);
    if api_version >= 1 {
        response.with_error_code(error.code())
    } else {
        response
    }
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let targets: Option<Vec<(String, Vec<i32>)>> =
        request.topic_partitions.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (t.topic.to_string(), t.partitions.clone()))
                .collect()
        });
    // Kafka's controller asks ALTER on the cluster first.
    if let Err(message) = authz::authorize_cluster_unless_forwarded(state, ctx, AclOperation::Alter)
    {
        return error_response(
            targets.as_deref(),
            ctx.api_version,
            ResponseError::ClusterAuthorizationFailed,
            message,
        );
    }
    // As Kafka's controller: null is every partition, an empty list nothing at all.
    if targets.as_ref().is_some_and(|t| t.is_empty()) {
        return ElectLeadersResponse::default();
    }
    if !state.controller.quorum().is_leader() {
        if let Some(response) = forward_to_controller(state, ctx.api_version, &request).await {
            return response;
        }
    }
    let Some(election) = ElectionType::from_wire(request.election_type) else {
        return error_response(
            targets.as_deref(),
            ctx.api_version,
            ResponseError::InvalidRequest,
            format!("Unknown election type {}", request.election_type),
        );
    };
    let targets = targets.as_deref();
    match commit(state, |image| decide(image, election, targets)).await {
        Ok((order, outcomes)) => response(targets, &order, &outcomes),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::warn!(%e, "leader election failed");
            }
            error_response(targets, ctx.api_version, e.response_error(), e.to_string())
        }
    }
}

/// A partition led by another broker than its preferred replica.
type Preferring<'a> = (Key, Uuid, &'a PartitionImage);

/// The preferred elections the leader balancer runs (Kafka's auto leader rebalance, with
/// the per-broker threshold): for each broker that is the preferred (first) replica of
/// some partitions and leads more than `percentage` % of them not, those partitions whose
/// preferred replica is in sync and unfenced.
fn rebalance_elections(image: &MetadataImage, percentage: i32) -> Vec<(Key, Decision)> {
    let usable = usable(image);
    // Per preferred broker: how many partitions prefer it, and those led by another.
    let mut per_broker: BTreeMap<i32, (usize, Vec<Preferring>)> = BTreeMap::new();
    for topic in image.topics() {
        for (partition_id, p) in &topic.partitions {
            let Some(&preferred) = p.replicas.first() else {
                continue;
            };
            let (total, elsewhere) = per_broker.entry(preferred).or_default();
            *total += 1;
            if p.leader != preferred {
                elsewhere.push(((topic.name.clone(), *partition_id), topic.topic_id, p));
            }
        }
    }
    let mut decisions = Vec::new();
    for (broker, (total, elsewhere)) in per_broker {
        let ratio = elsewhere.len() as f64 / total as f64;
        if elsewhere.is_empty() || ratio <= f64::from(percentage) / 100.0 {
            continue;
        }
        for (key, topic_id, p) in elsewhere {
            if !(p.isr.contains(&broker) && usable(broker)) {
                continue;
            }
            if let Ok(new) = elect(p, ElectionType::Preferred, &usable) {
                decisions.push((key, Ok((topic_id, new))));
            }
        }
    }
    decisions
}

/// The unclean elections the leader balancer runs (Kafka's
/// `maybeTriggerUncleanLeaderElectionForLeaderlessPartitions`): leaderless partitions of
/// topics where `unclean.leader.election.enable` holds, that some replica can now lead.
fn unclean_elections(image: &MetadataImage, unclean: ElectionConfig) -> Vec<(Key, Decision)> {
    let usable = usable(image);
    let mut decisions = Vec::new();
    for topic in image.topics() {
        let mut leaderless = topic.partitions.iter().filter(|(_, p)| p.leader == -1);
        let Some(first) = leaderless.next() else {
            continue;
        };
        if !unclean.unclean_enabled(image, &topic.name) {
            continue;
        }
        for (partition_id, p) in std::iter::once(first).chain(leaderless) {
            if let Ok(new) = elect(p, ElectionType::Unclean, &usable) {
                decisions.push((
                    (topic.name.clone(), *partition_id),
                    Ok((topic.topic_id, new)),
                ));
            }
        }
    }
    decisions
}

/// Runs `elections` as the active controller when the local image says there is
/// something to do (most metadata changes leave nothing); logs what was done.
async fn run_elections(
    state: &BrokerState,
    what: &str,
    elections: impl Fn(&MetadataImage) -> Vec<(Key, Decision)>,
) {
    if elections(&state.image()).is_empty() {
        return;
    }
    match commit(state, elections).await {
        Ok((_, outcomes)) => {
            let elected = outcomes.values().filter(|o| o.is_ok()).count();
            if elected > 0 {
                tracing::info!(partitions = elected, "{what}: elected new leaders");
            }
        }
        Err(e) => tracing::warn!(%e, "{what} failed"),
    }
}

/// The leader balancer (see the module doc): acts only while this node is the active
/// controller.
pub fn spawn_leader_balancer(state: Arc<BrokerState>) -> JoinHandle<()> {
    crate::supervisor::spawn_supervised("leader balancer", move || {
        let state = state.clone();
        async move { balance(&state).await }
    })
}

async fn balance(state: &BrokerState) {
    let config = &state.config;
    let interval = Duration::from_secs(config.leader_imbalance_check_interval_seconds);
    let percentage = config.leader_imbalance_per_broker_percentage;
    let unclean = ElectionConfig::of(state);
    let mut images = state.controller.quorum().subscribe();
    // None: an interval too long to ever come round.
    let mut next_check = tokio::time::Instant::now().checked_add(interval);
    loop {
        if state.controller.quorum().is_leader() {
            run_elections(state, "unclean leader election", |image| {
                unclean_elections(image, unclean)
            })
            .await;
        }
        let due = next_check;
        let check = async move {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = images.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = check => {
                if config.auto_leader_rebalance_enable && state.controller.quorum().is_leader() {
                    run_elections(state, "auto leader rebalance", |image| {
                        rebalance_elections(image, percentage)
                    })
                    .await;
                }
                next_check = tokio::time::Instant::now().checked_add(interval);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use moldau_metadata::{ConfigResourceType, MetadataDelta};

    use super::*;

    const TOPIC: Uuid = Uuid::from_u128(9);

    /// A partition: id, replicas, ISR, leader.
    type Spec<'a> = (i32, &'a [i32], &'a [i32], i32);

    /// Brokers 1-3 (`fenced` ones fenced) and topic "t" with `partitions`; `unclean`:
    /// the topic's `unclean.leader.election.enable`.
    fn image_with(fenced: &[i32], partitions: &[Spec], unclean: Option<&str>) -> MetadataImage {
        let mut records = Vec::new();
        for id in 1..=3 {
            records.push(MetadataRecord::RegisterBroker {
                broker_id: id,
                broker_epoch: id as i64,
                host: "h".into(),
                port: 1,
                rack: None,
                fenced: fenced.contains(&id),
                incarnation_id: None,
                listeners: vec![],
            });
        }
        records.push(MetadataRecord::Topic {
            name: "t".into(),
            topic_id: TOPIC,
        });
        for (partition_id, replicas, isr, leader) in partitions {
            records.push(MetadataRecord::Partition {
                topic_id: TOPIC,
                partition_id: *partition_id,
                replicas: replicas.to_vec(),
                isr: isr.to_vec(),
                adding_replicas: vec![],
                removing_replicas: vec![],
                leader: *leader,
                leader_epoch: 0,
                partition_epoch: 0,
                eligible_leader_replicas: Vec::new(),
                last_known_elr: Vec::new(),
            });
        }
        if let Some(value) = unclean {
            records.push(MetadataRecord::Config {
                resource_type: ConfigResourceType::Topic,
                resource_name: "t".into(),
                name: "unclean.leader.election.enable".into(),
                value: Some(value.into()),
            });
        }
        apply(&MetadataImage::empty(), &records)
    }

    fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            delta.replay(image.offset + 1 + i as i64, record).unwrap();
        }
        delta.apply()
    }

    fn partition(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionImage {
        PartitionImage::new(replicas.to_vec(), isr.to_vec(), leader, 0, 0)
    }

    fn up_but(fenced: &'static [i32]) -> impl Fn(i32) -> bool {
        move |id| !fenced.contains(&id)
    }

    fn clean(leader: i32) -> Result<NewLeader, ResponseError> {
        Ok(NewLeader {
            leader,
            isr: None,
            eligible_leader_replicas: None,
            last_known_elr: None,
        })
    }

    #[test]
    fn preferred_election_follows_kafkas_partition_change_builder() {
        use ElectionType::Preferred;
        use ResponseError::*;
        // The preferred replica leads already.
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        assert_eq!(elect(&p, Preferred, up_but(&[])), Err(ElectionNotNeeded));
        // It is in sync and unfenced: it takes over.
        let p = partition(&[1, 2, 3], &[2, 3, 1], 2);
        assert_eq!(elect(&p, Preferred, up_but(&[])), clean(1));
        // Fenced, or out of sync: the current leader stays.
        assert_eq!(
            elect(&p, Preferred, up_but(&[1])),
            Err(PreferredLeaderNotAvailable)
        );
        let out_of_sync = partition(&[1, 2, 3], &[2, 3], 2);
        assert_eq!(
            elect(&out_of_sync, Preferred, up_but(&[])),
            Err(PreferredLeaderNotAvailable)
        );
        // A current leader that can no longer lead gives way to the next in-sync replica.
        assert_eq!(elect(&out_of_sync, Preferred, up_but(&[2])), clean(3));
        // Nobody at all.
        let alone = partition(&[1, 2], &[1], -1);
        assert_eq!(
            elect(&alone, Preferred, up_but(&[1])),
            Err(PreferredLeaderNotAvailable)
        );
        assert_eq!(
            elect(&partition(&[], &[], -1), Preferred, up_but(&[])),
            Err(PreferredLeaderNotAvailable)
        );
    }

    #[test]
    fn unclean_election_only_gives_leaderless_partitions_a_leader() {
        use ElectionType::Unclean;
        use ResponseError::*;
        let led = partition(&[1, 2], &[2], 2);
        assert_eq!(elect(&led, Unclean, up_but(&[])), Err(ElectionNotNeeded));
        // An in-sync replica that can lead comes first (a clean election).
        let leaderless = partition(&[1, 2, 3], &[3], -1);
        assert_eq!(elect(&leaderless, Unclean, up_but(&[])), clean(3));
        // Else the first unfenced replica, alone in the ISR.
        assert_eq!(
            elect(&leaderless, Unclean, up_but(&[3])),
            Ok(NewLeader {
                leader: 1,
                isr: Some(vec![1]),
                eligible_leader_replicas: None,
                last_known_elr: None,
            })
        );
        assert_eq!(
            elect(&leaderless, Unclean, up_but(&[1, 3])),
            Ok(NewLeader {
                leader: 2,
                isr: Some(vec![2]),
                eligible_leader_replicas: None,
                last_known_elr: None,
            })
        );
        assert_eq!(
            elect(&leaderless, Unclean, up_but(&[1, 2, 3])),
            Err(EligibleLeadersNotAvailable)
        );
    }

    fn codes(decisions: &[(Key, Decision)]) -> Vec<(i32, Result<i32, i16>)> {
        decisions
            .iter()
            .map(|((_, p), d)| {
                let d = match d {
                    Ok((topic_id, new)) => {
                        assert_eq!(*topic_id, TOPIC);
                        Ok(new.leader)
                    }
                    Err((e, _)) => Err(e.code()),
                };
                (*p, d)
            })
            .collect()
    }

    /// p0 led by its preferred 1; p1 by 2, 1 in sync; p2 by 3, 1 out of sync.
    const PARTITIONS: &[Spec] = &[
        (0, &[1, 2, 3], &[1, 2, 3], 1),
        (1, &[1, 2, 3], &[1, 2, 3], 2),
        (2, &[1, 2, 3], &[2, 3], 3),
    ];

    #[test]
    fn a_request_is_decided_per_partition_with_kafkas_errors() {
        let image = image_with(&[], PARTITIONS, None);
        let every = decide(&image, ElectionType::Preferred, None);
        assert_eq!(codes(&every), vec![(0, Err(84)), (1, Ok(1)), (2, Err(80))]);
        let targets = vec![("t".to_string(), vec![1, 7]), ("nope".to_string(), vec![0])];
        let named = decide(&image, ElectionType::Preferred, Some(&targets));
        assert_eq!(codes(&named), vec![(1, Ok(1)), (7, Err(3)), (0, Err(3))]);
        let messages: Vec<_> = named
            .iter()
            .filter_map(|(_, d)| d.as_ref().err().and_then(|(_, m)| m.clone()))
            .collect();
        assert_eq!(
            messages,
            ["No such partition as t-7", "No such topic as nope"]
        );
    }

    #[test]
    fn asking_for_every_partition_leaves_out_those_that_needed_nothing() {
        let order: Vec<Key> = (0..3).map(|p| ("t".to_string(), p)).collect();
        let mut outcomes = Outcomes::new();
        outcomes.insert(
            order[0].clone(),
            Err(refusal(ResponseError::ElectionNotNeeded)),
        );
        outcomes.insert(order[1].clone(), Ok(()));
        outcomes.insert(
            order[2].clone(),
            Err(refusal(ResponseError::PreferredLeaderNotAvailable)),
        );
        let all = response(None, &order, &outcomes);
        assert_eq!(all.replica_election_results.len(), 1);
        let results = &all.replica_election_results[0].partition_result;
        let seen: Vec<_> = results
            .iter()
            .map(|r| (r.partition_id, r.error_code))
            .collect();
        assert_eq!(seen, vec![(1, 0), (2, 80)]);
        assert_eq!(results[0].error_message, None);
        assert_eq!(
            results[1].error_message.as_deref(),
            Some("The preferred leader was not available.")
        );
        // Named partitions are all answered, ELECTION_NOT_NEEDED included.
        let targets = vec![("t".to_string(), vec![0, 1])];
        let named = response(Some(&targets), &order, &outcomes);
        let seen: Vec<_> = named.replica_election_results[0]
            .partition_result
            .iter()
            .map(|r| (r.partition_id, r.error_code))
            .collect();
        assert_eq!(seen, vec![(0, 84), (1, 0)]);
    }

    #[test]
    fn a_refused_request_answers_every_partition_and_v1_at_the_top() {
        let targets = vec![("t".to_string(), vec![0, 1])];
        let refused = |version| {
            error_response(
                Some(&targets),
                version,
                ResponseError::NotController,
                "moved".into(),
            )
        };
        let v0 = refused(0);
        assert_eq!(v0.error_code, 0);
        let codes: Vec<_> = v0.replica_election_results[0]
            .partition_result
            .iter()
            .map(|r| r.error_code)
            .collect();
        assert_eq!(codes, vec![41, 41]);
        assert_eq!(refused(1).error_code, 41);
        // Encodable at every version.
        use kafka_protocol::protocol::Encodable;
        for version in 0..=2 {
            let mut buf = bytes::BytesMut::new();
            refused(version).encode(&mut buf, version).unwrap();
        }
    }

    #[test]
    fn records_set_the_new_leader_and_an_unclean_isr() {
        let image = image_with(&[3], &[(0, &[1, 3], &[3], -1)], None);
        let decisions = decide(&image, ElectionType::Unclean, None);
        let Ok((topic_id, new)) = decisions[0].1.clone() else {
            panic!("{decisions:?}");
        };
        let after = apply(&image, &[leader_change(topic_id, 0, new)]);
        let p = &after.topic_by_id(&TOPIC).unwrap().partitions[&0];
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (1, vec![1], 1));
        assert_eq!(p.replicas, vec![1, 3]);
        // Once elected, nothing more to do.
        assert_eq!(
            codes(&decide(&after, ElectionType::Unclean, None)),
            vec![(0, Err(84))]
        );
    }

    #[test]
    fn rebalancing_moves_a_brokers_partitions_once_its_imbalance_passes_the_threshold() {
        // Broker 1 prefers p0-p3 and leads only p0: 3 of 4 elsewhere (75 %). p3's
        // preferred replica is out of sync: not moved.
        let partitions: &[Spec] = &[
            (0, &[1, 2], &[1, 2], 1),
            (1, &[1, 2], &[1, 2], 2),
            (2, &[1, 3], &[1, 3], 3),
            (3, &[1, 2], &[2], 2),
            (4, &[2, 1], &[2, 1], 2),
        ];
        let image = image_with(&[], partitions, None);
        assert_eq!(
            codes(&rebalance_elections(&image, 10)),
            vec![(1, Ok(1)), (2, Ok(1))]
        );
        assert_eq!(codes(&rebalance_elections(&image, 74)).len(), 2);
        assert!(rebalance_elections(&image, 75).is_empty());
        // A fenced preferred replica is not elected.
        let fenced = image_with(&[1], partitions, None);
        assert!(rebalance_elections(&fenced, 10).is_empty());
        // Balanced: nothing.
        let balanced = image_with(&[], &[(0, &[1, 2], &[1, 2], 1)], None);
        assert!(rebalance_elections(&balanced, 0).is_empty());
        assert!(rebalance_elections(&balanced, -5).is_empty());
    }

    #[test]
    fn unclean_elections_run_only_where_the_topic_allows_them() {
        let static_off = ElectionConfig {
            node_id: 1,
            unclean_default: false,
            min_isr_default: 1,
        };
        // p0: leaderless, its ISR member 3 fenced, 1 unfenced; p1 led.
        let partitions: &[Spec] = &[(0, &[3, 1], &[3], -1), (1, &[1, 2], &[1, 2], 1)];
        let off = image_with(&[3], partitions, None);
        assert!(unclean_elections(&off, static_off).is_empty());
        let on = image_with(&[3], partitions, Some("true"));
        assert_eq!(codes(&unclean_elections(&on, static_off)), vec![(0, Ok(1))]);
        let static_on = ElectionConfig {
            node_id: 1,
            unclean_default: true,
            min_isr_default: 1,
        };
        assert_eq!(codes(&unclean_elections(&off, static_on)).len(), 1);
        let topic_off = image_with(&[3], partitions, Some("false"));
        assert!(unclean_elections(&topic_off, static_on).is_empty());
        // Nobody unfenced among the replicas: nothing to elect.
        let none = image_with(&[1, 3], partitions, Some("true"));
        assert!(unclean_elections(&none, static_off).is_empty());
    }
}
