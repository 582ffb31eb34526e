//! BrokerHeartbeat: a broker's liveness and metadata progress, to the active controller,
//! which fences, unfences or shuts it down (see `broker_lifecycle`). NOT_CONTROLLER from any
//! other node; STALE_BROKER_EPOCH for a registration that is not the current one.

use kafka_protocol::messages::{BrokerHeartbeatRequest, BrokerHeartbeatResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use moldau_security::acl::AclOperation;

use crate::api::RequestContext;
use crate::authorizer;
use crate::broker_lifecycle::{handle_heartbeat, Heartbeat};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = BrokerHeartbeatRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: BrokerHeartbeatRequest,
) -> BrokerHeartbeatResponse {
    // Kafka's controller asks CLUSTER_ACTION on the cluster first (the error code alone).
    if !authorizer::allowed_cluster(state, ctx, AclOperation::ClusterAction) {
        return BrokerHeartbeatResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code());
    }
    let heartbeat = Heartbeat {
        broker_id: request.broker_id.0,
        broker_epoch: request.broker_epoch,
        current_metadata_offset: request.current_metadata_offset,
        want_fence: request.want_fence,
        want_shut_down: request.want_shut_down,
    };
    match handle_heartbeat(state, heartbeat).await {
        Ok(outcome) => BrokerHeartbeatResponse::default()
            .with_is_caught_up(outcome.is_caught_up)
            .with_is_fenced(outcome.is_fenced)
            .with_should_shut_down(outcome.should_shut_down),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::warn!(%e, "broker heartbeat failed");
            }
            BrokerHeartbeatResponse::default()
                .with_error_code(e.response_error().code())
                .with_is_fenced(true)
        }
    }
}
