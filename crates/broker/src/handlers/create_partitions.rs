//! CreatePartitions: grow a topic to a new partition count, with placed or explicitly
//! assigned replicas; one Partition record per new partition, all topics committed together.
//! Shrinking (or keeping the count) is INVALID_PARTITIONS, as in Kafka.
//! Authorization: ALTER on each topic named once, else TOPIC_AUTHORIZATION_FAILED without a
//! message (Kafka's `ControllerApis.createPartitions`), after the other results.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataImage, MetadataRecord};
use moldau_security::acl::{AclOperation, ResourceType};

use super::{authz, str_bytes, topic_name};
use crate::api::RequestContext;
use crate::authorizer;
use crate::controller::MAX_RECORDS_PER_USER_OP;
use crate::descriptors::DescriptorBudget;
use crate::error::BrokerError;
use crate::placement::{self, UsableBroker};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = CreatePartitionsRequest::VERSIONS;

type Refusal = (ResponseError, String);

/// One topic to grow, as the request gives it.
struct Growth {
    name: String,
    count: i32,
    assignments: Option<Vec<Vec<i32>>>,
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    mut request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    // Kafka's controller authorizes first (here, where the client's principal is known):
    // ALTER on each topic named once, else TOPIC_AUTHORIZATION_FAILED without a message.
    let mut denied = Vec::new();
    if authz::must_check(state, ctx) {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for topic in &request.topics {
            *counts.entry(topic.name.to_string()).or_default() += 1;
        }
        request.topics.retain(|t| {
            let name = t.name.as_str();
            if counts[name] > 1
                || authorizer::allowed(state, ctx, AclOperation::Alter, ResourceType::Topic, name)
            {
                return true;
            }
            denied.push(
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
            );
            false
        });
    }
    let mut response = if request.topics.is_empty() {
        CreatePartitionsResponse::default()
    } else if let Some(response) = super::forward_unless_controller(state, ctx, &request).await {
        response
    } else {
        // KIP-599: strict from v3, as Kafka's controller.
        let quota = state
            .quota_manager
            .controller_mutation(&state.image(), ctx, 3);
        create_partitions(state, &request, &quota).await
    };
    response.results.extend(denied);
    response
}

/// Grows the topics of a request on the active controller.
async fn create_partitions(
    state: &BrokerState,
    request: &CreatePartitionsRequest,
    quota: &crate::quota_manager::ControllerMutationQuota<'_>,
) -> CreatePartitionsResponse {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for topic in &request.topics {
        *counts.entry(topic.name.to_string()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(request.topics.len());
    for (name, _) in counts.iter().filter(|(_, n)| **n > 1) {
        results.push(result(
            name,
            Some((
                ResponseError::InvalidRequest,
                "Duplicate topic name.".into(),
            )),
        ));
    }
    let growths: Vec<Growth> = request
        .topics
        .iter()
        .filter(|t| counts[t.name.as_str()] == 1)
        .map(|t| Growth {
            name: t.name.to_string(),
            count: t.count,
            assignments: t.assignments.as_ref().map(|a| {
                a.iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            }),
        })
        .collect();
    if growths.is_empty() {
        return CreatePartitionsResponse::default().with_results(results);
    }
    let validate_only = request.validate_only;
    let outcome = state
        .controller
        .write(|image| {
            let mut records = Vec::new();
            let mut outcomes = Vec::new();
            let mut budget = DescriptorBudget::measure();
            for growth in &growths {
                let planned = plan(image, growth).and_then(|new_records| {
                    let local = new_records
                        .iter()
                        .filter(|r| hosts(r, state.node_id))
                        .count() as u64;
                    match budget.as_mut().map(|b| b.take(local)) {
                        Some(Err(why)) => Err((ResponseError::PolicyViolation, why)),
                        _ => Ok(new_records),
                    }
                });
                let planned = planned.and_then(|new_records| {
                    quota.apply(new_records.len() as u32)?;
                    Ok(new_records)
                });
                match planned {
                    Ok(new_records) => {
                        if !validate_only {
                            records.extend(new_records);
                        }
                        outcomes.push((growth.name.clone(), None));
                    }
                    Err(refusal) => outcomes.push((growth.name.clone(), Some(refusal))),
                }
            }
            Ok::<_, BrokerError>((records, outcomes))
        })
        .await;
    match outcome {
        Ok(outcomes) => {
            results.extend(
                outcomes
                    .iter()
                    .map(|(name, error)| result(name, error.clone())),
            );
        }
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::error!("cannot create partitions: {e}");
            }
            for growth in &growths {
                let error = (e.response_error(), e.to_string());
                results.push(result(&growth.name, Some(error)));
            }
        }
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Whether a new partition's replicas include this node (it will open its log).
fn hosts(record: &MetadataRecord, node_id: i32) -> bool {
    matches!(record, MetadataRecord::Partition { replicas, .. } if replicas.contains(&node_id))
}

fn result(name: &str, error: Option<Refusal>) -> CreatePartitionsTopicResult {
    let mut result = CreatePartitionsTopicResult::default().with_name(topic_name(name));
    if let Some((code, message)) = error {
        result.error_code = code.code();
        result.error_message = Some(str_bytes(message));
    }
    result
}

/// Kafka's checks for one topic, then the records of its new partitions.
fn plan(image: &MetadataImage, growth: &Growth) -> Result<Vec<MetadataRecord>, Refusal> {
    let topic = image.topic_by_name(&growth.name).ok_or((
        ResponseError::UnknownTopicOrPartition,
        ResponseError::UnknownTopicOrPartition.to_string(),
    ))?;
    let current = topic.partitions.len() as i32;
    if growth.count == current {
        return Err((
            ResponseError::InvalidPartitions,
            format!("Topic already has {current} partition(s)."),
        ));
    }
    if growth.count < current {
        return Err((
            ResponseError::InvalidPartitions,
            format!(
                "The topic {} currently has {current} partition(s); {} would not be an increase.",
                growth.name, growth.count
            ),
        ));
    }
    let additional = (growth.count - current) as usize;
    // Checked before the records are built, so a huge count allocates nothing; the
    // controller also refuses the request's records together past the same bound.
    if additional > MAX_RECORDS_PER_USER_OP {
        return Err((
            ResponseError::PolicyViolation,
            BrokerError::TooManyRecords(additional).to_string(),
        ));
    }
    let replication_factor = topic
        .partitions
        .values()
        .next()
        .map(|p| p.replicas.len())
        .filter(|n| *n > 0)
        .ok_or((
            ResponseError::UnknownServerError,
            format!(
                "Invalid state: topic {} appears to have no partitions.",
                growth.name
            ),
        ))?;
    let registered: Vec<i32> = image.brokers.keys().copied().collect();
    let assignments = match &growth.assignments {
        Some(assignments) => {
            if assignments.len() != additional {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                        assignments.len()
                    ),
                ));
            }
            for replicas in assignments {
                check_assignment(&registered, replicas, replication_factor)?;
            }
            assignments.clone()
        }
        // Placed as CreateTopics places them, over the unfenced brokers, with the
        // replication factor of the topic's first partition; seeded by the topic id and
        // the count it grows from, so that successive growths start elsewhere.
        None => placement::place(
            &UsableBroker::unfenced(image),
            additional,
            replication_factor,
            placement::seed_from(topic.topic_id, current as u64),
        )
        .map_err(|e| (ResponseError::InvalidReplicationFactor, e.to_string()))?,
    };
    Ok(assignments
        .into_iter()
        .enumerate()
        .map(|(i, replicas)| MetadataRecord::Partition {
            topic_id: topic.topic_id,
            partition_id: current + i as i32,
            isr: replicas.clone(),
            leader: replicas[0],
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
        })
        .collect())
}

/// Kafka's checks of one manual assignment: not empty, registered brokers, no broker
/// twice, and as many replicas as the topic's existing partitions have.
fn check_assignment(
    brokers: &[i32],
    replicas: &[i32],
    replication_factor: usize,
) -> Result<(), Refusal> {
    let invalid = |message: String| Err((ResponseError::InvalidReplicaAssignment, message));
    if replicas.is_empty() {
        return invalid(
            "The manual partition assignment includes an empty replica list.".to_string(),
        );
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    for (i, broker) in sorted.iter().enumerate() {
        if !brokers.contains(broker) {
            return invalid(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is registered."
            ));
        }
        if i > 0 && sorted[i - 1] == *broker {
            return invalid(format!(
                "The manual partition assignment includes the broker {broker} more than once."
            ));
        }
    }
    if sorted.len() != replication_factor {
        return invalid(format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {replication_factor} replica(s).",
            sorted.len()
        ));
    }
    Ok(())
}
