//! OffsetCommit: committed offsets are records in `__consumer_offsets`; the answer is sent
//! once they are appended. Generation and member checks are Kafka's (simple commits with
//! generation -1 are accepted while the group has no members).

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use crate::api::RequestContext;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = OffsetCommitRequest::VERSIONS;

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    match state
        .group_coordinator
        .commit_offsets(request_info(ctx), &request)
    {
        Ok(response) => response,
        Err(e) => {
            // The whole request failed (e.g. NOT_COORDINATOR): every partition says so.
            let topics = request
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(e.code())
                        })
                        .collect();
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            OffsetCommitResponse::default().with_topics(topics)
        }
    }
}
