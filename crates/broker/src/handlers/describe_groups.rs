//! DescribeGroups: state, protocol and members; member metadata and assignments only while
//! the group is Stable (as Kafka). Unknown groups are Dead (GROUP_ID_NOT_FOUND from v6).

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeGroupsRequest::VERSIONS;

/// Groups per request: bounds one request's work.
const MAX_GROUPS: usize = 10_000;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .take(MAX_GROUPS)
        .map(|group_id| {
            // DESCRIBE on each group, as Kafka.
            let described = if authorizer::allowed(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::Group,
                &group_id,
            ) {
                state
                    .group_coordinator
                    .describe_group(group_id.as_str(), ctx.api_version)
            } else {
                Err(kafka_protocol::ResponseError::GroupAuthorizationFailed)
            };
            let mut described = described.unwrap_or_else(|e| {
                DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(e.code())
                    .with_authorized_operations(i32::MIN)
            });
            if ctx.api_version >= 3
                && request.include_authorized_operations
                && described.error_code == 0
            {
                described.authorized_operations = authorizer::authorized_operations(
                    state,
                    ctx,
                    ResourceType::Group,
                    described.group_id.as_str(),
                );
            }
            if ctx.api_version < 4 {
                for member in &mut described.members {
                    member.group_instance_id = None;
                }
            }
            described
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
