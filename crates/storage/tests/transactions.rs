//! Transactions on the log side (issue 5 item 2): ongoing transactions per producer,
//! COMMIT/ABORT markers, the last stable offset, the `.txnindex` and its recovery,
//! producer-epoch and coordinator-epoch fencing of markers, and compaction of
//! transactional data.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use moldau_storage::{AppendOrigin, CleanupPolicy, Log, LogConfig, StorageError};

const NOW: i64 = 1_700_000_000_000;

/// A transactional batch of `records` for producer `pid`/`epoch` from `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, records: &[Rec]) -> Vec<u8> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
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
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf
}

fn values(n: usize, prefix: &str) -> Vec<Rec> {
    (0..n)
        .map(|i| Rec::kv(&format!("{prefix}{i}"), &format!("{prefix}-value-{i}"), NOW))
        .collect()
}

/// Appends a transactional batch as a client; the high watermark stays put.
fn produce_txn(log: &Log, pid: i64, epoch: i16, seq: i32, records: &[Rec]) -> (i64, i64) {
    let info = log
        .append_as_leader(
            &mut txn_batch(pid, epoch, seq, records),
            0,
            AppendOrigin::Client,
            NOW,
        )
        .expect("transactional append");
    (info.first_offset, info.last_offset)
}

fn end_txn(log: &Log, pid: i64, epoch: i16, commit: bool) -> i64 {
    log.append_control_marker(pid, epoch, 0, commit, 0, NOW)
        .expect("marker")
        .first_offset
}

fn hw_to_end(log: &Log) {
    log.update_high_watermark(log.log_end_offset());
}

#[test]
fn interleaved_transactions_keep_the_last_stable_offset() {
    let h = Harness::new(LogConfig::default());
    let log = h.log();
    assert_eq!(log.first_unstable_offset(), None);
    let (p1_first, _) = produce_txn(log, 1, 0, 0, &values(2, "a")); // 0..1
    let (p2_first, _) = produce_txn(log, 2, 0, 0, &values(1, "b")); // 2
    append(log, &mut batch(&values(1, "c"), Compression::None), NOW).unwrap(); // 3
    assert_eq!((p1_first, p2_first), (0, 2));
    assert_eq!(log.high_watermark(), 4);
    assert_eq!(log.first_unstable_offset(), Some(0));
    assert_eq!(log.last_stable_offset(), 0);
    assert_eq!(log.ongoing_transactions(), vec![(1, 0), (2, 2)]);

    // P1 commits at 4: the LSO moves only once the high watermark passes the marker.
    assert_eq!(end_txn(log, 1, 0, true), 4);
    log.update_high_watermark(4);
    assert_eq!(log.last_stable_offset(), 0);
    log.update_high_watermark(5);
    assert_eq!(log.first_unstable_offset(), Some(2));
    assert_eq!(log.last_stable_offset(), 2);

    // P1 opens another transaction behind P2's; P2 aborts.
    let (p1_again, _) = produce_txn(log, 1, 0, 2, &values(1, "d")); // 5
    assert_eq!(end_txn(log, 2, 0, false), 6);
    hw_to_end(log);
    assert_eq!(log.first_unstable_offset(), Some(p1_again));
    assert_eq!(log.last_stable_offset(), 5);
    assert_eq!(end_txn(log, 1, 0, false), 7);
    assert_eq!(
        log.last_stable_offset(),
        5,
        "marker 7 is not below the HW yet"
    );
    hw_to_end(log);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), 8);

    // Both aborts are indexed; P2's LSO was P1's open transaction at 5.
    assert_eq!(
        log.aborted_transactions(0, 8).unwrap(),
        vec![(2, 2), (1, 5)]
    );
    let index = std::fs::read(segment_files(&h.partition_dir(), "txnindex")[0].1.clone()).unwrap();
    assert_eq!(index.len(), 2 * 34);
    let field = |entry: usize, at: usize| {
        i64::from_be_bytes(
            index[entry * 34 + at..entry * 34 + at + 8]
                .try_into()
                .unwrap(),
        )
    };
    assert_eq!(&index[0..2], &[0, 0], "AbortedTxn version 0");
    assert_eq!(
        (field(0, 2), field(0, 10), field(0, 18), field(0, 26)),
        (2, 2, 6, 5)
    );
    assert_eq!(
        (field(1, 2), field(1, 10), field(1, 18), field(1, 26)),
        (1, 5, 7, 8)
    );

    // Kafka's READ_COMMITTED ranges: last offset >= start and first offset < upper.
    assert_eq!(log.aborted_transactions(0, 2).unwrap(), vec![]);
    assert_eq!(log.aborted_transactions(0, 3).unwrap(), vec![(2, 2)]);
    assert_eq!(log.aborted_transactions(7, 8).unwrap(), vec![(1, 5)]);
    assert_eq!(log.aborted_transactions(8, 8).unwrap(), vec![]);
}

#[test]
fn non_transactional_write_inside_a_transaction_is_invalid_txn_state() {
    let h = Harness::new(LogConfig::default());
    let log = h.log();
    produce_txn(log, 7, 0, 0, &values(1, "a"));
    let idempotent = Producer {
        id: 7,
        epoch: 0,
        base_sequence: 1,
    };
    let err = log
        .append_as_leader(
            &mut batch_with(&values(1, "b"), Compression::None, Some(idempotent)),
            0,
            AppendOrigin::Client,
            NOW,
        )
        .unwrap_err();
    assert!(matches!(err, StorageError::InvalidTxnState(_)), "{err:?}");
    assert_eq!(err.kafka_error_code(), 48);
}

#[test]
fn markers_are_fenced_by_producer_and_coordinator_epochs() {
    let h = Harness::new(LogConfig::default());
    let log = h.log();
    produce_txn(log, 3, 5, 0, &values(1, "a"));
    // Clients may not write markers.
    let mut control = marker_batch(3, 5);
    let err = log
        .append_as_leader(&mut control, 0, AppendOrigin::Client, NOW)
        .unwrap_err();
    assert_eq!(err.kafka_error_code(), 87, "{err:?}");
    // An older producer epoch: INVALID_PRODUCER_EPOCH, nothing appended.
    let end = log.log_end_offset();
    let err = log
        .append_control_marker(3, 4, 0, true, 0, NOW)
        .unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidProducerEpoch(_)),
        "{err:?}"
    );
    assert_eq!(log.log_end_offset(), end);
    // Coordinator epoch 7 closes it; a marker from coordinator epoch 6 is fenced.
    log.append_control_marker(3, 5, 7, true, 0, NOW).unwrap();
    let err = log
        .append_control_marker(3, 5, 6, false, 0, NOW)
        .unwrap_err();
    assert!(
        matches!(err, StorageError::TransactionCoordinatorFenced(_)),
        "{err:?}"
    );
    assert_eq!(err.kafka_error_code(), 52);
    // A marker with a bumped epoch (the coordinator aborting a zombie) fences the
    // old epoch's data; a marker without an open transaction changes no offsets.
    log.append_control_marker(3, 6, 7, false, 0, NOW).unwrap();
    let state = log.producer_state(3).unwrap();
    assert_eq!((state.producer_epoch, state.coordinator_epoch), (6, 7));
    assert_eq!(state.current_txn_first_offset, None);
    let err = log
        .append_as_leader(
            &mut txn_batch(3, 5, 1, &values(1, "z")),
            0,
            AppendOrigin::Client,
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(err, StorageError::InvalidProducerEpoch(_)),
        "{err:?}"
    );
    hw_to_end(log);
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    assert_eq!(log.aborted_transactions(0, i64::MAX).unwrap(), vec![]);
}

/// A real control batch (COMMIT for `pid`/`epoch`), written by a scratch log.
fn marker_batch(pid: i64, epoch: i16) -> Vec<u8> {
    let scratch = Harness::new(LogConfig::default());
    produce_txn(scratch.log(), pid, epoch, 0, &values(1, "x"));
    end_txn(scratch.log(), pid, epoch, true);
    hw_to_end(scratch.log());
    let mut bytes = read_all_batches(scratch.log()).pop().unwrap();
    assert_eq!(BatchHeader::parse(&bytes).attributes & 0x30, 0x30);
    bytes[0..8].copy_from_slice(&0i64.to_be_bytes());
    bytes
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        ..LogConfig::default()
    }
}

/// Several aborted and committed transactions spread over many segments.
fn spread_transactions(log: &Log) -> Vec<(i64, i64)> {
    let mut aborted = Vec::new();
    for round in 0..12i64 {
        let pid = 100 + round % 3;
        let epoch = 0;
        let seq = (round / 3) as i32 * 4;
        let (first, _) = produce_txn(log, pid, epoch, seq, &values(2, &format!("r{round}-")));
        append(log, &mut sized_batch(3, 60, Compression::None, NOW), NOW).unwrap();
        produce_txn(log, pid, epoch, seq + 2, &values(2, &format!("s{round}-")));
        let commit = round % 2 == 0;
        end_txn(log, pid, epoch, commit);
        if !commit {
            aborted.push((pid, first));
        }
    }
    hw_to_end(log);
    aborted
}

#[test]
fn aborted_transactions_are_collected_across_segments() {
    let h = Harness::new(small_segments());
    let log = h.log();
    let aborted = spread_transactions(log);
    assert!(log.segment_count() > 4, "{} segments", log.segment_count());
    let end = log.log_end_offset();
    assert_eq!(log.aborted_transactions(0, end).unwrap(), aborted);
    // Every window sees exactly the aborted transactions overlapping it.
    let markers: Vec<(i64, i64, i64)> = {
        let mut out = Vec::new();
        for batch in read_all_batches(log) {
            let hd = BatchHeader::parse(&batch);
            if hd.attributes & 0x20 != 0 {
                out.push((hd.producer_id, hd.base_offset, 0));
            }
        }
        out
    };
    assert_eq!(markers.len(), 12);
    for start in (0..end).step_by(3) {
        for upper in [start + 1, start + 7, end] {
            let got = log.aborted_transactions(start, upper).unwrap();
            let want: Vec<(i64, i64)> = aborted
                .iter()
                .filter(|(pid, first)| {
                    let last = markers
                        .iter()
                        .find(|(p, offset, _)| p == pid && offset > first)
                        .unwrap()
                        .1;
                    last >= start && *first < upper
                })
                .copied()
                .collect();
            assert_eq!(got, want, "window [{start}, {upper})");
        }
    }
}

#[test]
fn reopen_clean_and_unclean_keep_the_lso_and_the_txn_index() {
    let mut h = Harness::new(small_segments());
    let aborted = spread_transactions(h.log());
    // An open transaction behind a committed one and a non-transactional tail.
    let (open_first, _) = produce_txn(h.log(), 200, 1, 0, &values(2, "open"));
    append(
        h.log(),
        &mut sized_batch(2, 60, Compression::None, NOW),
        NOW,
    )
    .unwrap();
    hw_to_end(h.log());
    let end = h.log().log_end_offset();
    assert_eq!(h.log().last_stable_offset(), open_first);
    let index_files = |h: &Harness| -> Vec<(i64, Vec<u8>)> {
        segment_files(&h.partition_dir(), "txnindex")
            .into_iter()
            .map(|(base, path)| (base, std::fs::read(path).unwrap()))
            .collect()
    };
    let indexes = index_files(&h);
    assert!(indexes.iter().filter(|(_, b)| !b.is_empty()).count() >= 2);

    h.reopen_clean();
    assert_eq!(h.log().log_end_offset(), end);
    assert_eq!(h.log().first_unstable_offset(), Some(open_first));
    assert_eq!(h.log().last_stable_offset(), open_first);
    assert_eq!(h.log().aborted_transactions(0, end).unwrap(), aborted);
    assert_eq!(index_files(&h), indexes);

    // Crash: every segment past the recovery point is re-read and its index rebuilt.
    h.reopen_unclean();
    hw_to_end(h.log());
    assert_eq!(h.log().first_unstable_offset(), Some(open_first));
    assert_eq!(h.log().last_stable_offset(), open_first);
    assert_eq!(h.log().aborted_transactions(0, end).unwrap(), aborted);
    assert_eq!(index_files(&h), indexes);

    // Lost and damaged index files are rebuilt from the markers.
    let files = segment_files(&h.partition_dir(), "txnindex");
    h.manager().shutdown().unwrap();
    h.close_without_shutdown();
    for (i, (_, path)) in files.iter().enumerate() {
        if i % 2 == 0 {
            std::fs::remove_file(path).unwrap();
        } else {
            std::fs::write(path, [7u8; 35]).unwrap();
        }
    }
    h.open();
    hw_to_end(h.log());
    assert_eq!(h.log().aborted_transactions(0, end).unwrap(), aborted);
    assert_eq!(index_files(&h), indexes);
    assert_eq!(h.log().last_stable_offset(), open_first);

    // The open transaction still commits after all that.
    end_txn(h.log(), 200, 1, true);
    hw_to_end(h.log());
    assert_eq!(h.log().first_unstable_offset(), None);
    assert_eq!(h.log().last_stable_offset(), h.log().log_end_offset());
}

#[test]
fn snapshots_without_replay_keep_open_transactions() {
    let mut h = Harness::new(small_segments());
    let (open_first, _) = produce_txn(h.log(), 9, 0, 0, &values(1, "t"));
    // Enough plain data to roll several segments (a snapshot at each roll).
    for _ in 0..20 {
        append(
            h.log(),
            &mut sized_batch(3, 60, Compression::None, NOW),
            NOW,
        )
        .unwrap();
    }
    assert!(h.log().segment_count() > 3);
    let snapshots = segment_files(&h.partition_dir(), "snapshot");
    assert!(!snapshots.is_empty());
    h.reopen_clean();
    hw_to_end(h.log());
    assert_eq!(h.log().last_stable_offset(), open_first);
    let state = h.log().producer_state(9).unwrap();
    assert_eq!(state.current_txn_first_offset, Some(open_first));
    // Retention of the segments holding the transaction's start does not lose it.
    h.log()
        .delete_records_before(h.log().high_watermark() - 1)
        .unwrap();
    h.log().delete_old_segments(NOW).unwrap();
    let start = h.log().log_start_offset();
    // Retention deletes each segment's .txnindex with it.
    let bases = |ext: &str| -> Vec<i64> {
        segment_files(&h.partition_dir(), ext)
            .into_iter()
            .map(|(base, _)| base)
            .collect()
    };
    assert_eq!(bases("txnindex"), bases("log"));
    assert!(bases("log").len() < 3, "old segments were deleted");
    assert_eq!(h.log().first_unstable_offset(), Some(start));
    assert_eq!(h.log().last_stable_offset(), start);
    end_txn(h.log(), 9, 0, false);
    hw_to_end(h.log());
    assert_eq!(h.log().last_stable_offset(), h.log().log_end_offset());
}

#[test]
fn follower_truncation_reopens_transactions_and_trims_the_index() {
    let h = Harness::new(LogConfig::default());
    let log = h.log();
    let (first, _) = produce_txn(log, 5, 0, 0, &values(2, "a"));
    let abort_at = end_txn(log, 5, 0, false);
    hw_to_end(log);
    assert_eq!(log.aborted_transactions(0, 10).unwrap(), vec![(5, first)]);
    log.truncate_to(abort_at).unwrap();
    assert_eq!(log.log_end_offset(), abort_at);
    assert_eq!(log.aborted_transactions(0, 10).unwrap(), vec![]);
    assert_eq!(log.first_unstable_offset(), Some(first));
    assert_eq!(log.last_stable_offset(), first);
    assert_eq!(
        log.producer_state(5).unwrap().current_txn_first_offset,
        Some(first)
    );
}

#[test]
fn followers_replicate_markers_into_their_own_index() {
    let leader = Harness::new(LogConfig::default());
    let (first, _) = produce_txn(leader.log(), 5, 0, 0, &values(2, "a"));
    end_txn(leader.log(), 5, 0, false);
    produce_txn(leader.log(), 6, 0, 0, &values(1, "b"));
    hw_to_end(leader.log());
    let follower = Harness::new(LogConfig::default());
    let mut bytes: Vec<u8> = read_all_batches(leader.log()).concat();
    follower.log().append_as_follower(&mut bytes).unwrap();
    hw_to_end(follower.log());
    assert_eq!(
        follower.log().aborted_transactions(0, 10).unwrap(),
        vec![(5, first)]
    );
    assert_eq!(
        follower.log().last_stable_offset(),
        leader.log().last_stable_offset()
    );
    assert_eq!(follower.log().first_unstable_offset(), Some(3));
}

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        segment_bytes: 600,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1_000,
        ..LogConfig::default()
    }
}

/// Plain keyed records `f<from>..f<to>` (one per batch) to fill and roll segments.
fn filler(log: &Log, from: usize, to: usize) {
    for i in from..to {
        let rec = Rec::kv(&format!("f{i}"), &"v".repeat(40), NOW);
        append(log, &mut batch(&[rec], Compression::None), NOW).unwrap();
    }
}

/// (producer id, base offset, record count, has delete horizon) of every marker.
fn markers(log: &Log) -> Vec<(i64, i64, i32, bool)> {
    read_all_batches(log)
        .iter()
        .map(|b| BatchHeader::parse(b))
        .filter(|hd| hd.attributes & 0x20 != 0)
        .map(|hd| {
            (
                hd.producer_id,
                hd.base_offset,
                hd.record_count,
                hd.attributes & 0x40 != 0,
            )
        })
        .collect()
}

fn live_values(log: &Log) -> Vec<(String, String)> {
    read_all_batches(log)
        .iter()
        .filter(|b| BatchHeader::parse(b).attributes & 0x20 == 0)
        .flat_map(|b| decode_batch(b).1)
        .filter(|r| !String::from_utf8_lossy(r.key.as_deref().unwrap_or(b"")).starts_with('f'))
        .map(|r| {
            (
                String::from_utf8(r.key.unwrap()).unwrap(),
                String::from_utf8(r.value.unwrap_or_default()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn compaction_removes_aborted_data_and_keeps_markers_while_their_data_remains() {
    let h = Harness::new(compacted());
    let log = h.log();
    let kv = |k: &str, v: &str| Rec::kv(k, v, NOW);
    produce_txn(log, 1, 0, 0, &[kv("k1", "a1"), kv("k2", "a2")]);
    let (aborted_first, _) = produce_txn(log, 2, 0, 0, &[kv("k1", "x1"), kv("k3", "x3")]);
    let commit_at = end_txn(log, 1, 0, true);
    let abort_at = end_txn(log, 2, 0, false);
    // Producer 2's next (committed) transaction makes the aborted batch not its last.
    produce_txn(log, 2, 0, 2, &[kv("k4", "c4")]);
    let commit2_at = end_txn(log, 2, 0, true);
    append(log, &mut batch(&[kv("k1", "c1")], Compression::None), NOW).unwrap();
    filler(log, 0, 12);
    hw_to_end(log);
    assert_eq!(
        log.aborted_transactions(0, log.log_end_offset()).unwrap(),
        vec![(2, aborted_first)]
    );

    h.manager().run_cleaner_once(NOW).unwrap();
    assert!(log.cleaner_checkpoint() > commit2_at);
    // Aborted x1/x3 are gone whatever their keys; committed k1=a1 lost to k1=c1.
    assert_eq!(
        live_values(log),
        vec![
            ("k2".into(), "a2".into()),
            ("k4".into(), "c4".into()),
            ("k1".into(), "c1".into())
        ]
    );
    // Every marker stays: their transactions' batches were seen in this pass; the
    // abort keeps its index entry in the cleaned segment.
    let m = markers(log);
    assert_eq!(
        m.iter().map(|x| (x.0, x.1, x.3)).collect::<Vec<_>>(),
        vec![
            (1, commit_at, false),
            (2, abort_at, false),
            (2, commit2_at, false)
        ]
    );
    assert_eq!(
        log.aborted_transactions(0, log.log_end_offset()).unwrap(),
        vec![(2, aborted_first)]
    );

    // Next pass: no data of the abort remains, so its marker gets a delete horizon
    // and its index entry goes; the commits still have data.
    filler(log, 12, 24);
    hw_to_end(log);
    h.manager().run_cleaner_once(NOW + 10).unwrap();
    let m = markers(log);
    assert_eq!(
        m.iter().map(|x| (x.0, x.1, x.3)).collect::<Vec<_>>(),
        vec![
            (1, commit_at, false),
            (2, abort_at, true),
            (2, commit2_at, false)
        ]
    );
    assert_eq!(
        log.aborted_transactions(0, log.log_end_offset()).unwrap(),
        vec![]
    );
    // Past delete.retention.ms the abort marker is removed.
    filler(log, 24, 36);
    hw_to_end(log);
    h.manager().run_cleaner_once(NOW + 2_000).unwrap();
    let m = markers(log);
    assert_eq!(
        m.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
        vec![(1, commit_at), (2, commit2_at)]
    );
    // When a committed transaction's data is all compacted away its marker
    // follows, unless a batch of it is kept (empty) as its producer's last entry,
    // as Kafka does: producer 1 moves on, producer 2 does not.
    let p1 = Producer {
        id: 1,
        epoch: 0,
        base_sequence: 2,
    };
    append(
        log,
        &mut batch_with(&[kv("p1", "idem")], Compression::None, Some(p1)),
        NOW,
    )
    .unwrap();
    append(
        log,
        &mut batch(&[kv("k2", "n2"), kv("k4", "n4")], Compression::None),
        NOW,
    )
    .unwrap();
    for (i, now) in [(36, NOW + 3_000), (48, NOW + 3_010), (60, NOW + 5_000)] {
        filler(log, i, i + 12);
        hw_to_end(log);
        h.manager().run_cleaner_once(now).unwrap();
    }
    assert_eq!(
        markers(log)
            .iter()
            .map(|x| (x.0, x.1, x.2))
            .collect::<Vec<_>>(),
        vec![(2, commit2_at, 1)]
    );
    let p2_last = read_all_batches(log)
        .iter()
        .map(|b| BatchHeader::parse(b))
        .find(|hd| hd.producer_id == 2 && hd.attributes & 0x20 == 0)
        .unwrap();
    assert_eq!(
        p2_last.record_count, 0,
        "kept empty: producer 2's last sequence"
    );
    assert_eq!(
        live_values(log),
        vec![
            ("k1".into(), "c1".into()),
            ("p1".into(), "idem".into()),
            ("k2".into(), "n2".into()),
            ("k4".into(), "n4".into())
        ]
    );
    // The retained state survives a restart.
    let mut h = h;
    h.reopen_unclean();
    // Until the high watermark is known again the replayed commit is unreplicated.
    hw_to_end(h.log());
    assert_eq!(
        h.log()
            .aborted_transactions(0, h.log().log_end_offset())
            .unwrap(),
        vec![]
    );
    assert_eq!(h.log().first_unstable_offset(), None);
}

#[test]
fn compaction_stops_at_the_last_stable_offset() {
    let h = Harness::new(compacted());
    let log = h.log();
    filler(log, 0, 12);
    let (open_first, _) = produce_txn(log, 4, 0, 0, &[Rec::kv("k9", "undecided", NOW)]);
    append(
        log,
        &mut batch(&[Rec::kv("k9", "later", NOW)], Compression::None),
        NOW,
    )
    .unwrap();
    filler(log, 0, 24);
    hw_to_end(log);
    assert_eq!(log.last_stable_offset(), open_first);
    h.manager().run_cleaner_once(NOW).unwrap();
    assert!(log.cleaner_checkpoint() <= open_first);
    assert!(live_values(log).contains(&("k9".into(), "undecided".into())));
    // Once aborted the undecided value is removed by the next pass.
    end_txn(log, 4, 0, false);
    filler(log, 24, 36);
    hw_to_end(log);
    h.manager().run_cleaner_once(NOW).unwrap();
    assert_eq!(live_values(log), vec![("k9".into(), "later".into())]);
}

/// What the log should report, kept by the test as Kafka defines it.
#[derive(Default)]
struct TxnModel {
    /// Producer -> (next sequence, first offset of its open transaction).
    producers: std::collections::BTreeMap<i64, (i32, Option<i64>)>,
    /// Closed transactions whose marker is not below the HW: (first, marker).
    unreplicated: Vec<(i64, i64)>,
    /// (producer, first offset) of every aborted transaction, in marker order.
    aborted: Vec<(i64, i64)>,
    high_watermark: i64,
}

impl TxnModel {
    fn first_unstable(&self) -> Option<i64> {
        let open = self.producers.values().filter_map(|(_, open)| *open);
        open.chain(self.unreplicated.iter().map(|(first, _)| *first))
            .min()
    }

    fn set_high_watermark(&mut self, hw: i64) {
        self.high_watermark = hw;
        self.unreplicated.retain(|(_, marker)| *marker >= hw);
    }

    fn check(&self, log: &Log, step: usize) {
        assert_eq!(log.high_watermark(), self.high_watermark, "step {step}: HW");
        assert_eq!(
            log.first_unstable_offset(),
            self.first_unstable(),
            "step {step}: FUO"
        );
        let lso = self
            .first_unstable()
            .filter(|f| *f < self.high_watermark)
            .unwrap_or(self.high_watermark);
        assert_eq!(log.last_stable_offset(), lso, "step {step}: LSO");
        let end = log.log_end_offset();
        assert_eq!(
            log.aborted_transactions(0, end).unwrap(),
            self.aborted,
            "step {step}: aborted"
        );
        let mut ongoing: Vec<(i64, i64)> = self
            .producers
            .iter()
            .filter_map(|(pid, (_, open))| Some((*pid, (*open)?)))
            .collect();
        ongoing.sort_by_key(|(_, first)| *first);
        assert_eq!(log.ongoing_transactions(), ongoing, "step {step}: ongoing");
    }
}

#[test]
fn random_interleaved_transactions_match_the_model() {
    for seed in 1..=6u64 {
        let mut rng = XorShift::new(seed);
        let mut h = Harness::new(small_segments());
        let mut model = TxnModel::default();
        for step in 0..300 {
            let log = h.log().clone();
            let pid = 1 + rng.below(4) as i64;
            match rng.below(20) {
                0..=7 => {
                    let (seq, open) = model.producers.entry(pid).or_insert((0, None));
                    let n = 1 + rng.below(3) as usize;
                    let (first, _) = produce_txn(&log, pid, 0, *seq, &values(n, "t"));
                    *seq += n as i32;
                    open.get_or_insert(first);
                }
                8..=10 => {
                    log.append_as_leader(
                        &mut sized_batch(2, 30, Compression::None, NOW),
                        0,
                        AppendOrigin::Client,
                        NOW,
                    )
                    .unwrap();
                }
                11..=14 => {
                    let commit = rng.below(2) == 0;
                    let marker = end_txn(&log, pid, 0, commit);
                    let entry = model.producers.entry(pid).or_insert((0, None));
                    if let Some(first) = entry.1.take() {
                        model.unreplicated.push((first, marker));
                        if !commit {
                            model.aborted.push((pid, first));
                        }
                    }
                }
                15..=18 => {
                    let (hw, end) = (model.high_watermark, log.log_end_offset());
                    let target = hw + rng.below((end - hw + 1) as u64) as i64;
                    log.update_high_watermark(target);
                    model.set_high_watermark(target);
                }
                _ => {
                    hw_to_end(&log);
                    model.set_high_watermark(log.log_end_offset());
                    drop(log);
                    if rng.below(2) == 0 {
                        h.reopen_clean();
                    } else {
                        h.reopen_unclean();
                    }
                    hw_to_end(h.log());
                }
            }
            model.check(h.log(), step);
        }
    }
}

/// Kafka's READ_COMMITTED consumer: records below the LSO, minus those of aborted
/// transactions (found with the aborted list), as (offset, key, value).
fn read_committed(log: &Log) -> Vec<(i64, String, String)> {
    let lso = log.last_stable_offset();
    let mut aborted = log
        .aborted_transactions(log.log_start_offset(), lso)
        .unwrap();
    aborted.sort_by_key(|(_, first)| *first);
    let mut aborted = aborted.into_iter().peekable();
    let mut aborting = std::collections::HashSet::new();
    let mut out = Vec::new();
    for b in read_all_batches(log) {
        let hd = BatchHeader::parse(&b);
        if hd.base_offset >= lso {
            break;
        }
        while let Some((pid, _)) = aborted.next_if(|(_, first)| *first <= hd.last_offset()) {
            aborting.insert(pid);
        }
        if hd.attributes & 0x20 != 0 {
            let (_, recs) = decode_batch(&b);
            if recs
                .first()
                .is_some_and(|r| r.key.as_deref().map(|k| k[3]) == Some(0))
            {
                aborting.remove(&hd.producer_id);
            }
            continue;
        }
        if hd.attributes & 0x10 != 0 && aborting.contains(&hd.producer_id) {
            continue;
        }
        for r in decode_batch(&b).1 {
            let text = |v: Option<Vec<u8>>| String::from_utf8(v.unwrap_or_default()).unwrap();
            out.push((r.offset, text(r.key), text(r.value)));
        }
    }
    out
}

fn latest_per_key(records: &[(i64, String, String)]) -> std::collections::BTreeMap<String, String> {
    records
        .iter()
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn random_transactions_under_compaction_keep_the_committed_view() {
    for seed in 1..=3u64 {
        let mut rng = XorShift::new(seed);
        let mut h = Harness::new(compacted());
        let mut open: std::collections::BTreeMap<i64, i32> = Default::default();
        let mut seqs: std::collections::BTreeMap<i64, i32> = Default::default();
        let mut aborted_values = std::collections::HashSet::new();
        let mut pending: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
        let mut now = NOW;
        let mut max_checkpoint = 0;
        for step in 0..200 {
            let log = h.log().clone();
            let pid = 1 + rng.below(3) as i64;
            match rng.below(16) {
                0..=4 => {
                    let seq = seqs.entry(pid).or_insert(0);
                    let recs: Vec<Rec> = (0..1 + rng.below(2))
                        .map(|_| {
                            let value = format!("p{pid}-s{step}-{}", rng.below(1000));
                            pending.entry(pid).or_default().push(value.clone());
                            Rec::kv(&format!("k{}", rng.below(6)), &value, NOW)
                        })
                        .collect();
                    produce_txn(&log, pid, 0, *seq, &recs);
                    *seq += recs.len() as i32;
                    *open.entry(pid).or_insert(0) += 1;
                }
                6..=8 => {
                    let rec = Rec::kv(&format!("k{}", rng.below(6)), &format!("plain-{step}"), NOW);
                    append(&log, &mut batch(&[rec], Compression::None), NOW).unwrap();
                }
                9..=12 => {
                    let commit = rng.below(2) == 0;
                    end_txn(&log, pid, 0, commit);
                    open.remove(&pid);
                    let values = pending.remove(&pid).unwrap_or_default();
                    if !commit {
                        aborted_values.extend(values);
                    }
                }
                5 | 13 => filler(&log, 0, 6),
                14 => {
                    now += rng.below(1_500) as i64;
                    hw_to_end(&log);
                    h.manager().run_cleaner_once(now).unwrap();
                }
                _ => {
                    hw_to_end(&log);
                    drop(log);
                    h.reopen_unclean();
                }
            }
            hw_to_end(h.log());
            let log = h.log();
            let view = read_committed(log);
            for (offset, _, value) in &view {
                assert!(
                    !aborted_values.contains(value),
                    "seed {seed} step {step}: aborted {value} at {offset} visible"
                );
            }
            // Below the cleaner checkpoint no aborted record remains at all.
            let checkpoint = log.cleaner_checkpoint();
            max_checkpoint = max_checkpoint.max(checkpoint);
            for b in read_all_batches(log) {
                if BatchHeader::parse(&b).attributes & 0x20 != 0 {
                    continue;
                }
                for r in decode_batch(&b).1 {
                    let value = String::from_utf8(r.value.unwrap_or_default()).unwrap();
                    assert!(
                        r.offset >= checkpoint || !aborted_values.contains(&value),
                        "seed {seed} step {step}: aborted {value} at {} below checkpoint {checkpoint}",
                        r.offset
                    );
                }
            }
            // Compaction never changes the latest committed value of a key.
            let latest = latest_per_key(&view);
            if step % 10 == 0 {
                now += 1;
                h.manager().run_cleaner_once(now).unwrap();
                let after = latest_per_key(&read_committed(h.log()));
                assert_eq!(
                    after, latest,
                    "seed {seed} step {step}: cleaning changed the view"
                );
            }
        }
        assert!(
            max_checkpoint > 0 && !aborted_values.is_empty(),
            "seed {seed}: checkpoint {max_checkpoint}, {} aborted",
            aborted_values.len()
        );
    }
}

#[test]
fn read_committed_stops_at_the_lso_and_lists_the_aborted_transactions_read() {
    let h = Harness::new(LogConfig::default());
    let log = h.log();
    produce_txn(log, 1, 0, 0, &values(2, "a")); // 0..1
    end_txn(log, 1, 0, false); // 2
    append(log, &mut batch(&values(1, "p"), Compression::None), NOW).unwrap(); // 3
    produce_txn(log, 2, 0, 0, &values(1, "b")); // 4
    append(log, &mut batch(&values(1, "q"), Compression::None), NOW).unwrap(); // 5
    assert_eq!(log.last_stable_offset(), 4);
    let bases = |data: &moldau_storage::FetchDataInfo| -> Vec<i64> {
        split_batches(&data.read_to_bytes().unwrap())
            .iter()
            .map(|b| BatchHeader::parse(b).base_offset)
            .collect()
    };
    let (data, aborted) = log.read_committed(0, 1 << 20, true).unwrap();
    assert_eq!(bases(&data), vec![0, 2, 3]);
    assert_eq!(aborted, vec![(1, 0)]);
    let (data, aborted) = log.read_committed(3, 1 << 20, true).unwrap();
    assert_eq!((bases(&data), aborted), (vec![3], vec![]));
    let (data, aborted) = log.read_committed(4, 1 << 20, true).unwrap();
    assert!(data.is_empty() && aborted.is_empty());
    end_txn(log, 2, 0, true); // 6
    hw_to_end(log);
    let (data, aborted) = log.read_committed(4, 1 << 20, true).unwrap();
    assert_eq!((bases(&data), aborted), (vec![4, 5, 6], vec![]));
    // Out of range is still an error.
    assert!(matches!(
        log.read_committed(99, 1 << 20, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn transaction_verification_guards_the_first_write_of_a_transaction() {
    let h = Harness::new(LogConfig::default());
    let log = h.log();
    let produce = |guard, seq| {
        log.append_as_leader_verified(
            &mut txn_batch(8, 0, seq, &values(1, "v")),
            0,
            AppendOrigin::Client,
            NOW,
            guard,
        )
    };
    // No verification started: the first write of a transaction is refused.
    let err = produce(moldau_storage::VerificationGuard::SENTINEL, 0).unwrap_err();
    assert!(matches!(err, StorageError::InvalidTxnState(_)), "{err:?}");
    let guard = log.maybe_start_transaction_verification(8, 0, 0, NOW);
    assert_ne!(guard, moldau_storage::VerificationGuard::SENTINEL);
    assert_eq!(
        log.maybe_start_transaction_verification(8, 0, 0, NOW),
        guard
    );
    assert_eq!(log.verification_guard(8), guard);
    // A stale guard (another verification) is refused; the right one opens it.
    assert!(produce(moldau_storage::VerificationGuard::SENTINEL, 0).is_err());
    produce(guard, 0).unwrap();
    assert!(log.has_ongoing_transaction(8));
    assert_eq!(
        log.verification_guard(8),
        moldau_storage::VerificationGuard::SENTINEL
    );
    // Later writes of the open transaction need no guard.
    assert_eq!(
        log.maybe_start_transaction_verification(8, 1, 0, NOW),
        moldau_storage::VerificationGuard::SENTINEL
    );
    produce(moldau_storage::VerificationGuard::SENTINEL, 1).unwrap();
    // After the abort the old guard is useless: a new transaction verifies again.
    end_txn(log, 8, 0, false);
    assert!(!log.has_ongoing_transaction(8));
    assert!(matches!(
        produce(guard, 2),
        Err(StorageError::InvalidTxnState(_))
    ));
    // The verification remembers the lowest sequence: skipping ahead is refused.
    let guard = log.maybe_start_transaction_verification(8, 2, 0, NOW);
    assert!(matches!(
        produce(guard, 3),
        Err(StorageError::OutOfOrderSequence(_))
    ));
    produce(guard, 2).unwrap();
    hw_to_end(log);
    assert_eq!(
        log.ongoing_transactions(),
        vec![(8, log.log_end_offset() - 1)]
    );
}
