//! One module per Kafka API. Each declares `VERSIONS`, the range it serves (the full range
//! the codec offers for Kafka 4.x), and a `handle` function.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod add_raft_voter;
pub mod allocate_producer_ids;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition;
pub mod alter_partition_reassignments;
pub mod alter_replica_log_dirs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub(crate) mod authz;
pub mod broker_heartbeat;
pub mod broker_registration;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod controller_registration;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod remove_raft_voter;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod unregister_broker;
pub mod update_raft_voter;
pub mod write_txn_markers;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::replica_manager::Partition;
use crate::state::BrokerState;

/// How long a node waits for the active controller's answer to a request it forwards.
const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sends a request a client made to this node on to the active controller (as Kafka's
/// brokers forward controller requests), at the client's version, over the controller
/// listener. `None`: no other node is known to be the active controller, or it did not
/// answer; the caller answers with its own error.
pub(crate) async fn forward_to_controller<R>(
    state: &BrokerState,
    api_version: i16,
    request: &R,
) -> Option<R::Response>
where
    R: kafka_protocol::protocol::Request + kafka_protocol::protocol::Encodable,
    R::Response: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
{
    state
        .send_to_controller(request, api_version, FORWARD_TIMEOUT)
        .await
        .map_err(|e| tracing::debug!(%e, "request not forwarded to the active controller"))
        .ok()
}

/// A client's request that only the active controller carries out, arrived elsewhere:
/// forwarded to it, as Kafka's brokers forward them (clients send them to the Metadata
/// controller id, any unfenced broker). Not when it came over a controller listener
/// (forwarded already, or a tool talking to the controllers). `None`: handle it here (this
/// node leads, or no other leader answered: the handler then says NOT_CONTROLLER).
pub(crate) async fn forward_unless_controller<R>(
    state: &BrokerState,
    ctx: &crate::api::RequestContext,
    request: &R,
) -> Option<R::Response>
where
    R: kafka_protocol::protocol::Request + kafka_protocol::protocol::Encodable,
    R::Response: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
{
    if ctx.controller_listener || state.controller.quorum().is_leader() {
        return None;
    }
    forward_to_controller(state, ctx.api_version, request).await
}

/// How long a coordinator's answer waits for its write to reach the ISR.
const COORDINATOR_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A coordinator's writes to `topic`-`partition_id` (`__consumer_offsets`,
/// `__transaction_state`) so far, replicated to the ISR before the client is answered,
/// with Kafka's coordinator error mapping: leadership gone is NOT_COORDINATOR, too few
/// replicas or a timeout COORDINATOR_NOT_AVAILABLE (both make clients retry).
pub(crate) async fn coordinator_write_replicated(
    state: &BrokerState,
    topic: &str,
    partition_id: i32,
) -> Result<(), ResponseError> {
    let tp = moldau_storage::TopicPartition::new(topic, partition_id);
    state
        .replica_manager
        .wait_for_log_end_replicated(&tp, COORDINATOR_WRITE_TIMEOUT)
        .await
        .map_err(|e| match e {
            ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => {
                ResponseError::NotCoordinator
            }
            _ => ResponseError::CoordinatorNotAvailable,
        })
}

/// The listener whose endpoints a client is told of: the one it came in on (Kafka answers
/// Metadata, DescribeCluster and FindCoordinator per listener). A request over a controller
/// listener (forwarded by a broker) is answered for `inter.broker.listener.name`.
pub(crate) fn client_listener<'a>(
    state: &'a BrokerState,
    ctx: &'a crate::api::RequestContext,
) -> &'a str {
    if ctx.controller_listener {
        &state.config.inter_broker_listener_name
    } else {
        &ctx.listener_name
    }
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Kafka's leader checks for a request that names the leader epoch it knows (KIP-320): only
/// the leader answers, an older epoch is fenced, a newer one is not known here yet. -1 means
/// the client knows no epoch and skips the epoch check.
pub(crate) fn check_leader_epoch(
    state: &BrokerState,
    partition: &Partition,
    current_leader_epoch: i32,
) -> Result<(), ResponseError> {
    if partition.leader != state.node_id {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    if current_leader_epoch >= 0 && current_leader_epoch < partition.leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch);
    }
    if current_leader_epoch > partition.leader_epoch {
        return Err(ResponseError::UnknownLeaderEpoch);
    }
    Ok(())
}
