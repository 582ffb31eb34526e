//! LeaderEpochFileCache: (leader epoch, start offset) pairs persisted in
//! `leader-epoch-checkpoint`, answering OffsetForLeaderEpoch.

use std::io;
use std::path::{Path, PathBuf};

use crate::checkpoint::{read_epoch_checkpoint, write_epoch_checkpoint};

pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

pub struct LeaderEpochFileCache {
    path: PathBuf,
    /// Strictly increasing in both epoch and start offset.
    entries: Vec<EpochEntry>,
}

impl LeaderEpochFileCache {
    /// Loads the checkpoint; a corrupt one is discarded (recovery rebuilds it from batches).
    pub fn load(dir: &Path) -> Self {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let entries = match read_epoch_checkpoint(&path) {
            Ok(e) => e
                .into_iter()
                .map(|(epoch, start_offset)| EpochEntry {
                    epoch,
                    start_offset,
                })
                .collect(),
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "discarding leader epoch checkpoint");
                Vec::new()
            }
        };
        let mut cache = LeaderEpochFileCache { path, entries };
        cache
            .entries
            .dedup_by(|b, a| b.epoch <= a.epoch || b.start_offset < a.start_offset);
        cache
    }

    #[cfg(test)]
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than the latest.
    /// Returns whether the cache changed (then it has been persisted).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> io::Result<bool> {
        if epoch < 0 || self.latest_epoch().is_some_and(|e| epoch <= e) {
            return Ok(false);
        }
        // A newer epoch cannot start before an older one; drop those that would.
        self.entries.retain(|e| e.start_offset < start_offset);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.persist()?;
        Ok(true)
    }

    /// Follower truncation: forget epochs starting at or after `end_offset`.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Log start advanced: the epoch covering `start_offset` now starts there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> io::Result<()> {
        let covering = self
            .entries
            .iter()
            .rposition(|e| e.start_offset <= start_offset);
        let Some(i) = covering else { return Ok(()) };
        if i == 0 && self.entries[0].start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..i);
        self.entries[0].start_offset = start_offset;
        self.persist()
    }

    /// Kafka's `endOffsetFor`: (largest epoch <= requested, start offset of the next
    /// epoch or the log end). None when the requested epoch is unknown and newer.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        let latest = self.latest_epoch()?;
        if requested == latest {
            return Some((requested, log_end_offset));
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested)?;
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => Some((floor.epoch, higher.start_offset)),
            None => Some((requested, higher.start_offset)),
        }
    }

    /// Epoch of the batch holding `offset`, if known.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.start_offset <= offset)
            .map(|e| e.epoch)
    }

    pub fn persist(&self) -> io::Result<()> {
        let pairs: Vec<(i32, i64)> = self
            .entries
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect();
        write_epoch_checkpoint(&self.path, &pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_end_offset_semantics() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochFileCache::load(dir.path());
        assert_eq!(c.end_offset_for(0, 0), None);
        c.assign(2, 0).unwrap();
        c.assign(4, 3).unwrap();
        c.assign(4, 5).unwrap();
        c.assign(7, 9).unwrap();
        assert_eq!(c.end_offset_for(7, 12), Some((7, 12)));
        assert_eq!(c.end_offset_for(5, 12), Some((4, 9)));
        assert_eq!(c.end_offset_for(1, 12), Some((1, 0)));
        assert_eq!(c.end_offset_for(8, 12), None);
        let reloaded = LeaderEpochFileCache::load(dir.path());
        assert_eq!(reloaded.entries(), c.entries());
        c.truncate_from_end(9).unwrap();
        assert_eq!(c.latest_epoch(), Some(4));
        c.truncate_from_start(4).unwrap();
        assert_eq!(
            c.entries(),
            &[EpochEntry {
                epoch: 4,
                start_offset: 4
            }][..]
        );
    }
}
