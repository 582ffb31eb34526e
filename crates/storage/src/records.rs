//! Walks the records inside a v2 batch without materialising them: record framing,
//! count, offset deltas, timestamps and whether keys are present. This is what Kafka's
//! LogValidator checks by iterating records; compressed batches are decompressed
//! with a bound on the output so a small batch cannot expand without limit.

use std::borrow::Cow;
use std::io::Read;

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Snappy};

use crate::batch::{BatchHeader, HEADER_SIZE};
use crate::error::StorageError;

/// What the validator needs to know about one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordInfo {
    pub timestamp_delta: i64,
    pub has_key: bool,
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::CorruptMessage(what.into())
}

/// Decompressed records section of `batch`, at most `limit_bytes` long.
pub fn records_section<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    limit_bytes: usize,
) -> Result<Cow<'a, [u8]>, StorageError> {
    let compressed = &batch[HEADER_SIZE..];
    let mut out = Vec::new();
    let read = |r: &mut dyn Read, out: &mut Vec<u8>| {
        r.take(limit_bytes as u64 + 1)
            .read_to_end(out)
            .map_err(|e| corrupt(format!("cannot decompress records: {e}")))
    };
    match header.compression_codec() {
        0 => return Ok(Cow::Borrowed(compressed)),
        1 => {
            read(&mut flate2::read::MultiGzDecoder::new(compressed), &mut out)?;
        }
        2 => out = snappy(compressed)?,
        3 => {
            let mut decoder = lz4::Decoder::new(compressed)
                .map_err(|e| corrupt(format!("bad lz4 frame: {e}")))?;
            read(&mut decoder, &mut out)?;
        }
        4 => {
            let mut decoder = zstd::stream::read::Decoder::new(compressed)
                .map_err(|e| corrupt(format!("bad zstd frame: {e}")))?;
            read(&mut decoder, &mut out)?;
        }
        codec => return Err(corrupt(format!("unknown compression codec {codec}"))),
    };
    if out.len() > limit_bytes {
        return Err(corrupt(format!(
            "records decompress to more than {limit_bytes} bytes"
        )));
    }
    Ok(Cow::Owned(out))
}

/// Kafka's xerial-framed snappy; kafka-protocol bounds each block's expansion.
fn snappy(compressed: &[u8]) -> Result<Vec<u8>, StorageError> {
    let mut buf = Bytes::copy_from_slice(compressed);
    Snappy::decompress(&mut buf, |out: &mut Bytes| Ok(out.to_vec()))
        .map_err(|e| corrupt(format!("cannot decompress snappy records: {e}")))
}

/// Zigzag varint of at most `max_bytes` bytes at `*at`.
fn read_varlong(data: &[u8], at: &mut usize, max_bytes: usize) -> Result<i64, StorageError> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let byte = *data
            .get(*at)
            .ok_or_else(|| corrupt("record truncated inside a varint"))?;
        *at += 1;
        raw |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(corrupt("varint too long"))
}

/// Calls `f` for every record of the (decompressed) records section, checking
/// framing, that offset deltas run 0, 1, 2..., and that the count matches the header.
pub fn walk_records(
    data: &[u8],
    header: &BatchHeader,
    mut f: impl FnMut(&RecordInfo) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    let mut at = 0;
    let mut count: i64 = 0;
    while at < data.len() {
        let length = read_varlong(data, &mut at, 5)?;
        if length < 0 || length as usize > data.len() - at {
            return Err(corrupt(format!("record length {length} exceeds the batch")));
        }
        let body = &data[at..at + length as usize];
        at += length as usize;
        let mut pos = 1; // attributes
        let timestamp_delta = read_varlong(body, &mut pos, 10)?;
        let offset_delta = read_varlong(body, &mut pos, 5)?;
        let key_length = read_varlong(body, &mut pos, 5)?;
        if offset_delta != count {
            return Err(StorageError::InvalidRecord(format!(
                "record {count} has offset delta {offset_delta}"
            )));
        }
        f(&RecordInfo {
            timestamp_delta,
            has_key: key_length >= 0,
        })?;
        count += 1;
    }
    if count != header.record_count as i64 {
        return Err(StorageError::InvalidRecord(format!(
            "batch declares {} records but holds {count}",
            header.record_count
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_util::{batch, BatchSpec};
    use crate::batch::{compute_crc, validate_batch};
    use kafka_protocol::records::Compression;

    #[test]
    fn walks_every_codec_and_detects_count_lies() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let spec = BatchSpec {
                compression,
                ..Default::default()
            };
            let mut b = batch(&spec, &[(Some(b"k"), Some(b"v")), (None, Some(b"w"))]);
            let h = validate_batch(&b).unwrap();
            let data = records_section(&b, &h, 1 << 20).unwrap();
            let mut seen = Vec::new();
            walk_records(&data, &h, |r| {
                seen.push(*r);
                Ok(())
            })
            .unwrap();
            assert_eq!(
                seen.iter()
                    .map(|r| (r.timestamp_delta, r.has_key))
                    .collect::<Vec<_>>(),
                vec![(0, true), (1, false)]
            );
            // Claim 5 records: the walk counts 2.
            b[57..61].copy_from_slice(&5i32.to_be_bytes());
            b[23..27].copy_from_slice(&4i32.to_be_bytes());
            let crc = compute_crc(&b);
            b[17..21].copy_from_slice(&crc.to_be_bytes());
            let h = validate_batch(&b).unwrap();
            let data = records_section(&b, &h, 1 << 20).unwrap();
            assert!(matches!(
                walk_records(&data, &h, |_| Ok(())),
                Err(StorageError::InvalidRecord(_))
            ));
        }
    }

    #[test]
    fn decompression_is_bounded() {
        let value = vec![0u8; 1 << 20];
        let spec = BatchSpec {
            compression: Compression::Zstd,
            ..Default::default()
        };
        let b = batch(&spec, &[(None, Some(&value))]);
        assert!(b.len() < 10_000);
        let h = validate_batch(&b).unwrap();
        assert!(matches!(
            records_section(&b, &h, 64 * 1024),
            Err(StorageError::CorruptMessage(_))
        ));
    }
}
