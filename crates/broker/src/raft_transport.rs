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
//!
//! Observers (broker-only nodes, openraft learners) bind no controller listener: the
//! active controller sends them AppendEntries and InstallSnapshot on the endpoint they
//! registered as brokers, and they accept those only, only from a configured voter.
//!
//! Every request carries the sender's cluster id (as Kafka's Raft requests do); a node of
//! another cluster is answered INCONSISTENT_CLUSTER_ID and nothing reaches the Raft, and
//! the refused node learns it too, from the refusal or from the requests it refuses
//! itself ([`TcpControllerTransport::inconsistent_cluster`]); the side that finds no leader
//! stops at start rather than waiting for a leader it can never have.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use moldau_controller::network::{BoxFuture, RpcResult};
use moldau_controller::{ControllerTransport, Node, NodeId, TransportError, TypeConfig};
use moldau_metadata::MetadataImage;
use openraft::error::InstallSnapshotError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::inter_broker::InterBrokerClient;

/// The private API key of Raft RPCs (Kafka's keys are below 100).
pub const RAFT_API_KEY: i16 = 32_000;
const RAFT_API_VERSION: i16 = 0;
/// Room for the frame's header in `socket.request.max.bytes`.
const HEADER_ALLOWANCE_BYTES: usize = 1024;
/// Outer bound of one RPC; openraft bounds each call more tightly itself.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

type Raft = openraft::Raft<TypeConfig>;
type AppendAnswer = Result<AppendEntriesResponse<NodeId>, openraft::error::RaftError<NodeId>>;

#[derive(Serialize, Deserialize)]
enum RaftRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    cluster_id: String,
    from: NodeId,
    rpc: RaftRequest,
}

#[derive(Serialize, Deserialize)]
enum Answer<T> {
    /// The receiving Raft's own result.
    Raft(T),
    /// The receiver belongs to cluster `cluster_id`.
    InconsistentClusterId { cluster_id: String },
}

/// This node's end of the quorum's network: calls out through the inter-broker client,
/// answers what arrives on the controller listener.
pub struct TcpControllerTransport {
    /// To voters, on their controller listener.
    client: Arc<InterBrokerClient>,
    /// To observers, on their inter-broker listener (secured as that listener is).
    observer_client: Arc<InterBrokerClient>,
    node_id: NodeId,
    cluster_id: String,
    /// A peer that answered (or sent) INCONSISTENT_CLUSTER_ID: (its node id, its cluster id).
    inconsistent: RwLock<Option<(NodeId, String)>>,
    /// Voter addresses from `controller.quorum.voters`: the config, not the address a
    /// membership entry recorded when the quorum formed, says where a voter is now.
    voters: BTreeMap<NodeId, Node>,
    /// The image this node applies: where observers (registered brokers that are not
    /// voters) are reached now, whatever address their membership entry recorded.
    image: RwLock<Option<watch::Receiver<Arc<MetadataImage>>>>,
    /// The brokers' listener observers are reached on.
    inter_broker_listener_name: String,
    raft: RwLock<Option<Raft>>,
    max_frame_bytes: usize,
    /// When each peer last acknowledged an AppendEntries (DescribeQuorum's fetch time).
    last_append_ack_ms: RwLock<BTreeMap<NodeId, i64>>,
}

impl TcpControllerTransport {
    pub fn new(
        client: Arc<InterBrokerClient>,
        observer_client: Arc<InterBrokerClient>,
        node_id: NodeId,
        cluster_id: String,
        voters: BTreeMap<NodeId, Node>,
        inter_broker_listener_name: String,
        max_frame_bytes: usize,
    ) -> Self {
        TcpControllerTransport {
            client,
            observer_client,
            node_id,
            cluster_id,
            inter_broker_listener_name,
            inconsistent: RwLock::new(None),
            voters,
            image: RwLock::new(None),
            raft: RwLock::new(None),
            max_frame_bytes,
            last_append_ack_ms: RwLock::new(BTreeMap::new()),
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
        let envelope = Envelope {
            cluster_id: self.cluster_id.clone(),
            from: self.node_id,
            rpc: request,
        };
        let body = serde_json::to_vec(&envelope).map_err(|e| unreachable(e.to_string()))?;
        let room = self.max_frame_bytes.saturating_sub(HEADER_ALLOWANCE_BYTES);
        if body.len() > room {
            // Assume entries of about equal size; openraft sends at least one anyway.
            let fits = (entries as usize * room / body.len()) as u64;
            return Err(TransportError::PayloadTooLarge {
                target,
                entries_hint: fits.max(1),
            });
        }
        // A controller of a dynamic quorum is at the controller listener its membership
        // entry names (a learner about to vote too); an observer where it registered now.
        let controller_addr = self
            .voter_addr(target)
            .or_else(|| node.controller.then(|| node.to_string()));
        let (client, addr) = match controller_addr {
            Some(addr) => (&self.client, addr),
            None => match self.broker_addr(target) {
                Some(addr) => (&self.observer_client, addr),
                // A static voter's membership entry names its controller listener.
                None => (&self.client, node.to_string()),
            },
        };
        let answer = client
            .round_trip_raw(&addr, RAFT_API_KEY, RAFT_API_VERSION, &body, RPC_TIMEOUT)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        match serde_json::from_slice(&answer) {
            Ok(Answer::Raft(answer)) => Ok(answer),
            Ok(Answer::InconsistentClusterId { cluster_id }) => {
                tracing::error!(
                    voter = target,
                    theirs = %cluster_id,
                    ours = %self.cluster_id,
                    "voter belongs to another cluster (INCONSISTENT_CLUSTER_ID)"
                );
                *self.inconsistent.write() = Some((target, cluster_id.clone()));
                Err(unreachable(format!(
                    "INCONSISTENT_CLUSTER_ID: voter {target} is in cluster {cluster_id}"
                )))
            }
            Err(e) => Err(unreachable(format!("bad answer: {e}"))),
        }
    }

    /// When `node_id` last acknowledged an AppendEntries from this node (ms since epoch).
    pub fn last_append_ack_ms(&self, node_id: NodeId) -> Option<i64> {
        self.last_append_ack_ms.read().get(&node_id).copied()
    }

    /// Where voter `node_id` listens for controller traffic (its controller listener): from
    /// `controller.quorum.voters`, or, in a dynamic quorum, from the membership.
    pub fn voter_addr(&self, node_id: NodeId) -> Option<String> {
        if let Some(node) = self.voters.get(&node_id) {
            return Some(node.to_string());
        }
        self.membership_voters()
            .into_iter()
            .find(|(id, _)| *id == node_id)
            .map(|(_, node)| node.to_string())
    }

    /// Where the membership this node's Raft knows says voter `node_id` is.
    pub fn membership_voter(&self, node_id: NodeId) -> Option<Node> {
        self.membership_voters()
            .into_iter()
            .find(|(id, _)| *id == node_id)
            .map(|(_, node)| node)
    }

    /// The voters of the membership this node's Raft knows, with their addresses.
    fn membership_voters(&self) -> Vec<(NodeId, Node)> {
        let Some(raft) = self.raft.read().clone() else {
            return Vec::new();
        };
        // Borrowed, not cloned: this is on every Raft RPC to a non-configured node.
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        membership
            .voter_ids()
            .filter_map(|id| Some((id, membership.get_node(&id)?.clone())))
            .collect()
    }

    /// Follows `image` for the addresses of observers (see [`Self::broker_addr`]).
    pub fn follow_image(&self, image: watch::Receiver<Arc<MetadataImage>>) {
        *self.image.write() = Some(image);
    }

    /// Whether `node_id` is a voter: configured, or in the membership (a dynamic quorum).
    pub fn is_voter(&self, node_id: NodeId) -> bool {
        self.voters.contains_key(&node_id)
            || self
                .membership_voters()
                .iter()
                .any(|(id, _)| *id == node_id)
    }

    /// The voters' ids: the configured ones and those of the membership.
    pub fn voter_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.voters.keys().copied().collect();
        ids.extend(self.membership_voters().into_iter().map(|(id, _)| id));
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Where broker `node_id` registered its `inter.broker.listener.name` listener, from
    /// the image.
    fn broker_addr(&self, node_id: NodeId) -> Option<String> {
        let image = self.image.read().as_ref()?.borrow().clone();
        let broker = image.brokers.get(&i32::try_from(node_id).ok()?)?;
        let (host, port) = broker.endpoint(&self.inter_broker_listener_name)?;
        Some(format!("{host}:{port}"))
    }

    /// A voter of another cluster that refused this node's requests or sent its own.
    pub fn inconsistent_cluster(&self) -> Option<(NodeId, String)> {
        self.inconsistent.read().clone()
    }

    /// Answers one Raft RPC. `controller_listener`: it arrived on a controller listener;
    /// else this is an observer and takes only replication from a configured voter.
    /// `Err`: close the connection (not serving, or not a request this transport sent).
    pub async fn handle(&self, body: &[u8], controller_listener: bool) -> Result<Vec<u8>, String> {
        let raft = self
            .raft
            .read()
            .clone()
            .ok_or("the metadata quorum is not running on this node")?;
        let envelope: Envelope =
            serde_json::from_slice(body).map_err(|e| format!("malformed raft rpc: {e}"))?;
        if !controller_listener {
            // An observer follows the leader; nobody else may write to its log.
            if !self.voters.contains_key(&envelope.from) {
                return Err(format!(
                    "raft rpc from node {} that is not a configured voter",
                    envelope.from
                ));
            }
            if matches!(envelope.rpc, RaftRequest::Vote(_)) {
                return Err("vote request to an observer".to_string());
            }
        }
        if envelope.cluster_id != self.cluster_id {
            tracing::warn!(
                voter = envelope.from,
                theirs = %envelope.cluster_id,
                ours = %self.cluster_id,
                "refusing a raft rpc from another cluster (INCONSISTENT_CLUSTER_ID)"
            );
            *self.inconsistent.write() = Some((envelope.from, envelope.cluster_id.clone()));
            let refusal: Answer<()> = Answer::InconsistentClusterId {
                cluster_id: self.cluster_id.clone(),
            };
            return serde_json::to_vec(&refusal).map_err(|e| e.to_string());
        }
        let answer = match envelope.rpc {
            RaftRequest::AppendEntries(r) => {
                serde_json::to_vec(&Answer::Raft(raft.append_entries(r).await))
            }
            RaftRequest::Vote(r) => serde_json::to_vec(&Answer::Raft(raft.vote(r).await)),
            RaftRequest::InstallSnapshot(r) => {
                serde_json::to_vec(&Answer::Raft(raft.install_snapshot(r).await))
            }
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
        Box::pin(async move {
            let answer: AppendAnswer = self
                .call(target, node, RaftRequest::AppendEntries(req), entries)
                .await?;
            if matches!(answer, Ok(AppendEntriesResponse::Success)) {
                self.last_append_ack_ms
                    .write()
                    .insert(target, crate::now_ms());
            }
            Ok(answer)
        })
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
