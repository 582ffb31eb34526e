//! WriteTxnMarkers: a transaction coordinator asks this leader to close a producer's
//! transaction on its partitions with COMMIT or ABORT markers. The local coordinator takes
//! the same path ([`crate::txn_coordinator::write_marker`]) without a request.

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use moldau_storage::TopicPartition;

use crate::api::RequestContext;
use crate::state::BrokerState;
use crate::txn_coordinator::write_marker;

pub const VERSIONS: VersionRange = WriteTxnMarkersRequest::VERSIONS;

/// Markers per request: bounds one request's work.
const MAX_MARKERS: usize = 10_000;

pub fn handle(
    state: &BrokerState,
    _ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let markers = request
        .markers
        .iter()
        .take(MAX_MARKERS)
        .map(|marker| {
            let topics = marker
                .topics
                .iter()
                .map(|topic| {
                    let partitions = topic
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            let tp = TopicPartition::new(topic.name.to_string(), *p);
                            let code = write_marker(
                                state,
                                &tp,
                                marker.producer_id.0,
                                marker.producer_epoch,
                                marker.coordinator_epoch,
                                marker.transaction_result,
                            )
                            .map_or_else(|e| e.code(), |()| 0);
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(*p)
                                .with_error_code(code)
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(topic.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics)
        })
        .collect();
    WriteTxnMarkersResponse::default().with_markers(markers)
}
