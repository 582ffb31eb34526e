//! ProducerStateManager: idempotent producer state per partition.

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
    pub batches: Vec<BatchMetadata>,
    pub coordinator_epoch: i32,
    /// First offset of the ongoing transaction (issue 5), if any.
    pub current_txn_first_offset: Option<i64>,
    pub last_timestamp: i64,
}

impl ProducerStateEntry {
    /// Last sequence number appended, or -1.
    pub fn last_seq(&self) -> i32 {
        self.batches.last().map_or(-1, |b| b.last_seq)
    }

    /// Last offset appended, or -1.
    pub fn last_offset(&self) -> i64 {
        self.batches.last().map_or(-1, |b| b.last_offset)
    }
}
