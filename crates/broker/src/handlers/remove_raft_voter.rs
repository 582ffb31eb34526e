//! RemoveRaftVoter (KIP-853): the active controller of a dynamic quorum removes a voter (it
//! stays an observer if it is also a registered broker). VOTER_NOT_FOUND when the id and
//! directory id name no voter; removing the last voter is INVALID_REQUEST. Any other node
//! forwards it; a static quorum refuses with UNSUPPORTED_VERSION.

use kafka_protocol::messages::{RemoveRaftVoterRequest, RemoveRaftVoterResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use super::add_raft_voter::{check_cluster, check_dynamic, raft_error};
use kafka_protocol::ResponseError;
use moldau_security::acl::AclOperation;

use super::{authz, forward_unless_controller, str_bytes};
use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = RemoveRaftVoterRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    // Kafka's controller asks ALTER on the cluster first.
    if authz::authorize_cluster_unless_forwarded(state, ctx, AclOperation::Alter).is_err() {
        let error = ResponseError::ClusterAuthorizationFailed;
        return RemoveRaftVoterResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(authz::default_message(error))));
    }
    if let Some(response) = forward_unless_controller(state, ctx, &request).await {
        return response;
    }
    let outcome = async {
        check_dynamic(state)?;
        check_cluster(state, request.cluster_id.as_deref())?;
        let directory_id = crate::server::base64_url_uuid(request.voter_directory_id);
        let broker = state.image().brokers.contains_key(&request.voter_id);
        state
            .controller
            .remove_voter(request.voter_id, Some(&directory_id), broker)
            .await
            .map_err(raft_error)
    }
    .await;
    match outcome {
        Ok(()) => RemoveRaftVoterResponse::default(),
        Err((error, message)) => RemoveRaftVoterResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message))),
    }
}
