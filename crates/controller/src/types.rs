//! The openraft type configuration of the metadata quorum.

use std::fmt;
use std::io::Cursor;

use moldau_metadata::MetadataRecord;
use serde::{Deserialize, Serialize};

/// A controller's Raft id: Kafka's `node.id`.
pub type NodeId = u64;

/// One proposal: the records of one controller operation, committed atomically as one Raft
/// entry (Kafka's controller appends an operation's records as one atomic batch).
pub type MetadataBatch = Vec<MetadataRecord>;

/// Where a member of the quorum is reached: a voter's controller listener (an entry of
/// Kafka's `controller.quorum.voters`, `id@host:port`), or an observer's broker listener.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub host: String,
    pub port: u16,
    /// A controller of a dynamic quorum (KIP-853: formatted as an initial voter, registered
    /// to join, or added by AddRaftVoter): its address is its controller listener. False
    /// for static voters (their addresses come from the config) and observers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub controller: bool,
    /// A dynamic quorum's voter: its metadata log directory's `directory.id`, which
    /// RemoveRaftVoter must name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_id: Option<String>,
}

impl Node {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Node {
            host: host.into(),
            port,
            controller: false,
            directory_id: None,
        }
    }

    /// A dynamic quorum's controller at its controller listener.
    pub fn controller(host: impl Into<String>, port: u16, directory_id: Option<String>) -> Self {
        Node {
            host: host.into(),
            port,
            controller: true,
            directory_id,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

openraft::declare_raft_types!(
    /// The metadata quorum's Raft types.
    pub TypeConfig:
        D = MetadataBatch,
        // The metadata-log offset of the batch's first record (see `state_machine`).
        R = i64,
        NodeId = NodeId,
        Node = Node,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        // tokio, with election jitter drawn through the getrandom seam (see `runtime`).
        AsyncRuntime = crate::runtime::QuorumRuntime,
);

pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Raft = openraft::Raft<TypeConfig>;
