//! AddPartitionsToTxn: adds partitions to a producer's ongoing transaction. v0-3 carry one
//! transaction from a client; v4+ batch transactions and may only verify (KIP-890), as the
//! produce path of another broker asks.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_coordinator::txn::TxnPartition;

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = AddPartitionsToTxnRequest::VERSIONS;

/// Transactions per v4+ request and partitions per transaction: bounds one request's work.
const MAX_TRANSACTIONS: usize = 1_000;
const MAX_PARTITIONS: usize = 10_000;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.api_version < 4 {
        // From a client: WRITE on the transactional id, then on each topic, as Kafka.
        let transactional_id = request.v3_and_below_transactional_id.as_str();
        let topics = if authorizer::allowed(
            state,
            ctx,
            AclOperation::Write,
            ResourceType::TransactionalId,
            transactional_id,
        ) {
            let refused = |topic: &str| {
                !authorizer::allowed(state, ctx, AclOperation::Write, ResourceType::Topic, topic)
            };
            add(
                state,
                ctx.api_version,
                transactional_id,
                (
                    request.v3_and_below_producer_id.0,
                    request.v3_and_below_producer_epoch,
                ),
                false,
                &request.v3_and_below_topics,
                refused,
            )
        } else {
            all_failed(
                &request.v3_and_below_topics,
                ResponseError::TransactionalIdAuthorizationFailed,
            )
        };
        let topics = replicated(state, transactional_id, false, topics).await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics);
    }
    // v4+ comes from brokers verifying their produce requests: CLUSTER_ACTION.
    if !authorizer::allowed_cluster(state, ctx, AclOperation::ClusterAction) {
        return AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let mut results = Vec::new();
    for txn in request.transactions.iter().take(MAX_TRANSACTIONS) {
        let transactional_id = txn.transactional_id.as_str();
        let topics = add(
            state,
            ctx.api_version,
            transactional_id,
            (txn.producer_id.0, txn.producer_epoch),
            txn.verify_only,
            &txn.topics,
            |_| false,
        );
        let topics = replicated(state, transactional_id, txn.verify_only, topics).await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id.clone())
                .with_topic_results(topics),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// Partitions added (not just verified) count once the coordinator's record of them is
/// replicated; until then each gets the coordinator error.
async fn replicated(
    state: &BrokerState,
    transactional_id: &str,
    verify_only: bool,
    mut topics: Vec<AddPartitionsToTxnTopicResult>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let added = topics
        .iter()
        .flat_map(|t| &t.results_by_partition)
        .any(|p| p.partition_error_code == 0);
    if verify_only || !added {
        return topics;
    }
    let partition_id = state.txn_coordinator.partition_for(transactional_id);
    let written = super::coordinator_write_replicated(
        state,
        moldau_coordinator::txn::TRANSACTION_STATE_TOPIC,
        partition_id,
    )
    .await;
    if let Err(e) = written {
        for p in topics.iter_mut().flat_map(|t| &mut t.results_by_partition) {
            p.partition_error_code = e.code();
        }
    }
    topics
}

fn add(
    state: &BrokerState,
    api_version: i16,
    transactional_id: &str,
    (producer_id, producer_epoch): (i64, i16),
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
    refused: impl Fn(&str) -> bool,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let image = state.image();
    let partitions: Vec<TxnPartition> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .take(MAX_PARTITIONS)
        .collect();
    let unknown = |(topic, partition): &TxnPartition| {
        image
            .topic_by_name(topic)
            .is_none_or(|t| !t.partitions.contains_key(partition))
    };
    let refused_topics: Vec<&str> = topics
        .iter()
        .map(|t| t.name.as_str())
        .filter(|t| refused(t))
        .collect();
    let refused = |(topic, _): &TxnPartition| refused_topics.contains(&topic.as_str());
    let errors: Vec<(TxnPartition, ResponseError)> =
        if partitions.iter().any(|p| refused(p) || unknown(p)) {
            // Kafka adds nothing when a partition is refused or unknown; the rest were not
            // attempted.
            partitions
                .iter()
                .map(|p| {
                    let e = if refused(p) {
                        ResponseError::TopicAuthorizationFailed
                    } else if unknown(p) {
                        ResponseError::UnknownTopicOrPartition
                    } else {
                        ResponseError::OperationNotAttempted
                    };
                    (p.clone(), e)
                })
                .collect()
        } else {
            let coordinator = &state.txn_coordinator;
            let result = if verify_only {
                coordinator.verify_partitions(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    &partitions,
                )
            } else {
                coordinator
                    .add_partitions(transactional_id, producer_id, producer_epoch, &partitions)
                    .map(|()| vec![])
            };
            match result {
                // v4 verifies for produce requests that predate TRANSACTION_ABORTABLE.
                Ok(errors) if api_version < 5 => errors
                    .into_iter()
                    .map(|(p, e)| match e {
                        ResponseError::TransactionAbortable => (p, ResponseError::InvalidTxnState),
                        e => (p, e),
                    })
                    .collect(),
                Ok(errors) => errors,
                Err(e) => {
                    // Clients before v2 know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
                    let e = match e {
                        ResponseError::ProducerFenced if api_version < 2 => {
                            ResponseError::InvalidProducerEpoch
                        }
                        e => e,
                    };
                    partitions.iter().map(|p| (p.clone(), e)).collect()
                }
            }
        };
    topics
        .iter()
        .map(|t| {
            let results = t
                .partitions
                .iter()
                .map(|p| {
                    let key = (t.name.to_string(), *p);
                    let code = errors
                        .iter()
                        .find(|(k, _)| *k == key)
                        .map_or(0, |(_, e)| e.code());
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(code)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results)
        })
        .collect()
}

/// Every partition of `topics` answered with `error`.
fn all_failed(
    topics: &[AddPartitionsToTxnTopic],
    error: ResponseError,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(error.code())
                        })
                        .collect(),
                )
        })
        .collect()
}
