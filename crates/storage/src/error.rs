//! Storage errors. Each variant maps to exactly one Kafka error code; the broker
//! does that mapping in one place.

use crate::config::ConfigError;

/// Errors returned by the partition log. One variant per Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// CORRUPT_MESSAGE (2): bad CRC, bad length, not magic 2, inconsistent header.
    #[error("corrupt message: {0}")]
    CorruptMessage(String),
    /// MESSAGE_TOO_LARGE (10): a batch is larger than `max.message.bytes`.
    #[error("message of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: usize },
    /// RECORD_LIST_TOO_LARGE (18): the request's record set exceeds the segment size.
    #[error("record list too large: {0}")]
    RecordListTooLarge(String),
    /// INVALID_TIMESTAMP (32).
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// INVALID_RECORD (87).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// INVALID_TIMESTAMP (32) if any record's timestamp is out of range, else INVALID_RECORD
    /// (87): particular records of a batch were rejected; KIP-467 reports each one's index
    /// in the batch so that clients fail just those.
    #[error("{summary}")]
    RecordErrors {
        invalid_timestamp: bool,
        summary: String,
        records: Vec<RecordError>,
    },
    /// OFFSET_OUT_OF_RANGE (1).
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    #[error("out of order sequence number: {0}")]
    OutOfOrderSequence(String),
    /// INVALID_PRODUCER_EPOCH (47).
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    /// UNKNOWN_PRODUCER_ID (59).
    #[error("unknown producer id: {0}")]
    UnknownProducerId(String),
    /// INVALID_TXN_STATE (48): e.g. a non-transactional write while the producer's
    /// transaction is open.
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// TRANSACTION_COORDINATOR_FENCED (52): a marker from an older coordinator epoch.
    #[error("transaction coordinator fenced: {0}")]
    TransactionCoordinatorFenced(String),
    /// INVALID_CONFIG (40).
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// LOG_DIR_NOT_FOUND (57): the partition's log was deleted or its directory is gone.
    #[error("log dir not found: {0}")]
    LogDirNotFound(String),
    /// KAFKA_STORAGE_ERROR (56): another process (a second broker) holds the log dir's
    /// `.lock`; only raised at startup.
    #[error("log dir {} is in use by another process (it holds {}/.lock)", .0.display(), .0.display())]
    LogDirLocked(std::path::PathBuf),
    /// KAFKA_STORAGE_ERROR (56): an IO failure.
    #[error("storage IO error: {0}")]
    KafkaStorage(#[from] std::io::Error),
}

impl StorageError {
    /// The Kafka protocol error code of this error.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            StorageError::CorruptMessage(_) => 2,
            StorageError::MessageTooLarge { .. } => 10,
            StorageError::RecordListTooLarge(_) => 18,
            StorageError::InvalidTimestamp(_) => 32,
            StorageError::InvalidRecord(_) => 87,
            StorageError::RecordErrors {
                invalid_timestamp, ..
            } => {
                if *invalid_timestamp {
                    32
                } else {
                    87
                }
            }
            StorageError::OffsetOutOfRange { .. } => 1,
            StorageError::OutOfOrderSequence(_) => 45,
            StorageError::InvalidProducerEpoch(_) => 47,
            StorageError::UnknownProducerId(_) => 59,
            StorageError::InvalidTxnState(_) => 48,
            StorageError::TransactionCoordinatorFenced(_) => 52,
            StorageError::InvalidConfig(_) => 40,
            StorageError::LogDirNotFound(_) => 57,
            StorageError::LogDirLocked(_) | StorageError::KafkaStorage(_) => 56,
        }
    }
}

/// One rejected record: its index in its batch and why (KIP-467's `BatchIndexAndErrorMessage`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

/// Convenience alias used throughout the crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
