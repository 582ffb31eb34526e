//! SyncGroup: followers park until the leader's assignment is in the log; the leader's
//! request stores it (as Kafka's GroupMetadata record) and releases everyone.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = SyncGroupRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let group_id = request.group_id.to_string();
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &group_id,
    ) {
        return SyncGroupResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let response = state
        .group_coordinator
        .sync_group(request_info(ctx), request)
        .await;
    if response.error_code != 0 {
        return response;
    }
    // The assignment the leader wrote is durable before members act on it.
    let partition_id = state.group_coordinator.partition_for_group(&group_id);
    match super::coordinator_write_replicated(
        state,
        moldau_coordinator::OFFSETS_TOPIC,
        partition_id,
    )
    .await
    {
        Ok(()) => response,
        Err(e) => response.with_error_code(e.code()),
    }
}
