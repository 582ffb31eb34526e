//! DeleteRecords: advance a partition's log start offset (its low watermark), as Kafka's
//! `Partition.deleteRecordsOnLeader` does. Offset -1 means the high watermark; an offset
//! past the high watermark is OFFSET_OUT_OF_RANGE; a log whose cleanup policy does not
//! include `delete` refuses with POLICY_VIOLATION; internal topics refuse with
//! INVALID_TOPIC_EXCEPTION. Fetchers parked on the partition are woken.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_storage::TopicPartition;

use super::metadata::is_internal;
use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DeleteRecordsRequest::VERSIONS;

/// Kafka's `DeleteRecordsRequest.HIGH_WATERMARK`.
const HIGH_WATERMARK: i64 = -1;
/// Kafka's `DeleteRecordsResponse.INVALID_LOW_WATERMARK`.
const INVALID_LOW_WATERMARK: i64 = -1;

pub fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let image = state.image();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let name = topic.name.as_str();
            let known = image.topic_by_name(name);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let exists =
                        known.is_some_and(|t| t.partitions.contains_key(&p.partition_index));
                    let outcome = if !exists {
                        Err(ResponseError::UnknownTopicOrPartition)
                    } else {
                        delete_before(state, name, p.partition_index, p.offset)
                    };
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    match outcome {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(e) => result
                            .with_low_watermark(INVALID_LOW_WATERMARK)
                            .with_error_code(e.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Deletes one partition's records before `offset`; returns the new low watermark.
fn delete_before(
    state: &BrokerState,
    topic: &str,
    partition_index: i32,
    offset: i64,
) -> Result<i64, ResponseError> {
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
        Ok(_) => Ok(log.log_start_offset()),
        Err(e) => Err(ResponseError::try_from_code(e.kafka_error_code())
            .unwrap_or(ResponseError::UnknownServerError)),
    }
}
