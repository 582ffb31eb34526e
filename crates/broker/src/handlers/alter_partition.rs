//! AlterPartition: a partition leader asks the active controller to change the partition's
//! ISR (Kafka's `ReplicationControlManager.alterPartition`); and [`alter_isr`], the
//! leader's side of it, decided here when this node is the active controller, else sent
//! to it. NOT_CONTROLLER from any other node.
//!
//! The controller decides the whole request against one image, in Kafka's order:
//! STALE_BROKER_EPOCH (top level) when the sender's broker epoch is not the one it is
//! registered with; then per topic UNKNOWN_TOPIC_ID; per partition
//! UNKNOWN_TOPIC_OR_PARTITION, NOT_CONTROLLER when the request's leader or partition epoch
//! is ahead of the image (this controller is behind: the leader retries, and finds the
//! new one), FENCED_LEADER_EPOCH when its leader epoch is behind, INVALID_REQUEST when the
//! sender is not the leader, INVALID_UPDATE_VERSION when its partition epoch is behind,
//! INVALID_REQUEST for an ISR that names a non-replica or a replica twice, leaves the
//! leader out, or asks for leader recovery (Moldau has no unclean-recovery state), and
//! INELIGIBLE_REPLICA when a member is not registered, is fenced, or (v3) is registered
//! with another broker epoch than the one given. A valid change commits a
//! `PartitionChange` of the ISR (the partition epoch goes up by one, the leader epoch
//! stays); an unchanged ISR is answered with the current state and writes nothing.
//!
//! The change goes through Kafka's `PartitionChangeBuilder`
//! ([`super::alter_partition_reassignments::ChangeBuilder`]): an ISR that now holds every
//! replica a reassignment keeps completes it in the same record (replicas become the
//! target, the removed replicas leave the ISR, a new leader epoch), and when that takes the
//! leadership from the sender (it was being removed) the partition is answered
//! NEW_LEADER_ELECTED (FENCED_LEADER_EPOCH before v2), as Kafka does: the change is
//! committed, and the old leader learns the new state from the metadata.

use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

use kafka_protocol::messages::alter_partition_request;
use kafka_protocol::messages::alter_partition_response;
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, BrokerId};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataImage, MetadataRecord, PartitionImage, Uuid};
use moldau_security::acl::AclOperation;
use moldau_storage::TopicPartition;

use super::alter_partition_reassignments::{BuiltChange, ChangeBuilder, Election};
use crate::api::RequestContext;
use crate::authorizer;
use crate::broker_lifecycle::ElectionConfig;
use crate::error::BrokerError;
use crate::state::BrokerState;

/// v2 names topics by id, v3 gives each new ISR member's broker epoch (KIP-903).
pub const VERSIONS: VersionRange = AlterPartitionRequest::VERSIONS;

/// How long [`alter_isr`] keeps trying while there is no active controller, it moved,
/// or it cannot be reached.
const ALTER_ISR_TIMEOUT: Duration = Duration::from_secs(10);
const ALTER_ISR_RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// The longest one AlterPartition round trip may take.
const ALTER_ISR_RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// A partition's leadership and ISR as the controller committed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
}

impl IsrState {
    fn of(partition: &PartitionImage) -> Self {
        IsrState {
            leader: partition.leader,
            leader_epoch: partition.leader_epoch,
            isr: partition.isr.clone(),
            partition_epoch: partition.partition_epoch,
        }
    }
}

/// One partition's ISR change as its leader asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IsrChange {
    pub partition_id: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The new ISR: each member's id and broker epoch (-1: not checked, as in v2).
    pub new_isr: Vec<(i32, i64)>,
    /// 0 RECOVERED, 1 RECOVERING (KIP-704).
    pub leader_recovery_state: i8,
}

impl IsrChange {
    fn from_wire(version: i16, p: &alter_partition_request::PartitionData) -> Self {
        let new_isr = if version >= 3 {
            p.new_isr_with_epochs
                .iter()
                .map(|m| (m.broker_id.0, m.broker_epoch))
                .collect()
        } else {
            p.new_isr.iter().map(|id| (id.0, -1)).collect()
        };
        IsrChange {
            partition_id: p.partition_index,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr,
            leader_recovery_state: p.leader_recovery_state,
        }
    }
}

/// One topic's answers: per partition, its new (or unchanged) state or the refusal.
pub(crate) type TopicOutcome = (Uuid, Vec<(i32, Result<IsrState, ResponseError>)>);

/// The controller's decision on a whole request: the records to commit, and the answers.
#[derive(Debug)]
pub(crate) struct Decision {
    pub records: Vec<MetadataRecord>,
    pub topics: Vec<TopicOutcome>,
}

/// Decides an AlterPartition request (of `version`) from `sender` (registered at
/// `sender_epoch`) against `image`. `Err` is the top-level error (STALE_BROKER_EPOCH). A
/// partition named twice is decided the second time against the state the first one
/// leads to. `unclean`: where `unclean.leader.election.enable` is found, for the election
/// a completed reassignment may need (Kafka elects UNCLEAN here when the topic allows).
pub(crate) fn decide(
    image: &MetadataImage,
    version: i16,
    sender: i32,
    sender_epoch: i64,
    topics: &[(Uuid, Vec<IsrChange>)],
    unclean: ElectionConfig,
) -> Result<Decision, ResponseError> {
    if image
        .brokers
        .get(&sender)
        .is_none_or(|b| b.broker_epoch != sender_epoch)
    {
        return Err(ResponseError::StaleBrokerEpoch);
    }
    let mut records = Vec::new();
    let mut decided: HashMap<(Uuid, i32), PartitionImage> = HashMap::new();
    let mut outcomes = Vec::with_capacity(topics.len());
    for (topic_id, changes) in topics {
        let topic = image.topic_by_id(topic_id).filter(|_| !topic_id.is_nil());
        let mut answers = Vec::with_capacity(changes.len());
        for change in changes {
            let Some(topic) = topic else {
                answers.push((change.partition_id, Err(ResponseError::UnknownTopicId)));
                continue;
            };
            let key = (*topic_id, change.partition_id);
            let current = decided
                .get(&key)
                .or_else(|| topic.partitions.get(&change.partition_id));
            let election = if unclean.unclean_enabled(image, &topic.name) {
                Election::Unclean
            } else {
                Election::Online
            };
            let min_isr = unclean.min_isr(image, &topic.name);
            let answer = match decide_partition(image, sender, current, change, election, min_isr) {
                Ok((_, Some(built))) => {
                    records.push(built.record(*topic_id, change.partition_id));
                    let new_leader = built.leader.filter(|leader| *leader != sender);
                    let state = IsrState::of(&built.next);
                    decided.insert(key, built.next);
                    match new_leader {
                        // Committed, yet answered as an error: the sender no longer leads.
                        Some(leader) => {
                            tracing::info!(
                                sender,
                                %topic_id,
                                partition = change.partition_id,
                                leader,
                                "AlterPartition completed a reassignment that moved the \
                                 leadership"
                            );
                            Err(if version > 1 {
                                ResponseError::NewLeaderElected
                            } else {
                                ResponseError::FencedLeaderEpoch
                            })
                        }
                        None => Ok(state),
                    }
                }
                Ok((unchanged, None)) => Ok(IsrState::of(&unchanged)),
                Err(error) => Err(error),
            };
            if let Err(error) = &answer {
                tracing::debug!(
                    sender,
                    %topic_id,
                    partition = change.partition_id,
                    new_isr = ?change.new_isr,
                    "AlterPartition refused: {error:?}"
                );
            }
            answers.push((change.partition_id, answer));
        }
        outcomes.push((*topic_id, answers));
    }
    Ok(Decision {
        records,
        topics: outcomes,
    })
}

/// Kafka's `validateAlterPartitionData` for one partition (`current`: its state, `None`
/// when the topic has no such partition), in Kafka's order, then the change as Kafka's
/// `PartitionChangeBuilder` makes it. `Ok`: the partition as it is, and the change (`None`
/// when nothing changes: an ISR already in place writes nothing).
pub(crate) fn decide_partition(
    image: &MetadataImage,
    sender: i32,
    current: Option<&PartitionImage>,
    change: &IsrChange,
    election: Election,
    min_isr: usize,
) -> Result<(PartitionImage, Option<BuiltChange>), ResponseError> {
    let partition = current.ok_or(ResponseError::UnknownTopicOrPartition)?;
    // The leader knows a newer state than this controller: it is not the active one
    // (any more), or has not caught up; the leader retries and finds the right one.
    if change.leader_epoch > partition.leader_epoch
        || change.partition_epoch > partition.partition_epoch
    {
        return Err(ResponseError::NotController);
    }
    if change.leader_epoch < partition.leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch);
    }
    if sender != partition.leader {
        return Err(ResponseError::InvalidRequest);
    }
    if change.partition_epoch < partition.partition_epoch {
        return Err(ResponseError::InvalidUpdateVersion);
    }
    let new_isr: Vec<i32> = change.new_isr.iter().map(|(id, _)| *id).collect();
    let mut sorted = new_isr.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let valid =
        sorted.len() == new_isr.len() && new_isr.iter().all(|id| partition.replicas.contains(id));
    if !valid || !new_isr.contains(&partition.leader) {
        return Err(ResponseError::InvalidRequest);
    }
    // Moldau never elects uncleanly into RECOVERING, so a partition is always RECOVERED
    // and may not go back to RECOVERING (Kafka's two leader recovery checks).
    if change.leader_recovery_state != 0 {
        return Err(ResponseError::InvalidRequest);
    }
    let ineligible = change.new_isr.iter().any(|(id, epoch)| {
        image
            .brokers
            .get(id)
            .is_none_or(|b| b.fenced || (*epoch != -1 && *epoch != b.broker_epoch))
    });
    if ineligible {
        return Err(ResponseError::IneligibleReplica);
    }
    let mut builder = ChangeBuilder::new(partition, min_isr);
    builder.target_isr = new_isr;
    builder.election = election;
    let usable = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced);
    Ok((partition.clone(), builder.build(usable)))
}

/// Decides and commits a request on this node, which must be the active controller.
async fn decide_and_write(
    state: &BrokerState,
    version: i16,
    sender: i32,
    sender_epoch: i64,
    topics: &[(Uuid, Vec<IsrChange>)],
) -> Result<Vec<TopicOutcome>, BrokerError> {
    if !state.controller.quorum().is_leader() {
        return Err(BrokerError::NotController {
            leader_id: state.controller.leader_id(),
        });
    }
    let unclean = ElectionConfig::of(state);
    let outcomes = state
        .controller
        .write(|image| {
            let decision = decide(image, version, sender, sender_epoch, topics, unclean)
                .map_err(BrokerError::Refused)?;
            Ok::<_, BrokerError>((decision.records, decision.topics))
        })
        .await?;
    for (topic_id, answers) in &outcomes {
        for (partition_id, answer) in answers {
            if let Ok(isr) = answer {
                tracing::debug!(
                    sender,
                    %topic_id,
                    partition_id,
                    isr = ?isr.isr,
                    partition_epoch = isr.partition_epoch,
                    "AlterPartition: ISR is committed"
                );
            }
        }
    }
    Ok(outcomes)
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AlterPartitionRequest,
) -> AlterPartitionResponse {
    // Kafka's controller asks CLUSTER_ACTION on the cluster first (the error code alone).
    if !authorizer::allowed_cluster(state, ctx, AclOperation::ClusterAction) {
        return AlterPartitionResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let topics: Vec<(Uuid, Vec<IsrChange>)> = request
        .topics
        .iter()
        .map(|t| {
            let changes = t
                .partitions
                .iter()
                .map(|p| IsrChange::from_wire(ctx.api_version, p))
                .collect();
            (t.topic_id, changes)
        })
        .collect();
    let decided = decide_and_write(
        state,
        ctx.api_version,
        request.broker_id.0,
        request.broker_epoch,
        &topics,
    )
    .await;
    match decided {
        Ok(outcomes) => AlterPartitionResponse::default().with_topics(
            outcomes
                .into_iter()
                .map(|(topic_id, answers)| {
                    alter_partition_response::TopicData::default()
                        .with_topic_id(topic_id)
                        .with_partitions(answers.into_iter().map(partition_answer).collect())
                })
                .collect(),
        ),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::warn!(%e, broker_id = request.broker_id.0, "AlterPartition failed");
            }
            AlterPartitionResponse::default().with_error_code(e.response_error().code())
        }
    }
}

fn partition_answer(
    (partition_id, answer): (i32, Result<IsrState, ResponseError>),
) -> alter_partition_response::PartitionData {
    let data =
        alter_partition_response::PartitionData::default().with_partition_index(partition_id);
    match answer {
        Ok(isr) => data
            .with_leader_id(BrokerId(isr.leader))
            .with_leader_epoch(isr.leader_epoch)
            .with_isr(isr.isr.into_iter().map(BrokerId).collect())
            .with_partition_epoch(isr.partition_epoch)
            .with_leader_recovery_state(0),
        Err(error) => data.with_error_code(error.code()),
    }
}

/// The partition leader's ISR change (Kafka's AlterPartitionManager, one partition at a
/// time): asks the active controller to make `new_isr` the ISR of `topic_id`-`partition_id`
/// at the leader and partition epochs the leader knows. Decided and committed here when
/// this node is the active controller; else AlterPartition at the highest version both
/// serve (each member with the broker epoch it fetched with: the controller refuses a
/// member that registered anew since, KIP-903). Retried while there is no
/// active controller, it moves (NOT_CONTROLLER) or cannot be reached, for up to 10 s, then
/// REQUEST_TIMED_OUT. The controller's refusal of the partition (or of the request) is the
/// `Err`; `Ok` is the state it committed (or found already in place).
pub async fn alter_isr(
    state: &BrokerState,
    tp: &TopicPartition,
    topic_id: Uuid,
    partition_id: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    new_isr: Vec<(i32, i64)>,
) -> Result<IsrState, ResponseError> {
    let image = state.image();
    let broker_epoch = image
        .brokers
        .get(&state.node_id)
        .map_or(-1, |b| b.broker_epoch);
    let change = IsrChange {
        partition_id,
        leader_epoch,
        partition_epoch,
        new_isr,
        leader_recovery_state: 0,
    };
    drop(image);
    let deadline = Instant::now() + ALTER_ISR_TIMEOUT;
    loop {
        let attempt = match state.controller.leader_id() {
            None => Err("no active controller yet".to_string()),
            Some(leader) if leader == state.node_id => {
                alter_isr_here(state, broker_epoch, topic_id, &change).await
            }
            Some(_) => {
                let remaining = deadline.saturating_duration_since(Instant::now());
                alter_isr_remote(
                    state,
                    broker_epoch,
                    topic_id,
                    &change,
                    remaining.clamp(Duration::from_millis(100), ALTER_ISR_RPC_TIMEOUT),
                )
                .await
            }
        };
        let retry_reason = match attempt {
            Ok(answer) => return answer,
            Err(reason) => reason,
        };
        if Instant::now() >= deadline {
            tracing::warn!(
                %tp,
                new_isr = ?change.new_isr,
                "ISR change not answered by the active controller within {ALTER_ISR_TIMEOUT:?}: {retry_reason}"
            );
            return Err(ResponseError::RequestTimedOut);
        }
        tokio::time::sleep(ALTER_ISR_RETRY_BACKOFF).await;
    }
}

/// The answer to one partition, `Err(reason)` when it is worth retrying.
type Attempt = Result<Result<IsrState, ResponseError>, String>;

fn retry_or_answer(answer: Result<IsrState, ResponseError>) -> Attempt {
    match answer {
        Err(ResponseError::NotController) => {
            Err("the controller is not (or not yet) the active one".into())
        }
        answer => Ok(answer),
    }
}

async fn alter_isr_here(
    state: &BrokerState,
    broker_epoch: i64,
    topic_id: Uuid,
    change: &IsrChange,
) -> Attempt {
    let topics = [(topic_id, vec![change.clone()])];
    match decide_and_write(state, VERSIONS.max, state.node_id, broker_epoch, &topics).await {
        Ok(outcomes) => retry_or_answer(find_answer(outcomes, topic_id, change.partition_id)),
        Err(BrokerError::NotController { .. }) => Err("leadership moved".into()),
        Err(e) => Ok(Err(e.response_error())),
    }
}

async fn alter_isr_remote(
    state: &BrokerState,
    broker_epoch: i64,
    topic_id: Uuid,
    change: &IsrChange,
    timeout: Duration,
) -> Attempt {
    let version = VERSIONS.max;
    let request = AlterPartitionRequest::default()
        .with_broker_id(BrokerId(state.node_id))
        .with_broker_epoch(broker_epoch)
        .with_topics(vec![alter_partition_request::TopicData::default()
            .with_topic_id(topic_id)
            .with_partitions(vec![wire_change(version, change)])]);
    let response = state.send_to_controller(&request, version, timeout).await?;
    match ResponseError::try_from_code(response.error_code) {
        Some(ResponseError::NotController) => return Err("leadership moved".into()),
        Some(error) => return Ok(Err(error)),
        None => {}
    }
    let answer = response
        .topics
        .iter()
        .filter(|t| t.topic_id == topic_id)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == change.partition_id)
        .map(|p| match ResponseError::try_from_code(p.error_code) {
            Some(error) => Err(error),
            None => Ok(IsrState {
                leader: p.leader_id.0,
                leader_epoch: p.leader_epoch,
                isr: p.isr.iter().map(|id| id.0).collect(),
                partition_epoch: p.partition_epoch,
            }),
        })
        .unwrap_or(Err(ResponseError::UnknownServerError));
    retry_or_answer(answer)
}

fn wire_change(version: i16, change: &IsrChange) -> alter_partition_request::PartitionData {
    let data = alter_partition_request::PartitionData::default()
        .with_partition_index(change.partition_id)
        .with_leader_epoch(change.leader_epoch)
        .with_partition_epoch(change.partition_epoch)
        .with_leader_recovery_state(change.leader_recovery_state);
    if version >= 3 {
        data.with_new_isr_with_epochs(
            change
                .new_isr
                .iter()
                .map(|(id, epoch)| {
                    alter_partition_request::BrokerState::default()
                        .with_broker_id(BrokerId(*id))
                        .with_broker_epoch(*epoch)
                })
                .collect(),
        )
    } else {
        data.with_new_isr(change.new_isr.iter().map(|(id, _)| BrokerId(*id)).collect())
    }
}

fn find_answer(
    outcomes: Vec<TopicOutcome>,
    topic_id: Uuid,
    partition_id: i32,
) -> Result<IsrState, ResponseError> {
    outcomes
        .into_iter()
        .filter(|(id, _)| *id == topic_id)
        .flat_map(|(_, answers)| answers)
        .find(|(id, _)| *id == partition_id)
        .map_or(Err(ResponseError::UnknownServerError), |(_, answer)| answer)
}

#[cfg(test)]
mod tests {
    use moldau_metadata::MetadataDelta;

    use super::*;

    const TOPIC: Uuid = Uuid::from_u128(7);

    const CLEAN: ElectionConfig = ElectionConfig {
        node_id: 1,
        unclean_default: false,
        min_isr_default: 1,
    };

    /// A v3 request's decision.
    fn decided(
        image: &MetadataImage,
        sender: i32,
        sender_epoch: i64,
        topics: &[(Uuid, Vec<IsrChange>)],
    ) -> Result<Decision, ResponseError> {
        decide(image, 3, sender, sender_epoch, topics, CLEAN)
    }

    /// Brokers 1-4 registered at epochs 10, 20, 30, 40 (`fenced` ones fenced), broker 5
    /// not registered; partition 0 of TOPIC on [1, 2, 3, 5], led by 1 at leader epoch 4
    /// and partition epoch 6, ISR [1, 2].
    fn image(fenced: &[i32]) -> MetadataImage {
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        let mut offset = 0;
        let mut replay = |record: MetadataRecord| {
            delta.replay(offset, &record).unwrap();
            offset += 1;
        };
        for id in 1..=4 {
            replay(MetadataRecord::RegisterBroker {
                broker_id: id,
                broker_epoch: id as i64 * 10,
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
            replicas: vec![1, 2, 3, 5],
            isr: vec![1, 2],
            adding_replicas: vec![],
            removing_replicas: vec![],
            leader: 1,
            leader_epoch: 4,
            partition_epoch: 6,
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
        });
        delta.apply()
    }

    /// `image` with a reassignment of partition 0 from [1, 2] to `target` begun (written
    /// as the reassignment handler writes it; broker 5 dropped from the replicas first).
    fn reassigning(fenced: &[i32], target: &[i32]) -> MetadataImage {
        let base = image(fenced);
        let p = base.topic_by_id(&TOPIC).unwrap().partitions[&0].clone();
        let moving =
            super::super::alter_partition_reassignments::reassignment_replicas(&[1, 2], target);
        let mut delta = MetadataDelta::new(&base);
        delta
            .replay(
                base.offset + 1,
                &MetadataRecord::PartitionChange {
                    topic_id: TOPIC,
                    partition_id: 0,
                    leader: None,
                    isr: None,
                    replicas: Some(moving.replicas),
                    adding_replicas: Some(moving.adding),
                    removing_replicas: Some(moving.removing),
                    eligible_leader_replicas: None,
                    last_known_elr: None,
                },
            )
            .unwrap();
        let image = delta.apply();
        assert_eq!(
            image.topic_by_id(&TOPIC).unwrap().partitions[&0].partition_epoch,
            p.partition_epoch + 1
        );
        image
    }

    /// A change of partition 0 at partition epoch 7 (after `reassigning`).
    fn change_at_7(new_isr: &[i32]) -> IsrChange {
        let mut c = change(new_isr);
        c.partition_epoch = 7;
        c
    }

    /// A change of partition 0 at the image's epochs, members' epochs unchecked.
    fn change(new_isr: &[i32]) -> IsrChange {
        IsrChange {
            partition_id: 0,
            leader_epoch: 4,
            partition_epoch: 6,
            new_isr: new_isr.iter().map(|id| (*id, -1)).collect(),
            leader_recovery_state: 0,
        }
    }

    /// The one partition's answer to a request of `changes` from broker 1 at epoch 10.
    fn answer(image: &MetadataImage, change: IsrChange) -> Result<IsrState, ResponseError> {
        let decision = decided(image, 1, 10, &[(TOPIC, vec![change])]).unwrap();
        assert_eq!(decision.topics.len(), 1);
        decision.topics[0].1[0].1.clone()
    }

    #[test]
    fn a_valid_change_commits_the_isr_and_bumps_the_partition_epoch() {
        let image = image(&[]);
        let decision = decided(&image, 1, 10, &[(TOPIC, vec![change(&[1, 2, 3])])]).unwrap();
        let expected = IsrState {
            leader: 1,
            leader_epoch: 4,
            isr: vec![1, 2, 3],
            partition_epoch: 7,
        };
        assert_eq!(
            decision.topics,
            vec![(TOPIC, vec![(0, Ok(expected.clone()))])]
        );
        assert_eq!(
            decision.records,
            vec![MetadataRecord::PartitionChange {
                topic_id: TOPIC,
                partition_id: 0,
                leader: None,
                isr: Some(vec![1, 2, 3]),
                replicas: None,
                adding_replicas: None,
                removing_replicas: None,
                eligible_leader_replicas: None,
                last_known_elr: None,
            }]
        );
        // Replaying the record gives the state the answer announced.
        let mut delta = MetadataDelta::new(&image);
        delta
            .replay(image.offset + 1, &decision.records[0])
            .unwrap();
        let next = delta.apply();
        let p = &next.topic_by_id(&TOPIC).unwrap().partitions[&0];
        assert_eq!(IsrState::of(p), expected);
        // A shrink is a change too; v3 broker epochs that match pass.
        let mut shrink = change(&[1]);
        shrink.new_isr = vec![(1, 10)];
        assert_eq!(answer(&image, shrink).unwrap().isr, vec![1]);
    }

    #[test]
    fn an_unchanged_isr_is_answered_with_the_current_state_and_writes_nothing() {
        let image = image(&[]);
        let decision = decided(&image, 1, 10, &[(TOPIC, vec![change(&[1, 2])])]).unwrap();
        assert!(decision.records.is_empty());
        assert_eq!(
            decision.topics[0].1[0].1,
            Ok(IsrState {
                leader: 1,
                leader_epoch: 4,
                isr: vec![1, 2],
                partition_epoch: 6,
            })
        );
    }

    #[test]
    fn a_partition_named_twice_is_decided_against_the_first_change() {
        let image = image(&[]);
        let mut second = change(&[1, 2, 3]);
        second.partition_epoch = 7;
        let decision = decided(&image, 1, 10, &[(TOPIC, vec![change(&[1]), second])]).unwrap();
        assert_eq!(decision.records.len(), 2);
        let answers = &decision.topics[0].1;
        assert_eq!(answers[0].1.as_ref().unwrap().partition_epoch, 7);
        assert_eq!(answers[1].1.as_ref().unwrap().partition_epoch, 8);
        assert_eq!(answers[1].1.as_ref().unwrap().isr, vec![1, 2, 3]);
    }

    #[test]
    fn a_sender_not_registered_at_its_epoch_is_a_stale_broker_epoch() {
        let image = image(&[]);
        let topics = [(TOPIC, vec![change(&[1, 2, 3])])];
        assert_eq!(
            decided(&image, 1, 11, &topics).unwrap_err(),
            ResponseError::StaleBrokerEpoch
        );
        assert_eq!(
            decided(&image, 5, -1, &topics).unwrap_err(),
            ResponseError::StaleBrokerEpoch
        );
    }

    #[test]
    fn unknown_topics_and_partitions() {
        let image = image(&[]);
        let unknown = Uuid::from_u128(8);
        let decision = decided(
            &image,
            1,
            10,
            &[
                (unknown, vec![change(&[1]), change(&[1, 2, 3])]),
                (Uuid::nil(), vec![change(&[1])]),
            ],
        )
        .unwrap();
        assert!(decision.records.is_empty());
        for (_, answers) in &decision.topics {
            for (_, answer) in answers {
                assert_eq!(answer, &Err(ResponseError::UnknownTopicId));
            }
        }
        let mut missing = change(&[1]);
        missing.partition_id = 1;
        assert_eq!(
            answer(&image, missing),
            Err(ResponseError::UnknownTopicOrPartition)
        );
    }

    #[test]
    fn epochs_ahead_of_the_controller_are_not_controller_and_behind_are_fenced() {
        let image = image(&[]);
        let mut ahead = change(&[1, 2, 3]);
        ahead.leader_epoch = 5;
        assert_eq!(answer(&image, ahead), Err(ResponseError::NotController));
        let mut ahead = change(&[1, 2, 3]);
        ahead.partition_epoch = 7;
        assert_eq!(answer(&image, ahead), Err(ResponseError::NotController));
        let mut old_leader = change(&[1, 2, 3]);
        old_leader.leader_epoch = 3;
        assert_eq!(
            answer(&image, old_leader),
            Err(ResponseError::FencedLeaderEpoch)
        );
        let mut old_partition = change(&[1, 2, 3]);
        old_partition.partition_epoch = 5;
        assert_eq!(
            answer(&image, old_partition),
            Err(ResponseError::InvalidUpdateVersion)
        );
    }

    #[test]
    fn only_the_leader_may_change_the_isr() {
        let image = image(&[]);
        let decision = decided(&image, 2, 20, &[(TOPIC, vec![change(&[1, 2, 3])])]).unwrap();
        assert_eq!(
            decision.topics[0].1[0].1,
            Err(ResponseError::InvalidRequest)
        );
        assert!(decision.records.is_empty());
    }

    #[test]
    fn an_isr_must_hold_the_leader_and_only_replicas_once() {
        let image = image(&[]);
        for bad in [&[2][..], &[], &[1, 4], &[1, 2, 2], &[1, -1]] {
            assert_eq!(
                answer(&image, change(bad)),
                Err(ResponseError::InvalidRequest),
                "{bad:?}"
            );
        }
        let mut recovering = change(&[1, 2]);
        recovering.leader_recovery_state = 1;
        assert_eq!(
            answer(&image, recovering),
            Err(ResponseError::InvalidRequest)
        );
    }

    #[test]
    fn fenced_unregistered_or_restarted_members_are_ineligible() {
        // 3 is fenced.
        assert_eq!(
            answer(&image(&[3]), change(&[1, 2, 3])),
            Err(ResponseError::IneligibleReplica)
        );
        // 5 is a replica that is not registered.
        assert_eq!(
            answer(&image(&[]), change(&[1, 2, 5])),
            Err(ResponseError::IneligibleReplica)
        );
        // v3: 3 is registered at epoch 30, not 29 (it restarted since the leader looked).
        let mut stale = change(&[1, 2, 3]);
        stale.new_isr = vec![(1, 10), (2, 20), (3, 29)];
        assert_eq!(
            answer(&image(&[]), stale),
            Err(ResponseError::IneligibleReplica)
        );
        let mut fresh = change(&[1, 2, 3]);
        fresh.new_isr = vec![(1, 10), (2, 20), (3, 30)];
        assert!(answer(&image(&[]), fresh).is_ok());
    }

    #[test]
    fn the_isr_change_that_brings_the_last_target_replica_in_completes_the_reassignment() {
        // [1, 2] -> [1, 3, 4]: replicas [1, 3, 4, 2], adding [3, 4], removing [2].
        let image = reassigning(&[], &[1, 3, 4]);
        let p = &image.topic_by_id(&TOPIC).unwrap().partitions[&0];
        assert_eq!(p.replicas, vec![1, 3, 4, 2]);
        // 3 joins: not complete, an ISR change alone.
        let decision = decided(&image, 1, 10, &[(TOPIC, vec![change_at_7(&[1, 2, 3])])]).unwrap();
        assert_eq!(
            decision.topics[0].1[0].1.as_ref().unwrap().isr,
            vec![1, 2, 3]
        );
        assert!(matches!(
            &decision.records[0],
            MetadataRecord::PartitionChange {
                replicas: None,
                leader: None,
                ..
            }
        ));
        // 3 and 4 join: complete in the same record; 1 stays leader in a new epoch.
        let decision =
            decided(&image, 1, 10, &[(TOPIC, vec![change_at_7(&[1, 2, 3, 4])])]).unwrap();
        assert_eq!(
            decision.records,
            vec![MetadataRecord::PartitionChange {
                topic_id: TOPIC,
                partition_id: 0,
                leader: Some(1),
                isr: Some(vec![1, 3, 4]),
                replicas: Some(vec![1, 3, 4]),
                adding_replicas: Some(vec![]),
                removing_replicas: Some(vec![]),
                eligible_leader_replicas: None,
                last_known_elr: None,
            }]
        );
        assert_eq!(
            decision.topics[0].1[0].1,
            Ok(IsrState {
                leader: 1,
                leader_epoch: 5,
                isr: vec![1, 3, 4],
                partition_epoch: 8,
            })
        );
    }

    #[test]
    fn a_completion_that_removes_the_leader_elects_another_and_answers_new_leader_elected() {
        // [1, 2] -> [3, 2]: the leader 1 goes.
        let image = reassigning(&[], &[3, 2]);
        let decision = decided(&image, 1, 10, &[(TOPIC, vec![change_at_7(&[1, 2, 3])])]).unwrap();
        assert_eq!(
            decision.topics[0].1[0].1,
            Err(ResponseError::NewLeaderElected)
        );
        // Committed all the same: the first target replica in the ISR leads.
        assert_eq!(
            decision.records,
            vec![MetadataRecord::PartitionChange {
                topic_id: TOPIC,
                partition_id: 0,
                leader: Some(3),
                isr: Some(vec![2, 3]),
                replicas: Some(vec![3, 2]),
                adding_replicas: Some(vec![]),
                removing_replicas: Some(vec![]),
                eligible_leader_replicas: None,
                last_known_elr: None,
            }]
        );
        // v1 and older have no NEW_LEADER_ELECTED.
        let old = decide(
            &image,
            1,
            1,
            10,
            &[(TOPIC, vec![change_at_7(&[1, 2, 3])])],
            CLEAN,
        )
        .unwrap();
        assert_eq!(old.topics[0].1[0].1, Err(ResponseError::FencedLeaderEpoch));
    }

    #[test]
    fn an_unchanged_isr_of_a_satisfied_reassignment_completes_it() {
        // [1, 2] -> [2]: completes as soon as anything is decided (the ISR holds 2).
        let image = reassigning(&[], &[2]);
        let decision = decided(&image, 1, 10, &[(TOPIC, vec![change_at_7(&[1, 2])])]).unwrap();
        assert_eq!(
            decision.topics[0].1[0].1,
            Err(ResponseError::NewLeaderElected)
        );
        assert_eq!(decision.records.len(), 1);
    }

    #[test]
    fn wire_changes_carry_the_isr_in_the_field_of_their_version() {
        let mut change = change(&[1, 2]);
        change.new_isr = vec![(1, 10), (2, 20)];
        let v3 = wire_change(3, &change);
        assert!(v3.new_isr.is_empty());
        assert_eq!(IsrChange::from_wire(3, &v3), change);
        let v2 = wire_change(2, &change);
        assert!(v2.new_isr_with_epochs.is_empty());
        let mut unchecked = change.clone();
        unchecked.new_isr = vec![(1, -1), (2, -1)];
        assert_eq!(IsrChange::from_wire(2, &v2), unchecked);
    }
}
