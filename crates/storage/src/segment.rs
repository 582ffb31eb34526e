//! LogSegment: one `.log` file of verbatim batches plus its `.index`, `.timeindex`
//! and `.txnindex`, all named by the 20-digit base offset.
//!
//! Invariants: batches are whole and in offset order; `size` is published (Release)
//! only after the bytes are written, so readers bounded by it never see a partial
//! batch. One writer (the owning `Log`'s writer lock); readers use positional reads
//! on the shared `Arc<File>` and never block the writer. The `.log` is the only file
//! a segment keeps open (as Kafka, whose indexes are mmapped): the indexes open
//! their files per write, flush or cold lookup.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, BatchSpan, HEADER_SIZE, NO_TIMESTAMP};
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::index::{OffsetIndex, OffsetPosition, TimeIndex, TimestampOffset};
use crate::txn_index::TransactionIndex;

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
pub const TXN_INDEX_SUFFIX: &str = "txnindex";
/// All files of a segment, the log file last (so it is renamed last: its presence
/// marks a complete set).
pub const SEGMENT_SUFFIXES: [&str; 4] = [
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
    LOG_SUFFIX,
];

/// `<dir>/<20-digit base offset>.<suffix>`.
pub fn segment_file(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// What an append brings, for the roll decision (Kafka's RollParams).
#[derive(Clone, Copy, Debug)]
pub struct RollParams {
    pub bytes: usize,
    pub max_offset: i64,
    pub max_timestamp: i64,
    pub now_ms: i64,
}

/// A byte range of whole batches inside one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRange {
    pub position: u64,
    pub len: u32,
    /// Offset after the last batch of the range.
    pub next_offset: i64,
}

pub struct LogSegment {
    dir: PathBuf,
    base_offset: i64,
    log: Arc<File>,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    txn_index: TransactionIndex,
    size_bytes: AtomicU64,
    max_timestamp: AtomicI64,
    offset_of_max_timestamp: AtomicI64,
    /// Max timestamp of the first batch: what `segment.ms` is measured from.
    first_batch_timestamp: AtomicI64,
    created_ms: i64,
    roll_jitter_ms: i64,
    bytes_since_last_index_entry: AtomicU64,
}

fn random_jitter_ms(segment_jitter_ms: i64) -> i64 {
    if segment_jitter_ms <= 0 {
        return 0;
    }
    (RandomState::new().hash_one(0u8) % segment_jitter_ms as u64) as i64
}

impl LogSegment {
    /// Creates empty segment files at `base_offset`, replacing leftovers.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> io::Result<Self> {
        Self::create_with_suffix(dir, base_offset, config, now_ms, "")
    }

    /// Like `create`, with an extra suffix on every file name (".cleaned").
    pub fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        extra: &str,
    ) -> io::Result<Self> {
        let path = |s: &str| {
            PathBuf::from(format!(
                "{}{extra}",
                segment_file(dir, base_offset, s).display()
            ))
        };
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path(LOG_SUFFIX))?;
        let offset_index =
            OffsetIndex::create(&path(INDEX_SUFFIX), base_offset, config.segment_index_bytes)?;
        let time_index = TimeIndex::create(
            &path(TIME_INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
        )?;
        let txn_index = TransactionIndex::create(&path(TXN_INDEX_SUFFIX), base_offset)?;
        Ok(Self::assemble(
            dir,
            base_offset,
            log,
            (offset_index, time_index, txn_index),
            config,
            now_ms,
        ))
    }

    fn assemble(
        dir: &Path,
        base_offset: i64,
        log: File,
        (offset_index, time_index, txn_index): (OffsetIndex, TimeIndex, TransactionIndex),
        config: &LogConfig,
        now_ms: i64,
    ) -> Self {
        LogSegment {
            dir: dir.to_path_buf(),
            base_offset,
            log: Arc::new(log),
            offset_index,
            time_index,
            txn_index,
            size_bytes: AtomicU64::new(0),
            max_timestamp: AtomicI64::new(NO_TIMESTAMP),
            offset_of_max_timestamp: AtomicI64::new(-1),
            first_batch_timestamp: AtomicI64::new(NO_TIMESTAMP),
            created_ms: now_ms,
            roll_jitter_ms: random_jitter_ms(config.segment_jitter_ms),
            bytes_since_last_index_entry: AtomicU64::new(0),
        }
    }

    /// Opens existing segment files. Returns the segment and whether its indexes were
    /// loaded intact; if not they are empty and the caller must `recover` it.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> io::Result<(Self, bool)> {
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(segment_file(dir, base_offset, LOG_SUFFIX))?;
        let log_size = log.metadata()?.len();
        let index_path = segment_file(dir, base_offset, INDEX_SUFFIX);
        let time_path = segment_file(dir, base_offset, TIME_INDEX_SUFFIX);
        let max = config.segment_index_bytes;
        let offset_index = OffsetIndex::open(
            &index_path,
            base_offset,
            max,
            OffsetIndex::entries_valid(base_offset, log_size),
        )?;
        let time_index = TimeIndex::open(
            &time_path,
            base_offset,
            max,
            TimeIndex::entries_valid(base_offset),
        )?;
        let txn_path = segment_file(dir, base_offset, TXN_INDEX_SUFFIX);
        let (txn_index, txn_valid) = TransactionIndex::open(&txn_path, base_offset)?;
        let mut intact = offset_index.is_some() && time_index.is_some() && txn_valid;
        let offset_index = match offset_index {
            Some(i) => i,
            None => OffsetIndex::create(&index_path, base_offset, max)?,
        };
        let time_index = match time_index {
            Some(i) => i,
            None => TimeIndex::create(&time_path, base_offset, max)?,
        };
        let segment = Self::assemble(
            dir,
            base_offset,
            log,
            (offset_index, time_index, txn_index),
            config,
            now_ms,
        );
        segment.size_bytes.store(log_size, Ordering::Release);
        if let Some(last) = segment.time_index.last_entry() {
            segment
                .max_timestamp
                .store(last.timestamp, Ordering::Relaxed);
            segment
                .offset_of_max_timestamp
                .store(last.offset, Ordering::Relaxed);
        } else if log_size > 0 {
            // Closed segments always end with a time index entry; without one, rebuild.
            intact = false;
        }
        if intact && log_size > 0 {
            match segment.read_header_at(0, log_size) {
                Ok(Some(h)) => segment
                    .first_batch_timestamp
                    .store(h.max_timestamp, Ordering::Relaxed),
                _ => intact = false,
            }
        }
        if intact && log_size > 0 {
            segment.load_tail_max_timestamp(log_size);
        }
        Ok((segment, intact))
    }

    /// Folds the batches after the last offset index entry into the max timestamp
    /// read from the time index. Every offset index entry is written together with
    /// the time index entry for the max so far, so only this tail (about
    /// `index.interval.bytes`) can hold a larger timestamp, e.g. when the final entry
    /// of a roll or close was never written. Best effort: a damaged tail is left to
    /// the reads that reach it, as before.
    fn load_tail_max_timestamp(&self, log_size: u64) {
        let mut position = self.start_position(i64::MAX, log_size);
        loop {
            match self.read_header_at(position, log_size) {
                Ok(Some(h)) => {
                    if h.max_timestamp > self.max_timestamp.load(Ordering::Relaxed) {
                        self.max_timestamp.store(h.max_timestamp, Ordering::Release);
                        self.offset_of_max_timestamp
                            .store(h.last_offset(), Ordering::Release);
                    }
                    position += h.size_bytes() as u64;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(
                        dir = %self.dir.display(),
                        base_offset = self.base_offset,
                        position,
                        %e,
                        "unreadable batch header while loading the max timestamp"
                    );
                    break;
                }
            }
        }
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes.load(Ordering::Acquire)
    }

    pub fn file(&self) -> &Arc<File> {
        &self.log
    }

    /// The segment's `.txnindex`: aborted transactions whose marker is here.
    pub fn txn_index(&self) -> &TransactionIndex {
        &self.txn_index
    }

    /// Max timestamp of the first batch, or NO_TIMESTAMP if empty.
    pub fn first_batch_timestamp(&self) -> i64 {
        self.first_batch_timestamp.load(Ordering::Relaxed)
    }

    /// Largest batch max timestamp in the segment, or NO_TIMESTAMP.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    /// Timestamp used for time retention: the largest record timestamp, or the file's
    /// modification time when records carry none (Kafka's `largestTimestamp`).
    pub fn largest_timestamp(&self) -> i64 {
        let ts = self.max_timestamp();
        if ts > 0 {
            return ts;
        }
        self.last_modified_ms()
    }

    pub fn last_modified_ms(&self) -> i64 {
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Kafka's `shouldRoll`: size, age (with jitter), index capacity, offset range.
    /// Age is measured in record time (the append's max timestamp minus the first
    /// batch's) when the segment has a timestamp, else in wall time since creation.
    pub fn should_roll(&self, config: &LogConfig, append: &RollParams) -> bool {
        let size = self.size_bytes();
        let first_ts = self.first_batch_timestamp.load(Ordering::Relaxed);
        let waited_ms = if first_ts >= 0 {
            append.max_timestamp.saturating_sub(first_ts)
        } else {
            append.now_ms.saturating_sub(self.created_ms)
        };
        let reached_roll_ms = waited_ms > config.segment_ms - self.roll_jitter_ms;
        size + append.bytes as u64 > config.segment_bytes.max(0) as u64
            || (size > 0 && reached_roll_ms)
            || self.offset_index.is_full()
            || self.time_index.is_full()
            || append.max_offset - self.base_offset > i32::MAX as i64
    }

    /// Writes already-validated batches at the end of the segment and indexes them.
    pub fn append(
        &self,
        records: &[u8],
        spans: &[BatchSpan],
        index_interval_bytes: i32,
    ) -> io::Result<()> {
        let start = self.size_bytes();
        if let Err(e) = crate::seams::write_all_at(&self.log, &self.dir, records, start) {
            // Drop a partial write so a clean reopen cannot mistake it for data.
            let _ = self.log.set_len(start);
            return Err(e);
        }
        if start == 0 {
            if let Some(first) = spans.first() {
                self.first_batch_timestamp
                    .store(first.header.max_timestamp, Ordering::Relaxed);
            }
        }
        self.size_bytes
            .store(start + records.len() as u64, Ordering::Release);
        for span in spans {
            self.index_batch(
                &span.header,
                start + span.position as u64,
                index_interval_bytes,
            )?;
        }
        Ok(())
    }

    fn index_batch(
        &self,
        header: &BatchHeader,
        position: u64,
        index_interval_bytes: i32,
    ) -> io::Result<()> {
        if header.max_timestamp > self.max_timestamp.load(Ordering::Relaxed) {
            self.max_timestamp
                .store(header.max_timestamp, Ordering::Release);
            self.offset_of_max_timestamp
                .store(header.last_offset(), Ordering::Release);
        }
        let since = self.bytes_since_last_index_entry.load(Ordering::Relaxed);
        if since > index_interval_bytes.max(0) as u64 {
            self.offset_index.append(OffsetPosition {
                offset: header.last_offset(),
                position: position as u32,
            })?;
            self.maybe_append_time_index()?;
            self.bytes_since_last_index_entry
                .store(0, Ordering::Relaxed);
        }
        self.bytes_since_last_index_entry
            .fetch_add(header.size_bytes() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Appends (max timestamp so far, its offset) unless the time index already
    /// ends with that timestamp. Returns whether an entry was written.
    fn maybe_append_time_index(&self) -> io::Result<bool> {
        let ts = self.max_timestamp.load(Ordering::Relaxed);
        let last = self.time_index.last_entry();
        if last.is_none_or(|e| ts > e.timestamp) {
            let offset = self.offset_of_max_timestamp.load(Ordering::Relaxed);
            self.time_index.append(TimestampOffset {
                timestamp: ts,
                offset,
            })?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Called when the segment stops being active (roll, close): records the final
    /// max timestamp so a later open can trust the time index (Kafka's
    /// `onBecomeInactiveSegment`).
    pub fn on_become_inactive(&self) -> io::Result<()> {
        if self.size_bytes() > 0 {
            self.maybe_append_time_index()?;
        }
        self.offset_index.make_cold();
        self.time_index.make_cold();
        Ok(())
    }

    /// Clean close of an inactive segment (Kafka's `LogSegment.close`): makes sure
    /// the time index ends with the segment's max timestamp, which a recovery (it
    /// rebuilds the index sparsely) may have left unwritten, and syncs it if it
    /// changed. The active segment goes through `on_become_inactive` instead.
    pub fn close(&self) -> io::Result<()> {
        if self.size_bytes() > 0 && self.maybe_append_time_index()? {
            self.time_index.flush()?;
        }
        self.time_index.make_cold();
        Ok(())
    }

    /// Closed segments loaded at open keep their indexes on disk only.
    pub fn make_indexes_cold(&self) {
        self.offset_index.make_cold();
        self.time_index.make_cold();
    }

    /// Reads the header of the batch at `position` if one fits below `limit`.
    pub fn read_header_at(
        &self,
        position: u64,
        limit: u64,
    ) -> Result<Option<BatchHeader>, StorageError> {
        if position + HEADER_SIZE as u64 > limit {
            return Ok(None);
        }
        let mut buf = [0u8; HEADER_SIZE];
        self.log.read_exact_at(&mut buf, position)?;
        let header = BatchHeader::parse(&buf)?;
        if position + header.size_bytes() as u64 > limit {
            return Err(StorageError::CorruptMessage(format!(
                "batch at position {position} of segment {} runs past its end",
                self.base_offset
            )));
        }
        Ok(Some(header))
    }

    /// The first batch whose last offset is >= `target`, below `limit`.
    pub fn find_batch(
        &self,
        target: i64,
        limit: u64,
    ) -> Result<Option<(u64, BatchHeader)>, StorageError> {
        let mut position = self.start_position(target, limit);
        while let Some(header) = self.read_header_at(position, limit)? {
            if header.last_offset() >= target {
                return Ok(Some((position, header)));
            }
            position += header.size_bytes() as u64;
        }
        Ok(None)
    }

    /// Where to start scanning for `target`: its index entry, checked against the
    /// log (an entry records a batch's last offset at that batch's position), so a
    /// stale or damaged index never makes us parse mid-batch bytes.
    fn start_position(&self, target: i64, limit: u64) -> u64 {
        let entry = self.offset_index.lookup(target);
        let position = entry.position as u64;
        if position == 0 {
            return 0;
        }
        match self.read_header_at(position, limit) {
            Ok(Some(h)) if h.last_offset() == entry.offset => position,
            _ => {
                tracing::warn!(
                    base_offset = self.base_offset,
                    position,
                    "offset index entry does not match the log"
                );
                0
            }
        }
    }

    /// Whole batches from the one containing `start_offset`, at most `max_bytes`
    /// (or the first batch alone when `min_one` and it is larger), none whose last
    /// offset is >= `max_offset`.
    #[cfg(test)]
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: u32,
        max_offset: i64,
        min_one: bool,
    ) -> Result<Option<SegmentRange>, StorageError> {
        let limit = self.size_bytes();
        match self.find_batch(start_offset, limit)? {
            Some((position, first)) => {
                self.read_from(position, &first, limit, max_bytes, max_offset, min_one)
            }
            None => Ok(None),
        }
    }

    /// Like `read`, from the already-located first batch at `start`.
    pub fn read_from(
        &self,
        start: u64,
        first: &BatchHeader,
        limit: u64,
        max_bytes: u32,
        max_offset: i64,
        min_one: bool,
    ) -> Result<Option<SegmentRange>, StorageError> {
        if first.last_offset() >= max_offset {
            return Ok(None);
        }
        let mut end = start + first.size_bytes() as u64;
        if end - start > max_bytes as u64 && !min_one {
            return Ok(None);
        }
        let mut next_offset = first.next_offset();
        while let Some(h) = self.read_header_at(end, limit)? {
            let next_end = end + h.size_bytes() as u64;
            if h.last_offset() >= max_offset || next_end - start > max_bytes as u64 {
                break;
            }
            end = next_end;
            next_offset = h.next_offset();
        }
        let len = u32::try_from(end - start).unwrap_or(u32::MAX);
        Ok(Some(SegmentRange {
            position: start,
            len,
            next_offset,
        }))
    }

    /// Offset index entry position lookup for callers that scan themselves.
    pub fn lookup_position(&self, offset: i64) -> u64 {
        self.offset_index.lookup(offset).position as u64
    }

    /// Offset to start a timestamp search from: after the last indexed offset whose
    /// max timestamp is below `target`.
    pub fn time_lookup_offset(&self, target_timestamp: i64) -> i64 {
        match self.time_index.floor(|e| e.timestamp < target_timestamp) {
            Some(e) => e.offset + 1,
            None => self.base_offset,
        }
    }

    /// Calls `f` with each batch header from `position` to the published end.
    pub fn for_each_header(
        &self,
        mut position: u64,
        mut f: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<(), StorageError> {
        let limit = self.size_bytes();
        while let Some(h) = self.read_header_at(position, limit)? {
            if !f(position, &h) {
                break;
            }
            position += h.size_bytes() as u64;
        }
        Ok(())
    }

    /// Reads the whole batch at `position`.
    pub fn read_batch(&self, position: u64, header: &BatchHeader) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; header.size_bytes()];
        self.log.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Offset after the last batch (the base offset if empty).
    pub fn read_next_offset(&self) -> Result<i64, StorageError> {
        let mut next = self.base_offset;
        let start = self
            .offset_index
            .last_entry()
            .map_or(0, |e| e.position as u64);
        self.for_each_header(start, |_, h| {
            next = h.next_offset();
            true
        })?;
        Ok(next)
    }

    /// Re-reads every batch, checking structure, CRC and offset order, rebuilds the
    /// indexes, and truncates at the first bad or torn batch. `on_batch` sees each
    /// valid header. Returns the number of bytes truncated.
    pub fn recover(
        &self,
        index_interval_bytes: i32,
        mut on_batch: impl FnMut(&BatchHeader),
    ) -> Result<u64, StorageError> {
        let file_size = self.log.metadata()?.len();
        self.reset_indexes()?;
        let mut position = 0u64;
        let mut next_offset = self.base_offset;
        let mut buf = Vec::new();
        let mut index_full = false;
        while let Some(header) = self.recover_one(position, file_size, next_offset, &mut buf)? {
            if position == 0 {
                self.first_batch_timestamp
                    .store(header.max_timestamp, Ordering::Relaxed);
            }
            let indexed = self.index_batch(&header, position, index_interval_bytes);
            self.tolerate_full_disk(indexed, &mut index_full)?;
            on_batch(&header);
            next_offset = header.next_offset();
            position += header.size_bytes() as u64;
        }
        if position < file_size {
            tracing::warn!(
                dir = %self.dir.display(),
                base_offset = self.base_offset,
                position,
                "truncating invalid bytes at the end of segment"
            );
            self.log.set_len(position)?;
        }
        self.size_bytes.store(position, Ordering::Release);
        // Like Kafka's recover: the rebuilt time index ends with the max timestamp,
        // so it holds even if this segment is never active again.
        if position > 0 {
            let indexed = self.maybe_append_time_index().map(drop);
            self.tolerate_full_disk(indexed, &mut index_full)?;
        }
        Ok(file_size - position)
    }

    /// During recovery an index entry that does not fit on a full disk is skipped: the
    /// indexes are sparse, so a missing entry only lengthens a scan, and the node must be
    /// able to start on a full disk so that an operator can free space. Logged once.
    fn tolerate_full_disk(&self, result: io::Result<()>, warned: &mut bool) -> io::Result<()> {
        match result {
            Err(e) if e.kind() == io::ErrorKind::StorageFull => {
                if !std::mem::replace(warned, true) {
                    tracing::warn!(
                        dir = %self.dir.display(),
                        base_offset = self.base_offset,
                        "disk full: index entries skipped while recovering the segment"
                    );
                }
                Ok(())
            }
            other => other,
        }
    }

    /// One valid batch at `position`, or None where the valid prefix ends.
    fn recover_one(
        &self,
        position: u64,
        file_size: u64,
        next_offset: i64,
        buf: &mut Vec<u8>,
    ) -> Result<Option<BatchHeader>, StorageError> {
        let header = match self.read_header_at(position, file_size) {
            Ok(Some(h)) => h,
            Ok(None) | Err(StorageError::CorruptMessage(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let offsets_ok = header.base_offset >= next_offset
            && header.last_offset_delta >= 0
            && header.last_offset() - self.base_offset <= i32::MAX as i64;
        if !offsets_ok {
            return Ok(None);
        }
        buf.resize(header.size_bytes(), 0);
        self.log.read_exact_at(buf, position)?;
        Ok(batch::validate_batch(buf).ok())
    }

    fn reset_indexes(&self) -> io::Result<()> {
        self.offset_index.truncate_while(|_| false)?;
        self.time_index.truncate_while(|_| false)?;
        self.max_timestamp.store(NO_TIMESTAMP, Ordering::Release);
        self.offset_of_max_timestamp.store(-1, Ordering::Release);
        self.bytes_since_last_index_entry
            .store(0, Ordering::Relaxed);
        self.first_batch_timestamp
            .store(NO_TIMESTAMP, Ordering::Relaxed);
        Ok(())
    }

    /// Removes every batch whose last offset is >= `offset` (whole batches, like
    /// Kafka) and rebuilds in-memory stats. Returns the bytes removed.
    pub fn truncate_to(&self, offset: i64, index_interval_bytes: i32) -> Result<u64, StorageError> {
        let size = self.size_bytes();
        let position = match self.find_batch(offset, size)? {
            Some((position, _)) => position,
            None => return Ok(0),
        };
        self.log.set_len(position)?;
        self.size_bytes.store(position, Ordering::Release);
        self.txn_index.truncate_to(offset)?;
        // Rebuilding indexes from headers is cheap next to a follower's refetch.
        self.recover(index_interval_bytes, |_| {})?;
        Ok(size - position)
    }

    pub fn flush(&self) -> io::Result<()> {
        crate::seams::sync_data(&self.log, &self.dir)?;
        self.offset_index.flush()?;
        self.txn_index.flush()?;
        self.time_index.flush()
    }

    /// Renames every file of the segment to `<name><suffix>` (e.g. ".deleted").
    pub fn rename_files(&self, suffix: &str) -> io::Result<Vec<PathBuf>> {
        rename_segment_files(&self.dir, self.base_offset, "", suffix)
    }
}

/// Renames the files of segment `base_offset` from `<name><from>` to `<name><to>`,
/// skipping missing ones. Returns the new paths.
pub fn rename_segment_files(
    dir: &Path,
    base_offset: i64,
    from: &str,
    to: &str,
) -> io::Result<Vec<PathBuf>> {
    let mut renamed = Vec::new();
    for suffix in SEGMENT_SUFFIXES {
        let base = segment_file(dir, base_offset, suffix).display().to_string();
        let (src, dst) = (
            PathBuf::from(format!("{base}{from}")),
            PathBuf::from(format!("{base}{to}")),
        );
        match std::fs::rename(&src, &dst) {
            Ok(()) => renamed.push(dst),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(renamed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_util::simple_batch;
    use crate::batch::{set_base_offset, split_batches};
    use crate::index::IndexEntry;

    fn append_batch(seg: &LogSegment, base: i64, n: usize, ts: i64) {
        let mut b = simple_batch(n, 100, ts);
        set_base_offset(&mut b, base);
        let spans = split_batches(&b).unwrap();
        seg.append(&b, &spans, 0).unwrap();
    }

    #[test]
    fn append_read_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::default();
        let seg = LogSegment::create(dir.path(), 0, &config, 0).unwrap();
        for i in 0..10 {
            append_batch(&seg, i * 2, 2, 1000 + i);
        }
        let all = seg.read(0, u32::MAX, i64::MAX, false).unwrap().unwrap();
        assert_eq!(all.len as u64, seg.size_bytes());
        let from_5 = seg.read(5, u32::MAX, 9, false).unwrap().unwrap();
        let (pos4, _) = seg.find_batch(5, seg.size_bytes()).unwrap().unwrap();
        assert_eq!(from_5.position, pos4);
        // Batches [4,5], [6,7] end below 9; [8,9] does not.
        let one = seg.size_bytes() / 10;
        assert_eq!(from_5.len as u64, 2 * one);
        assert!(seg.read(0, 10, i64::MAX, false).unwrap().is_none());
        assert_eq!(
            seg.read(0, 10, i64::MAX, true).unwrap().unwrap().len as u64,
            one
        );
        seg.on_become_inactive().unwrap();
        drop(seg);
        let (seg, intact) = LogSegment::open(dir.path(), 0, &config, 0).unwrap();
        assert!(intact);
        assert_eq!(seg.read_next_offset().unwrap(), 20);
        assert_eq!(seg.max_timestamp(), 1010);
    }

    /// A sparse index (one entry per ~2 batches) whose last entry is behind the
    /// segment's largest timestamp, as a recovery leaves it.
    fn segment_with_rising_timestamps(dir: &Path, config: &LogConfig) -> LogSegment {
        let seg = LogSegment::create(dir, 0, config, 0).unwrap();
        for i in 0..10 {
            let mut b = simple_batch(1, 100, 1000 + i);
            set_base_offset(&mut b, i);
            let spans = split_batches(&b).unwrap();
            seg.append(&b, &spans, b.len() as i32).unwrap();
        }
        seg
    }

    fn time_index_last(dir: &Path) -> TimestampOffset {
        let path = segment_file(dir, 0, TIME_INDEX_SUFFIX);
        let bytes = std::fs::read(path).unwrap();
        TimestampOffset::decode(0, &bytes[bytes.len() - TimestampOffset::SIZE..])
    }

    #[test]
    fn recover_ends_the_time_index_with_the_max_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::default();
        let seg = segment_with_rising_timestamps(dir.path(), &config);
        seg.on_become_inactive().unwrap();
        seg.recover(seg.size_bytes() as i32 / 5, |_| {}).unwrap();
        let last = TimestampOffset {
            timestamp: 1009,
            offset: 9,
        };
        assert_eq!(time_index_last(dir.path()), last);
        drop(seg);
        let (seg, intact) = LogSegment::open(dir.path(), 0, &config, 0).unwrap();
        assert!(intact);
        assert_eq!(seg.max_timestamp(), 1009);
    }

    #[test]
    fn open_finds_a_max_timestamp_missing_from_the_time_index_and_close_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::default();
        let seg = segment_with_rising_timestamps(dir.path(), &config);
        // No final entry: the time index stops at the last offset index entry.
        let stale = time_index_last(dir.path());
        assert!(stale.timestamp < 1009, "{stale:?}");
        drop(seg);
        let (seg, intact) = LogSegment::open(dir.path(), 0, &config, 0).unwrap();
        assert!(intact);
        assert_eq!(seg.max_timestamp(), 1009);
        seg.make_indexes_cold();
        seg.close().unwrap();
        assert_eq!(
            time_index_last(dir.path()),
            TimestampOffset {
                timestamp: 1009,
                offset: 9
            }
        );
        // Closing again adds nothing.
        let len = std::fs::metadata(segment_file(dir.path(), 0, TIME_INDEX_SUFFIX))
            .unwrap()
            .len();
        seg.close().unwrap();
        let len_again = std::fs::metadata(segment_file(dir.path(), 0, TIME_INDEX_SUFFIX))
            .unwrap()
            .len();
        assert_eq!(len, len_again);
    }

    #[test]
    fn recover_truncates_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::default();
        let seg = LogSegment::create(dir.path(), 0, &config, 0).unwrap();
        for i in 0..3 {
            append_batch(&seg, i, 1, 1000);
        }
        let full = seg.size_bytes();
        seg.file().set_len(full - 3).unwrap();
        let truncated = seg.recover(0, |_| {}).unwrap();
        assert_eq!(seg.read_next_offset().unwrap(), 2);
        assert_eq!(truncated, full / 3 - 3);
        seg.truncate_to(1, 0).unwrap();
        assert_eq!(seg.read_next_offset().unwrap(), 1);
    }

    #[test]
    fn damaged_index_entries_fall_back_to_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig::default();
        let seg = LogSegment::create(dir.path(), 0, &config, 0).unwrap();
        for i in 0..10 {
            append_batch(&seg, i * 2, 2, 1000);
        }
        seg.on_become_inactive().unwrap();
        drop(seg);
        // Shift every position by one byte: still sorted and in range, but wrong.
        let path = segment_file(dir.path(), 0, INDEX_SUFFIX);
        let mut bytes = std::fs::read(&path).unwrap();
        for entry in bytes.chunks_exact_mut(8) {
            let p = u32::from_be_bytes(entry[4..8].try_into().unwrap()) + 1;
            entry[4..8].copy_from_slice(&p.to_be_bytes());
        }
        std::fs::write(&path, bytes).unwrap();
        let (seg, intact) = LogSegment::open(dir.path(), 0, &config, 0).unwrap();
        assert!(intact);
        let (_, h) = seg.find_batch(13, seg.size_bytes()).unwrap().unwrap();
        assert_eq!((h.base_offset, h.last_offset()), (12, 13));
    }
}
