//! Arbitrary bytes appended as a produce request's records to a fresh partition log (in a
//! temporary directory) with `Log::append_as_leader`, then read back.
//!
//! Properties: the append returns Ok or a typed `StorageError`, never panics; a rejected
//! append leaves the log empty; an acknowledged append reads back byte for byte as the
//! (offset-patched) bytes that were appended, before and after a clean reopen.
//!
//! Input layout: byte 0 holds flags, the rest is the payload.
//! - bit 0: recompute the CRC of every framed batch, so the fuzzer gets past the CRC check.
//! - bit 1: compacted topic (records are decoded to check keys).
//! - bit 2: LogAppendTime topic.
//! - bit 3: structured: the payload describes records that are encoded with kafka-protocol's
//!   RecordBatchEncoder (any codec) and then mutated, which reaches compressed batches.
#![no_main]

use bytes::BytesMut;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType as RecordTs,
};
use libfuzzer_sys::fuzz_target;
use moldau_storage::{
    AppendOrigin, CleanupPolicy, LogConfig, LogManager, LogManagerConfig, TimestampType,
    TopicPartition, Uuid,
};

const NOW_MS: i64 = 1_700_000_000_000;
const LOG_OVERHEAD: usize = 12;
const CRC_OFFSET: usize = 17;
const CRC_START: usize = 21;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, payload)) = data.split_first() else {
        return;
    };
    let mut records = if flags & 8 != 0 {
        structured(payload)
    } else {
        payload.to_vec()
    };
    if flags & 1 != 0 {
        fix_crcs(&mut records);
    }
    let mut config = LogConfig::default();
    if flags & 2 != 0 {
        config.cleanup_policy = CleanupPolicy::Compact;
    }
    if flags & 4 != 0 {
        config.message_timestamp_type = TimestampType::LogAppendTime;
    }
    append_and_read_back(records, config);
});

fn append_and_read_back(mut records: Vec<u8>, config: LogConfig) {
    // tmpfs when there is one: the log fsyncs, and a disk makes that the whole cost of a run.
    let dir = tempfile::Builder::new()
        .tempdir_in(scratch_dir())
        .expect("tempdir");
    let tp = TopicPartition::new("fuzz", 0);
    let open = || {
        LogManager::open(LogManagerConfig::new(dir.path()), config.clone()).expect("open log dir")
    };
    let manager = open();
    let log = manager
        .get_or_create_log(&tp, Uuid::from_u128(1), config.clone())
        .expect("create log");
    let result = log.append_as_leader(&mut records, 0, AppendOrigin::Client, NOW_MS);
    let Ok(info) = result else {
        assert_eq!(
            log.log_end_offset(),
            0,
            "a rejected append changed the log: {result:?}"
        );
        return;
    };
    assert!(!info.duplicate);
    assert_eq!(info.first_offset, 0);
    assert_eq!(log.log_end_offset(), info.last_offset + 1);
    assert_eq!(
        read_all(&log),
        records,
        "acknowledged bytes read back differently"
    );
    drop(log);
    manager.shutdown().expect("clean shutdown");
    drop(manager);

    let manager = open();
    let log = manager.get_log(&tp).expect("log survives a reopen");
    assert_eq!(log.log_end_offset(), info.last_offset + 1);
    assert_eq!(
        read_all(&log),
        records,
        "acknowledged bytes changed across a reopen"
    );
    manager.shutdown().expect("clean shutdown");
}

fn scratch_dir() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn read_all(log: &moldau_storage::Log) -> Vec<u8> {
    let end = log.log_end_offset();
    log.read(0, i32::MAX as u32, end, true)
        .expect("read acknowledged offsets")
        .read_to_bytes()
        .expect("read segment bytes")
        .to_vec()
}

/// Recomputes the CRC-32C of each batch whose length field frames it inside `records`.
fn fix_crcs(records: &mut [u8]) {
    let mut pos = 0;
    while pos + CRC_START <= records.len() {
        let len = i32::from_be_bytes(records[pos + 8..pos + 12].try_into().unwrap());
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|len| (pos + LOG_OVERHEAD).checked_add(len))
            .filter(|&end| end <= records.len() && end >= pos + CRC_START)
        else {
            return;
        };
        let crc = crc32c::crc32c(&records[pos + CRC_START..end]);
        records[pos + CRC_OFFSET..pos + CRC_START].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// Encodes the records the payload describes, then applies the rest as XOR mutations.
fn structured(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.iter().copied();
    let mut next = || input.next().unwrap_or(0);
    let compression = match next() % 5 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        _ => Compression::Zstd,
    };
    let count = next() % 8 + 1;
    let batch: Vec<Record> = (0..count)
        .map(|i| {
            let key_len = next() % 16;
            let value_len = next();
            let key = (key_len > 0).then(|| bytes::Bytes::from(vec![next(); key_len as usize]));
            let value = bytes::Bytes::from(vec![next(); value_len as usize]);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: RecordTs::Creation,
                offset: i as i64,
                sequence: -1,
                timestamp: NOW_MS - next() as i64,
                key,
                value: Some(value),
                headers: IndexMap::new(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &batch, &options).expect("encode");
    let consumed = 2
        + batch.len() * 4
        + batch
            .iter()
            .map(|r| r.key.is_some() as usize)
            .sum::<usize>();
    let mut records = buf.to_vec();
    for m in payload.get(consumed..).unwrap_or(&[]).chunks_exact(3) {
        let pos = u16::from_be_bytes([m[0], m[1]]) as usize;
        if let Some(b) = records.get_mut(pos) {
            *b ^= m[2];
        }
    }
    records
}
