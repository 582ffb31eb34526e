//! Request decoding, version checks and routing to the handlers.
//!
//! Each handler module declares its supported version range (`VERSIONS`) next to its code;
//! [`SUPPORTED_APIS`] collects them, and ApiVersions answers from it, so what the broker
//! advertises is exactly what it routes.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::types::with_decode_limit;
use kafka_protocol::protocol::{Decodable, Encodable, VersionRange};

use crate::handlers;
use crate::state::BrokerState;

/// What the connection does after a request.
pub enum Outcome {
    /// Send this response (header and body, without the length prefix).
    Respond(BytesMut),
    /// Send nothing (Produce with acks=0).
    NoResponse,
    /// Close the connection, as Kafka does for requests it cannot parse.
    Close(String),
}

pub struct RequestContext {
    pub header: RequestHeader,
    pub api_version: i16,
    pub peer: SocketAddr,
    /// The listener the request came in on (upper case): clients are answered with the
    /// brokers' endpoints on it.
    pub listener_name: Arc<str>,
    /// Came over a controller listener: from another node (a forwarded request) or a
    /// tool that talks to the controllers, as Kafka's ControllerApis serve them.
    pub controller_listener: bool,
    /// Who sent it: the connection's authenticated principal (`User:ANONYMOUS` on
    /// PLAINTEXT and on TLS without a client certificate).
    pub principal: Arc<moldau_security::principal::KafkaPrincipal>,
    /// Throttles the handler found (client quotas' controller mutation quota).
    pub quota: crate::quota_manager::RequestQuota,
}

/// Every API this broker serves, with the versions its handler supports.
pub const SUPPORTED_APIS: &[(ApiKey, VersionRange)] = &[
    (ApiKey::Produce, handlers::produce::VERSIONS),
    (ApiKey::Fetch, handlers::fetch::VERSIONS),
    (ApiKey::ListOffsets, handlers::list_offsets::VERSIONS),
    (ApiKey::Metadata, handlers::metadata::VERSIONS),
    (ApiKey::ApiVersions, handlers::api_versions::VERSIONS),
    (ApiKey::SaslHandshake, handlers::sasl_handshake::VERSIONS),
    (
        ApiKey::SaslAuthenticate,
        handlers::sasl_authenticate::VERSIONS,
    ),
    (
        ApiKey::BrokerRegistration,
        handlers::broker_registration::VERSIONS,
    ),
    (
        ApiKey::BrokerHeartbeat,
        handlers::broker_heartbeat::VERSIONS,
    ),
    (ApiKey::AlterPartition, handlers::alter_partition::VERSIONS),
    (
        ApiKey::AlterPartitionReassignments,
        handlers::alter_partition_reassignments::VERSIONS,
    ),
    (
        ApiKey::ListPartitionReassignments,
        handlers::list_partition_reassignments::VERSIONS,
    ),
    (
        ApiKey::UnregisterBroker,
        handlers::unregister_broker::VERSIONS,
    ),
    (ApiKey::DescribeQuorum, handlers::describe_quorum::VERSIONS),
    (ApiKey::ElectLeaders, handlers::elect_leaders::VERSIONS),
    (
        ApiKey::AllocateProducerIds,
        handlers::allocate_producer_ids::VERSIONS,
    ),
    (ApiKey::CreateTopics, handlers::create_topics::VERSIONS),
    (ApiKey::InitProducerId, handlers::init_producer_id::VERSIONS),
    (
        ApiKey::AddPartitionsToTxn,
        handlers::add_partitions_to_txn::VERSIONS,
    ),
    (
        ApiKey::AddOffsetsToTxn,
        handlers::add_offsets_to_txn::VERSIONS,
    ),
    (ApiKey::EndTxn, handlers::end_txn::VERSIONS),
    (
        ApiKey::WriteTxnMarkers,
        handlers::write_txn_markers::VERSIONS,
    ),
    (
        ApiKey::TxnOffsetCommit,
        handlers::txn_offset_commit::VERSIONS,
    ),
    (
        ApiKey::DescribeProducers,
        handlers::describe_producers::VERSIONS,
    ),
    (
        ApiKey::DescribeTransactions,
        handlers::describe_transactions::VERSIONS,
    ),
    (
        ApiKey::ListTransactions,
        handlers::list_transactions::VERSIONS,
    ),
    (
        ApiKey::FindCoordinator,
        handlers::find_coordinator::VERSIONS,
    ),
    (ApiKey::JoinGroup, handlers::join_group::VERSIONS),
    (ApiKey::SyncGroup, handlers::sync_group::VERSIONS),
    (ApiKey::Heartbeat, handlers::heartbeat::VERSIONS),
    (ApiKey::LeaveGroup, handlers::leave_group::VERSIONS),
    (ApiKey::OffsetCommit, handlers::offset_commit::VERSIONS),
    (ApiKey::OffsetFetch, handlers::offset_fetch::VERSIONS),
    (ApiKey::OffsetDelete, handlers::offset_delete::VERSIONS),
    (ApiKey::DeleteGroups, handlers::delete_groups::VERSIONS),
    (ApiKey::ListGroups, handlers::list_groups::VERSIONS),
    (ApiKey::DescribeGroups, handlers::describe_groups::VERSIONS),
    (
        ApiKey::ConsumerGroupHeartbeat,
        handlers::consumer_group_heartbeat::VERSIONS,
    ),
    (
        ApiKey::ConsumerGroupDescribe,
        handlers::consumer_group_describe::VERSIONS,
    ),
    (ApiKey::DeleteTopics, handlers::delete_topics::VERSIONS),
    (
        ApiKey::CreatePartitions,
        handlers::create_partitions::VERSIONS,
    ),
    (
        ApiKey::DescribeConfigs,
        handlers::describe_configs::VERSIONS,
    ),
    (ApiKey::AlterConfigs, handlers::alter_configs::VERSIONS),
    (
        ApiKey::IncrementalAlterConfigs,
        handlers::incremental_alter_configs::VERSIONS,
    ),
    (ApiKey::DeleteRecords, handlers::delete_records::VERSIONS),
    (
        ApiKey::DescribeCluster,
        handlers::describe_cluster::VERSIONS,
    ),
    (
        ApiKey::AlterReplicaLogDirs,
        handlers::alter_replica_log_dirs::VERSIONS,
    ),
    (
        ApiKey::ControllerRegistration,
        handlers::controller_registration::VERSIONS,
    ),
    (ApiKey::AddRaftVoter, handlers::add_raft_voter::VERSIONS),
    (
        ApiKey::RemoveRaftVoter,
        handlers::remove_raft_voter::VERSIONS,
    ),
    (
        ApiKey::UpdateRaftVoter,
        handlers::update_raft_voter::VERSIONS,
    ),
    (
        ApiKey::DescribeLogDirs,
        handlers::describe_log_dirs::VERSIONS,
    ),
    (
        ApiKey::OffsetForLeaderEpoch,
        handlers::offset_for_leader_epoch::VERSIONS,
    ),
    (
        ApiKey::DescribeUserScramCredentials,
        handlers::describe_user_scram_credentials::VERSIONS,
    ),
    (
        ApiKey::AlterUserScramCredentials,
        handlers::alter_user_scram_credentials::VERSIONS,
    ),
    (ApiKey::DescribeAcls, handlers::describe_acls::VERSIONS),
    (ApiKey::CreateAcls, handlers::create_acls::VERSIONS),
    (ApiKey::DeleteAcls, handlers::delete_acls::VERSIONS),
    (
        ApiKey::DescribeClientQuotas,
        handlers::describe_client_quotas::VERSIONS,
    ),
    (
        ApiKey::AlterClientQuotas,
        handlers::alter_client_quotas::VERSIONS,
    ),
];

pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
    SUPPORTED_APIS
        .iter()
        .find(|(key, _)| *key == api_key)
        .map(|(_, range)| *range)
}

/// Small requests may decode into more than their multiple (a few fixed-size elements).
const MIN_DECODE_ALLOWANCE_BYTES: usize = 64 * 1024;

/// A request frame (without its length prefix) decoded as far as the broker decodes before
/// dispatching.
#[derive(Debug)]
// The large variant is the common case; boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum DecodedRequest {
    /// A supported API at a supported version, header and body decoded.
    Request {
        header: RequestHeader,
        api_key: ApiKey,
        api_version: i16,
        body: RequestKind,
    },
    /// ApiVersions at a version this broker does not have: it gets the v0-format
    /// UNSUPPORTED_VERSION answer rather than a closed connection.
    UnsupportedApiVersions { correlation_id: i32 },
}

/// Decodes one request frame: header, version check, body. Pure (no broker state), so that
/// the fuzz target drives exactly the broker's decoding path. `Err` is the reason to close
/// the connection, as Kafka does for requests it cannot parse.
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, String> {
    // Elements may take a bounded multiple of the frame: a frame of many tiny elements
    // (a Produce of a million empty topics, a header of a million tagged fields) is
    // refused rather than decoded into GBs. One allowance covers header and body.
    let limit_bytes = frame
        .len()
        .saturating_mul(crate::network::DECODE_BYTES_PER_FRAME_BYTE)
        .max(MIN_DECODE_ALLOWANCE_BYTES);
    with_decode_limit(limit_bytes, || decode_within_allowance(frame))
}

fn decode_within_allowance(mut frame: Bytes) -> Result<DecodedRequest, String> {
    if frame.len() < 8 {
        return Err(format!("request of {} bytes has no header", frame.len()));
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let Ok(api_key) = ApiKey::try_from(api_key_raw) else {
        return Err(format!("unknown api key {api_key_raw}"));
    };
    let Some(range) = supported_versions(api_key) else {
        return Err(format!("unsupported api {api_key:?}"));
    };
    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| format!("bad request header: {e}"))?;
    if api_version < range.min || api_version > range.max {
        if api_key == ApiKey::ApiVersions {
            // Clients probe with their newest version; Kafka answers in v0 format with
            // UNSUPPORTED_VERSION and its ranges, and the client retries with one it has.
            return Ok(DecodedRequest::UnsupportedApiVersions {
                correlation_id: header.correlation_id,
            });
        }
        return Err(format!(
            "{api_key:?} v{api_version} is outside the supported {range}"
        ));
    }
    let body = RequestKind::decode(api_key, &mut frame, api_version)
        .map_err(|e| format!("malformed {api_key:?} v{api_version}: {e:#}"))?;
    Ok(DecodedRequest::Request {
        header,
        api_key,
        api_version,
        body,
    })
}

pub async fn handle_frame(
    state: &BrokerState,
    frame: Bytes,
    peer: SocketAddr,
    listener: &crate::network::ListenerKind,
    session: &crate::network::Session,
) -> Outcome {
    let controller_listener = listener.controller;
    if frame.get(..2) == Some(&crate::raft_transport::RAFT_API_KEY.to_be_bytes()[..]) {
        // An observer (broker-only) binds no controller listener: the active controller
        // replicates to it on the endpoint it registered.
        if !controller_listener && !state.controller.quorum().is_observer() {
            return Outcome::Close(
                "raft rpc on a listener that is not a controller listener".into(),
            );
        }
        return handle_raft_frame(state, frame, controller_listener).await;
    }
    if !controller_listener && !state.serving_clients() {
        // A broker-only node listens early for the metadata log's replication only.
        return Outcome::Close("not serving clients yet: the broker is starting".into());
    }
    let request_bytes = frame.len();
    let (header, api_key, api_version, request) = match decode_request(frame) {
        Ok(DecodedRequest::Request {
            header,
            api_key,
            api_version,
            body,
        }) => (header, api_key, api_version, body),
        Ok(DecodedRequest::UnsupportedApiVersions { correlation_id }) => {
            let response = handlers::api_versions::unsupported_version_response();
            return encode_kind(
                correlation_id,
                ApiKey::ApiVersions,
                0,
                &ResponseKind::ApiVersions(response),
            );
        }
        Err(reason) => return Outcome::Close(reason),
    };
    let correlation_id = header.correlation_id;
    let ctx = RequestContext {
        header,
        api_version,
        peer,
        listener_name: listener.name.clone(),
        controller_listener,
        principal: session.principal.clone(),
        quota: Default::default(),
    };
    // Client quotas: costs recorded after the handler, `throttle_time_ms` set, the
    // connection muted while throttled (KIP-219).
    let (dispatched, mute_until) =
        crate::quota_manager::enforce(state, &ctx, request_bytes, request, |request| {
            dispatch(state, &ctx, request)
        })
        .await;
    if let Some(until) = mute_until {
        session.mute.mute_until(until);
    }
    let response = match dispatched {
        Ok(Some(response)) => response,
        Ok(None) => return Outcome::NoResponse,
        Err(reason) => return Outcome::Close(reason),
    };
    encode_kind(correlation_id, api_key, api_version, &response)
}

/// A Raft RPC between controllers (see `raft_transport`): header v1, JSON body; the answer
/// is the correlation id and the receiving Raft's answer as JSON.
async fn handle_raft_frame(
    state: &BrokerState,
    mut frame: Bytes,
    controller_listener: bool,
) -> Outcome {
    let header = match RequestHeader::decode(&mut frame, 1) {
        Ok(header) => header,
        Err(e) => return Outcome::Close(format!("bad raft rpc header: {e}")),
    };
    match state
        .raft_transport
        .handle(&frame, controller_listener)
        .await
    {
        Ok(body) => {
            let mut response = BytesMut::with_capacity(4 + body.len());
            response.put_i32(header.correlation_id);
            response.extend_from_slice(&body);
            Outcome::Respond(response)
        }
        Err(reason) => Outcome::Close(reason),
    }
}

async fn dispatch(
    state: &BrokerState,
    ctx: &RequestContext,
    request: RequestKind,
) -> Result<Option<ResponseKind>, String> {
    use handlers::*;
    Ok(Some(match request {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(api_versions::handle(ctx, r)),
        RequestKind::SaslHandshake(r) => ResponseKind::SaslHandshake(sasl_handshake::handle(r)),
        RequestKind::SaslAuthenticate(r) => {
            ResponseKind::SaslAuthenticate(sasl_authenticate::handle(r))
        }
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(state, ctx, r).await),
        RequestKind::DescribeQuorum(r) => {
            ResponseKind::DescribeQuorum(describe_quorum::handle(state, ctx, r).await)
        }
        RequestKind::AllocateProducerIds(r) => {
            ResponseKind::AllocateProducerIds(allocate_producer_ids::handle(state, ctx, r).await)
        }
        RequestKind::UnregisterBroker(r) => {
            ResponseKind::UnregisterBroker(unregister_broker::handle(state, ctx, r).await)
        }
        RequestKind::ElectLeaders(r) => {
            ResponseKind::ElectLeaders(elect_leaders::handle(state, ctx, r).await)
        }
        RequestKind::BrokerHeartbeat(r) => {
            ResponseKind::BrokerHeartbeat(broker_heartbeat::handle(state, ctx, r).await)
        }
        RequestKind::AlterPartition(r) => {
            ResponseKind::AlterPartition(alter_partition::handle(state, ctx, r).await)
        }
        RequestKind::AlterPartitionReassignments(r) => ResponseKind::AlterPartitionReassignments(
            alter_partition_reassignments::handle(state, ctx, r).await,
        ),
        RequestKind::ListPartitionReassignments(r) => ResponseKind::ListPartitionReassignments(
            list_partition_reassignments::handle(state, ctx, r).await,
        ),
        RequestKind::BrokerRegistration(r) => {
            ResponseKind::BrokerRegistration(broker_registration::handle(state, ctx, r).await)
        }
        RequestKind::Produce(r) => match produce::handle(state, ctx, r).await? {
            Some(response) => ResponseKind::Produce(response),
            None => return Ok(None),
        },
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(state, ctx, r).await),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(state, ctx, r))
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(create_topics::handle(state, ctx, r).await)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(init_producer_id::handle(state, ctx, r).await)
        }
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(add_partitions_to_txn::handle(state, ctx, r).await)
        }
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(add_offsets_to_txn::handle(state, ctx, r).await)
        }
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(end_txn::handle(state, ctx, r).await),
        RequestKind::WriteTxnMarkers(r) => {
            ResponseKind::WriteTxnMarkers(write_txn_markers::handle(state, ctx, r).await)
        }
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(txn_offset_commit::handle(state, ctx, r).await)
        }
        RequestKind::DescribeProducers(r) => {
            ResponseKind::DescribeProducers(describe_producers::handle(state, ctx, r))
        }
        RequestKind::DescribeTransactions(r) => {
            ResponseKind::DescribeTransactions(describe_transactions::handle(state, ctx, r))
        }
        RequestKind::ListTransactions(r) => {
            ResponseKind::ListTransactions(list_transactions::handle(state, ctx, r))
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(delete_topics::handle(state, ctx, r).await)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(create_partitions::handle(state, ctx, r).await)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(state, ctx, r))
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(alter_configs::handle(state, ctx, r).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            incremental_alter_configs::handle(state, ctx, r).await,
        ),
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(delete_records::handle(state, ctx, r).await)
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(state, ctx, r))
        }
        RequestKind::ControllerRegistration(r) => ResponseKind::ControllerRegistration(
            controller_registration::handle(state, ctx, r).await,
        ),
        RequestKind::AddRaftVoter(r) => {
            ResponseKind::AddRaftVoter(add_raft_voter::handle(state, ctx, r).await)
        }
        RequestKind::UpdateRaftVoter(r) => {
            ResponseKind::UpdateRaftVoter(update_raft_voter::handle(state, ctx, r).await)
        }
        RequestKind::RemoveRaftVoter(r) => {
            ResponseKind::RemoveRaftVoter(remove_raft_voter::handle(state, ctx, r).await)
        }
        RequestKind::AlterReplicaLogDirs(r) => {
            ResponseKind::AlterReplicaLogDirs(alter_replica_log_dirs::handle(state, ctx, r))
        }
        RequestKind::DescribeLogDirs(r) => {
            ResponseKind::DescribeLogDirs(describe_log_dirs::handle(state, ctx, r))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(state, ctx, r))
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(state, ctx, r).await)
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(join_group::handle(state, ctx, r).await)
        }
        RequestKind::SyncGroup(r) => {
            ResponseKind::SyncGroup(sync_group::handle(state, ctx, r).await)
        }
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(heartbeat::handle(state, ctx, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(leave_group::handle(state, ctx, r)),
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(offset_commit::handle(state, ctx, r).await)
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(offset_fetch::handle(state, ctx, r))
        }
        RequestKind::OffsetDelete(r) => {
            ResponseKind::OffsetDelete(offset_delete::handle(state, ctx, r))
        }
        RequestKind::DeleteGroups(r) => {
            ResponseKind::DeleteGroups(delete_groups::handle(state, ctx, r))
        }
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(list_groups::handle(state, ctx, r)),
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(describe_groups::handle(state, ctx, r))
        }
        RequestKind::ConsumerGroupHeartbeat(r) => {
            ResponseKind::ConsumerGroupHeartbeat(consumer_group_heartbeat::handle(state, ctx, r))
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(consumer_group_describe::handle(state, ctx, r))
        }
        RequestKind::DescribeUserScramCredentials(r) => ResponseKind::DescribeUserScramCredentials(
            describe_user_scram_credentials::handle(state, ctx, r),
        ),
        RequestKind::AlterUserScramCredentials(r) => ResponseKind::AlterUserScramCredentials(
            alter_user_scram_credentials::handle(state, ctx, r).await,
        ),
        RequestKind::DescribeAcls(r) => {
            ResponseKind::DescribeAcls(describe_acls::handle(state, ctx, r)?)
        }
        RequestKind::CreateAcls(r) => {
            ResponseKind::CreateAcls(create_acls::handle(state, ctx, r).await?)
        }
        RequestKind::DeleteAcls(r) => {
            ResponseKind::DeleteAcls(delete_acls::handle(state, ctx, r).await?)
        }
        RequestKind::DescribeClientQuotas(r) => {
            ResponseKind::DescribeClientQuotas(describe_client_quotas::handle(state, ctx, r))
        }
        RequestKind::AlterClientQuotas(r) => {
            ResponseKind::AlterClientQuotas(alter_client_quotas::handle(state, ctx, r).await)
        }
        // Unreachable while SUPPORTED_APIS and this match list the same APIs.
        _ => return Err(format!("no handler for {:?}", ctx.header.request_api_key)),
    }))
}

pub(crate) fn encode_kind(
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    response: &ResponseKind,
) -> Outcome {
    let mut buf = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api_key.response_header_version(api_version);
    if let Err(e) = header.encode(&mut buf, header_version) {
        return Outcome::Close(format!("cannot encode response header: {e}"));
    }
    match response.encode(&mut buf, api_version) {
        Ok(()) => Outcome::Respond(buf),
        Err(e) => {
            tracing::error!("cannot encode {api_key:?} v{api_version} response: {e}");
            Outcome::Close(format!("cannot encode response: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_request, DecodedRequest, SUPPORTED_APIS};
    use bytes::{BufMut, BytesMut};

    /// A Produce v9 frame (flexible) of `topics` topics, each an empty name with no
    /// partitions: 3 wire bytes per topic.
    fn produce_of_empty_topics(topics: usize, partition_bytes: usize) -> bytes::Bytes {
        let mut frame = BytesMut::new();
        frame.put_i16(0); // Produce
        frame.put_i16(9);
        frame.put_i32(7); // correlation id
        frame.put_i16(-1); // no client id
        frame.put_u8(0); // header tagged fields
        frame.put_u8(0); // null transactional id
        frame.put_i16(1); // acks
        frame.put_i32(1000);
        put_varint(&mut frame, topics as u32 + 1);
        for i in 0..topics {
            if i == 0 && partition_bytes > 0 {
                frame.put_u8(2); // name "t"
                frame.put_u8(b't');
                frame.put_u8(2); // one partition
                frame.put_i32(0);
                put_varint(&mut frame, partition_bytes as u32 + 1);
                frame.put_bytes(0, partition_bytes); // opaque records
                frame.put_u8(0);
            } else {
                frame.put_u8(1); // ""
                frame.put_u8(1); // no partitions
            }
            frame.put_u8(0);
        }
        frame.put_u8(0);
        frame.freeze()
    }

    fn put_varint(buf: &mut BytesMut, mut n: u32) {
        while n >= 0x80 {
            buf.put_u8((n as u8) | 0x80);
            n >>= 7;
        }
        buf.put_u8(n as u8);
    }

    #[test]
    fn many_tiny_elements_are_refused_before_they_amplify_memory() {
        // 300 KB on the wire would decode to over 10 MB of topic structs.
        let err = decode_request(produce_of_empty_topics(100_000, 0)).unwrap_err();
        assert!(err.contains("more memory than allowed"), "{err}");
        // Small requests keep a fixed allowance, and records are not counted (they stay
        // slices of the frame): a 1 MB batch decodes.
        let ok = decode_request(produce_of_empty_topics(100, 0));
        assert!(matches!(ok, Ok(DecodedRequest::Request { .. })), "{ok:?}");
        let ok = decode_request(produce_of_empty_topics(1, 1 << 20));
        assert!(matches!(ok, Ok(DecodedRequest::Request { .. })), "{ok:?}");
    }

    /// The README's API table, as SUPPORTED_APIS (and so ApiVersions) has it.
    fn api_table() -> String {
        let mut rows: Vec<(i16, String)> = SUPPORTED_APIS
            .iter()
            .map(|(key, range)| {
                (
                    *key as i16,
                    format!(
                        "| {key:?} | {} | {}–{} |",
                        *key as i16, range.min, range.max
                    ),
                )
            })
            .collect();
        rows.sort();
        let mut table = String::from("| API | key | versions |\n|---|---|---|\n");
        for (_, row) in rows {
            table.push_str(&row);
            table.push('\n');
        }
        table
    }

    #[test]
    fn readme_lists_every_supported_api_and_version_range() {
        let readme = include_str!("../../../README.md");
        let table = api_table();
        assert!(
            readme.contains(&table),
            "README.md's API table is out of date; it should read:\n\n{table}"
        );
    }
}
