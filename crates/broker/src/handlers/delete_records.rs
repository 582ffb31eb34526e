//! DeleteRecords: advance a partition's log start offset (its low watermark), as Kafka's
//! `Partition.deleteRecordsOnLeader` does. Offset -1 means the high watermark; an offset
//! past the high watermark is OFFSET_OUT_OF_RANGE; a log whose cleanup policy does not
//! include `delete` refuses with POLICY_VIOLATION; internal topics refuse with
//! INVALID_TOPIC_EXCEPTION. Fetchers parked on the partition are woken. The answer waits
//! until every follower on a live broker has moved its log start there too (Kafka's
//! DelayedDeleteRecords, bounded by the request's `timeout_ms`: REQUEST_TIMED_OUT past
//! it), and carries that low watermark.
//! Without DELETE on the topic: TOPIC_AUTHORIZATION_FAILED, before the partition is looked
//! up.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};
use moldau_storage::TopicPartition;

use super::metadata::is_internal;
use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DeleteRecordsRequest::VERSIONS;

/// Kafka's `DeleteRecordsRequest.HIGH_WATERMARK`.
const HIGH_WATERMARK: i64 = -1;
/// Kafka's `DeleteRecordsResponse.INVALID_LOW_WATERMARK`.
const INVALID_LOW_WATERMARK: i64 = -1;

/// The longest a DeleteRecords waits for followers, whatever its `timeout_ms`.
const MAX_TIMEOUT_MS: i32 = 300_000;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let image = state.image();
    // Kafka: DELETE on the topic, checked before the partition is looked up.
    let mut authorized: HashMap<&str, bool> = HashMap::new();
    for topic in &request.topics {
        let name = topic.name.as_str();
        authorized.entry(name).or_insert_with(|| {
            authorizer::allowed(state, ctx, AclOperation::Delete, ResourceType::Topic, name)
        });
    }
    let timeout = Duration::from_millis(request.timeout_ms.clamp(0, MAX_TIMEOUT_MS) as u64);
    let mut topics = Vec::with_capacity(request.topics.len());
    // Deleted here: each partition then waits for its followers (Kafka's
    // DelayedDeleteRecords), all at once.
    let mut waits = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let name = topic.name.as_str();
        let known = image.topic_by_name(name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for (partition_index, p) in topic.partitions.iter().enumerate() {
            let exists = known.is_some_and(|t| t.partitions.contains_key(&p.partition_index));
            let outcome = if !authorized[name] {
                Err(ResponseError::TopicAuthorizationFailed)
            } else if !exists {
                Err(ResponseError::UnknownTopicOrPartition)
            } else {
                delete_before(state, name, p.partition_index, p.offset)
            };
            let result =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            partitions.push(match outcome {
                Ok(deleted) => {
                    waits.push((topic_index, partition_index, deleted));
                    result
                }
                Err(e) => result
                    .with_low_watermark(INVALID_LOW_WATERMARK)
                    .with_error_code(e.code()),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    let outcomes = futures_util::future::join_all(waits.iter().map(|(_, _, deleted)| {
        state.replica_manager.wait_for_low_watermark(
            &deleted.tp,
            deleted.leader_epoch,
            deleted.offset,
            timeout,
        )
    }))
    .await;
    for ((topic_index, partition_index, _), outcome) in waits.iter().zip(outcomes) {
        let result = &mut topics[*topic_index].partitions[*partition_index];
        match outcome {
            Ok(low_watermark) => result.low_watermark = low_watermark,
            Err(e) => {
                result.low_watermark = INVALID_LOW_WATERMARK;
                result.error_code = e.code();
            }
        }
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// A partition whose records before `offset` this leader deleted in `leader_epoch`.
struct Deleted {
    tp: TopicPartition,
    leader_epoch: i32,
    offset: i64,
}

/// Deletes one partition's records before `offset` on this leader.
fn delete_before(
    state: &BrokerState,
    topic: &str,
    partition_index: i32,
    offset: i64,
) -> Result<Deleted, ResponseError> {
    if is_internal(topic) {
        return Err(ResponseError::InvalidTopicException);
    }
    let tp = TopicPartition::new(topic, partition_index);
    // The topic is known (checked by the caller): a partition not served here is offline
    // (KAFKA_STORAGE_ERROR) or led elsewhere.
    let partition = match state.replica_manager.hosted_partition(&tp) {
        Err(ResponseError::UnknownTopicOrPartition) => Err(ResponseError::NotLeaderOrFollower),
        other => other,
    }?;
    if partition.leader != state.node_id {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    let log = &partition.log;
    if !log.config().cleanup_policy.is_delete() {
        return Err(ResponseError::PolicyViolation);
    }
    let offset = if offset == HIGH_WATERMARK {
        log.high_watermark()
    } else {
        offset
    };
    if offset < 0 {
        return Err(ResponseError::OffsetOutOfRange);
    }
    let result = log.delete_records_before(offset);
    // Fetchers parked at the old start offset must see the new one.
    state.replica_manager.notify(&partition);
    match result {
        Ok(_) => Ok(Deleted {
            tp,
            leader_epoch: partition.leader_epoch,
            offset,
        }),
        Err(e) => Err(ResponseError::try_from_code(e.kafka_error_code())
            .unwrap_or(ResponseError::UnknownServerError)),
    }
}
