//! The metadata quorum's Raft RPCs between controllers, over the controller listener
//! (`controller.listener.names`).
//!
//! Framing is Kafka's (length prefix, request header v1, correlation id), under a private
//! API key [`RAFT_API_KEY`] outside Kafka's range, accepted only on a controller listener.
//! The body is openraft's request (AppendEntries, Vote, InstallSnapshot) as JSON; the
//! answer's body is the receiving Raft's `Result` as JSON, so a remote refusal comes back
//! as openraft's own error and a broken connection as `Unreachable`. A request larger than
//! `socket.request.max.bytes` is not sent: openraft is told to retry with fewer entries.
//! Kafka's controllers speak Vote / BeginQuorumEpoch / Fetch instead; these messages are
//! Moldau's, so a Moldau controller only forms a quorum with Moldau controllers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use moldau_controller::network::{BoxFuture, RpcResult};
use moldau_controller::{ControllerTransport, Node, NodeId, TransportError, TypeConfig};
use openraft::error::InstallSnapshotError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::inter_broker::InterBrokerClient;

/// The private API key of Raft RPCs (Kafka's keys are below 100).
pub const RAFT_API_KEY: i16 = 32_000;
const RAFT_API_VERSION: i16 = 0;
/// Room for the frame's header in `socket.request.max.bytes`.
const HEADER_ALLOWANCE_BYTES: usize = 1024;
/// Outer bound of one RPC; openraft bounds each call more tightly itself.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

type Raft = openraft::Raft<TypeConfig>;

#[derive(Serialize, Deserialize)]
enum RaftRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// This node's end of the quorum's network: calls out through the inter-broker client,
/// answers what arrives on the controller listener.
pub struct TcpControllerTransport {
    client: Arc<InterBrokerClient>,
    /// Voter addresses from `controller.quorum.voters`: the config, not the address a
    /// membership entry recorded when the quorum formed, says where a voter is now.
    voters: BTreeMap<NodeId, Node>,
    raft: RwLock<Option<Raft>>,
    max_frame_bytes: usize,
}

impl TcpControllerTransport {
    pub fn new(
        client: Arc<InterBrokerClient>,
        voters: BTreeMap<NodeId, Node>,
        max_frame_bytes: usize,
    ) -> Self {
        TcpControllerTransport {
            client,
            voters,
            raft: RwLock::new(None),
            max_frame_bytes,
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        target: NodeId,
        node: Node,
        request: RaftRequest,
        entries: u64,
    ) -> Result<T, TransportError> {
        let unreachable = |reason: String| TransportError::Unreachable { target, reason };
        let body = serde_json::to_vec(&request).map_err(|e| unreachable(e.to_string()))?;
        let room = self.max_frame_bytes.saturating_sub(HEADER_ALLOWANCE_BYTES);
        if body.len() > room {
            // Assume entries of about equal size; openraft sends at least one anyway.
            let fits = (entries as usize * room / body.len()) as u64;
            return Err(TransportError::PayloadTooLarge {
                target,
                entries_hint: fits.max(1),
            });
        }
        let addr = self.voters.get(&target).unwrap_or(&node).to_string();
        let answer = self
            .client
            .round_trip_raw(&addr, RAFT_API_KEY, RAFT_API_VERSION, &body, RPC_TIMEOUT)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        serde_json::from_slice(&answer).map_err(|e| unreachable(format!("bad answer: {e}")))
    }

    /// Answers one Raft RPC that arrived on a controller listener. `Err`: close the
    /// connection (not serving, or not a request this transport sent).
    pub async fn handle(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        let raft = self
            .raft
            .read()
            .clone()
            .ok_or("the metadata quorum is not running on this node")?;
        let request: RaftRequest =
            serde_json::from_slice(body).map_err(|e| format!("malformed raft rpc: {e}"))?;
        let answer = match request {
            RaftRequest::AppendEntries(r) => serde_json::to_vec(&raft.append_entries(r).await),
            RaftRequest::Vote(r) => serde_json::to_vec(&raft.vote(r).await),
            RaftRequest::InstallSnapshot(r) => serde_json::to_vec(&raft.install_snapshot(r).await),
        };
        answer.map_err(|e| format!("raft answer does not serialize: {e}"))
    }
}

impl ControllerTransport for TcpControllerTransport {
    fn append_entries(
        &self,
        target: NodeId,
        node: Node,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> BoxFuture<'_, RpcResult<AppendEntriesResponse<NodeId>>> {
        let entries = req.entries.len() as u64;
        Box::pin(self.call(target, node, RaftRequest::AppendEntries(req), entries))
    }

    fn vote(
        &self,
        target: NodeId,
        node: Node,
        req: VoteRequest<NodeId>,
    ) -> BoxFuture<'_, RpcResult<VoteResponse<NodeId>>> {
        Box::pin(self.call(target, node, RaftRequest::Vote(req), 1))
    }

    fn install_snapshot(
        &self,
        target: NodeId,
        node: Node,
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> BoxFuture<'_, RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError>> {
        Box::pin(self.call(target, node, RaftRequest::InstallSnapshot(req), 1))
    }

    fn serve(&self, _node_id: NodeId, raft: Raft) {
        *self.raft.write() = Some(raft);
    }

    fn stop_serving(&self, _node_id: NodeId) {
        *self.raft.write() = None;
    }
}
