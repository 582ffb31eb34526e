//! OffsetForLeaderEpoch (v2-v4): the end offset of the largest leader epoch <= the requested
//! one, from the log's leader-epoch cache; consumers use it to detect truncation (KIP-320)
//! and followers to find where to truncate. An epoch the cache cannot answer gives
//! UNDEFINED_EPOCH (-1) and UNDEFINED_EPOCH_OFFSET (-1) without an error, as in Kafka.
//! Authorization (KIP-320): CLUSTER_ACTION on the cluster (a follower), else DESCRIBE on
//! each topic (a consumer); a refused topic's partitions get TOPIC_AUTHORIZATION_FAILED.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};
use moldau_storage::TopicPartition;

use super::check_leader_epoch;
use crate::api::RequestContext;
use crate::authorizer::{self, CLUSTER_NAME};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = OffsetForLeaderEpochRequest::VERSIONS;

const UNDEFINED_EPOCH: i32 = -1;
const UNDEFINED_EPOCH_OFFSET: i64 = -1;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let image = state.image();
    // Kafka (KIP-320): CLUSTER_ACTION on the cluster (a follower; a quiet check) covers
    // every topic, else DESCRIBE on each topic (a consumer); a refused topic's partitions
    // get TOPIC_AUTHORIZATION_FAILED.
    let cluster_action = authorizer::allowed_quietly(
        state,
        ctx,
        AclOperation::ClusterAction,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            if !cluster_action
                && !authorizer::allowed(
                    state,
                    ctx,
                    AclOperation::Describe,
                    ResourceType::Topic,
                    topic.topic.as_str(),
                )
            {
                let code = ResponseError::TopicAuthorizationFailed.code();
                return OffsetForLeaderTopicResult::default()
                    .with_topic(topic.topic.clone())
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|p| {
                                EpochEndOffset::default()
                                    .with_partition(p.partition)
                                    .with_error_code(code)
                            })
                            .collect(),
                    );
            }
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(UNDEFINED_EPOCH)
                        .with_end_offset(UNDEFINED_EPOCH_OFFSET);
                    let tp = TopicPartition::new(topic.topic.to_string(), p.partition);
                    let Some(partition) = state.replica_manager.partition(&tp) else {
                        // Known to the cluster but not hosted here: not the leader.
                        let known = image
                            .topic_by_name(&tp.topic)
                            .is_some_and(|t| t.partitions.contains_key(&p.partition));
                        let error = match state.replica_manager.missing_partition_error(&tp) {
                            ResponseError::UnknownTopicOrPartition if known => {
                                ResponseError::NotLeaderOrFollower
                            }
                            error => error,
                        };
                        return result.with_error_code(error.code());
                    };
                    if let Err(e) = check_leader_epoch(state, &partition, p.current_leader_epoch) {
                        return result.with_error_code(e.code());
                    }
                    match partition.log.end_offset_for_epoch(p.leader_epoch) {
                        Some(found) => result
                            .with_leader_epoch(found.leader_epoch)
                            .with_end_offset(found.end_offset),
                        None => result,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
