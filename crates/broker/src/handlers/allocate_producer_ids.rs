//! AllocateProducerIds: a broker asks the active controller for a block of producer ids
//! (Kafka's KIP-730), committed as a ProducerIds record so that no id is handed out twice
//! cluster-wide, across restarts and failovers. NOT_CONTROLLER from any other node;
//! STALE_BROKER_EPOCH from a broker whose registration is not the current one.

use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, ProducerId,
};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataRecord, PRODUCER_ID_BLOCK_SIZE};
use moldau_security::acl::AclOperation;

use crate::api::RequestContext;
use crate::authorizer;
use crate::error::BrokerError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = AllocateProducerIdsRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AllocateProducerIdsRequest,
) -> AllocateProducerIdsResponse {
    // Kafka's controller asks CLUSTER_ACTION on the cluster first (the error code alone).
    if !authorizer::allowed_cluster(state, ctx, AclOperation::ClusterAction) {
        return AllocateProducerIdsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    match allocate(state, request.broker_id.0, Some(request.broker_epoch)).await {
        Ok(start) => AllocateProducerIdsResponse::default()
            .with_producer_id_start(ProducerId(start))
            .with_producer_id_len(PRODUCER_ID_BLOCK_SIZE as i32),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::error!(%e, "producer id allocation failed");
            }
            AllocateProducerIdsResponse::default()
                .with_error_code(e.response_error().code())
                .with_producer_id_start(ProducerId(-1))
        }
    }
}

/// Commits the next block of producer ids for `broker_id` on the active controller and
/// returns its first id. `broker_epoch`: checked against the broker's registration when
/// the request came over the wire.
pub async fn allocate(
    state: &BrokerState,
    broker_id: i32,
    broker_epoch: Option<i64>,
) -> Result<i64, BrokerError> {
    state
        .controller
        .write(|image| {
            let current_epoch = image.brokers.get(&broker_id).map(|b| b.broker_epoch);
            if broker_epoch.is_some() && broker_epoch != current_epoch {
                return Err(BrokerError::Refused(ResponseError::StaleBrokerEpoch));
            }
            let start = image.next_producer_id;
            let record = MetadataRecord::ProducerIds {
                broker_id,
                broker_epoch: current_epoch.unwrap_or(0),
                next_producer_id: start + PRODUCER_ID_BLOCK_SIZE,
            };
            Ok((vec![record], start))
        })
        .await
}
