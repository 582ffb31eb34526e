//! LogCleaner: key-based compaction of `cleanup.policy=compact` logs.
//!
//! One pass: build a key -> latest offset map over the dirty section (from the
//! cleaner checkpoint to the first uncleanable offset: the active segment, or the
//! first segment younger than `min.compaction.lag.ms`), then rewrite every segment
//! below that point keeping, per key, only the latest record. Original offsets are
//! kept; batches with nothing removed are copied verbatim; others are decoded and
//! re-encoded with their own codec, keeping producer id/epoch/sequence, flags and
//! last offset. Control batches are always kept (transactions rely on them). A
//! producer's last batch is kept as an empty batch if all its records go.
//! Tombstones are dropped once their batch's max timestamp is older than
//! `delete.retention.ms` and they have been through one earlier pass.
//!
//! Swap protocol (crash safe): write `<base>.*.cleaned`, fsync, rename to
//! `.swap` (log file last: its presence commits the swap), rename the replaced
//! segments to `.deleted`, rename the swap files into place. `loader` finishes a
//! committed swap and drops an uncommitted one.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

use crate::batch::{self, BatchHeader, BatchSpan};
use crate::checkpoint::sync_dir;
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::log::{lock, Log};
use crate::segment::{rename_segment_files, LogSegment};

pub struct LogCleaner<'a> {
    log: &'a Arc<Log>,
}

/// Key -> offset of its latest record in the dirty section.
type OffsetMap = HashMap<Bytes, i64>;

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::CorruptMessage(format!("cleaner could not decode a batch: {e}"))
}

impl<'a> LogCleaner<'a> {
    pub fn new(log: &'a Arc<Log>) -> Self {
        LogCleaner { log }
    }

    /// Cleans the log if it is dirty enough (or a record waited past
    /// `max.compaction.lag.ms`). Returns whether it cleaned.
    pub fn clean(&self, now_ms: i64) -> Result<bool, StorageError> {
        let log = self.log;
        let _maintenance = lock(&log.maintenance);
        let config = log.config_arc();
        let segments = log.segments_snapshot();
        let first_dirty = log.cleaner_checkpoint().max(log.log_start_offset());
        let end = cleanable_end(&segments, &config, now_ms);
        let cleanable: Vec<Arc<LogSegment>> = segments
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
        let map = build_offset_map(&cleanable, first_dirty)?;
        for group in group_segments(&cleanable, &config) {
            self.clean_group(&group, &map, first_dirty, &config, now_ms)?;
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
            copy_retained(segment, &cleaned, &filter, config)?;
        }
        cleaned.on_become_inactive()?;
        cleaned.flush()?;
        drop(cleaned);
        rename_segment_files(&log.dir, base, ".cleaned", ".swap")?;
        // The .log.swap rename commits the swap: make it durable first.
        sync_dir(&log.dir)?;
        self.swap_in(group, base, config, now_ms)
    }

    fn producer_last_offsets(&self) -> HashMap<i64, i64> {
        let w = lock(&self.log.writer);
        w.producers
            .entries()
            .map(|e| (e.producer_id, e.last_offset()))
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
    let mut batches = Vec::new();
    segment.for_each_header(0, |position, h| {
        batches.push((position, *h));
        true
    })?;
    for (position, header) in batches {
        f(&header, segment.read_batch(position, &header)?)?;
    }
    Ok(())
}

fn build_offset_map(
    segments: &[Arc<LogSegment>],
    first_dirty: i64,
) -> Result<OffsetMap, StorageError> {
    let mut map = OffsetMap::new();
    let start = crate::log::segment_index_for(segments, first_dirty);
    for segment in &segments[start..] {
        for_each_batch(segment, |h, bytes| {
            if h.is_control() || h.last_offset() < first_dirty || h.record_count == 0 {
                return Ok(());
            }
            let set = RecordBatchDecoder::decode(&mut Bytes::from(bytes)).map_err(corrupt)?;
            for record in set.records {
                if let Some(key) = record.key {
                    map.insert(key, record.offset);
                }
            }
            Ok(())
        })?;
    }
    Ok(map)
}

struct RecordFilter<'a> {
    map: &'a OffsetMap,
    first_dirty: i64,
    config: &'a LogConfig,
    now_ms: i64,
    producer_last_offsets: &'a HashMap<i64, i64>,
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

    fn is_producer_last_batch(&self, header: &BatchHeader) -> bool {
        header.has_producer_id()
            && self.producer_last_offsets.get(&header.producer_id) == Some(&header.last_offset())
    }
}

/// Appends the retained part of every batch of `source` to `target`.
fn copy_retained(
    source: &LogSegment,
    target: &LogSegment,
    filter: &RecordFilter<'_>,
    config: &LogConfig,
) -> Result<(), StorageError> {
    for_each_batch(source, |h, bytes| {
        let retained = if h.is_control() || h.record_count == 0 {
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
