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
    let mut count: i64 = 0;
    for_each_record_body(data, |body| {
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
        Ok(true)
    })?;
    if count != header.record_count as i64 {
        return Err(StorageError::InvalidRecord(format!(
            "batch declares {} records but holds {count}",
            header.record_count
        )));
    }
    Ok(())
}

/// Whether a record of the (decompressed) records section repeats a header key. Kafka
/// allows that; kafka-protocol's decoder keeps one value per key, so the cleaner must not
/// re-encode such a batch.
pub fn has_duplicate_header_keys(data: &[u8]) -> Result<bool, StorageError> {
    // Skips a length-prefixed field (-1 = null) and returns its bytes.
    fn field<'a>(body: &'a [u8], pos: &mut usize) -> Result<&'a [u8], StorageError> {
        let length = read_varlong(body, pos, 5)?;
        if length < 0 {
            return Ok(&[]);
        }
        let end = pos
            .checked_add(length as usize)
            .filter(|end| *end <= body.len())
            .ok_or_else(|| corrupt("record field exceeds the record"))?;
        let bytes = &body[*pos..end];
        *pos = end;
        Ok(bytes)
    }
    let mut repeated = false;
    for_each_record_body(data, |body| {
        let mut pos = 1; // attributes
        read_varlong(body, &mut pos, 10)?; // timestamp delta
        read_varlong(body, &mut pos, 5)?; // offset delta
        field(body, &mut pos)?; // key
        field(body, &mut pos)?; // value
        let count = read_varlong(body, &mut pos, 5)?;
        if count < 2 {
            return Ok(true);
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..count {
            let key = field(body, &mut pos)?;
            field(body, &mut pos)?;
            if !seen.insert(key) {
                repeated = true;
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    Ok(repeated)
}

/// Calls `f` with the body of each record of the (decompressed) records section, after
/// checking that its length fits, until `f` returns false.
fn for_each_record_body(
    data: &[u8],
    mut f: impl FnMut(&[u8]) -> Result<bool, StorageError>,
) -> Result<(), StorageError> {
    let mut at = 0;
    while at < data.len() {
        let length = read_varlong(data, &mut at, 5)?;
        if length < 0 || length as usize > data.len() - at {
            return Err(corrupt(format!("record length {length} exceeds the batch")));
        }
        let body = &data[at..at + length as usize];
        at += length as usize;
        if !f(body)? {
            break;
        }
    }
    Ok(())
}

/// A transaction marker: the control record of a COMMIT or ABORT batch (Kafka's
/// EndTransactionMarker: key = version i16 | type i16 (0 ABORT, 1 COMMIT), value =
/// version i16 | coordinatorEpoch i32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Control records hold no more than a few bytes; a larger section is corrupt.
const CONTROL_SECTION_LIMIT_BYTES: usize = 64 * 1024;

/// The marker of a control batch, or None for an empty (cleaned) control batch.
/// Control records that are not COMMIT or ABORT are an error, as in Kafka.
pub fn end_txn_marker(
    batch: &[u8],
    header: &BatchHeader,
) -> Result<Option<EndTxnMarker>, StorageError> {
    let data = records_section(batch, header, CONTROL_SECTION_LIMIT_BYTES)?;
    let invalid =
        |what: &str| StorageError::InvalidRecord(format!("invalid control record: {what}"));
    if data.is_empty() {
        return Ok(None);
    }
    let mut at = 0;
    let length = read_varlong(&data, &mut at, 5)?;
    if length < 0 || length as usize > data.len() - at {
        return Err(invalid("length exceeds the batch"));
    }
    let body = &data[at..at + length as usize];
    let mut pos = 1; // attributes
    read_varlong(body, &mut pos, 10)?; // timestamp delta
    read_varlong(body, &mut pos, 5)?; // offset delta
    let bytes_field = |pos: &mut usize| -> Result<&[u8], StorageError> {
        let len = read_varlong(body, pos, 5)?;
        if len < 0 || len as usize > body.len() - *pos {
            return Err(invalid("missing key or value"));
        }
        let out = &body[*pos..*pos + len as usize];
        *pos += len as usize;
        Ok(out)
    };
    let key = bytes_field(&mut pos)?;
    let value = bytes_field(&mut pos)?;
    if key.len() < 4 {
        return Err(invalid("key shorter than 4 bytes"));
    }
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        0 => false,
        1 => true,
        other => return Err(invalid(&format!("type {other} is not COMMIT or ABORT"))),
    };
    if value.len() < 6 || i16::from_be_bytes([value[0], value[1]]) < 0 {
        return Err(invalid("end transaction marker value too short"));
    }
    let coordinator_epoch = i32::from_be_bytes(value[2..6].try_into().expect("4 bytes"));
    Ok(Some(EndTxnMarker {
        commit,
        coordinator_epoch,
    }))
}

fn write_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// The single record of a control batch holding `marker`, timestamp delta
/// `timestamp_delta`.
pub fn control_record(marker: &EndTxnMarker, timestamp_delta: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&(marker.commit as i16).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let mut body = vec![0u8]; // attributes
    write_varint(&mut body, timestamp_delta);
    write_varint(&mut body, 0); // offset delta
    write_varint(&mut body, key.len() as i64);
    body.extend_from_slice(&key);
    write_varint(&mut body, value.len() as i64);
    body.extend_from_slice(&value);
    write_varint(&mut body, 0); // headers
    let mut record = Vec::with_capacity(body.len() + 2);
    write_varint(&mut record, body.len() as i64);
    record.extend_from_slice(&body);
    record
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

    /// One raw record (offset delta `delta`) with `headers`, as Kafka frames it.
    fn raw_record(delta: i64, key: &[u8], headers: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut body = vec![0u8];
        write_varint(&mut body, 0);
        write_varint(&mut body, delta);
        write_varint(&mut body, key.len() as i64);
        body.extend_from_slice(key);
        write_varint(&mut body, -1); // null value
        write_varint(&mut body, headers.len() as i64);
        for (k, v) in headers {
            write_varint(&mut body, k.len() as i64);
            body.extend_from_slice(k);
            write_varint(&mut body, v.len() as i64);
            body.extend_from_slice(v);
        }
        let mut record = Vec::new();
        write_varint(&mut record, body.len() as i64);
        record.extend_from_slice(&body);
        record
    }

    #[test]
    fn duplicate_header_keys_are_found_in_any_record() {
        let plain = [
            raw_record(0, b"a", &[(b"x", b"1"), (b"y", b"2")]),
            raw_record(1, b"b", &[]),
        ]
        .concat();
        assert!(!has_duplicate_header_keys(&plain).unwrap());
        let repeated = [
            plain.clone(),
            raw_record(2, b"c", &[(b"x", b"1"), (b"x", b"2")]),
        ]
        .concat();
        assert!(has_duplicate_header_keys(&repeated).unwrap());
        // A header running past its record is corruption, not a panic.
        let mut torn = raw_record(0, b"a", &[(b"x", b"1"), (b"x", b"2")]);
        torn.truncate(torn.len() - 2);
        torn[0] = 2 * (torn.len() as u8 - 1); // the record length, zigzag-encoded
        assert!(has_duplicate_header_keys(&torn).is_err());
    }

    #[test]
    fn end_txn_markers_round_trip() {
        for (commit, coordinator_epoch) in [(true, 0), (false, 7), (true, i32::MAX)] {
            let marker = EndTxnMarker {
                commit,
                coordinator_epoch,
            };
            let b = crate::batch::control_batch(9, 2, &marker, 1_000, 4, Some(5_000));
            let h = validate_batch(&b).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.record_count, h.max_timestamp), (1, 1_000));
            assert_eq!(h.delete_horizon_ms(), Some(5_000));
            assert_eq!(end_txn_marker(&b, &h).unwrap(), Some(marker));
            // The codec crate reads it as Kafka clients do.
            let set = kafka_protocol::records::RecordBatchDecoder::decode(
                &mut bytes::Bytes::copy_from_slice(&b),
            )
            .unwrap();
            let record = &set.records[0];
            assert!(record.control);
            assert_eq!(record.timestamp, 1_000);
            let key = record.key.as_ref().unwrap();
            assert_eq!(&key[..], &[0, 0, 0, commit as u8]);
        }
        let empty = crate::batch::empty_batch_like(
            &validate_batch(&crate::batch::control_batch(
                1,
                0,
                &EndTxnMarker {
                    commit: true,
                    coordinator_epoch: 0,
                },
                0,
                0,
                None,
            ))
            .unwrap(),
        );
        let h = validate_batch(&empty).unwrap();
        assert_eq!(end_txn_marker(&empty, &h).unwrap(), None);
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
