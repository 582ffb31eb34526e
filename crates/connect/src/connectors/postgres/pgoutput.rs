//! A decoder of PostgreSQL's `pgoutput` logical replication messages, protocol version 1
//! (PostgreSQL's "Logical Replication Message Formats"): Begin, Commit, Origin, Relation,
//! Type, Insert, Update, Delete, Truncate. Bounded and panic-free: every read checks the
//! remaining length, so truncated or garbage input is an error, never a panic or a huge
//! allocation (counts are bounded by the bytes actually present).

use std::fmt;

/// A log sequence number (a byte position in the WAL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses PostgreSQL's text form `16/B374D848`.
    pub fn parse(text: &str) -> Option<Lsn> {
        let (hi, lo) = text.trim().split_once('/')?;
        let hi = u32::from_str_radix(hi, 16).ok()?;
        let lo = u32::from_str_radix(lo, 16).ok()?;
        Some(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// One column of a tuple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TupleValue {
    Null,
    /// An unchanged TOASTed value, not sent.
    UnchangedToast,
    /// The value in the type's text output format.
    Text(Vec<u8>),
    /// The value in binary format (only with the `binary` option, which is not requested).
    Binary(Vec<u8>),
}

/// A column of a Relation message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity key.
    pub is_key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// A decoded pgoutput message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Begin {
        /// The LSN of the transaction's commit record.
        final_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01.
        commit_time_pg_us: i64,
        xid: u32,
    },
    Commit {
        flags: u8,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_time_pg_us: i64,
    },
    Origin {
        commit_lsn: Lsn,
        name: String,
    },
    Relation {
        oid: u32,
        namespace: String,
        name: String,
        replica_identity: u8,
        columns: Vec<RelationColumn>,
    },
    Type {
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        relation: u32,
        new: Vec<TupleValue>,
    },
    Update {
        relation: u32,
        /// `K`: the old key columns (the key changed); `O`: the old row (REPLICA IDENTITY
        /// FULL).
        old: Option<(u8, Vec<TupleValue>)>,
        new: Vec<TupleValue>,
    },
    Delete {
        relation: u32,
        /// `K` (key columns, others null) or `O` (the whole row).
        old_kind: u8,
        old: Vec<TupleValue>,
    },
    Truncate {
        options: u8,
        relations: Vec<u32>,
    },
}

/// Why a message could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid pgoutput message: {0}")]
pub struct DecodeError(pub String);

fn err<T>(what: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(what.into()))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                DecodeError(format!(
                    "truncated {what} at byte {} (needs {n}, {} left)",
                    self.pos,
                    self.buf.len().saturating_sub(self.pos)
                ))
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        Ok(self.u32(what)? as i32)
    }
    fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn i64(&mut self, what: &str) -> Result<i64, DecodeError> {
        Ok(self.u64(what)? as i64)
    }
    /// A NUL-terminated string.
    fn string(&mut self, what: &str) -> Result<String, DecodeError> {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        let Some(nul) = rest.iter().position(|&b| b == 0) else {
            return err(format!("unterminated {what} at byte {}", self.pos));
        };
        let s = String::from_utf8_lossy(&rest[..nul]).into_owned();
        self.pos += nul + 1;
        Ok(s)
    }
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

fn tuple(r: &mut Reader<'_>) -> Result<Vec<TupleValue>, DecodeError> {
    let n = r.u16("tuple column count")? as usize;
    // Each column takes at least one byte: a count beyond the bytes left is garbage.
    if n > r.remaining() {
        return err(format!(
            "tuple claims {n} columns, {} bytes left",
            r.remaining()
        ));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let kind = r.u8("tuple column kind")?;
        out.push(match kind {
            b'n' => TupleValue::Null,
            b'u' => TupleValue::UnchangedToast,
            b't' | b'b' => {
                let len = r.i32("tuple value length")?;
                let len = usize::try_from(len)
                    .map_err(|_| DecodeError(format!("negative value length {len}")))?;
                let bytes = r.take(len, "tuple value")?.to_vec();
                if kind == b't' {
                    TupleValue::Text(bytes)
                } else {
                    TupleValue::Binary(bytes)
                }
            }
            other => return err(format!("unknown tuple column kind 0x{other:02x}")),
        });
    }
    Ok(out)
}

/// Decodes one message (one row of `pg_logical_slot_get_binary_changes`).
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let tag = r.u8("message type")?;
    let msg = match tag {
        b'B' => Message::Begin {
            final_lsn: Lsn(r.u64("begin final LSN")?),
            commit_time_pg_us: r.i64("begin commit time")?,
            xid: r.u32("begin xid")?,
        },
        b'C' => Message::Commit {
            flags: r.u8("commit flags")?,
            commit_lsn: Lsn(r.u64("commit LSN")?),
            end_lsn: Lsn(r.u64("commit end LSN")?),
            commit_time_pg_us: r.i64("commit time")?,
        },
        b'O' => Message::Origin {
            commit_lsn: Lsn(r.u64("origin LSN")?),
            name: r.string("origin name")?,
        },
        b'R' => {
            let oid = r.u32("relation oid")?;
            let namespace = r.string("relation namespace")?;
            let name = r.string("relation name")?;
            let replica_identity = r.u8("replica identity")?;
            let n = r.u16("relation column count")? as usize;
            if n > r.remaining() {
                return err(format!(
                    "relation claims {n} columns, {} bytes left",
                    r.remaining()
                ));
            }
            let mut columns = Vec::with_capacity(n);
            for _ in 0..n {
                let flags = r.u8("column flags")?;
                columns.push(RelationColumn {
                    is_key: flags & 1 == 1,
                    name: r.string("column name")?,
                    type_oid: r.u32("column type")?,
                    type_modifier: r.i32("column type modifier")?,
                });
            }
            Message::Relation {
                oid,
                namespace,
                name,
                replica_identity,
                columns,
            }
        }
        b'Y' => Message::Type {
            oid: r.u32("type oid")?,
            namespace: r.string("type namespace")?,
            name: r.string("type name")?,
        },
        b'I' => {
            let relation = r.u32("insert relation")?;
            match r.u8("insert tuple kind")? {
                b'N' => Message::Insert {
                    relation,
                    new: tuple(&mut r)?,
                },
                k => return err(format!("insert: expected N, got 0x{k:02x}")),
            }
        }
        b'U' => {
            let relation = r.u32("update relation")?;
            let mut kind = r.u8("update tuple kind")?;
            let mut old = None;
            if kind == b'K' || kind == b'O' {
                old = Some((kind, tuple(&mut r)?));
                kind = r.u8("update new tuple kind")?;
            }
            if kind != b'N' {
                return err(format!("update: expected N, got 0x{kind:02x}"));
            }
            Message::Update {
                relation,
                old,
                new: tuple(&mut r)?,
            }
        }
        b'D' => {
            let relation = r.u32("delete relation")?;
            let old_kind = r.u8("delete tuple kind")?;
            if old_kind != b'K' && old_kind != b'O' {
                return err(format!("delete: expected K or O, got 0x{old_kind:02x}"));
            }
            Message::Delete {
                relation,
                old_kind,
                old: tuple(&mut r)?,
            }
        }
        b'T' => {
            let n = r.u32("truncate relation count")? as usize;
            let options = r.u8("truncate options")?;
            if n.saturating_mul(4) > r.remaining() {
                return err(format!(
                    "truncate claims {n} relations, {} bytes left",
                    r.remaining()
                ));
            }
            let mut relations = Vec::with_capacity(n);
            for _ in 0..n {
                relations.push(r.u32("truncate relation")?);
            }
            Message::Truncate { options, relations }
        }
        other => return err(format!("unknown message type 0x{other:02x}")),
    };
    if r.remaining() != 0 {
        return err(format!(
            "{} trailing bytes after message '{}'",
            r.remaining(),
            tag as char
        ));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation_bytes() -> Vec<u8> {
        let mut b = vec![b'R'];
        b.extend(16384u32.to_be_bytes());
        b.extend(b"public\0items\0");
        b.push(b'd');
        b.extend(2u16.to_be_bytes());
        b.push(1);
        b.extend(b"id\0");
        b.extend(23u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.push(0);
        b.extend(b"name\0");
        b.extend(25u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b
    }

    fn insert_bytes() -> Vec<u8> {
        let mut b = vec![b'I'];
        b.extend(16384u32.to_be_bytes());
        b.push(b'N');
        b.extend(3u16.to_be_bytes());
        b.push(b't');
        b.extend(1i32.to_be_bytes());
        b.push(b'7');
        b.push(b'n');
        b.push(b'u');
        b
    }

    #[test]
    fn lsns_parse_and_print_as_postgres_does() {
        let l = Lsn::parse("16/B374D848").unwrap();
        assert_eq!(l.0, 0x16_B374_D848);
        assert_eq!(l.to_string(), "16/B374D848");
        assert_eq!(Lsn::parse("0/0"), Some(Lsn(0)));
        assert_eq!(Lsn::parse("zz"), None);
        assert_eq!(Lsn::parse("1/2/3"), None);
    }

    #[test]
    fn decodes_begin_commit_relation_insert() {
        let mut b = vec![b'B'];
        b.extend(0x100u64.to_be_bytes());
        b.extend(5i64.to_be_bytes());
        b.extend(742u32.to_be_bytes());
        assert_eq!(
            decode(&b).unwrap(),
            Message::Begin {
                final_lsn: Lsn(0x100),
                commit_time_pg_us: 5,
                xid: 742
            }
        );
        let mut c = vec![b'C', 0];
        c.extend(0x100u64.to_be_bytes());
        c.extend(0x130u64.to_be_bytes());
        c.extend(5i64.to_be_bytes());
        assert!(matches!(
            decode(&c).unwrap(),
            Message::Commit {
                end_lsn: Lsn(0x130),
                ..
            }
        ));
        match decode(&relation_bytes()).unwrap() {
            Message::Relation { columns, name, .. } => {
                assert_eq!(name, "items");
                assert_eq!(columns.len(), 2);
                assert!(columns[0].is_key && !columns[1].is_key);
                assert_eq!(columns[1].type_oid, 25);
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(
            decode(&insert_bytes()).unwrap(),
            Message::Insert {
                relation: 16384,
                new: vec![
                    TupleValue::Text(b"7".to_vec()),
                    TupleValue::Null,
                    TupleValue::UnchangedToast
                ]
            }
        );
    }

    #[test]
    fn decodes_update_delete_truncate() {
        let mut u = vec![b'U'];
        u.extend(1u32.to_be_bytes());
        u.push(b'O');
        u.extend(1u16.to_be_bytes());
        u.push(b'n');
        u.push(b'N');
        u.extend(1u16.to_be_bytes());
        u.push(b'n');
        assert!(matches!(
            decode(&u).unwrap(),
            Message::Update {
                old: Some((b'O', _)),
                ..
            }
        ));
        let mut d = vec![b'D'];
        d.extend(1u32.to_be_bytes());
        d.push(b'K');
        d.extend(0u16.to_be_bytes());
        assert!(matches!(
            decode(&d).unwrap(),
            Message::Delete { old_kind: b'K', .. }
        ));
        let mut t = vec![b'T'];
        t.extend(2u32.to_be_bytes());
        t.push(0);
        t.extend(1u32.to_be_bytes());
        t.extend(2u32.to_be_bytes());
        assert_eq!(
            decode(&t).unwrap(),
            Message::Truncate {
                options: 0,
                relations: vec![1, 2]
            }
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for full in [relation_bytes(), insert_bytes()] {
            for n in 0..full.len() {
                assert!(decode(&full[..n]).is_err(), "prefix of {n} bytes");
            }
            let mut longer = full.clone();
            longer.push(0);
            assert!(decode(&longer).is_err(), "trailing bytes");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn corrupted_valid_messages_never_panic(at in 0usize..64, byte in proptest::prelude::any::<u8>()) {
            for mut m in [relation_bytes(), insert_bytes()] {
                let i = at % m.len();
                m[i] = byte;
                let _ = decode(&m);
            }
        }
    }

    #[test]
    fn garbage_and_huge_counts_are_refused() {
        assert!(decode(&[]).is_err());
        assert!(decode(b"Z").is_err());
        // A tuple claiming 65535 columns with nothing behind it.
        let mut b = vec![b'I'];
        b.extend(1u32.to_be_bytes());
        b.push(b'N');
        b.extend(u16::MAX.to_be_bytes());
        assert!(decode(&b).is_err());
        // A value length of i32::MAX, and a negative one.
        for len in [i32::MAX, -5] {
            let mut b = vec![b'I'];
            b.extend(1u32.to_be_bytes());
            b.push(b'N');
            b.extend(1u16.to_be_bytes());
            b.push(b't');
            b.extend(len.to_be_bytes());
            assert!(decode(&b).is_err());
        }
        // A truncate claiming u32::MAX relations.
        let mut t = vec![b'T'];
        t.extend(u32::MAX.to_be_bytes());
        t.push(0);
        assert!(decode(&t).is_err());
        // Pseudo-random bytes never panic.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..2000 {
            let len = (x % 40) as usize;
            let mut v = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(b"BCORYIUDTntuKON\0"[(x % 16) as usize]);
            }
            let _ = decode(&v);
        }
    }
}
