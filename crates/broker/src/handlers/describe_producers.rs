//! DescribeProducers: the active producers of partitions this node leads (id, epoch, last
//! sequence and timestamp, coordinator epoch, open transaction's first offset), as
//! `kafka-transactions describe-producers` shows.
//! A topic needs a valid name, then READ on it (TOPIC_AUTHORIZATION_FAILED with Kafka's
//! message on each of its partitions).

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};
use moldau_storage::TopicPartition;

use super::create_topics::validate_topic_name;
use super::{authz, str_bytes};
use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeProducersRequest::VERSIONS;

/// Partitions per request: bounds one request's work.
const MAX_PARTITIONS: usize = 10_000;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut budget = MAX_PARTITIONS;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let take = topic.partition_indexes.len().min(budget);
            budget -= take;
            // Kafka's topic checks, in its order: a valid name, then READ on the topic
            // (each partition answered with the error and its message).
            let name = topic.name.as_str();
            let refusal = validate_topic_name(name).err().or_else(|| {
                let allowed =
                    authorizer::allowed(state, ctx, AclOperation::Read, ResourceType::Topic, name);
                (!allowed).then(|| {
                    let error = ResponseError::TopicAuthorizationFailed;
                    (error, authz::default_message(error))
                })
            });
            let partitions = topic.partition_indexes[..take]
                .iter()
                .map(|p| {
                    if let Some((error, message)) = &refusal {
                        return PartitionResponse::default()
                            .with_partition_index(*p)
                            .with_error_code(error.code())
                            .with_error_message(Some(str_bytes(message.clone())));
                    }
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
