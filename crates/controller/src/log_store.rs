//! The Raft log and vote of one controller, on disk.
//!
//! Layout, under `<metadata.log.dir>/__cluster_metadata-0/` (Kafka's directory name):
//! - `raft-entries.log`: the Raft entries, appended as frames `[len: u32 BE][crc32c: u32 BE]
//!   [JSON of Frame]`. A frame is an entry (Blank, Normal = a metadata batch, Membership) or a
//!   `Purged` marker that records the last purged log id (the first frame after a purge).
//!   Opening reads frames until the first short frame, bad CRC or undecodable body and
//!   truncates the file there (a torn tail from a crash: only unacknowledged entries, since
//!   an append is acknowledged after its fsync).
//! - `quorum-state`: the vote (term, voted-for, committed flag), written to a temp file,
//!   fsynced, renamed over, and the directory fsynced, before openraft is told it is saved.
//! - `raft-committed`: the last known committed log id, written without fsync (a hint:
//!   losing it only delays re-applying until the leader says again). At start openraft
//!   re-applies the log up to it, so a restarted node has its image before any election
//!   (as a Kafka broker replays its metadata log at start). Clamped to the log on read.
//!
//! This is the simple store: the same contract in Kafka's layout (the entries in the
//! storage crate's `Log` for the partition) is `storage_log_store`.
//!
//! Entries are also kept in memory: the metadata log is bounded by snapshots and purges.
//! File I/O is synchronous under the lock, between awaits: metadata writes are small and
//! rare, and it keeps the on-disk order equal to the order openraft asked for.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use moldau_storage::TopicPartition;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, RaftLogId, RaftLogReader, StorageIOError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// The metadata topic, as Kafka names it; its one partition's directory holds the log.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const COMMITTED_FILE: &str = "raft-committed";
pub const ENTRIES_FILE: &str = "raft-entries.log";
/// Kafka's name for the file holding a KRaft voter's election state.
pub const QUORUM_STATE_FILE: &str = "quorum-state";

const FRAME_HEADER: usize = 8;

#[derive(Serialize, Deserialize)]
enum Frame {
    Purged(LogId),
    Entry(Entry),
}

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

struct Inner {
    dir: PathBuf,
    file: File,
    /// index → (entry, byte position of its frame in `raft-entries.log`)
    entries: BTreeMap<u64, (Entry, u64)>,
    end_pos: u64,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
}

/// openraft's `RaftLogStorage` for one controller. Clones share the same log (openraft asks
/// for a separate reader; both read the one in-memory copy).
#[derive(Clone)]
pub struct FileLogStore {
    inner: Arc<Mutex<Inner>>,
}

/// `<metadata.log.dir>/__cluster_metadata-0`, named as the storage crate names partitions.
pub fn metadata_log_dir(metadata_dir: &Path) -> PathBuf {
    metadata_dir.join(TopicPartition::new(METADATA_TOPIC, 0).dir_name())
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogStoreError + '_ {
    move |source| LogStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    // Plain data (ids, records): serialization cannot fail.
    let body = serde_json::to_vec(frame).expect("raft frame serializes");
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
}

/// Decodes the frame at `buf[pos..]`: `None` at the end or at a torn or corrupt frame.
fn decode_frame(buf: &[u8], pos: usize) -> Option<(Frame, usize)> {
    let header = buf.get(pos..pos + FRAME_HEADER)?;
    let len = u32::from_be_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_be_bytes(header[4..8].try_into().ok()?);
    let body = buf.get(pos + FRAME_HEADER..pos + FRAME_HEADER + len)?;
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let frame = serde_json::from_slice(body).ok()?;
    Some((frame, pos + FRAME_HEADER + len))
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

/// Writes `bytes` to `dir/name` durably: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

impl FileLogStore {
    /// Opens (or creates) the log under `<metadata_dir>/__cluster_metadata-0`, truncating a
    /// torn tail.
    pub fn open(metadata_dir: &Path) -> Result<FileLogStore, LogStoreError> {
        let dir = metadata_log_dir(metadata_dir);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(ENTRIES_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io_err(&path))?;

        let mut entries = BTreeMap::new();
        let mut last_purged = None;
        let mut pos = 0;
        while let Some((frame, next)) = decode_frame(&buf, pos) {
            match frame {
                Frame::Purged(log_id) => {
                    entries.retain(|index, _| *index > log_id.index);
                    last_purged = Some(log_id);
                }
                Frame::Entry(entry) => {
                    // Truncation is physical, so indexes only grow; drop any overlap anyway.
                    let index = entry.log_id.index;
                    entries.retain(|i, _| *i < index);
                    entries.insert(index, (entry, pos as u64));
                }
            }
            pos = next;
        }
        if pos < buf.len() {
            tracing::warn!(
                path = %path.display(),
                valid_bytes = pos,
                file_bytes = buf.len(),
                "truncating torn tail of the metadata raft log"
            );
            file.set_len(pos as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }

        let vote = read_vote_file(&dir)?;

        Ok(FileLogStore {
            inner: Arc::new(Mutex::new(Inner {
                dir,
                file,
                entries,
                end_pos: pos as u64,
                last_purged,
                vote,
            })),
        })
    }

    /// The directory holding the log (`.../__cluster_metadata-0`).
    pub fn dir(&self) -> PathBuf {
        self.inner.lock().dir.clone()
    }

    /// Appends entries and fsyncs them.
    pub fn append_sync(&self, entries: impl IntoIterator<Item = Entry>) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let mut buf = Vec::new();
        let mut placed = Vec::new();
        for entry in entries {
            let pos = inner.end_pos + buf.len() as u64;
            encode_frame(&Frame::Entry(entry.clone()), &mut buf);
            placed.push((entry, pos));
        }
        inner.file.write_all(&buf)?;
        inner.file.sync_data()?;
        inner.end_pos += buf.len() as u64;
        for (entry, pos) in placed {
            inner.entries.insert(entry.log_id.index, (entry, pos));
        }
        Ok(())
    }

    /// Removes entries at and after `log_id.index` (conflicting, never committed).
    pub fn truncate_sync(&self, log_id: LogId) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let Some(pos) = inner
            .entries
            .range(log_id.index..)
            .next()
            .map(|(_, (_, pos))| *pos)
        else {
            return Ok(());
        };
        inner.file.set_len(pos)?;
        inner.file.sync_data()?;
        inner.end_pos = pos;
        inner.entries.retain(|index, _| *index < log_id.index);
        Ok(())
    }

    /// Removes entries up to and including `log_id` (already in a snapshot): the file is
    /// rewritten as a `Purged` marker followed by the remaining entries, then renamed over.
    pub fn purge_sync(&self, log_id: LogId) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let remaining: Vec<Entry> = inner
            .entries
            .range(log_id.index + 1..)
            .map(|(_, (e, _))| e.clone())
            .collect();
        let mut buf = Vec::new();
        encode_frame(&Frame::Purged(log_id), &mut buf);
        let mut positions = BTreeMap::new();
        for entry in remaining {
            let pos = buf.len() as u64;
            encode_frame(&Frame::Entry(entry.clone()), &mut buf);
            positions.insert(entry.log_id.index, (entry, pos));
        }
        let dir = inner.dir.clone();
        write_durably(&dir, ENTRIES_FILE, &buf)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(dir.join(ENTRIES_FILE))?;
        inner.file = file;
        inner.entries = positions;
        inner.end_pos = buf.len() as u64;
        inner.last_purged = Some(log_id);
        Ok(())
    }

    pub fn save_vote_sync(&self, vote: &Vote) -> io::Result<()> {
        let mut inner = self.inner.lock();
        write_vote_file(&inner.dir, vote)?;
        inner.vote = Some(*vote);
        Ok(())
    }

    /// Records the committed log id, without fsync (see the module docs).
    pub fn save_committed_sync(&self, committed: Option<LogId>) -> io::Result<()> {
        let dir = self.inner.lock().dir.clone();
        write_committed_file(&dir, committed)
    }

    /// The saved committed log id, clamped to the log: a committed index past the last
    /// entry on disk (lost with an unsynced tail) counts only up to that entry, which is
    /// then the committed one (committed entries are never truncated). Unreadable = none.
    pub fn committed(&self) -> Option<LogId> {
        let dir = self.inner.lock().dir.clone();
        let saved = read_committed_file(&dir)?;
        let inner = self.inner.lock();
        match inner.entries.range(..=saved.index).next_back() {
            Some((_, (entry, _))) => Some(entry.log_id),
            None => inner.last_purged.filter(|p| p.index <= saved.index),
        }
    }

    pub fn vote(&self) -> Option<Vote> {
        self.inner.lock().vote
    }

    pub fn log_state(&self) -> LogState<TypeConfig> {
        let inner = self.inner.lock();
        let last_log_id = inner
            .entries
            .values()
            .next_back()
            .map(|(e, _)| *e.get_log_id())
            .or(inner.last_purged);
        LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id,
        }
    }

    pub fn entries<RB: RangeBounds<u64>>(&self, range: RB) -> Vec<Entry> {
        self.inner
            .lock()
            .entries
            .range(range)
            .map(|(_, (e, _))| e.clone())
            .collect()
    }
}

pub(crate) fn write_logs_err(e: &io::Error) -> StorageError {
    StorageIOError::write_logs(AnyError::new(e)).into()
}

/// Tells openraft how an append ended, once it is durable (this node's ack counts from
/// the callback); shared by both log stores. The error type is openraft's, as its traits return.
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

impl RaftLogReader<TypeConfig> for FileLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self.entries(range))
    }
}

impl RaftLogStorage<TypeConfig> for FileLogStore {
    type LogReader = FileLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        Ok(self.log_state())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.save_vote_sync(vote)
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // A hint only: a failure is logged, never a reason to stop.
        if let Err(e) = self.save_committed_sync(committed) {
            tracing::warn!(%e, "could not record the committed metadata log id");
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        complete_append(self.append_sync(entries), callback)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.truncate_sync(log_id).map_err(|e| write_logs_err(&e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.purge_sync(log_id).map_err(|e| write_logs_err(&e))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn blank(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(store: &FileLogStore) -> Vec<u64> {
        store.entries(..).iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn torn_tail_is_truncated_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileLogStore::open(dir.path()).unwrap();
        store.append_sync((1..=3).map(|i| blank(1, i))).unwrap();
        drop(store);

        let path = metadata_log_dir(dir.path()).join(ENTRIES_FILE);
        let whole = fs::read(&path).unwrap();
        // A crash in the middle of the 4th frame's write: a partial header and body.
        let mut torn = whole.clone();
        let mut fourth = Vec::new();
        encode_frame(&Frame::Entry(blank(1, 4)), &mut fourth);
        torn.extend_from_slice(&fourth[..fourth.len() / 2]);
        fs::write(&path, &torn).unwrap();

        let store = FileLogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![1, 2, 3]);
        assert_eq!(
            fs::read(&path).unwrap(),
            whole,
            "file cut back to whole frames"
        );
        // Appends continue after the cut.
        store.append_sync([blank(2, 4)]).unwrap();
        drop(store);
        let store = FileLogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![1, 2, 3, 4]);
        assert_eq!(store.log_state().last_log_id.unwrap().leader_id.term, 2);
    }

    #[test]
    fn bad_crc_truncates_from_that_frame() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileLogStore::open(dir.path()).unwrap();
        store.append_sync((1..=3).map(|i| blank(1, i))).unwrap();
        drop(store);
        let path = metadata_log_dir(dir.path()).join(ENTRIES_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let store = FileLogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![1, 2]);
    }

    #[test]
    fn truncate_purge_and_vote_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileLogStore::open(dir.path()).unwrap();
        store.append_sync((1..=6).map(|i| blank(1, i))).unwrap();
        store.truncate_sync(blank(1, 5).log_id).unwrap();
        store.purge_sync(blank(1, 2).log_id).unwrap();
        store.append_sync([blank(3, 5)]).unwrap();
        let vote = Vote::new(3, 2);
        store.save_vote_sync(&vote).unwrap();
        drop(store);

        let store = FileLogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&store), vec![3, 4, 5]);
        let state = store.log_state();
        assert_eq!(state.last_purged_log_id.unwrap().index, 2);
        assert_eq!(state.last_log_id.unwrap().leader_id.term, 3);
        assert_eq!(store.vote(), Some(vote));

        // Purging everything keeps the last purged id as the log's last id.
        store.purge_sync(blank(3, 5).log_id).unwrap();
        drop(store);
        let store = FileLogStore::open(dir.path()).unwrap();
        assert!(indexes(&store).is_empty());
        assert_eq!(store.log_state().last_log_id.unwrap().index, 5);
    }

    #[test]
    fn committed_is_clamped_to_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileLogStore::open(dir.path()).unwrap();
        assert_eq!(store.committed(), None);
        store.append_sync((1..=3).map(|i| blank(1, i))).unwrap();
        store.save_committed_sync(Some(blank(1, 2).log_id)).unwrap();
        assert_eq!(store.committed(), Some(blank(1, 2).log_id));
        store.save_committed_sync(Some(blank(1, 9).log_id)).unwrap();
        assert_eq!(store.committed(), Some(blank(1, 3).log_id));
        assert_eq!(
            metadata_log_dir(dir.path()),
            dir.path().join("__cluster_metadata-0")
        );
    }
}
