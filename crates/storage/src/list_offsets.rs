//! ListOffsets: offset by timestamp and max timestamp (Kafka semantics). This is
//! the one read path that decodes records: it must name the exact record.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use crate::batch::BatchHeader;
use crate::error::StorageError;
use crate::log::{
    Log, TimestampAndOffset, EARLIEST_LOCAL_TIMESTAMP, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
};
use crate::segment::LogSegment;

impl Log {
    /// First offset (>= log start) whose record timestamp is >= `target_timestamp`.
    /// Also answers the sentinels -1 (latest), -2 (earliest), -3 (max timestamp),
    /// -4 (earliest local).
    pub fn fetch_offset_by_timestamp(
        &self,
        target_timestamp: i64,
    ) -> Result<Option<TimestampAndOffset>, StorageError> {
        match target_timestamp {
            LATEST_TIMESTAMP => {
                let offset = self.log_end_offset();
                return Ok(Some(TimestampAndOffset {
                    timestamp: -1,
                    offset,
                    leader_epoch: self.latest_epoch(),
                }));
            }
            EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
                let offset = self.log_start_offset();
                let leader_epoch = self.epoch_for_offset(offset);
                return Ok(Some(TimestampAndOffset {
                    timestamp: -1,
                    offset,
                    leader_epoch,
                }));
            }
            MAX_TIMESTAMP => return self.max_timestamp_and_offset(),
            t if t < 0 => return Ok(None),
            _ => {}
        }
        let log_start = self.log_start_offset();
        let segments = self.segments_snapshot();
        for segment in segments
            .iter()
            .filter(|s| s.max_timestamp() >= target_timestamp)
        {
            let start = segment.time_lookup_offset(target_timestamp).max(log_start);
            let found = find_record(
                segment,
                start,
                |h| h.max_timestamp >= target_timestamp,
                |offset, ts| offset >= start && ts >= target_timestamp,
            )?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP: the first record with the largest timestamp.
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampAndOffset>, StorageError> {
        let segments = self.segments_snapshot();
        let mut best: Option<&std::sync::Arc<LogSegment>> = None;
        for segment in segments.iter() {
            if segment.max_timestamp() >= 0
                && best.is_none_or(|b| segment.max_timestamp() > b.max_timestamp())
            {
                best = Some(segment);
            }
        }
        let Some(segment) = best else { return Ok(None) };
        let max = segment.max_timestamp();
        // Like Kafka, answered from the segment even if below the log start offset.
        let start = segment.base_offset();
        find_record(
            segment,
            start,
            |h| h.max_timestamp == max,
            |_, ts| ts == max,
        )
    }
}

/// Scans batches from `start` for the first one matching `batch_matches`, then
/// returns its first record matching `record_matches(offset, timestamp)`.
fn find_record(
    segment: &LogSegment,
    start: i64,
    batch_matches: impl Fn(&BatchHeader) -> bool,
    record_matches: impl Fn(i64, i64) -> bool,
) -> Result<Option<TimestampAndOffset>, StorageError> {
    let mut candidates = Vec::new();
    segment.for_each_header(segment.lookup_position(start), |position, h| {
        if h.last_offset() >= start && batch_matches(h) {
            candidates.push((position, *h));
            // A batch may match on its max timestamp but hold no record after `start`.
            return candidates.len() < 64;
        }
        true
    })?;
    for (position, header) in candidates {
        if let Some(found) = find_in_batch(segment, position, &header, &record_matches)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn find_in_batch(
    segment: &LogSegment,
    position: u64,
    header: &BatchHeader,
    record_matches: &impl Fn(i64, i64) -> bool,
) -> Result<Option<TimestampAndOffset>, StorageError> {
    let leader_epoch =
        (header.partition_leader_epoch >= 0).then_some(header.partition_leader_epoch);
    let mut bytes = Bytes::from(segment.read_batch(position, header)?);
    let set = RecordBatchDecoder::decode(&mut bytes).map_err(|e| {
        StorageError::CorruptMessage(format!(
            "undecodable batch at offset {}: {e}",
            header.base_offset
        ))
    })?;
    for record in set.records {
        // LogAppendTime: every record carries the batch's max timestamp.
        let ts = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            record.timestamp
        };
        if record_matches(record.offset, ts) {
            return Ok(Some(TimestampAndOffset {
                timestamp: ts,
                offset: record.offset,
                leader_epoch,
            }));
        }
    }
    Ok(None)
}
