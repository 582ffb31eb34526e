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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Where an index's entries live. The active segment's index is resident (it is
/// appended to and hot); closed segments' indexes are searched on disk by
/// positional reads through the page cache, so memory does not grow with the log
/// (Kafka gets the same effect from mmap).
enum Entries<E> {
    Resident(Vec<E>),
    OnDisk { count: usize },
}

/// A sparse index file. One writer, many readers.
///
/// Holds no open file: like Kafka's mmapped indexes, a segment costs one descriptor
/// (its `.log`). Writes (one per `index.interval.bytes` of log), flushes and cold
/// lookups open the file by path for the call. A lookup whose file is gone (the
/// segment was deleted under a reader) finds nothing, and callers then scan the log
/// from the segment's start.
pub struct SparseIndex<E: IndexEntry> {
    path: PathBuf,
    base_offset: i64,
    max_entries: usize,
    entries: RwLock<Entries<E>>,
    /// Written since the last flush.
    dirty: AtomicBool,
}

/// Offset -> file position.
pub type OffsetIndex = SparseIndex<OffsetPosition>;
/// Max timestamp -> offset.
pub type TimeIndex = SparseIndex<TimestampOffset>;

impl<E: IndexEntry> SparseIndex<E> {
    /// Creates an empty index file, replacing any existing one.
    pub fn create(path: &Path, base_offset: i64, max_index_bytes: i32) -> io::Result<Self> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self::with_entries(
            path,
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
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len() as usize;
        if !len.is_multiple_of(E::SIZE) {
            return Ok(None);
        }
        let entries = read_all(&file, base_offset, len / E::SIZE)?;
        if !is_valid(&entries) {
            return Ok(None);
        }
        Ok(Some(Self::with_entries(
            path,
            base_offset,
            max_index_bytes,
            entries,
        )))
    }

    fn with_entries(path: &Path, base_offset: i64, max_index_bytes: i32, entries: Vec<E>) -> Self {
        let max_entries = (max_index_bytes.max(0) as usize / E::SIZE).max(1);
        SparseIndex {
            path: path.to_path_buf(),
            base_offset,
            max_entries,
            entries: RwLock::new(Entries::Resident(entries)),
            dirty: AtomicBool::new(false),
        }
    }

    fn read_entries(&self) -> std::sync::RwLockReadGuard<'_, Entries<E>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The entries, loaded into memory (for the writer: append and truncate).
    fn resident(&self) -> io::Result<std::sync::RwLockWriteGuard<'_, Entries<E>>> {
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Entries::OnDisk { count } = *guard {
            let file = File::open(&self.path)?;
            *guard = Entries::Resident(read_all(&file, self.base_offset, count)?);
        }
        Ok(guard)
    }

    fn open_for_write(&self) -> io::Result<File> {
        OpenOptions::new().write(true).open(&self.path)
    }

    /// Drops the in-memory copy: lookups go to the file from now on.
    pub fn make_cold(&self) {
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Entries::Resident(v) = &*guard {
            *guard = Entries::OnDisk { count: v.len() };
        }
    }

    pub fn entry_count(&self) -> usize {
        match &*self.read_entries() {
            Entries::Resident(v) => v.len(),
            Entries::OnDisk { count } => *count,
        }
    }

    pub fn is_full(&self) -> bool {
        self.entry_count() >= self.max_entries
    }

    pub fn last_entry(&self) -> Option<E> {
        if let Entries::Resident(v) = &*self.read_entries() {
            return v.last().copied();
        }
        let n = self.entry_count();
        let file = File::open(&self.path).ok()?;
        n.checked_sub(1).and_then(|i| self.entry_on_disk(&file, i))
    }

    fn entry_on_disk(&self, file: &File, i: usize) -> Option<E> {
        let mut buf = [0u8; 16];
        let buf = &mut buf[..E::SIZE];
        file.read_exact_at(buf, (i * E::SIZE) as u64).ok()?;
        Some(E::decode(self.base_offset, buf))
    }

    /// Appends one entry (writer only). The file write happens before the entry is
    /// visible to lookups.
    pub fn append(&self, entry: E) -> io::Result<()> {
        let mut buf = [0u8; 16];
        entry.encode(self.base_offset, &mut buf[..E::SIZE]);
        let mut guard = self.resident()?;
        let Entries::Resident(entries) = &mut *guard else {
            unreachable!("resident() loads entries")
        };
        crate::seams::write_all_at(
            &self.open_for_write()?,
            &self.path,
            &buf[..E::SIZE],
            (entries.len() * E::SIZE) as u64,
        )?;
        self.dirty.store(true, Ordering::Release);
        entries.push(entry);
        Ok(())
    }

    /// Keeps the entries for which `keep` holds (a prefix), truncating the file.
    pub fn truncate_while(&self, keep: impl Fn(&E) -> bool) -> io::Result<()> {
        let mut guard = self.resident()?;
        let Entries::Resident(entries) = &mut *guard else {
            unreachable!("resident() loads entries")
        };
        let n = entries.iter().take_while(|e| keep(e)).count();
        if n == entries.len() {
            return Ok(());
        }
        entries.truncate(n);
        self.dirty.store(true, Ordering::Release);
        self.open_for_write()?.set_len((n * E::SIZE) as u64)
    }

    /// The last entry for which `before` holds (entries are sorted), if any.
    pub fn floor(&self, before: impl Fn(&E) -> bool) -> Option<E> {
        let count = match &*self.read_entries() {
            Entries::Resident(v) => {
                let n = v.partition_point(|e| before(e));
                return n.checked_sub(1).map(|i| v[i]);
            }
            Entries::OnDisk { count } => *count,
        };
        let file = File::open(&self.path).ok()?;
        // Binary search on disk; an unreadable entry ends the search conservatively.
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry_on_disk(&file, mid) {
                Some(e) if before(&e) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1).and_then(|i| self.entry_on_disk(&file, i))
    }

    /// Syncs the file if it was written since the last flush. A file already gone
    /// (its segment was deleted) has nothing left to make durable.
    pub fn flush(&self) -> io::Result<()> {
        sync_if_dirty(&self.path, &self.dirty)
    }
}

/// Syncs an index file (opened for the call: indexes hold no descriptor) if `dirty`; on
/// failure it stays dirty for the next flush. A file already gone (its segment was
/// deleted) has nothing left to make durable.
pub(crate) fn sync_if_dirty(path: &Path, dirty: &AtomicBool) -> io::Result<()> {
    if !dirty.swap(false, Ordering::AcqRel) {
        return Ok(());
    }
    let result = match File::open(path) {
        Ok(file) => crate::seams::sync_data(&file, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    if result.is_err() {
        dirty.store(true, Ordering::Release);
    }
    result
}

fn read_all<E: IndexEntry>(file: &File, base_offset: i64, count: usize) -> io::Result<Vec<E>> {
    let mut bytes = vec![0u8; count * E::SIZE];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes
        .chunks_exact(E::SIZE)
        .map(|c| E::decode(base_offset, c))
        .collect())
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
    fn cold_index_searches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let index = OffsetIndex::create(&dir.path().join("i"), 0, 1 << 20).unwrap();
        for i in 1..1000u32 {
            index
                .append(OffsetPosition {
                    offset: i as i64 * 3,
                    position: i * 100,
                })
                .unwrap();
        }
        let resident: Vec<_> = (0..3100).map(|t| index.lookup(t)).collect();
        index.make_cold();
        let cold: Vec<_> = (0..3100).map(|t| index.lookup(t)).collect();
        assert_eq!(resident, cold);
        assert_eq!(index.last_entry().unwrap().offset, 2997);
        index
            .append(OffsetPosition {
                offset: 3000,
                position: 100_000,
            })
            .unwrap();
        assert_eq!(index.lookup(5000).offset, 3000);
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
