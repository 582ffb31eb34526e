//! SyncGroup: followers park until the leader's assignment is in the log; the leader's
//! request stores it (as Kafka's GroupMetadata record) and releases everyone.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use crate::api::RequestContext;
use crate::group_coordinator::request_info;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = SyncGroupRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    state
        .group_coordinator
        .sync_group(request_info(ctx), request)
        .await
}
