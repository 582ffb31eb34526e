//! DescribeTransactions: the coordinator's view of each transactional id (state, producer
//! id and epoch, timeout, start time, partitions), as `kafka-transactions describe` shows.
//! An id needs DESCRIBE on it (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED and nothing else);
//! only the partitions of topics the principal may DESCRIBE are shown.

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};

use super::{str_bytes, topic_name};
use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeTransactionsRequest::VERSIONS;

/// Ids per request: bounds one request's work.
const MAX_IDS: usize = 10_000;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .into_iter()
        .take(MAX_IDS)
        .map(|id| {
            // Kafka: DESCRIBE on the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            // and nothing else about it.
            let may_describe = authorizer::allowed(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::TransactionalId,
                id.as_str(),
            );
            if !may_describe {
                return TransactionState::default()
                    .with_transactional_id(id)
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            let described = TransactionState::default()
                .with_transactional_id(id.clone())
                .with_producer_id((-1).into())
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1);
            let metadata = match state.txn_coordinator.describe(id.as_str()) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    return described.with_error_code(ResponseError::TransactionalIdNotFound.code())
                }
                Err(e) => return described.with_error_code(e.code()),
            };
            // Only the partitions of topics the principal may DESCRIBE, as Kafka.
            let topics = metadata
                .topics()
                .into_iter()
                .filter(|(topic, _)| {
                    authorizer::allowed(
                        state,
                        ctx,
                        AclOperation::Describe,
                        ResourceType::Topic,
                        topic,
                    )
                })
                .map(|(topic, partitions)| {
                    TopicData::default()
                        .with_topic(topic_name(topic))
                        .with_partitions(partitions)
                })
                .collect();
            described
                .with_transaction_state(str_bytes(metadata.state.name()))
                .with_transaction_timeout_ms(metadata.timeout_ms)
                .with_transaction_start_time_ms(metadata.start_ms)
                .with_producer_id(metadata.producer_id.into())
                .with_producer_epoch(metadata.producer_epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
