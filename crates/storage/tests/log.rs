//! Reads, ListOffsets, leader epochs, truncation, DeleteRecords, roll and retention
//! (issue #2 items 3, 4, 5), through the public API as the broker uses it.

mod common;

use common::*;
use moldau_storage::{AppendOrigin, LogConfig, LogManager, StorageError};

const NOW: i64 = 1_700_000_000_000;

/// Three batches of three records: offsets [0-2] [3-5] [6-8], timestamps NOW + offset.
fn nine_records() -> Harness {
    let h = Harness::new(LogConfig::default());
    for b in 0..3 {
        let recs: Vec<Rec> = (0..3)
            .map(|i| {
                let o = 3 * b + i;
                Rec::kv(&format!("k{o}"), &format!("v{o}"), NOW + o)
            })
            .collect();
        append(h.log(), &mut batch(&recs, ALL_CODECS[b as usize]), NOW + 10).unwrap();
    }
    h
}

fn bases(data: &moldau_storage::FetchDataInfo) -> Vec<i64> {
    let bytes = data.read_to_bytes().unwrap();
    split_batches(&bytes)
        .iter()
        .map(|b| BatchHeader::parse(b).base_offset)
        .collect()
}

fn tiny_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

#[test]
fn read_returns_whole_batches_from_the_one_holding_the_offset() {
    let h = nine_records();
    let log = h.log();
    for start in 0..9 {
        let data = log.read(start, 1 << 20, 9, false).unwrap();
        let got = bases(&data);
        let first = start - start % 3;
        assert_eq!(
            got,
            (first..9).step_by(3).collect::<Vec<_>>(),
            "read from {start}"
        );
        let sum: u32 = data.slices.iter().map(|s| s.len).sum();
        assert_eq!(sum, data.total_bytes);
    }
    let at_end = log.read(9, 1 << 20, 9, false).unwrap();
    assert!(at_end.is_empty(), "read at the log end is empty");
    for bad in [10, 100, -1] {
        match log.read(bad, 1 << 20, 9, false) {
            Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            }) => {
                assert_eq!((offset, log_start_offset, log_end_offset), (bad, 0, 9));
            }
            other => panic!("read at {bad}: expected OffsetOutOfRange, got {other:?}"),
        }
    }
}

#[test]
fn read_respects_max_offset_and_max_bytes() {
    let h = nine_records();
    let log = h.log();
    // max_offset is exclusive on the batch's last offset.
    assert_eq!(bases(&log.read(0, 1 << 20, 5, false).unwrap()), vec![0]);
    assert_eq!(bases(&log.read(0, 1 << 20, 6, false).unwrap()), vec![0, 3]);
    assert!(
        log.read(3, 1 << 20, 3, true).unwrap().is_empty(),
        "nothing below max_offset"
    );
    assert!(log.read(0, 1 << 20, 0, true).unwrap().is_empty());

    let sizes: Vec<u32> = read_all_batches(log)
        .iter()
        .map(|b| b.len() as u32)
        .collect();
    let two = sizes[0] + sizes[1];
    assert_eq!(bases(&log.read(0, two, 9, false).unwrap()), vec![0, 3]);
    assert_eq!(
        bases(&log.read(0, two + sizes[2] - 1, 9, false).unwrap()),
        vec![0, 3]
    );
    assert_eq!(log.read(0, two, 9, false).unwrap().total_bytes, two);
    // Smaller than the first batch: one whole batch only if min_one_message.
    assert!(log.read(0, sizes[0] - 1, 9, false).unwrap().is_empty());
    assert_eq!(bases(&log.read(0, 1, 9, true).unwrap()), vec![0]);
    assert_eq!(bases(&log.read(4, 0, 9, true).unwrap()), vec![3]);
}

#[test]
fn reads_at_every_offset_with_a_sparse_index_and_many_segments() {
    let config = LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 300,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    let mut next = 0i64;
    for i in 0..120usize {
        let n = 1 + i % 4;
        let b = sized_batch(n, 20 + (i * 7) % 60, ALL_CODECS[i % 5], NOW);
        let info = append(h.log(), &mut b.clone(), NOW).unwrap();
        assert_eq!(info.first_offset, next);
        next += n as i64;
    }
    assert!(
        segment_files(&h.partition_dir(), "log").len() > 3,
        "segments rolled"
    );
    for offset in 0..next {
        let data = h.log().read(offset, 1, next, true).unwrap();
        let bytes = data.read_to_bytes().unwrap();
        let batches = split_batches(&bytes);
        assert_eq!(batches.len(), 1);
        let hdr = BatchHeader::parse(batches[0]);
        assert!(
            hdr.base_offset <= offset && offset <= hdr.last_offset(),
            "offset {offset} in {hdr:?}"
        );
    }
    let records = read_all_records(h.log());
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..next).collect::<Vec<_>>()
    );
}

#[test]
fn list_offsets_by_timestamp() {
    let config = LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    // Timestamps are not monotonic: ListOffsets finds the first offset whose timestamp >= t.
    let ts: Vec<i64> = (0..60).map(|i| NOW + ((i * 37) % 50) * 10).collect();
    for (c, chunk) in ts.chunks(3).enumerate() {
        let recs: Vec<Rec> = chunk
            .iter()
            .map(|&t| Rec::kv("k", &"x".repeat(40), t))
            .collect();
        append(h.log(), &mut batch(&recs, ALL_CODECS[c % 5]), NOW + 1000).unwrap();
    }
    assert!(segment_files(&h.partition_dir(), "log").len() > 2);
    for target in (NOW - 20..NOW + 520).step_by(7) {
        let expected = ts.iter().position(|&t| t >= target);
        let got = h.log().fetch_offset_by_timestamp(target).unwrap();
        match expected {
            None => assert!(got.is_none(), "target {target}: {got:?}"),
            Some(o) => {
                let got = got.unwrap_or_else(|| panic!("target {target}: expected offset {o}"));
                assert_eq!(
                    (got.offset, got.timestamp),
                    (o as i64, ts[o]),
                    "target {target}"
                );
                assert_eq!(got.leader_epoch, Some(0));
            }
        }
    }
    let max = *ts.iter().max().unwrap();
    let got = h.log().max_timestamp_and_offset().unwrap().unwrap();
    assert_eq!(got.timestamp, max);
    assert_eq!(
        got.offset,
        ts.iter().position(|&t| t == max).unwrap() as i64
    );

    // After DeleteRecords, ListOffsets never answers below the log start offset.
    h.log().delete_records_before(31).unwrap();
    let got = h.log().fetch_offset_by_timestamp(NOW - 1).unwrap().unwrap();
    assert_eq!((got.offset, got.timestamp), (31, ts[31]));
}

#[test]
fn list_offsets_on_an_empty_log() {
    let h = Harness::new(LogConfig::default());
    assert!(h.log().fetch_offset_by_timestamp(0).unwrap().is_none());
    assert!(h.log().max_timestamp_and_offset().unwrap().is_none());
    assert_eq!(
        (h.log().log_start_offset(), h.log().log_end_offset()),
        (0, 0)
    );
    assert!(h.log().read(0, 100, 0, true).unwrap().is_empty());
}

#[test]
fn leader_epoch_cache_answers_offset_for_leader_epoch() {
    let h = Harness::new(LogConfig::default());
    let log = h.log();
    assert_eq!(log.latest_epoch(), None);
    // epoch 2: [0, 3), epoch 4: [3, 9), epoch 7: [9, 12)
    for epoch in [2, 4, 4, 7] {
        log.append_as_leader(
            &mut sized_batch(3, 10, Compression::None, NOW),
            epoch,
            AppendOrigin::Client,
            NOW,
        )
        .unwrap();
    }
    assert_eq!(log.latest_epoch(), Some(7));
    let eo = |e| {
        log.end_offset_for_epoch(e)
            .map(|r| (r.leader_epoch, r.end_offset))
    };
    assert_eq!(eo(2), Some((2, 3)));
    assert_eq!(
        eo(3),
        Some((2, 3)),
        "largest epoch <= 3 is 2, ends where 4 starts"
    );
    assert_eq!(eo(4), Some((4, 9)));
    assert_eq!(eo(6), Some((4, 9)));
    assert_eq!(eo(7), Some((7, 12)), "latest epoch ends at the log end");
    assert_eq!(
        eo(1),
        Some((1, 0)),
        "below every epoch: requested epoch, first start offset"
    );
    assert!(
        matches!(eo(8), None | Some((-1, -1))),
        "above every epoch is undefined: {:?}",
        eo(8)
    );
    // Batches carry the epoch.
    let epochs: Vec<i32> = read_all_batches(log)
        .iter()
        .map(|b| BatchHeader::parse(b).partition_leader_epoch)
        .collect();
    assert_eq!(epochs, vec![2, 4, 4, 7]);

    // The cache survives restarts and follows truncation.
    let mut h = h;
    h.reopen_clean();
    assert_eq!(h.log().latest_epoch(), Some(7));
    assert_eq!(
        h.log().end_offset_for_epoch(4).map(|r| r.end_offset),
        Some(9)
    );
    h.log().truncate_to(6).unwrap();
    assert_eq!(h.log().latest_epoch(), Some(4));
    assert_eq!(
        h.log()
            .end_offset_for_epoch(4)
            .map(|r| (r.leader_epoch, r.end_offset)),
        Some((4, 6))
    );
    h.reopen_unclean();
    assert_eq!(h.log().latest_epoch(), Some(4));
}

#[test]
fn truncate_to_drops_the_tail_across_segments() {
    let h = Harness::new(tiny_segments());
    for i in 0..30 {
        append(
            h.log(),
            &mut sized_batch(2, 50, ALL_CODECS[i % 5], NOW),
            NOW,
        )
        .unwrap();
    }
    let before = segment_files(&h.partition_dir(), "log");
    assert!(before.len() > 3);
    // Offsets are batch boundaries (every batch holds two records).
    let target = 2 * 7;
    h.log().truncate_to(target).unwrap();
    assert_eq!(h.log().log_end_offset(), target);
    let recs = read_all_records(h.log());
    assert_eq!(recs.last().map(|r| r.offset), Some(target - 1));
    for (base, path) in segment_files(&h.partition_dir(), "log") {
        assert!(
            base < target || (base == target && std::fs::metadata(&path).unwrap().len() == 0),
            "{path:?}"
        );
    }
    // Truncating past the end changes nothing; appends continue at the new end.
    h.log().truncate_to(1000).unwrap();
    assert_eq!(h.log().log_end_offset(), target);
    let info = append(
        h.log(),
        &mut sized_batch(2, 50, Compression::None, NOW),
        NOW,
    )
    .unwrap();
    assert_eq!(info.first_offset, target);
    assert_eq!(read_all_records(h.log()).len() as i64, target + 2);
    h.log().update_high_watermark(1_000);
    assert_eq!(
        h.log().high_watermark(),
        target + 2,
        "high watermark clamped to the log end"
    );
}

#[test]
fn delete_records_advances_the_log_start_offset() {
    let mut h = nine_records();
    assert_eq!(h.log().high_watermark(), 9);
    assert_eq!(h.log().delete_records_before(4).unwrap(), 4);
    assert_eq!(h.log().log_start_offset(), 4);
    assert!(matches!(
        h.log().read(3, 1 << 20, 9, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // The batch holding the new start offset is still served whole.
    assert_eq!(
        bases(&h.log().read(4, 1 << 20, 9, true).unwrap()),
        vec![3, 6]
    );
    assert_eq!(
        h.log().delete_records_before(2).unwrap(),
        4,
        "never moves backwards"
    );
    // Beyond the high watermark is refused.
    h.log().update_high_watermark(7);
    assert!(matches!(
        h.log().delete_records_before(8),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(h.log().log_start_offset(), 4);
    assert_eq!(h.log().delete_records_before(7).unwrap(), 7);
    let info = append(h.log(), &mut sized_batch(1, 5, Compression::None, NOW), NOW).unwrap();
    assert_eq!(info.log_start_offset, 7);
    // Persisted by a clean shutdown.
    h.reopen_clean();
    assert_eq!(h.log().log_start_offset(), 7);
    assert_eq!(h.log().log_end_offset(), 10);
    let recs = read_all_records(h.log());
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
}

#[test]
fn segments_roll_on_segment_bytes() {
    let config = LogConfig {
        segment_bytes: 2048,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    let mut sizes = Vec::new();
    for i in 0..40 {
        let mut b = sized_batch(3, 60, ALL_CODECS[i % 5], NOW);
        sizes.push(b.len());
        append(h.log(), &mut b, NOW).unwrap();
    }
    let segs = segment_files(&h.partition_dir(), "log");
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let offsets: Vec<i64> = read_all_records(h.log()).iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..120).collect::<Vec<_>>());
    for (i, (base, path)) in segs.iter().enumerate() {
        let len = std::fs::metadata(path).unwrap().len();
        assert!(len <= 2048, "segment {base} holds {len} bytes");
        let bytes = std::fs::read(path).unwrap();
        let batches = split_batches(&bytes[..len as usize]);
        if i + 1 < segs.len() {
            assert!(!batches.is_empty(), "closed segment {base} is not empty");
        }
        if let Some(first) = batches.first() {
            assert_eq!(
                BatchHeader::parse(first).base_offset,
                *base,
                "segment named after its base offset"
            );
        }
        for ext in ["index", "timeindex"] {
            assert!(path.with_extension(ext).exists(), "{ext} of segment {base}");
        }
    }
    // Kafka refuses a request larger than a whole segment: RECORD_LIST_TOO_LARGE.
    let mut big = sized_batch(40, 100, Compression::None, NOW);
    assert!(big.len() > 2048);
    let err = append(h.log(), &mut big, NOW).unwrap_err();
    assert!(
        matches!(err, StorageError::RecordListTooLarge(_)),
        "{err:?}"
    );
    assert_eq!(h.log().log_end_offset(), 120);
}

#[test]
fn segments_roll_on_segment_ms() {
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    for t in [0, 400, 999, 1000] {
        append(
            h.log(),
            &mut sized_batch(1, 10, Compression::None, NOW + t),
            NOW + t,
        )
        .unwrap();
    }
    assert_eq!(
        segment_files(&h.partition_dir(), "log").len(),
        1,
        "no roll within segment.ms"
    );
    append(
        h.log(),
        &mut sized_batch(1, 10, Compression::None, NOW + 1001),
        NOW + 1001,
    )
    .unwrap();
    let segs: Vec<i64> = segment_files(&h.partition_dir(), "log")
        .iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(segs, vec![0, 4], "rolled once segment.ms passed");
}

#[test]
fn segments_roll_when_the_index_is_full() {
    let config = LogConfig {
        segment_index_bytes: 48,
        index_interval_bytes: 1,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    for i in 0..30 {
        append(
            h.log(),
            &mut sized_batch(1, 10, Compression::None, NOW + i),
            NOW + i,
        )
        .unwrap();
    }
    let segs = segment_files(&h.partition_dir(), "log");
    assert!(
        segs.len() >= 5,
        "a 6-entry offset index must roll 30 batches: {} segments",
        segs.len()
    );
    for pair in segs.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 <= 6,
            "segment {} holds more batches than its index",
            pair[0].0
        );
    }
    assert_eq!(read_all_records(h.log()).len(), 30);
}

/// `(base_offset, bytes)` of every live segment.
fn segment_sizes(h: &Harness) -> Vec<(i64, u64)> {
    segment_files(&h.partition_dir(), "log")
        .into_iter()
        .map(|(b, p)| (b, std::fs::metadata(p).unwrap().len()))
        .collect()
}

#[test]
fn retention_bytes_deletes_the_oldest_segments() {
    let config = LogConfig {
        retention_bytes: 5000,
        file_delete_delay_ms: 0,
        ..tiny_segments()
    };
    let h = Harness::new(config);
    for i in 0..60 {
        append(
            h.log(),
            &mut sized_batch(2, 60, ALL_CODECS[i % 5], NOW),
            NOW,
        )
        .unwrap();
    }
    let before = segment_sizes(&h);
    let total: u64 = before.iter().map(|s| s.1).sum();
    assert_eq!(h.log().size_bytes(), total);
    // Kafka: delete oldest segments while the rest still holds at least retention.bytes.
    let mut diff = total as i64 - 5000;
    let mut expected_start = before[0].0;
    for (i, (_, size)) in before.iter().enumerate() {
        if i + 1 == before.len() || diff - (*size as i64) < 0 {
            break;
        }
        diff -= *size as i64;
        expected_start = before[i + 1].0;
    }
    assert!(expected_start > 0);
    h.manager().run_retention_once(NOW).unwrap();
    assert_eq!(h.log().log_start_offset(), expected_start);
    let after = segment_sizes(&h);
    assert_eq!(after.first().map(|s| s.0), Some(expected_start));
    assert_eq!(
        after,
        before
            .iter()
            .copied()
            .filter(|s| s.0 >= expected_start)
            .collect::<Vec<_>>()
    );
    assert!(h.log().size_bytes() >= 5000);
    let recs = read_all_records(h.log());
    assert_eq!(recs.first().map(|r| r.offset), Some(expected_start));
    assert_eq!(recs.last().map(|r| r.offset), Some(119));
    assert!(matches!(
        h.log().read(0, 100, 120, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // A second pass finds nothing more to do.
    h.manager().run_retention_once(NOW).unwrap();
    assert_eq!(h.log().log_start_offset(), expected_start);
}

#[test]
fn retention_ms_deletes_segments_older_than_the_limit() {
    let config = LogConfig {
        retention_ms: 60_000,
        ..tiny_segments()
    };
    let mut h = Harness::new(config);
    let old = NOW - 3_600_000;
    let mut first_new_offset = 0;
    for i in 0..20 {
        let info = append(
            h.log(),
            &mut sized_batch(2, 60, Compression::None, old + i),
            NOW,
        )
        .unwrap();
        first_new_offset = info.last_offset + 1;
    }
    for i in 0..20 {
        append(
            h.log(),
            &mut sized_batch(2, 60, Compression::None, NOW + i),
            NOW + i,
        )
        .unwrap();
    }
    let before = segment_sizes(&h);
    // The first segment holding a new record is the first one kept.
    let keep_from = before
        .iter()
        .rev()
        .find(|s| s.0 <= first_new_offset)
        .unwrap()
        .0;
    assert!(keep_from > 0);
    h.manager().run_retention_once(NOW + 1_000).unwrap();
    assert_eq!(h.log().log_start_offset(), keep_from);
    assert_eq!(segment_sizes(&h).first().map(|s| s.0), Some(keep_from));
    // Nothing young enough is deleted; retention.ms = -1 disables it.
    h.update_config(LogConfig {
        retention_ms: -1,
        ..h.config.clone()
    });
    h.manager().run_retention_once(NOW + 100_000_000).unwrap();
    assert_eq!(h.log().log_start_offset(), keep_from);
    // Deleted segments stay deleted after a restart.
    h.reopen_clean();
    assert_eq!(h.log().log_start_offset(), keep_from);
    assert_eq!(segment_sizes(&h).first().map(|s| s.0), Some(keep_from));
}

#[test]
fn retention_ms_of_the_whole_log_rolls_and_empties_it() {
    let config = LogConfig {
        retention_ms: 60_000,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    for i in 0..5 {
        append(
            h.log(),
            &mut sized_batch(2, 10, Compression::None, NOW + i),
            NOW + i,
        )
        .unwrap();
    }
    h.manager().run_retention_once(NOW + 3_600_000).unwrap();
    assert_eq!(h.log().log_start_offset(), 10);
    assert_eq!(h.log().log_end_offset(), 10);
    assert!(read_all_records(h.log()).is_empty());
    let info = append(
        h.log(),
        &mut sized_batch(1, 10, Compression::None, NOW + 3_600_000),
        NOW + 3_600_000,
    )
    .unwrap();
    assert_eq!(info.first_offset, 10);
}

#[test]
fn retention_never_deletes_past_the_high_watermark() {
    let config = LogConfig {
        retention_ms: 1,
        ..tiny_segments()
    };
    let h = Harness::new(config);
    for i in 0..20 {
        h.log()
            .append_as_leader(
                &mut sized_batch(2, 60, Compression::None, NOW + i),
                0,
                AppendOrigin::Client,
                NOW,
            )
            .unwrap();
    }
    assert_eq!(h.log().high_watermark(), 0);
    h.manager().run_retention_once(NOW + 3_600_000).unwrap();
    assert_eq!(
        h.log().log_start_offset(),
        0,
        "unreplicated data is not expired"
    );
    assert_eq!(read_all_records(h.log()).len(), 40);
}

#[test]
fn retention_removes_segments_below_the_log_start_offset() {
    let config = LogConfig {
        file_delete_delay_ms: 0,
        ..tiny_segments()
    };
    let h = Harness::new(config);
    for _ in 0..30 {
        append(
            h.log(),
            &mut sized_batch(2, 60, Compression::None, NOW),
            NOW,
        )
        .unwrap();
    }
    let before = segment_sizes(&h);
    assert!(before.len() > 3);
    let target = before[2].0 + 1;
    h.log().delete_records_before(target).unwrap();
    h.manager().run_retention_once(NOW).unwrap();
    assert_eq!(h.log().log_start_offset(), target);
    let after = segment_sizes(&h);
    assert_eq!(
        after.first().map(|s| s.0),
        Some(before[2].0),
        "segments wholly below the start are deleted"
    );
}

#[test]
fn partition_dir_holds_kafkas_files() {
    let mut h = nine_records();
    h.reopen_clean();
    let dir = h.partition_dir();
    assert!(dir.ends_with("events-0"));
    for name in [
        "00000000000000000000.log",
        "00000000000000000000.index",
        "00000000000000000000.timeindex",
        "partition.metadata",
        "leader-epoch-checkpoint",
    ] {
        assert!(dir.join(name).exists(), "{name}");
    }
    let meta = std::fs::read_to_string(dir.join("partition.metadata")).unwrap();
    assert!(meta.contains("version: 0"), "{meta}");
    assert!(meta.contains("topic_id: "), "{meta}");
    assert_eq!(h.log().topic_id(), Some(h.topic_id));
    assert!(h
        .log_dir()
        .join("recovery-point-offset-checkpoint")
        .exists());
    assert!(h.log_dir().join("log-start-offset-checkpoint").exists());
    assert_eq!(h.log().topic_partition(), &h.tp);
    assert_eq!(h.log().dir(), dir.as_path());
    assert_eq!(h.manager().all_logs().len(), 1);
    assert!(h.manager().get_log(&h.tp).is_some());
}

#[test]
fn delete_log_removes_the_partition() {
    let h = nine_records();
    h.manager().delete_log(&h.tp, h.topic_id).unwrap();
    assert!(h.manager().get_log(&h.tp).is_none());
    assert!(!h.partition_dir().exists(), "dir renamed away");
    assert!(h.manager().all_logs().is_empty());
}

#[test]
fn a_deleted_partition_dir_is_removed_after_the_file_delete_delay() {
    // Kafka keeps a deleted partition's files for file.delete.delay.ms (default 60 s) so
    // that reads under way finish; the partition itself is gone at once.
    let h = nine_records();
    h.manager().delete_log(&h.tp, h.topic_id).unwrap();
    let renamed = names_ending_with(&h.log_dir(), "-delete");
    assert_eq!(renamed.len(), 1, "renamed, not yet removed: {renamed:?}");
    assert!(renamed[0].starts_with(&format!("{}.", h.tp.dir_name())));
    assert!(h.manager().get_log(&h.tp).is_none());

    let mut h = h;
    h.reopen_unclean();
    let leftovers = names_ending_with(&h.log_dir(), "-delete").len();
    assert_eq!(leftovers, 0, "a restart removes what a deletion left");
}

#[test]
fn with_no_delay_a_deleted_partition_dir_goes_at_once() {
    let h = Harness::new(LogConfig {
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    });
    h.manager().delete_log(&h.tp, h.topic_id).unwrap();
    let entries: Vec<_> = std::fs::read_dir(h.log_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(&h.tp.dir_name()))
        .collect();
    assert!(entries.is_empty(), "{entries:?}");
}

#[test]
fn a_second_manager_cannot_open_a_locked_log_dir() {
    let mut h = nine_records();
    let err = LogManager::open(manager_config(&h.log_dir()), LogConfig::default())
        .err()
        .expect("the dir is locked");
    assert!(matches!(err, StorageError::LogDirLocked(_)), "{err}");
    assert!(err.to_string().contains(".lock"), "{err}");
    assert_eq!(err.kafka_error_code(), 56);
    // Dropping the first manager releases the lock.
    h.reopen_clean();
    assert_eq!(h.log().log_end_offset(), 9);
}

#[test]
fn deleted_segments_are_renamed_then_removed() {
    let config = LogConfig {
        retention_bytes: 3000,
        file_delete_delay_ms: 60_000,
        ..tiny_segments()
    };
    let mut h = Harness::new(config);
    for _ in 0..40 {
        append(
            h.log(),
            &mut sized_batch(2, 60, Compression::None, NOW),
            NOW,
        )
        .unwrap();
    }
    h.manager().run_retention_once(NOW).unwrap();
    let start = h.log().log_start_offset();
    assert!(start > 0);
    let deleted: Vec<String> = std::fs::read_dir(h.partition_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".deleted"))
        .collect();
    assert!(
        deleted.iter().any(|n| n.ends_with(".log.deleted")),
        "segments renamed .deleted: {deleted:?}"
    );
    assert!(matches!(
        h.log().read(0, 100, 80, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Kafka removes leftover .deleted files when it loads the log.
    h.reopen_clean();
    let left = names_ending_with(&h.partition_dir(), ".deleted").len();
    assert_eq!(left, 0);
    assert_eq!(h.log().log_start_offset(), start);
}

#[test]
fn truncation_rolls_back_producer_state() {
    let h = Harness::new(LogConfig::default());
    let producer = |seq| {
        Some(Producer {
            id: 31,
            epoch: 0,
            base_sequence: seq,
        })
    };
    let recs = |tag: &str| {
        vec![
            Rec::kv("a", tag, NOW),
            Rec::kv("b", tag, NOW),
            Rec::kv("c", tag, NOW),
        ]
    };
    for (i, seq) in [0, 3, 6].into_iter().enumerate() {
        let info = append(
            h.log(),
            &mut batch_with(&recs("x"), Compression::None, producer(seq)),
            NOW,
        )
        .unwrap();
        assert_eq!(info.first_offset, 3 * i as i64);
    }
    h.log().truncate_to(6).unwrap();
    // The batch at sequence 6 is gone: its retry is new, not a duplicate.
    let info = append(
        h.log(),
        &mut batch_with(&recs("x"), Compression::None, producer(6)),
        NOW,
    )
    .unwrap();
    assert!(!info.duplicate);
    assert_eq!(info.first_offset, 6);
    // The batch at sequence 3 survived: its retry is still a duplicate.
    let info = append(
        h.log(),
        &mut batch_with(&recs("x"), Compression::None, producer(3)),
        NOW,
    )
    .unwrap();
    assert!(info.duplicate);
    assert_eq!((info.first_offset, info.last_offset), (3, 5));
}

#[test]
fn a_manager_holds_many_partitions() {
    let mut h = nine_records();
    let other = moldau_storage::TopicPartition::new("other-topic", 3);
    let other_id = moldau_storage::Uuid::from_u128(42);
    let log = h
        .manager()
        .get_or_create_log(&other, other_id, LogConfig::default())
        .unwrap();
    append(&log, &mut sized_batch(4, 10, Compression::Snappy, NOW), NOW).unwrap();
    drop(log);
    let again = h
        .manager()
        .get_or_create_log(&other, other_id, LogConfig::default())
        .unwrap();
    assert_eq!(
        again.log_end_offset(),
        4,
        "get_or_create_log returns the existing log"
    );
    drop(again);
    h.reopen_clean();
    assert_eq!(h.manager().all_logs().len(), 2);
    let log = h.manager().get_log(&other).expect("reopened");
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.topic_id(), Some(other_id));
    assert!(h.log_dir().join("other-topic-3").is_dir());
    drop(log);
    h.manager().delete_log(&other, other_id).unwrap();
    assert_eq!(h.manager().all_logs().len(), 1);
    assert_eq!(
        h.log().log_end_offset(),
        9,
        "the other partition is untouched"
    );
    h.reopen_unclean();
    assert!(
        h.manager().get_log(&other).is_none(),
        "a deleted partition stays deleted"
    );
}

#[test]
fn shutdown_stops_background_tasks_and_marks_a_clean_shutdown() {
    let mut h = nine_records();
    h.manager().start_background_tasks();
    append(
        h.log(),
        &mut sized_batch(1, 10, Compression::None, NOW),
        NOW,
    )
    .unwrap();
    h.manager()
        .shutdown()
        .expect("shutdown returns with background tasks running");
    assert!(
        h.log_dir().join(".kafka_cleanshutdown").exists(),
        "clean shutdown marker"
    );
    h.close_without_shutdown();
    h.open();
    assert!(
        !h.log_dir().join(".kafka_cleanshutdown").exists(),
        "marker removed on open"
    );
    assert_eq!(h.log().log_end_offset(), 10);
}

#[test]
fn truncate_fully_and_start_at_empties_the_log_at_an_offset() {
    let mut h = nine_records();
    h.log().truncate_fully_and_start_at(40).unwrap();
    assert_eq!(
        (
            h.log().log_start_offset(),
            h.log().log_end_offset(),
            h.log().high_watermark()
        ),
        (40, 40, 40)
    );
    assert_eq!(h.log().latest_epoch(), None, "no epoch survives");
    assert!(read_all_records(h.log()).is_empty());
    // Appends continue at the new start, and a restart keeps it.
    let info = append(
        h.log(),
        &mut sized_batch(2, 50, Compression::None, NOW),
        NOW,
    )
    .unwrap();
    assert_eq!(info.first_offset, 40);
    h.reopen_unclean();
    assert_eq!(h.log().log_start_offset(), 40);
    assert_eq!(h.log().log_end_offset(), 42);
}

#[test]
fn a_new_leader_epoch_starts_at_the_log_end() {
    let h = nine_records();
    let end = h.log().log_end_offset();
    let before = h.log().latest_epoch().unwrap_or(0);
    h.log().assign_epoch_start_offset(before + 3);
    assert_eq!(h.log().latest_epoch(), Some(before + 3));
    // The previous epoch now ends where the new one starts.
    assert_eq!(
        h.log()
            .end_offset_for_epoch(before)
            .map(|r| (r.leader_epoch, r.end_offset)),
        Some((before, end))
    );
    // An older epoch is ignored.
    h.log().assign_epoch_start_offset(before + 1);
    assert_eq!(h.log().latest_epoch(), Some(before + 3));
}

#[test]
fn truncating_at_the_log_end_forgets_an_epoch_led_without_appending() {
    // A node became leader (its epoch starts at the log end), appended nothing, and
    // follows again: the new leader never knew that epoch, so truncation drops it.
    let h = nine_records();
    let end = h.log().log_end_offset();
    let before = h.log().latest_epoch();
    h.log().assign_epoch_start_offset(before.unwrap_or(0) + 1);
    h.log().truncate_to(end).unwrap();
    assert_eq!(h.log().log_end_offset(), end);
    assert_eq!(h.log().latest_epoch(), before);
}
