//! OffsetDelete: removes a group's committed offsets (tombstones) for topics it no longer
//! consumes; GROUP_SUBSCRIBED_TO_TOPIC for topics its members still subscribe to.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use super::topic_name;
use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = OffsetDeleteRequest::VERSIONS;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    // DELETE on the group, then READ on each topic, as Kafka.
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Delete,
        ResourceType::Group,
        &request.group_id,
    ) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let refused: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .filter(|name| {
            !authorizer::allowed(state, ctx, AclOperation::Read, ResourceType::Topic, name)
        })
        .collect();
    let topics: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .filter(|t| !refused.contains(&t.name.to_string()))
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.to_string(), partitions)
        })
        .collect();
    match state
        .group_coordinator
        .delete_offsets(request.group_id.as_str(), &topics)
    {
        Ok(results) => OffsetDeleteResponse::default().with_topics(
            results
                .into_iter()
                .chain(
                    request
                        .topics
                        .iter()
                        .filter(|t| refused.contains(&t.name.to_string()))
                        .map(|t| {
                            let denied = Some(ResponseError::TopicAuthorizationFailed);
                            let partitions = t
                                .partitions
                                .iter()
                                .map(|p| (p.partition_index, denied))
                                .collect();
                            (t.name.to_string(), partitions)
                        }),
                )
                .map(|(name, partitions)| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic_name(&name))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(p, e)| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(e.map_or(0, |e| e.code()))
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
    }
}
