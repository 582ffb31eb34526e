//! Shared helpers for the storage integration tests: RecordBatch v2 bytes built with
//! the real codec (`kafka_protocol::records`), batch header parsing, and a harness
//! that opens, cleanly reopens and "crashes" a `LogManager` in a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use moldau_storage::{
    AppendOrigin, Log, LogAppendInfo, LogConfig, LogManager, LogManagerConfig, StorageError,
    TopicPartition, Uuid,
};
use tempfile::TempDir;

pub use kafka_protocol::records::Compression;

pub const ALL_CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Size of the fixed RecordBatch v2 header (base offset .. record count).
pub const HEADER_LEN: usize = 61;
/// Offset + length prefix that precedes the counted batch bytes.
pub const LOG_OVERHEAD: usize = 12;
pub const CRC_OFFSET: usize = 17;
pub const ATTRIBUTES_OFFSET: usize = 21;
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
pub const FIRST_TIMESTAMP_OFFSET: usize = 27;
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
pub const RECORD_COUNT_OFFSET: usize = 57;
pub const MAGIC_OFFSET: usize = 16;

/// A record as a producer sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
}

impl Rec {
    pub fn kv(key: &str, value: &str, timestamp: i64) -> Rec {
        Rec {
            key: Some(key.as_bytes().to_vec()),
            value: Some(value.as_bytes().to_vec()),
            timestamp,
        }
    }

    pub fn tombstone(key: &str, timestamp: i64) -> Rec {
        Rec {
            key: Some(key.as_bytes().to_vec()),
            value: None,
            timestamp,
        }
    }

    pub fn unkeyed(value: &[u8], timestamp: i64) -> Rec {
        Rec {
            key: None,
            value: Some(value.to_vec()),
            timestamp,
        }
    }
}

/// Idempotent producer identity of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

/// One RecordBatch v2 holding `records` (offset deltas 0..n, base offset 0).
pub fn batch(records: &[Rec], compression: Compression) -> Vec<u8> {
    batch_with(records, compression, None)
}

/// One RecordBatch v2 for an (optionally idempotent) producer, encoded by the codec crate.
pub fn batch_with(
    records: &[Rec],
    compression: Compression,
    producer: Option<Producer>,
) -> Vec<u8> {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let (producer_id, producer_epoch, base_sequence) = match producer {
        Some(p) => (p.id, p.epoch, p.base_sequence),
        None => (-1, -1, -1),
    };
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch when offset - sequence changes, so a batch
            // without a producer counts up from -1 (its base sequence stays -1).
            sequence: base_sequence.wrapping_add(i as i32),
            timestamp: r.timestamp,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = Vec::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    assert_eq!(
        split_batches(&buf).len(),
        1,
        "encoder produced more than one batch"
    );
    buf
}

/// A batch of `count` records of `value_len` bytes, keys "k<i % distinct>".
pub fn sized_batch(
    count: usize,
    value_len: usize,
    compression: Compression,
    timestamp: i64,
) -> Vec<u8> {
    let value = vec![b'v'; value_len];
    let records: Vec<Rec> = (0..count)
        .map(|i| Rec {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(value.clone()),
            timestamp,
        })
        .collect();
    batch(&records, compression)
}

/// The fixed header of a RecordBatch v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    pub fn parse(b: &[u8]) -> BatchHeader {
        assert!(
            b.len() >= HEADER_LEN,
            "batch header needs {HEADER_LEN} bytes, got {}",
            b.len()
        );
        let i64_at = |o: usize| i64::from_be_bytes(b[o..o + 8].try_into().unwrap());
        let i32_at = |o: usize| i32::from_be_bytes(b[o..o + 4].try_into().unwrap());
        let i16_at = |o: usize| i16::from_be_bytes(b[o..o + 2].try_into().unwrap());
        BatchHeader {
            base_offset: i64_at(0),
            batch_length: i32_at(8),
            partition_leader_epoch: i32_at(12),
            magic: b[16] as i8,
            crc: u32::from_be_bytes(b[17..21].try_into().unwrap()),
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            first_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            record_count: i32_at(57),
        }
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Bytes of the whole batch including the offset and length prefix.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    pub fn codec(&self) -> u8 {
        (self.attributes & 0x7) as u8
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & (1 << 3) != 0
    }
}

/// CRC-32C over attributes .. end, as stored in the header.
pub fn crc_valid(batch: &[u8]) -> bool {
    let h = BatchHeader::parse(batch);
    batch.len() == h.size() && crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]) == h.crc
}

/// Recomputes the CRC after a test edited a CRC-covered field.
pub fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Splits concatenated batches; panics on a partial batch (a log must never serve one).
pub fn split_batches(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        assert!(
            buf.len() - pos >= HEADER_LEN,
            "partial batch header at byte {pos} of {}",
            buf.len()
        );
        let h = BatchHeader::parse(&buf[pos..]);
        assert!(
            h.batch_length > 0,
            "non-positive batch length at byte {pos}"
        );
        let end = pos + h.size();
        assert!(
            end <= buf.len(),
            "partial batch at byte {pos}: needs {} bytes, {} left",
            h.size(),
            buf.len() - pos
        );
        out.push(&buf[pos..end]);
        pos = end;
    }
    out
}

/// A record as read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
}

/// Decodes one stored batch (CRC checked by the codec). Under LogAppendTime every
/// record's timestamp is the batch's max timestamp, as Kafka clients read it.
pub fn decode_batch(batch: &[u8]) -> (BatchHeader, Vec<StoredRecord>) {
    let header = BatchHeader::parse(batch);
    let mut bytes = Bytes::copy_from_slice(batch);
    let set = RecordBatchDecoder::decode(&mut bytes).expect("stored batch decodes");
    let records = set
        .records
        .into_iter()
        .map(|r| StoredRecord {
            offset: r.offset,
            key: r.key.map(|k| k.to_vec()),
            value: r.value.map(|v| v.to_vec()),
            timestamp: if header.is_log_append_time() {
                header.max_timestamp
            } else {
                r.timestamp
            },
        })
        .collect();
    (header, records)
}

pub fn tp() -> TopicPartition {
    TopicPartition::new("events", 0)
}

pub fn manager_config(dir: &Path) -> LogManagerConfig {
    LogManagerConfig {
        recovery_threads: 1,
        ..LogManagerConfig::new(dir)
    }
}

/// One partition log in a temp dir, with its manager. Background threads are never
/// started: tests drive retention and cleaning with explicit `now_ms`.
pub struct Harness {
    pub dir: TempDir,
    pub manager: Option<Arc<LogManager>>,
    pub log: Option<Arc<Log>>,
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub config: LogConfig,
    /// `log.cleaner.dedupe.buffer.size` of the manager, when not the default.
    pub dedupe_buffer_bytes: Option<usize>,
}

impl Harness {
    pub fn new(config: LogConfig) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut h = Harness {
            dir,
            manager: None,
            log: None,
            tp: tp(),
            topic_id: Uuid::from_u128(0x6d6f6c64_6175_4000_8000_000000000001),
            config,
            dedupe_buffer_bytes: None,
        };
        h.open();
        h
    }

    pub fn log(&self) -> &Arc<Log> {
        self.log.as_ref().expect("log is open")
    }

    pub fn manager(&self) -> &Arc<LogManager> {
        self.manager.as_ref().expect("manager is open")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn partition_dir(&self) -> PathBuf {
        self.dir.path().join(self.tp.dir_name())
    }

    /// Opens the manager (recovering whatever is on disk) and the partition log.
    pub fn open(&mut self) {
        assert!(self.manager.is_none());
        let mut manager_config = manager_config(self.dir.path());
        if let Some(bytes) = self.dedupe_buffer_bytes {
            manager_config.cleaner_dedupe_buffer_bytes = bytes;
        }
        let manager =
            LogManager::open(manager_config, self.config.clone()).expect("open log manager");
        let log = manager
            .get_or_create_log(&self.tp, self.topic_id, self.config.clone())
            .expect("get_or_create_log");
        log.update_config(self.config.clone());
        self.manager = Some(manager);
        self.log = Some(log);
    }

    /// Clean shutdown then open again.
    pub fn reopen_clean(&mut self) {
        self.manager().shutdown().expect("clean shutdown");
        self.close_without_shutdown();
        self.open();
    }

    /// Simulated crash: everything dropped, no clean-shutdown marker written.
    pub fn close_without_shutdown(&mut self) {
        self.log = None;
        self.manager = None;
    }

    pub fn reopen_unclean(&mut self) {
        self.close_without_shutdown();
        self.open();
    }

    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config.clone();
        self.log().update_config(config);
    }
}

/// Appends as leader (epoch 0, client origin) and moves the high watermark to the end,
/// as the replica manager of a one-replica partition does.
pub fn append(log: &Log, records: &mut [u8], now_ms: i64) -> Result<LogAppendInfo, StorageError> {
    let info = log.append_as_leader(records, 0, AppendOrigin::Client, now_ms)?;
    log.update_high_watermark(log.log_end_offset());
    Ok(info)
}

/// Every batch from the log start to the log end, read in 64 KiB fetches.
pub fn read_all_batches(log: &Log) -> Vec<Vec<u8>> {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut out = Vec::new();
    while offset < end {
        let data = log.read(offset, 64 * 1024, end, true).expect("read");
        let bytes = data.read_to_bytes().expect("read_to_bytes");
        assert_eq!(
            bytes.len(),
            data.total_bytes as usize,
            "total_bytes matches the slices"
        );
        if bytes.is_empty() {
            break;
        }
        let batches = split_batches(&bytes);
        let mut next = offset;
        for b in batches {
            assert!(crc_valid(b), "served batch has a bad CRC");
            let h = BatchHeader::parse(b);
            assert!(
                h.last_offset() >= next,
                "batch [{}, {}] does not reach offset {next}",
                h.base_offset,
                h.last_offset()
            );
            next = h.last_offset() + 1;
            out.push(b.to_vec());
        }
        assert!(next > offset, "read made no progress at offset {offset}");
        offset = next;
    }
    out
}

/// Every live record (offset >= log start offset) in offset order.
pub fn read_all_records(log: &Log) -> Vec<StoredRecord> {
    let start = log.log_start_offset();
    read_all_batches(log)
        .iter()
        .flat_map(|b| decode_batch(b).1)
        .filter(|r| r.offset >= start)
        .collect()
}

/// `(base_offset, path)` of every file in `dir` with this extension, sorted by base offset.
pub fn segment_files(dir: &Path, ext: &str) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .expect("read partition dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?;
            if stem.len() != 20 {
                return None;
            }
            Some((stem.parse::<i64>().ok()?, p))
        })
        .collect();
    out.sort();
    out
}

/// A small deterministic PRNG (xorshift64*) for damage positions in crash tests.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }
}

/// Names of the entries of `dir` that end with `suffix`.
pub fn names_ending_with(dir: &Path, suffix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(suffix))
        .collect()
}
