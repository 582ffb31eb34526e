//! Retention, DeleteRecords, follower truncation and delayed file deletion.
//!
//! Like Kafka, only whole segments are deleted, oldest first, and only those wholly
//! below the high watermark; if every segment (the active one included) is expired
//! the log first rolls so it always keeps an active segment. Deleted segments are
//! renamed `.deleted` and removed after `file.delete.delay.ms` (open readers keep
//! their file handles).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::StorageError;
use crate::loader::rebuild_producer_state;
use crate::log::{lock, segment_index_for, Log, LogWriter, PendingDelete};
use crate::segment::LogSegment;

/// Kafka's `producer.id.expiration.ms` default (1 day).
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

impl Log {
    /// One retention pass: log start offset, then `retention.ms` / `retention.bytes`
    /// when the policy includes delete. Returns the number of segments deleted.
    pub fn delete_old_segments(&self, now_ms: i64) -> Result<usize, StorageError> {
        let _maintenance = lock(&self.maintenance);
        let config = self.config_arc();
        let log_start = self.log_start_offset();
        let mut deleted = self.delete_segments_while(&config, now_ms, |_, next| {
            next.is_some_and(|n| n.base_offset() <= log_start)
        })?;
        if config.cleanup_policy.is_delete() {
            if config.retention_ms >= 0 {
                deleted += self.delete_segments_while(&config, now_ms, |s, _| {
                    now_ms.saturating_sub(s.largest_timestamp()) > config.retention_ms
                })?;
            }
            if config.retention_bytes >= 0 {
                let mut excess = self.size_bytes() as i64 - config.retention_bytes;
                deleted += self.delete_segments_while(&config, now_ms, |s, _| {
                    let fits = excess - s.size_bytes() as i64 >= 0;
                    if fits {
                        excess -= s.size_bytes() as i64;
                    }
                    fits
                })?;
            }
        }
        lock(&self.writer)
            .producers
            .remove_expired_producers(now_ms, PRODUCER_ID_EXPIRATION_MS);
        self.remove_deleted_files(now_ms)?;
        Ok(deleted)
    }

    /// Deletes the oldest segments while `predicate(segment, next)` holds and the
    /// segment is wholly below the high watermark.
    fn delete_segments_while(
        &self,
        config: &LogConfig,
        now_ms: i64,
        mut predicate: impl FnMut(&LogSegment, Option<&LogSegment>) -> bool,
    ) -> Result<usize, StorageError> {
        let mut w = lock(&self.writer);
        let segments = self.segments_snapshot();
        let (high_watermark, log_end) = (self.high_watermark(), self.log_end_offset());
        let mut count = 0;
        for (i, segment) in segments.iter().enumerate() {
            let next = segments.get(i + 1).map(|s| s.as_ref());
            let upper_bound = next.map_or(log_end, |n| n.base_offset());
            let last_and_empty = next.is_none() && segment.size_bytes() == 0;
            if last_and_empty || high_watermark < upper_bound || !predicate(segment, next) {
                break;
            }
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        if count == segments.len() {
            self.roll_locked(&mut w, config, log_end, now_ms)?;
        }
        let mut segments: Vec<Arc<LogSegment>> = self.segments_snapshot().as_ref().clone();
        let removed: Vec<Arc<LogSegment>> = segments.drain(..count).collect();
        self.publish_segments(segments);
        self.advance_log_start_offset(&mut w, self.active_or_first_base())?;
        for segment in removed {
            self.schedule_delete(&segment, config, now_ms)?;
        }
        Ok(count)
    }

    fn active_or_first_base(&self) -> i64 {
        self.segments_snapshot()
            .first()
            .map_or(0, |s| s.base_offset())
    }

    /// Moves the log start offset forward (never back) and trims dependent state.
    fn advance_log_start_offset(&self, w: &mut LogWriter, offset: i64) -> Result<(), StorageError> {
        let previous = self.log_start_offset.fetch_max(offset, Ordering::AcqRel);
        if offset <= previous {
            return Ok(());
        }
        let high_watermark = self.high_watermark();
        if high_watermark < offset {
            self.high_watermark.store(offset, Ordering::Release);
        }
        self.cleaner_checkpoint.fetch_max(offset, Ordering::AcqRel);
        w.producers.truncate_head(offset);
        self.update_first_unstable_offset(w);
        self.epochs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .truncate_from_start(offset)?;
        Ok(())
    }

    fn schedule_delete(
        &self,
        segment: &LogSegment,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let paths = segment.rename_files(".deleted")?;
        if config.file_delete_delay_ms == 0 {
            for path in paths {
                std::fs::remove_file(path)?;
            }
            return Ok(());
        }
        let due_ms = now_ms.saturating_add(config.file_delete_delay_ms);
        lock(&self.pending_deletes).push(PendingDelete { paths, due_ms });
        Ok(())
    }

    /// Removes `.deleted` files whose delay has passed.
    pub fn remove_deleted_files(&self, now_ms: i64) -> Result<(), StorageError> {
        let due: Vec<PendingDelete> = {
            let mut pending = lock(&self.pending_deletes);
            let (due, keep) = pending.drain(..).partition(|p| p.due_ms <= now_ms);
            *pending = keep;
            due
        };
        for path in due.into_iter().flat_map(|p| p.paths) {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// DeleteRecords: advances the log start offset to `offset` (at most the high
    /// watermark). Segments wholly below it go at the next retention pass.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        let mut w = lock(&self.writer);
        let (log_start_offset, log_end_offset) = (self.log_start_offset(), self.log_end_offset());
        if offset < 0 || offset > self.high_watermark() {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            });
        }
        self.advance_log_start_offset(&mut w, offset)?;
        Ok(self.log_start_offset())
    }

    /// Follower truncation: removes every batch at or after `offset`.
    pub fn truncate_to(&self, offset: i64) -> Result<(), StorageError> {
        self.truncate(offset, false)
    }

    /// Removes every segment and starts the log empty at `offset` (a follower whose log
    /// ends below the leader's log start offset, Kafka's `truncateFullyAndStartAt`).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), StorageError> {
        self.truncate(offset, true)
    }

    fn truncate(&self, offset: i64, fully: bool) -> Result<(), StorageError> {
        let _maintenance = lock(&self.maintenance);
        let mut w = lock(&self.writer);
        if !fully && offset >= self.log_end_offset() {
            // No batch to remove, but an epoch may start at the log end: this node led
            // that epoch briefly without appending. The leader does not know it, so
            // keeping it would make every fetch report the same divergence again.
            self.epochs
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .truncate_from_end(self.log_end_offset())?;
            return Ok(());
        }
        let config = self.config_arc();
        let now_ms = crate::log::now_ms();
        let mut segments: Vec<Arc<LogSegment>> = self.segments_snapshot().as_ref().clone();
        // Kafka truncates fully when the target is below the first segment.
        let below_first = segments.first().is_none_or(|s| offset < s.base_offset());
        let keep = if fully || offset < self.log_start_offset() || below_first {
            0
        } else {
            segment_index_for(&segments, offset) + 1
        };
        // Every later segment starts above `offset`.
        for segment in segments
            .drain(keep.min(segments.len())..)
            .collect::<Vec<_>>()
        {
            self.schedule_delete(&segment, &config, now_ms)?;
        }
        if let Some(last) = segments.last() {
            last.truncate_to(offset, config.index_interval_bytes)?;
        } else {
            segments.push(Arc::new(LogSegment::create(
                &self.dir, offset, &config, now_ms,
            )?));
            self.log_start_offset.store(offset, Ordering::Release);
        }
        // The log ends at `offset` even inside a gap left by compaction, where the
        // last remaining batch ends below it (Kafka's LocalLog.truncateTo ->
        // updateLogEndOffset(targetOffset)).
        let log_end = offset;
        self.publish_segments(segments);
        if fully {
            // Nothing below `offset` is left: the marks start there and no epoch is known.
            self.high_watermark.store(offset, Ordering::Release);
            self.recovery_point.store(offset, Ordering::Release);
            self.cleaner_checkpoint.store(offset, Ordering::Release);
            self.epochs
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .truncate_from_end(i64::MIN)?;
        }
        self.after_truncation(&mut w, log_end)
    }

    fn after_truncation(&self, w: &mut LogWriter, log_end: i64) -> Result<(), StorageError> {
        self.log_end_offset.store(log_end, Ordering::Release);
        self.high_watermark.fetch_min(log_end, Ordering::AcqRel);
        self.recovery_point.fetch_min(log_end, Ordering::AcqRel);
        self.cleaner_checkpoint.fetch_min(log_end, Ordering::AcqRel);
        self.epochs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .truncate_from_end(log_end)?;
        let segments = self.segments_snapshot();
        rebuild_producer_state(
            &mut w.producers,
            &segments,
            self.log_start_offset(),
            log_end,
            &[],
        )?;
        w.producers.on_high_watermark_updated(self.high_watermark());
        self.update_first_unstable_offset(w);
        Ok(())
    }
}
