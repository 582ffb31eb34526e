//! ListOffsets: earliest, latest, by timestamp and max timestamp, per partition.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use moldau_storage::{StorageError, TimestampAndOffset, TopicPartition};

use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::error::storage_error_code;
use crate::replica_manager::Partition;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ListOffsetsRequest::VERSIONS;

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
const LATEST_TIERED_TIMESTAMP: i64 = -5;
const READ_COMMITTED: i8 = 1;
/// The first version whose partition response carries `leader_epoch`.
const LEADER_EPOCH_MIN_VERSION: i16 = 4;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == READ_COMMITTED;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            // DESCRIBE on the topic, as Kafka.
            let refused = !authorizer::allowed(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::Topic,
                topic.name.as_str(),
            );
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(topic.name.to_string(), p.partition_index);
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    if refused {
                        return error(response, ResponseError::TopicAuthorizationFailed.code());
                    }
                    let partition = match state.replica_manager.hosted_partition(&tp) {
                        Ok(partition) => partition,
                        Err(e) => return error(response, e.code()),
                    };
                    if let Err(e) =
                        super::check_leader_epoch(state, &partition, p.current_leader_epoch)
                    {
                        return error(response, e.code());
                    }
                    match lookup(&partition, p.timestamp, read_committed) {
                        Ok(Some(found)) => response
                            .with_timestamp(found.timestamp)
                            .with_offset(found.offset)
                            .with_leader_epoch(if ctx.api_version >= LEADER_EPOCH_MIN_VERSION {
                                found.leader_epoch.unwrap_or(-1)
                            } else {
                                // The field is absent before v4 and must stay at its default.
                                -1
                            }),
                        Ok(None) => response
                            .with_timestamp(-1)
                            .with_offset(-1)
                            .with_leader_epoch(-1),
                        Err(e) => error(response, storage_error_code(&e)),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn error(response: ListOffsetsPartitionResponse, code: i16) -> ListOffsetsPartitionResponse {
    response
        .with_error_code(code)
        .with_timestamp(-1)
        .with_offset(-1)
        .with_leader_epoch(-1)
}

/// Kafka's answer for one partition: offsets a consumer could fetch, so nothing at or past
/// the high watermark (last stable offset under read_committed).
fn lookup(
    partition: &Partition,
    timestamp: i64,
    read_committed: bool,
) -> Result<Option<TimestampAndOffset>, StorageError> {
    let log = &partition.log;
    let fetchable_end = if read_committed {
        log.last_stable_offset()
    } else {
        log.high_watermark()
    };
    let at = |offset: i64| TimestampAndOffset {
        timestamp: -1,
        offset,
        leader_epoch: log.latest_epoch(),
    };
    Ok(match timestamp {
        LATEST_TIMESTAMP => Some(at(fetchable_end)),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => Some(at(log.log_start_offset())),
        LATEST_TIERED_TIMESTAMP => None,
        MAX_TIMESTAMP => log
            .max_timestamp_and_offset()?
            .filter(|found| found.offset < fetchable_end),
        _ => log
            .fetch_offset_by_timestamp(timestamp)?
            .filter(|found| found.offset < fetchable_end),
    })
}
