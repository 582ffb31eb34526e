//! moldau-storage: the partition log.
//!
//! Stores Kafka RecordBatch v2 bytes verbatim in Kafka's on-disk layout
//! (`<topic>-<partition>/` directories of `.log`, `.index`, `.timeindex`, `.txnindex`
//! segments), with recovery, roll, retention, compaction, idempotent-producer state
//! and the log side of transactions (markers, last stable offset, aborted-transaction
//! index).
//! Sync file IO only; it knows nothing of sockets, leaders or requests.
//!
//! Code map:
//! - `manager`: [`LogManager`], every log under one log dir, root checkpoints,
//!   clean-shutdown marker, background retention / cleaner / flusher threads.
//! - `log`: [`Log`], append (leader and follower), read, offsets, flush. `loader`
//!   opens and recovers a log; `retention` deletes segments, DeleteRecords and
//!   truncation; `list_offsets` answers ListOffsets.
//! - `segment`: `LogSegment`, one `.log` file and its indexes; `index`: Kafka's
//!   `OffsetIndex` / `TimeIndex`; `txn_index`: the `.txnindex` of aborted
//!   transactions.
//! - `batch`: the 61-byte v2 header (parse, CRC, in-place patches); `records` walks
//!   records without materialising them; `validator`: `LogValidator`.
//! - `producer_state`: `ProducerStateManager` (idempotence, ongoing transactions,
//!   the first unstable offset) and its snapshots; `epoch_cache`:
//!   `LeaderEpochFileCache`; `checkpoint`: Kafka's small text files.
//! - `cleaner`: `LogCleaner`, key compaction with a crash-safe `.cleaned`/`.swap` swap.
//! - `seams`: the wall clock and background threads, which the deterministic simulation
//!   replaces for every crate.
//!
//! Invariants: a log is always a sequence of whole, CRC-valid batches in offset
//! order (recovery truncates at the first bad byte, so a crash leaves a prefix);
//! the log end offset is published only after bytes and indexes are written, and
//! readers never see past it or past the caller's `max_offset`; one writer at a
//! time per log, readers never wait for it; records are not decoded on the
//! append or read path except where Kafka also must (record validation of
//! compressed batches, a differing topic `compression.type`, compaction, ListOffsets).

mod batch;
mod checkpoint;
mod cleaner;
pub mod config;
mod epoch_cache;
pub mod error;
mod index;
mod list_offsets;
mod loader;
pub mod log;
#[cfg(test)]
mod log_tests;
pub mod manager;
pub mod producer_state;
mod records;
mod retention;
pub mod seams;
mod segment;
pub mod txn_index;
mod validator;

pub use batch::BatchHeader;
pub use checkpoint::write_file_atomically;
pub use config::{
    CleanupPolicy, CompressionType, ConfigError, LogConfig, TimestampType, TopicConfigDef,
    TOPIC_CONFIGS, TOPIC_CONFIGS_WITHOUT_SERVER_DEFAULT,
};
pub use error::{RecordError, StorageError};
pub use log::{
    AppendOrigin, EpochEndOffset, FetchDataInfo, FileSlice, Log, LogAppendInfo, LogOffsetMetadata,
    TimestampAndOffset,
};
pub use manager::{LogManager, LogManagerConfig};
pub use producer_state::{ProducerStateEntry, VerificationGuard};
pub use txn_index::AbortedTxn;

/// Topic ids are UUIDs (rendered as Kafka's URL-safe base64 in `partition.metadata`).
pub type Uuid = uuid::Uuid;

/// A topic name and partition index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }

    /// The partition's directory name, `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a `<topic>-<partition>` directory name (the topic may contain '-').
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, digits) = name.rsplit_once('-')?;
        let partition: i32 = digits.parse().ok()?;
        // Reject "+1", "01" and negatives so the name round-trips through dir_name.
        if topic.is_empty() || partition < 0 || partition.to_string() != digits {
            return None;
        }
        Some(TopicPartition::new(topic, partition))
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
