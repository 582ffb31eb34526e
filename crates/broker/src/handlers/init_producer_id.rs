//! InitProducerId: producer ids for idempotent producers, from blocks allocated through the
//! metadata log. Transactional ids need the transaction coordinator (issue 5).

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = InitProducerIdRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
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
    if request.transactional_id.is_some() {
        // No transaction coordinator runs yet: Kafka's answer while none is available.
        return response.with_error_code(ResponseError::CoordinatorNotAvailable.code());
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
