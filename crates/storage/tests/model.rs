//! Property test: random appends, reads, rolls (tiny segments), retention, DeleteRecords,
//! compaction and clean/unclean restarts against a simple in-memory model of the log.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use moldau_storage::{CleanupPolicy, LogConfig, StorageError, TimestampType};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

const START_MS: i64 = 1_700_000_000_000;

/// A record the model expects in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelRec {
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
    /// `now_ms` of the append (tombstone horizon).
    appended_ms: i64,
}

impl ModelRec {
    fn matches(&self, r: &StoredRecord) -> bool {
        self.offset == r.offset
            && self.key == r.key
            && self.value == r.value
            && self.timestamp == r.timestamp
    }
}

#[derive(Clone, Debug)]
struct GenRec {
    key: u8,
    /// None: tombstone (compacted topics) or null value.
    value_len: Option<u16>,
    ts_back_ms: u16,
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        records: Vec<GenRec>,
        codec: usize,
    },
    Read {
        start_pick: u16,
        max_bytes: u16,
        below_end: u8,
        min_one: bool,
    },
    ListOffsets {
        pick: u16,
        delta: i8,
    },
    Advance {
        ms: u16,
    },
    Retention,
    DeleteRecords {
        pick: u16,
    },
    Clean,
    Checkpoint,
    ReopenClean,
    ReopenUnclean,
}

#[derive(Clone, Debug)]
struct Setup {
    policy: CleanupPolicy,
    segment_bytes: i32,
    index_interval_bytes: i32,
    retention_bytes: i64,
    retention_ms: i64,
    delete_retention_ms: i64,
    log_append_time: bool,
    unkeyed: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop_oneof![
            Just(CleanupPolicy::Delete),
            Just(CleanupPolicy::Compact),
            Just(CleanupPolicy::CompactDelete)
        ],
        800..2000i32,
        prop_oneof![Just(1), Just(200), Just(4096)],
        prop_oneof![Just(-1i64), 1000..4000i64],
        prop_oneof![Just(-1i64), 1000..10000i64],
        prop_oneof![Just(0i64), Just(5000), Just(86_400_000)],
        prop::bool::weighted(0.2),
        any::<bool>(),
    )
        .prop_map(
            |(
                policy,
                segment_bytes,
                index_interval_bytes,
                retention_bytes,
                retention_ms,
                delete_retention_ms,
                lat,
                unkeyed,
            )| Setup {
                policy,
                segment_bytes,
                index_interval_bytes,
                retention_bytes,
                retention_ms,
                delete_retention_ms,
                log_append_time: lat,
                unkeyed: unkeyed && policy == CleanupPolicy::Delete,
            },
        )
}

fn gen_rec() -> impl Strategy<Value = GenRec> {
    (0..8u8, prop::option::weighted(0.85, 0..50u16), 0..500u16).prop_map(
        |(key, value_len, ts_back_ms)| GenRec {
            key,
            value_len,
            ts_back_ms,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        14 => (prop::collection::vec(gen_rec(), 1..10), 0..5usize)
            .prop_map(|(records, codec)| Op::Append { records, codec }),
        4 => (any::<u16>(), 1..6000u16, 0..4u8, any::<bool>())
            .prop_map(|(start_pick, max_bytes, below_end, min_one)| Op::Read { start_pick, max_bytes, below_end, min_one }),
        2 => (any::<u16>(), any::<i8>()).prop_map(|(pick, delta)| Op::ListOffsets { pick, delta }),
        3 => (0..6000u16).prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::Retention),
        1 => any::<u16>().prop_map(|pick| Op::DeleteRecords { pick }),
        3 => Just(Op::Clean),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::ReopenClean),
        1 => Just(Op::ReopenUnclean),
    ]
}

struct Model {
    /// Every record ever appended, by offset.
    history: BTreeMap<i64, ModelRec>,
    /// Records the log must serve: offset >= log start offset, minus compacted ones.
    live: Vec<ModelRec>,
    log_start: i64,
    log_end: i64,
}

/// One segment as found on disk.
#[derive(Debug)]
struct Segment {
    base: i64,
    size: u64,
    max_timestamp: i64,
}

fn segments_on_disk(h: &Harness) -> Vec<Segment> {
    segment_files(&h.partition_dir(), "log")
        .into_iter()
        .map(|(base, path)| {
            let bytes = std::fs::read(&path).unwrap();
            let max_timestamp = split_batches(&bytes)
                .iter()
                .map(|b| BatchHeader::parse(b).max_timestamp)
                .max()
                .unwrap_or(-1);
            Segment {
                base,
                size: bytes.len() as u64,
                max_timestamp,
            }
        })
        .collect()
}

fn config_of(s: &Setup) -> LogConfig {
    LogConfig {
        cleanup_policy: s.policy,
        segment_bytes: s.segment_bytes,
        index_interval_bytes: s.index_interval_bytes,
        retention_bytes: s.retention_bytes,
        retention_ms: s.retention_ms,
        delete_retention_ms: s.delete_retention_ms,
        min_cleanable_dirty_ratio: 0.0,
        min_compaction_lag_ms: 0,
        file_delete_delay_ms: 0,
        message_timestamp_type: if s.log_append_time {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        ..LogConfig::default()
    }
}

fn check_log(h: &Harness, m: &Model, ctx: &str) {
    let log = h.log();
    assert_eq!(
        log.log_start_offset(),
        m.log_start,
        "{ctx}: log start offset"
    );
    assert_eq!(log.log_end_offset(), m.log_end, "{ctx}: log end offset");
    let got = read_all_records(log);
    let got_offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    let want_offsets: Vec<i64> = m.live.iter().map(|r| r.offset).collect();
    assert_eq!(got_offsets, want_offsets, "{ctx}: live offsets");
    for (g, w) in got.iter().zip(&m.live) {
        assert!(
            w.matches(g),
            "{ctx}: record {} is {g:?}, model {w:?}",
            w.offset
        );
    }
}

/// Adopts what the log serves after an operation whose exact outcome the model leaves open,
/// after checking each served record is one that was appended at that offset.
fn adopt(h: &Harness, m: &mut Model, ctx: &str) {
    let got = read_all_records(h.log());
    m.live = got
        .iter()
        .map(|r| {
            let rec = m
                .history
                .get(&r.offset)
                .unwrap_or_else(|| panic!("{ctx}: offset {} never appended", r.offset));
            assert!(
                rec.matches(r),
                "{ctx}: offset {} served {r:?}, appended {rec:?}",
                r.offset
            );
            rec.clone()
        })
        .collect();
    m.log_start = h.log().log_start_offset();
    m.log_end = h.log().log_end_offset();
}

fn run(setup: Setup, ops: Vec<Op>) {
    let config = config_of(&setup);
    let mut h = Harness::new(config.clone());
    let mut m = Model {
        history: BTreeMap::new(),
        live: Vec::new(),
        log_start: 0,
        log_end: 0,
    };
    let mut now = START_MS;
    for (step, op) in ops.into_iter().enumerate() {
        let ctx = format!("step {step} {op:?}");
        match op {
            Op::Append { records, codec } => {
                let recs: Vec<Rec> = records
                    .iter()
                    .map(|g| Rec {
                        key: if setup.unkeyed && g.key % 3 == 0 {
                            None
                        } else {
                            Some(vec![b'k', g.key])
                        },
                        value: g.value_len.map(|n| {
                            noise(
                                &mut XorShift::new(step as u64 * 64 + g.key as u64),
                                n as usize,
                            )
                        }),
                        timestamp: now - g.ts_back_ms as i64,
                    })
                    .collect();
                let mut b = batch(&recs, ALL_CODECS[codec]);
                let info = append(h.log(), &mut b, now).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(info.first_offset, m.log_end, "{ctx}");
                assert_eq!(info.last_offset, m.log_end + recs.len() as i64 - 1, "{ctx}");
                for (i, r) in recs.into_iter().enumerate() {
                    let rec = ModelRec {
                        offset: m.log_end + i as i64,
                        key: r.key,
                        value: r.value,
                        timestamp: if setup.log_append_time {
                            now
                        } else {
                            r.timestamp
                        },
                        appended_ms: now,
                    };
                    m.history.insert(rec.offset, rec.clone());
                    m.live.push(rec);
                }
                m.log_end = info.last_offset + 1;
            }
            Op::Read {
                start_pick,
                max_bytes,
                below_end,
                min_one,
            } => {
                check_read(
                    &h,
                    &m,
                    start_pick,
                    max_bytes as u32,
                    below_end as i64,
                    min_one,
                    &ctx,
                );
            }
            Op::ListOffsets { pick, delta } => check_list_offsets(&h, &m, pick, delta, &ctx),
            Op::Advance { ms } => now += ms as i64,
            Op::Retention => {
                let allowed = expected_start_after_retention(&h, &m, &config, now);
                let segments_before = segments_on_disk(&h);
                h.manager()
                    .run_retention_once(now)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let start = h.log().log_start_offset();
                assert!(
                    allowed.contains(&start),
                    "{ctx}: log start {start}, expected one of {allowed:?}; now {now}, log end {}, \
                     segments before {segments_before:?}, after {:?}",
                    m.log_end,
                    segments_on_disk(&h)
                );
                m.log_start = start;
                m.live.retain(|r| r.offset >= start);
                for seg in segments_on_disk(&h).iter().take(1) {
                    assert!(
                        seg.base <= start.max(m.log_end),
                        "{ctx}: first segment {seg:?}"
                    );
                }
                let next_bases: Vec<i64> = segments_on_disk(&h)
                    .iter()
                    .skip(1)
                    .map(|s| s.base)
                    .collect();
                assert!(
                    next_bases.iter().all(|&b| b > start || start == m.log_end),
                    "{ctx}: stale segments {next_bases:?}"
                );
            }
            Op::DeleteRecords { pick } => {
                let span = m.log_end - m.log_start + 3;
                let target = m.log_start + pick as i64 % span;
                match h.log().delete_records_before(target) {
                    Ok(start) => {
                        assert!(
                            target <= m.log_end,
                            "{ctx}: beyond the high watermark must fail"
                        );
                        assert_eq!(start, target.max(m.log_start), "{ctx}");
                        m.log_start = start;
                        m.live.retain(|r| r.offset >= start);
                    }
                    Err(StorageError::OffsetOutOfRange { .. }) => {
                        assert!(target > m.log_end, "{ctx}: refused a valid DeleteRecords")
                    }
                    Err(e) => panic!("{ctx}: {e}"),
                }
            }
            Op::Clean => {
                let expected = expected_after_cleaning(&h, &m, &config, now);
                h.manager()
                    .run_cleaner_once(now)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let got = read_all_records(h.log());
                assert_eq!(h.log().log_end_offset(), m.log_end, "{ctx}");
                let mut want = expected.into_iter().peekable();
                for g in &got {
                    // Skip tombstones the cleaner was allowed to drop.
                    while let Some((w, optional)) = want.peek() {
                        if w.offset < g.offset && *optional {
                            want.next();
                        } else {
                            break;
                        }
                    }
                    let (w, _) = want
                        .next()
                        .unwrap_or_else(|| panic!("{ctx}: unexpected {g:?}"));
                    assert!(w.matches(g), "{ctx}: served {g:?}, expected {w:?}");
                }
                let missing: Vec<_> = want.filter(|(_, optional)| !optional).collect();
                assert!(missing.is_empty(), "{ctx}: cleaner lost {missing:?}");
                adopt(&h, &mut m, &ctx);
            }
            Op::Checkpoint => h
                .manager()
                .checkpoint()
                .unwrap_or_else(|e| panic!("{ctx}: {e}")),
            Op::ReopenClean => {
                h.reopen_clean();
                h.log().update_high_watermark(h.log().log_end_offset());
            }
            Op::ReopenUnclean => {
                let old_start = m.log_start;
                let first_base = segments_on_disk(&h).first().map(|s| s.base).unwrap_or(0);
                h.reopen_unclean();
                h.log().update_high_watermark(h.log().log_end_offset());
                // The log start offset checkpoint may lag (Kafka writes it periodically).
                let start = h.log().log_start_offset();
                assert!(
                    start <= old_start && start >= first_base.min(old_start),
                    "{ctx}: log start {start}"
                );
                let kept: Vec<ModelRec> = m.live.clone();
                adopt(&h, &mut m, &ctx);
                let tail: Vec<&ModelRec> =
                    m.live.iter().filter(|r| r.offset >= old_start).collect();
                assert_eq!(
                    tail,
                    kept.iter().collect::<Vec<_>>(),
                    "{ctx}: unclean restart changed the log"
                );
            }
        }
        check_log(&h, &m, &ctx);
    }
}

fn check_read(
    h: &Harness,
    m: &Model,
    pick: u16,
    max_bytes: u32,
    below_end: i64,
    min_one: bool,
    ctx: &str,
) {
    let log = h.log();
    let start = m.log_start + pick as i64 % (m.log_end - m.log_start + 1);
    let max_offset = (m.log_end - below_end).max(start);
    let data = log
        .read(start, max_bytes, max_offset, min_one)
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let bytes = data.read_to_bytes().unwrap();
    assert_eq!(bytes.len() as u32, data.total_bytes, "{ctx}");
    let got = split_batches(&bytes);
    // The batches the log could serve, in order.
    let all = read_all_batches(log);
    let eligible: Vec<&Vec<u8>> = all
        .iter()
        .skip_while(|b| BatchHeader::parse(b).last_offset() < start)
        .take_while(|b| BatchHeader::parse(b).last_offset() < max_offset)
        .collect();
    for (i, g) in got.iter().enumerate() {
        assert!(
            i < eligible.len() && *g == eligible[i].as_slice(),
            "{ctx}: batch {i} of the read is not the log's"
        );
    }
    if got.len() > 1 || !min_one {
        assert!(
            data.total_bytes <= max_bytes,
            "{ctx}: {} bytes over max {max_bytes}",
            data.total_bytes
        );
    }
    if let Some(first) = eligible.first() {
        if min_one || first.len() as u32 <= max_bytes {
            assert!(
                !got.is_empty(),
                "{ctx}: nothing read though a batch was eligible"
            );
        }
    } else {
        assert!(got.is_empty(), "{ctx}");
    }
    // Records at or after `start` decode to the model's.
    let want: Vec<&ModelRec> = m.live.iter().filter(|r| r.offset >= start).collect();
    let served: Vec<StoredRecord> = got
        .iter()
        .flat_map(|b| decode_batch(b).1)
        .filter(|r| r.offset >= start)
        .collect();
    for (g, w) in served.iter().zip(want) {
        assert!(w.matches(g), "{ctx}: read {g:?}, model {w:?}");
    }
}

fn check_list_offsets(h: &Harness, m: &Model, pick: u16, delta: i8, ctx: &str) {
    let log = h.log();
    let target = if m.live.is_empty() {
        START_MS + delta as i64
    } else {
        m.live[pick as usize % m.live.len()].timestamp + delta as i64
    };
    let want = m.live.iter().find(|r| r.timestamp >= target);
    let got = log
        .fetch_offset_by_timestamp(target)
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    match (want, got) {
        (None, None) => {}
        (Some(w), Some(g)) => assert_eq!(
            (g.offset, g.timestamp),
            (w.offset, w.timestamp),
            "{ctx}: target {target}"
        ),
        (w, g) => panic!("{ctx}: target {target}: expected {w:?}, got {g:?}"),
    }
    let max = log
        .max_timestamp_and_offset()
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let live_max = m.live.iter().map(|r| r.timestamp).max();
    match max {
        Some(g) if g.offset >= m.log_start => {
            let first = m
                .live
                .iter()
                .find(|r| Some(r.timestamp) == live_max)
                .expect("live max");
            assert_eq!(
                (g.offset, g.timestamp),
                (first.offset, first.timestamp),
                "{ctx}: max timestamp"
            );
        }
        // Kafka answers from the segment, which may still hold records below the log start.
        Some(g) => {
            let rec = m
                .history
                .get(&g.offset)
                .expect("max timestamp offset was appended");
            assert_eq!(rec.timestamp, g.timestamp, "{ctx}");
            assert!(live_max.is_none_or(|t| g.timestamp >= t), "{ctx}");
        }
        None => assert!(
            m.live.is_empty(),
            "{ctx}: no max timestamp on a non-empty log"
        ),
    }
}

/// Kafka's retention: delete the longest prefix of segments breached by time, size or the
/// log start offset (never past the high watermark, here the log end). Returns the allowed
/// new log start offsets: (active segment kept, active segment deleted too).
fn expected_start_after_retention(
    h: &Harness,
    m: &Model,
    config: &LogConfig,
    now: i64,
) -> Vec<i64> {
    let segs = segments_on_disk(h);
    let n = segs.len();
    if n == 0 {
        return vec![m.log_start];
    }
    let next_base = |i: usize| {
        if i + 1 < n {
            segs[i + 1].base
        } else {
            m.log_end
        }
    };
    let delete = config.cleanup_policy.is_delete();
    let prefix = |pred: &dyn Fn(usize) -> bool| (0..n).take_while(|&i| pred(i)).count();
    let by_start = prefix(&|i| next_base(i) <= m.log_start);
    let by_size = if delete && config.retention_bytes >= 0 {
        let sizes: Vec<i64> = segs.iter().map(|s| s.size as i64).collect();
        prefix(&|i| sizes[i + 1..].iter().sum::<i64>() >= config.retention_bytes)
    } else {
        0
    };
    let kept_base = |i: usize| segs[i.min(n - 1)].base;
    let mut allowed = Vec::new();
    // A segment emptied by the cleaner has no timestamp: Kafka falls back to the file's
    // mtime (so it blocks time retention in this pass); skipping it is fine too.
    for empty_expired in [false, true] {
        let by_time = if delete && config.retention_ms >= 0 {
            prefix(&|i| {
                if segs[i].size == 0 {
                    empty_expired
                } else {
                    now - segs[i].max_timestamp > config.retention_ms
                }
            })
        } else {
            0
        };
        let cut = by_start.max(by_time).max(by_size);
        allowed.push(m.log_start.max(kept_base(cut)));
        if cut >= n {
            // The active segment expired: Kafka rolls and deletes it too.
            allowed.push(m.log_end);
        }
    }
    allowed
}

/// Records expected after one cleaning pass, each flagged `optional` when the cleaner may
/// drop it (a latest-per-key tombstone older than delete.retention.ms).
fn expected_after_cleaning(
    h: &Harness,
    m: &Model,
    config: &LogConfig,
    now: i64,
) -> Vec<(ModelRec, bool)> {
    if !config.cleanup_policy.is_compact() {
        return m.live.iter().map(|r| (r.clone(), false)).collect();
    }
    let active_base = segments_on_disk(h).last().map(|s| s.base).unwrap_or(0);
    let mut latest: HashMap<&Option<Vec<u8>>, i64> = HashMap::new();
    for r in m.live.iter().filter(|r| r.offset < active_base) {
        latest.insert(&r.key, r.offset);
    }
    m.live
        .iter()
        .filter(|r| r.offset >= active_base || latest[&r.key] == r.offset)
        .map(|r| {
            let droppable_tombstone = r.offset < active_base
                && r.value.is_none()
                && now - r.appended_ms >= config.delete_retention_ms;
            (r.clone(), droppable_tombstone)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases_from_env(32),
        max_shrink_iters: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_model(setup in setup(), ops in prop::collection::vec(op(), 20..100)) {
        run(setup, ops);
    }
}

/// Incompressible-ish value bytes, so compressed batches still fill segments.
fn noise(rng: &mut XorShift, len: usize) -> Vec<u8> {
    (0..len).map(|_| b'a' + (rng.below(26) as u8)).collect()
}

/// `PROPTEST_CASES` overrides the case count for longer local runs.
fn cases_from_env(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
