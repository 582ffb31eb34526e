//! WriteTxnMarkers: a transaction coordinator asks this leader to close a producer's
//! transaction on its partitions with COMMIT or ABORT markers. The local coordinator takes
//! the same path ([`crate::txn_coordinator::write_marker`]) without a request.
//! Needs ALTER or CLUSTER_ACTION on the cluster (else every partition is
//! CLUSTER_AUTHORIZATION_FAILED), as Kafka.

use futures_util::future::join_all;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_security::acl::{AclOperation, ResourceType};
use moldau_storage::TopicPartition;

use crate::api::RequestContext;
use crate::authorizer::{self, CLUSTER_NAME};
use crate::state::BrokerState;
use crate::txn_coordinator::{marker_replicated, write_marker};

pub const VERSIONS: VersionRange = WriteTxnMarkersRequest::VERSIONS;

/// Markers per request: bounds one request's work.
const MAX_MARKERS: usize = 10_000;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    // Kafka: ALTER on the cluster (a quiet check), else CLUSTER_ACTION; refused, every
    // partition gets CLUSTER_AUTHORIZATION_FAILED.
    if !authorizer::allowed_quietly(
        state,
        ctx,
        AclOperation::Alter,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) && !authorizer::allowed_cluster(state, ctx, AclOperation::ClusterAction)
    {
        return denied(&request);
    }
    let mut results = Vec::new();
    // (marker, topic, partition) positions of written markers, and where they went.
    let mut written = Vec::new();
    for (m, marker) in request.markers.iter().take(MAX_MARKERS).enumerate() {
        let mut topics = Vec::new();
        for (t, topic) in marker.topics.iter().enumerate() {
            let mut partitions = Vec::new();
            for (i, p) in topic.partition_indexes.iter().enumerate() {
                let tp = TopicPartition::new(topic.name.to_string(), *p);
                let code = match write_marker(
                    state,
                    &tp,
                    marker.producer_id.0,
                    marker.producer_epoch,
                    marker.coordinator_epoch,
                    marker.transaction_result,
                ) {
                    Ok(at) => {
                        written.push(((m, t, i), (tp, at)));
                        0
                    }
                    Err(e) => e.code(),
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(*p)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
        results.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    // A marker counts once the ISR has it (Kafka appends markers with acks=-1).
    let outcomes = join_all(
        written
            .iter()
            .map(|(_, (tp, at))| marker_replicated(state, tp, *at)),
    )
    .await;
    for (((m, t, i), _), outcome) in written.iter().zip(outcomes) {
        if let Err(e) = outcome {
            results[*m].topics[*t].partitions[*i].error_code = e.code();
        }
    }
    WriteTxnMarkersResponse::default().with_markers(results)
}

/// Kafka's `getErrorResponse`: every partition of every marker refused.
fn denied(request: &WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let code = ResponseError::ClusterAuthorizationFailed.code();
    let markers = request
        .markers
        .iter()
        .map(|marker| {
            let topics = marker
                .topics
                .iter()
                .map(|topic| {
                    WritableTxnMarkerTopicResult::default()
                        .with_name(topic.name.clone())
                        .with_partitions(
                            topic
                                .partition_indexes
                                .iter()
                                .map(|p| {
                                    WritableTxnMarkerPartitionResult::default()
                                        .with_partition_index(*p)
                                        .with_error_code(code)
                                })
                                .collect(),
                        )
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics)
        })
        .collect();
    WriteTxnMarkersResponse::default().with_markers(markers)
}
