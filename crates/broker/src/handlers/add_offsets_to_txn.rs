//! AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction, so
//! that the offsets TxnOffsetCommit writes there are committed or aborted with it.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_coordinator::OFFSETS_TOPIC;

use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = AddOffsetsToTxnRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let partition = state
        .group_coordinator
        .partition_for_group(request.group_id.as_str());
    let transactional_id = request.transactional_id.as_str();
    let mut result = state.txn_coordinator.add_partitions(
        transactional_id,
        request.producer_id.0,
        request.producer_epoch,
        &[(OFFSETS_TOPIC.to_string(), partition)],
    );
    if result.is_ok() {
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
    AddOffsetsToTxnResponse::default().with_error_code(code)
}
