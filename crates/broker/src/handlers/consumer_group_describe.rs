//! ConsumerGroupDescribe (KIP-848): epochs, assignor, and each member's current and target
//! assignment. Classic and unknown groups are GROUP_ID_NOT_FOUND.

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ConsumerGroupDescribeRequest::VERSIONS;

/// Groups per request: bounds one request's work.
const MAX_GROUPS: usize = 10_000;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let groups = request
        .group_ids
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
                state.group_coordinator.consumer_describe(group_id.as_str())
            } else {
                Err(kafka_protocol::ResponseError::GroupAuthorizationFailed)
            };
            let mut described = described.unwrap_or_else(|e| {
                DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(e.code())
                    .with_authorized_operations(i32::MIN)
            });
            if request.include_authorized_operations && described.error_code == 0 {
                described.authorized_operations = authorizer::authorized_operations(
                    state,
                    ctx,
                    ResourceType::Group,
                    described.group_id.as_str(),
                );
            }
            described
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
