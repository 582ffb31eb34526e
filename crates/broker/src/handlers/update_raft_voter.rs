//! UpdateRaftVoter (KIP-853): a voter of a dynamic quorum that restarted with another
//! controller endpoint tells the active controller, which records the new address in the
//! membership (one change), so that the quorum reaches it again. Only the active
//! controller answers (NOT_LEADER_OR_FOLLOWER elsewhere: the voter tries the next one);
//! VOTER_NOT_FOUND for an id and directory id that name no voter, UNSUPPORTED_VERSION on a
//! static quorum, INVALID_REQUEST without the controller listener.

use kafka_protocol::messages::{UpdateRaftVoterRequest, UpdateRaftVoterResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use moldau_controller::Node;
use moldau_security::acl::AclOperation;

use super::add_raft_voter::{check_cluster, check_dynamic, controller_endpoint, raft_error};
use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = UpdateRaftVoterRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: UpdateRaftVoterRequest,
) -> UpdateRaftVoterResponse {
    // Kafka: CLUSTER_ACTION on the cluster, else the error code alone.
    if !authorizer::allowed_cluster(state, ctx, AclOperation::ClusterAction) {
        return UpdateRaftVoterResponse::default()
            .with_error_code(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code());
    }
    let outcome = async {
        check_dynamic(state)?;
        check_cluster(state, request.cluster_id.as_deref())?;
        let (host, port) = controller_endpoint(
            state,
            request
                .listeners
                .iter()
                .map(|l| (l.name.as_str(), l.host.as_str(), l.port)),
        )?;
        let directory_id = crate::server::base64_url_uuid(request.voter_directory_id);
        let node = Node::controller(host, port, Some(directory_id.clone()));
        state
            .controller
            .update_voter(request.voter_id, Some(&directory_id), node)
            .await
            .map_err(raft_error)
    }
    .await;
    match outcome {
        Ok(()) => UpdateRaftVoterResponse::default(),
        Err((error, message)) => {
            tracing::debug!(voter = request.voter_id, %message, "UpdateRaftVoter refused");
            UpdateRaftVoterResponse::default().with_error_code(error.code())
        }
    }
}
