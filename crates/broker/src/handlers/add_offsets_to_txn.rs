//! AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the transaction, so
//! that the offsets TxnOffsetCommit writes there are committed or aborted with it.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_coordinator::OFFSETS_TOPIC;

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = AddOffsetsToTxnRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    // WRITE on the transactional id, then READ on the group, as Kafka.
    let transactional_id = request.transactional_id.as_str();
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        transactional_id,
    ) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let partition = state
        .group_coordinator
        .partition_for_group(request.group_id.as_str());
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
