//! OffsetFetch: committed offsets (-1 where none), for one group (v0-v7) or several
//! (v8+); a null topic list means every partition the group has committed.
//! require_stable (v7+, KIP-447): a partition with a TxnOffsetCommit still waiting for
//! its transaction's marker is answered UNSTABLE_OFFSET_COMMIT (the consumer retries).

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_coordinator::FetchedOffset;

use super::{str_bytes, topic_name};
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::group_coordinator::FetchedTopics;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = OffsetFetchRequest::VERSIONS;

/// Groups per request: bounds one request's work.
const MAX_GROUPS: usize = 10_000;

type Fetched = Result<FetchedTopics, ResponseError>;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let coordinator = &state.group_coordinator;
    // One flag for every group of the request (v8+), as Kafka.
    let require_stable = request.require_stable;
    if ctx.api_version >= 8 {
        let groups = request
            .groups
            .iter()
            .take(MAX_GROUPS)
            .map(|g| {
                let topics: Option<Vec<(String, Vec<i32>)>> = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                // v9+ (KIP-848) members name themselves and their epoch.
                let member_id = g.member_id.as_ref().map(|m| m.to_string());
                let member = match (&member_id, g.member_epoch) {
                    (None, -1) => None,
                    (id, epoch) => Some((id.as_deref().unwrap_or(""), epoch)),
                };
                let fetched = authorized(state, ctx, g.group_id.as_str(), topics.is_some(), || {
                    coordinator.fetch_offsets(
                        g.group_id.as_str(),
                        member,
                        topics.as_deref(),
                        require_stable,
                    )
                });
                group_response(g.group_id.clone(), fetched)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let fetched = authorized(
        state,
        ctx,
        request.group_id.as_str(),
        topics.is_some(),
        || {
            coordinator.fetch_offsets(
                request.group_id.as_str(),
                None,
                topics.as_deref(),
                require_stable,
            )
        },
    );
    match fetched {
        Ok(topics) => OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(topic_name(&name))
                        .with_partitions(partitions.into_iter().map(partition_v0).collect())
                })
                .collect(),
        ),
        Err(e) if ctx.api_version >= 2 => OffsetFetchResponse::default().with_error_code(e.code()),
        Err(e) => {
            // v0-v1 have no top-level error: each requested partition carries it.
            let topics = request
                .topics
                .iter()
                .flatten()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(-1)
                                .with_committed_leader_epoch(-1)
                                .with_metadata(Some(str_bytes("")))
                                .with_error_code(e.code())
                        })
                        .collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            OffsetFetchResponse::default().with_topics(topics)
        }
    }
}

/// Kafka's checks around a fetch: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED),
/// then DESCRIBE on each topic: a topic the client named is answered
/// TOPIC_AUTHORIZATION_FAILED, one it did not (all topics) is left out.
fn authorized(
    state: &BrokerState,
    ctx: &RequestContext,
    group_id: &str,
    topics_named: bool,
    fetch: impl FnOnce() -> Fetched,
) -> Fetched {
    if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Describe,
        ResourceType::Group,
        group_id,
    ) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let mut topics = fetch()?;
    topics.retain_mut(|(name, partitions)| {
        let allowed = authorizer::allowed_logging_if(
            topics_named,
            state,
            ctx,
            AclOperation::Describe,
            ResourceType::Topic,
            name,
        );
        if allowed {
            return true;
        }
        for (offset, error) in partitions.iter_mut() {
            *offset = FetchedOffset {
                partition: offset.partition,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
            };
            *error = Some(ResponseError::TopicAuthorizationFailed);
        }
        topics_named
    });
    Ok(topics)
}

fn partition_v0(
    (o, error): (FetchedOffset, Option<ResponseError>),
) -> OffsetFetchResponsePartition {
    OffsetFetchResponsePartition::default()
        .with_partition_index(o.partition)
        .with_committed_offset(o.offset)
        .with_committed_leader_epoch(o.leader_epoch)
        .with_metadata(Some(str_bytes(o.metadata)))
        .with_error_code(error.map_or(0, |e| e.code()))
}

fn group_response(
    group_id: kafka_protocol::messages::GroupId,
    fetched: Fetched,
) -> OffsetFetchResponseGroup {
    let group = OffsetFetchResponseGroup::default().with_group_id(group_id);
    match fetched {
        Ok(topics) => group.with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(o, error)| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(o.partition)
                                        .with_committed_offset(o.offset)
                                        .with_committed_leader_epoch(o.leader_epoch)
                                        .with_metadata(Some(str_bytes(o.metadata)))
                                        .with_error_code(error.map_or(0, |e| e.code()))
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(e) => group.with_error_code(e.code()),
    }
}
