//! Descriptors held by a log: one per segment (its `.log`), as Kafka, whatever the
//! number of segments, after appends, reads, a clean reopen and a crash.

mod common;

use std::path::Path;

use common::*;
use moldau_storage::LogConfig;

/// Open descriptors of this process that point into `dir`. Only links into the
/// test's own temp dir count, so other tests' threads cannot disturb the figure.
fn descriptors_under(dir: &Path) -> usize {
    let dir = dir.canonicalize().expect("canonical dir");
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(&dir))
        .count()
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

#[test]
fn a_log_holds_one_descriptor_per_segment() {
    let mut h = Harness::new(small_segments());
    for i in 0..120 {
        append(
            h.log(),
            &mut sized_batch(2, 200, Compression::None, 1_000 + i),
            1_000 + i,
        )
        .unwrap();
    }
    let segments = h.log().segment_count();
    assert!(segments >= 30, "{segments} segments");
    let check = |h: &Harness, when: &str| {
        let held = descriptors_under(&h.partition_dir());
        assert_eq!(held, h.log().segment_count(), "descriptors {when}");
    };
    check(&h, "after appends");
    // Reads use the closed segments' indexes (looked up on disk) and the .log files.
    let read = read_all_batches(h.log());
    assert_eq!(read.len(), 120);
    check(&h, "after reads");
    h.reopen_clean();
    assert_eq!(h.log().segment_count(), segments);
    check(&h, "after a clean open");
    assert_eq!(read_all_batches(h.log()), read);
    h.reopen_unclean();
    check(&h, "after recovery");
    assert_eq!(read_all_batches(h.log()), read);
    // Appends after recovery keep indexing the active segment.
    append(
        h.log(),
        &mut sized_batch(2, 200, Compression::None, 5_000),
        5_000,
    )
    .unwrap();
    check(&h, "after an append");
    assert_eq!(read_all_batches(h.log()).len(), 121);
}
