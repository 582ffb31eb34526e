//! RecordBatch v2 header: parsing, validation and in-place patching.
//!
//! Only the 61-byte header is read on the append and read paths; records are never
//! decoded there. Layout (big-endian):
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records...
//! The CRC-32C covers attributes through the end of the batch.

use crate::error::StorageError;

/// Bytes before the part counted by `batchLength`: base offset + length.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the v2 batch header, i.e. of an empty batch.
pub const HEADER_SIZE: usize = 61;

const LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORD_COUNT_OFFSET: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
const DELETE_HORIZON_BIT: i16 = 1 << 6;

/// Sentinels shared with Kafka.
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_SEQUENCE: i32 = -1;
pub const NO_TIMESTAMP: i64 = -1;

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A parsed v2 batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the first `HEADER_SIZE` bytes of `buf`. Checks only what is needed to
    /// find the batch's extent: magic 2 and a length of at least an empty batch.
    pub fn parse(buf: &[u8]) -> Result<Self, StorageError> {
        if buf.len() < HEADER_SIZE {
            return Err(StorageError::CorruptMessage(format!(
                "{} bytes is too short for a record batch header",
                buf.len()
            )));
        }
        let header = BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, LENGTH_OFFSET),
            partition_leader_epoch: be_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
            magic: buf[MAGIC_OFFSET] as i8,
            crc: u32::from_be_bytes(buf[CRC_OFFSET..CRC_OFFSET + 4].try_into().expect("4 bytes")),
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_OFFSET),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(buf, PRODUCER_ID_OFFSET),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_OFFSET),
            base_sequence: be_i32(buf, BASE_SEQUENCE_OFFSET),
            record_count: be_i32(buf, RECORD_COUNT_OFFSET),
        };
        if header.magic != 2 {
            return Err(StorageError::CorruptMessage(format!(
                "unsupported record batch magic {}",
                header.magic
            )));
        }
        if (header.batch_length as i64) < (HEADER_SIZE - LOG_OVERHEAD) as i64 {
            return Err(StorageError::CorruptMessage(format!(
                "record batch length {} is smaller than the header",
                header.batch_length
            )));
        }
        Ok(header)
    }

    /// Total bytes of the batch including the log overhead.
    pub fn size_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    /// Saturating: offsets come from untrusted bytes.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }

    /// Offset following this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    pub fn compression_codec(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Kafka's KIP-534 delete horizon: the base timestamp is when the cleaner may
    /// remove the batch's tombstones or transaction marker.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & DELETE_HORIZON_BIT != 0).then_some(self.base_timestamp)
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id > NO_PRODUCER_ID
    }

    /// Sequence of the last record; wraps to 0 after i32::MAX like Kafka.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX.wrapping_sub(increment) {
        increment
            .wrapping_sub(i32::MAX.wrapping_sub(sequence))
            .wrapping_sub(1)
    } else {
        sequence.wrapping_add(increment)
    }
}

/// CRC-32C of a complete batch (attributes to end).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

/// Checks a complete batch (`batch.len()` equals its declared size): header and CRC.
pub fn validate_batch(batch: &[u8]) -> Result<BatchHeader, StorageError> {
    let header = BatchHeader::parse(batch)?;
    if header.size_bytes() != batch.len() {
        return Err(StorageError::CorruptMessage(format!(
            "record batch size {} does not match its {} bytes",
            header.size_bytes(),
            batch.len()
        )));
    }
    let crc = compute_crc(batch);
    if crc != header.crc {
        return Err(StorageError::CorruptMessage(format!(
            "record batch CRC {:#010x} does not match computed {crc:#010x}",
            header.crc
        )));
    }
    Ok(header)
}

pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

fn set_i16(batch: &mut [u8], at: usize, v: i16) {
    batch[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn set_i32(batch: &mut [u8], at: usize, v: i32) {
    batch[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn set_i64(batch: &mut [u8], at: usize, v: i64) {
    batch[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

fn update_crc(batch: &mut [u8]) {
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Marks the batch LogAppendTime with `timestamp_ms` as max timestamp; recomputes the CRC.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    let attributes = be_i16(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
    set_i16(batch, ATTRIBUTES_OFFSET, attributes);
    set_i64(batch, MAX_TIMESTAMP_OFFSET, timestamp_ms);
    update_crc(batch);
}

/// After re-encoding a filtered batch, restores fields the encoder cannot express:
/// the original last offset (producer state relies on it), the timestamp type and
/// max timestamp of LogAppendTime batches, and "no sequence". Recomputes the CRC.
pub fn restore_filtered_header(batch: &mut [u8], original: &BatchHeader) {
    let base_offset = be_i64(batch, 0);
    let last_offset_delta = (original.last_offset() - base_offset) as i32;
    set_i32(batch, LAST_OFFSET_DELTA_OFFSET, last_offset_delta);
    if original.is_log_append_time() {
        let attributes = be_i16(batch, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
        set_i16(batch, ATTRIBUTES_OFFSET, attributes);
        set_i64(batch, MAX_TIMESTAMP_OFFSET, original.max_timestamp);
    }
    if original.base_sequence == NO_SEQUENCE {
        set_i32(batch, BASE_SEQUENCE_OFFSET, NO_SEQUENCE);
    }
    set_i32(
        batch,
        PARTITION_LEADER_EPOCH_OFFSET,
        original.partition_leader_epoch,
    );
    update_crc(batch);
}

/// An empty batch (no records) keeping `original`'s offsets and producer fields, as
/// the cleaner leaves behind to preserve the producer's last sequence.
pub fn empty_batch_like(original: &BatchHeader) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_SIZE];
    set_i64(&mut b, 0, original.base_offset);
    set_i32(&mut b, LENGTH_OFFSET, (HEADER_SIZE - LOG_OVERHEAD) as i32);
    set_i32(
        &mut b,
        PARTITION_LEADER_EPOCH_OFFSET,
        original.partition_leader_epoch,
    );
    b[MAGIC_OFFSET] = 2;
    set_i16(
        &mut b,
        ATTRIBUTES_OFFSET,
        original.attributes & !COMPRESSION_MASK,
    );
    set_i32(&mut b, LAST_OFFSET_DELTA_OFFSET, original.last_offset_delta);
    set_i64(&mut b, BASE_TIMESTAMP_OFFSET, original.base_timestamp);
    set_i64(&mut b, MAX_TIMESTAMP_OFFSET, original.max_timestamp);
    set_i64(&mut b, PRODUCER_ID_OFFSET, original.producer_id);
    set_i16(&mut b, PRODUCER_EPOCH_OFFSET, original.producer_epoch);
    set_i32(&mut b, BASE_SEQUENCE_OFFSET, original.base_sequence);
    set_i32(&mut b, RECORD_COUNT_OFFSET, 0);
    update_crc(&mut b);
    b
}

/// A control batch (transactional, control, one record) holding a COMMIT or ABORT
/// marker, base offset 0. With `delete_horizon_ms` it carries Kafka's delete
/// horizon as its base timestamp (the record keeps `timestamp_ms`).
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: &crate::records::EndTxnMarker,
    timestamp_ms: i64,
    partition_leader_epoch: i32,
    delete_horizon_ms: Option<i64>,
) -> Vec<u8> {
    let base_timestamp = delete_horizon_ms.unwrap_or(timestamp_ms);
    let record = crate::records::control_record(marker, timestamp_ms.wrapping_sub(base_timestamp));
    let mut b = vec![0u8; HEADER_SIZE];
    b.extend_from_slice(&record);
    let length = (b.len() - LOG_OVERHEAD) as i32;
    set_i32(&mut b, LENGTH_OFFSET, length);
    set_i32(
        &mut b,
        PARTITION_LEADER_EPOCH_OFFSET,
        partition_leader_epoch,
    );
    b[MAGIC_OFFSET] = 2;
    let mut attributes = TRANSACTIONAL_BIT | CONTROL_BIT;
    if delete_horizon_ms.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    set_i16(&mut b, ATTRIBUTES_OFFSET, attributes);
    set_i32(&mut b, LAST_OFFSET_DELTA_OFFSET, 0);
    set_i64(&mut b, BASE_TIMESTAMP_OFFSET, base_timestamp);
    set_i64(&mut b, MAX_TIMESTAMP_OFFSET, timestamp_ms);
    set_i64(&mut b, PRODUCER_ID_OFFSET, producer_id);
    set_i16(&mut b, PRODUCER_EPOCH_OFFSET, producer_epoch);
    set_i32(&mut b, BASE_SEQUENCE_OFFSET, NO_SEQUENCE);
    set_i32(&mut b, RECORD_COUNT_OFFSET, 1);
    update_crc(&mut b);
    b
}

/// Where one batch sits in a buffer of concatenated batches.
#[derive(Clone, Copy, Debug)]
pub struct BatchSpan {
    pub position: usize,
    pub header: BatchHeader,
}

/// Splits `records` into batches, checking each one's header, extent and CRC.
/// Trailing bytes that do not form a whole batch are corruption.
pub fn split_batches(records: &[u8]) -> Result<Vec<BatchSpan>, StorageError> {
    let mut spans = Vec::new();
    let mut position = 0;
    while position < records.len() {
        let rest = &records[position..];
        let header = BatchHeader::parse(rest)?;
        if header.size_bytes() > rest.len() {
            return Err(StorageError::CorruptMessage(format!(
                "record batch of {} bytes is truncated to {}",
                header.size_bytes(),
                rest.len()
            )));
        }
        let header = validate_batch(&rest[..header.size_bytes()])?;
        spans.push(BatchSpan { position, header });
        position += header.size_bytes();
    }
    Ok(spans)
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Builds real batches with kafka-protocol's encoder for tests.
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// (key, value) of one record.
    pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    pub struct BatchSpec {
        pub producer_id: i64,
        pub producer_epoch: i16,
        pub base_sequence: i32,
        pub timestamp: i64,
        pub compression: Compression,
    }

    impl Default for BatchSpec {
        fn default() -> Self {
            BatchSpec {
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                timestamp: 1_000,
                compression: Compression::None,
            }
        }
    }

    /// One batch of (key, value) records.
    pub fn batch(spec: &BatchSpec, kvs: &[KeyValue<'_>]) -> Vec<u8> {
        let records: Vec<Record> = kvs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: spec.producer_id,
                producer_epoch: spec.producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder derives the base sequence from the first record; for
                // producers without ids this yields -1.
                sequence: spec.base_sequence.max(-1) + i as i32,
                timestamp: spec.timestamp + i as i64,
                key: k.map(Bytes::copy_from_slice),
                value: v.map(Bytes::copy_from_slice),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: spec.compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
        buf.to_vec()
    }

    /// A batch of `n` records with `value_len`-byte values.
    pub fn simple_batch(n: usize, value_len: usize, timestamp: i64) -> Vec<u8> {
        let value = vec![b'v'; value_len];
        let kvs: Vec<KeyValue<'_>> = (0..n).map(|_| (None, Some(value.as_slice()))).collect();
        batch(
            &BatchSpec {
                timestamp,
                ..Default::default()
            },
            &kvs,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn parses_and_validates_encoded_batch() {
        let b = simple_batch(3, 10, 5_000);
        let spans = split_batches(&b).unwrap();
        assert_eq!(spans.len(), 1);
        let h = spans[0].header;
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.max_timestamp, 5_002);
        assert_eq!(h.base_sequence, NO_SEQUENCE);
    }

    #[test]
    fn detects_corruption_and_truncation() {
        let mut b = simple_batch(2, 10, 1);
        assert!(split_batches(&b[..b.len() - 1]).is_err());
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(
            split_batches(&b),
            Err(StorageError::CorruptMessage(_))
        ));
        assert!(split_batches(&[0u8; 5]).is_err());
    }

    #[test]
    fn patches_keep_crc_valid() {
        let mut b = simple_batch(2, 10, 1);
        set_base_offset(&mut b, 42);
        set_partition_leader_epoch(&mut b, 7);
        set_log_append_time(&mut b, 99);
        let h = validate_batch(&b).unwrap();
        assert_eq!(
            (h.base_offset, h.partition_leader_epoch, h.max_timestamp),
            (42, 7, 99)
        );
        assert!(h.is_log_append_time());
        let empty = empty_batch_like(&h);
        let e = validate_batch(&empty).unwrap();
        assert_eq!((e.record_count, e.last_offset()), (0, 43));
    }

    #[test]
    fn sequence_wraps_like_kafka() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(5, 3), 8);
    }
}
