//! DescribeProducers: the active producers of partitions this node leads (id, epoch, last
//! sequence and timestamp, coordinator epoch, open transaction's first offset), as
//! `kafka-transactions describe-producers` shows.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_storage::TopicPartition;

use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeProducersRequest::VERSIONS;

/// Partitions per request: bounds one request's work.
const MAX_PARTITIONS: usize = 10_000;

pub fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut budget = MAX_PARTITIONS;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let take = topic.partition_indexes.len().min(budget);
            budget -= take;
            let partitions = topic.partition_indexes[..take]
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(topic.name.to_string(), *p);
                    describe(state, &tp).unwrap_or_else(|e| {
                        PartitionResponse::default()
                            .with_partition_index(*p)
                            .with_error_code(e.code())
                    })
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

fn describe(state: &BrokerState, tp: &TopicPartition) -> Result<PartitionResponse, ResponseError> {
    let partition = state
        .replica_manager
        .partition(tp)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    if partition.leader != state.node_id {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    let producers = partition
        .log
        .active_producers()
        .into_iter()
        .map(|p| {
            ProducerState::default()
                .with_producer_id(p.producer_id.into())
                .with_producer_epoch(i32::from(p.producer_epoch))
                .with_last_sequence(p.last_seq())
                .with_last_timestamp(p.last_timestamp)
                .with_coordinator_epoch(p.coordinator_epoch)
                .with_current_txn_start_offset(p.current_txn_first_offset.unwrap_or(-1))
        })
        .collect();
    Ok(PartitionResponse::default()
        .with_partition_index(tp.partition)
        .with_active_producers(producers))
}
