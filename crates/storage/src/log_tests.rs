//! Unit tests of Log, LogManager and LogCleaner working together.

use std::sync::Arc;

use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::batch::split_batches;
use crate::batch::test_util::{batch, simple_batch, BatchSpec};
use crate::{
    AppendOrigin, CleanupPolicy, Log, LogConfig, LogManager, LogManagerConfig, StorageError,
    TopicPartition, Uuid,
};

const NOW: i64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, config: &LogConfig) -> (Arc<LogManager>, Arc<Log>) {
    let manager = LogManager::open(LogManagerConfig::new(dir), config.clone()).unwrap();
    let tp = TopicPartition::new("t", 0);
    let log = manager
        .get_or_create_log(&tp, Uuid::from_u128(7), config.clone())
        .unwrap();
    log.update_config(config.clone());
    (manager, log)
}

fn append(log: &Log, mut b: Vec<u8>) -> Result<crate::LogAppendInfo, StorageError> {
    let info = log.append_as_leader(&mut b, 0, AppendOrigin::Client, NOW)?;
    log.update_high_watermark(log.log_end_offset());
    Ok(info)
}

/// (offset, key, value) of every record from the log start.
type StoredRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn records(log: &Log) -> Vec<StoredRecord> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let data = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        if data.is_empty() {
            break;
        }
        let mut bytes = data.read_to_bytes().unwrap();
        for span in split_batches(&bytes).unwrap() {
            offset = span.header.next_offset();
        }
        for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
            for r in set.records {
                out.push((
                    r.offset,
                    r.key.map(|k| k.to_vec()),
                    r.value.map(|v| v.to_vec()),
                ));
            }
        }
    }
    out
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

#[test]
fn appends_roll_and_survive_clean_and_unclean_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments();
    let (manager, log) = open(dir.path(), &config);
    for _ in 0..20 {
        append(&log, simple_batch(2, 100, NOW)).unwrap();
    }
    assert!(log.segment_count() > 3);
    assert_eq!(records(&log).len(), 40);
    manager.shutdown().unwrap();
    drop((manager, log));
    let (manager, log) = open(dir.path(), &config);
    assert_eq!((log.log_end_offset(), log.high_watermark()), (40, 40));
    // Tear the last batch, then crash.
    let last = log.segments_snapshot().last().unwrap().clone();
    append(&log, simple_batch(2, 100, NOW)).unwrap();
    last.file().set_len(last.size_bytes() - 5).unwrap();
    drop((manager, log, last));
    let (_manager, log) = open(dir.path(), &config);
    assert_eq!(log.log_end_offset(), 40);
    assert_eq!(records(&log).len(), 40);
    assert_eq!(
        append(&log, simple_batch(1, 10, NOW)).unwrap().first_offset,
        40
    );
}

#[test]
fn rolls_exactly_when_segment_bytes_would_be_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let (_m, log) = open(
        dir.path(),
        &LogConfig {
            segment_bytes: 1000,
            ..LogConfig::default()
        },
    );
    let size = simple_batch(1, 100, NOW).len();
    for _ in 0..10 {
        append(&log, simple_batch(1, 100, NOW)).unwrap();
    }
    let per_segment = 1000 / size;
    assert_eq!(log.segment_count(), 10usize.div_ceil(per_segment));
    let too_big = simple_batch(10, 100, NOW);
    assert!(matches!(
        append(&log, too_big),
        Err(StorageError::RecordListTooLarge(_))
    ));
}

fn idempotent(seq: i32, epoch: i16) -> Vec<u8> {
    let spec = BatchSpec {
        producer_id: 42,
        producer_epoch: epoch,
        base_sequence: seq,
        timestamp: NOW,
        ..Default::default()
    };
    batch(&spec, &[(None, Some(b"a")), (None, Some(b"b"))])
}

#[test]
fn idempotent_producer_state_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments();
    let (manager, log) = open(dir.path(), &config);
    append(&log, idempotent(0, 0)).unwrap();
    append(&log, idempotent(2, 0)).unwrap();
    let dup = append(&log, idempotent(2, 0)).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.first_offset, dup.last_offset), (2, 3));
    assert!(matches!(
        append(&log, idempotent(7, 0)),
        Err(StorageError::OutOfOrderSequence(_))
    ));
    drop((manager, log));
    // Unclean: state is rebuilt by replaying batches.
    let (manager, log) = open(dir.path(), &config);
    assert_eq!(log.producer_state(42).unwrap().last_seq(), 3);
    assert!(matches!(
        append(&log, idempotent(7, 0)),
        Err(StorageError::OutOfOrderSequence(_))
    ));
    manager.shutdown().unwrap();
    drop((manager, log));
    // Clean: state comes from the snapshot.
    let (_manager, log) = open(dir.path(), &config);
    assert!(log.dir().join("00000000000000000004.snapshot").exists());
    append(&log, idempotent(4, 0)).unwrap();
    assert!(matches!(
        append(&log, idempotent(0, -1)),
        Err(StorageError::InvalidProducerEpoch(_))
    ));
}

fn keyed(key: &str, value: Option<&str>, compression: Compression) -> Vec<u8> {
    let spec = BatchSpec {
        timestamp: NOW,
        compression,
        ..Default::default()
    };
    batch(
        &spec,
        &[
            (Some(key.as_bytes()), value.map(str::as_bytes)),
            (Some(b"other"), Some(b"x")),
        ],
    )
}

#[test]
fn cleaner_keeps_latest_per_key_and_preserves_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        delete_retention_ms: 0,
        ..small_segments()
    };
    let (manager, log) = open(dir.path(), &config);
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Snappy,
        Compression::Zstd,
    ];
    for i in 0..20 {
        let value = format!("v{i}");
        append(
            &log,
            keyed(&format!("k{}", i % 3), Some(&value), codecs[i % 5]),
        )
        .unwrap();
    }
    append(&log, keyed("k0", None, Compression::Gzip)).unwrap();
    let end = log.log_end_offset();
    // Roll so everything is cleanable.
    append(
        &log,
        keyed("pad", Some(&"x".repeat(900)), Compression::None),
    )
    .unwrap();
    manager.run_cleaner_once(NOW).unwrap();
    let live: Vec<_> = records(&log).into_iter().filter(|r| r.0 < end).collect();
    let keys: Vec<(i64, Vec<u8>)> = live.iter().map(|r| (r.0, r.1.clone().unwrap())).collect();
    assert_eq!(
        keys,
        vec![
            (34, b"k2".to_vec()),
            (38, b"k1".to_vec()),
            (40, b"k0".to_vec()),
            (41, b"other".to_vec())
        ]
    );
    assert_eq!(live[2].2, None, "tombstone kept on its first pass");
    // A second pass past delete.retention.ms drops the tombstone; a restart keeps the result.
    append(
        &log,
        keyed("pad", Some(&"y".repeat(900)), Compression::None),
    )
    .unwrap();
    manager.run_cleaner_once(NOW + 10).unwrap();
    manager.shutdown().unwrap();
    drop((manager, log));
    let (_m, log) = open(dir.path(), &config);
    let offsets: Vec<i64> = records(&log)
        .iter()
        .map(|r| r.0)
        .filter(|o| *o < end)
        .collect();
    assert_eq!(
        offsets,
        vec![34, 38],
        "tombstone and superseded \"other\" gone"
    );
    for b in crate::log_tests::all_batches(&log) {
        assert!(crate::batch::validate_batch(&b).is_ok());
    }
}

fn all_batches(log: &Log) -> Vec<Vec<u8>> {
    let data = log
        .read(log.log_start_offset(), u32::MAX, i64::MAX, true)
        .unwrap();
    let bytes = data.read_to_bytes().unwrap();
    split_batches(&bytes)
        .unwrap()
        .iter()
        .map(|s| bytes[s.position..s.position + s.header.size_bytes()].to_vec())
        .collect()
}

#[test]
fn committed_swap_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_segments();
    let (manager, log) = open(dir.path(), &config);
    for _ in 0..10 {
        append(&log, simple_batch(2, 100, NOW)).unwrap();
    }
    let second_base = log.segments_snapshot()[1].base_offset();
    let bytes = all_batches(&log);
    drop((manager, log));
    // A "cleaned" first segment holding only its first batch, committed as .swap.
    let pdir = dir.path().join("t-0");
    std::fs::write(pdir.join("00000000000000000000.log.swap"), &bytes[0]).unwrap();
    let (_m, log) = open(dir.path(), &config);
    assert!(!pdir.join("00000000000000000000.log.swap").exists());
    let offsets: Vec<i64> = records(&log).iter().map(|r| r.0).take(3).collect();
    assert_eq!(
        offsets,
        vec![0, 1, second_base],
        "the swap replaced the first segment"
    );
    assert_eq!(log.log_end_offset(), 20);
}

/// Rough throughput check: `cargo test --release -p moldau-storage --lib throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_of_1mb_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (_m, log) = open(dir.path(), &LogConfig::default());
    let template = simple_batch(1000, 1000, NOW);
    let total_batches = 1000;
    let mut buf = template.clone();
    let start = std::time::Instant::now();
    for _ in 0..total_batches {
        buf.copy_from_slice(&template);
        log.append_as_leader(&mut buf, 0, AppendOrigin::Client, NOW)
            .unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes = (template.len() * total_batches) as f64;
    eprintln!("append: {:.2} GB/s", bytes / secs / 1e9);
    let start = std::time::Instant::now();
    let mut crc = 0;
    for _ in 0..total_batches {
        crc ^= crate::batch::compute_crc(&template);
    }
    eprintln!(
        "crc32c: {:.2} GB/s ({crc})",
        bytes / start.elapsed().as_secs_f64() / 1e9
    );
    let start = std::time::Instant::now();
    let (mut offset, mut read) = (0, 0usize);
    while offset < log.log_end_offset() {
        let data = log.read(offset, 4 << 20, i64::MAX, true).unwrap();
        let bytes = data.read_to_bytes().unwrap();
        read += bytes.len();
        for span in split_batches(&bytes).unwrap() {
            offset = span.header.next_offset();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!("read: {:.2} GB/s", read as f64 / secs / 1e9);
}

#[test]
fn topic_compression_type_recompresses_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        compression_type: crate::CompressionType::Zstd,
        ..LogConfig::default()
    };
    let (_m, log) = open(dir.path(), &config);
    let spec = BatchSpec {
        producer_id: 9,
        producer_epoch: 0,
        base_sequence: 0,
        timestamp: NOW,
        ..Default::default()
    };
    append(
        &log,
        batch(&spec, &[(Some(b"k"), Some(b"v1")), (None, Some(b"v2"))]),
    )
    .unwrap();
    append(&log, simple_batch(3, 10, NOW)).unwrap();
    let batches = all_batches(&log);
    for b in &batches {
        let h = crate::batch::validate_batch(b).unwrap();
        assert_eq!(h.compression_codec(), 4);
    }
    let h0 = crate::batch::validate_batch(&batches[0]).unwrap();
    assert_eq!(
        (h0.producer_id, h0.base_sequence, h0.last_offset()),
        (9, 0, 1)
    );
    let recs = records(&log);
    assert_eq!(recs.len(), 5);
    assert_eq!(recs[1].2.as_deref(), Some(&b"v2"[..]));
    assert_eq!(log.producer_state(9).unwrap().last_seq(), 1);
}

#[test]
fn readers_never_see_partial_batches_while_the_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 512,
        ..LogConfig::default()
    };
    let (_m, log) = open(dir.path(), &config);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut checked = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let end = log.log_end_offset();
                    let mut offset = 0;
                    while offset < end {
                        let data = log.read(offset, 8192, end, true).unwrap();
                        let bytes = data.read_to_bytes().unwrap();
                        let spans = split_batches(&bytes).expect("whole, valid batches");
                        assert!(spans.iter().all(|s| s.header.last_offset() < end));
                        offset = spans.last().map_or(end, |s| s.header.next_offset());
                        checked += spans.len();
                    }
                }
                checked
            })
        })
        .collect();
    for i in 0..400 {
        append(&log, simple_batch(1 + i % 7, 50 + i % 300, NOW)).unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert!(log.segment_count() > 2);
}

#[test]
fn log_is_send_and_sync_and_hostile_follower_offsets_are_errors() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<LogManager>();
    let dir = tempfile::tempdir().unwrap();
    let (_m, log) = open(dir.path(), &LogConfig::default());
    let mut b = simple_batch(3, 10, NOW);
    crate::batch::set_base_offset(&mut b, i64::MAX - 1);
    // Either refused or appended; never a panic or a wrapped offset.
    if let Ok(info) = log.append_as_follower(&mut b) {
        assert!(info.last_offset >= info.first_offset);
    }
}

#[test]
fn background_tasks_apply_retention_and_stop_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 1,
        file_delete_delay_ms: 0,
        ..small_segments()
    };
    let manager_config = LogManagerConfig {
        retention_check_interval_ms: 10,
        flush_check_interval_ms: 10,
        cleaner_backoff_ms: 10,
        ..LogManagerConfig::new(dir.path())
    };
    let manager = LogManager::open(manager_config, config.clone()).unwrap();
    let log = manager
        .get_or_create_log(&TopicPartition::new("t", 0), Uuid::from_u128(1), config)
        .unwrap();
    for _ in 0..10 {
        append(&log, simple_batch(2, 100, NOW)).unwrap();
    }
    manager.start_background_tasks();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.log_start_offset() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        log.log_start_offset(),
        20,
        "old segments expired in the background"
    );
    let started = std::time::Instant::now();
    manager.shutdown().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
}

#[test]
fn segment_ms_is_measured_in_record_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let (_m, log) = open(dir.path(), &config);
    // Old CreateTime timestamps (replayed data) do not roll every append.
    for _ in 0..5 {
        let mut b = simple_batch(1, 10, 1_000);
        log.append_as_leader(&mut b, 0, AppendOrigin::Coordinator, 1_000)
            .unwrap();
    }
    assert_eq!(log.segment_count(), 1);
    let mut b = simple_batch(1, 10, 2_001);
    log.append_as_leader(&mut b, 0, AppendOrigin::Coordinator, 2_001)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn cleaner_keeps_an_empty_batch_for_a_producers_last_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..small_segments()
    };
    let (manager, log) = open(dir.path(), &config);
    let producer = |seq: i32, key: &str| {
        let spec = BatchSpec {
            producer_id: 5,
            producer_epoch: 0,
            base_sequence: seq,
            timestamp: NOW,
            ..Default::default()
        };
        batch(&spec, &[(Some(key.as_bytes()), Some(b"old"))])
    };
    append(&log, producer(0, "a")).unwrap();
    append(&log, producer(1, "b")).unwrap();
    // Plain records supersede both keys, then a roll makes everything cleanable.
    append(&log, keyed("a", Some("new"), Compression::None)).unwrap();
    append(&log, keyed("b", Some("new"), Compression::None)).unwrap();
    append(
        &log,
        keyed("pad", Some(&"x".repeat(900)), Compression::None),
    )
    .unwrap();
    manager.run_cleaner_once(NOW).unwrap();
    let batches = all_batches(&log);
    let first = crate::batch::validate_batch(&batches[0]).unwrap();
    assert_eq!(
        (first.producer_id, first.record_count, first.last_offset()),
        (5, 0, 1),
        "empty batch kept"
    );
    drop((manager, log));
    // Unclean restart: producer state is replayed from the cleaned log.
    let (_m, log) = open(dir.path(), &config);
    assert_eq!(log.producer_state(5).unwrap().last_seq(), 1);
    assert!(matches!(
        append(&log, producer(5, "c")),
        Err(StorageError::OutOfOrderSequence(_))
    ));
    append(&log, producer(2, "c")).unwrap();
}

#[test]
fn follower_appends_may_skip_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (_m, log) = open(dir.path(), &LogConfig::default());
    let mut b = simple_batch(3, 10, NOW);
    log.append_as_follower(&mut b).unwrap();
    let mut gap = simple_batch(2, 10, NOW);
    crate::batch::set_base_offset(&mut gap, 10);
    assert_eq!(log.append_as_follower(&mut gap).unwrap().first_offset, 10);
    assert_eq!(log.log_end_offset(), 12);
    let data = log
        .read(5, 1 << 20, 12, true)
        .unwrap()
        .read_to_bytes()
        .unwrap();
    assert_eq!(split_batches(&data).unwrap()[0].header.base_offset, 10);
}

#[test]
fn lost_partition_metadata_is_rewritten_by_get_or_create() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig::default();
    let (manager, log) = open(dir.path(), &config);
    append(&log, simple_batch(1, 10, NOW)).unwrap();
    manager.shutdown().unwrap();
    drop((manager, log));
    std::fs::write(dir.path().join("t-0/partition.metadata"), b"garbage").unwrap();
    let (_m, log) = open(dir.path(), &config);
    assert_eq!(log.topic_id(), Some(Uuid::from_u128(7)));
    let text = std::fs::read_to_string(dir.path().join("t-0/partition.metadata")).unwrap();
    assert!(text.starts_with("version: 0\ntopic_id: "), "{text}");
    assert_eq!(log.log_end_offset(), 1);
}
