//! LeaveGroup: one member (v0-v2) or a batch named by member id and/or group.instance.id
//! (v3+, KIP-345), each with its own error.

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = LeaveGroupRequest::VERSIONS;

/// Members per request: bounds one request's work (Kafka groups rarely exceed hundreds).
const MAX_MEMBERS: usize = 10_000;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return LeaveGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let members: Vec<(String, Option<String>)> = if ctx.api_version >= 3 {
        request
            .members
            .iter()
            .take(MAX_MEMBERS)
            .map(|m| {
                let instance = m.group_instance_id.as_ref().map(|i| i.to_string());
                (m.member_id.to_string(), instance)
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let (error, responses) =
        state
            .group_coordinator
            .leave_group(request_info(ctx), request.group_id.as_str(), &members);
    let top = error.map_or(0, |e| e.code());
    if ctx.api_version >= 3 {
        return LeaveGroupResponse::default()
            .with_error_code(top)
            .with_members(if top == 0 { responses } else { vec![] });
    }
    // Before v3 the one member's error is the response's error.
    let member_error = responses.first().map_or(0, |m| m.error_code);
    LeaveGroupResponse::default().with_error_code(if top != 0 { top } else { member_error })
}
