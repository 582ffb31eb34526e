//! UnregisterBroker: removes a decommissioned broker's registration, as `kafka-cluster
//! unregister --id` does; its leadership moves away as when it is fenced. Any node takes
//! the request and forwards it to the active controller.
//! BROKER_ID_NOT_REGISTERED for an id with no registration.

use kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use moldau_security::acl::AclOperation;

use super::{authz, forward_to_controller, str_bytes};
use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = UnregisterBrokerRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    // Kafka's controller asks ALTER on the cluster first (the error code alone).
    if authz::authorize_cluster_unless_forwarded(state, ctx, AclOperation::Alter).is_err() {
        return UnregisterBrokerResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    if !state.controller.quorum().is_leader() {
        if let Some(response) = forward_to_controller(state, ctx.api_version, &request).await {
            return response;
        }
    }
    match crate::broker_lifecycle::unregister(state, request.broker_id.0).await {
        Ok(()) => UnregisterBrokerResponse::default(),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::warn!(%e, "unregistering broker {} failed", request.broker_id.0);
            }
            let error = e.response_error();
            let message = match error {
                ResponseError::BrokerIdNotRegistered => format!(
                    "Broker ID {} is not currently registered",
                    request.broker_id.0
                ),
                _ => e.to_string(),
            };
            UnregisterBrokerResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(message)))
        }
    }
}
