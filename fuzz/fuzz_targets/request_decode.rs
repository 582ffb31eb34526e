//! Arbitrary bytes as one request frame (the bytes after the length prefix) through the
//! broker's decoding path: header, version check, body. It must return Ok or Err, never
//! panic, abort or allocate without bound (libFuzzer's -rss_limit_mb and -malloc_limit_mb
//! catch the last two).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = moldau_broker::decode_request(bytes::Bytes::copy_from_slice(data));
});
