//! EndTxn: commits or aborts the producer's transaction (PrepareCommit / PrepareAbort, the
//! markers, then CompleteCommit / CompleteAbort in `__transaction_state`).

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = EndTxnRequest::VERSIONS;

pub fn handle(state: &BrokerState, ctx: &RequestContext, request: EndTxnRequest) -> EndTxnResponse {
    let result = state.txn_coordinator.end_txn(
        state,
        request.transactional_id.as_str(),
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
    );
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
