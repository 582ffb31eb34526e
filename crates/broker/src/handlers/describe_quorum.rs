//! DescribeQuorum: the metadata quorum's leader, epoch, high watermark and every voter's
//! and observer's (broker-only nodes the log is replicated to) log end offset, as `kafka-metadata-quorum describe --status|--replication` and the Java
//! Admin's `describeMetadataQuorum` show them. Only the active controller knows the
//! voters' progress: any other node forwards the request to it (as Kafka's brokers do),
//! and answers NOT_LEADER_OR_FOLLOWER when there is none to forward to.

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

use moldau_security::acl::AclOperation;

use super::{authz, forward_to_controller, str_bytes, topic_name};
use crate::api::RequestContext;
use crate::controller::METADATA_TOPIC;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeQuorumRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    // Kafka's controller asks DESCRIBE on the cluster first (a top-level error).
    if authz::authorize_cluster_unless_forwarded(state, ctx, AclOperation::Describe).is_err() {
        let error = ResponseError::ClusterAuthorizationFailed;
        return DescribeQuorumResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(authz::default_message(error))));
    }
    let asks_for_metadata_partition = request.topics.len() == 1
        && request.topics[0].topic_name.as_str() == METADATA_TOPIC
        && request.topics[0].partitions.len() == 1
        && request.topics[0].partitions[0].partition_index == 0;
    if !asks_for_metadata_partition {
        return partition_error(ResponseError::UnknownTopicOrPartition);
    }
    match state.controller.quorum().quorum_state() {
        Ok(quorum) => describe(state, &quorum),
        Err(_) => forward_to_controller(state, ctx.api_version, &request)
            .await
            .unwrap_or_else(|| partition_error(ResponseError::NotLeaderOrFollower)),
    }
}

fn partition_error(error: ResponseError) -> DescribeQuorumResponse {
    let partition = PartitionData::default()
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(error.to_string())))
        .with_leader_id(BrokerId(-1))
        .with_leader_epoch(-1)
        .with_high_watermark(-1);
    DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(topic_name(METADATA_TOPIC))
        .with_partitions(vec![partition])])
}

fn describe(
    state: &BrokerState,
    quorum: &moldau_controller::QuorumState,
) -> DescribeQuorumResponse {
    let now_ms = crate::now_ms();
    let leader_end = quorum
        .voters
        .iter()
        .find(|v| v.node_id == quorum.leader_id)
        .map_or(-1, |v| v.log_end_offset);
    let replica_state = |replica: &moldau_controller::VoterState| {
        let last_fetch = if replica.node_id == quorum.leader_id {
            now_ms
        } else {
            state
                .raft_transport
                .last_append_ack_ms(replica.node_id)
                .unwrap_or(-1)
        };
        let caught_up = replica.log_end_offset >= 0 && replica.log_end_offset >= leader_end;
        let directory_id = replica
            .directory_id
            .as_deref()
            .and_then(crate::meta_properties::parse_base64_uuid)
            .unwrap_or_default();
        ReplicaState::default()
            .with_replica_id(BrokerId(replica.node_id as i32))
            .with_replica_directory_id(directory_id)
            .with_log_end_offset(replica.log_end_offset)
            .with_last_fetch_timestamp(last_fetch)
            .with_last_caught_up_timestamp(if caught_up { last_fetch } else { -1 })
    };
    let partition = PartitionData::default()
        .with_leader_id(BrokerId(quorum.leader_id as i32))
        .with_leader_epoch(quorum.leader_epoch as i32)
        .with_high_watermark(quorum.high_watermark)
        .with_current_voters(quorum.voters.iter().map(replica_state).collect())
        .with_observers(quorum.observers.iter().map(replica_state).collect());
    let listener_name = state
        .config
        .controller_listener_names
        .first()
        .cloned()
        .unwrap_or_else(|| state.config.inter_broker_listener_name.clone());
    let nodes = quorum
        .voters
        .iter()
        .filter_map(|voter| {
            let addr = state.raft_transport.voter_addr(voter.node_id)?;
            let (host, port) = addr.rsplit_once(':')?;
            Some(
                Node::default()
                    .with_node_id(BrokerId(voter.node_id as i32))
                    .with_listeners(vec![Listener::default()
                        .with_name(str_bytes(listener_name.clone()))
                        .with_host(str_bytes(host.to_string()))
                        .with_port(port.parse().ok()?)]),
            )
        })
        .collect();
    DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(topic_name(METADATA_TOPIC))
            .with_partitions(vec![partition])])
        .with_nodes(nodes)
}
