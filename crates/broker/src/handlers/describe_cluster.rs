//! DescribeCluster: cluster id, controller id and the registered brokers, as Kafka's
//! brokers answer it (endpoint type BROKER; a CONTROLLER request is MISMATCHED_ENDPOINT_TYPE,
//! an unknown type UNSUPPORTED_ENDPOINT_TYPE, and INVALID_REQUEST for both in v0).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use super::metadata::CLUSTER_OPERATIONS_ALL;
use super::str_bytes;
use crate::api::RequestContext;
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
    match request.endpoint_type {
        ENDPOINT_BROKER => {}
        ENDPOINT_CONTROLLER => {
            return refuse(
                ResponseError::MismatchedEndpointType,
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER".into(),
            )
        }
        other => {
            return refuse(
                ResponseError::UnsupportedEndpointType,
                format!("Unsupported endpoint type {other}"),
            )
        }
    }
    let image = state.image();
    // Fenced brokers only when asked for (v2), flagged.
    let brokers: Vec<DescribeClusterBroker> = image
        .brokers
        .values()
        .filter(|b| !b.fenced || request.include_fenced_brokers)
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.broker_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(str_bytes))
                .with_is_fenced(b.fenced)
        })
        .collect();
    let controller_id = state.controller_id(&image);
    let mut response = DescribeClusterResponse::default()
        .with_endpoint_type(ENDPOINT_BROKER)
        .with_cluster_id(str_bytes(state.cluster_id.clone()))
        .with_controller_id(BrokerId(controller_id))
        .with_brokers(brokers);
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = CLUSTER_OPERATIONS_ALL;
    }
    response
}
