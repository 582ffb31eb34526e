//! The Raft log on a storage-crate `Log` (`__cluster_metadata-0`), in Kafka's layout.
//!
//! Each Raft entry is one RecordBatch v2, appended with `append_as_follower` at the log end
//! and flushed (fsync) before openraft is told it is durable, with the Raft term as the
//! batch's partition_leader_epoch (so the log's leader-epoch cache is the term history):
//! - Normal: one record per `MetadataRecord`, key = its type name, value = its JSON (what the
//!   broker's quorum-of-one writes today); an empty batch is one `RaftNoop` record.
//! - Blank: one record, key `RaftLeaderChange` (Kafka writes a LeaderChange control record
//!   when a leader takes over). Membership: one record, key `RaftMembership`, value = JSON.
//!   Both are data records for now: the storage log reads control batches as transaction
//!   markers, so Kafka's control-record form (LeaderChange / VotersRecord) waits for it.
//!
//! The first record of every batch carries the header `raft.leader` (the node id of the
//! entry's leader, part of openraft's log id). Raft indexes are not stored: the n-th batch
//! after the purge point is entry `purged.index + n` (the first ever entry is index 0). The
//! purge point (`raft-purged`, temp + fsync + rename) is written before the log start moves,
//! so a log start that was not checkpointed before a crash is skipped over at open.
//! Offsets are the same as the state machine numbers them (one per record, one per Blank or
//! Membership entry).
//!
//! Requirements on the `Log`: retention off (`retention.ms` = `retention.bytes` = -1) and no
//! compaction: only Raft purges remove entries. Torn tails are the storage loader's (CRC).
//!
//! Still different from Kafka's metadata log: Blank and Membership entries are data records
//! rather than control records; the `raft.leader` header; snapshots are JSON
//! (`raft-snapshot.json`) rather than `<offset>-<epoch>.checkpoint` record files; the purge
//! point and committed hint are files of our own (`raft-purged`, `raft-committed`).
//!
//! Migration: a log written by the quorum-of-one controller of earlier versions (batches
//! without the `raft.leader` header) is replayed once into an image, which becomes the
//! snapshot ending at entry 0 of term 0, with this node as the only voter; then the purge
//! point moves past the old batches ([`migrate_legacy_log`]). Offsets carry on where the old
//! log ended.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use moldau_metadata::MetadataRecord;
use moldau_storage::{BatchHeader, Log, StorageError as LogError};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, CommittedLeaderId, EntryPayload, Membership, RaftLogReader, StorageIOError,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::raft_files::{
    blocking, complete_append, read_committed_file, read_vote_file, write_committed_file,
    write_durably, write_logs_err, write_vote_file, LogStoreError,
};
use crate::state_machine::MetadataStateMachine;
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

pub const PURGED_FILE: &str = "raft-purged";
const LEADER_HEADER: &str = "raft.leader";
const KEY_BLANK: &str = "RaftLeaderChange";
const KEY_MEMBERSHIP: &str = "RaftMembership";
const KEY_NOOP: &str = "RaftNoop";

#[derive(Clone, Copy, Serialize, Deserialize)]
struct Purged {
    log_id: LogId,
    /// The offset after the purged entry's batch: where the remaining log starts. `None`
    /// when the purge went past the log's end (a snapshot replaced the log): resolved from
    /// the snapshot at the next append, since openraft may purge before the state machine
    /// has installed it.
    next_offset: Option<i64>,
}

#[derive(Clone, Copy)]
struct Placed {
    log_id: LogId,
    base_offset: i64,
    next_offset: i64,
}

struct Inner {
    log: Arc<Log>,
    /// Tells where the log goes on after a purge past its end (an installed snapshot).
    state_machine: Option<MetadataStateMachine>,
    dir: PathBuf,
    table: BTreeMap<u64, Placed>,
    purged: Option<Purged>,
    vote: Option<Vote>,
}

/// openraft's `RaftLogStorage` on the metadata partition's storage `Log`.
#[derive(Clone)]
pub struct StorageLogStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, thiserror::Error)]
enum CodecError {
    #[error("storage: {0}")]
    Storage(#[from] LogError),
    #[error("io: {0}")]
    Io(#[from] io::Error),
    #[error("batch at offset {offset}: {reason}")]
    Batch { offset: i64, reason: String },
}

fn record(key: &str, value: Option<Vec<u8>>) -> (Bytes, Option<Bytes>) {
    (Bytes::from(key.to_string()), value.map(Bytes::from))
}

fn encode_entry(entry: &Entry, base_offset: i64) -> Result<BytesMut, CodecError> {
    let kvs: Vec<(Bytes, Option<Bytes>)> = match &entry.payload {
        EntryPayload::Blank => vec![record(KEY_BLANK, None)],
        EntryPayload::Membership(m) => vec![record(
            KEY_MEMBERSHIP,
            Some(serde_json::to_vec(m).expect("membership serializes")),
        )],
        EntryPayload::Normal(batch) if batch.is_empty() => vec![record(KEY_NOOP, None)],
        EntryPayload::Normal(batch) => batch
            .iter()
            .map(|r| record(r.type_name(), Some(r.encode())))
            .collect(),
    };
    let now = moldau_storage::seams::now_ms();
    let records: Vec<Record> = kvs
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let mut headers = IndexMap::new();
            if i == 0 {
                headers.insert(
                    StrBytes::from_static_str(LEADER_HEADER),
                    Some(Bytes::from(entry.log_id.leader_id.node_id.to_string())),
                );
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: entry.log_id.leader_id.term as i32,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base_offset + i as i64,
                // kafka-protocol's encoder starts a new batch where `offset - sequence`
                // changes: counting up from -1 keeps one batch whose base sequence is -1
                // (no producer), so an entry's records land (and tear) together.
                sequence: i as i32 - 1,
                timestamp: now,
                key: Some(key),
                value,
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| CodecError::Batch {
        offset: base_offset,
        reason: e.to_string(),
    })?;
    // One entry, one batch: the index ↔ offset mapping and atomicity rest on it.
    if BatchHeader::parse(&buf)?.size_bytes() != buf.len() {
        return Err(CodecError::Batch {
            offset: base_offset,
            reason: "entry encoded as more than one batch".into(),
        });
    }
    Ok(buf)
}

/// Decodes one batch into the entry of `index`.
fn decode_entry(header: &BatchHeader, mut batch: Bytes, index: u64) -> Result<Entry, CodecError> {
    let offset = header.base_offset;
    let bad = |reason: String| CodecError::Batch { offset, reason };
    let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| bad(e.to_string()))?;
    let first = set
        .records
        .first()
        .ok_or_else(|| bad("no records".into()))?;
    let leader: NodeId = first
        .headers
        .get(LEADER_HEADER.as_bytes())
        .and_then(|v| v.as_ref())
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad(format!("no {LEADER_HEADER} header")))?;
    let log_id = LogId::new(
        CommittedLeaderId::new(header.partition_leader_epoch as u64, leader),
        index,
    );
    let key = first.key.as_deref().unwrap_or_default();
    let payload = if key == KEY_BLANK.as_bytes() {
        EntryPayload::Blank
    } else if key == KEY_MEMBERSHIP.as_bytes() {
        let value = first.value.as_deref().unwrap_or_default();
        let membership: Membership<NodeId, crate::types::Node> =
            serde_json::from_slice(value).map_err(|e| bad(e.to_string()))?;
        EntryPayload::Membership(membership)
    } else if key == KEY_NOOP.as_bytes() {
        EntryPayload::Normal(Vec::new())
    } else {
        let mut records = Vec::with_capacity(set.records.len());
        for r in &set.records {
            let value = r.value.as_deref().unwrap_or_default();
            records.push(MetadataRecord::decode(value).map_err(|e| bad(e.to_string()))?);
        }
        EntryPayload::Normal(records)
    };
    Ok(Entry { log_id, payload })
}

/// Calls `each` with every batch from `from` to the log end, in offset order.
fn walk(
    log: &Log,
    from: i64,
    end: i64,
    mut each: impl FnMut(&BatchHeader, Bytes) -> Result<bool, CodecError>,
) -> Result<(), CodecError> {
    let mut offset = from;
    while offset < end {
        let data = log.read(offset, 1 << 20, i64::MAX, true)?;
        if data.is_empty() {
            break;
        }
        let bytes = data.read_to_bytes()?;
        let before = offset;
        let mut position = 0;
        while position < bytes.len() {
            let header = BatchHeader::parse(&bytes[position..])?;
            let batch_end = (position + header.size_bytes()).min(bytes.len());
            let batch = bytes.slice(position..batch_end);
            position = batch_end;
            if header.next_offset() <= offset {
                continue; // the batch before `from` that a read may start with
            }
            offset = header.next_offset();
            if !each(&header, batch)? {
                return Ok(());
            }
        }
        if offset == before {
            break;
        }
    }
    Ok(())
}

fn io_storage(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Whether the batch at the log start lacks the `raft.leader` header (a quorum-of-one log).
fn starts_legacy(log: &Log) -> Result<bool, CodecError> {
    let mut legacy = false;
    walk(
        log,
        log.log_start_offset(),
        log.log_end_offset(),
        |_, mut batch| {
            let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| CodecError::Batch {
                offset: log.log_start_offset(),
                reason: e.to_string(),
            })?;
            legacy = set
                .records
                .first()
                .is_some_and(|r| !r.headers.contains_key(LEADER_HEADER.as_bytes()));
            Ok(false)
        },
    )?;
    Ok(legacy)
}

/// Turns a metadata log written by the quorum-of-one controller into a Raft snapshot (see
/// the module docs); `Ok(false)` when there is nothing to migrate. Crash-safe by order:
/// the snapshot is written first (a crash before the purge point redoes the migration from
/// the untouched old log), then the purge point (from then on the old batches are skipped),
/// then the old batches are deleted. Only a node that is the only voter migrates: its log
/// is the cluster's whole history.
pub fn migrate_legacy_log(
    log: &Log,
    node_id: NodeId,
    voters: &BTreeMap<NodeId, crate::types::Node>,
) -> Result<bool, LogStoreError> {
    let dir = log.dir().to_path_buf();
    let corrupt = |reason: String| LogStoreError::Corrupt {
        path: dir.clone(),
        reason,
    };
    if dir.join(PURGED_FILE).exists() || log.log_end_offset() == log.log_start_offset() {
        return Ok(false);
    }
    if !starts_legacy(log).map_err(|e| corrupt(e.to_string()))? {
        return Ok(false);
    }
    if voters.len() != 1 || !voters.contains_key(&node_id) {
        return Err(corrupt(format!(
            "this metadata log was written by a single-node Moldau (before the Raft quorum); \
             start node {node_id} once with controller.quorum.voters naming only itself to \
             migrate it, then add voters"
        )));
    }
    let mut delta = moldau_metadata::MetadataDelta::new(&moldau_metadata::MetadataImage::empty());
    let end = log.log_end_offset();
    walk(log, log.log_start_offset(), end, |header, mut batch| {
        let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| CodecError::Batch {
            offset: header.base_offset,
            reason: e.to_string(),
        })?;
        for r in &set.records {
            let value = r.value.as_deref().unwrap_or_default();
            // Skipped, not fatal, as the old controller's own replay did.
            match MetadataRecord::decode(value) {
                Ok(record) => {
                    if let Err(e) = delta.replay(r.offset, &record) {
                        tracing::error!(offset = r.offset, %e, "migration: skipping metadata record");
                    }
                }
                Err(e) => tracing::error!(offset = r.offset, %e, "migration: skipping metadata record"),
            }
        }
        Ok(true)
    })
    .map_err(|e| corrupt(e.to_string()))?;
    let image = delta.apply();
    let log_id = LogId::new(CommittedLeaderId::new(0, node_id), 0);
    let meta = crate::types::SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: crate::types::StoredMembership::new(
            Some(log_id),
            Membership::new(vec![voters.keys().copied().collect()], voters.clone()),
        ),
        snapshot_id: format!("migrated-{end}"),
    };
    crate::state_machine::write_snapshot(&dir, meta, end, &image)
        .map_err(crate::raft_files::io_err(&dir))?;
    let purged = Purged {
        log_id,
        next_offset: Some(end),
    };
    let bytes = serde_json::to_vec(&purged).expect("purge point serializes");
    write_durably(&dir, PURGED_FILE, &bytes).map_err(crate::raft_files::io_err(&dir))?;
    log.update_high_watermark(end);
    log.delete_records_before(end)
        .map_err(|e| corrupt(e.to_string()))?;
    tracing::info!(
        node_id,
        end_offset = end,
        topics = image.topics().len(),
        "migrated the single-node metadata log to the Raft quorum"
    );
    Ok(true)
}

impl StorageLogStore {
    /// Opens the Raft view of `log` (the `__cluster_metadata-0` partition); the vote and the
    /// purge point live beside its segments.
    pub fn open(log: Arc<Log>) -> Result<StorageLogStore, LogStoreError> {
        let dir = log.dir().to_path_buf();
        let corrupt = |reason: String| LogStoreError::Corrupt {
            path: dir.clone(),
            reason,
        };
        let purged: Option<Purged> = match std::fs::read(dir.join(PURGED_FILE)) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(crate::raft_files::io_err(&dir)(e)),
        };
        let vote = read_vote_file(&dir)?;
        let mut table = BTreeMap::new();
        let mut index = purged.map_or(0, |p| p.log_id.index + 1);
        let from = match purged {
            None => log.log_start_offset(),
            Some(Purged {
                next_offset: Some(offset),
                ..
            }) => offset.max(log.log_start_offset()),
            // Nothing was appended since the log was replaced: what is there is stale.
            Some(Purged {
                next_offset: None, ..
            }) => log.log_end_offset(),
        };
        walk(&log, from, log.log_end_offset(), |header, batch| {
            let entry = decode_entry(header, batch, index)?;
            table.insert(
                index,
                Placed {
                    log_id: entry.log_id,
                    base_offset: header.base_offset,
                    next_offset: header.next_offset(),
                },
            );
            index += 1;
            Ok(true)
        })
        .map_err(|e| corrupt(e.to_string()))?;
        Ok(StorageLogStore {
            inner: Arc::new(Mutex::new(Inner {
                log,
                state_machine: None,
                dir,
                table,
                purged,
                vote,
            })),
        })
    }

    /// Lets a purge past the log's end (after a snapshot was installed) continue the log at
    /// the snapshot's offset, so log offsets stay the image's offsets.
    pub fn with_state_machine(self, state_machine: MetadataStateMachine) -> Self {
        self.inner.lock().state_machine = Some(state_machine);
        self
    }

    pub fn append_sync(&self, entries: impl IntoIterator<Item = Entry>) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let resume_at = Self::resolve_purge_point(&mut inner)?;
        for entry in entries {
            // After a snapshot the log goes on at the snapshot's offset (a gap, as
            // compaction leaves), so log offsets stay the image's offsets.
            let base = inner.log.log_end_offset().max(resume_at);
            let mut batch = encode_entry(&entry, base).map_err(io_storage)?;
            let info = inner
                .log
                .append_as_follower(&mut batch)
                .map_err(io_storage)?;
            inner.table.insert(
                entry.log_id.index,
                Placed {
                    log_id: entry.log_id,
                    base_offset: info.first_offset,
                    next_offset: info.last_offset + 1,
                },
            );
        }
        inner.log.flush().map_err(io_storage)
    }

    pub fn truncate_sync(&self, log_id: LogId) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let Some(first) = inner.table.range(log_id.index..).next().map(|(_, p)| *p) else {
            return Ok(());
        };
        inner
            .log
            .truncate_to(first.base_offset)
            .map_err(io_storage)?;
        inner.log.flush().map_err(io_storage)?;
        inner.table.retain(|index, _| *index < log_id.index);
        Ok(())
    }

    /// Where appends resume: the purge point's offset, resolving it from the installed
    /// snapshot (else the log end) and persisting it if the purge left it open.
    fn resolve_purge_point(inner: &mut Inner) -> io::Result<i64> {
        let Some(purged) = inner.purged else {
            return Ok(0);
        };
        if let Some(offset) = purged.next_offset {
            return Ok(offset);
        }
        let offset = inner
            .state_machine
            .as_ref()
            .and_then(|sm| sm.offset_after_snapshot(purged.log_id))
            .unwrap_or(0)
            .max(inner.log.log_end_offset());
        let resolved = Purged {
            log_id: purged.log_id,
            next_offset: Some(offset),
        };
        let bytes = serde_json::to_vec(&resolved).expect("purge point serializes");
        write_durably(&inner.dir, PURGED_FILE, &bytes)?;
        inner.purged = Some(resolved);
        Ok(offset)
    }

    pub fn purge_sync(&self, log_id: LogId) -> io::Result<()> {
        let mut inner = self.inner.lock();
        let next_offset = match inner.table.get(&log_id.index) {
            Some(placed) => Some(placed.next_offset),
            // Not here: purged before, or a snapshot replaced the log up to it.
            None => inner
                .table
                .range(log_id.index..)
                .next()
                .map(|(_, placed)| placed.base_offset),
        };
        let purged = Purged {
            log_id,
            next_offset,
        };
        let bytes = serde_json::to_vec(&purged).expect("purge point serializes");
        write_durably(&inner.dir, PURGED_FILE, &bytes)?;
        inner.purged = Some(purged);
        inner.table.retain(|index, _| *index > log_id.index);
        // Purged entries are committed: the high watermark may move up to them.
        let log = inner.log.clone();
        let target = next_offset.unwrap_or_else(|| log.log_end_offset());
        if log.high_watermark() < target {
            log.update_high_watermark(target.min(log.log_end_offset()));
        }
        let target = target.min(log.high_watermark());
        if target > log.log_start_offset() {
            log.delete_records_before(target).map_err(io_storage)?;
        }
        Ok(())
    }

    /// The metadata-log offset after entry `index` (a voter's log end offset once it holds
    /// that entry): from the entry's batch, or the purge point when it was purged.
    pub fn offset_after(&self, index: u64) -> Option<i64> {
        let inner = self.inner.lock();
        if let Some(placed) = inner.table.get(&index) {
            return Some(placed.next_offset);
        }
        let purged = inner.purged?;
        if index == purged.log_id.index {
            return purged.next_offset;
        }
        // Older than what is kept: it ends before the first kept entry.
        (index < purged.log_id.index)
            .then(|| inner.table.values().next().map(|p| p.base_offset))
            .flatten()
    }

    pub fn log_state(&self) -> LogState<TypeConfig> {
        let inner = self.inner.lock();
        let purged = inner.purged.map(|p| p.log_id);
        LogState {
            last_purged_log_id: purged,
            last_log_id: inner
                .table
                .values()
                .next_back()
                .map(|p| p.log_id)
                .or(purged),
        }
    }

    pub fn entries<RB: RangeBounds<u64>>(&self, range: RB) -> io::Result<Vec<Entry>> {
        let inner = self.inner.lock();
        let wanted: Vec<(u64, Placed)> = inner.table.range(range).map(|(i, p)| (*i, *p)).collect();
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(Vec::new());
        };
        let mut by_offset: BTreeMap<i64, u64> =
            wanted.iter().map(|(i, p)| (p.base_offset, *i)).collect();
        let mut out = Vec::with_capacity(wanted.len());
        walk(
            &inner.log,
            first.1.base_offset,
            last.1.next_offset,
            |header, batch| {
                if let Some(index) = by_offset.remove(&header.base_offset) {
                    out.push(decode_entry(header, batch, index)?);
                }
                Ok(!by_offset.is_empty())
            },
        )
        .map_err(io_storage)?;
        if out.len() != wanted.len() {
            return Err(io_storage(format!(
                "metadata log returned {} of {} entries",
                out.len(),
                wanted.len()
            )));
        }
        Ok(out)
    }

    fn committed(&self) -> Option<LogId> {
        let inner = self.inner.lock();
        let saved = read_committed_file(&inner.dir)?;
        match inner.table.range(..=saved.index).next_back() {
            Some((_, placed)) => Some(placed.log_id),
            None => inner
                .purged
                .map(|p| p.log_id)
                .filter(|p| p.index <= saved.index),
        }
    }
}

impl RaftLogReader<TypeConfig> for StorageLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries(range)
            .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)).into())
    }
}

impl RaftLogStorage<TypeConfig> for StorageLogStore {
    type LogReader = StorageLogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        Ok(self.log_state())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut inner = self.inner.lock();
        write_vote_file(&inner.dir, vote)
            .map_err(|e| StorageError::from(StorageIOError::write_vote(AnyError::new(&e))))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.inner.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let inner = self.inner.lock();
        // The high watermark is the committed offset: what readers of the log may see.
        if let Some(placed) = committed.and_then(|c| inner.table.get(&c.index)) {
            if inner.log.high_watermark() < placed.next_offset {
                inner.log.update_high_watermark(placed.next_offset);
            }
        }
        if let Err(e) = write_committed_file(&inner.dir, committed) {
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
        complete_append(blocking(|| self.append_sync(entries)), callback)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        blocking(|| self.truncate_sync(log_id)).map_err(|e| write_logs_err(&e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        blocking(|| self.purge_sync(log_id)).map_err(|e| write_logs_err(&e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io::Write;

    use moldau_metadata::Uuid;
    use moldau_storage::{LogConfig, LogManager, LogManagerConfig, TopicPartition};

    use super::*;
    use crate::raft_files::METADATA_TOPIC;

    /// The metadata log's config (as the broker's `metadata_log_config`): also the manager's
    /// default, since a restart reopens existing logs with the default, not the create config.
    fn metadata_log_config() -> LogConfig {
        LogConfig {
            retention_ms: -1,
            retention_bytes: -1,
            ..LogConfig::default()
        }
    }

    fn open(dir: &std::path::Path) -> (Arc<LogManager>, StorageLogStore) {
        let manager = LogManager::open(LogManagerConfig::new(dir), metadata_log_config()).unwrap();
        let log = manager
            .get_or_create_log(
                &TopicPartition::new(METADATA_TOPIC, 0),
                Uuid::nil(),
                metadata_log_config(),
            )
            .unwrap();
        (manager, StorageLogStore::open(log).unwrap())
    }

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 7), index)
    }

    fn entries() -> Vec<Entry> {
        let voters: BTreeSet<NodeId> = [7, 8, 9].into();
        let topic = |n: u128| MetadataRecord::Topic {
            name: n.to_string(),
            topic_id: Uuid::from_u128(n),
        };
        vec![
            Entry {
                log_id: id(0, 0),
                payload: EntryPayload::Membership(Membership::new(vec![voters], None)),
            },
            Entry {
                log_id: id(1, 1),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: id(1, 2),
                payload: EntryPayload::Normal(vec![topic(1), topic(2)]),
            },
            Entry {
                log_id: id(1, 3),
                payload: EntryPayload::Normal(Vec::new()),
            },
            Entry {
                log_id: id(2, 4),
                payload: EntryPayload::Normal(vec![topic(3)]),
            },
        ]
    }

    #[test]
    fn entries_round_trip_as_batches_with_the_term_as_leader_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let (manager, store) = open(dir.path());
        store.append_sync(entries()).unwrap();
        assert_eq!(store.entries(..).unwrap(), entries());
        let log = store.inner.lock().log.clone();
        // 1 + 1 + 2 + 1 + 1 records: offsets as the state machine numbers them.
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(log.latest_epoch(), Some(2));

        store.truncate_sync(id(2, 4)).unwrap();
        store.purge_sync(id(1, 1)).unwrap();
        drop(store);
        manager.shutdown().unwrap();

        let (manager, store) = open(dir.path());
        assert_eq!(store.entries(..).unwrap(), entries()[2..4].to_vec());
        let state = store.log_state();
        assert_eq!(state.last_purged_log_id, Some(id(1, 1)));
        assert_eq!(state.last_log_id, Some(id(1, 3)));
        // Appends go on after a truncation and a purge.
        let next = Entry {
            log_id: id(3, 4),
            payload: EntryPayload::Blank,
        };
        store.append_sync([next.clone()]).unwrap();
        assert_eq!(store.entries(4..).unwrap(), vec![next]);
        drop(store);
        manager.shutdown().unwrap();
    }

    #[test]
    fn a_torn_tail_is_cut_by_the_storage_loader() {
        let dir = tempfile::tempdir().unwrap();
        let (manager, store) = open(dir.path());
        store.append_sync(entries()).unwrap();
        let segment = store
            .inner
            .lock()
            .log
            .dir()
            .join("00000000000000000000.log");
        drop(store);
        // A crash: no clean shutdown, and half a batch at the end of the segment.
        drop(manager);
        let mut half = encode_entry(&entries()[4], 6).unwrap();
        half.truncate(half.len() / 2);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&segment)
            .unwrap()
            .write_all(&half)
            .unwrap();

        let (manager, store) = open(dir.path());
        assert_eq!(store.entries(..).unwrap(), entries());
        assert_eq!(store.inner.lock().log.log_end_offset(), 6);
        drop(store);
        manager.shutdown().unwrap();
    }

    /// A batch as the quorum-of-one controller wrote it: records keyed by type name, no
    /// `raft.leader` header, leader epoch 0.
    fn legacy_batch(records: &[MetadataRecord]) -> BytesMut {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: 0,
                key: Some(Bytes::from(r.type_name())),
                value: Some(Bytes::from(r.encode())),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf
    }

    #[tokio::test]
    async fn a_quorum_of_one_log_migrates_to_a_snapshot_and_offsets_carry_on() {
        let dir = tempfile::tempdir().unwrap();
        let (topic_a, topic_b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let partition = |topic_id| MetadataRecord::Partition {
            topic_id,
            partition_id: 0,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
        };
        let manager =
            LogManager::open(LogManagerConfig::new(dir.path()), metadata_log_config()).unwrap();
        let tp = TopicPartition::new(METADATA_TOPIC, 0);
        let log = manager
            .get_or_create_log(&tp, Uuid::nil(), metadata_log_config())
            .unwrap();
        for batch in [
            vec![
                MetadataRecord::Topic {
                    name: "a".into(),
                    topic_id: topic_a,
                },
                partition(topic_a),
            ],
            vec![MetadataRecord::Topic {
                name: "b".into(),
                topic_id: topic_b,
            }],
            vec![MetadataRecord::RemoveTopic { topic_id: topic_a }],
        ] {
            let mut bytes = legacy_batch(&batch);
            log.append_as_leader(&mut bytes, 0, moldau_storage::AppendOrigin::Coordinator, 0)
                .unwrap();
        }
        assert_eq!(log.log_end_offset(), 4);

        let node = crate::types::Node::new("127.0.0.1", 1);
        let three: BTreeMap<NodeId, _> = (1..=3).map(|id| (id, node.clone())).collect();
        let refused = migrate_legacy_log(&log, 1, &three).unwrap_err();
        assert!(
            refused.to_string().contains("naming only itself"),
            "{refused}"
        );
        assert!(!log.dir().join(PURGED_FILE).exists());

        let one: BTreeMap<NodeId, _> = [(1, node)].into();
        let start = |log: Arc<Log>| {
            let one = one.clone();
            async move {
                crate::quorum::MetadataQuorum::start_on_log(
                    1,
                    one,
                    log,
                    Arc::new(crate::state_machine::NoPublisher),
                    crate::network::InProcessNetwork::new().endpoint(1),
                    &crate::quorum::QuorumConfig::default(),
                )
                .await
                .unwrap()
            }
        };
        let quorum = start(log.clone()).await;
        let image = quorum.image();
        assert_eq!(image.offset, 3);
        assert!(image.topic_by_name("a").is_none());
        assert_eq!(image.topic_by_name("b").unwrap().topic_id, topic_b);
        // The node leads alone and its next record goes after the old log's end.
        let mut first = None;
        for _ in 0..100 {
            match quorum.propose(vec![partition(topic_b)]).await {
                Ok(offset) => {
                    first = Some(offset);
                    break;
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        let first = first.expect("the migrated node leads");
        assert!(first >= 4, "offsets carry on after the old log: {first}");
        quorum.shutdown().await.unwrap();
        assert!(log.log_start_offset() >= 4, "old batches deleted");
        drop(log);
        manager.shutdown().unwrap();

        // A restart neither migrates again nor loses anything.
        let manager =
            LogManager::open(LogManagerConfig::new(dir.path()), metadata_log_config()).unwrap();
        let log = manager.get_log(&tp).unwrap();
        assert!(!migrate_legacy_log(&log, 1, &one).unwrap());
        let quorum = start(log.clone()).await;
        let image = quorum.image();
        assert_eq!(image.topic_by_name("b").unwrap().partitions.len(), 1);
        assert!(image.offset >= first);
        quorum.shutdown().await.unwrap();
        drop(log);
        manager.shutdown().unwrap();
    }
}
