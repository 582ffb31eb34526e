//! OffsetIndex and TimeIndex: Kafka's sparse segment indexes.
//!
//! On disk they use Kafka's binary entries (offset index: 4-byte relative offset +
//! 4-byte position; time index: 8-byte timestamp + 4-byte relative offset), all
//! big-endian. Unlike Kafka the files are not preallocated: they grow by one entry
//! per append and never carry zero padding, so no trimming is needed on roll or close.
//! `segment.index.bytes` still bounds them (the segment rolls when one is full).
//! Lookups use an in-memory copy of the entries behind a short `RwLock`, so readers
//! only contend with the writer for the instant an entry is pushed.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::RwLock;

/// One fixed-size entry of an index file.
pub trait IndexEntry: Copy + std::fmt::Debug {
    const SIZE: usize;
    fn encode(&self, base_offset: i64, out: &mut [u8]);
    fn decode(base_offset: i64, bytes: &[u8]) -> Self;
}

/// Offset index entry: the last offset of a batch and the batch's file position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetPosition {
    pub offset: i64,
    pub position: u32,
}

/// Time index entry: the max timestamp so far and the offset it was seen at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

impl IndexEntry for OffsetPosition {
    const SIZE: usize = 8;
    fn encode(&self, base_offset: i64, out: &mut [u8]) {
        out[0..4].copy_from_slice(&((self.offset - base_offset) as u32).to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn decode(base_offset: i64, b: &[u8]) -> Self {
        let relative = u32::from_be_bytes(b[0..4].try_into().expect("4 bytes"));
        let position = u32::from_be_bytes(b[4..8].try_into().expect("4 bytes"));
        OffsetPosition {
            offset: base_offset + relative as i64,
            position,
        }
    }
}

impl IndexEntry for TimestampOffset {
    const SIZE: usize = 12;
    fn encode(&self, base_offset: i64, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&((self.offset - base_offset) as u32).to_be_bytes());
    }
    fn decode(base_offset: i64, b: &[u8]) -> Self {
        let timestamp = i64::from_be_bytes(b[0..8].try_into().expect("8 bytes"));
        let relative = u32::from_be_bytes(b[8..12].try_into().expect("4 bytes"));
        TimestampOffset {
            timestamp,
            offset: base_offset + relative as i64,
        }
    }
}

/// A sparse index file plus its entries in memory. One writer, many readers.
pub struct SparseIndex<E: IndexEntry> {
    file: File,
    base_offset: i64,
    max_entries: usize,
    entries: RwLock<Vec<E>>,
}

/// Offset -> file position.
pub type OffsetIndex = SparseIndex<OffsetPosition>;
/// Max timestamp -> offset.
pub type TimeIndex = SparseIndex<TimestampOffset>;

impl<E: IndexEntry> SparseIndex<E> {
    /// Creates an empty index file, replacing any existing one.
    pub fn create(path: &Path, base_offset: i64, max_index_bytes: i32) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self::with_entries(
            file,
            base_offset,
            max_index_bytes,
            Vec::new(),
        ))
    }

    /// Opens an existing index. Returns `Ok(None)` when the file is missing or its
    /// entries fail `is_valid` (the caller then rebuilds it from the log).
    pub fn open(
        path: &Path,
        base_offset: i64,
        max_index_bytes: i32,
        is_valid: impl Fn(&[E]) -> bool,
    ) -> io::Result<Option<Self>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len() as usize;
        if !len.is_multiple_of(E::SIZE) {
            return Ok(None);
        }
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, 0)?;
        let entries: Vec<E> = bytes
            .chunks_exact(E::SIZE)
            .map(|c| E::decode(base_offset, c))
            .collect();
        if !is_valid(&entries) {
            return Ok(None);
        }
        Ok(Some(Self::with_entries(
            file,
            base_offset,
            max_index_bytes,
            entries,
        )))
    }

    fn with_entries(file: File, base_offset: i64, max_index_bytes: i32, entries: Vec<E>) -> Self {
        let max_entries = (max_index_bytes.max(0) as usize / E::SIZE).max(1);
        SparseIndex {
            file,
            base_offset,
            max_entries,
            entries: RwLock::new(entries),
        }
    }

    fn read_entries(&self) -> std::sync::RwLockReadGuard<'_, Vec<E>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_entries(&self) -> std::sync::RwLockWriteGuard<'_, Vec<E>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn entry_count(&self) -> usize {
        self.read_entries().len()
    }

    pub fn is_full(&self) -> bool {
        self.entry_count() >= self.max_entries
    }

    pub fn last_entry(&self) -> Option<E> {
        self.read_entries().last().copied()
    }

    /// Appends one entry (writer only). The file write happens before the entry is
    /// visible to lookups.
    pub fn append(&self, entry: E) -> io::Result<()> {
        let mut buf = [0u8; 16];
        entry.encode(self.base_offset, &mut buf[..E::SIZE]);
        let mut entries = self.write_entries();
        self.file
            .write_all_at(&buf[..E::SIZE], (entries.len() * E::SIZE) as u64)?;
        entries.push(entry);
        Ok(())
    }

    /// Keeps the entries for which `keep` holds (a prefix), truncating the file.
    pub fn truncate_while(&self, keep: impl Fn(&E) -> bool) -> io::Result<()> {
        let mut entries = self.write_entries();
        let n = entries.iter().take_while(|e| keep(e)).count();
        entries.truncate(n);
        self.file.set_len((n * E::SIZE) as u64)
    }

    /// The last entry for which `before` holds (entries are sorted), if any.
    pub fn floor(&self, before: impl Fn(&E) -> bool) -> Option<E> {
        let entries = self.read_entries();
        let n = entries.partition_point(|e| before(e));
        n.checked_sub(1).map(|i| entries[i])
    }

    pub fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl OffsetIndex {
    /// Position to start scanning for `target`: the largest indexed offset <= target.
    pub fn lookup(&self, target: i64) -> OffsetPosition {
        self.floor(|e| e.offset <= target)
            .unwrap_or(OffsetPosition {
                offset: self.base_offset,
                position: 0,
            })
    }

    /// Entries strictly increase in offset and position and stay within the log.
    pub fn entries_valid(base_offset: i64, log_size: u64) -> impl Fn(&[OffsetPosition]) -> bool {
        move |entries| {
            entries
                .windows(2)
                .all(|w| w[0].offset < w[1].offset && w[0].position < w[1].position)
                && entries.first().is_none_or(|e| e.offset >= base_offset)
                && entries
                    .last()
                    .is_none_or(|e| (e.position as u64) < log_size)
        }
    }
}

impl TimeIndex {
    /// Timestamps and offsets never decrease.
    pub fn entries_valid(base_offset: i64) -> impl Fn(&[TimestampOffset]) -> bool {
        move |entries| {
            entries
                .windows(2)
                .all(|w| w[0].timestamp <= w[1].timestamp && w[0].offset <= w[1].offset)
                && entries.first().is_none_or(|e| e.offset >= base_offset)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_round_trip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let index = OffsetIndex::create(&path, 100, 1024).unwrap();
        index
            .append(OffsetPosition {
                offset: 110,
                position: 4096,
            })
            .unwrap();
        index
            .append(OffsetPosition {
                offset: 120,
                position: 8192,
            })
            .unwrap();
        assert_eq!(index.lookup(105).position, 0);
        assert_eq!(index.lookup(115).position, 4096);
        assert_eq!(index.lookup(500).position, 8192);
        let reopened = OffsetIndex::open(&path, 100, 1024, OffsetIndex::entries_valid(100, 10_000))
            .unwrap()
            .unwrap();
        assert_eq!(reopened.entry_count(), 2);
        assert!(
            OffsetIndex::open(&path, 100, 1024, OffsetIndex::entries_valid(100, 5000))
                .unwrap()
                .is_none()
        );
        reopened.truncate_while(|e| e.offset < 120).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8);
    }

    #[test]
    fn time_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let index = TimeIndex::create(&dir.path().join("t"), 0, 24).unwrap();
        index
            .append(TimestampOffset {
                timestamp: 10,
                offset: 3,
            })
            .unwrap();
        assert!(!index.is_full());
        index
            .append(TimestampOffset {
                timestamp: 20,
                offset: 7,
            })
            .unwrap();
        assert!(index.is_full());
        assert_eq!(index.floor(|e| e.timestamp <= 5), None);
        assert_eq!(index.floor(|e| e.timestamp <= 15).unwrap().offset, 3);
    }
}
