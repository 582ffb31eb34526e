//! WriteTxnMarkers: a transaction coordinator asks this leader to close a producer's
//! transaction on its partitions with COMMIT or ABORT markers. The local coordinator takes
//! the same path ([`crate::txn_coordinator::write_marker`]) without a request.

use futures_util::future::join_all;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use moldau_storage::TopicPartition;

use crate::api::RequestContext;
use crate::state::BrokerState;
use crate::txn_coordinator::{marker_replicated, write_marker};

pub const VERSIONS: VersionRange = WriteTxnMarkersRequest::VERSIONS;

/// Markers per request: bounds one request's work.
const MAX_MARKERS: usize = 10_000;

pub async fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
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
