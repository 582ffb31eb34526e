//! Opening a partition log: leftover cleanup, swap completion, segment loading and
//! recovery, producer state rebuild (Kafka's LogLoader).
//!
//! After an unclean shutdown every segment that may hold data past the recovery
//! point is re-read: CRC and structure are verified, indexes rebuilt, and the log is
//! truncated at the first torn or corrupt batch (later segments are deleted), so the
//! result is always a prefix of what was appended.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::{Arc, Mutex, RwLock};

use crate::batch::{BatchHeader, HEADER_SIZE};
use crate::checkpoint::{read_partition_metadata, write_partition_metadata};
use crate::config::LogConfig;
use crate::epoch_cache::LeaderEpochFileCache;
use crate::error::StorageError;
use crate::log::{segment_index_for, Log, LogWriter};
use crate::producer_state::ProducerStateManager;
use crate::records::end_txn_marker;
use crate::segment::{rename_segment_files, LogSegment, LOG_SUFFIX};
use crate::txn_index::AbortedTxn;
use crate::{TopicPartition, Uuid};

/// What the log manager knows about a log from its root checkpoints.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LoadParams {
    pub recovery_point: Option<i64>,
    pub log_start_offset: Option<i64>,
    pub cleaner_checkpoint: Option<i64>,
    pub high_watermark: Option<i64>,
    pub clean_shutdown: bool,
    pub now_ms: i64,
}

impl Log {
    pub(crate) fn open(
        dir: &Path,
        tp: TopicPartition,
        topic_id: Option<Uuid>,
        config: LogConfig,
        params: LoadParams,
    ) -> Result<Arc<Log>, StorageError> {
        fs::create_dir_all(dir)?;
        let topic_id = resolve_topic_id(dir, topic_id)?;
        remove_leftovers(dir)?;
        complete_swaps(dir)?;
        let mut epochs = LeaderEpochFileCache::load(dir);
        let (segments, txn_rebuild) = load_segments(dir, &config, &params, &mut epochs)?;
        let last = segments
            .last()
            .expect("load_segments returns at least one segment");
        let log_end_offset = last.read_next_offset()?;
        let first_base = segments[0].base_offset();
        let log_start_offset = params
            .log_start_offset
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end_offset);
        epochs.truncate_from_end(log_end_offset)?;
        epochs.truncate_from_start(log_start_offset)?;
        let mut producers = ProducerStateManager::new(dir);
        rebuild_producer_state(
            &mut producers,
            &segments,
            log_start_offset,
            log_end_offset,
            &txn_rebuild,
        )?;
        let recovery_point = match params.clean_shutdown {
            true => log_end_offset,
            false => params.recovery_point.unwrap_or(0).min(log_end_offset),
        };
        let high_watermark = params
            .high_watermark
            .unwrap_or(log_start_offset)
            .clamp(log_start_offset, log_end_offset);
        let cleaner_checkpoint = params
            .cleaner_checkpoint
            .unwrap_or(log_start_offset)
            .clamp(log_start_offset, log_end_offset);
        producers.on_high_watermark_updated(high_watermark);
        let first_unstable_offset = producers
            .first_unstable_offset()
            .map_or(-1, |o| o.max(log_start_offset));
        Ok(Arc::new(Log {
            tp,
            dir: dir.to_path_buf(),
            topic_id: RwLock::new(topic_id),
            config: RwLock::new(Arc::new(config)),
            segments: RwLock::new(Arc::new(segments)),
            writer: Mutex::new(LogWriter { producers }),
            maintenance: Mutex::new(()),
            epochs: RwLock::new(epochs),
            log_start_offset: AtomicI64::new(log_start_offset),
            log_end_offset: AtomicI64::new(log_end_offset),
            high_watermark: AtomicI64::new(high_watermark),
            first_unstable_offset: AtomicI64::new(first_unstable_offset),
            recovery_point: AtomicI64::new(recovery_point),
            cleaner_checkpoint: AtomicI64::new(cleaner_checkpoint),
            unflushed_messages: AtomicI64::new(0),
            last_flush_ms: AtomicI64::new(params.now_ms),
            pending_deletes: Mutex::new(Vec::new()),
            deleted: AtomicBool::new(false),
            offline: AtomicBool::new(false),
            reads: Default::default(),
        }))
    }
}

/// The topic id in `partition.metadata`, written from `given` when absent.
fn resolve_topic_id(dir: &Path, given: Option<Uuid>) -> Result<Option<Uuid>, StorageError> {
    let stored = match read_partition_metadata(dir) {
        Ok(id) => id,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => None,
        Err(e) => return Err(e.into()),
    };
    match (stored, given) {
        (Some(stored), Some(given)) if stored != given => {
            tracing::warn!(dir = %dir.display(), %stored, %given, "partition.metadata holds another topic id; keeping it");
            Ok(Some(stored))
        }
        (Some(stored), _) => Ok(Some(stored)),
        (None, Some(given)) => {
            write_partition_metadata(dir, given)?;
            Ok(Some(given))
        }
        (None, None) => Ok(None),
    }
}

/// Removes files of interrupted operations: `.deleted` (pending deletion), `.cleaned`
/// (unfinished cleaning), `.tmp` (unfinished checkpoint writes).
fn remove_leftovers(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".deleted") || name.ends_with(".cleaned") || name.ends_with(".tmp") {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn file_base_offsets(dir: &Path, suffix: &str) -> io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(suffix) {
            if stem.len() == 20 {
                if let Ok(base) = stem.parse::<i64>() {
                    bases.push(base);
                }
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

/// Finishes a cleaner swap interrupted by a crash. `<base>.log.swap` is renamed into
/// place last, so its presence means the swap set is complete: segments it replaces
/// (bases within its offset range) are deleted and the swap files renamed. Swap
/// index files without a `.log.swap` belong to an incomplete set and are dropped.
fn complete_swaps(dir: &Path) -> Result<(), StorageError> {
    let swapped_logs = file_base_offsets(dir, ".log.swap")?;
    for base in &swapped_logs {
        let swap_log = dir.join(format!("{base:020}.log.swap"));
        let last_offset = scan_last_offset(&swap_log)?.unwrap_or(*base);
        for old in file_base_offsets(dir, ".log")? {
            if old >= *base && old <= last_offset {
                for path in rename_segment_files(dir, old, "", ".deleted")? {
                    fs::remove_file(path)?;
                }
            }
        }
        rename_segment_files(dir, *base, ".swap", "")?;
    }
    for suffix in [".index.swap", ".timeindex.swap", ".txnindex.swap"] {
        for base in file_base_offsets(dir, suffix)? {
            if !swapped_logs.contains(&base) {
                fs::remove_file(dir.join(format!("{base:020}{suffix}")))?;
            }
        }
    }
    Ok(())
}

/// Last offset of the valid batches in a log file (headers only).
fn scan_last_offset(path: &Path) -> io::Result<Option<i64>> {
    use std::os::unix::fs::FileExt;
    let file = fs::File::open(path)?;
    let size = file.metadata()?.len();
    let (mut position, mut last) = (0u64, None);
    let mut buf = [0u8; HEADER_SIZE];
    while position + HEADER_SIZE as u64 <= size {
        file.read_exact_at(&mut buf, position)?;
        let Ok(h) = BatchHeader::parse(&buf) else {
            break;
        };
        position += h.size_bytes() as u64;
        if position > size {
            break;
        }
        last = Some(h.last_offset());
    }
    Ok(last)
}

/// Opens every segment, recovering those that may hold unflushed data or whose
/// indexes are missing or corrupt. Also returns the base offsets of the recovered
/// segments, whose transaction indexes were emptied for the producer-state replay
/// to rebuild.
fn load_segments(
    dir: &Path,
    config: &LogConfig,
    params: &LoadParams,
    epochs: &mut LeaderEpochFileCache,
) -> Result<(Vec<Arc<LogSegment>>, Vec<i64>), StorageError> {
    let bases = file_base_offsets(dir, &format!(".{LOG_SUFFIX}"))?;
    let recovery_point = params.recovery_point.unwrap_or(0);
    let mut segments: Vec<Arc<LogSegment>> = Vec::new();
    let mut next_offset = i64::MIN;
    let mut txn_rebuild = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        if base < next_offset {
            tracing::warn!(dir = %dir.display(), base, "deleting segment that overlaps its predecessor");
            delete_segment_files(dir, base)?;
            continue;
        }
        let (segment, intact) = LogSegment::open(dir, base, config, params.now_ms)?;
        let next_base = bases.get(i + 1).copied();
        let unflushed = !params.clean_shutdown && next_base.is_none_or(|n| n > recovery_point);
        let mut truncated = 0;
        if !intact || unflushed {
            segment.txn_index().reset()?;
            txn_rebuild.push(base);
            truncated = segment.recover(config.index_interval_bytes, |h| {
                if let Err(e) = epochs.assign(h.partition_leader_epoch, h.base_offset) {
                    tracing::warn!(%e, "could not persist leader epoch during recovery");
                }
            })?;
        }
        next_offset = segment.read_next_offset()?;
        if next_base.is_some() && truncated == 0 {
            segment.make_indexes_cold();
        }
        segments.push(Arc::new(segment));
        if truncated > 0 {
            // Everything after a torn or corrupt batch is not a prefix of the log.
            for &later in &bases[i + 1..] {
                delete_segment_files(dir, later)?;
            }
            break;
        }
    }
    if segments.is_empty() {
        let base = params.log_start_offset.unwrap_or(0).max(0);
        segments.push(Arc::new(LogSegment::create(
            dir,
            base,
            config,
            params.now_ms,
        )?));
    }
    Ok((segments, txn_rebuild))
}

fn delete_segment_files(dir: &Path, base: i64) -> io::Result<()> {
    for path in rename_segment_files(dir, base, "", ".deleted")? {
        fs::remove_file(path)?;
    }
    Ok(())
}

/// Loads the newest usable snapshot and replays the batches after it. The replay
/// starts at or before the first segment of `txn_rebuild` (segments whose
/// transaction index was emptied by recovery) and writes their aborted
/// transactions back, as Kafka's segment recovery does.
pub(crate) fn rebuild_producer_state(
    producers: &mut ProducerStateManager,
    segments: &[Arc<LogSegment>],
    log_start_offset: i64,
    log_end_offset: i64,
    txn_rebuild: &[i64],
) -> Result<(), StorageError> {
    let max_start = txn_rebuild.first().copied().unwrap_or(log_end_offset);
    let start =
        match producers.load_snapshot_at_or_before(log_start_offset, log_end_offset, max_start)? {
            Some(offset) => offset,
            None => {
                producers.reset_to(log_start_offset);
                log_start_offset
            }
        };
    for segment in &segments[segment_index_for(segments, start)..] {
        let rebuild_index = txn_rebuild.contains(&segment.base_offset());
        let mut failure = None;
        segment.for_each_header(segment.lookup_position(start), |position, h| {
            if h.last_offset() < start {
                return true;
            }
            match replay_batch(producers, segment, position, h, rebuild_index) {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    producers.truncate_head(log_start_offset);
    producers.set_map_end_offset(log_end_offset);
    Ok(())
}

/// Replays one batch; a marker that closes a transaction completes it, and an
/// aborted one goes to the segment's transaction index when it is being rebuilt.
fn replay_batch(
    producers: &mut ProducerStateManager,
    segment: &LogSegment,
    position: u64,
    h: &BatchHeader,
    rebuild_index: bool,
) -> Result<(), StorageError> {
    let marker = if h.is_control() && h.has_producer_id() {
        let bytes = segment.read_batch(position, h)?;
        // Recovery never fails on a bad marker: it is replayed as an empty one.
        end_txn_marker(&bytes, h).ok().flatten()
    } else {
        None
    };
    let Some(txn) = producers.replay(h, marker.as_ref()) else {
        return Ok(());
    };
    if txn.is_aborted && rebuild_index {
        segment.txn_index().append(&AbortedTxn {
            producer_id: txn.producer_id,
            first_offset: txn.first_offset,
            last_offset: txn.last_offset,
            last_stable_offset: producers.last_stable_offset_after(&txn),
        })?;
    }
    producers.complete_txn(&txn);
    Ok(())
}
