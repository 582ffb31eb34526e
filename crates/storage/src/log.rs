//! Log: one partition's segments, producer state and leader epochs.
//!
//! Model: one writer at a time (append, roll, truncate, retention and cleaner swaps
//! take `writer`), many readers. Readers take an `Arc` snapshot of the segment list,
//! read the published log end offset (stored only after bytes and indexes are
//! written) and use positional reads, so they never wait on an append.
//! Files owned: everything in `<log dir>/<topic>-<partition>/`.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::batch::{self, BatchHeader, BatchSpan};
use crate::config::{LogConfig, TimestampType};
use crate::epoch_cache::LeaderEpochFileCache;
use crate::error::StorageError;
use crate::producer_state::{
    CompletedTxn, ProducerAppendInfo, ProducerStateEntry, ProducerStateManager, VerificationGuard,
};
use crate::records::{end_txn_marker, EndTxnMarker};
use crate::segment::{LogSegment, RollParams};
use crate::txn_index::AbortedTxn;
use crate::validator::{recompress_if_needed, LogValidator};
use crate::{TopicPartition, Uuid};

/// Who is appending (Kafka's AppendOrigin): changes which producer-state checks apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOrigin {
    Client,
    Coordinator,
    Replication,
}

/// Result of an append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// -1 unless the topic uses LogAppendTime.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub max_timestamp: i64,
    pub record_count: u32,
    pub valid_bytes: usize,
    /// Idempotent duplicate: offsets are the original batch's, nothing appended.
    pub duplicate: bool,
}

/// A byte range of one segment file holding whole batches only.
#[derive(Clone, Debug)]
pub struct FileSlice {
    pub file: Arc<std::fs::File>,
    pub position: u64,
    pub len: u32,
}

/// Result of a read: whole batches as file ranges.
#[derive(Clone, Debug, Default)]
pub struct FetchDataInfo {
    pub slices: Vec<FileSlice>,
    pub total_bytes: u32,
}

impl FetchDataInfo {
    /// Copies the slices into one buffer.
    pub fn read_to_bytes(&self) -> std::io::Result<bytes::Bytes> {
        let mut buf = vec![0u8; self.total_bytes as usize];
        let mut at = 0;
        for slice in &self.slices {
            let end = at + slice.len as usize;
            slice
                .file
                .read_exact_at(&mut buf[at..end], slice.position)?;
            at = end;
        }
        Ok(bytes::Bytes::from(buf))
    }

    pub fn is_empty(&self) -> bool {
        self.total_bytes == 0
    }
}

/// Where an offset lies in the log: the segment and the byte position of the batch that
/// holds it, or the segment's end for the next offset to be written (Kafka's
/// `LogOffsetMetadata`). Lets a waiting fetch count the bytes that arrived without reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOffsetMetadata {
    pub offset: i64,
    pub segment_base_offset: i64,
    pub position: u64,
}

impl LogOffsetMetadata {
    /// Bytes from `self` up to `end` when both lie in one segment; `None` when they do not
    /// (a roll or a truncation happened in between, and the caller should just read).
    pub fn bytes_until(&self, end: &LogOffsetMetadata) -> Option<u64> {
        (self.segment_base_offset == end.segment_base_offset)
            .then(|| end.position.saturating_sub(self.position))
    }
}

/// ListOffsets answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

/// OffsetForLeaderEpoch answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEndOffset {
    pub leader_epoch: i32,
    pub end_offset: i64,
}

/// ListOffsets sentinel timestamps.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;

pub(crate) type Segments = Arc<Vec<Arc<LogSegment>>>;

/// State only the writer touches.
pub(crate) struct LogWriter {
    pub producers: ProducerStateManager,
}

/// Files renamed `.deleted`, removed once `due_ms` passes.
pub(crate) struct PendingDelete {
    pub paths: Vec<PathBuf>,
    pub due_ms: i64,
}

/// One partition log. Send + Sync; shared as `Arc<Log>`.
pub struct Log {
    pub(crate) tp: TopicPartition,
    pub(crate) dir: PathBuf,
    pub(crate) topic_id: RwLock<Option<Uuid>>,
    pub(crate) config: RwLock<Arc<LogConfig>>,
    pub(crate) segments: RwLock<Segments>,
    pub(crate) writer: Mutex<LogWriter>,
    /// Serialises cleaning with retention and truncation (rare, slow operations).
    pub(crate) maintenance: Mutex<()>,
    pub(crate) epochs: RwLock<LeaderEpochFileCache>,
    pub(crate) log_start_offset: AtomicI64,
    pub(crate) log_end_offset: AtomicI64,
    pub(crate) high_watermark: AtomicI64,
    /// First offset of the oldest open (or not yet replicated) transaction, -1 if
    /// none; written under the writer lock.
    pub(crate) first_unstable_offset: AtomicI64,
    pub(crate) recovery_point: AtomicI64,
    /// First offset not yet compacted (Kafka's cleaner checkpoint).
    pub(crate) cleaner_checkpoint: AtomicI64,
    pub(crate) unflushed_messages: AtomicI64,
    pub(crate) last_flush_ms: AtomicI64,
    pub(crate) pending_deletes: Mutex<Vec<PendingDelete>>,
    pub(crate) deleted: AtomicBool,
    /// Set by the first I/O failure: the files may hold a torn write, so the log refuses
    /// appends and reads until a restart recovers it (Kafka takes the log dir offline).
    pub(crate) offline: AtomicBool,
    /// Reads served ([`Log::read`], [`Log::read_committed`]): lets tests check that waiting
    /// fetches are completed from offsets, not by reading.
    pub(crate) reads: AtomicU64,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Index of the segment that would hold `offset`: the last with base <= offset.
pub(crate) fn segment_index_for(segments: &[Arc<LogSegment>], offset: i64) -> usize {
    segments
        .partition_point(|s| s.base_offset() <= offset)
        .saturating_sub(1)
}

impl Log {
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn topic_id(&self) -> Option<Uuid> {
        *self.topic_id.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the topic id of a log whose `partition.metadata` was missing.
    pub(crate) fn ensure_topic_id(&self, topic_id: Uuid) -> Result<(), StorageError> {
        let mut current = self.topic_id.write().unwrap_or_else(|e| e.into_inner());
        if current.is_none() {
            crate::checkpoint::write_partition_metadata(&self.dir, topic_id)?;
            *current = Some(topic_id);
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        (*self.config_arc()).clone()
    }

    /// `min.insync.replicas`, without copying the whole config (read on every high
    /// watermark move).
    pub fn min_insync_replicas(&self) -> i32 {
        self.config_arc().min_insync_replicas
    }

    pub(crate) fn config_arc(&self) -> Arc<LogConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn update_config(&self, config: LogConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    pub(crate) fn segments_snapshot(&self) -> Segments {
        self.segments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn publish_segments(&self, segments: Vec<Arc<LogSegment>>) {
        *self.segments.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(segments);
    }

    pub(crate) fn active_segment(&self) -> Arc<LogSegment> {
        let segments = self.segments_snapshot();
        segments
            .last()
            .expect("a log always has an active segment")
            .clone()
    }

    fn check_not_deleted(&self) -> Result<(), StorageError> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(StorageError::LogDirNotFound(format!(
                "log {} was deleted",
                self.tp
            )));
        }
        self.check_online()
    }

    fn check_online(&self) -> Result<(), StorageError> {
        if self.is_offline() {
            return Err(StorageError::KafkaStorage(std::io::Error::other(format!(
                "log {} is offline after a storage error",
                self.tp
            ))));
        }
        Ok(())
    }

    /// Whether an I/O failure took this log offline.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// Takes the log offline on an I/O failure (logged once, with the partition);
    /// other errors pass through.
    pub(crate) fn offline_on_io_error<T>(
        &self,
        result: Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        if let Err(e @ StorageError::KafkaStorage(_)) = &result {
            if !self.offline.swap(true, Ordering::AcqRel) {
                tracing::error!(tp = %self.tp, dir = %self.dir.display(), %e, "storage error: log is now offline");
            }
        }
        result
    }

    /// Validates and appends one produce request's batches as leader. Atomic: every
    /// batch is appended or none.
    pub fn append_as_leader(
        &self,
        records: &mut [u8],
        leader_epoch: i32,
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<LogAppendInfo, StorageError> {
        let ctx = AppendContext {
            leader_epoch,
            origin,
            now_ms,
            guard: None,
        };
        self.append_leader(records, ctx)
    }

    /// `append_as_leader` with KIP-890 transaction verification (Kafka's
    /// `transaction.partition.verification.enable`): a transactional batch that
    /// would open a transaction must carry the producer's current verification
    /// guard (from `maybe_start_transaction_verification`, after the coordinator
    /// confirmed the partition is in the transaction), else INVALID_TXN_STATE.
    pub fn append_as_leader_verified(
        &self,
        records: &mut [u8],
        leader_epoch: i32,
        origin: AppendOrigin,
        now_ms: i64,
        guard: VerificationGuard,
    ) -> Result<LogAppendInfo, StorageError> {
        let ctx = AppendContext {
            leader_epoch,
            origin,
            now_ms,
            guard: Some(guard),
        };
        self.append_leader(records, ctx)
    }

    fn append_leader(
        &self,
        records: &mut [u8],
        ctx: AppendContext,
    ) -> Result<LogAppendInfo, StorageError> {
        self.check_online()?;
        let config = self.config_arc();
        let spans = batch::split_batches(records)?;
        LogValidator {
            config: &config,
            origin: ctx.origin,
            now_ms: ctx.now_ms,
        }
        .validate(records, &spans)?;
        if let Some(mut converted) = recompress_if_needed(records, &spans, config.compression_type)?
        {
            // The topic's codec differs from the producer's: append the re-encoded copy.
            let spans = batch::split_batches(&converted)?;
            let appended = self.append_validated(&mut converted, spans, ctx, &config);
            return self.offline_on_io_error(appended);
        }
        let appended = self.append_validated(records, spans, ctx, &config);
        self.offline_on_io_error(appended)
    }

    fn append_validated(
        &self,
        records: &mut [u8],
        mut spans: Vec<BatchSpan>,
        ctx: AppendContext,
        config: &LogConfig,
    ) -> Result<LogAppendInfo, StorageError> {
        let AppendContext {
            leader_epoch,
            origin,
            now_ms,
            guard,
        } = ctx;
        let mut w = lock(&self.writer);
        self.check_not_deleted()?;
        if origin == AppendOrigin::Client {
            if let Some(info) = self.find_duplicate(&w, &spans) {
                return Ok(info);
            }
        }
        let append_time = config.message_timestamp_type == TimestampType::LogAppendTime;
        let mut next_offset = self.log_end_offset();
        for span in &mut spans {
            let bytes = &mut records[span.position..span.position + span.header.size_bytes()];
            batch::set_base_offset(bytes, next_offset);
            batch::set_partition_leader_epoch(bytes, leader_epoch);
            if append_time {
                batch::set_log_append_time(bytes, now_ms);
            }
            span.header = BatchHeader::parse(bytes)?;
            next_offset = span.header.next_offset();
        }
        if let Some(guard) = guard {
            if origin != AppendOrigin::Replication {
                check_verified(&w.producers, &spans, guard)?;
            }
        }
        let markers = parse_markers(records, &spans)?;
        let mut producer_info = ProducerAppendInfo::default();
        for (span, marker) in spans.iter().zip(&markers) {
            w.producers
                .prepare_batch(&mut producer_info, &span.header, marker.as_ref(), origin)?;
        }
        let segment = self.append_locked(&mut w, records, &spans, config, now_ms)?;
        let completed = w.producers.commit(producer_info, next_offset);
        self.assign_epoch(leader_epoch, spans[0].header.base_offset);
        self.complete_txns(&mut w, &segment, &completed)?;
        Ok(self.append_info(&spans, records.len(), append_time.then_some(now_ms)))
    }

    /// Writes the aborted ones of `completed` to the segment holding their markers
    /// (with the LSO right after each), then marks them complete (Kafka's order: a
    /// failed index write leaves the transaction open, so the LSO cannot pass it).
    fn complete_txns(
        &self,
        w: &mut LogWriter,
        segment: &LogSegment,
        completed: &[CompletedTxn],
    ) -> Result<(), StorageError> {
        let mut result = Ok(());
        for txn in completed {
            if txn.is_aborted {
                let entry = AbortedTxn {
                    producer_id: txn.producer_id,
                    first_offset: txn.first_offset,
                    last_offset: txn.last_offset,
                    last_stable_offset: w.producers.last_stable_offset_after(txn),
                };
                if let Err(e) = segment.txn_index().append(&entry) {
                    result = Err(e.into());
                    break;
                }
            }
            w.producers.complete_txn(txn);
        }
        self.update_first_unstable_offset(w);
        result
    }

    /// Recomputes the first unstable offset (never below the log start offset).
    pub(crate) fn update_first_unstable_offset(&self, w: &LogWriter) {
        let value = w
            .producers
            .first_unstable_offset()
            .map_or(-1, |o| o.max(self.log_start_offset()));
        self.first_unstable_offset.store(value, Ordering::Release);
    }

    /// Appends a COMMIT (`commit`) or ABORT marker for the producer's transaction,
    /// as the transaction coordinator's WriteTxnMarkers does (Kafka's
    /// `EndTransactionMarker` control batch, appended with origin Coordinator).
    /// Fails with INVALID_PRODUCER_EPOCH for an epoch older than the producer's and
    /// TRANSACTION_COORDINATOR_FENCED for an older coordinator epoch.
    pub fn append_control_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo, StorageError> {
        let marker = EndTxnMarker {
            commit,
            coordinator_epoch,
        };
        let mut batch = batch::control_batch(
            producer_id,
            producer_epoch,
            &marker,
            now_ms,
            leader_epoch,
            None,
        );
        self.append_as_leader(&mut batch, leader_epoch, AppendOrigin::Coordinator, now_ms)
    }

    /// Appends batches that already carry offsets (replication, metadata replay).
    pub fn append_as_follower(&self, records: &mut [u8]) -> Result<LogAppendInfo, StorageError> {
        let appended = self.append_follower(records);
        self.offline_on_io_error(appended)
    }

    fn append_follower(&self, records: &mut [u8]) -> Result<LogAppendInfo, StorageError> {
        let config = self.config_arc();
        let spans = batch::split_batches(records)?;
        if spans.is_empty() {
            return Err(StorageError::InvalidRecord("empty record set".into()));
        }
        let mut w = lock(&self.writer);
        self.check_not_deleted()?;
        let mut expected = self.log_end_offset();
        for span in &spans {
            let h = &span.header;
            let overflows = h.last_offset() >= i64::MAX - 1;
            if h.base_offset < expected || h.last_offset_delta < 0 || overflows {
                return Err(StorageError::InvalidRecord(format!(
                    "batch at offset {} does not follow offset {}",
                    h.base_offset,
                    expected - 1
                )));
            }
            expected = h.next_offset();
        }
        let now_ms = now_ms();
        let markers = parse_markers(records, &spans)?;
        let mut producer_info = ProducerAppendInfo::default();
        for (span, marker) in spans.iter().zip(&markers) {
            w.producers.prepare_batch(
                &mut producer_info,
                &span.header,
                marker.as_ref(),
                AppendOrigin::Replication,
            )?;
        }
        let segment = self.append_locked(&mut w, records, &spans, &config, now_ms)?;
        let completed = w.producers.commit(producer_info, expected);
        for span in &spans {
            self.assign_epoch(span.header.partition_leader_epoch, span.header.base_offset);
        }
        self.complete_txns(&mut w, &segment, &completed)?;
        Ok(self.append_info(&spans, records.len(), None))
    }

    fn find_duplicate(&self, w: &LogWriter, spans: &[BatchSpan]) -> Option<LogAppendInfo> {
        spans.iter().find_map(|span| {
            let h = &span.header;
            let dup = w
                .producers
                .entry(h.producer_id)
                .filter(|_| h.has_producer_id())?
                .find_duplicate(h)?;
            Some(LogAppendInfo {
                first_offset: dup.first_offset,
                last_offset: dup.last_offset,
                log_append_time_ms: -1,
                log_start_offset: self.log_start_offset(),
                max_timestamp: dup.timestamp,
                record_count: (dup.last_offset - dup.first_offset + 1) as u32,
                valid_bytes: 0,
                duplicate: true,
            })
        })
    }

    fn append_info(
        &self,
        spans: &[BatchSpan],
        valid_bytes: usize,
        append_time: Option<i64>,
    ) -> LogAppendInfo {
        let first = spans.first().expect("non-empty append").header;
        let last = spans.last().expect("non-empty append").header;
        LogAppendInfo {
            first_offset: first.base_offset,
            last_offset: last.last_offset(),
            log_append_time_ms: append_time.unwrap_or(-1),
            log_start_offset: self.log_start_offset(),
            max_timestamp: spans
                .iter()
                .map(|s| s.header.max_timestamp)
                .max()
                .unwrap_or(-1),
            record_count: spans
                .iter()
                .map(|s| s.header.record_count.max(0) as u32)
                .sum(),
            valid_bytes,
            duplicate: false,
        }
    }

    /// Rolls if needed, writes, indexes, then publishes the new log end offset.
    /// Returns the segment written to.
    fn append_locked(
        &self,
        w: &mut LogWriter,
        records: &[u8],
        spans: &[BatchSpan],
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Arc<LogSegment>, StorageError> {
        let first_offset = spans[0].header.base_offset;
        let last_offset = spans[spans.len() - 1].header.last_offset();
        let segment = self.maybe_roll(w, config, records, spans, now_ms)?;
        if let Err(e) = segment.append(records, spans, config.index_interval_bytes) {
            // Leave the log a prefix of what was acknowledged.
            let _ = segment.truncate_to(first_offset, config.index_interval_bytes);
            return Err(e.into());
        }
        self.log_end_offset
            .store(last_offset.saturating_add(1), Ordering::Release);
        let count: i64 = spans
            .iter()
            .map(|s| s.header.record_count.max(0) as i64)
            .sum();
        let unflushed = self.unflushed_messages.fetch_add(count, Ordering::Relaxed) + count;
        if unflushed >= config.flush_messages {
            self.flush()?;
        }
        Ok(segment)
    }

    fn maybe_roll(
        &self,
        w: &mut LogWriter,
        config: &LogConfig,
        records: &[u8],
        spans: &[BatchSpan],
        now_ms: i64,
    ) -> Result<Arc<LogSegment>, StorageError> {
        let append = RollParams {
            bytes: records.len(),
            max_offset: spans[spans.len() - 1].header.last_offset(),
            max_timestamp: spans
                .iter()
                .map(|s| s.header.max_timestamp)
                .max()
                .unwrap_or(-1),
            now_ms,
        };
        let active = self.active_segment();
        if !active.should_roll(config, &append) {
            return Ok(active);
        }
        let first_offset = spans[0].header.base_offset;
        self.roll_locked(w, config, first_offset.max(self.log_end_offset()), now_ms)
    }

    /// Closes the active segment and starts a new one at `new_base_offset`.
    pub(crate) fn roll_locked(
        &self,
        w: &mut LogWriter,
        config: &LogConfig,
        new_base_offset: i64,
        now_ms: i64,
    ) -> Result<Arc<LogSegment>, StorageError> {
        let mut segments: Vec<Arc<LogSegment>> = self.segments_snapshot().as_ref().clone();
        let active = segments.last().expect("active segment").clone();
        if active.size_bytes() == 0 {
            if active.base_offset() == new_base_offset {
                return Ok(active);
            }
            // An empty active segment is replaced rather than kept as a gap.
            segments.pop();
            for path in active.rename_files(".deleted")? {
                std::fs::remove_file(path)?;
            }
        } else {
            active.on_become_inactive()?;
        }
        let segment = Arc::new(LogSegment::create(
            &self.dir,
            new_base_offset,
            config,
            now_ms,
        )?);
        segments.push(segment.clone());
        w.producers.set_map_end_offset(new_base_offset);
        w.producers.take_snapshot()?;
        self.publish_segments(segments);
        Ok(segment)
    }

    /// Records a new leader epoch. The data is already appended, so a failure to
    /// persist the checkpoint is logged, not returned: recovery rebuilds epochs
    /// from the batches' partition leader epochs.
    /// A new leader epoch begins at the log end (Kafka's `assignEpochStartOffset` when
    /// this replica becomes leader), so followers of an older epoch find where it ended
    /// even before the new leader appends.
    pub fn assign_epoch_start_offset(&self, epoch: i32) {
        let _w = lock(&self.writer);
        self.assign_epoch(epoch, self.log_end_offset());
    }

    fn assign_epoch(&self, epoch: i32, start_offset: i64) {
        if epoch < 0 || self.latest_epoch().is_some_and(|e| epoch <= e) {
            return;
        }
        let mut epochs = self.epochs.write().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = epochs.assign(epoch, start_offset) {
            tracing::warn!(tp = %self.tp, epoch, %e, "could not persist leader-epoch-checkpoint");
        }
    }

    /// Whole batches from the one containing `start_offset`, up to `max_bytes`
    /// (one whole batch at least when `min_one_message`), none whose last offset is
    /// >= `max_offset`. Batches come from one segment, like Kafka.
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: u32,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<FetchDataInfo, StorageError> {
        Ok(self
            .read_range(start_offset, max_bytes, max_offset, min_one_message)?
            .0)
    }

    /// A READ_COMMITTED read (Kafka's `FetchIsolation.TXN_COMMITTED`): `read` up to
    /// the last stable offset, with the aborted transactions, as (producer id, first
    /// offset), that overlap the batches read (none if nothing was read).
    pub fn read_committed(
        &self,
        start_offset: i64,
        max_bytes: u32,
        min_one_message: bool,
    ) -> Result<(FetchDataInfo, Vec<(i64, i64)>), StorageError> {
        let lso = self.last_stable_offset();
        let (data, next_offset) = self.read_range(start_offset, max_bytes, lso, min_one_message)?;
        let aborted = match next_offset {
            Some(upper) => self.aborted_transactions(start_offset, upper)?,
            None => Vec::new(),
        };
        Ok((data, aborted))
    }

    /// Where `offset` lies (see [`LogOffsetMetadata`]), found from the offset index and a
    /// scan of at most `index.interval.bytes` of batch headers; no record is read.
    pub fn offset_metadata(&self, offset: i64) -> Result<LogOffsetMetadata, StorageError> {
        self.check_online()?;
        let metadata = self.locate_offset(offset);
        self.offline_on_io_error(metadata)
    }

    fn locate_offset(&self, offset: i64) -> Result<LogOffsetMetadata, StorageError> {
        let segments = self.segments_snapshot();
        let segment = &segments[segment_index_for(&segments, offset)];
        let limit = segment.size_bytes();
        let position = match segment.find_batch(offset, limit)? {
            Some((position, _)) => position,
            None => limit,
        };
        Ok(LogOffsetMetadata {
            offset,
            segment_base_offset: segment.base_offset(),
            position,
        })
    }

    /// How many reads this log has served since it was opened.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// `read`, and the offset after the last batch read (None if none).
    fn read_range(
        &self,
        start_offset: i64,
        max_bytes: u32,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<(FetchDataInfo, Option<i64>), StorageError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.check_online()?;
        let read = self.read_segments(start_offset, max_bytes, max_offset, min_one_message);
        self.offline_on_io_error(read)
    }

    fn read_segments(
        &self,
        start_offset: i64,
        max_bytes: u32,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<(FetchDataInfo, Option<i64>), StorageError> {
        let log_end_offset = self.log_end_offset();
        let log_start_offset = self.log_start_offset();
        if start_offset < log_start_offset || start_offset > log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset: start_offset,
                log_start_offset,
                log_end_offset,
            });
        }
        let max_offset = max_offset.min(log_end_offset);
        if start_offset >= max_offset {
            return Ok((FetchDataInfo::default(), None));
        }
        let segments = self.segments_snapshot();
        for segment in &segments[segment_index_for(&segments, start_offset)..] {
            let limit = segment.size_bytes();
            let Some((position, first)) = segment.find_batch(start_offset, limit)? else {
                continue;
            };
            let range = segment.read_from(
                position,
                &first,
                limit,
                max_bytes,
                max_offset,
                min_one_message,
            )?;
            return Ok(match range {
                Some(r) => (
                    FetchDataInfo {
                        slices: vec![FileSlice {
                            file: segment.file().clone(),
                            position: r.position,
                            len: r.len,
                        }],
                        total_bytes: r.len,
                    },
                    Some(r.next_offset),
                ),
                None => (FetchDataInfo::default(), None),
            });
        }
        Ok((FetchDataInfo::default(), None))
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// Sets the high watermark, clamped to [log start offset, log end offset]. Closed
    /// transactions whose marker it passes stop holding back the last stable offset.
    pub fn update_high_watermark(&self, offset: i64) {
        let mut w = lock(&self.writer);
        let clamped = offset
            .min(self.log_end_offset())
            .max(self.log_start_offset());
        self.high_watermark.store(clamped, Ordering::Release);
        w.producers.on_high_watermark_updated(clamped);
        self.update_first_unstable_offset(&w);
    }

    /// Kafka's last stable offset: the first unstable offset if it is below the high
    /// watermark, else the high watermark. READ_COMMITTED fetches stop here.
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        match self.first_unstable_offset() {
            Some(first) if first < high_watermark => first,
            _ => high_watermark,
        }
    }

    /// First offset of the oldest transaction that is open, or closed by a marker
    /// the high watermark has not passed yet; None if there is none.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let value = self.first_unstable_offset.load(Ordering::Acquire);
        (value >= 0).then_some(value)
    }

    /// Kafka's `collectAbortedTransactions` for a READ_COMMITTED fetch from
    /// `start_offset`: the aborted transactions, as (producer id, first offset),
    /// that overlap `[start_offset, upper_bound_offset)`, searched from the segment
    /// holding `start_offset` on. `upper_bound_offset` is the offset after the last
    /// fetched batch; any larger bound (the LSO) only adds transactions the
    /// consumer will not meet, which it ignores.
    pub fn aborted_transactions(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<(i64, i64)>, StorageError> {
        Ok(self
            .collect_aborted_txns(start_offset, start_offset, upper_bound_offset)?
            .into_iter()
            .map(|t| (t.producer_id, t.first_offset))
            .collect())
    }

    /// Entries of the transaction indexes from the segment holding `from_offset`,
    /// overlapping `[fetch_offset, upper_bound_offset)`.
    pub(crate) fn collect_aborted_txns(
        &self,
        fetch_offset: i64,
        from_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<AbortedTxn>, StorageError> {
        let segments = self.segments_snapshot();
        let mut out = Vec::new();
        for segment in &segments[segment_index_for(&segments, from_offset)..] {
            let result = segment
                .txn_index()
                .collect(fetch_offset, upper_bound_offset)?;
            out.extend(result.aborted);
            if result.complete {
                break;
            }
        }
        Ok(out)
    }

    /// Whether the producer has an open transaction on this partition.
    pub fn has_ongoing_transaction(&self, producer_id: i64) -> bool {
        lock(&self.writer)
            .producers
            .entry(producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some())
    }

    /// Kafka's `maybeStartTransactionVerification` (KIP-890): the sentinel guard if
    /// the producer's transaction is already open here, else the producer's
    /// verification guard (created on first use, kept until a transactional batch
    /// of the producer is appended or `producer.id.expiration.ms` passes). It also
    /// records the lowest sequence seen, so a later batch cannot skip ahead of it.
    pub fn maybe_start_transaction_verification(
        &self,
        producer_id: i64,
        sequence: i32,
        producer_epoch: i16,
        now_ms: i64,
    ) -> VerificationGuard {
        let mut w = lock(&self.writer);
        let ongoing = w
            .producers
            .entry(producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some());
        if ongoing {
            return VerificationGuard::SENTINEL;
        }
        w.producers
            .maybe_create_verification_state(producer_id, sequence, producer_epoch, now_ms)
    }

    /// The producer's pending verification guard, or the sentinel.
    pub fn verification_guard(&self, producer_id: i64) -> VerificationGuard {
        lock(&self.writer).producers.verification_guard(producer_id)
    }

    /// Open transactions as (producer id, first offset), oldest first.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        lock(&self.writer).producers.ongoing_transactions()
    }

    /// Every producer the log tracks (DescribeProducers).
    pub fn active_producers(&self) -> Vec<ProducerStateEntry> {
        lock(&self.writer).producers.entries().cloned().collect()
    }

    /// Offset up to which the log is known to be on disk.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    pub fn end_offset_for_epoch(&self, leader_epoch: i32) -> Option<EpochEndOffset> {
        let epochs = self.epochs.read().unwrap_or_else(|e| e.into_inner());
        let (leader_epoch, end_offset) =
            epochs.end_offset_for(leader_epoch, self.log_end_offset())?;
        Some(EpochEndOffset {
            leader_epoch,
            end_offset,
        })
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .latest_epoch()
    }

    pub(crate) fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.epochs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .epoch_for_offset(offset)
    }

    /// Fsyncs every segment with unflushed data and advances the recovery point.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.check_online()?;
        let flushed = self.flush_segments();
        self.offline_on_io_error(flushed)
    }

    fn flush_segments(&self) -> Result<(), StorageError> {
        let end = self.log_end_offset();
        let recovery_point = self.recovery_point();
        let segments = self.segments_snapshot();
        for (i, segment) in segments.iter().enumerate() {
            let next_base = segments.get(i + 1).map_or(i64::MAX, |s| s.base_offset());
            if next_base > recovery_point {
                segment.flush()?;
            }
        }
        self.recovery_point.fetch_max(end, Ordering::AcqRel);
        self.unflushed_messages.store(0, Ordering::Relaxed);
        self.last_flush_ms.store(now_ms(), Ordering::Relaxed);
        Ok(())
    }

    /// Flushes by `flush.ms`; otherwise fsyncs segments closed by a roll (Kafka
    /// flushes them right after rolling) so the recovery point keeps up.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<(), StorageError> {
        let config = self.config_arc();
        let since_flush_ms = now_ms.saturating_sub(self.last_flush_ms.load(Ordering::Relaxed));
        if since_flush_ms >= config.flush_ms {
            return self.flush();
        }
        self.check_online()?;
        let segments = self.segments_snapshot();
        let active_base = segments.last().map_or(0, |s| s.base_offset());
        let recovery_point = self.recovery_point();
        if recovery_point >= active_base {
            return Ok(());
        }
        for (i, segment) in segments[..segments.len() - 1].iter().enumerate() {
            if segments[i + 1].base_offset() > recovery_point {
                self.offline_on_io_error(segment.flush().map_err(StorageError::from))?;
            }
        }
        self.recovery_point.fetch_max(active_base, Ordering::AcqRel);
        Ok(())
    }

    /// Clean close: final time index entry of every segment (Kafka's
    /// `LogSegment.close`), fsync, producer snapshot at the log end.
    pub fn close(&self) -> Result<(), StorageError> {
        let w = lock(&self.writer);
        let segments = self.segments_snapshot();
        let (active, inactive) = segments.split_last().expect("active segment");
        for segment in inactive {
            // Like Kafka, a failure here only costs a rebuild-free reload of the
            // segment's tail at the next open, so it is logged, not returned.
            if let Err(e) = segment.close() {
                tracing::warn!(
                    tp = %self.tp,
                    base_offset = segment.base_offset(),
                    %e,
                    "could not write the final time index entry"
                );
            }
        }
        active.on_become_inactive()?;
        self.flush()?;
        w.producers.take_snapshot()?;
        // Closed for good: an append from a request still finishing after shutdown must
        // not land behind the clean-shutdown marker.
        self.offline.store(true, Ordering::Release);
        Ok(())
    }

    /// First offset the cleaner has not compacted yet.
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.cleaner_checkpoint.load(Ordering::Acquire)
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments_snapshot()
            .iter()
            .map(|s| s.size_bytes())
            .sum()
    }

    pub fn producer_state(&self, producer_id: i64) -> Option<ProducerStateEntry> {
        lock(&self.writer).producers.entry(producer_id).cloned()
    }

    /// Number of segments (tests and metrics).
    pub fn segment_count(&self) -> usize {
        self.segments_snapshot().len()
    }
}

/// How a leader append was asked for.
#[derive(Clone, Copy)]
struct AppendContext {
    leader_epoch: i32,
    origin: AppendOrigin,
    now_ms: i64,
    /// Some: transaction verification is on and this is the request's guard.
    guard: Option<VerificationGuard>,
}

/// Kafka's KIP-890 check: a transactional data batch of a producer without an
/// open transaction needs the producer's verification guard.
fn check_verified(
    producers: &ProducerStateManager,
    spans: &[BatchSpan],
    guard: VerificationGuard,
) -> Result<(), StorageError> {
    for span in spans {
        let h = &span.header;
        if !h.is_transactional() || h.is_control() || !h.has_producer_id() {
            continue;
        }
        let ongoing = producers
            .entry(h.producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some());
        if !ongoing && !producers.verification_guard(h.producer_id).verify(guard) {
            return Err(StorageError::InvalidTxnState(format!(
                "record of producer {} was not part of an ongoing transaction",
                h.producer_id
            )));
        }
    }
    Ok(())
}

/// The marker of every control batch of a producer (None for other batches and
/// for empty control batches).
fn parse_markers(
    records: &[u8],
    spans: &[BatchSpan],
) -> Result<Vec<Option<EndTxnMarker>>, StorageError> {
    spans
        .iter()
        .map(|span| {
            let h = &span.header;
            if !h.is_control() || !h.has_producer_id() {
                return Ok(None);
            }
            end_txn_marker(&records[span.position..span.position + h.size_bytes()], h)
        })
        .collect()
}

pub(crate) use crate::seams::now_ms;
