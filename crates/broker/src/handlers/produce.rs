//! Produce: append each partition's record batches through the replica manager.
//!
//! Batches are validated and written by the storage crate without decoding records; the
//! only copy is from the request buffer into a mutable buffer whose base offsets are patched.
//! With acks=-1 the answer waits, for all partitions at once, until each high watermark
//! passes its records (Kafka's DelayedProduce), bounded by the request's `timeout_ms`.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::future::join_all;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_storage::{AppendOrigin, BatchHeader, StorageError, TopicPartition, VerificationGuard};

use super::str_bytes;
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::error::storage_error_code;
use crate::replica_manager::AppendError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ProduceRequest::VERSIONS;

/// The longest an acks=-1 produce waits for the ISR, whatever its `timeout_ms` asks:
/// Kafka sets no bound, but nothing a client sends may park forever.
const MAX_TIMEOUT_MS: i32 = 300_000;

/// Returns `Ok(None)` for acks=0: the client expects no response. An acks=0 request that
/// failed anywhere is `Err`: as Kafka, the connection is closed, the only way such a client
/// learns of the failure (it then refreshes metadata and reconnects).
pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ProduceRequest,
) -> Result<Option<ProduceResponse>, String> {
    let acks = request.acks;
    let transactional_id = request.transactional_id.as_ref().map(|id| id.as_str());
    let image = state.image();
    // As Kafka: a transactional produce needs WRITE on its transactional id, or every
    // partition is refused; then WRITE on each topic.
    let id_refused = transactional_id.is_some_and(|id| {
        !authorizer::allowed(
            state,
            ctx,
            AclOperation::Write,
            ResourceType::TransactionalId,
            id,
        )
    });
    let mut responses = Vec::with_capacity(request.topic_data.len());
    // (topic index, partition index in it, what to wait for) of appends awaiting the ISR.
    let mut waits: Vec<(usize, usize, Replication)> = Vec::new();
    for topic in request.topic_data {
        // v13+ names topics by id.
        let name = if ctx.api_version >= 13 {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.name.to_string())
        };
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        let refusal = if id_refused {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        } else {
            name.as_deref()
                .filter(|n| {
                    !authorizer::allowed(state, ctx, AclOperation::Write, ResourceType::Topic, n)
                })
                .map(|_| ResponseError::TopicAuthorizationFailed)
        };
        for partition in topic.partition_data {
            if let Some(error) = refusal {
                partition_responses.push(error_response(partition.index, error.code(), None));
                continue;
            }
            let (response, wait) =
                produce_partition(state, ctx, acks, transactional_id, &name, partition).await;
            if let Some(wait) = wait {
                waits.push((responses.len(), partition_responses.len(), wait));
            }
            partition_responses.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partition_responses),
        );
    }
    if !waits.is_empty() {
        let timeout = Duration::from_millis(request.timeout_ms.clamp(0, MAX_TIMEOUT_MS) as u64);
        let outcomes = join_all(waits.iter().map(|(_, _, wait)| {
            state.replica_manager.wait_for_replication(
                &wait.tp,
                wait.leader_epoch,
                wait.required_offset,
                timeout,
            )
        }))
        .await;
        for ((topic, partition, _), outcome) in waits.iter().zip(outcomes) {
            if let Err(e) = outcome {
                let response = &mut responses[*topic].partition_responses[*partition];
                *response = error_response(response.index, e.code(), None);
            }
        }
    }
    if acks == 0 {
        return match first_error(&responses) {
            Some(error) => Err(format!("acks=0 produce failed: {error}")),
            None => Ok(None),
        };
    }
    Ok(Some(ProduceResponse::default().with_responses(responses)))
}

/// What an acks=-1 append waits for: the high watermark past `required_offset` in the
/// leader epoch it was appended in.
struct Replication {
    tp: TopicPartition,
    leader_epoch: i32,
    required_offset: i64,
}

/// One partition of a Produce request: verify (transactions), append, answer (and, for
/// acks=-1, what the answer waits for).
async fn produce_partition(
    state: &BrokerState,
    ctx: &RequestContext,
    acks: i16,
    transactional_id: Option<&str>,
    name: &Option<String>,
    partition: PartitionProduceData,
) -> (PartitionProduceResponse, Option<Replication>) {
    let error = |e: ResponseError, message: Option<String>| {
        (error_response(partition.index, e.code(), message), None)
    };
    let Some(name) = &name else {
        return error(ResponseError::UnknownTopicId, None);
    };
    if !matches!(acks, -1..=1) {
        return error(ResponseError::InvalidRequiredAcks, None);
    }
    let Some(records) = partition.records.filter(|r| !r.is_empty()) else {
        return error(
            ResponseError::InvalidRecord,
            Some("produce request has no record batch".into()),
        );
    };
    let tp = TopicPartition::new(name.clone(), partition.index);
    crate::slow_disk(&state.config.log_dir).await;
    let guard = match verify_transaction(state, ctx, transactional_id, &tp, &records).await {
        Ok(guard) => guard,
        Err(e) => return error(e, None),
    };
    let mut records = BytesMut::from(&records[..]);
    // The epoch the records go in under: an acks=-1 wait ends if leadership moves.
    let leader_epoch = state
        .replica_manager
        .partition(&tp)
        .map_or(-1, |p| p.leader_epoch);
    match state
        .replica_manager
        .append_records(&tp, &mut records, acks, AppendOrigin::Client, guard)
    {
        Ok(info) => {
            let response = PartitionProduceResponse::default()
                .with_index(partition.index)
                .with_base_offset(info.first_offset)
                .with_log_append_time_ms(info.log_append_time_ms)
                .with_log_start_offset(info.log_start_offset);
            // A duplicate was appended before; it waits too, as its first append may not
            // be replicated yet.
            let wait = (acks == -1).then(|| Replication {
                tp,
                leader_epoch,
                required_offset: info.last_offset + 1,
            });
            (response, wait)
        }
        Err(AppendError::Kafka(e)) => error(e, None),
        Err(AppendError::Storage(e)) => (storage_error_response(partition.index, e), None),
    }
}

/// The first failed partition of a response, for the log line of a closed acks=0 connection.
fn first_error(responses: &[TopicProduceResponse]) -> Option<String> {
    responses.iter().find_map(|t| {
        t.partition_responses
            .iter()
            .find(|p| p.error_code != 0)
            .map(|p| {
                let message = p.error_message.as_ref().map_or("", |m| m.as_str());
                format!(
                    "{}-{}: error code {} {message}",
                    t.name.as_str(),
                    p.index,
                    p.error_code
                )
            })
    })
}

fn error_response(
    index: i32,
    error_code: i16,
    message: Option<String>,
) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error_code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(message.map(str_bytes))
}

/// A failed append; rejected records are listed by their index in the batch (KIP-467), so
/// clients fail just those and name the cause.
fn storage_error_response(index: i32, error: StorageError) -> PartitionProduceResponse {
    let response = error_response(index, storage_error_code(&error), Some(error.to_string()));
    match error {
        StorageError::RecordErrors { records, .. } => response.with_record_errors(
            records
                .into_iter()
                .map(|r| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(r.batch_index)
                        .with_batch_index_error_message(Some(str_bytes(r.message)))
                })
                .collect(),
        ),
        _ => response,
    }
}

/// KIP-890 part 1: a transactional batch goes only to a partition its producer added to the
/// transaction, as the coordinator confirms. As in Kafka, only a batch that would open the
/// producer's transaction on the partition asks the coordinator; the guard it returns
/// makes the append fail if the transaction ended meanwhile. Errors are converted for
/// clients that predate them, as Kafka does.
async fn verify_transaction(
    state: &BrokerState,
    ctx: &RequestContext,
    transactional_id: Option<&str>,
    tp: &TopicPartition,
    records: &[u8],
) -> Result<Option<VerificationGuard>, ResponseError> {
    let Ok(header) = BatchHeader::parse(records) else {
        // The log's validation reports the malformed batch.
        return Ok(None);
    };
    if !header.is_transactional() {
        return Ok(None);
    }
    // Kafka verifies only requests that name their transactional id.
    let Some(transactional_id) = transactional_id.filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let Some(partition) = state.replica_manager.partition(tp) else {
        // The append answers for a partition not served here.
        return Ok(None);
    };
    let guard = partition.log.maybe_start_transaction_verification(
        header.producer_id,
        header.base_sequence,
        header.producer_epoch,
        crate::now_ms(),
    );
    if guard == VerificationGuard::SENTINEL {
        // Already open here: the log's epoch and sequence checks govern the batch.
        return Ok(Some(guard));
    }
    let partition = [(tp.topic.clone(), tp.partition)];
    let coordinator = state
        .txn_coordinator
        .coordinator_node(state, transactional_id);
    // The coordinator verifies: here directly, on another broker by AddPartitionsToTxn.
    let result = match coordinator.filter(|c| *c != state.node_id) {
        None => state
            .txn_coordinator
            .verify_partitions(
                transactional_id,
                header.producer_id,
                header.producer_epoch,
                &partition,
            )
            .and_then(|errors| errors.into_iter().next().map_or(Ok(()), |(_, e)| Err(e))),
        Some(coordinator) => {
            crate::txn_coordinator::verify_remotely(
                state,
                coordinator,
                transactional_id,
                (header.producer_id, header.producer_epoch),
                tp,
            )
            .await
        }
    };
    result.map(|()| Some(guard)).map_err(|e| match e {
        // Producers expect INVALID_PRODUCER_EPOCH (abortable) from Produce, as the log's own
        // epoch check would answer; PRODUCER_FENCED comes from EndTxn and AddPartitionsToTxn.
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        ResponseError::TransactionAbortable if ctx.api_version < 11 => {
            ResponseError::InvalidTxnState
        }
        ResponseError::ConcurrentTransactions
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::NotCoordinator => ResponseError::NotEnoughReplicas,
        e => e,
    })
}
