//! AddRaftVoter (KIP-853): the active controller of a dynamic quorum makes a controller a
//! voter. The controller (formatted `--no-initial-controllers`, registered with
//! ControllerRegistration) is replicated to as a learner until it holds the committed log,
//! then joins the voters in one membership change; the answer comes once that is committed
//! (within the request's `timeout_ms`, else REQUEST_TIMED_OUT). Any other node forwards it.
//! A static quorum (`controller.quorum.voters`, Kafka's kraft.version 0) refuses with
//! UNSUPPORTED_VERSION; a voter already in is DUPLICATE_VOTER; a request of another cluster
//! INCONSISTENT_CLUSTER_ID; one without the controller listener INVALID_REQUEST.

use std::time::Duration;

use kafka_protocol::messages::{AddRaftVoterRequest, AddRaftVoterResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_controller::Node;

use moldau_security::acl::AclOperation;

use super::{authz, forward_unless_controller, str_bytes};
use crate::api::RequestContext;
use crate::error::BrokerError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = AddRaftVoterRequest::VERSIONS;

/// The longest an AddRaftVoter waits for the new voter to catch up and be committed.
const MAX_TIMEOUT_MS: i32 = 300_000;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AddRaftVoterRequest,
) -> AddRaftVoterResponse {
    // Kafka's controller asks ALTER on the cluster first.
    if authz::authorize_cluster_unless_forwarded(state, ctx, AclOperation::Alter).is_err() {
        return AddRaftVoterResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes(authz::default_message(
                ResponseError::ClusterAuthorizationFailed,
            ))));
    }
    if let Some(response) = forward_unless_controller(state, ctx, &request).await {
        return response;
    }
    match add(state, &request).await {
        Ok(()) => AddRaftVoterResponse::default(),
        Err((error, message)) => AddRaftVoterResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message))),
    }
}

async fn add(
    state: &BrokerState,
    request: &AddRaftVoterRequest,
) -> Result<(), (ResponseError, String)> {
    check_dynamic(state)?;
    check_cluster(state, request.cluster_id.as_deref())?;
    let (host, port) = controller_endpoint(
        state,
        request
            .listeners
            .iter()
            .map(|l| (l.name.as_str(), l.host.as_str(), l.port)),
    )?;
    let node = Node::controller(
        host,
        port,
        Some(crate::server::base64_url_uuid(request.voter_directory_id)),
    );
    let timeout = Duration::from_millis(request.timeout_ms.clamp(1, MAX_TIMEOUT_MS) as u64);
    state
        .controller
        .add_voter(request.voter_id, node, timeout)
        .await
        .map_err(raft_error)
}

/// The endpoint a controller names for this cluster's controller listener (the first of
/// `controller.listener.names`) among the `(name, host, port)` listeners of its request;
/// INVALID_REQUEST without one.
pub(crate) fn controller_endpoint<'a>(
    state: &BrokerState,
    mut listeners: impl Iterator<Item = (&'a str, &'a str, u16)>,
) -> Result<(String, u16), (ResponseError, String)> {
    let wanted = state
        .config
        .controller_listener_names
        .first()
        .map_or("", String::as_str);
    listeners
        .find(|(name, _, _)| name.eq_ignore_ascii_case(wanted))
        .map(|(_, host, port)| (host.to_string(), port))
        .ok_or_else(|| {
            (
                ResponseError::InvalidRequest,
                format!("no listener named {wanted} (the controller listener)"),
            )
        })
}

/// Kafka's kraft.version 0: a static quorum has no voter changes.
pub(crate) fn check_dynamic(state: &BrokerState) -> Result<(), (ResponseError, String)> {
    if state.config.is_dynamic_quorum() {
        return Ok(());
    }
    Err((
        ResponseError::UnsupportedVersion,
        "the voters of a static quorum (controller.quorum.voters) cannot change; a dynamic \
         quorum uses controller.quorum.bootstrap.servers (KIP-853)"
            .into(),
    ))
}

pub(crate) fn check_cluster(
    state: &BrokerState,
    cluster_id: Option<&str>,
) -> Result<(), (ResponseError, String)> {
    match cluster_id {
        Some(theirs) if !theirs.is_empty() && theirs != state.cluster_id => Err((
            ResponseError::InconsistentClusterId,
            format!(
                "cluster id {theirs} is not this cluster's ({})",
                state.cluster_id
            ),
        )),
        _ => Ok(()),
    }
}

/// The errors of the Raft voter APIs: a node that is not the active controller answers
/// NOT_LEADER_OR_FOLLOWER, as Kafka's Raft client.
pub(crate) fn raft_error(e: BrokerError) -> (ResponseError, String) {
    match &e {
        BrokerError::NotController { .. } => (ResponseError::NotLeaderOrFollower, e.to_string()),
        // Kafka's own description ("The voter is already part of the set of voters.").
        BrokerError::Refused(error) => (*error, error.to_string()),
        other => (other.response_error(), e.to_string()),
    }
}
