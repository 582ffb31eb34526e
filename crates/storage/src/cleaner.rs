//! LogCleaner: key-based compaction of `cleanup.policy=compact` logs.
//!
//! One pass: build a key -> latest offset map over the dirty section (from the
//! cleaner checkpoint to the first uncleanable offset: the active segment, or the
//! first segment younger than `min.compaction.lag.ms`), then rewrite every segment
//! below that point keeping, per key, only the latest record. Original offsets are
//! kept; batches with nothing removed are copied verbatim; others are decoded and
//! re-encoded with their own codec, keeping producer id/epoch/sequence, flags and
//! last offset. A producer's last batch is kept as an empty batch if all its
//! records go. Tombstones are dropped once their batch's max timestamp is older
//! than `delete.retention.ms` and they have been through one earlier pass.
//!
//! Transactions (Kafka's LogCleaner rules): cleaning never passes the last stable
//! offset (only whole segments below it are cleanable), so every transaction seen
//! is decided. Aborted transactions are read from the transaction indexes; their
//! data batches are removed whatever their keys and never enter the key map.
//! Committed data is compacted by key like any other. A marker is kept while any
//! batch of its transaction remains (it was seen in this pass); once none does,
//! the marker gets Kafka's delete horizon (attribute bit 6, base timestamp = now +
//! `delete.retention.ms`) and is removed by the first pass after the horizon
//! (kept as an empty batch if it is its producer's last entry, which carries the
//! epoch). An ABORT marker whose data was still seen keeps its `.txnindex` entry
//! in the cleaned segment; other entries are dropped with their data.
//!
//! Swap protocol (crash safe): write `<base>.*.cleaned`, fsync, rename to
//! `.swap` (log file last: its presence commits the swap), rename the replaced
//! segments to `.deleted`, rename the swap files into place. `loader` finishes a
//! committed swap and drops an uncommitted one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

use crate::batch::{self, BatchHeader, BatchSpan};
use crate::checkpoint::sync_dir;
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::log::{lock, segment_index_for, Log};
use crate::records::{end_txn_marker, has_duplicate_header_keys, records_section, EndTxnMarker};
use crate::segment::{rename_segment_files, LogSegment};
use crate::txn_index::AbortedTxn;

pub struct LogCleaner<'a> {
    log: &'a Arc<Log>,
    dedupe_buffer_bytes: usize,
}

/// Key -> offset of its latest record in the dirty section.
type OffsetMap = HashMap<Bytes, i64>;

/// What one key costs in the offset map beyond its own bytes (table slot, `Bytes` handle,
/// offset): the counterpart of the 24 bytes per entry of Kafka's dedupe buffer.
const MAP_ENTRY_OVERHEAD_BYTES: usize = 64;

/// Kafka's `log.cleaner.dedupe.buffer.size` default.
pub const DEFAULT_DEDUPE_BUFFER_BYTES: usize = 128 * 1024 * 1024;

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::CorruptMessage(format!("cleaner could not decode a batch: {e}"))
}

impl<'a> LogCleaner<'a> {
    /// A cleaner whose offset map holds at most about `dedupe_buffer_bytes` of keys
    /// (`log.cleaner.dedupe.buffer.size`); a dirty section with more keys is cleaned over
    /// several passes.
    pub fn new(log: &'a Arc<Log>, dedupe_buffer_bytes: usize) -> Self {
        LogCleaner {
            log,
            dedupe_buffer_bytes,
        }
    }

    /// Cleans the log if it is dirty enough (or a record waited past
    /// `max.compaction.lag.ms`). Returns whether it cleaned.
    pub fn clean(&self, now_ms: i64) -> Result<bool, StorageError> {
        let log = self.log;
        let _maintenance = lock(&log.maintenance);
        let config = log.config_arc();
        let segments = log.segments_snapshot();
        let first_dirty = log.cleaner_checkpoint().max(log.log_start_offset());
        // Never past the last stable offset: whole segments below it only.
        let stable_base =
            segments[segment_index_for(&segments, log.last_stable_offset())].base_offset();
        let end = cleanable_end(&segments, &config, now_ms).min(stable_base);
        let mut cleanable: Vec<Arc<LogSegment>> = segments
            .iter()
            .take_while(|s| s.base_offset() < end)
            .cloned()
            .collect();
        if cleanable.is_empty()
            || first_dirty >= end
            || !self.should_clean(&cleanable, first_dirty, &config, now_ms)
        {
            return Ok(false);
        }
        let map_start = cleanable[segment_index_for(&cleanable, first_dirty)].base_offset();
        let map_txns =
            TxnTracker::new(log.collect_aborted_txns(log.log_start_offset(), map_start, end)?);
        let (map, map_end) =
            build_offset_map(&cleanable, first_dirty, map_txns, self.dedupe_buffer_bytes)?;
        // A full map covers the dirty section only up to `map_end`: clean the segments
        // below it now, the rest in the next pass (Kafka does the same).
        let end = match map_end {
            Some(map_end) => {
                tracing::info!(
                    dir = %log.dir.display(),
                    map_end,
                    end,
                    "offset map full (log.cleaner.dedupe.buffer.size): cleaning up to {map_end} this pass"
                );
                cleanable.retain(|s| s.base_offset() < map_end);
                map_end
            }
            None => end,
        };
        let mut txns = TxnTracker::new(log.collect_aborted_txns(
            log.log_start_offset(),
            cleanable[0].base_offset(),
            end,
        )?);
        for group in group_segments(&cleanable, &config) {
            self.clean_group(&group, &map, &mut txns, first_dirty, &config, now_ms)?;
        }
        log.cleaner_checkpoint.fetch_max(end, Ordering::AcqRel);
        Ok(true)
    }

    fn should_clean(
        &self,
        segments: &[Arc<LogSegment>],
        first_dirty: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> bool {
        let total: u64 = segments.iter().map(|s| s.size_bytes()).sum();
        let dirty_start = crate::log::segment_index_for(segments, first_dirty);
        let dirty: u64 = segments[dirty_start..].iter().map(|s| s.size_bytes()).sum();
        let ratio = if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        };
        // Kafka: a dirty record older than max.compaction.lag.ms forces a pass.
        let overdue = segments[dirty_start..].iter().any(|s| {
            let first_ts = s.first_batch_timestamp();
            first_ts >= 0 && now_ms.saturating_sub(first_ts) > config.max_compaction_lag_ms
        });
        dirty > 0 && (ratio >= config.min_cleanable_dirty_ratio || overdue)
    }

    /// Rewrites one group of adjacent segments into one and swaps it in.
    fn clean_group(
        &self,
        group: &[Arc<LogSegment>],
        map: &OffsetMap,
        txns: &mut TxnTracker,
        first_dirty: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let log = self.log;
        let base = group[0].base_offset();
        let cleaned = LogSegment::create_with_suffix(&log.dir, base, config, now_ms, ".cleaned")?;
        let producer_last_offsets = self.producer_last_offsets();
        let filter = RecordFilter {
            map,
            first_dirty,
            config,
            now_ms,
            producer_last_offsets: &producer_last_offsets,
        };
        for segment in group {
            copy_retained(segment, &cleaned, &filter, txns, config)?;
        }
        cleaned.on_become_inactive()?;
        cleaned.flush()?;
        drop(cleaned);
        rename_segment_files(&log.dir, base, ".cleaned", ".swap")?;
        // The .log.swap rename commits the swap: make it durable first.
        sync_dir(&log.dir)?;
        self.swap_in(group, base, config, now_ms)
    }

    /// Per producer: last data offset (-1 if its last entry is a marker) and epoch.
    fn producer_last_offsets(&self) -> HashMap<i64, (i64, i16)> {
        let w = lock(&self.log.writer);
        w.producers
            .entries()
            .map(|e| (e.producer_id, (e.last_offset(), e.producer_epoch)))
            .collect()
    }

    /// Replaces `group` with the `.swap` segment at `base` under the writer lock.
    fn swap_in(
        &self,
        group: &[Arc<LogSegment>],
        base: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let log = self.log;
        let _writer = lock(&log.writer);
        for old in group {
            for path in old.rename_files(".deleted")? {
                std::fs::remove_file(path)?;
            }
        }
        rename_segment_files(&log.dir, base, ".swap", "")?;
        let (segment, intact) = LogSegment::open(&log.dir, base, config, now_ms)?;
        if !intact {
            segment.recover(config.index_interval_bytes, |_| {})?;
        }
        segment.make_indexes_cold();
        let segment = Arc::new(segment);
        let mut segments: Vec<Arc<LogSegment>> = log.segments_snapshot().as_ref().clone();
        let Some(first) = segments.iter().position(|s| s.base_offset() == base) else {
            return Err(StorageError::LogDirNotFound(format!(
                "segment {base} vanished while cleaning"
            )));
        };
        segments.splice(first..first + group.len(), [segment]);
        log.publish_segments(segments);
        sync_dir(&log.dir)?;
        Ok(())
    }
}

/// First offset the cleaner may not touch: the active segment's base, or the
/// first segment holding a record younger than `min.compaction.lag.ms`.
fn cleanable_end(segments: &[Arc<LogSegment>], config: &LogConfig, now_ms: i64) -> i64 {
    let active_base = segments.last().map_or(0, |s| s.base_offset());
    if config.min_compaction_lag_ms <= 0 {
        return active_base;
    }
    let lag_start_ms = now_ms.saturating_sub(config.min_compaction_lag_ms);
    segments
        .iter()
        .find(|s| s.largest_timestamp() > lag_start_ms)
        .map_or(active_base, |s| s.base_offset().min(active_base))
}

/// Groups adjacent segments whose combined size fits one segment.
fn group_segments(segments: &[Arc<LogSegment>], config: &LogConfig) -> Vec<Vec<Arc<LogSegment>>> {
    let mut groups: Vec<Vec<Arc<LogSegment>>> = Vec::new();
    let mut size = 0u64;
    for segment in segments {
        let fits = groups.last().is_some_and(|g| {
            size + segment.size_bytes() <= config.segment_bytes.max(0) as u64
                && segment.base_offset() - g[0].base_offset() < i32::MAX as i64 / 2
        });
        if fits {
            size += segment.size_bytes();
            groups.last_mut().expect("checked").push(segment.clone());
        } else {
            size = segment.size_bytes();
            groups.push(vec![segment.clone()]);
        }
    }
    groups
}

fn for_each_batch(
    segment: &LogSegment,
    mut f: impl FnMut(&BatchHeader, Vec<u8>) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    for_each_batch_while(segment, |h, bytes| f(h, bytes).map(|()| true))
}

/// Like `for_each_batch`, stopping when `f` returns false.
fn for_each_batch_while(
    segment: &LogSegment,
    mut f: impl FnMut(&BatchHeader, Vec<u8>) -> Result<bool, StorageError>,
) -> Result<(), StorageError> {
    let mut batches = Vec::new();
    segment.for_each_header(0, |position, h| {
        batches.push((position, *h));
        true
    })?;
    for (position, header) in batches {
        if !f(&header, segment.read_batch(position, &header)?)? {
            break;
        }
    }
    Ok(())
}

/// The latest offset of every key of the dirty section, holding about `budget_bytes` of
/// keys at most. When the budget runs out in a later segment than the first dirty one,
/// returns that segment's base offset: the map is complete for the segments below it
/// (its keys from further on are later records, so they may still supersede). The first
/// dirty segment is always mapped whole, so that every pass makes progress.
fn build_offset_map(
    segments: &[Arc<LogSegment>],
    first_dirty: i64,
    mut txns: TxnTracker,
    budget_bytes: usize,
) -> Result<(OffsetMap, Option<i64>), StorageError> {
    let mut map = OffsetMap::new();
    let mut used_bytes = 0usize;
    let start = segment_index_for(segments, first_dirty);
    for (n, segment) in segments[start..].iter().enumerate() {
        let mut full = false;
        for_each_batch_while(segment, |h, bytes| {
            if n > 0 && used_bytes >= budget_bytes {
                full = true;
                return Ok(false);
            }
            if h.is_control() {
                txns.on_control(h, control_marker(h, &bytes));
                return Ok(true);
            }
            let aborted = txns.on_data(h);
            if aborted || h.last_offset() < first_dirty || h.record_count == 0 {
                return Ok(true);
            }
            let set = RecordBatchDecoder::decode(&mut Bytes::from(bytes)).map_err(corrupt)?;
            for record in set.records {
                let Some(key) = record.key else { continue };
                match map.get_mut(&key) {
                    Some(offset) => *offset = record.offset,
                    None => {
                        used_bytes += key.len() + MAP_ENTRY_OVERHEAD_BYTES;
                        // A copy: the decoded key shares the whole batch's buffer.
                        map.insert(Bytes::copy_from_slice(&key), record.offset);
                    }
                }
            }
            Ok(true)
        })?;
        if full {
            return Ok((map, Some(segment.base_offset())));
        }
    }
    Ok((map, None))
}

/// The marker of a producer's control batch; unparseable ones count as empty.
fn control_marker(h: &BatchHeader, bytes: &[u8]) -> Option<EndTxnMarker> {
    if !h.has_producer_id() {
        return None;
    }
    end_txn_marker(bytes, h).ok().flatten()
}

/// Kafka's CleanedTransactionMetadata: walks batches in offset order and tells
/// which data batches belong to aborted transactions and which markers may go.
struct TxnTracker {
    /// Aborted transactions not yet reached, by first offset.
    aborted: Vec<AbortedTxn>,
    next: usize,
    /// Producer -> its aborted transaction in progress, and whether one of its
    /// batches was seen in this pass.
    ongoing_aborted: HashMap<i64, (AbortedTxn, bool)>,
    /// Producers whose committed transaction in progress had a batch seen.
    ongoing_committed: HashSet<i64>,
}

impl TxnTracker {
    fn new(mut aborted: Vec<AbortedTxn>) -> Self {
        aborted.sort_by_key(|t| (t.first_offset, t.producer_id));
        aborted.dedup();
        TxnTracker {
            aborted,
            next: 0,
            ongoing_aborted: HashMap::new(),
            ongoing_committed: HashSet::new(),
        }
    }

    fn consume_up_to(&mut self, offset: i64) {
        while let Some(txn) = self
            .aborted
            .get(self.next)
            .filter(|t| t.first_offset <= offset)
        {
            self.ongoing_aborted
                .entry(txn.producer_id)
                .or_insert((*txn, false));
            self.next += 1;
        }
    }

    /// Whether the data batch belongs to an aborted transaction.
    fn on_data(&mut self, h: &BatchHeader) -> bool {
        self.consume_up_to(h.last_offset());
        if !h.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&h.producer_id) {
            Some((_, seen)) => {
                *seen = true;
                true
            }
            None => {
                self.ongoing_committed.insert(h.producer_id);
                false
            }
        }
    }

    /// Whether no batch of the marker's transaction remains (the marker may go
    /// once its delete horizon passes), and the index entry to keep for an ABORT
    /// whose data was seen.
    fn on_control(
        &mut self,
        h: &BatchHeader,
        marker: Option<EndTxnMarker>,
    ) -> (bool, Option<AbortedTxn>) {
        self.consume_up_to(h.last_offset());
        let Some(marker) = marker else {
            return (true, None);
        };
        let pid = h.producer_id;
        if marker.commit {
            return (!self.ongoing_committed.remove(&pid), None);
        }
        match self.ongoing_aborted.remove(&pid) {
            Some((txn, true)) => (false, Some(txn)),
            _ => (true, None),
        }
    }
}

struct RecordFilter<'a> {
    map: &'a OffsetMap,
    first_dirty: i64,
    config: &'a LogConfig,
    now_ms: i64,
    producer_last_offsets: &'a HashMap<i64, (i64, i16)>,
}

impl RecordFilter<'_> {
    fn keep(
        &self,
        header: &BatchHeader,
        offset: i64,
        key: Option<&Bytes>,
        is_tombstone: bool,
    ) -> bool {
        let Some(key) = key else { return false };
        if self.map.get(key).is_some_and(|latest| *latest > offset) {
            return false;
        }
        // A tombstone survives its first pass and then delete.retention.ms.
        let expired = offset < self.first_dirty
            && self.now_ms.saturating_sub(header.max_timestamp) > self.config.delete_retention_ms;
        !(is_tombstone && expired)
    }

    /// Kafka keeps a producer's last data batch (its last sequence) or, when its
    /// last entry is a marker, that marker (its epoch fences zombies).
    fn is_producer_last_batch(&self, header: &BatchHeader) -> bool {
        if !header.has_producer_id() {
            return false;
        }
        match self.producer_last_offsets.get(&header.producer_id) {
            Some(&(-1, epoch)) => header.is_control() && header.producer_epoch == epoch,
            Some(&(last_offset, _)) => !header.is_control() && header.last_offset() == last_offset,
            None => false,
        }
    }
}

/// Appends the retained part of every batch of `source` to `target`.
fn copy_retained(
    source: &LogSegment,
    target: &LogSegment,
    filter: &RecordFilter<'_>,
    txns: &mut TxnTracker,
    config: &LogConfig,
) -> Result<(), StorageError> {
    for_each_batch(source, |h, bytes| {
        let retained = if h.is_control() {
            if !h.has_producer_id() {
                Some(bytes)
            } else {
                retain_marker(h, bytes, filter, txns, target)?
            }
        } else if txns.on_data(h) {
            // Aborted: no record stays; the batch only if it is its producer's last.
            filter.is_producer_last_batch(h).then(|| {
                if h.record_count == 0 {
                    bytes
                } else {
                    batch::empty_batch_like(h)
                }
            })
        } else if h.record_count == 0 {
            Some(bytes)
        } else {
            filter_batch(h, bytes, filter)?
        };
        if let Some(out) = retained {
            let spans = [BatchSpan {
                position: 0,
                header: batch::validate_batch(&out)?,
            }];
            target.append(&out, &spans, config.index_interval_bytes)?;
        }
        Ok(())
    })
}

/// Kafka's marker retention: kept while its transaction has data; then stamped
/// with a delete horizon, and removed (or emptied, if its producer's last entry)
/// once the horizon has passed.
fn retain_marker(
    h: &BatchHeader,
    bytes: Vec<u8>,
    filter: &RecordFilter<'_>,
    txns: &mut TxnTracker,
    target: &LogSegment,
) -> Result<Option<Vec<u8>>, StorageError> {
    let marker = control_marker(h, &bytes);
    let (no_data_left, index_entry) = txns.on_control(h, marker);
    if let Some(entry) = index_entry {
        target.txn_index().append(&entry)?;
    }
    let expired = no_data_left && h.delete_horizon_ms().is_some_and(|t| t <= filter.now_ms);
    if filter.is_producer_last_batch(h) {
        return Ok(Some(if expired && h.record_count > 0 {
            batch::empty_batch_like(h)
        } else {
            bytes
        }));
    }
    if expired || marker.is_none() {
        // An empty control batch is dropped like any emptied batch.
        return Ok(None);
    }
    match marker {
        Some(marker) if no_data_left && h.delete_horizon_ms().is_none() => {
            let horizon = filter
                .now_ms
                .saturating_add(filter.config.delete_retention_ms);
            let mut out = batch::control_batch(
                h.producer_id,
                h.producer_epoch,
                &marker,
                h.max_timestamp,
                h.partition_leader_epoch,
                Some(horizon),
            );
            batch::set_base_offset(&mut out, h.base_offset);
            if h.is_log_append_time() {
                batch::set_log_append_time(&mut out, h.max_timestamp);
            }
            Ok(Some(out))
        }
        _ => Ok(Some(bytes)),
    }
}

/// The batch with only retained records: verbatim if all stay, re-encoded if some
/// do, an empty batch if none do but it is its producer's last, else nothing.
fn filter_batch(
    h: &BatchHeader,
    bytes: Vec<u8>,
    filter: &RecordFilter<'_>,
) -> Result<Option<Vec<u8>>, StorageError> {
    let set = RecordBatchDecoder::decode(&mut Bytes::from(bytes.clone())).map_err(corrupt)?;
    let total = set.records.len();
    let kept: Vec<_> = set
        .records
        .into_iter()
        .filter(|r| filter.keep(h, r.offset, r.key.as_ref(), r.value.is_none()))
        .collect();
    if kept.len() == total {
        return Ok(Some(bytes));
    }
    if kept.is_empty() {
        return Ok(filter
            .is_producer_last_batch(h)
            .then(|| batch::empty_batch_like(h)));
    }
    // Re-encoding would keep one value per repeated header key: keep the batch whole
    // (its superseded records too) rather than lose headers.
    let section = records_section(&bytes, h, i32::MAX as usize)?;
    if has_duplicate_header_keys(&section)? {
        return Ok(Some(bytes));
    }
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: set.compression,
    };
    RecordBatchEncoder::encode(&mut buf, &kept, &options).map_err(corrupt)?;
    let mut out = buf.to_vec();
    batch::restore_filtered_header(&mut out, h);
    Ok(Some(out))
}
