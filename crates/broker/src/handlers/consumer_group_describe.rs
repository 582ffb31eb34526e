//! ConsumerGroupDescribe (KIP-848): epochs, assignor, and each member's current and target
//! assignment. Classic and unknown groups are GROUP_ID_NOT_FOUND.

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ConsumerGroupDescribeRequest::VERSIONS;

/// Groups per request: bounds one request's work.
const MAX_GROUPS: usize = 10_000;
/// With no authorizer: READ, DELETE and DESCRIBE on a group.
const GROUP_OPERATIONS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let groups = request
        .group_ids
        .into_iter()
        .take(MAX_GROUPS)
        .map(|group_id| {
            let mut described = state
                .group_coordinator
                .consumer_describe(group_id.as_str())
                .unwrap_or_else(|e| {
                    DescribedGroup::default()
                        .with_group_id(group_id)
                        .with_error_code(e.code())
                        .with_authorized_operations(i32::MIN)
                });
            if request.include_authorized_operations && described.error_code == 0 {
                described.authorized_operations = GROUP_OPERATIONS_ALL;
            }
            described
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
