//! Append-path validation (issue #2 item 2): every rejection is a typed error that maps
//! to one Kafka error code, and a rejected request leaves the log untouched.

mod common;

use common::*;
use moldau_storage::{AppendOrigin, CleanupPolicy, LogConfig, StorageError, TimestampType};

const NOW: i64 = 1_700_000_000_000;

fn harness() -> Harness {
    Harness::new(LogConfig::default())
}

fn three_records(ts: i64) -> Vec<Rec> {
    vec![
        Rec::kv("a", "1", ts),
        Rec::kv("b", "2", ts + 1),
        Rec::kv("c", "3", ts + 2),
    ]
}

/// Appends `bad` after one good batch and checks the log did not move.
fn assert_rejected(h: &Harness, bad: &mut [u8], what: &str) -> StorageError {
    let before_end = h.log().log_end_offset();
    let before_size = h.log().size_bytes();
    let err = h
        .log()
        .append_as_leader(bad, 0, AppendOrigin::Client, NOW)
        .expect_err(&format!("{what} must be rejected"));
    assert_eq!(
        h.log().log_end_offset(),
        before_end,
        "{what}: log end offset unchanged"
    );
    assert_eq!(h.log().size_bytes(), before_size, "{what}: nothing written");
    err
}

fn with_good_batch() -> Harness {
    let h = harness();
    append(
        h.log(),
        &mut batch(&three_records(NOW), Compression::None),
        NOW,
    )
    .unwrap();
    h
}

#[test]
fn append_assigns_offsets_and_reports_them() {
    let h = harness();
    let mut b1 = batch(&three_records(NOW - 10), Compression::None);
    let info = append(h.log(), &mut b1, NOW).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 2));
    assert_eq!(info.record_count, 3);
    assert_eq!(info.valid_bytes, b1.len());
    assert_eq!(info.log_start_offset, 0);
    assert_eq!(info.log_append_time_ms, -1);
    assert_eq!(info.max_timestamp, NOW - 8);
    assert!(!info.duplicate);

    let mut b2 = batch(&three_records(NOW), Compression::Lz4);
    // Whatever base offset the client put there is replaced.
    b2[0..8].copy_from_slice(&777i64.to_be_bytes());
    let info = h
        .log()
        .append_as_leader(&mut b2, 7, AppendOrigin::Client, NOW)
        .unwrap();
    assert_eq!((info.first_offset, info.last_offset), (3, 5));
    assert_eq!(h.log().log_end_offset(), 6);

    // Stored bytes are the request's bytes with base offset and leader epoch patched in place.
    h.log().update_high_watermark(6);
    let stored = read_all_batches(h.log());
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0], b1);
    assert_eq!(stored[1], b2);
    let hdr = BatchHeader::parse(&stored[1]);
    assert_eq!(hdr.base_offset, 3);
    assert_eq!(hdr.partition_leader_epoch, 7);
    assert!(crc_valid(&stored[1]));
    let recs = read_all_records(h.log());
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    assert_eq!(recs[4].key.as_deref(), Some(&b"b"[..]));
}

#[test]
fn multiple_batches_in_one_request_are_appended_together() {
    let h = harness();
    let mut req = batch(&three_records(NOW), Compression::None);
    req.extend(batch(&[Rec::kv("d", "4", NOW)], Compression::Gzip));
    let info = append(h.log(), &mut req, NOW).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.record_count),
        (0, 3, 4)
    );
    let batches = split_batches(&req);
    assert_eq!(BatchHeader::parse(batches[1]).base_offset, 3);
}

#[test]
fn bad_crc_is_corrupt_message() {
    let h = with_good_batch();
    let mut b = batch(&three_records(NOW), Compression::None);
    let last = b.len() - 1;
    b[last] ^= 0x40;
    let err = assert_rejected(&h, &mut b, "flipped value byte");
    assert!(matches!(err, StorageError::CorruptMessage(_)), "{err:?}");

    let mut b = batch(&three_records(NOW), Compression::Zstd);
    b[CRC_OFFSET] ^= 1;
    let err = assert_rejected(&h, &mut b, "flipped crc byte");
    assert!(matches!(err, StorageError::CorruptMessage(_)), "{err:?}");
}

#[test]
fn wrong_magic_is_corrupt_message() {
    let h = with_good_batch();
    for magic in [0u8, 1, 3] {
        let mut b = batch(&three_records(NOW), Compression::None);
        b[MAGIC_OFFSET] = magic;
        let err = assert_rejected(&h, &mut b, &format!("magic {magic}"));
        assert!(
            matches!(err, StorageError::CorruptMessage(_)),
            "magic {magic}: {err:?}"
        );
    }
}

#[test]
fn truncated_batch_is_corrupt_message() {
    let h = with_good_batch();
    let full = batch(&three_records(NOW), Compression::None);
    for cut in [1, 11, 12, HEADER_LEN - 1, HEADER_LEN, full.len() - 1] {
        let mut b = full[..cut].to_vec();
        let err = assert_rejected(&h, &mut b, &format!("batch cut at {cut}"));
        assert!(
            matches!(err, StorageError::CorruptMessage(_)),
            "cut at {cut}: {err:?}"
        );
    }
    // A good batch followed by a torn one: the whole request is rejected.
    let mut req = full.clone();
    req.extend_from_slice(&full[..30]);
    let err = assert_rejected(&h, &mut req, "good batch + torn batch");
    assert!(matches!(err, StorageError::CorruptMessage(_)), "{err:?}");
    // Declared length longer than the bytes.
    let mut b = full.clone();
    let len = i32::from_be_bytes(b[8..12].try_into().unwrap()) + 5;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let err = assert_rejected(&h, &mut b, "length beyond the bytes");
    assert!(matches!(err, StorageError::CorruptMessage(_)), "{err:?}");
    // Declared length shorter than a header.
    let mut b = full.clone();
    b[8..12].copy_from_slice(&10i32.to_be_bytes());
    let err = assert_rejected(&h, &mut b, "length shorter than a header");
    assert!(matches!(err, StorageError::CorruptMessage(_)), "{err:?}");
}

#[test]
fn empty_request_is_rejected() {
    let h = with_good_batch();
    let err = assert_rejected(&h, &mut [], "empty record set");
    assert!(
        matches!(
            err,
            StorageError::CorruptMessage(_) | StorageError::InvalidRecord(_)
        ),
        "{err:?}"
    );
}

#[test]
fn inconsistent_record_count_is_rejected() {
    let h = with_good_batch();
    // count != last offset delta + 1, or a header consistent with itself that lies about
    // the three records it holds (CRC recomputed so only the inconsistency is wrong).
    let cases = [
        (2i32, 2i32),
        (4, 2),
        (3, 3),
        (0, -1),
        (-1, 2),
        (5, 4),
        (2, 1),
        (1, 0),
    ];
    for ((count, delta), codec) in cases.into_iter().zip(ALL_CODECS.into_iter().cycle()) {
        let mut b = batch(&three_records(NOW), codec);
        b[RECORD_COUNT_OFFSET..RECORD_COUNT_OFFSET + 4].copy_from_slice(&count.to_be_bytes());
        b[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4]
            .copy_from_slice(&delta.to_be_bytes());
        fix_crc(&mut b);
        let err = assert_rejected(
            &h,
            &mut b,
            &format!("count {count}, last offset delta {delta}"),
        );
        // Kafka's LogValidator raises InvalidRecordException (INVALID_RECORD); a header
        // check may report it as CORRUPT_MESSAGE. Both keep the log untouched.
        assert!(
            matches!(
                err,
                StorageError::InvalidRecord(_) | StorageError::CorruptMessage(_)
            ),
            "count {count}, delta {delta}, {codec:?}: {err:?}"
        );
    }
}

#[test]
fn batch_larger_than_max_message_bytes_is_message_too_large() {
    let config = LogConfig {
        max_message_bytes: 1000,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    let mut small = sized_batch(5, 20, Compression::None, NOW);
    append(h.log(), &mut small, NOW).unwrap();
    let mut big = sized_batch(20, 100, Compression::None, NOW);
    assert!(big.len() > 1000);
    let size = big.len();
    let err = assert_rejected(&h, &mut big, "2 KB batch with max.message.bytes 1000");
    match err {
        StorageError::MessageTooLarge { size: s, max } => {
            assert_eq!(max, 1000);
            assert!(
                s == size || s == size - LOG_OVERHEAD,
                "reported size {s} for a {size}-byte batch"
            );
        }
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
    // The limit applies to the (compressed) batch, not the records inside.
    let mut compressed = sized_batch(20, 100, Compression::Gzip, NOW);
    assert!(compressed.len() < 1000);
    append(h.log(), &mut compressed, NOW).expect("compressed batch under the limit");
}

#[test]
fn timestamps_outside_before_and_after_max_ms_are_invalid() {
    let config = LogConfig {
        message_timestamp_before_max_ms: 60_000,
        message_timestamp_after_max_ms: 1_000,
        ..LogConfig::default()
    };
    let h = Harness::new(config.clone());
    for codec in [Compression::None, Compression::Zstd] {
        let mut old = batch(&three_records(NOW - 60_001 - 2), codec);
        let err = assert_rejected(&h, &mut old, "too old");
        assert_eq!(rejected_indexes(&err, 32), [0, 1, 2], "{err:?}");
        let mut future = batch(&three_records(NOW + 1_001), codec);
        let err = assert_rejected(&h, &mut future, "too far ahead");
        assert_eq!(rejected_indexes(&err, 32), [0, 1, 2], "{err:?}");
        // One bad record among good ones spoils the batch, and is named (KIP-467).
        let mut mixed = batch(
            &[Rec::kv("a", "1", NOW), Rec::kv("b", "2", NOW - 3_600_000)],
            codec,
        );
        let err = assert_rejected(&h, &mut mixed, "one old record");
        assert_eq!(rejected_indexes(&err, 32), [1], "{err:?}");
        // Edges are inclusive.
        let mut edge = batch(
            &[
                Rec::kv("a", "1", NOW - 60_000),
                Rec::kv("b", "2", NOW + 1_000),
            ],
            codec,
        );
        append(h.log(), &mut edge, NOW).expect("timestamps exactly at the limits");
    }
    // LogAppendTime ignores the producer's timestamps.
    let mut lat = config;
    lat.message_timestamp_type = TimestampType::LogAppendTime;
    let h = Harness::new(lat);
    let mut old = batch(&three_records(0), Compression::None);
    append(h.log(), &mut old, NOW).expect("LogAppendTime overrides old timestamps");
}

#[test]
fn log_append_time_is_patched_into_the_batch() {
    let config = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    for (i, codec) in ALL_CODECS.into_iter().enumerate() {
        let now = NOW + 1000 * i as i64;
        let mut b = batch(&three_records(NOW - 50_000), codec);
        let info = append(h.log(), &mut b, now).unwrap();
        assert_eq!(info.log_append_time_ms, now, "{codec:?}");
        assert_eq!(info.max_timestamp, now, "{codec:?}");
        let hdr = BatchHeader::parse(&b);
        assert!(
            hdr.is_log_append_time(),
            "{codec:?}: timestamp type bit set in place"
        );
        assert_eq!(hdr.max_timestamp, now, "{codec:?}");
        assert!(crc_valid(&b), "{codec:?}: CRC recomputed after patching");
    }
    let stored = read_all_batches(h.log());
    assert_eq!(stored.len(), ALL_CODECS.len());
    for (i, b) in stored.iter().enumerate() {
        let (hdr, recs) = decode_batch(b);
        assert!(crc_valid(b));
        assert!(hdr.is_log_append_time());
        assert_eq!(hdr.codec(), ALL_CODECS[i] as u8, "codec kept");
        assert!(recs.iter().all(|r| r.timestamp == NOW + 1000 * i as i64));
    }
    // ListOffsets sees the append time.
    let found = h
        .log()
        .fetch_offset_by_timestamp(NOW + 1500)
        .unwrap()
        .expect("found");
    assert_eq!((found.offset, found.timestamp), (6, NOW + 2000));
}

fn idem(epoch: i16, seq: i32) -> Option<Producer> {
    Some(Producer {
        id: 4242,
        epoch,
        base_sequence: seq,
    })
}

#[test]
fn idempotent_duplicates_return_the_original_offsets() {
    let h = harness();
    let mut originals = Vec::new();
    for i in 0..5 {
        let mut b = batch_with(&three_records(NOW), Compression::Snappy, idem(0, 3 * i));
        let info = append(h.log(), &mut b, NOW).unwrap();
        assert!(!info.duplicate);
        assert_eq!(info.first_offset, 3 * i as i64);
        originals.push((info.first_offset, info.last_offset));
    }
    assert!(
        h.log().producer_state(4242).is_some(),
        "producer state kept"
    );
    let end = h.log().log_end_offset();
    // Retry of the last batch and of an older one still in the 5-batch window.
    for i in [4, 2, 0] {
        let mut retry = batch_with(&three_records(NOW), Compression::Snappy, idem(0, 3 * i));
        let info = append(h.log(), &mut retry, NOW).unwrap();
        assert!(info.duplicate, "batch {i} is a duplicate");
        assert_eq!((info.first_offset, info.last_offset), originals[i as usize]);
        assert_eq!(h.log().log_end_offset(), end, "duplicate appends nothing");
    }
    // The producer continues where it left off.
    let mut next = batch_with(&three_records(NOW), Compression::Snappy, idem(0, 15));
    assert_eq!(append(h.log(), &mut next, NOW).unwrap().first_offset, end);
    // Producer state survives a clean restart and an unclean one.
    let mut h = h;
    h.reopen_clean();
    let mut retry = batch_with(&three_records(NOW), Compression::Snappy, idem(0, 15));
    let info = append(h.log(), &mut retry, NOW).unwrap();
    assert!(info.duplicate, "duplicate detected after clean restart");
    assert_eq!(info.first_offset, end);
    h.reopen_unclean();
    let mut retry = batch_with(&three_records(NOW), Compression::Snappy, idem(0, 15));
    let info = append(h.log(), &mut retry, NOW).unwrap();
    assert!(info.duplicate, "duplicate detected after unclean restart");
    assert_eq!(info.first_offset, end);
}

#[test]
fn out_of_order_sequence_is_rejected() {
    let h = harness();
    append(
        h.log(),
        &mut batch_with(&three_records(NOW), Compression::None, idem(0, 0)),
        NOW,
    )
    .unwrap();
    // Gap: expected 3.
    let mut gap = batch_with(&three_records(NOW), Compression::None, idem(0, 10));
    let err = assert_rejected(&h, &mut gap, "sequence gap");
    assert!(
        matches!(err, StorageError::OutOfOrderSequence(_)),
        "{err:?}"
    );
    // A new epoch must start at sequence 0.
    let mut bumped = batch_with(&three_records(NOW), Compression::None, idem(1, 3));
    let err = assert_rejected(&h, &mut bumped, "new epoch not starting at 0");
    assert!(
        matches!(err, StorageError::OutOfOrderSequence(_)),
        "{err:?}"
    );
    // In order is fine; a new epoch from 0 is fine.
    append(
        h.log(),
        &mut batch_with(&three_records(NOW), Compression::None, idem(0, 3)),
        NOW,
    )
    .unwrap();
    append(
        h.log(),
        &mut batch_with(&three_records(NOW), Compression::None, idem(1, 0)),
        NOW,
    )
    .unwrap();
    let state = h.log().producer_state(4242);
    assert!(state.is_some());
}

#[test]
fn fenced_producer_epoch_is_rejected() {
    let h = harness();
    append(
        h.log(),
        &mut batch_with(&three_records(NOW), Compression::None, idem(5, 0)),
        NOW,
    )
    .unwrap();
    let mut old = batch_with(&three_records(NOW), Compression::None, idem(4, 3));
    let err = assert_rejected(&h, &mut old, "older producer epoch");
    assert!(
        matches!(err, StorageError::InvalidProducerEpoch(_)),
        "{err:?}"
    );
}

#[test]
fn rejected_batch_rejects_the_whole_request() {
    let h = with_good_batch();
    let mut req = batch(&three_records(NOW), Compression::None);
    let mut bad = batch(&three_records(NOW), Compression::None);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    req.extend(bad);
    let err = assert_rejected(&h, &mut req, "good batch + corrupt batch");
    assert!(matches!(err, StorageError::CorruptMessage(_)), "{err:?}");
    assert_eq!(read_all_records(h.log()).len(), 3);
}

#[test]
fn compacted_topic_rejects_records_without_key() {
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    let mut keyed = batch(&three_records(NOW), Compression::None);
    append(h.log(), &mut keyed, NOW).unwrap();
    for codec in [Compression::None, Compression::Lz4] {
        let mut b = batch(
            &[
                Rec::kv("a", "1", NOW),
                Rec::unkeyed(b"x", NOW),
                Rec::kv("c", "3", NOW),
                Rec::unkeyed(b"y", NOW),
            ],
            codec,
        );
        let err = assert_rejected(&h, &mut b, "null key on compacted topic");
        assert_eq!(rejected_indexes(&err, 87), [1, 3], "{codec:?}: {err:?}");
    }
    // The list is bounded; the message still counts every rejected record.
    let unkeyed: Vec<Rec> = (0..1500).map(|_| Rec::unkeyed(b"x", NOW)).collect();
    let mut b = batch(&unkeyed, Compression::None);
    let err = assert_rejected(&h, &mut b, "many null keys");
    assert_eq!(rejected_indexes(&err, 87), (0..1000).collect::<Vec<_>>());
    assert!(err.to_string().starts_with("1500 record"), "{err}");
}

/// The batch indexes of a KIP-467 record error, checking its Kafka error code.
fn rejected_indexes(err: &StorageError, code: i16) -> Vec<i32> {
    assert_eq!(err.kafka_error_code(), code, "{err:?}");
    match err {
        StorageError::RecordErrors { records, .. } => {
            records.iter().map(|r| r.batch_index).collect()
        }
        other => panic!("expected record errors, got {other:?}"),
    }
}

#[test]
fn control_batches_from_clients_are_rejected() {
    let h = with_good_batch();
    let mut b = batch(&three_records(NOW), Compression::None);
    let attrs = i16::from_be_bytes(
        b[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
            .try_into()
            .unwrap(),
    ) | (1 << 5);
    b[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    fix_crc(&mut b);
    let err = assert_rejected(&h, &mut b, "control batch from a client");
    assert!(matches!(err, StorageError::InvalidRecord(_)), "{err:?}");
}

#[test]
fn follower_append_keeps_offsets_and_checks_them() {
    let leader = harness();
    let mut req = batch(&three_records(NOW), Compression::None);
    append(leader.log(), &mut req, NOW).unwrap();
    let mut req2 = batch(&three_records(NOW), Compression::Gzip);
    append(leader.log(), &mut req2, NOW).unwrap();
    let mut fetched: Vec<u8> = read_all_batches(leader.log()).concat();

    let follower = harness();
    let info = follower.log().append_as_follower(&mut fetched).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 5));
    assert_eq!(follower.log().log_end_offset(), 6);
    follower.log().update_high_watermark(6);
    assert_eq!(read_all_batches(follower.log()).concat(), fetched);

    // Replaying offsets below the log end is refused.
    let mut again = read_all_batches(leader.log())[1].clone();
    assert!(
        follower.log().append_as_follower(&mut again).is_err(),
        "non-monotonic offsets"
    );
    assert_eq!(follower.log().log_end_offset(), 6);
    // Corrupt bytes are refused.
    let mut corrupt = batch(&three_records(NOW), Compression::None);
    corrupt[0..8].copy_from_slice(&6i64.to_be_bytes());
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let err = follower.log().append_as_follower(&mut corrupt).unwrap_err();
    assert!(matches!(err, StorageError::CorruptMessage(_)), "{err:?}");
    assert_eq!(follower.log().log_end_offset(), 6);
}

#[test]
fn topic_compression_type_recompresses_batches() {
    use moldau_storage::CompressionType;
    for (topic, producer, stored) in [
        (CompressionType::Zstd, Compression::Gzip, Compression::Zstd),
        (
            CompressionType::Uncompressed,
            Compression::Lz4,
            Compression::None,
        ),
        (CompressionType::Gzip, Compression::None, Compression::Gzip),
        (
            CompressionType::Producer,
            Compression::Snappy,
            Compression::Snappy,
        ),
        (
            CompressionType::Snappy,
            Compression::Snappy,
            Compression::Snappy,
        ),
    ] {
        let h = Harness::new(LogConfig {
            compression_type: topic,
            ..LogConfig::default()
        });
        append(
            h.log(),
            &mut batch(&three_records(NOW), Compression::None),
            NOW,
        )
        .unwrap();
        let recs = vec![
            Rec::kv("x", &"y".repeat(300), NOW),
            Rec::tombstone("z", NOW + 1),
        ];
        let info = append(h.log(), &mut batch(&recs, producer), NOW).unwrap();
        assert_eq!((info.first_offset, info.last_offset), (3, 4), "{topic:?}");
        let stored_batches = read_all_batches(h.log());
        let (hdr, got) = decode_batch(&stored_batches[1]);
        assert_eq!(
            hdr.codec(),
            stored as u8,
            "{topic:?} with a {producer:?} batch"
        );
        assert!(crc_valid(&stored_batches[1]));
        assert_eq!(hdr.base_offset, 3);
        let got: Vec<Rec> = got
            .into_iter()
            .map(|r| Rec {
                key: r.key,
                value: r.value,
                timestamp: r.timestamp,
            })
            .collect();
        assert_eq!(got, recs, "{topic:?}");
        assert_eq!(
            read_all_records(h.log())
                .iter()
                .map(|r| r.offset)
                .collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
    }
}

#[test]
fn duplicates_are_found_across_a_segment_roll() {
    let h = Harness::new(LogConfig {
        segment_bytes: 200,
        ..LogConfig::default()
    });
    let producer = |seq| {
        Some(Producer {
            id: 5,
            epoch: 0,
            base_sequence: seq,
        })
    };
    let mut firsts = Vec::new();
    for i in 0..5 {
        let mut b = batch_with(&three_records(NOW), Compression::None, producer(3 * i));
        firsts.push(append(h.log(), &mut b, NOW).unwrap().first_offset);
    }
    assert!(
        segment_files(&h.partition_dir(), "log").len() >= 2,
        "rolled"
    );
    for i in 0..5 {
        let mut retry = batch_with(&three_records(NOW), Compression::None, producer(3 * i));
        let info = append(h.log(), &mut retry, NOW).unwrap();
        assert!(info.duplicate, "batch {i}");
        assert_eq!(info.first_offset, firsts[i as usize]);
    }
    assert_eq!(h.log().log_end_offset(), 15);
}

#[test]
fn reads_clamp_max_offset_to_the_log() {
    let h = with_good_batch();
    append(
        h.log(),
        &mut batch(&three_records(NOW), Compression::None),
        NOW,
    )
    .unwrap();
    let all = h.log().read(0, 1 << 20, i64::MAX, false).unwrap();
    assert_eq!(
        split_batches(&all.read_to_bytes().unwrap()).len(),
        2,
        "max_offset past the end"
    );
    assert!(
        h.log().read(4, 1 << 20, 2, true).unwrap().is_empty(),
        "max_offset below start"
    );
    assert!(
        h.log().read(0, 0, 6, false).unwrap().is_empty(),
        "zero bytes without min_one"
    );
}
