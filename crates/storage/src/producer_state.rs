//! ProducerStateManager: idempotent and transactional producer state of one partition.
//!
//! Per producer id it keeps the epoch and the metadata of the last 5 batches, which
//! is what duplicate detection and sequence checks need. Snapshots
//! (`<20-digit offset>.snapshot`, Kafka's binary format v1 with CRC-32C, last batch
//! per producer) are taken on roll and clean shutdown; on open the log replays the
//! batches after the newest valid snapshot.
//!
//! Transactions (Kafka's model): a transactional data batch opens a transaction for
//! its producer (`current_txn_first_offset`) unless one is open; a COMMIT or ABORT
//! control batch closes it. Open transactions are `ongoing` (by first offset);
//! closed ones stay `unreplicated` until the high watermark passes their marker.
//! The first unstable offset, the smallest first offset of either, bounds the last
//! stable offset. Snapshots keep `current_txn_first_offset` and `coordinator_epoch`.
//! KIP-890 verification state (a guard per producer whose transaction is being
//! verified) lives here too, in memory only, as in Kafka.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::batch::{BatchHeader, NO_SEQUENCE};
use crate::checkpoint::write_file_atomically;
use crate::error::StorageError;
use crate::log::AppendOrigin;
use crate::records::EndTxnMarker;

/// Kafka keeps this many batches per producer for duplicate detection.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
const NO_PRODUCER_EPOCH: i16 = -1;
const SNAPSHOT_SUFFIX: &str = "snapshot";
const SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_ENTRY_BYTES: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;

/// Metadata of one appended batch of an idempotent producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// What the log knows about one producer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Last (up to 5) batches, oldest first.
    pub batches: VecDeque<BatchMetadata>,
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction, if any.
    pub current_txn_first_offset: Option<i64>,
    pub last_timestamp: i64,
}

impl ProducerStateEntry {
    fn empty(producer_id: i64) -> Self {
        ProducerStateEntry {
            producer_id,
            producer_epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            current_txn_first_offset: None,
            last_timestamp: -1,
        }
    }

    /// Last sequence number appended, or -1.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    /// Last offset appended, or -1.
    pub fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }

    /// The retained batch with exactly this sequence range under the same epoch.
    pub fn find_duplicate(&self, header: &BatchHeader) -> Option<BatchMetadata> {
        if header.producer_epoch != self.producer_epoch {
            return None;
        }
        let (first, last) = (header.base_sequence, header.last_sequence());
        self.batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
            .copied()
    }

    fn maybe_update_epoch(&mut self, epoch: i16) {
        if epoch != self.producer_epoch {
            // A new epoch starts a fresh sequence space.
            self.batches.clear();
            self.producer_epoch = epoch;
        }
    }

    fn add_batch(&mut self, epoch: i16, meta: BatchMetadata) {
        self.maybe_update_epoch(epoch);
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
        self.last_timestamp = meta.timestamp;
    }
}

/// Kafka's VerificationGuard (KIP-890): a unique token naming one verification of
/// a producer's transaction on a partition, so a stale verification cannot let a
/// write into a later transaction. The sentinel verifies nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerificationGuard(u64);

impl VerificationGuard {
    pub const SENTINEL: VerificationGuard = VerificationGuard(0);

    fn next() -> VerificationGuard {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        VerificationGuard(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether `request` (the guard a produce request carries) is this one.
    pub fn verify(&self, request: VerificationGuard) -> bool {
        request != Self::SENTINEL && request == *self
    }
}

/// A verification in progress for a producer (Kafka's VerificationStateEntry).
#[derive(Clone, Copy, Debug)]
struct VerificationState {
    timestamp_ms: i64,
    guard: VerificationGuard,
    lowest_sequence: i32,
    epoch: i16,
}

/// Inverse of `increment_sequence`: sequences wrap from i32::MAX to 0.
fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    if sequence < decrement {
        i32::MAX
            .wrapping_sub(decrement.wrapping_sub(sequence))
            .wrapping_add(1)
    } else {
        sequence.wrapping_sub(decrement)
    }
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq as i64 == last_seq as i64 + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// Kafka's `ProducerAppendInfo` checks for one data batch against `current` (the
/// state before this request) and `updated` (including earlier batches of it).
fn check_batch(
    current: &ProducerStateEntry,
    updated: &ProducerStateEntry,
    header: &BatchHeader,
    origin: AppendOrigin,
    verification: Option<&VerificationState>,
) -> Result<(), StorageError> {
    let pid = header.producer_id;
    let epoch = header.producer_epoch;
    if epoch < updated.producer_epoch && origin != AppendOrigin::Replication {
        return Err(StorageError::InvalidProducerEpoch(format!(
            "epoch {epoch} of producer {pid} is older than the last seen epoch {}",
            updated.producer_epoch
        )));
    }
    if origin != AppendOrigin::Client {
        return Ok(());
    }
    let first_seq = header.base_sequence;
    if let Some(v) = verification.filter(|v| first_seq > v.lowest_sequence) {
        return Err(StorageError::OutOfOrderSequence(format!(
            "sequence {first_seq} of producer {pid} is above the earliest seen sequence {}",
            v.lowest_sequence
        )));
    }
    if epoch != updated.producer_epoch {
        if first_seq != 0 && updated.producer_epoch != NO_PRODUCER_EPOCH {
            return Err(StorageError::OutOfOrderSequence(format!(
                "sequence {first_seq} for new epoch {epoch} of producer {pid} (current epoch {}) must be 0",
                updated.producer_epoch
            )));
        }
        return Ok(());
    }
    let last_seq = if !updated.batches.is_empty() {
        updated.last_seq()
    } else if epoch == current.producer_epoch {
        current.last_seq()
    } else {
        NO_SEQUENCE
    };
    // Without state (expired or deleted by retention) Kafka accepts any sequence.
    if current.producer_epoch != NO_PRODUCER_EPOCH && !in_sequence(last_seq, first_seq) {
        return Err(StorageError::OutOfOrderSequence(format!(
            "sequence {first_seq} of producer {pid} does not follow {last_seq}"
        )));
    }
    Ok(())
}

/// Kafka's `ProducerAppendInfo.appendEndTxnMarker` checks: the marker's producer
/// epoch may not be older than the producer's, nor its coordinator epoch older
/// than the last marker's. Replication only logs.
fn check_marker(
    updated: &ProducerStateEntry,
    header: &BatchHeader,
    marker: &EndTxnMarker,
    origin: AppendOrigin,
) -> Result<(), StorageError> {
    let pid = header.producer_id;
    if header.producer_epoch < updated.producer_epoch && origin != AppendOrigin::Replication {
        return Err(StorageError::InvalidProducerEpoch(format!(
            "marker epoch {} of producer {pid} is older than the last seen epoch {}",
            header.producer_epoch, updated.producer_epoch
        )));
    }
    if updated.coordinator_epoch > marker.coordinator_epoch {
        if origin != AppendOrigin::Replication {
            return Err(StorageError::TransactionCoordinatorFenced(format!(
                "coordinator epoch {} of the marker for producer {pid} is older than {}",
                marker.coordinator_epoch, updated.coordinator_epoch
            )));
        }
        tracing::info!(
            pid,
            offset = header.base_offset,
            "replicated marker has an older coordinator epoch"
        );
    }
    Ok(())
}

/// A transaction closed by a marker (Kafka's CompletedTxn).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    pub is_aborted: bool,
}

/// Producer updates of one append, applied only if the whole append succeeds.
#[derive(Default)]
pub struct ProducerAppendInfo {
    updated: HashMap<i64, ProducerStateEntry>,
    /// (first offset, producer id) of transactions opened by this append.
    started: Vec<(i64, i64)>,
    completed: Vec<CompletedTxn>,
    /// Producers with a transactional batch (data or marker) in this append.
    transactional: Vec<i64>,
}

/// Idempotent and transactional producer state of one partition.
pub struct ProducerStateManager {
    dir: PathBuf,
    producers: HashMap<i64, ProducerStateEntry>,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
    /// Closed transactions whose marker the high watermark has not passed yet:
    /// first offset -> (producer id, marker offset).
    unreplicated: BTreeMap<i64, (i64, i64)>,
    /// KIP-890 verifications in progress, by producer id.
    verifications: HashMap<i64, VerificationState>,
    /// Offset after the last batch applied.
    map_end_offset: i64,
}

pub fn snapshot_file(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.{SNAPSHOT_SUFFIX}"))
}

impl ProducerStateManager {
    pub fn new(dir: &Path) -> Self {
        ProducerStateManager {
            dir: dir.to_path_buf(),
            producers: HashMap::new(),
            ongoing: BTreeMap::new(),
            unreplicated: BTreeMap::new(),
            verifications: HashMap::new(),
            map_end_offset: 0,
        }
    }

    pub fn map_end_offset(&self) -> i64 {
        self.map_end_offset
    }

    /// Where the next batch starts (after a roll past a follower's gap).
    pub fn set_map_end_offset(&mut self, offset: i64) {
        self.map_end_offset = offset;
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Checks one batch (offsets already assigned) and records it in `info`.
    /// `marker` is the parsed marker of a control batch (None if it is empty).
    pub fn prepare_batch(
        &self,
        info: &mut ProducerAppendInfo,
        header: &BatchHeader,
        marker: Option<&EndTxnMarker>,
        origin: AppendOrigin,
    ) -> Result<(), StorageError> {
        self.prepare(info, header, marker, origin, true)
    }

    fn prepare(
        &self,
        info: &mut ProducerAppendInfo,
        header: &BatchHeader,
        marker: Option<&EndTxnMarker>,
        origin: AppendOrigin,
        strict: bool,
    ) -> Result<(), StorageError> {
        if !header.has_producer_id() {
            return Ok(());
        }
        let pid = header.producer_id;
        let empty = ProducerStateEntry::empty(pid);
        let current = self.producers.get(&pid).unwrap_or(&empty);
        let updated = info.updated.entry(pid).or_insert_with(|| current.clone());
        if header.is_transactional() {
            info.transactional.push(pid);
        }
        if header.is_control() {
            // An empty control batch: the cleaner removed its transaction.
            let Some(marker) = marker else {
                return Ok(());
            };
            if strict {
                check_marker(updated, header, marker, origin)?;
            }
            if let Some(first_offset) = updated.current_txn_first_offset {
                info.completed.push(CompletedTxn {
                    producer_id: pid,
                    first_offset,
                    last_offset: header.base_offset,
                    is_aborted: !marker.commit,
                });
            }
            updated.maybe_update_epoch(header.producer_epoch);
            updated.coordinator_epoch = marker.coordinator_epoch;
            updated.current_txn_first_offset = None;
            updated.last_timestamp = header.max_timestamp;
            return Ok(());
        }
        if strict {
            check_batch(
                current,
                updated,
                header,
                origin,
                self.verifications.get(&pid),
            )?;
        }
        updated.add_batch(header.producer_epoch, batch_metadata(header));
        match (updated.current_txn_first_offset, header.is_transactional()) {
            (Some(_), false) if strict => {
                return Err(StorageError::InvalidTxnState(format!(
                    "expected a transactional write from producer {pid} at offset {}",
                    header.base_offset
                )));
            }
            (None, true) => {
                updated.current_txn_first_offset = Some(header.base_offset);
                info.started.push((header.base_offset, pid));
            }
            _ => {}
        }
        Ok(())
    }

    /// Applies a prepared append; `end_offset` is the log end after it. Returns the
    /// transactions it closed, which the caller indexes (if aborted) and then
    /// passes to `complete_txn`.
    pub fn commit(&mut self, info: ProducerAppendInfo, end_offset: i64) -> Vec<CompletedTxn> {
        // A transactional batch, data or marker, ends a verification (Kafka's
        // updateProducers): the transaction is open or over.
        for pid in &info.transactional {
            self.verifications.remove(pid);
        }
        self.producers.extend(info.updated);
        self.ongoing.extend(info.started);
        self.map_end_offset = end_offset;
        info.completed
    }

    /// Replays a batch already in the log (recovery): no checks. Returns the
    /// transaction it closed, if any, to be handled like `commit`'s.
    pub fn replay(
        &mut self,
        header: &BatchHeader,
        marker: Option<&EndTxnMarker>,
    ) -> Option<CompletedTxn> {
        let mut info = ProducerAppendInfo::default();
        self.prepare(&mut info, header, marker, AppendOrigin::Replication, false)
            .expect("unchecked replay cannot fail");
        self.commit(info, header.next_offset()).pop()
    }

    /// Kafka's `lastStableOffset(completedTxn)`: the LSO right after `txn` closes,
    /// recorded in its aborted-transaction index entry.
    pub fn last_stable_offset_after(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, pid)| **pid != txn.producer_id)
            .map_or(txn.last_offset + 1, |(first, _)| *first)
    }

    /// Moves a closed transaction from ongoing to unreplicated.
    pub fn complete_txn(&mut self, txn: &CompletedTxn) {
        if self.ongoing.remove(&txn.first_offset).is_some() {
            self.unreplicated
                .insert(txn.first_offset, (txn.producer_id, txn.last_offset));
        }
    }

    /// Smallest first offset of an open transaction or of a closed one whose
    /// marker is not below the high watermark yet.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        match (ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Kafka's `onHighWatermarkUpdated`: forgets closed transactions whose marker
    /// is below the high watermark.
    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        self.unreplicated
            .retain(|_, (_, last_offset)| *last_offset >= high_watermark);
    }

    /// Kafka's `maybeCreateVerificationStateEntry`: the producer's verification
    /// guard, created if absent; tracks the lowest sequence of the epoch.
    pub fn maybe_create_verification_state(
        &mut self,
        producer_id: i64,
        sequence: i32,
        epoch: i16,
        now_ms: i64,
    ) -> VerificationGuard {
        let state = self
            .verifications
            .entry(producer_id)
            .or_insert_with(|| VerificationState {
                timestamp_ms: now_ms,
                guard: VerificationGuard::next(),
                lowest_sequence: sequence,
                epoch,
            });
        if epoch == state.epoch && sequence < state.lowest_sequence {
            state.lowest_sequence = sequence;
        }
        if epoch > state.epoch {
            state.epoch = epoch;
            state.lowest_sequence = sequence;
        }
        state.guard
    }

    /// The producer's verification guard, or the sentinel.
    pub fn verification_guard(&self, producer_id: i64) -> VerificationGuard {
        self.verifications
            .get(&producer_id)
            .map_or(VerificationGuard::SENTINEL, |v| v.guard)
    }

    /// Open transactions as (producer id, first offset), oldest first.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.ongoing
            .iter()
            .map(|(first, pid)| (*pid, *first))
            .collect()
    }

    /// Forgets producers whose last batch is below the new log start offset.
    /// Producers with an open transaction or whose last entry is a marker (no
    /// batches: it carries the epoch that fences zombies) are kept until expiry.
    pub fn truncate_head(&mut self, log_start_offset: i64) {
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || e.batches.is_empty()
                || e.last_offset() >= log_start_offset
        });
        self.unreplicated
            .retain(|_, (_, last_offset)| *last_offset >= log_start_offset);
        self.map_end_offset = self.map_end_offset.max(log_start_offset);
        let _ = self.delete_snapshots(|o| o < log_start_offset);
    }

    /// Kafka's `removeExpiredProducers`: forgets producers idle for `expiration_ms`
    /// (`producer.id.expiration.ms`) with no ongoing transaction.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        self.verifications
            .retain(|_, v| now_ms.saturating_sub(v.timestamp_ms) < expiration_ms);
    }

    /// Drops all state; the caller replays from `offset`.
    pub fn reset_to(&mut self, offset: i64) {
        self.producers.clear();
        self.ongoing.clear();
        self.unreplicated.clear();
        self.map_end_offset = offset;
    }

    /// Writes `<map_end_offset>.snapshot` (tmp file, fsync, rename).
    pub fn take_snapshot(&self) -> io::Result<()> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * SNAPSHOT_ENTRY_BYTES);
        body.extend_from_slice(&(self.producers.len() as i32).to_be_bytes());
        for e in self.producers.values() {
            // Like Kafka, an entry without batches (its last entry was a marker)
            // is written with last offset -1.
            let (last_seq, last_offset, delta) =
                e.batches.back().map_or((NO_SEQUENCE, -1, 0), |b| {
                    (
                        b.last_seq,
                        b.last_offset,
                        (b.last_offset - b.first_offset) as i32,
                    )
                });
            body.extend_from_slice(&e.producer_id.to_be_bytes());
            body.extend_from_slice(&e.producer_epoch.to_be_bytes());
            body.extend_from_slice(&last_seq.to_be_bytes());
            body.extend_from_slice(&last_offset.to_be_bytes());
            body.extend_from_slice(&delta.to_be_bytes());
            body.extend_from_slice(&e.last_timestamp.to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let count = (body.len() - 4) / SNAPSHOT_ENTRY_BYTES;
        body[0..4].copy_from_slice(&(count as i32).to_be_bytes());
        let mut file = Vec::with_capacity(6 + body.len());
        file.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        file.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        file.extend_from_slice(&body);
        write_file_atomically(&snapshot_file(&self.dir, self.map_end_offset), &file)
    }

    /// Snapshot offsets present in the directory, ascending.
    pub fn snapshot_offsets(&self) -> io::Result<Vec<i64>> {
        let mut offsets = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".snapshot") {
                if let Ok(o) = stem.parse::<i64>() {
                    offsets.push(o);
                }
            }
        }
        offsets.sort_unstable();
        Ok(offsets)
    }

    pub fn delete_snapshots(&self, predicate: impl Fn(i64) -> bool) -> io::Result<()> {
        for offset in self.snapshot_offsets()? {
            if predicate(offset) {
                fs::remove_file(snapshot_file(&self.dir, offset))?;
            }
        }
        Ok(())
    }

    /// Loads the newest valid snapshot in `[log_start_offset, log_end_offset]`;
    /// deletes invalid or out-of-range ones. Returns its offset (where replay starts).
    pub fn load_latest_snapshot(
        &mut self,
        log_start_offset: i64,
        log_end_offset: i64,
    ) -> io::Result<Option<i64>> {
        self.load_snapshot_at_or_before(log_start_offset, log_end_offset, log_end_offset)
    }

    /// Like `load_latest_snapshot`, ignoring (not deleting) snapshots above
    /// `max_offset`: recovery replays from there to rebuild transaction indexes.
    pub fn load_snapshot_at_or_before(
        &mut self,
        log_start_offset: i64,
        log_end_offset: i64,
        max_offset: i64,
    ) -> io::Result<Option<i64>> {
        self.delete_snapshots(|o| o > log_end_offset)?;
        for offset in self.snapshot_offsets()?.into_iter().rev() {
            if offset > max_offset {
                continue;
            }
            if offset < log_start_offset {
                break;
            }
            match fs::read(snapshot_file(&self.dir, offset))
                .ok()
                .and_then(|b| parse_snapshot(&b))
            {
                Some(entries) => {
                    self.ongoing = entries
                        .iter()
                        .filter_map(|e| Some((e.current_txn_first_offset?, e.producer_id)))
                        .collect();
                    self.unreplicated.clear();
                    self.producers = entries.into_iter().map(|e| (e.producer_id, e)).collect();
                    self.map_end_offset = offset;
                    return Ok(Some(offset));
                }
                None => {
                    tracing::warn!(dir = %self.dir.display(), offset, "deleting corrupt producer snapshot");
                    fs::remove_file(snapshot_file(&self.dir, offset))?;
                }
            }
        }
        Ok(None)
    }

    /// All entries (for tests and inspection).
    pub fn entries(&self) -> impl Iterator<Item = &ProducerStateEntry> {
        self.producers.values()
    }
}

fn batch_metadata(header: &BatchHeader) -> BatchMetadata {
    BatchMetadata {
        first_seq: header.base_sequence,
        last_seq: header.last_sequence(),
        first_offset: header.base_offset,
        last_offset: header.last_offset(),
        timestamp: header.max_timestamp,
    }
}

fn be<const N: usize>(b: &[u8], at: &mut usize) -> [u8; N] {
    let out: [u8; N] = b[*at..*at + N]
        .try_into()
        .expect("bounds checked by caller");
    *at += N;
    out
}

fn parse_snapshot(bytes: &[u8]) -> Option<Vec<ProducerStateEntry>> {
    if bytes.len() < 10 || i16::from_be_bytes([bytes[0], bytes[1]]) != SNAPSHOT_VERSION {
        return None;
    }
    let crc = u32::from_be_bytes(bytes[2..6].try_into().ok()?);
    let body = &bytes[6..];
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let count = i32::from_be_bytes(body[0..4].try_into().ok()?);
    if count < 0 || body.len() != 4 + count as usize * SNAPSHOT_ENTRY_BYTES {
        return None;
    }
    let mut at = 4;
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let producer_id = i64::from_be_bytes(be(body, &mut at));
        let producer_epoch = i16::from_be_bytes(be(body, &mut at));
        let last_seq = i32::from_be_bytes(be(body, &mut at));
        let last_offset = i64::from_be_bytes(be(body, &mut at));
        let offset_delta = i32::from_be_bytes(be(body, &mut at));
        let timestamp = i64::from_be_bytes(be(body, &mut at));
        let coordinator_epoch = i32::from_be_bytes(be(body, &mut at));
        let txn_first = i64::from_be_bytes(be(body, &mut at));
        let meta = BatchMetadata {
            first_seq: decrement_sequence(last_seq, offset_delta),
            last_seq,
            first_offset: last_offset - offset_delta as i64,
            last_offset,
            timestamp,
        };
        entries.push(ProducerStateEntry {
            producer_id,
            producer_epoch,
            batches: if last_offset >= 0 {
                VecDeque::from([meta])
            } else {
                VecDeque::new()
            },
            coordinator_epoch,
            current_txn_first_offset: (txn_first >= 0).then_some(txn_first),
            last_timestamp: timestamp,
        });
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_util::{batch, BatchSpec, KeyValue};
    use crate::batch::{set_base_offset, validate_batch};

    fn header(pid: i64, epoch: i16, seq: i32, n: usize, offset: i64) -> BatchHeader {
        let kvs: Vec<KeyValue<'_>> = (0..n).map(|_| (None, Some(&b"v"[..]))).collect();
        let spec = BatchSpec {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            ..Default::default()
        };
        let mut b = batch(&spec, &kvs);
        set_base_offset(&mut b, offset);
        validate_batch(&b).unwrap()
    }

    fn append(m: &mut ProducerStateManager, h: &BatchHeader) -> Result<(), StorageError> {
        let mut info = ProducerAppendInfo::default();
        m.prepare_batch(&mut info, h, None, AppendOrigin::Client)?;
        m.commit(info, h.next_offset());
        Ok(())
    }

    #[test]
    fn sequence_and_epoch_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        // Unknown producer: any sequence is accepted (state may have been deleted).
        append(&mut m, &header(1, 0, 5, 2, 0)).unwrap();
        append(&mut m, &header(1, 0, 7, 1, 2)).unwrap();
        assert!(matches!(
            append(&mut m, &header(1, 0, 9, 1, 3)),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        assert!(matches!(
            append(&mut m, &header(1, 1, 3, 1, 3)),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        append(&mut m, &header(1, 1, 0, 1, 3)).unwrap();
        assert!(matches!(
            append(&mut m, &header(1, 0, 8, 1, 4)),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
        let dup = m
            .entry(1)
            .unwrap()
            .find_duplicate(&header(1, 1, 0, 1, 99))
            .unwrap();
        assert_eq!((dup.first_offset, dup.last_offset), (3, 3));
    }

    fn txn_header(pid: i64, epoch: i16, seq: i32, offset: i64) -> BatchHeader {
        let mut h = header(pid, epoch, seq, 1, offset);
        h.attributes |= 1 << 4;
        h
    }

    fn marker_header(pid: i64, epoch: i16, offset: i64) -> BatchHeader {
        let marker = EndTxnMarker {
            commit: false,
            coordinator_epoch: 0,
        };
        let mut b = crate::batch::control_batch(pid, epoch, &marker, 5, 0, None);
        set_base_offset(&mut b, offset);
        validate_batch(&b).unwrap()
    }

    #[test]
    fn transactions_open_close_and_survive_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        let marker = EndTxnMarker {
            commit: false,
            coordinator_epoch: 3,
        };
        assert_eq!(m.replay(&txn_header(1, 0, 0, 10), None), None);
        assert_eq!(m.replay(&txn_header(2, 0, 0, 11), None), None);
        assert_eq!(m.replay(&txn_header(1, 0, 1, 12), None), None);
        assert_eq!(m.first_unstable_offset(), Some(10));
        assert_eq!(m.ongoing_transactions(), vec![(1, 10), (2, 11)]);
        // Producer 3's marker bumps its epoch without any transaction.
        assert_eq!(m.replay(&marker_header(3, 4, 13), Some(&marker)), None);
        assert!(m.entry(3).unwrap().batches.is_empty());
        m.set_map_end_offset(14);
        m.take_snapshot().unwrap();
        let mut loaded = ProducerStateManager::new(dir.path());
        assert_eq!(loaded.load_latest_snapshot(0, 100).unwrap(), Some(14));
        assert_eq!(loaded.ongoing_transactions(), vec![(1, 10), (2, 11)]);
        let e3 = loaded.entry(3).unwrap();
        assert_eq!((e3.producer_epoch, e3.coordinator_epoch), (4, 3));
        assert!(e3.batches.is_empty());
        // Producer 1 aborts at 14: the LSO after it is producer 2's first offset.
        let txn = loaded
            .replay(&marker_header(1, 0, 14), Some(&marker))
            .unwrap();
        assert_eq!(
            (txn.first_offset, txn.last_offset, txn.is_aborted),
            (10, 14, true)
        );
        assert_eq!(loaded.last_stable_offset_after(&txn), 11);
        loaded.complete_txn(&txn);
        assert_eq!(loaded.first_unstable_offset(), Some(10));
        loaded.on_high_watermark_updated(15);
        assert_eq!(loaded.first_unstable_offset(), Some(11));
        // Entries carrying only an epoch survive log start offset moves.
        loaded.truncate_head(50);
        assert!(loaded.entry(3).is_some());
        assert!(loaded.entry(2).is_some());
        assert!(loaded.entry(1).is_none());
    }

    #[test]
    fn snapshot_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = ProducerStateManager::new(dir.path());
        append(&mut m, &header(7, 2, 10, 3, 40)).unwrap();
        m.take_snapshot().unwrap();
        let mut loaded = ProducerStateManager::new(dir.path());
        assert_eq!(loaded.load_latest_snapshot(0, 100).unwrap(), Some(43));
        let e = loaded.entry(7).unwrap();
        assert_eq!(
            (e.producer_epoch, e.last_seq(), e.last_offset()),
            (2, 12, 42)
        );
        assert_eq!(e.batches[0].first_seq, 10);
        // Out of range snapshots are ignored and removed.
        assert_eq!(
            ProducerStateManager::new(dir.path())
                .load_latest_snapshot(0, 10)
                .unwrap(),
            None
        );
        assert!(m.snapshot_offsets().unwrap().is_empty());
    }
}
