//! Arbitrary bytes as one request frame (the bytes after the length prefix) through the
//! broker's decoding path: header, version check, body. It must return Ok or Err, never
//! panic, abort or allocate without bound (libFuzzer's -rss_limit_mb and -malloc_limit_mb
//! catch the last two), and never amplify: the memory live while decoding (including the
//! decoded request) stays within a fixed multiple of the input, counted by the allocator
//! below, so a small frame that decodes into much more memory is a finding.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;

/// Live heap bytes and their peak since the last reset (the target runs on one thread).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The broker allows decoded arrays 8x the frame (64 KiB minimum); unknown tagged fields
/// and the frame's own copy come on top. Unbounded, a frame of tiny elements decodes to
/// ~60x its size.
const MAX_BYTES_PER_INPUT_BYTE: usize = 32;
const MAX_FIXED_BYTES: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let decoded = moldau_broker::decode_request(bytes::Bytes::copy_from_slice(data));
    let used = PEAK.load(Ordering::Relaxed) - start;
    drop(decoded);
    let bound = MAX_BYTES_PER_INPUT_BYTE * data.len() + MAX_FIXED_BYTES;
    assert!(
        used <= bound,
        "decoding {} bytes took {used} bytes of memory (bound {bound})",
        data.len()
    );
});
