//! DescribeCluster, as Kafka answers it on each kind of listener. On a broker listener
//! (endpoint type BROKER): the cluster id, the controller id clients see and the registered
//! brokers' endpoints on that listener. On a controller listener (KIP-919, what an Admin
//! with `bootstrap.controllers` asks): endpoint type CONTROLLER, the voters' controller
//! endpoints and the active controller (-1 while none is known). A request for the other
//! type is MISMATCHED_ENDPOINT_TYPE, an unknown type UNSUPPORTED_ENDPOINT_TYPE, and both
//! are INVALID_REQUEST in v0.
//! `cluster_authorized_operations` (when asked) is what the principal may do on the
//! cluster, 0 without DESCRIBE on it; on a controller listener the request needs ALTER on
//! the cluster first (Kafka's controllers), else CLUSTER_AUTHORIZATION_FAILED.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use moldau_security::acl::{AclOperation, ResourceType};

use super::{authz, client_listener, str_bytes};
use crate::api::RequestContext;
use crate::authorizer::{self, CLUSTER_NAME};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeClusterRequest::VERSIONS;

const ENDPOINT_BROKER: i8 = 1;
const ENDPOINT_CONTROLLER: i8 = 2;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let refuse = |error: ResponseError, message: String| {
        let error = if ctx.api_version == 0 {
            ResponseError::InvalidRequest
        } else {
            error
        };
        DescribeClusterResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message)))
    };
    // Kafka's controllers ask ALTER on the cluster first ("unlike on the broker").
    if ctx.controller_listener {
        if let Err(message) = authz::authorize_cluster(state, ctx, AclOperation::Alter) {
            return DescribeClusterResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(str_bytes(message)));
        }
    }
    let (served, served_name) = if ctx.controller_listener {
        (ENDPOINT_CONTROLLER, "CONTROLLER")
    } else {
        (ENDPOINT_BROKER, "BROKER")
    };
    match request.endpoint_type {
        ENDPOINT_BROKER | ENDPOINT_CONTROLLER if request.endpoint_type != served => {
            let wanted = if request.endpoint_type == ENDPOINT_BROKER {
                "BROKER"
            } else {
                "CONTROLLER"
            };
            return refuse(
                ResponseError::MismatchedEndpointType,
                format!(
                    "The request was sent to an endpoint of type {served_name}, but we wanted \
                     an endpoint of type {wanted}"
                ),
            );
        }
        ENDPOINT_BROKER | ENDPOINT_CONTROLLER => {}
        other => {
            return refuse(
                ResponseError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {other}"),
            )
        }
    }
    if ctx.controller_listener {
        return with_operations(state, ctx, describe_controllers(state), &request);
    }
    let image = state.image();
    let listener = client_listener(state, ctx);
    // Fenced brokers only when asked for (v2), flagged; each on the client's listener
    // (a broker without it is left out, as Kafka does).
    let brokers: Vec<DescribeClusterBroker> = image
        .brokers
        .values()
        .filter(|b| !b.fenced || request.include_fenced_brokers)
        .filter_map(|b| {
            let (host, port) = b.endpoint(listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.broker_id))
                    .with_host(str_bytes(host))
                    .with_port(i32::from(port))
                    .with_rack(b.rack.clone().map(str_bytes))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    let controller_id = state.controller_id(&image);
    let response = DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKER)
        .with_cluster_id(str_bytes(state.cluster_id.clone()))
        .with_controller_id(BrokerId(controller_id))
        .with_brokers(brokers);
    with_operations(state, ctx, response, &request)
}

/// The controllers (the voters, at their controller listener's address) and the active
/// controller among them, as Kafka's controllers answer (a controller id not among the
/// nodes is -1).
fn describe_controllers(state: &BrokerState) -> DescribeClusterResponse {
    let transport = &state.raft_transport;
    let controllers: Vec<DescribeClusterBroker> = transport
        .voter_ids()
        .into_iter()
        .filter_map(|id| {
            let addr = transport.voter_addr(id)?;
            let (host, port) = addr.rsplit_once(':')?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(i32::try_from(id).ok()?))
                    .with_host(str_bytes(host))
                    .with_port(port.parse().ok()?),
            )
        })
        .collect();
    let controller_id = state
        .controller
        .leader_id()
        .filter(|leader| controllers.iter().any(|c| c.broker_id.0 == *leader))
        .unwrap_or(-1);
    DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_CONTROLLER)
        .with_cluster_id(str_bytes(state.cluster_id.clone()))
        .with_controller_id(BrokerId(controller_id))
        .with_brokers(controllers)
}

/// Kafka's `computeDescribeClusterResponse`: when asked, the operations the principal may
/// do on the cluster, none without DESCRIBE on it (which is all the request needs).
fn with_operations(
    state: &BrokerState,
    ctx: &RequestContext,
    mut response: DescribeClusterResponse,
    request: &DescribeClusterRequest,
) -> DescribeClusterResponse {
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            if authorizer::allowed_cluster(state, ctx, AclOperation::Describe) {
                authorizer::authorized_operations(state, ctx, ResourceType::Cluster, CLUSTER_NAME)
            } else {
                0
            };
    }
    response
}
