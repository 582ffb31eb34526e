//! What the handlers share to authorize a request as Kafka's `AuthHelper` does (the
//! decisions themselves are [`crate::authorizer`]'s).
//!
//! Forwarding: Kafka's brokers forward controller requests in an Envelope that carries the
//! client's principal; the controller checks the Envelope (CLUSTER_ACTION on the cluster)
//! and then the request as that principal. Moldau forwards the request itself, over the
//! controller listener, so the node that takes a client's request authorizes it with the
//! client's principal before it forwards, and the active controller does not check again
//! a request that came over a controller listener from a principal allowed CLUSTER_ACTION
//! (a node: the same principal Kafka trusts to speak for others in an Envelope).

use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer::{self, allowed_quietly, CLUSTER_NAME};
use crate::state::BrokerState;

/// A request a node sent on a client's behalf: it came over a controller listener from a
/// principal allowed CLUSTER_ACTION (see the module docs), and was authorized where the
/// client sent it.
pub(crate) fn forwarded_by_node(state: &BrokerState, ctx: &RequestContext) -> bool {
    state.authorizer.is_some()
        && ctx.controller_listener
        && allowed_quietly(
            state,
            ctx,
            AclOperation::ClusterAction,
            ResourceType::Cluster,
            CLUSTER_NAME,
        )
}

/// Kafka's `authorizeClusterOperation` message (`Request $request is not authorized.`),
/// with what Moldau knows of the request (Kafka's also names the processor, the connection
/// id and the buffer).
pub(crate) fn not_authorized_message(state: &BrokerState, ctx: &RequestContext) -> String {
    let protocol = state.config.security_protocol(&ctx.listener_name).name();
    format!(
        "Request Request(session=Session({},/{}), listenerName=ListenerName({}), \
         securityProtocol={protocol}) is not authorized.",
        ctx.principal,
        ctx.peer.ip(),
        ctx.listener_name,
    )
}

/// Kafka's `authorizeClusterOperation`: `operation` on the cluster, else the error message
/// of its ClusterAuthorizationException.
pub(crate) fn authorize_cluster(
    state: &BrokerState,
    ctx: &RequestContext,
    operation: AclOperation,
) -> Result<(), String> {
    if authorizer::allowed_cluster(state, ctx, operation) {
        Ok(())
    } else {
        Err(not_authorized_message(state, ctx))
    }
}

/// [`authorize_cluster`] for a request nodes forward: one a node forwarded passes (it was
/// checked where the client sent it).
pub(crate) fn authorize_cluster_unless_forwarded(
    state: &BrokerState,
    ctx: &RequestContext,
    operation: AclOperation,
) -> Result<(), String> {
    if must_check(state, ctx) {
        authorize_cluster(state, ctx, operation)
    } else {
        Ok(())
    }
}

/// Whether a forwarded request's checks still have to be made here: not when a node
/// forwarded it (see the module docs).
pub(crate) fn must_check(state: &BrokerState, ctx: &RequestContext) -> bool {
    state.authorizer.is_some() && !forwarded_by_node(state, ctx)
}

/// Kafka's default message of an authorization error (`Errors.message()`), which its
/// `new ApiError(error)` carries.
pub(crate) fn default_message(error: ResponseError) -> String {
    match error {
        ResponseError::TopicAuthorizationFailed => "Topic authorization failed.",
        ResponseError::GroupAuthorizationFailed => "Group authorization failed.",
        ResponseError::ClusterAuthorizationFailed => "Cluster authorization failed.",
        ResponseError::TransactionalIdAuthorizationFailed => {
            "Transactional Id authorization failed."
        }
        _ => return error.to_string(),
    }
    .to_string()
}
