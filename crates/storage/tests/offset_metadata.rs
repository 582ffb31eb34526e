//! `Log::offset_metadata`: where an offset lies, so a waiting fetch can count the bytes that
//! arrived without reading them (Kafka's LogOffsetMetadata).

mod common;

use common::*;
use moldau_storage::LogConfig;

const NOW: i64 = 1_700_000_000_000;

#[test]
fn bytes_between_offsets_match_what_a_read_returns() {
    let config = LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 300,
        ..LogConfig::default()
    };
    let h = Harness::new(config);
    let mut next = 0i64;
    for i in 0..80usize {
        let n = 1 + i % 3;
        let mut b = sized_batch(n, 20 + (i * 7) % 60, ALL_CODECS[i % 5], NOW);
        append(h.log(), &mut b, NOW).unwrap();
        next += n as i64;
    }
    let log = h.log();
    let end = log.offset_metadata(next).unwrap();
    assert_eq!(end.offset, next);
    let mut other_segment = 0;
    for offset in 0..next {
        let start = log.offset_metadata(offset).unwrap();
        // Everything from the batch holding `offset` to the end, within its segment.
        let read = log.read(offset, u32::MAX, next, true).unwrap();
        assert_eq!(start.position, read.slices[0].position, "offset {offset}");
        match start.bytes_until(&end) {
            Some(bytes) => assert_eq!(bytes, u64::from(read.total_bytes), "offset {offset}"),
            // A roll in between: the caller reads instead of counting.
            None => {
                assert!(start.segment_base_offset < end.segment_base_offset);
                other_segment += 1;
            }
        }
    }
    assert!(other_segment > 0, "the log rolled");
    assert_eq!(end.bytes_until(&end), Some(0));
    // Counting does not read.
    let reads = log.reads();
    log.offset_metadata(0).unwrap();
    log.offset_metadata(next).unwrap();
    assert_eq!(log.reads(), reads);
}
