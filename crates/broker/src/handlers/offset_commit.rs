//! OffsetCommit: committed offsets are records in `__consumer_offsets`; the answer is sent
//! once they are appended. Generation and member checks are Kafka's (simple commits with
//! generation -1 are accepted while the group has no members). As Kafka, a partition of a
//! topic that does not exist is answered UNKNOWN_TOPIC_OR_PARTITION and not committed.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, TopicName};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use moldau_coordinator::OFFSETS_TOPIC;

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = OffsetCommitRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    mut request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    // READ on the group, then on each topic, as Kafka.
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return error_response(&request, ResponseError::GroupAuthorizationFailed);
    }
    let unknown = take_unanswerable_partitions(state, ctx, &mut request);
    let mut response = if request.topics.is_empty() {
        OffsetCommitResponse::default()
    } else {
        let mut response = commit(state, ctx, &request);
        let partition_id = state
            .group_coordinator
            .partition_for_group(request.group_id.as_str());
        match super::coordinator_write_replicated(state, OFFSETS_TOPIC, partition_id).await {
            Ok(()) => state
                .group_coordinator
                .offsets_replicated(request.group_id.as_str()),
            Err(e) => {
                for p in response.topics.iter_mut().flat_map(|t| &mut t.partitions) {
                    if p.error_code == 0 {
                        p.error_code = e.code();
                    }
                }
            }
        }
        response
    };
    for (name, partitions, error) in unknown {
        let partitions = partitions.into_iter().map(|partition_index| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(partition_index)
                .with_error_code(error.code())
        });
        match response.topics.iter_mut().find(|t| t.name == name) {
            Some(topic) => topic.partitions.extend(partitions),
            None => response.topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions.collect()),
            ),
        }
    }
    response
}

/// Removes from the request the partitions the metadata image does not have, and returns
/// them by topic (Kafka checks its metadata cache before the coordinator sees a commit, so
/// no offset is stored for a topic that does not exist).
/// Takes out of the request the partitions answered before the coordinator sees them:
/// those of topics the principal may not READ (TOPIC_AUTHORIZATION_FAILED, checked first,
/// so existence is not disclosed) and those that do not exist (UNKNOWN_TOPIC_OR_PARTITION).
pub(crate) fn take_unanswerable_partitions(
    state: &BrokerState,
    ctx: &RequestContext,
    request: &mut OffsetCommitRequest,
) -> Vec<(TopicName, Vec<i32>, ResponseError)> {
    let image = state.image();
    let mut unknown = Vec::new();
    for topic in &mut request.topics {
        if !authorizer::allowed(
            state,
            ctx,
            AclOperation::Read,
            ResourceType::Topic,
            &topic.name,
        ) {
            let indexes = topic.partitions.iter().map(|p| p.partition_index).collect();
            topic.partitions.clear();
            unknown.push((
                topic.name.clone(),
                indexes,
                ResponseError::TopicAuthorizationFailed,
            ));
            continue;
        }
        let known = image.topic_by_name(topic.name.as_str());
        let (kept, missing): (Vec<_>, Vec<_>) = std::mem::take(&mut topic.partitions)
            .into_iter()
            .partition(|p| known.is_some_and(|t| t.partitions.contains_key(&p.partition_index)));
        topic.partitions = kept;
        if !missing.is_empty() {
            let indexes = missing.iter().map(|p| p.partition_index).collect();
            unknown.push((
                topic.name.clone(),
                indexes,
                ResponseError::UnknownTopicOrPartition,
            ));
        }
    }
    request.topics.retain(|t| !t.partitions.is_empty());
    unknown
}

fn commit(
    state: &BrokerState,
    ctx: &RequestContext,
    request: &OffsetCommitRequest,
) -> OffsetCommitResponse {
    match state
        .group_coordinator
        .commit_offsets(request_info(ctx), request)
    {
        Ok(response) => response,
        // The whole request failed (e.g. NOT_COORDINATOR): every partition says so.
        Err(e) => error_response(request, e),
    }
}

/// Every partition of the request answered with `error`.
fn error_response(request: &OffsetCommitRequest, error: ResponseError) -> OffsetCommitResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.code())
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
