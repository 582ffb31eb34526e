//! Log: one partition's segments, indexes, producer state and leader epochs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::StorageError;
use crate::producer_state::ProducerStateEntry;
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
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        self.total_bytes == 0
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

/// One partition log. Send + Sync; shared as `Arc<Log>`.
pub struct Log {
    tp: TopicPartition,
    dir: PathBuf,
    topic_id: Option<Uuid>,
}

impl Log {
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn topic_id(&self) -> Option<Uuid> {
        self.topic_id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> LogConfig {
        todo!()
    }

    pub fn update_config(&self, _config: LogConfig) {
        todo!()
    }

    pub fn append_as_leader(
        &self,
        _records: &mut [u8],
        _leader_epoch: i32,
        _origin: AppendOrigin,
        _now_ms: i64,
    ) -> Result<LogAppendInfo, StorageError> {
        todo!()
    }

    pub fn append_as_follower(&self, _records: &mut [u8]) -> Result<LogAppendInfo, StorageError> {
        todo!()
    }

    pub fn read(
        &self,
        _start_offset: i64,
        _max_bytes: u32,
        _max_offset: i64,
        _min_one_message: bool,
    ) -> Result<FetchDataInfo, StorageError> {
        todo!()
    }

    pub fn log_start_offset(&self) -> i64 {
        todo!()
    }

    pub fn log_end_offset(&self) -> i64 {
        todo!()
    }

    pub fn high_watermark(&self) -> i64 {
        todo!()
    }

    pub fn update_high_watermark(&self, _offset: i64) {
        todo!()
    }

    pub fn last_stable_offset(&self) -> i64 {
        todo!()
    }

    pub fn fetch_offset_by_timestamp(
        &self,
        _target_timestamp: i64,
    ) -> Result<Option<TimestampAndOffset>, StorageError> {
        todo!()
    }

    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampAndOffset>, StorageError> {
        todo!()
    }

    pub fn delete_records_before(&self, _offset: i64) -> Result<i64, StorageError> {
        todo!()
    }

    pub fn end_offset_for_epoch(&self, _leader_epoch: i32) -> Option<EpochEndOffset> {
        todo!()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        todo!()
    }

    pub fn truncate_to(&self, _offset: i64) -> Result<(), StorageError> {
        todo!()
    }

    pub fn flush(&self) -> Result<(), StorageError> {
        todo!()
    }

    pub fn size_bytes(&self) -> u64 {
        todo!()
    }

    pub fn producer_state(&self, _producer_id: i64) -> Option<ProducerStateEntry> {
        todo!()
    }
}
