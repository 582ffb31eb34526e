//! InitProducerId: producer ids for idempotent producers, from blocks allocated through the
//! metadata log; for a transactional id, the transaction coordinator's id and bumped epoch.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = InitProducerIdRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| id.is_empty())
    {
        return response.with_error_code(ResponseError::InvalidRequest.code());
    }
    // v3+ (KIP-360) may name the id and epoch the producer has: both or neither.
    let expected = match (request.producer_id.0, request.producer_epoch) {
        (-1, -1) => None,
        (id, epoch) if id >= 0 && epoch >= 0 => Some((id, epoch)),
        _ => return response.with_error_code(ResponseError::InvalidRequest.code()),
    };
    // WRITE on the transactional id; an idempotent producer needs IDEMPOTENT_WRITE on the
    // cluster or WRITE on some topic (KIP-679), as Kafka.
    let refusal = match &request.transactional_id {
        Some(id) => (!authorizer::allowed(
            state,
            ctx,
            AclOperation::Write,
            ResourceType::TransactionalId,
            id,
        ))
        .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        None => {
            (!authorizer::allowed_quietly(
                state,
                ctx,
                AclOperation::IdempotentWrite,
                ResourceType::Cluster,
                authorizer::CLUSTER_NAME,
            ) && !authorizer::allowed_any(state, ctx, AclOperation::Write, ResourceType::Topic))
            .then_some(ResponseError::ClusterAuthorizationFailed)
        }
    };
    if let Some(error) = refusal {
        return response.with_error_code(error.code());
    }
    if let Some(transactional_id) = &request.transactional_id {
        let transactional_id = transactional_id.as_str();
        let mut result = state
            .txn_coordinator
            .init_producer_id(
                state,
                transactional_id,
                request.transaction_timeout_ms,
                expected,
            )
            .await;
        if result.is_ok() {
            // The new epoch is durable before the producer uses it.
            let partition_id = state.txn_coordinator.partition_for(transactional_id);
            let written = super::coordinator_write_replicated(
                state,
                moldau_coordinator::txn::TRANSACTION_STATE_TOPIC,
                partition_id,
            )
            .await;
            result = written.and(result);
        }
        return match result {
            Ok((producer_id, epoch)) => response
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch),
            // Clients before v4 know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
            Err(ResponseError::ProducerFenced) if ctx.api_version < 4 => {
                response.with_error_code(ResponseError::InvalidProducerEpoch.code())
            }
            Err(e) => response.with_error_code(e.code()),
        };
    }
    // An idempotent producer always gets a fresh id with epoch 0, as on Kafka.
    match state.next_producer_id().await {
        Ok(producer_id) => response
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!("cannot allocate a producer id block: {e}");
            response.with_error_code(ResponseError::UnknownServerError.code())
        }
    }
}
