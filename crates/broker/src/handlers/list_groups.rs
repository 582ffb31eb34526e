//! ListGroups: every group this node coordinates, classic and KIP-848 ("consumer")
//! together, filtered by state (v4+) and type (v5+), case-insensitively as Kafka does.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use super::str_bytes;
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ListGroupsRequest::VERSIONS;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    // DESCRIBE on the cluster lists every group; otherwise the groups the principal may
    // DESCRIBE, as Kafka.
    let all = authorizer::allowed_quietly(
        state,
        ctx,
        AclOperation::Describe,
        ResourceType::Cluster,
        authorizer::CLUSTER_NAME,
    );
    let groups = state
        .group_coordinator
        .list_groups()
        .into_iter()
        .filter(|g| {
            all || authorizer::allowed_quietly(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::Group,
                &g.group_id,
            )
        })
        .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
        .filter(|g| types.is_empty() || types.contains(&g.group_type.to_string()))
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            let listed = if ctx.api_version >= 4 {
                listed.with_group_state(str_bytes(g.state))
            } else {
                listed
            };
            if ctx.api_version >= 5 {
                listed.with_group_type(str_bytes(g.group_type))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
