//! The files a controller keeps beside its Raft log (in `__cluster_metadata-0/`), shared by
//! the log store (`storage_log_store`) and the state machine:
//! - `quorum-state`: the vote (term, voted-for, committed flag), written to a temp file,
//!   fsynced, renamed over, and the directory fsynced, before openraft is told it is saved.
//! - `raft-committed`: the last known committed log id, written without fsync (a hint:
//!   losing it only delays re-applying until the leader says again). At start openraft
//!   re-applies the log up to it, so a restarted node has its image before any election
//!   (as a Kafka broker replays its metadata log at start). Clamped to the log on read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use openraft::storage::LogFlushed;
use openraft::{AnyError, StorageIOError};
use serde::{Deserialize, Serialize};

use crate::types::{LogId, StorageError, TypeConfig, Vote};

/// The metadata topic, as Kafka names it; its one partition's directory holds the log.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const COMMITTED_FILE: &str = "raft-committed";
/// Kafka's name for the file holding a KRaft voter's election state.
pub const QUORUM_STATE_FILE: &str = "quorum-state";

#[derive(Serialize, Deserialize)]
struct QuorumState {
    /// Bumped if the file's shape changes (Kafka's quorum-state carries `data_version` too).
    data_version: u32,
    vote: Vote,
}

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("metadata log I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("unreadable {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// Runs blocking disk work (fsyncs, creating partition logs) from the Raft's async tasks
/// without stalling the runtime's worker: on a multi-thread runtime the worker's other tasks
/// (answering peers' RPCs, heartbeats) move to another thread meanwhile. On a
/// current-thread runtime (tests) it runs inline.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogStoreError + '_ {
    move |source| LogStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the vote from `dir/quorum-state`; an unreadable file is an error (guessing a vote
/// could vote twice in a term).
pub(crate) fn read_vote_file(dir: &Path) -> Result<Option<Vote>, LogStoreError> {
    let vote_path = dir.join(QUORUM_STATE_FILE);
    let _ = fs::remove_file(dir.join(format!("{QUORUM_STATE_FILE}.tmp")));
    match fs::read(&vote_path) {
        Ok(bytes) => {
            let state: QuorumState =
                serde_json::from_slice(&bytes).map_err(|e| LogStoreError::Corrupt {
                    path: vote_path.clone(),
                    reason: e.to_string(),
                })?;
            Ok(Some(state.vote))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&vote_path)(e)),
    }
}

pub(crate) fn write_vote_file(dir: &Path, vote: &Vote) -> io::Result<()> {
    let state = QuorumState {
        data_version: 0,
        vote: *vote,
    };
    let bytes = serde_json::to_vec(&state).expect("vote serializes");
    write_durably(dir, QUORUM_STATE_FILE, &bytes)
}

/// The committed hint: written without fsync (see the module docs).
pub(crate) fn write_committed_file(dir: &Path, committed: Option<LogId>) -> io::Result<()> {
    let tmp = dir.join(format!("{COMMITTED_FILE}.tmp"));
    fs::write(
        &tmp,
        serde_json::to_vec(&committed).expect("log id serializes"),
    )?;
    fs::rename(&tmp, dir.join(COMMITTED_FILE))
}

pub(crate) fn read_committed_file(dir: &Path) -> Option<LogId> {
    fs::read(dir.join(COMMITTED_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Option<LogId>>(&bytes).ok())
        .flatten()
}

/// Writes `bytes` to `dir/name` durably: temp file, fsync, rename, fsync of the directory
/// (the storage crate's checkpoint writer, so the disk seam covers these files too).
pub(crate) fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    moldau_storage::write_file_atomically(&dir.join(name), bytes)
}

pub(crate) fn write_logs_err(e: &io::Error) -> StorageError {
    StorageIOError::write_logs(AnyError::new(e)).into()
}

/// Tells openraft how an append ended, once it is durable (this node's ack counts from
/// the callback). The error type is openraft's, as its traits return.
#[allow(clippy::result_large_err)]
pub(crate) fn complete_append(
    result: io::Result<()>,
    callback: LogFlushed<TypeConfig>,
) -> Result<(), StorageError> {
    match result {
        Ok(()) => {
            callback.log_io_completed(Ok(()));
            Ok(())
        }
        Err(e) => {
            let err = write_logs_err(&e);
            callback.log_io_completed(Err(e));
            Err(err)
        }
    }
}
