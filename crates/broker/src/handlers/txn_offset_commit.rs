//! TxnOffsetCommit: offsets a transactional producer commits for a consumer group. The
//! group coordinator validates them as OffsetCommit does and holds them until the
//! transaction's COMMIT marker reaches the group's `__consumer_offsets` partition (an ABORT
//! drops them).

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = TxnOffsetCommitRequest::VERSIONS;

/// The OffsetCommit version whose member checks TxnOffsetCommit v3+ shares (generation,
/// member id, group instance id; no retention time).
const OFFSET_COMMIT_EQUIVALENT_VERSION: i16 = 7;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let mut commit = OffsetCommitRequest::default()
        .with_group_id(request.group_id.clone())
        .with_generation_id_or_member_epoch(request.generation_id)
        .with_member_id(request.member_id.clone())
        .with_group_instance_id(request.group_instance_id.clone())
        .with_topics(
            request
                .topics
                .iter()
                .map(|t| {
                    OffsetCommitRequestTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    OffsetCommitRequestPartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_committed_offset(p.committed_offset)
                                        .with_committed_leader_epoch(p.committed_leader_epoch)
                                        .with_committed_metadata(p.committed_metadata.clone())
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    // As Kafka: WRITE on the transactional id, READ on the group, then READ on each topic.
    let refusal = if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        &request.transactional_id,
    ) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !authorizer::allowed(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(error) = refusal {
        return TxnOffsetCommitResponse::default().with_topics(error_topics(&commit, error));
    }
    let unknown = super::offset_commit::take_unanswerable_partitions(state, ctx, &mut commit);
    let mut info = request_info(ctx);
    info.api_version = OFFSET_COMMIT_EQUIVALENT_VERSION;
    let result = if commit.topics.is_empty() {
        Ok(Default::default())
    } else {
        state.group_coordinator.txn_commit_offsets(
            info,
            (request.producer_id.0, request.producer_epoch),
            &commit,
        )
    };
    let mut topics = match result {
        Ok(response) => response
            .topics
            .into_iter()
            .map(|t| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(
                        t.partitions
                            .into_iter()
                            .map(|p| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(p.error_code)
                            })
                            .collect(),
                    )
            })
            .collect(),
        Err(e) => error_topics(&commit, e),
    };
    if !commit.topics.is_empty() {
        let partition_id = state
            .group_coordinator
            .partition_for_group(request.group_id.as_str());
        if let Err(e) = super::coordinator_write_replicated(
            state,
            moldau_coordinator::OFFSETS_TOPIC,
            partition_id,
        )
        .await
        {
            for p in topics.iter_mut().flat_map(|t| &mut t.partitions) {
                if p.error_code == 0 {
                    p.error_code = e.code();
                }
            }
        }
    }
    // As Kafka: a topic refused or unknown is answered before the coordinator sees it.
    for (name, partitions, error) in unknown {
        let partitions = partitions.into_iter().map(|partition_index| {
            TxnOffsetCommitResponsePartition::default()
                .with_partition_index(partition_index)
                .with_error_code(error.code())
        });
        match topics.iter_mut().find(|t| t.name == name) {
            Some(topic) => topic.partitions.extend(partitions),
            None => topics.push(
                TxnOffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(partitions.collect()),
            ),
        }
    }
    TxnOffsetCommitResponse::default().with_topics(topics)
}

fn error_topics(
    request: &OffsetCommitRequest,
    error: ResponseError,
) -> Vec<TxnOffsetCommitResponseTopic> {
    request
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(error.code())
                        })
                        .collect(),
                )
        })
        .collect()
}
