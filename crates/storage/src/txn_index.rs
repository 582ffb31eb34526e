//! TransactionIndex: a segment's `.txnindex`, the aborted transactions whose ABORT
//! marker lies in the segment (Kafka's format: 34-byte big-endian entries of
//! version i16 (0) | producerId i64 | firstOffset i64 | lastOffset i64 |
//! lastStableOffset i64, in increasing lastOffset order).
//!
//! Fetch under READ_COMMITTED collects the entries overlapping the fetched range so
//! consumers can drop aborted records. Entries are read from disk by positional
//! reads (the file is tiny and usually empty); one writer appends, readers read
//! up to the published length. No descriptor is held: each read or write opens the
//! file for the call, so an empty index (the common case) costs none.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub const ABORTED_TXN_BYTES: usize = 34;
const VERSION: i16 = 0;

/// One aborted transaction (Kafka's AbortedTxn).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset right after the abort.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ABORTED_TXN_BYTES] {
        let mut b = [0u8; ABORTED_TXN_BYTES];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        if i16::from_be_bytes([b[0], b[1]]) != VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// Aborted transactions of one segment overlapping a range, and whether the search
/// is complete (no later segment can hold more).
pub struct TxnIndexSearchResult {
    pub aborted: Vec<AbortedTxn>,
    pub complete: bool,
}

pub struct TransactionIndex {
    path: PathBuf,
    base_offset: i64,
    len_bytes: AtomicU64,
    /// Written since the last flush.
    dirty: AtomicBool,
}

impl TransactionIndex {
    /// Creates an empty index file, replacing any leftover. Unlike Kafka the file
    /// always exists, so a missing one means it was lost and is rebuilt.
    pub fn create(path: &Path, base_offset: i64) -> io::Result<Self> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self::with_len(path, base_offset, 0))
    }

    fn with_len(path: &Path, base_offset: i64, len: u64) -> Self {
        TransactionIndex {
            path: path.to_path_buf(),
            base_offset,
            len_bytes: AtomicU64::new(len),
            dirty: AtomicBool::new(false),
        }
    }

    /// Opens an existing index. Returns whether it exists and its entries pass the
    /// sanity check; if not it is emptied (created) and the caller must rebuild it
    /// by recovering the segment.
    pub fn open(path: &Path, base_offset: i64) -> io::Result<(Self, bool)> {
        let (existed, len) = match std::fs::metadata(path) {
            Ok(m) => (true, m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (false, 0),
            Err(e) => return Err(e),
        };
        let index = Self::with_len(path, base_offset, len);
        let valid = existed && len.is_multiple_of(ABORTED_TXN_BYTES as u64) && index.sane();
        if !valid {
            index.reset()?;
        }
        Ok((index, valid))
    }

    /// Kafka's sanity check, plus version and order checks.
    fn sane(&self) -> bool {
        let Ok(entries) = self.read_all() else {
            return false;
        };
        let mut last = i64::MIN;
        entries.iter().all(|e| {
            let ok = e.is_some_and(|e| e.last_offset >= self.base_offset && e.last_offset > last);
            if let Some(e) = e {
                last = e.last_offset;
            }
            ok
        })
    }

    fn read_all(&self) -> io::Result<Vec<Option<AbortedTxn>>> {
        let len = self.len_bytes.load(Ordering::Acquire) as usize;
        let len = len - len % ABORTED_TXN_BYTES;
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; len];
        File::open(&self.path)?.read_exact_at(&mut buf, 0)?;
        Ok(buf
            .chunks_exact(ABORTED_TXN_BYTES)
            .map(AbortedTxn::decode)
            .collect())
    }

    /// Every entry, in order.
    pub fn all(&self) -> io::Result<Vec<AbortedTxn>> {
        Ok(self.read_all()?.into_iter().flatten().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.len_bytes.load(Ordering::Acquire) == 0
    }

    /// Appends an entry; last offsets must increase.
    pub fn append(&self, txn: &AbortedTxn) -> io::Result<()> {
        let len = self.len_bytes.load(Ordering::Acquire);
        if let Some(last) = self.all()?.last() {
            if last.last_offset >= txn.last_offset {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "aborted transaction last offset {} does not follow {}",
                        txn.last_offset, last.last_offset
                    ),
                ));
            }
        }
        let file = OpenOptions::new().write(true).open(&self.path)?;
        crate::seams::write_all_at(&file, &self.path, &txn.encode(), len)?;
        self.dirty.store(true, Ordering::Release);
        self.len_bytes
            .store(len + ABORTED_TXN_BYTES as u64, Ordering::Release);
        Ok(())
    }

    /// Removes every entry.
    pub fn reset(&self) -> io::Result<()> {
        self.set_len(0)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)?
            .set_len(len)?;
        self.dirty.store(true, Ordering::Release);
        self.len_bytes.store(len, Ordering::Release);
        Ok(())
    }

    /// Removes the entries whose marker is at or after `offset`.
    pub fn truncate_to(&self, offset: i64) -> io::Result<()> {
        let keep = self
            .all()?
            .iter()
            .take_while(|e| e.last_offset < offset)
            .count();
        let len = (keep * ABORTED_TXN_BYTES) as u64;
        if len < self.len_bytes.load(Ordering::Acquire) {
            self.set_len(len)?;
        }
        Ok(())
    }

    /// Kafka's `collectAbortedTxns`: entries overlapping `[fetch_offset,
    /// upper_bound_offset)`; complete once an entry's LSO reaches the upper bound.
    pub fn collect(
        &self,
        fetch_offset: i64,
        upper_bound_offset: i64,
    ) -> io::Result<TxnIndexSearchResult> {
        let mut aborted = Vec::new();
        if self.is_empty() {
            return Ok(TxnIndexSearchResult {
                aborted,
                complete: false,
            });
        }
        for txn in self.all()? {
            if txn.last_offset >= fetch_offset && txn.first_offset < upper_bound_offset {
                aborted.push(txn);
            }
            if txn.last_stable_offset >= upper_bound_offset {
                return Ok(TxnIndexSearchResult {
                    aborted,
                    complete: true,
                });
            }
        }
        Ok(TxnIndexSearchResult {
            aborted,
            complete: false,
        })
    }

    /// Syncs the file if it was written since the last flush.
    pub fn flush(&self) -> io::Result<()> {
        crate::index::sync_if_dirty(&self.path, &self.dirty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn kafka_layout_append_collect_truncate_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let index = TransactionIndex::create(&path, 0).unwrap();
        index.append(&txn(1, 0, 10, 11)).unwrap();
        index.append(&txn(2, 5, 20, 30)).unwrap();
        index.append(&txn(3, 25, 40, 41)).unwrap();
        assert!(index.append(&txn(4, 1, 40, 41)).is_err());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 3 * 34);
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(i64::from_be_bytes(bytes[36..44].try_into().unwrap()), 2);
        let r = index.collect(12, 26).unwrap();
        assert_eq!(r.aborted, vec![txn(2, 5, 20, 30)]);
        assert!(r.complete);
        let r = index.collect(0, 100).unwrap();
        assert_eq!(r.aborted.len(), 3);
        assert!(!r.complete);
        index.truncate_to(20).unwrap();
        assert_eq!(index.all().unwrap(), vec![txn(1, 0, 10, 11)]);
        drop(index);
        let (index, valid) = TransactionIndex::open(&path, 0).unwrap();
        assert!(valid);
        assert_eq!(index.all().unwrap().len(), 1);
        std::fs::write(&path, [1u8; 35]).unwrap();
        let (index, valid) = TransactionIndex::open(&path, 0).unwrap();
        assert!(!valid);
        assert!(index.is_empty());
    }
}
