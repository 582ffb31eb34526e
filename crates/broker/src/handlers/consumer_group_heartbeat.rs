//! ConsumerGroupHeartbeat (KIP-848): join, heartbeat and leave of `group.protocol=consumer`
//! members, with server-side assignment (uniform, range). Semantics live in
//! `moldau_coordinator`.

use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ConsumerGroupHeartbeatRequest::VERSIONS;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    // READ on the group, as Kafka.
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(kafka_protocol::ResponseError::GroupAuthorizationFailed.code())
            .with_heartbeat_interval_ms(0);
    }
    state
        .group_coordinator
        .consumer_heartbeat(state, request_info(ctx), &request)
}
