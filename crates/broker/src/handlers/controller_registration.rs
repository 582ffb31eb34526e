//! ControllerRegistration (KIP-919), as a controller of a dynamic quorum (KIP-853) sends it
//! to the active controller when it starts: the active controller replicates the metadata
//! log to it, at the controller listener it names, as a learner (Kafka's new controller
//! fetches as an observer), so that AddRaftVoter can later make it a voter. A voter is
//! already replicated to: nothing to do. Only the active controller accepts
//! (NOT_CONTROLLER elsewhere, for the sender to try the next bootstrap server).

use kafka_protocol::messages::{ControllerRegistrationRequest, ControllerRegistrationResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_controller::{Node, NodeId};
use moldau_security::acl::AclOperation;

use super::{authz, str_bytes};
use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ControllerRegistrationRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ControllerRegistrationRequest,
) -> ControllerRegistrationResponse {
    let refuse = |error: ResponseError, message: String| {
        ControllerRegistrationResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message)))
    };
    // Kafka's controller asks CLUSTER_ACTION on the cluster first.
    if !authorizer::allowed_cluster(state, ctx, AclOperation::ClusterAction) {
        let error = ResponseError::ClusterAuthorizationFailed;
        return refuse(error, authz::default_message(error));
    }
    if !state.controller.quorum().is_leader() {
        return refuse(
            ResponseError::NotController,
            "not the active controller".into(),
        );
    }
    let controller_id = request.controller_id;
    if controller_id < 0 {
        return refuse(
            ResponseError::InvalidRequest,
            "negative controller id".into(),
        );
    }
    if state.raft_transport.is_voter(controller_id as NodeId) {
        return ControllerRegistrationResponse::default();
    }
    let endpoint = super::add_raft_voter::controller_endpoint(
        state,
        request
            .listeners
            .iter()
            .map(|l| (l.name.as_str(), l.host.as_str(), l.port)),
    );
    let (host, port) = match endpoint {
        Ok(endpoint) => endpoint,
        Err((error, message)) => return refuse(error, message),
    };
    let node = Node::controller(host, port, None);
    match state
        .controller
        .quorum()
        .add_observer(controller_id as NodeId, node)
        .await
    {
        Ok(()) => ControllerRegistrationResponse::default(),
        Err(e) => {
            let e = crate::error::BrokerError::from(e);
            refuse(e.response_error(), e.to_string())
        }
    }
}
