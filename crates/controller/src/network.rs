//! The network seam between controllers.
//!
//! openraft talks to peers through [`ControllerTransport`], a trait this crate defines and
//! does not implement over sockets (nothing below the broker opens one). Production will
//! fill it with a TCP transport over the controller listener; tests (and a simulator) use
//! [`InProcessNetwork`], which can cut a node off to simulate a partition.
//!
//! Planned TCP framing (not built yet): a Kafka-style frame, `[len: i32 BE][api: i16]
//! [correlation id: i32][JSON body]`, on the `CONTROLLER` listener; the body is openraft's
//! request type (`AppendEntriesRequest`, `VoteRequest`, `InstallSnapshotRequest`, all serde
//! with the `serde` feature) and the answer's body is `Result<Response, RaftError>` as JSON,
//! so a remote refusal travels back as [`RemoteError`] and a broken connection becomes
//! `Unreachable`. Frames are bounded by `socket.request.max.bytes`; snapshots go in chunks
//! of openraft's `snapshot_max_chunk_size`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::RwLock;

use crate::types::{Node, NodeId, Raft, TypeConfig};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer of a peer: its Raft's own result, or a transport failure.
pub type RpcResult<T, E = openraft::error::Infallible> =
    Result<Result<T, RaftError<NodeId, E>>, TransportError>;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer could not be reached (down, partitioned, not listening): openraft backs off.
    /// A peer is a voter or an observer (a broker-only node).
    #[error("quorum member {target} unreachable: {reason}")]
    Unreachable { target: NodeId, reason: String },
    /// The request would not fit in one frame: openraft retries with fewer entries.
    #[error("rpc to controller {target} too large; retry with at most {entries_hint} entries")]
    PayloadTooLarge { target: NodeId, entries_hint: u64 },
}

/// How one controller reaches the others, and how its own Raft is reached.
pub trait ControllerTransport: Send + Sync + 'static {
    fn append_entries(
        &self,
        target: NodeId,
        node: Node,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> BoxFuture<'_, RpcResult<AppendEntriesResponse<NodeId>>>;

    fn vote(
        &self,
        target: NodeId,
        node: Node,
        req: VoteRequest<NodeId>,
    ) -> BoxFuture<'_, RpcResult<VoteResponse<NodeId>>>;

    fn install_snapshot(
        &self,
        target: NodeId,
        node: Node,
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> BoxFuture<'_, RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError>>;

    /// Called once this node's Raft runs: inbound RPCs for `node_id` go to `raft` from now.
    fn serve(&self, node_id: NodeId, raft: Raft);

    /// Called at shutdown: inbound RPCs for `node_id` are refused from now.
    fn stop_serving(&self, node_id: NodeId);
}

/// openraft's network factory on top of a [`ControllerTransport`].
pub struct NetworkFactory {
    transport: Arc<dyn ControllerTransport>,
}

impl NetworkFactory {
    pub fn new(transport: Arc<dyn ControllerTransport>) -> Self {
        NetworkFactory { transport }
    }
}

pub struct NetworkClient {
    transport: Arc<dyn ControllerTransport>,
    target: NodeId,
    node: Node,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = NetworkClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> NetworkClient {
        NetworkClient {
            transport: self.transport.clone(),
            target,
            node: node.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("rpc to controller {0} timed out")]
struct RpcTimeout(NodeId);

impl NetworkClient {
    /// Bounds a call by openraft's hard TTL, and maps the outcome to openraft's errors.
    async fn call<T, E>(
        &self,
        option: &RPCOption,
        fut: BoxFuture<'_, RpcResult<T, E>>,
    ) -> Result<T, RPCError<NodeId, Node, RaftError<NodeId, E>>>
    where
        E: std::error::Error,
    {
        match tokio::time::timeout(option.hard_ttl(), fut).await {
            Ok(Ok(Ok(response))) => Ok(response),
            Ok(Ok(Err(remote))) => Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                remote,
            ))),
            Ok(Err(TransportError::PayloadTooLarge { entries_hint, .. })) => Err(
                RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(entries_hint.max(1))),
            ),
            Ok(Err(e)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(_) => Err(RPCError::Network(NetworkError::new(&RpcTimeout(
                self.target,
            )))),
        }
    }
}

impl RaftNetwork<TypeConfig> for NetworkClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let fut = self
            .transport
            .append_entries(self.target, self.node.clone(), rpc);
        self.call(&option, fut).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let fut = self
            .transport
            .install_snapshot(self.target, self.node.clone(), rpc);
        self.call(&option, fut).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        let fut = self.transport.vote(self.target, self.node.clone(), rpc);
        self.call(&option, fut).await
    }
}

#[derive(Default)]
struct Registry {
    nodes: HashMap<NodeId, Raft>,
    isolated: HashSet<NodeId>,
}

/// Controllers of one process reaching each other by direct calls. Clones share the
/// registry. An isolated node can neither send nor receive (a partition of one).
#[derive(Clone, Default)]
pub struct InProcessNetwork {
    registry: Arc<RwLock<Registry>>,
}

impl InProcessNetwork {
    pub fn new() -> Self {
        Self::default()
    }

    /// The transport a given node uses (it knows its own id, to honor isolation).
    pub fn endpoint(&self, node_id: NodeId) -> Arc<dyn ControllerTransport> {
        Arc::new(InProcessEndpoint {
            from: node_id,
            network: self.clone(),
        })
    }

    /// Cuts `node_id` off from every other node.
    pub fn isolate(&self, node_id: NodeId) {
        self.registry.write().isolated.insert(node_id);
    }

    pub fn heal(&self, node_id: NodeId) {
        self.registry.write().isolated.remove(&node_id);
    }

    fn route(&self, from: NodeId, target: NodeId) -> Result<Raft, TransportError> {
        let registry = self.registry.read();
        let unreachable = |reason: &str| TransportError::Unreachable {
            target,
            reason: reason.to_string(),
        };
        if registry.isolated.contains(&from) || registry.isolated.contains(&target) {
            return Err(unreachable("partitioned"));
        }
        registry
            .nodes
            .get(&target)
            .cloned()
            .ok_or_else(|| unreachable("not running"))
    }

    /// A reply is lost too if a partition started while the call was in flight.
    fn deliver<T>(&self, from: NodeId, target: NodeId, reply: T) -> Result<T, TransportError> {
        self.route(from, target).map(|_| reply)
    }
}

struct InProcessEndpoint {
    from: NodeId,
    network: InProcessNetwork,
}

impl ControllerTransport for InProcessEndpoint {
    fn append_entries(
        &self,
        target: NodeId,
        _node: Node,
        req: AppendEntriesRequest<TypeConfig>,
    ) -> BoxFuture<'_, RpcResult<AppendEntriesResponse<NodeId>>> {
        Box::pin(async move {
            let raft = self.network.route(self.from, target)?;
            let reply = raft.append_entries(req).await;
            self.network.deliver(self.from, target, reply)
        })
    }

    fn vote(
        &self,
        target: NodeId,
        _node: Node,
        req: VoteRequest<NodeId>,
    ) -> BoxFuture<'_, RpcResult<VoteResponse<NodeId>>> {
        Box::pin(async move {
            let raft = self.network.route(self.from, target)?;
            let reply = raft.vote(req).await;
            self.network.deliver(self.from, target, reply)
        })
    }

    fn install_snapshot(
        &self,
        target: NodeId,
        _node: Node,
        req: InstallSnapshotRequest<TypeConfig>,
    ) -> BoxFuture<'_, RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError>> {
        Box::pin(async move {
            let raft = self.network.route(self.from, target)?;
            let reply = raft.install_snapshot(req).await;
            self.network.deliver(self.from, target, reply)
        })
    }

    fn serve(&self, node_id: NodeId, raft: Raft) {
        self.network.registry.write().nodes.insert(node_id, raft);
    }

    fn stop_serving(&self, node_id: NodeId) {
        self.network.registry.write().nodes.remove(&node_id);
    }
}
