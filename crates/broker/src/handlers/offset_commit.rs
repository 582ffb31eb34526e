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

use crate::api::RequestContext;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = OffsetCommitRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    mut request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let unknown = take_unknown_partitions(state, &mut request);
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
    for (name, partitions) in unknown {
        let partitions = partitions.into_iter().map(|partition_index| {
            OffsetCommitResponsePartition::default()
                .with_partition_index(partition_index)
                .with_error_code(ResponseError::UnknownTopicOrPartition.code())
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
pub(crate) fn take_unknown_partitions(
    state: &BrokerState,
    request: &mut OffsetCommitRequest,
) -> Vec<(TopicName, Vec<i32>)> {
    let image = state.image();
    let mut unknown = Vec::new();
    for topic in &mut request.topics {
        let known = image.topic_by_name(topic.name.as_str());
        let (kept, missing): (Vec<_>, Vec<_>) = std::mem::take(&mut topic.partitions)
            .into_iter()
            .partition(|p| known.is_some_and(|t| t.partitions.contains_key(&p.partition_index)));
        topic.partitions = kept;
        if !missing.is_empty() {
            let indexes = missing.iter().map(|p| p.partition_index).collect();
            unknown.push((topic.name.clone(), indexes));
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
        Err(e) => {
            // The whole request failed (e.g. NOT_COORDINATOR): every partition says so.
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
                                .with_error_code(e.code())
                        })
                        .collect();
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            OffsetCommitResponse::default().with_topics(topics)
        }
    }
}
