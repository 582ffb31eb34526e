//! LogValidator: checks a produce request's batches before they are appended.
//!
//! Like Kafka it walks every record (framing, count, offset deltas, per-record
//! timestamps, keys on compacted topics) but never materialises them: uncompressed
//! batches are walked in place; compressed ones are decompressed into a bounded
//! scratch buffer and discarded, the stored bytes stay the producer's.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use crate::batch::{self, BatchHeader, BatchSpan};
use crate::config::{CompressionType, LogConfig, TimestampType};
use crate::error::{RecordError, StorageError};
use crate::log::AppendOrigin;
use crate::records;

const NO_TIMESTAMP: i64 = -1;

pub struct LogValidator<'a> {
    pub config: &'a LogConfig,
    pub origin: AppendOrigin,
    pub now_ms: i64,
}

impl LogValidator<'_> {
    /// Every check of issue #2 item 2 for a leader append. CRC and framing were
    /// already verified by `split_batches`.
    pub fn validate(&self, records: &[u8], spans: &[BatchSpan]) -> Result<(), StorageError> {
        if spans.is_empty() {
            return Err(StorageError::InvalidRecord("empty record set".into()));
        }
        if records.len() > self.config.segment_bytes.max(0) as usize {
            return Err(StorageError::RecordListTooLarge(format!(
                "{} bytes exceed segment.bytes {}",
                records.len(),
                self.config.segment_bytes
            )));
        }
        for span in spans {
            self.validate_batch(span)?;
            let bytes = &records[span.position..span.position + span.header.size_bytes()];
            self.validate_records(bytes, &span.header)?;
            // After the records, so that a bad record timestamp is reported per record.
            self.validate_timestamps(span)?;
        }
        Ok(())
    }

    /// Uncompressed records may expand at most this much (decompression bombs).
    fn decompression_limit_bytes(&self) -> usize {
        let max = (self.config.max_message_bytes.max(1 << 20)) as usize;
        max.saturating_mul(32).min(256 << 20)
    }

    fn validate_records(&self, batch: &[u8], header: &BatchHeader) -> Result<(), StorageError> {
        if header.is_control() {
            return Ok(());
        }
        let data = records::records_section(batch, header, self.decompression_limit_bytes())?;
        let check_time = self.config.message_timestamp_type == TimestampType::CreateTime
            && header.base_timestamp != NO_TIMESTAMP;
        let need_key =
            self.config.cleanup_policy.is_compact() && self.origin == AppendOrigin::Client;
        // As Kafka, every record is checked and all rejected ones are reported together.
        let mut rejected = RejectedRecords::default();
        let mut batch_index = 0i32;
        records::walk_records(&data, header, |r| {
            if need_key && !r.has_key {
                rejected.add(
                    batch_index,
                    "compacted topic cannot accept a record without a key".into(),
                    false,
                );
            }
            if check_time {
                let timestamp = header.base_timestamp.saturating_add(r.timestamp_delta);
                if let Err(e) = self.check_create_time(timestamp) {
                    rejected.add(batch_index, e.to_string(), true);
                }
            }
            batch_index += 1;
            Ok(())
        })?;
        rejected.into_result()
    }

    fn validate_batch(&self, span: &BatchSpan) -> Result<(), StorageError> {
        let h = &span.header;
        let size = h.size_bytes();
        if size > self.config.max_message_bytes.max(0) as usize {
            return Err(StorageError::MessageTooLarge {
                size,
                max: self.config.max_message_bytes as usize,
            });
        }
        if self.origin == AppendOrigin::Client {
            if h.last_offset_delta < 0
                || h.record_count <= 0
                || h.record_count as i64 != h.last_offset_delta as i64 + 1
            {
                return Err(StorageError::InvalidRecord(format!(
                    "record count {} inconsistent with last offset delta {}",
                    h.record_count, h.last_offset_delta
                )));
            }
            if h.is_control() {
                return Err(StorageError::InvalidRecord(
                    "clients may not write control batches".into(),
                ));
            }
            if h.has_producer_id() && h.base_sequence < 0 {
                return Err(StorageError::InvalidRecord(format!(
                    "invalid sequence {} for producer {}",
                    h.base_sequence, h.producer_id
                )));
            }
        } else if h.last_offset_delta < 0 || h.record_count < 0 {
            return Err(StorageError::InvalidRecord(
                "negative record count or offset delta".into(),
            ));
        }
        Ok(())
    }

    fn validate_timestamps(&self, span: &BatchSpan) -> Result<(), StorageError> {
        let h = &span.header;
        if self.config.message_timestamp_type == TimestampType::LogAppendTime
            && h.is_log_append_time()
        {
            return Err(StorageError::InvalidTimestamp(
                "producers must not set the LogAppendTime timestamp type".into(),
            ));
        }
        if self.config.message_timestamp_type == TimestampType::CreateTime {
            // The max timestamp is stored and indexed: it must be in range too.
            self.check_create_time(h.max_timestamp)?;
        }
        Ok(())
    }

    fn check_create_time(&self, timestamp: i64) -> Result<(), StorageError> {
        if timestamp == NO_TIMESTAMP {
            return Ok(());
        }
        let diff = self.now_ms as i128 - timestamp as i128;
        let before = self.config.message_timestamp_before_max_ms as i128;
        let after = self.config.message_timestamp_after_max_ms as i128;
        if diff > before || -diff > after {
            return Err(StorageError::InvalidTimestamp(format!(
                "timestamp {timestamp} is out of range [now - {before}, now + {after}] for now {}",
                self.now_ms
            )));
        }
        Ok(())
    }
}

/// The records of one batch that failed validation (KIP-467).
#[derive(Default)]
struct RejectedRecords {
    records: Vec<RecordError>,
    total: usize,
    last_index: Option<i32>,
    invalid_timestamp: bool,
}

impl RejectedRecords {
    /// Messages kept per batch: a batch of a million bad records must not cost a million
    /// strings. Records past the cap fail with the batch all the same.
    const MAX_REPORTED: usize = 1000;

    fn add(&mut self, batch_index: i32, message: String, invalid_timestamp: bool) {
        self.invalid_timestamp |= invalid_timestamp;
        // One entry per record, as Kafka (a record with two faults reports the first).
        if self.last_index == Some(batch_index) {
            return;
        }
        self.last_index = Some(batch_index);
        self.total += 1;
        if self.records.len() < Self::MAX_REPORTED {
            self.records.push(RecordError {
                batch_index,
                message,
            });
        }
    }

    fn into_result(self) -> Result<(), StorageError> {
        let Some(first) = self.records.first() else {
            return Ok(());
        };
        let summary = format!(
            "{} record(s) of the batch rejected, the first (index {}): {}",
            self.total, first.batch_index, first.message
        );
        Err(StorageError::RecordErrors {
            invalid_timestamp: self.invalid_timestamp,
            summary,
            records: self.records,
        })
    }
}

fn kafka_compression(codec: u8) -> Compression {
    match codec {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    }
}

/// When the topic's `compression.type` names a codec other than a batch's, returns
/// the request re-encoded with it (Kafka recompresses in LogValidator). Producer
/// fields, sequences and timestamps are kept; offsets are assigned afterwards.
pub fn recompress_if_needed(
    records: &[u8],
    spans: &[BatchSpan],
    target: CompressionType,
) -> Result<Option<Vec<u8>>, StorageError> {
    let Some(codec) = target.codec_id() else {
        return Ok(None);
    };
    if spans
        .iter()
        .all(|s| s.header.compression_codec() == codec || s.header.is_control())
    {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(records.len());
    for span in spans {
        let bytes = &records[span.position..span.position + span.header.size_bytes()];
        if span.header.compression_codec() == codec || span.header.is_control() {
            out.extend_from_slice(bytes);
            continue;
        }
        let set = RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(bytes))
            .map_err(|e| StorageError::CorruptMessage(format!("undecodable batch: {e}")))?;
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: kafka_compression(codec),
        };
        RecordBatchEncoder::encode(&mut buf, &set.records, &options)
            .map_err(|e| StorageError::CorruptMessage(format!("could not re-encode batch: {e}")))?;
        let mut encoded = buf.to_vec();
        batch::restore_filtered_header(&mut encoded, &span.header);
        out.extend_from_slice(&encoded);
    }
    Ok(Some(out))
}
