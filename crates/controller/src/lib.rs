//! The metadata quorum on openraft (work in progress).

pub mod log_store;
pub mod state_machine;
pub mod types;

pub use log_store::{FileLogStore, LogStoreError, METADATA_LOG_DIR, QUORUM_STATE_FILE};
pub use state_machine::MetadataStateMachine;
pub use types::{MetadataBatch, Node, NodeId, TypeConfig};
