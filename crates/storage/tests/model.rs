//! Property test: random appends, reads, rolls (tiny segments), retention, DeleteRecords,
//! compaction and clean/unclean restarts against a simple in-memory model of the log.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::*;
use moldau_storage::{AppendOrigin, CleanupPolicy, LogConfig, StorageError, TimestampType};
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
        /// A new leader epoch starts with this batch.
        new_epoch: bool,
    },
    /// Follower truncation to a batch boundary (or the log end).
    Truncate {
        pick: u16,
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
        14 => (prop::collection::vec(gen_rec(), 1..10), 0..5usize, prop::bool::weighted(0.1))
            .prop_map(|(records, codec, new_epoch)| Op::Append { records, codec, new_epoch }),
        1 => any::<u16>().prop_map(|pick| Op::Truncate { pick }),
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
    /// Leader epoch cache: (epoch, start offset), Kafka's LeaderEpochFileCache.
    epochs: Vec<(i32, i64)>,
    epoch: i32,
}

impl Model {
    /// Kafka's truncateFromStart: entries starting at or below the new log start collapse
    /// into the last of them, moved to the log start.
    fn advance_start(&mut self, start: i64) {
        self.log_start = start;
        self.live.retain(|r| r.offset >= start);
        self.advance_epochs_start(start);
    }

    fn advance_epochs_start(&mut self, start: i64) {
        let below = self.epochs.iter().filter(|e| e.1 <= start).count();
        if below > 0 {
            let last = self.epochs[below - 1].0;
            self.epochs.drain(..below);
            self.epochs.insert(0, (last, start));
        }
    }

    /// Kafka's LogSegment.recover: each batch it re-reads assigns its epoch when newer
    /// than the cache's latest.
    fn recovered(&mut self, batch_epochs: &[(i32, i64)]) {
        for &(epoch, base_offset) in batch_epochs {
            if epoch >= 0 && self.epochs.last().is_none_or(|e| epoch > e.0) {
                self.epochs.push((epoch, base_offset));
            }
        }
    }

    /// Kafka's LogLoader truncates the epoch cache to the log end (truncateFromEnd).
    fn loaded(&mut self) {
        let end = self.log_end;
        self.epochs.retain(|e| e.1 < end);
    }

    /// Kafka's LeaderEpochFileCache.endOffsetFor; None for UNDEFINED.
    fn end_offset_for(&self, requested: i32) -> Option<(i32, i64)> {
        let latest = self.epochs.last()?;
        if requested == latest.0 {
            return Some((latest.0, self.log_end));
        }
        let higher = self.epochs.iter().find(|e| e.0 > requested)?;
        let floor = self.epochs.iter().rev().find(|e| e.0 <= requested);
        Some(floor.map_or((requested, higher.1), |f| (f.0, higher.1)))
    }
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

/// The partition's offset in a root checkpoint file (Kafka's text format), if listed.
fn checkpointed_offset(h: &Harness, file: &str) -> Option<i64> {
    let text = std::fs::read_to_string(h.log_dir().join(file)).ok()?;
    let wanted = format!("{} {} ", h.tp.topic, h.tp.partition);
    text.lines()
        .skip(2)
        .find_map(|line| line.strip_prefix(&wanted)?.trim().parse().ok())
}

/// (epoch, base offset) of every batch an unclean open will recover: the segments that
/// reach past the checkpointed recovery point.
fn batches_to_recover(h: &Harness) -> Vec<(i32, i64)> {
    let recovery_point = checkpointed_offset(h, "recovery-point-offset-checkpoint").unwrap_or(0);
    let files = segment_files(&h.partition_dir(), "log");
    let mut out = Vec::new();
    for (i, (_, path)) in files.iter().enumerate() {
        if files
            .get(i + 1)
            .is_some_and(|next| next.0 <= recovery_point)
        {
            continue;
        }
        for b in split_batches(&std::fs::read(path).unwrap()) {
            let header = BatchHeader::parse(b);
            out.push((header.partition_leader_epoch, header.base_offset));
        }
    }
    out
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
    assert_eq!(
        log.latest_epoch(),
        m.epochs.last().map(|e| e.0),
        "{ctx}: latest epoch {:?}",
        m.epochs
    );
    let first_epoch = m.epochs.first().map_or(0, |e| e.0);
    for requested in first_epoch..=m.epoch + 1 {
        let got = log
            .end_offset_for_epoch(requested)
            .map(|e| (e.leader_epoch, e.end_offset))
            .filter(|&e| e != (-1, -1));
        assert_eq!(
            got,
            m.end_offset_for(requested),
            "{ctx}: end offset for epoch {requested} of {:?}",
            m.epochs
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
        epochs: Vec::new(),
        epoch: 0,
    };
    let mut now = START_MS;
    for (step, op) in ops.into_iter().enumerate() {
        let ctx = format!("step {step} {op:?}");
        match op {
            Op::Append {
                records,
                codec,
                new_epoch,
            } => {
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
                if new_epoch {
                    m.epoch += 1 + (step % 2) as i32;
                }
                let info = h
                    .log()
                    .append_as_leader(&mut b, m.epoch, AppendOrigin::Client, now)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                h.log().update_high_watermark(h.log().log_end_offset());
                if m.epochs.last().is_none_or(|e| e.0 < m.epoch) {
                    // A new epoch replaces any entry starting at or after its start.
                    m.epochs.retain(|e| e.1 < info.first_offset);
                    m.epochs.push((m.epoch, info.first_offset));
                }
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
                m.advance_start(start);
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
            Op::Truncate { pick } => {
                // Batch boundaries without a compaction gap before them (truncation into
                // a gap: compaction.rs).
                let headers: Vec<BatchHeader> = read_all_batches(h.log())
                    .iter()
                    .map(|b| BatchHeader::parse(b))
                    .collect();
                let mut targets: Vec<i64> = headers
                    .windows(2)
                    .filter(|w| w[0].last_offset() + 1 == w[1].base_offset)
                    .map(|w| w[1].base_offset)
                    .filter(|&o| o >= m.log_start)
                    .collect();
                targets.push(m.log_end);
                let target = targets[pick as usize % targets.len()];
                h.log()
                    .truncate_to(target)
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                h.log().update_high_watermark(h.log().log_end_offset());
                // Kafka's truncateTo is a no-op at or past the log end.
                if target < m.log_end {
                    m.live.retain(|r| r.offset < target);
                    m.log_end = target;
                    m.epochs.retain(|e| e.1 < target);
                }
                m.epoch = m.epochs.last().map_or(0, |e| e.0).max(m.epoch);
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
                        m.advance_start(start);
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
                m.loaded();
            }
            Op::ReopenUnclean => {
                let old_start = m.log_start;
                let first_base = segments_on_disk(&h).first().map(|s| s.base).unwrap_or(0);
                let recovered = batches_to_recover(&h);
                let start_checkpoint = checkpointed_offset(&h, "log-start-offset-checkpoint");
                h.reopen_unclean();
                h.log().update_high_watermark(h.log().log_end_offset());
                m.recovered(&recovered);
                m.loaded();
                // The earliest epoch may not have been flushed: Kafka truncates the cache to
                // the checkpointed log start (truncateFromStart).
                if let Some(start) = start_checkpoint {
                    m.advance_epochs_start(start);
                }
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

/// Regression for storage bug M1 (/tmp/storage_bugs.md): after an unclean then a clean
/// restart, a closed segment's time index lacks its max timestamp and ListOffsets misses
/// records in it.
#[test]
fn regression_list_offsets_after_restarts() {
    use CleanupPolicy::*;
    use Op::*;
    let setup = Setup {
        policy: Delete,
        segment_bytes: 811,
        index_interval_bytes: 200,
        retention_bytes: -1,
        retention_ms: 1000,
        delete_retention_ms: 0,
        log_append_time: false,
        unkeyed: false,
    };
    let ops = vec![
        Append {
            records: vec![GenRec {
                key: 0,
                value_len: None,
                ts_back_ms: 0,
            }],
            codec: 0,
            new_epoch: false,
        },
        Append {
            records: vec![GenRec {
                key: 0,
                value_len: None,
                ts_back_ms: 0,
            }],
            codec: 0,
            new_epoch: false,
        },
        ListOffsets {
            pick: 15684,
            delta: -111,
        },
        Append {
            records: vec![
                GenRec {
                    key: 2,
                    value_len: Some(18),
                    ts_back_ms: 36,
                },
                GenRec {
                    key: 3,
                    value_len: Some(20),
                    ts_back_ms: 459,
                },
                GenRec {
                    key: 1,
                    value_len: Some(24),
                    ts_back_ms: 164,
                },
                GenRec {
                    key: 7,
                    value_len: Some(25),
                    ts_back_ms: 448,
                },
                GenRec {
                    key: 0,
                    value_len: None,
                    ts_back_ms: 127,
                },
            ],
            codec: 0,
            new_epoch: false,
        },
        Append {
            records: vec![GenRec {
                key: 5,
                value_len: Some(13),
                ts_back_ms: 448,
            }],
            codec: 4,
            new_epoch: false,
        },
        Append {
            records: vec![
                GenRec {
                    key: 1,
                    value_len: Some(43),
                    ts_back_ms: 91,
                },
                GenRec {
                    key: 6,
                    value_len: Some(28),
                    ts_back_ms: 134,
                },
                GenRec {
                    key: 4,
                    value_len: Some(22),
                    ts_back_ms: 330,
                },
            ],
            codec: 3,
            new_epoch: false,
        },
        Clean,
        Append {
            records: vec![
                GenRec {
                    key: 5,
                    value_len: Some(17),
                    ts_back_ms: 451,
                },
                GenRec {
                    key: 5,
                    value_len: Some(9),
                    ts_back_ms: 66,
                },
                GenRec {
                    key: 7,
                    value_len: Some(26),
                    ts_back_ms: 434,
                },
                GenRec {
                    key: 6,
                    value_len: Some(5),
                    ts_back_ms: 473,
                },
                GenRec {
                    key: 5,
                    value_len: Some(48),
                    ts_back_ms: 375,
                },
            ],
            codec: 2,
            new_epoch: false,
        },
        Append {
            records: vec![
                GenRec {
                    key: 5,
                    value_len: Some(47),
                    ts_back_ms: 374,
                },
                GenRec {
                    key: 3,
                    value_len: Some(24),
                    ts_back_ms: 479,
                },
                GenRec {
                    key: 4,
                    value_len: Some(33),
                    ts_back_ms: 183,
                },
            ],
            codec: 1,
            new_epoch: false,
        },
        Clean,
        Advance { ms: 5501 },
        Append {
            records: vec![
                GenRec {
                    key: 6,
                    value_len: Some(10),
                    ts_back_ms: 221,
                },
                GenRec {
                    key: 4,
                    value_len: Some(43),
                    ts_back_ms: 121,
                },
                GenRec {
                    key: 6,
                    value_len: Some(30),
                    ts_back_ms: 334,
                },
            ],
            codec: 3,
            new_epoch: false,
        },
        Append {
            records: vec![
                GenRec {
                    key: 7,
                    value_len: Some(21),
                    ts_back_ms: 383,
                },
                GenRec {
                    key: 3,
                    value_len: None,
                    ts_back_ms: 417,
                },
                GenRec {
                    key: 4,
                    value_len: Some(30),
                    ts_back_ms: 254,
                },
                GenRec {
                    key: 7,
                    value_len: Some(9),
                    ts_back_ms: 287,
                },
                GenRec {
                    key: 3,
                    value_len: Some(28),
                    ts_back_ms: 421,
                },
                GenRec {
                    key: 4,
                    value_len: Some(44),
                    ts_back_ms: 471,
                },
            ],
            codec: 4,
            new_epoch: true,
        },
        Append {
            records: vec![
                GenRec {
                    key: 4,
                    value_len: None,
                    ts_back_ms: 364,
                },
                GenRec {
                    key: 6,
                    value_len: Some(34),
                    ts_back_ms: 6,
                },
                GenRec {
                    key: 1,
                    value_len: Some(37),
                    ts_back_ms: 70,
                },
            ],
            codec: 3,
            new_epoch: false,
        },
        ReopenClean,
        ListOffsets {
            pick: 45066,
            delta: 115,
        },
        Read {
            start_pick: 26397,
            max_bytes: 4647,
            below_end: 2,
            min_one: false,
        },
        Append {
            records: vec![
                GenRec {
                    key: 3,
                    value_len: Some(6),
                    ts_back_ms: 369,
                },
                GenRec {
                    key: 4,
                    value_len: Some(10),
                    ts_back_ms: 492,
                },
                GenRec {
                    key: 1,
                    value_len: Some(4),
                    ts_back_ms: 455,
                },
                GenRec {
                    key: 7,
                    value_len: Some(40),
                    ts_back_ms: 183,
                },
                GenRec {
                    key: 6,
                    value_len: Some(40),
                    ts_back_ms: 335,
                },
            ],
            codec: 3,
            new_epoch: false,
        },
        Advance { ms: 2040 },
        DeleteRecords { pick: 10541 },
        Retention,
        Read {
            start_pick: 17721,
            max_bytes: 4065,
            below_end: 3,
            min_one: true,
        },
        Read {
            start_pick: 27888,
            max_bytes: 2646,
            below_end: 3,
            min_one: false,
        },
        Append {
            records: vec![
                GenRec {
                    key: 2,
                    value_len: Some(9),
                    ts_back_ms: 388,
                },
                GenRec {
                    key: 6,
                    value_len: Some(4),
                    ts_back_ms: 115,
                },
                GenRec {
                    key: 4,
                    value_len: Some(23),
                    ts_back_ms: 104,
                },
                GenRec {
                    key: 3,
                    value_len: Some(3),
                    ts_back_ms: 336,
                },
                GenRec {
                    key: 0,
                    value_len: Some(28),
                    ts_back_ms: 329,
                },
                GenRec {
                    key: 6,
                    value_len: Some(43),
                    ts_back_ms: 116,
                },
            ],
            codec: 2,
            new_epoch: false,
        },
        Append {
            records: vec![
                GenRec {
                    key: 4,
                    value_len: Some(35),
                    ts_back_ms: 158,
                },
                GenRec {
                    key: 2,
                    value_len: Some(7),
                    ts_back_ms: 293,
                },
                GenRec {
                    key: 6,
                    value_len: Some(44),
                    ts_back_ms: 321,
                },
            ],
            codec: 4,
            new_epoch: false,
        },
        Advance { ms: 519 },
        Append {
            records: vec![
                GenRec {
                    key: 6,
                    value_len: None,
                    ts_back_ms: 115,
                },
                GenRec {
                    key: 3,
                    value_len: Some(8),
                    ts_back_ms: 258,
                },
                GenRec {
                    key: 5,
                    value_len: Some(18),
                    ts_back_ms: 66,
                },
                GenRec {
                    key: 3,
                    value_len: Some(15),
                    ts_back_ms: 55,
                },
                GenRec {
                    key: 4,
                    value_len: Some(2),
                    ts_back_ms: 488,
                },
                GenRec {
                    key: 0,
                    value_len: Some(38),
                    ts_back_ms: 142,
                },
                GenRec {
                    key: 5,
                    value_len: Some(2),
                    ts_back_ms: 314,
                },
                GenRec {
                    key: 3,
                    value_len: Some(0),
                    ts_back_ms: 145,
                },
                GenRec {
                    key: 1,
                    value_len: Some(25),
                    ts_back_ms: 25,
                },
            ],
            codec: 4,
            new_epoch: false,
        },
        Append {
            records: vec![
                GenRec {
                    key: 6,
                    value_len: Some(7),
                    ts_back_ms: 451,
                },
                GenRec {
                    key: 7,
                    value_len: Some(38),
                    ts_back_ms: 382,
                },
                GenRec {
                    key: 2,
                    value_len: Some(35),
                    ts_back_ms: 335,
                },
            ],
            codec: 2,
            new_epoch: false,
        },
        ReopenUnclean,
        ReopenClean,
        ListOffsets {
            pick: 28634,
            delta: -74,
        },
    ];
    run(setup, ops);
}
