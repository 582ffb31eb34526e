//! DeleteGroups: an empty group's offsets and metadata become tombstones; a group with
//! members is NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DeleteGroupsRequest::VERSIONS;

/// Groups per request: bounds one request's work.
const MAX_GROUPS: usize = 10_000;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .into_iter()
        .take(MAX_GROUPS)
        .map(|group_id| {
            // DELETE on each group, as Kafka.
            let error = if authorizer::allowed(
                state,
                ctx,
                AclOperation::Delete,
                ResourceType::Group,
                &group_id,
            ) {
                state.group_coordinator.delete_group(group_id.as_str())
            } else {
                Some(kafka_protocol::ResponseError::GroupAuthorizationFailed)
            };
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error.map_or(0, |e| e.code()))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
