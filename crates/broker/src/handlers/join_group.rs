//! JoinGroup: parks until the group's join phase completes (or answers at once with an
//! error, MEMBER_ID_REQUIRED, or the current generation). Semantics live in
//! `moldau_coordinator`; here only the wire versions are applied.

use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = JoinGroupRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return JoinGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code())
            .with_generation_id(-1);
    }
    let mut response = state
        .group_coordinator
        .join_group(request_info(ctx), request)
        .await;
    // Fields newer than the request's version must stay at their defaults.
    if ctx.api_version < 9 {
        response.skip_assignment = false;
    }
    if ctx.api_version < 5 {
        for member in &mut response.members {
            member.group_instance_id = None;
        }
    }
    response
}
