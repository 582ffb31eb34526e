//! Append and sequential-read throughput of one partition log (issue #2 item 11):
//! 100 B and 1 KiB records in 16 KiB and 1 MiB uncompressed batches, page cache only
//! (no fsync; flush.ms / flush.messages at Kafka's defaults).
//!
//! Run: `cargo bench -p moldau-storage --bench log`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use moldau_storage::{
    AppendOrigin, Log, LogConfig, LogManager, LogManagerConfig, TopicPartition, Uuid,
};
use tempfile::TempDir;

const NOW: i64 = 1_700_000_000_000;
/// Appends start a fresh log after this many bytes so the benchmark stays in the page cache.
const APPEND_LOG_LIMIT: usize = 512 << 20;
/// Size of the log the read benchmark scans, wrapping around.
const READ_LOG_BYTES: usize = 256 << 20;
/// Per-partition fetch size (Kafka's `max.partition.fetch.bytes` default).
const FETCH_BYTES: u32 = 1 << 20;

const CASES: [(usize, usize, &str); 4] = [
    (100, 16 << 10, "100B_records/16KiB_batch"),
    (100, 1 << 20, "100B_records/1MiB_batch"),
    (1024, 16 << 10, "1KiB_records/16KiB_batch"),
    (1024, 1 << 20, "1KiB_records/1MiB_batch"),
];

/// One uncompressed RecordBatch v2 of `batch_bytes / record_bytes` records with
/// `record_bytes`-byte values and 8-byte keys, built by the real codec.
fn make_batch(record_bytes: usize, batch_bytes: usize) -> (Vec<u8>, i64) {
    let count = batch_bytes / record_bytes;
    let value = Bytes::from(vec![b'x'; record_bytes]);
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1 + i as i32,
            timestamp: NOW,
            key: Some(Bytes::from(format!("{i:08}"))),
            value: Some(value.clone()),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = Vec::with_capacity(batch_bytes + batch_bytes / 4);
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    (buf, count as i64)
}

struct BenchLog {
    _dir: TempDir,
    _manager: Arc<LogManager>,
    log: Arc<Log>,
}

fn open_log() -> BenchLog {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        max_message_bytes: 4 << 20,
        ..LogConfig::default()
    };
    let manager =
        LogManager::open(LogManagerConfig::new(dir.path()), config.clone()).expect("open");
    let log = manager
        .get_or_create_log(&TopicPartition::new("bench", 0), Uuid::from_u128(1), config)
        .expect("log");
    BenchLog {
        _dir: dir,
        _manager: manager,
        log,
    }
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10);
    for (record_bytes, batch_bytes, name) in CASES {
        let (batch, _) = make_batch(record_bytes, batch_bytes);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut buf = batch.clone();
                let mut current = open_log();
                let mut written = 0usize;
                let mut elapsed = Duration::ZERO;
                let mut start = Instant::now();
                for _ in 0..iters {
                    if written >= APPEND_LOG_LIMIT {
                        elapsed += start.elapsed();
                        current = open_log();
                        written = 0;
                        start = Instant::now();
                    }
                    let info = current
                        .log
                        .append_as_leader(&mut buf, 0, AppendOrigin::Client, NOW)
                        .expect("append");
                    black_box(info);
                    written += buf.len();
                }
                elapsed += start.elapsed();
                drop(current);
                elapsed
            })
        });
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10);
    for (record_bytes, batch_bytes, name) in CASES {
        let (batch, records_per_batch) = make_batch(record_bytes, batch_bytes);
        let target = make_log_of(&batch, READ_LOG_BYTES);
        let log = &target.log;
        let end = log.log_end_offset();
        // Bytes one fetch returns: whole batches up to FETCH_BYTES, at least one.
        let per_fetch = ((FETCH_BYTES as usize / batch.len()).max(1) * batch.len()) as u64;
        group.throughput(Throughput::Bytes(per_fetch));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            let mut offset = 0i64;
            b.iter(|| {
                let data = log.read(offset, FETCH_BYTES, end, true).expect("read");
                let bytes = data.read_to_bytes().expect("read_to_bytes");
                let batches = (bytes.len() / batch.len()) as i64;
                offset += batches * records_per_batch;
                if offset >= end - records_per_batch * batches {
                    offset = 0;
                }
                black_box(bytes)
            })
        });
    }
    group.finish();
}

fn make_log_of(batch: &[u8], bytes: usize) -> BenchLog {
    let target = open_log();
    let mut buf = batch.to_vec();
    for _ in 0..bytes.div_ceil(batch.len()) {
        target
            .log
            .append_as_leader(&mut buf, 0, AppendOrigin::Client, NOW)
            .expect("append");
    }
    target
        .log
        .update_high_watermark(target.log.log_end_offset());
    target
}

criterion_group!(benches, append, read);
criterion_main!(benches);
