//! One writer, many readers (issue #2 item 8): readers racing appends, rolls and retention
//! only ever see whole, CRC-valid batches below the high watermark they were given.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::*;
use moldau_storage::{LogConfig, StorageError};

const NOW: i64 = 1_700_000_000_000;
const BATCHES: usize = 400;

#[test]
fn readers_see_whole_batches_while_the_writer_appends_rolls_and_deletes() {
    let config = LogConfig {
        segment_bytes: 8192,
        index_interval_bytes: 512,
        retention_bytes: 32 * 1024,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    let log = h.log().clone();
    let manager = h.manager().clone();
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));

    let readers: Vec<_> = (0..3u64)
        .map(|id| {
            let (log, done, reads) = (log.clone(), done.clone(), reads.clone());
            thread::spawn(move || {
                let mut rng = XorShift::new(id + 1);
                let mut mine = 0;
                while !done.load(Ordering::Acquire) || mine < 50 {
                    let hw = log.high_watermark();
                    let start = log.log_start_offset();
                    if hw <= start {
                        thread::yield_now();
                        continue;
                    }
                    let offset = start + rng.below((hw - start) as u64 + 1) as i64;
                    let max_bytes = 1 + rng.below(6000) as u32;
                    let data = match log.read(offset, max_bytes, hw, true) {
                        Ok(d) => d,
                        // Retention moved the start past `offset` meanwhile.
                        Err(StorageError::OffsetOutOfRange { .. })
                            if offset < log.log_start_offset() =>
                        {
                            continue
                        }
                        Err(e) => panic!("read at {offset} (start {start}, hw {hw}): {e}"),
                    };
                    let bytes = match data.read_to_bytes() {
                        Ok(b) => b,
                        Err(e) => panic!("read_to_bytes at {offset}: {e}"),
                    };
                    let batches = split_batches(&bytes);
                    let mut next = None;
                    for b in &batches {
                        assert!(crc_valid(b), "torn or corrupt batch served at {offset}");
                        let hdr = BatchHeader::parse(b);
                        assert!(
                            hdr.last_offset() < hw,
                            "batch beyond the high watermark {hw}: {hdr:?}"
                        );
                        if let Some(n) = next {
                            assert_eq!(hdr.base_offset, n, "batches are contiguous");
                        } else {
                            assert!(
                                hdr.base_offset <= offset && offset <= hdr.last_offset(),
                                "first batch holds {offset}"
                            );
                        }
                        next = Some(hdr.last_offset() + 1);
                    }
                    assert!(
                        offset == hw || !batches.is_empty(),
                        "nothing read at {offset} below hw {hw}"
                    );
                    mine += 1;
                }
                reads.fetch_add(mine, Ordering::Relaxed);
            })
        })
        .collect();

    let writer = {
        let (log, manager) = (log.clone(), manager.clone());
        thread::spawn(move || {
            for i in 0..BATCHES {
                let mut b = sized_batch(1 + i % 5, 40 + i % 90, ALL_CODECS[i % 5], NOW);
                append(&log, &mut b, NOW).unwrap();
                if i % 25 == 24 {
                    manager.run_retention_once(NOW).unwrap();
                }
            }
        })
    };
    writer.join().expect("writer");
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().expect("reader");
    }
    assert!(reads.load(Ordering::Relaxed) >= 150);
    assert!(log.log_start_offset() > 0, "retention ran");
    let total: i64 = (0..BATCHES).map(|i| 1 + (i % 5) as i64).sum();
    assert_eq!(log.log_end_offset(), total);
    let records = read_all_records(&log);
    assert_eq!(records.last().map(|r| r.offset), Some(total - 1));
}

#[test]
fn log_and_manager_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<moldau_storage::Log>();
    assert_send_sync::<moldau_storage::LogManager>();
}
