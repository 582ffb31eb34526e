//! The records of `__transaction_state`, in Kafka's schemas (`TransactionLogKey` v0 and
//! `TransactionLogValue` v0/v1), so that Kafka's tools read what Moldau writes.
//!
//! Key: int16 version 0, then the transactional id. Value: int16 version, then the
//! metadata; a null value is a tombstone (an expired transactional id). Version 0 is
//! written (what Kafka 4.x writes for transaction version 1 clients); version 1 (flexible,
//! with tagged fields) is read too.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{TxnMetadata, TxnState};
use crate::records::RecordError;
use crate::CoordinatorRecord;

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

pub fn txn_record(transactional_id: &str, m: &TxnMetadata) -> CoordinatorRecord {
    let mut buf = BytesMut::new();
    buf.put_i16(VALUE_VERSION);
    buf.put_i64(m.producer_id);
    buf.put_i16(m.producer_epoch);
    buf.put_i32(m.timeout_ms);
    buf.put_i8(m.state.id());
    if m.state == TxnState::Empty {
        // Kafka writes a null partition list for an empty transaction.
        buf.put_i32(-1);
    } else {
        let topics = m.topics();
        buf.put_i32(topics.len() as i32);
        for (topic, partitions) in topics {
            put_string(&mut buf, topic);
            buf.put_i32(partitions.len() as i32);
            for p in partitions {
                buf.put_i32(p);
            }
        }
    }
    buf.put_i64(m.last_update_ms);
    buf.put_i64(m.start_ms);
    CoordinatorRecord {
        key: txn_key(transactional_id),
        value: Some(buf.freeze()),
    }
}

pub fn txn_tombstone(transactional_id: &str) -> CoordinatorRecord {
    CoordinatorRecord {
        key: txn_key(transactional_id),
        value: None,
    }
}

fn txn_key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(KEY_VERSION);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

fn put_string(buf: &mut BytesMut, s: &str) {
    debug_assert!(s.len() <= i16::MAX as usize);
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn err(what: &str) -> RecordError {
    RecordError(format!("__transaction_state: {what}"))
}

fn need(buf: &&[u8], n: usize) -> Result<(), RecordError> {
    if buf.remaining() < n {
        return Err(err("truncated"));
    }
    Ok(())
}

fn get_string(buf: &mut &[u8]) -> Result<String, RecordError> {
    need(buf, 2)?;
    let len = buf.get_i16();
    let len = usize::try_from(len).map_err(|_| err("null string"))?;
    need(buf, len)?;
    let s = std::str::from_utf8(&buf[..len]).map_err(|_| err("string is not UTF-8"))?;
    let s = s.to_string();
    buf.advance(len);
    Ok(s)
}

fn get_uvarint(buf: &mut &[u8]) -> Result<u64, RecordError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        need(buf, 1)?;
        let b = buf.get_u8();
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(err("varint too long"))
}

fn get_compact_string(buf: &mut &[u8]) -> Result<String, RecordError> {
    let len = get_uvarint(buf)?;
    let len = usize::try_from(len.checked_sub(1).ok_or_else(|| err("null string"))?)
        .map_err(|_| err("string too long"))?;
    need(buf, len)?;
    let s = std::str::from_utf8(&buf[..len])
        .map_err(|_| err("string is not UTF-8"))?
        .to_string();
    buf.advance(len);
    Ok(s)
}

fn skip_tagged_fields(buf: &mut &[u8]) -> Result<(), RecordError> {
    let count = get_uvarint(buf)?;
    for _ in 0..count {
        get_uvarint(buf)?;
        let size = get_uvarint(buf)? as usize;
        need(buf, size)?;
        buf.advance(size);
    }
    Ok(())
}

/// The transactional id of a `__transaction_state` key.
pub fn decode_txn_key(key: &[u8]) -> Result<String, RecordError> {
    let mut buf = key;
    need(&buf, 2)?;
    let version = buf.get_i16();
    if version != KEY_VERSION {
        return Err(err(&format!("unknown key version {version}")));
    }
    get_string(&mut buf)
}

/// A `__transaction_state` value, version 0 or 1.
pub fn decode_txn_value(value: &[u8]) -> Result<TxnMetadata, RecordError> {
    let mut buf = value;
    need(&buf, 2)?;
    let version = buf.get_i16();
    let flexible = match version {
        0 => false,
        1 => true,
        v => return Err(err(&format!("unknown value version {v}"))),
    };
    need(&buf, 8 + 2 + 4 + 1)?;
    let producer_id = buf.get_i64();
    let producer_epoch = buf.get_i16();
    let timeout_ms = buf.get_i32();
    let state = TxnState::from_id(buf.get_i8()).ok_or_else(|| err("unknown state"))?;
    let count: i64 = if flexible {
        get_uvarint(&mut buf)? as i64 - 1
    } else {
        need(&buf, 4)?;
        i64::from(buf.get_i32())
    };
    let mut partitions = std::collections::BTreeSet::new();
    for _ in 0..count.max(0) {
        let topic = if flexible {
            get_compact_string(&mut buf)?
        } else {
            get_string(&mut buf)?
        };
        let n: i64 = if flexible {
            get_uvarint(&mut buf)? as i64 - 1
        } else {
            need(&buf, 4)?;
            i64::from(buf.get_i32())
        };
        for _ in 0..n.max(0) {
            need(&buf, 4)?;
            partitions.insert((topic.clone(), buf.get_i32()));
        }
        if flexible {
            skip_tagged_fields(&mut buf)?;
        }
    }
    need(&buf, 16)?;
    let last_update_ms = buf.get_i64();
    let start_ms = buf.get_i64();
    if flexible {
        skip_tagged_fields(&mut buf)?;
    }
    Ok(TxnMetadata {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
        // Not in the record: a reloaded coordinator fences retries, as Kafka's does.
        last_producer_epoch: -1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_round_trips_and_matches_kafka_layout() {
        let mut m = TxnMetadata {
            producer_id: 7,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: Default::default(),
            last_update_ms: 100,
            start_ms: 90,
            last_producer_epoch: -1,
        };
        m.partitions.insert(("a".into(), 1));
        m.partitions.insert(("a".into(), 0));
        m.partitions.insert(("b".into(), 2));
        let record = txn_record("tx", &m);
        assert_eq!(&record.key[..], &[0, 0, 0, 2, b't', b'x']);
        let value = record.value.unwrap();
        // version, pid, epoch, timeout, status, 2 topics.
        assert_eq!(&value[..2], &[0, 0]);
        assert_eq!(value[16], 1);
        assert_eq!(&value[17..21], &[0, 0, 0, 2]);
        assert_eq!(decode_txn_value(&value).unwrap(), m);
        assert_eq!(decode_txn_key(&record.key).unwrap(), "tx");

        m.state = TxnState::Empty;
        m.partitions.clear();
        let value = txn_record("tx", &m).value.unwrap();
        assert_eq!(&value[17..21], &[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_txn_value(&value).unwrap(), m);
    }

    #[test]
    fn reads_flexible_version_one() {
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        buf.put_i64(5);
        buf.put_i16(2);
        buf.put_i32(1000);
        buf.put_i8(4);
        buf.put_u8(2); // one topic
        buf.put_u8(2); // "t"
        buf.put_u8(b't');
        buf.put_u8(3); // two partitions
        buf.put_i32(0);
        buf.put_i32(1);
        buf.put_u8(0); // topic's tagged fields
        buf.put_i64(10);
        buf.put_i64(9);
        buf.put_u8(1); // one tagged field: ClientTransactionVersion
        buf.put_u8(2);
        buf.put_u8(2);
        buf.put_i16(2);
        let m = decode_txn_value(&buf).unwrap();
        assert_eq!(m.producer_id, 5);
        assert_eq!(m.state, TxnState::CompleteCommit);
        assert_eq!(m.partitions.len(), 2);
        assert_eq!((m.last_update_ms, m.start_ms), (10, 9));
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(decode_txn_value(&[0, 0, 1]).is_err());
        assert!(decode_txn_value(&[0, 9]).is_err());
        assert!(decode_txn_key(&[0, 0, 0, 5, b'a']).is_err());
    }
}
