//! Logs the broker writes for its own state machines: the metadata log, `__consumer_offsets`
//! and `__transaction_state`. Each holds keyed records in ordinary batches, written by one
//! coordinator and replayed in full at startup.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use moldau_storage::{BatchHeader, Log};

use crate::error::BrokerError;

/// One data record of an internal log.
pub struct InternalRecord {
    pub offset: i64,
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
}

/// Encodes `(key, value)` pairs as one uncompressed RecordBatch v2 (offsets are assigned on
/// append).
pub fn encode_batch(
    records: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    now_ms: i64,
) -> Result<BytesMut, BrokerError> {
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: now_ms,
            key: Some(key),
            value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| BrokerError::MetadataLog(format!("cannot encode batch: {e}")))?;
    Ok(buf)
}

/// Hands every data record from the log start to the log end to `apply`, in offset order.
/// Control batches are skipped; batches emptied by compaction still advance the position.
pub fn replay(
    log: &Log,
    mut apply: impl FnMut(InternalRecord) -> Result<(), BrokerError>,
) -> Result<(), BrokerError> {
    let name = log.topic_partition().to_string();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let data = log.read(offset, 1 << 20, end, true)?;
        if data.is_empty() {
            break;
        }
        let bytes = data.read_to_bytes()?;
        let before = offset;
        let mut position = 0;
        while position < bytes.len() {
            let header = BatchHeader::parse(&bytes[position..])?;
            let batch_end = position + header.size_bytes();
            let mut batch = bytes.slice(position..batch_end.min(bytes.len()));
            position = batch_end;
            offset = header.next_offset();
            if header.is_control() {
                continue;
            }
            let decoded = RecordBatchDecoder::decode(&mut batch).map_err(|e| {
                BrokerError::MetadataLog(format!(
                    "{name}: undecodable batch at offset {}: {e}",
                    header.base_offset
                ))
            })?;
            for record in decoded.records {
                apply(InternalRecord {
                    offset: record.offset,
                    key: record.key,
                    value: record.value,
                })?;
            }
        }
        if offset == before {
            break;
        }
    }
    Ok(())
}
