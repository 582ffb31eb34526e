//! DescribeTransactions: the coordinator's view of each transactional id (state, producer
//! id and epoch, timeout, start time, partitions), as `kafka-transactions describe` shows.

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use super::{str_bytes, topic_name};
use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeTransactionsRequest::VERSIONS;

/// Ids per request: bounds one request's work.
const MAX_IDS: usize = 10_000;

pub fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .into_iter()
        .take(MAX_IDS)
        .map(|id| {
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
            let topics = metadata
                .topics()
                .into_iter()
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
