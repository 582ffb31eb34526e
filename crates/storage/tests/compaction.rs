//! Log compaction (issue #2 item 6): latest record per key beyond the active segment,
//! original offsets and codecs kept, tombstones kept for delete.retention.ms, the lag and
//! dirty-ratio settings honoured, producer metadata preserved.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::*;
use moldau_storage::{CleanupPolicy, LogConfig};

const NOW: i64 = 1_700_000_000_000;

fn compacted(segment_bytes: i32) -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes,
        min_cleanable_dirty_ratio: 0.01,
        delete_retention_ms: 86_400_000,
        ..LogConfig::default()
    }
}

/// Appends one batch of `(key, value)` pairs (None = tombstone) at `ts`.
fn put(h: &Harness, pairs: &[(String, Option<String>)], ts: i64, codec: Compression) -> i64 {
    let recs: Vec<Rec> = pairs
        .iter()
        .map(|(k, v)| Rec {
            key: Some(k.clone().into_bytes()),
            value: v.clone().map(String::into_bytes),
            timestamp: ts,
        })
        .collect();
    append(h.log(), &mut batch(&recs, codec), ts)
        .unwrap()
        .first_offset
}

fn kv(k: usize, v: usize) -> (String, Option<String>) {
    (
        format!("key-{k:03}"),
        Some(format!("value-{k}-{v}-{}", "x".repeat(40))),
    )
}

/// Bytes of the active (last) segment file.
fn active_segment(h: &Harness) -> (i64, Vec<u8>) {
    let (base, path) = segment_files(&h.partition_dir(), "log")
        .pop()
        .expect("a segment");
    (base, fs::read(path).unwrap())
}

/// Latest record per key among `records` with offset < `end`.
fn latest_per_key(records: &[StoredRecord], end: i64) -> BTreeMap<Vec<u8>, StoredRecord> {
    let mut map = BTreeMap::new();
    for r in records.iter().filter(|r| r.offset < end) {
        map.insert(r.key.clone().unwrap(), r.clone());
    }
    map
}

/// Checks the log after cleaning: below `clean_end` exactly the latest record per key
/// (from `before`, minus tombstones when `tombstones_gone`), at and after it unchanged.
fn assert_compacted(h: &Harness, before: &[StoredRecord], clean_end: i64, tombstones_gone: bool) {
    let after = read_all_records(h.log());
    let mut want: Vec<StoredRecord> = latest_per_key(before, clean_end)
        .into_values()
        .filter(|r| !(tombstones_gone && r.value.is_none()))
        .collect();
    want.sort_by_key(|r| r.offset);
    want.extend(before.iter().filter(|r| r.offset >= clean_end).cloned());
    let got_offsets: Vec<i64> = after.iter().map(|r| r.offset).collect();
    let want_offsets: Vec<i64> = want.iter().map(|r| r.offset).collect();
    assert_eq!(got_offsets, want_offsets, "offsets after cleaning");
    assert_eq!(after, want, "records after cleaning");
}

#[test]
fn keys_overwritten_many_times_keep_their_latest_value() {
    let mut h = Harness::new(compacted(2048));
    for v in 0..30 {
        let pairs: Vec<_> = (0..10).map(|k| kv((k * 7 + v) % 20, v)).collect();
        put(&h, &pairs, NOW + v as i64, ALL_CODECS[v % 5]);
    }
    let before = read_all_records(h.log());
    let end = h.log().log_end_offset();
    let size_before = h.log().size_bytes();
    let (active_base, active_bytes) = active_segment(&h);
    assert!(active_base > 0, "several segments");

    h.manager().run_cleaner_once(NOW + 1000).unwrap();
    assert_compacted(&h, &before, active_base, false);
    assert_eq!(
        active_segment(&h),
        (active_base, active_bytes),
        "active segment untouched"
    );
    assert_eq!(h.log().log_end_offset(), end);
    assert_eq!(h.log().log_start_offset(), 0);
    assert!(
        h.log().size_bytes() < size_before / 2,
        "{} -> {}",
        size_before,
        h.log().size_bytes()
    );
    for b in read_all_batches(h.log()) {
        assert!(crc_valid(&b));
    }
    // Reading from any offset, including removed ones, serves the next surviving record.
    // (A cleaned batch keeps its original last offset, so a fetch may return a batch
    // whose records all precede the fetch offset; the consumer then moves past it.)
    let survivors = read_all_records(h.log());
    for offset in 0..end {
        let mut at = offset;
        let first = loop {
            if at >= end {
                break None;
            }
            let data = h
                .log()
                .read(at, 1, end, true)
                .unwrap()
                .read_to_bytes()
                .unwrap();
            let batches = split_batches(&data);
            let found = batches
                .iter()
                .flat_map(|b| decode_batch(b).1)
                .find(|r| r.offset >= offset);
            if found.is_some() {
                break found;
            }
            at = BatchHeader::parse(batches.last().expect("a batch")).last_offset() + 1;
        };
        assert_eq!(
            first.as_ref(),
            survivors.iter().find(|r| r.offset >= offset),
            "read at {offset}"
        );
    }
    // Cleaning again changes nothing; the result survives restarts; appends continue.
    h.manager().run_cleaner_once(NOW + 2000).unwrap();
    assert_eq!(read_all_records(h.log()), survivors);
    h.reopen_clean();
    assert_eq!(read_all_records(h.log()), survivors);
    h.reopen_unclean();
    assert_eq!(read_all_records(h.log()), survivors);
    let next = put(&h, &[kv(1, 99)], NOW + 3000, Compression::None);
    assert_eq!(next, end);
}

#[test]
fn every_codec_is_cleaned_into_the_same_codec_with_original_offsets() {
    for codec in ALL_CODECS {
        let h = Harness::new(compacted(1024));
        for v in 0..12 {
            // Each batch mixes keys that are overwritten later with keys that are not.
            let pairs = vec![kv(v % 3, v), kv(100 + v, v), kv((v + 1) % 3, v)];
            put(&h, &pairs, NOW + v as i64, codec);
        }
        let before = read_all_records(h.log());
        let (active_base, _) = active_segment(&h);
        assert!(active_base > 0, "{codec:?}: several segments");
        h.manager().run_cleaner_once(NOW + 1000).unwrap();
        assert_compacted(&h, &before, active_base, false);
        for b in read_all_batches(h.log()) {
            assert!(crc_valid(&b), "{codec:?}: cleaned batch CRC");
            let (hdr, recs) = decode_batch(&b);
            assert_eq!(hdr.codec(), codec as u8, "{codec:?}: codec kept");
            assert_eq!(
                hdr.record_count as usize,
                recs.len(),
                "{codec:?}: record count matches"
            );
            assert!(recs
                .iter()
                .all(|r| r.offset >= hdr.base_offset && r.offset <= hdr.last_offset()));
        }
    }
}

#[test]
fn tombstones_are_dropped_only_after_delete_retention_ms() {
    let config = LogConfig {
        delete_retention_ms: 10_000,
        ..compacted(1024)
    };
    let h = Harness::new(config);
    for v in 0..4 {
        put(
            &h,
            &(0..5).map(|k| kv(k, v)).collect::<Vec<_>>(),
            NOW,
            Compression::Lz4,
        );
    }
    let deleted = [
        (format!("key-{:03}", 1), None),
        (format!("key-{:03}", 3), None),
    ];
    put(&h, &deleted, NOW, Compression::None);
    // Roll past the tombstones with other keys.
    let filler = |h: &Harness, v: usize, ts: i64| {
        for i in 0..6 {
            put(h, &[kv(500 + i, v)], ts, Compression::None);
        }
    };
    filler(&h, 0, NOW);
    let tombstone_present = |h: &Harness| {
        let recs = read_all_records(h.log());
        ["key-001", "key-003"].map(|k| {
            recs.iter()
                .any(|r| r.key.as_deref() == Some(k.as_bytes()) && r.value.is_none())
        })
    };
    let values_of_deleted = |h: &Harness| {
        read_all_records(h.log())
            .iter()
            .filter(|r| {
                matches!(r.key.as_deref(), Some(b"key-001") | Some(b"key-003")) && r.value.is_some()
            })
            .count()
    };
    let before = read_all_records(h.log());
    let (active_base, _) = active_segment(&h);
    h.manager().run_cleaner_once(NOW + 1_000).unwrap();
    assert_compacted(&h, &before, active_base, false);
    assert_eq!(
        tombstone_present(&h),
        [true, true],
        "tombstones kept right after cleaning"
    );
    assert_eq!(
        values_of_deleted(&h),
        0,
        "older values of deleted keys removed"
    );

    // Still inside delete.retention.ms: kept, however often the cleaner runs.
    for (i, t) in [5_000, 9_000].into_iter().enumerate() {
        filler(&h, i + 1, NOW + t);
        h.manager().run_cleaner_once(NOW + t).unwrap();
        assert_eq!(
            tombstone_present(&h),
            [true, true],
            "tombstones kept at +{t} ms"
        );
    }
    // Well past it: gone after (at most) two passes, and nothing else is lost.
    for (i, t) in [100_000, 200_000].into_iter().enumerate() {
        filler(&h, i + 10, NOW + t);
        h.manager().run_cleaner_once(NOW + t).unwrap();
    }
    assert_eq!(
        tombstone_present(&h),
        [false, false],
        "tombstones removed after delete.retention.ms"
    );
    let keys: Vec<Vec<u8>> = read_all_records(h.log())
        .into_iter()
        .filter_map(|r| r.key)
        .collect();
    for k in ["key-000", "key-002", "key-004"] {
        assert!(keys.iter().any(|x| x == k.as_bytes()), "{k} kept");
    }
}

#[test]
fn min_compaction_lag_protects_recent_segments() {
    let config = LogConfig {
        min_compaction_lag_ms: 60_000,
        ..compacted(1024)
    };
    let h = Harness::new(config);
    let old = NOW - 120_000;
    for v in 0..8 {
        put(
            &h,
            &(0..4).map(|k| kv(k, v)).collect::<Vec<_>>(),
            old,
            Compression::Snappy,
        );
    }
    let recent_start = h.log().log_end_offset();
    for v in 8..16 {
        put(
            &h,
            &(0..4).map(|k| kv(k, v)).collect::<Vec<_>>(),
            NOW - 1_000,
            Compression::Snappy,
        );
    }
    let segs = segment_files(&h.partition_dir(), "log");
    // First segment holding a recent record: it and everything after are too young.
    let young_base = segs.iter().rev().find(|s| s.0 <= recent_start).unwrap().0;
    assert!(
        young_base > 0 && young_base < active_segment(&h).0,
        "old, young and active segments"
    );
    let young: Vec<Vec<u8>> = segs
        .iter()
        .filter(|s| s.0 >= young_base)
        .map(|s| fs::read(&s.1).unwrap())
        .collect();
    let before = read_all_records(h.log());
    h.manager().run_cleaner_once(NOW).unwrap();
    assert_compacted(&h, &before, young_base, false);
    let young_after: Vec<Vec<u8>> = segment_files(&h.partition_dir(), "log")
        .iter()
        .filter(|s| s.0 >= young_base)
        .map(|s| fs::read(&s.1).unwrap())
        .collect();
    assert!(
        young_after == young,
        "segments within min.compaction.lag.ms untouched"
    );
    // Once the lag has passed they are cleaned too.
    let before = read_all_records(h.log());
    let (active_base, _) = active_segment(&h);
    h.manager().run_cleaner_once(NOW + 120_000).unwrap();
    assert_compacted(&h, &before, active_base, false);
}

fn dirty_duplicates(h: &Harness) -> usize {
    let (active_base, _) = active_segment(h);
    let recs: Vec<StoredRecord> = read_all_records(h.log())
        .into_iter()
        .filter(|r| r.offset < active_base)
        .collect();
    recs.len() - latest_per_key(&recs, active_base).len()
}

#[test]
fn min_cleanable_dirty_ratio_and_max_compaction_lag() {
    let config = LogConfig {
        min_cleanable_dirty_ratio: 0.9,
        ..compacted(1024)
    };
    let mut h = Harness::new(config);
    // 40 distinct keys, no duplicates: the first pass cleans everything (ratio 1.0).
    for k in 0..40 {
        put(&h, &[kv(k, 0)], NOW, Compression::None);
    }
    h.manager().run_cleaner_once(NOW).unwrap();
    // A little dirty data with duplicates: dirty ratio well below 0.9.
    for v in 1..4 {
        put(&h, &[kv(0, v), kv(1, v)], NOW + 10, Compression::None);
    }
    for k in 40..56 {
        put(&h, &[kv(k, 0)], NOW + 10, Compression::None);
    }
    let dup = dirty_duplicates(&h);
    assert!(dup >= 4, "duplicates in closed segments: {dup}");
    let files = |h: &Harness| -> Vec<Vec<u8>> {
        segment_files(&h.partition_dir(), "log")
            .iter()
            .map(|s| fs::read(&s.1).unwrap())
            .collect()
    };
    let before = files(&h);
    h.manager().run_cleaner_once(NOW + 20).unwrap();
    assert!(
        files(&h) == before,
        "dirty ratio below min.cleanable.dirty.ratio: not cleaned"
    );

    // max.compaction.lag.ms forces it once the dirty records are old enough.
    let mut forced = h.config.clone();
    forced.max_compaction_lag_ms = 30_000;
    h.update_config(forced);
    h.manager().run_cleaner_once(NOW + 20).unwrap();
    assert!(
        files(&h) == before,
        "dirty records younger than max.compaction.lag.ms"
    );
    h.manager().run_cleaner_once(NOW + 60_000).unwrap();
    assert_eq!(
        dirty_duplicates(&h),
        0,
        "max.compaction.lag.ms passed: compacted despite the ratio"
    );

    // A lower ratio cleans on its own.
    let mut low = h.config.clone();
    low.max_compaction_lag_ms = i64::MAX;
    low.min_cleanable_dirty_ratio = 0.01;
    h.update_config(low);
    for v in 5..8 {
        put(&h, &[kv(2, v), kv(3, v)], NOW + 70_000, Compression::None);
    }
    for k in 60..76 {
        put(&h, &[kv(k, 0)], NOW + 70_000, Compression::None);
    }
    assert!(dirty_duplicates(&h) > 0);
    h.manager().run_cleaner_once(NOW + 70_000).unwrap();
    assert_eq!(dirty_duplicates(&h), 0);
}

#[test]
fn delete_policy_is_never_compacted() {
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Delete,
        ..compacted(1024)
    };
    let h = Harness::new(config);
    for v in 0..10 {
        put(&h, &[kv(0, v), kv(1, v)], NOW, Compression::None);
    }
    let before = read_all_records(h.log());
    h.manager().run_cleaner_once(NOW + 1000).unwrap();
    assert_eq!(read_all_records(h.log()), before);
}

#[test]
fn compact_delete_applies_both_retention_and_compaction() {
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::CompactDelete,
        retention_ms: 60_000,
        ..compacted(1024)
    };
    let h = Harness::new(config.clone());
    for v in 0..10 {
        put(
            &h,
            &[kv(0, v), kv(1, v), kv(2, v)],
            NOW - 3_600_000,
            Compression::Gzip,
        );
    }
    let recent = h.log().log_end_offset();
    for v in 10..20 {
        put(&h, &[kv(0, v), kv(1, v), kv(3, v)], NOW, Compression::Gzip);
    }
    let segs = segment_files(&h.partition_dir(), "log");
    let keep_from = segs.iter().rev().find(|s| s.0 <= recent).unwrap().0;
    h.manager().run_retention_once(NOW).unwrap();
    assert_eq!(
        h.log().log_start_offset(),
        keep_from,
        "expired segments deleted"
    );
    let before = read_all_records(h.log());
    let (active_base, _) = active_segment(&h);
    h.manager().run_cleaner_once(NOW).unwrap();
    assert_compacted(&h, &before, active_base, false);

    // Compact alone keeps old segments.
    let only_compact = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..config
    };
    let h = Harness::new(only_compact);
    for v in 0..10 {
        put(
            &h,
            &[kv(0, v), kv(v + 1, v)],
            NOW - 3_600_000,
            Compression::Gzip,
        );
    }
    put(&h, &[kv(0, 99)], NOW, Compression::Gzip);
    h.manager().run_retention_once(NOW).unwrap();
    assert_eq!(
        h.log().log_start_offset(),
        0,
        "retention.ms does not apply to compact-only topics"
    );
}

#[test]
fn idempotent_batches_keep_producer_metadata() {
    let mut h = Harness::new(compacted(1024));
    let producer = |seq| {
        Some(Producer {
            id: 9001,
            epoch: 3,
            base_sequence: seq,
        })
    };
    let mut seq = 0;
    for v in 0..12 {
        let recs = vec![
            Rec::kv(&format!("key-{}", v % 2), &format!("v{v}"), NOW),
            Rec::kv(&format!("stable-{v}"), "s", NOW),
        ];
        append(
            h.log(),
            &mut batch_with(&recs, Compression::Zstd, producer(seq)),
            NOW,
        )
        .unwrap();
        seq += 2;
    }
    let originals: Vec<BatchHeader> = read_all_batches(h.log())
        .iter()
        .map(|b| BatchHeader::parse(b))
        .collect();
    let (active_base, _) = active_segment(&h);
    let before = read_all_records(h.log());
    h.manager().run_cleaner_once(NOW + 1000).unwrap();
    assert_compacted(&h, &before, active_base, false);
    for b in read_all_batches(h.log()) {
        let hdr = BatchHeader::parse(&b);
        let orig = originals
            .iter()
            .find(|o| o.base_offset <= hdr.base_offset && hdr.base_offset <= o.last_offset())
            .expect("cleaned batch comes from an original batch");
        assert_eq!((hdr.producer_id, hdr.producer_epoch), (9001, 3));
        assert_eq!(
            hdr.base_sequence - orig.base_sequence,
            (hdr.base_offset - orig.base_offset) as i32,
            "sequence follows offset"
        );
        assert_eq!(
            hdr.last_offset(),
            orig.last_offset(),
            "Kafka keeps the original last offset"
        );
        assert_eq!(hdr.codec(), Compression::Zstd as u8);
    }
    // The producer continues in sequence after cleaning and a restart.
    h.reopen_unclean();
    assert!(
        h.log().producer_state(9001).is_some(),
        "producer state kept"
    );
    let recs = vec![Rec::kv("key-0", "next", NOW)];
    let info = append(
        h.log(),
        &mut batch_with(&recs, Compression::Zstd, producer(seq)),
        NOW + 2000,
    )
    .unwrap();
    assert!(!info.duplicate);
}

#[test]
fn a_follower_replicates_a_compacted_log_with_offset_gaps() {
    let leader = Harness::new(compacted(1024));
    for v in 0..20 {
        put(
            &leader,
            &[kv(v % 4, v), kv(100 + v, v)],
            NOW,
            ALL_CODECS[v % 5],
        );
    }
    leader.manager().run_cleaner_once(NOW + 1000).unwrap();
    let fetched = read_all_batches(leader.log());
    let follower = Harness::new(compacted(1024));
    for b in &fetched {
        follower.log().append_as_follower(&mut b.clone()).unwrap();
    }
    assert_eq!(
        follower.log().log_end_offset(),
        leader.log().log_end_offset()
    );
    follower
        .log()
        .update_high_watermark(follower.log().log_end_offset());
    assert_eq!(read_all_batches(follower.log()), fetched);
    assert_eq!(
        read_all_records(follower.log()),
        read_all_records(leader.log())
    );
}

#[test]
fn leftover_cleaner_files_are_ignored_on_open() {
    let mut h = Harness::new(compacted(1024));
    for v in 0..20 {
        put(&h, &[kv(v % 3, v), kv(50 + v, v)], NOW, Compression::Gzip);
    }
    h.manager().run_cleaner_once(NOW + 1000).unwrap();
    let survivors = read_all_records(h.log());
    let end = h.log().log_end_offset();
    h.close_without_shutdown();
    // A crash in the middle of cleaning leaves half-written .cleaned files behind.
    let dir = h.partition_dir();
    std::fs::write(
        dir.join("00000000000000000000.log.cleaned"),
        b"half a cleaned segment",
    )
    .unwrap();
    std::fs::write(dir.join("00000000000000000000.index.cleaned"), [7u8; 13]).unwrap();
    h.open();
    assert_eq!(h.log().log_end_offset(), end);
    assert_eq!(read_all_records(h.log()), survivors);
    let leftovers = names_ending_with(&dir, ".cleaned").len();
    assert_eq!(
        leftovers, 0,
        ".cleaned files removed on load, as Kafka does"
    );
    h.manager().run_cleaner_once(NOW + 2000).unwrap();
    assert_eq!(read_all_records(h.log()), survivors);
}

/// Regression for storage bug T1: Kafka's truncateTo sets the log end offset to the target
/// even when compaction left a gap just below it (LocalLog.truncateTo -> updateLogEndOffset).
#[test]
fn truncating_into_a_compaction_gap_ends_the_log_at_the_target() {
    let h = Harness::new(compacted(1024));
    // Offsets 0..30: key-000 overwritten in every batch, so cleaning leaves gaps.
    for v in 0..10 {
        put(
            &h,
            &[kv(0, v), kv(0, v + 100), kv(10 + v, v)],
            NOW,
            Compression::None,
        );
    }
    h.manager().run_cleaner_once(NOW + 1000).unwrap();
    let headers: Vec<BatchHeader> = read_all_batches(h.log())
        .iter()
        .map(|b| BatchHeader::parse(b))
        .collect();
    let gap = headers
        .windows(2)
        .find(|w| w[0].last_offset() + 1 < w[1].base_offset)
        .map(|w| w[1].base_offset)
        .expect("a batch after a compaction gap");
    h.log().truncate_to(gap).unwrap();
    assert_eq!(
        h.log().log_end_offset(),
        gap,
        "log end offset after truncate_to({gap})"
    );
    let info = append(
        h.log(),
        &mut batch(&[Rec::kv("key-x", "y", NOW)], Compression::None),
        NOW,
    )
    .unwrap();
    assert_eq!(info.first_offset, gap);
}

/// ListOffsets finds records in cleaned segments, before and after a restart.
#[test]
fn list_offsets_after_cleaning_and_restart() {
    let config = LogConfig {
        index_interval_bytes: 4096,
        ..compacted(1024)
    };
    let mut h = Harness::new(config);
    // Timestamps rise with the offset; key-000 is overwritten so cleaning rewrites batches.
    for v in 0..24usize {
        put(
            &h,
            &[kv(0, v), kv(100 + v, v)],
            NOW + 10 * v as i64,
            ALL_CODECS[v % 5],
        );
    }
    h.manager().run_cleaner_once(NOW + 1000).unwrap();
    let check = |h: &Harness, when: &str| {
        let records = read_all_records(h.log());
        for target in (NOW - 5..NOW + 245).step_by(3) {
            let want = records
                .iter()
                .find(|r| r.timestamp >= target)
                .map(|r| (r.offset, r.timestamp));
            let got = h
                .log()
                .fetch_offset_by_timestamp(target)
                .unwrap()
                .map(|t| (t.offset, t.timestamp));
            assert_eq!(got, want, "{when}: ListOffsets({})", target - NOW);
        }
        let max = h
            .log()
            .max_timestamp_and_offset()
            .unwrap()
            .map(|t| t.timestamp);
        assert_eq!(
            max,
            records.iter().map(|r| r.timestamp).max(),
            "{when}: max timestamp"
        );
    };
    check(&h, "after cleaning");
    h.reopen_clean();
    check(&h, "after a clean restart");
    h.reopen_unclean();
    check(&h, "after an unclean restart");
}

fn write_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// (key, value, headers) of one raw record.
type RawRecord<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// An uncompressed batch whose records may repeat a header key, which Kafka allows and
/// kafka-protocol's encoder cannot produce.
fn raw_batch(records: &[RawRecord<'_>], ts: i64) -> Vec<u8> {
    let mut section = Vec::new();
    for (delta, (key, value, headers)) in records.iter().enumerate() {
        let mut body = vec![0u8];
        write_varint(&mut body, 0);
        write_varint(&mut body, delta as i64);
        for field in [key, value] {
            write_varint(&mut body, field.len() as i64);
            body.extend_from_slice(field.as_bytes());
        }
        write_varint(&mut body, headers.len() as i64);
        for (k, v) in headers.iter() {
            for field in [k, v] {
                write_varint(&mut body, field.len() as i64);
                body.extend_from_slice(field.as_bytes());
            }
        }
        write_varint(&mut section, body.len() as i64);
        section.extend_from_slice(&body);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    b.extend_from_slice(&((49 + section.len()) as i32).to_be_bytes()); // length
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // CRC, below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&(records.len() as i32).to_be_bytes());
    b.extend_from_slice(&section);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn a_batch_with_repeated_header_keys_is_kept_whole() {
    let mut h = Harness::new(compacted(1024));
    let dup: &[(&str, &str)] = &[("trace", "a"), ("trace", "b")];
    let original = raw_batch(&[("k1", "v1", dup), ("k2", "old", &[])], NOW);
    append(h.log(), &mut original.clone(), NOW).unwrap();
    // k2 is superseded; enough later batches to roll the first segment.
    for v in 0..20 {
        put(
            &h,
            &[(
                "k2".to_string(),
                Some(format!("new-{v}-{}", "x".repeat(60))),
            )],
            NOW,
            Compression::None,
        );
    }
    let (active_base, _) = active_segment(&h);
    assert!(active_base > 2, "the raw batch is in a closed segment");
    h.manager().run_cleaner_once(NOW + 1000).unwrap();
    let batches = read_all_batches(h.log());
    let first = &batches[0];
    assert_eq!(BatchHeader::parse(first).base_offset, 0);
    assert_eq!(
        first[61..],
        original[61..],
        "records (and both `trace` headers) kept byte for byte"
    );
    assert!(crc_valid(first));
    // The other batches were cleaned as usual: k2 survives once below the active segment.
    let k2_below_active = read_all_records(h.log())
        .iter()
        .filter(|r| r.key.as_deref() == Some(b"k2".as_slice()) && r.offset < active_base)
        .count();
    assert_eq!(k2_below_active, 2, "the kept batch's k2 and the latest one");
    h.reopen_unclean();
    assert_eq!(read_all_batches(h.log())[0][61..], original[61..]);
}

#[test]
fn a_small_dedupe_buffer_cleans_over_several_passes() {
    // 400 distinct keys, each written three times, over many 2 KiB segments; the key map
    // holds about 30 keys (log.cleaner.dedupe.buffer.size), so one pass cannot map them all.
    let mut h = Harness::new(compacted(2048));
    h.dedupe_buffer_bytes = Some(30 * (8 + 64));
    h.close_without_shutdown();
    h.open();
    for round in 0..3 {
        for chunk in 0..40 {
            let pairs: Vec<_> = (0..10).map(|k| kv(chunk * 10 + k, round)).collect();
            put(&h, &pairs, NOW, Compression::None);
        }
    }
    let before = read_all_records(h.log());
    let (active_base, _) = active_segment(&h);

    h.manager().run_cleaner_once(NOW + 1000).unwrap();
    let after_one = h.log().cleaner_checkpoint();
    assert!(
        after_one > 0 && after_one < active_base,
        "one pass stops where the map filled: {after_one} of {active_base}"
    );
    let mut passes = 1;
    while h.log().cleaner_checkpoint() < active_base {
        let checkpoint = h.log().cleaner_checkpoint();
        h.manager().run_cleaner_once(NOW + 1000).unwrap();
        assert!(
            h.log().cleaner_checkpoint() > checkpoint,
            "every pass progresses"
        );
        passes += 1;
        assert!(passes < 200, "cleaning does not converge");
    }
    assert!(passes > 2, "{passes} passes");
    assert_compacted(&h, &before, active_base, false);
}
