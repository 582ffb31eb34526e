//! The metadata quorum (KRaft model) on openraft 0.9.
//!
//! Controllers form a Raft quorum over the metadata log; the Raft leader is the active
//! controller and alone accepts writes ([`MetadataQuorum::propose`]). A proposal is one
//! batch of [`moldau_metadata::MetadataRecord`]s, committed atomically as one Raft entry and
//! replayed on every node, in log order, into an immutable [`moldau_metadata::MetadataImage`].
//!
//! Parts: [`types`] (node ids are Kafka `node.id`s), [`storage_log_store`] (the Raft log on
//! the storage crate's `Log`), [`raft_files`] (the vote and committed files beside it),
//! [`state_machine`] (replay into the image, snapshots), [`network`] (the transport
//! seam; an in-process implementation for tests), [`quorum`] (the facade).
//!
//! Invariants:
//! - Committed ⇒ applied, in log order, on every node: the image only ever reflects a prefix
//!   of the committed log (never an uncommitted entry), and every node reaches the same
//!   image and the same record offsets for the same prefix (apply is deterministic).
//! - Apply cannot fail: a record replay refuses is logged and skipped, image unchanged by it
//!   (records are checked against the image before they are proposed, as in the broker's
//!   controller `decide`). A storage failure stops the Raft core instead (openraft Fatal).
//! - Durable before acknowledged: entries are fsynced before openraft counts this node's ack
//!   (so a committed entry is on a majority's disks), and the vote is written to
//!   `quorum-state` by temp + fsync + rename + dir fsync before a vote is answered.
//! - Recovery truncates a torn tail by CRC (the storage crate's loader): a crash loses only
//!   entries that were never acknowledged.
//! - The crate opens no sockets and does not depend on the broker: peers are reached
//!   through [`network::ControllerTransport`].
//!
//! The Raft log is the storage crate's `Log` for `__cluster_metadata-0` (Kafka's layout:
//! one RecordBatch v2 per entry, the Raft term as partition_leader_epoch, record offsets
//! equal to the image's offsets; [`MetadataQuorum::start_on_log`]). Where it still differs
//! from Kafka's is listed in [`storage_log_store`]. Snapshots are JSON, not Kafka's
//! `<offset>-<epoch>.checkpoint` record files.
//!
//! Simulation: openraft runs on tokio through [`runtime::QuorumRuntime`], whose election
//! jitter comes through the C library's `getrandom` (the seam `crates/sim` seeds), and its
//! timers are tokio's (simulated time under turmoil).

pub mod network;
pub mod quorum;
pub mod raft_files;
pub mod runtime;
pub mod state_machine;
pub mod storage_log_store;
pub mod types;

pub use network::{ControllerTransport, InProcessNetwork, TransportError};
pub use quorum::{MetadataQuorum, QuorumConfig, QuorumError, QuorumState, VoterState};
pub use raft_files::{LogStoreError, METADATA_TOPIC, QUORUM_STATE_FILE};
pub use state_machine::{MetadataPublisher, MetadataStateMachine, NoPublisher};
pub use storage_log_store::StorageLogStore;
pub use types::{MetadataBatch, Node, NodeId, TypeConfig};
