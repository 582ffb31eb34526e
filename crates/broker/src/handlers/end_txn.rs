//! EndTxn: commits or aborts the producer's transaction (PrepareCommit / PrepareAbort, the
//! markers, then CompleteCommit / CompleteAbort in `__transaction_state`).

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = EndTxnRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: EndTxnRequest,
) -> EndTxnResponse {
    let transactional_id = request.transactional_id.as_str();
    // WRITE on the transactional id, as Kafka.
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        return EndTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
    }
    let mut result = state.txn_coordinator.end_txn(
        state,
        transactional_id,
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
    );
    if result.is_ok() {
        // The PrepareCommit / PrepareAbort is durable before the producer hears of it.
        let partition_id = state.txn_coordinator.partition_for(transactional_id);
        result = super::coordinator_write_replicated(
            state,
            moldau_coordinator::txn::TRANSACTION_STATE_TOPIC,
            partition_id,
        )
        .await;
    }
    let code = match result {
        Ok(()) => 0,
        // Clients before v2 know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
        Err(ResponseError::ProducerFenced) if ctx.api_version < 2 => {
            ResponseError::InvalidProducerEpoch.code()
        }
        Err(e) => e.code(),
    };
    // v5+ (transaction version 2) returns the producer id and epoch; -1 when unchanged.
    EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1)
}
