//! Heartbeat: keeps a classic group member's session alive; REBALANCE_IN_PROGRESS tells
//! it to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = HeartbeatRequest::VERSIONS;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return HeartbeatResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let result = state
        .group_coordinator
        .heartbeat(request_info(ctx), &request);
    HeartbeatResponse::default().with_error_code(result.err().map_or(0, |e| e.code()))
}
