//! ConsumerGroupHeartbeat (KIP-848): join, heartbeat and leave of `group.protocol=consumer`
//! members, with server-side assignment (uniform, range). Semantics live in
//! `moldau_coordinator`.

use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use crate::api::RequestContext;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ConsumerGroupHeartbeatRequest::VERSIONS;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    state
        .group_coordinator
        .consumer_heartbeat(state, request_info(ctx), &request)
}
