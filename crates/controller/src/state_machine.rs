//! The state machine: committed metadata batches replayed into a `MetadataImage`.
//!
//! Offsets: every Raft entry takes metadata-log offsets as it would in Kafka's layout, where
//! a Normal entry is a batch of one record per `MetadataRecord` (an empty one a one-record
//! no-op) and a Blank or Membership entry a one-record batch (Kafka's LeaderChange /
//! VotersRecord control records); `storage_log_store` writes exactly that. So a record's
//! offset is a pure function of the committed log, the same on every node, and is what
//! `MetadataDelta::replay` and `MetadataImage::offset` see. A proposal's response is the
//! offset of its batch's first record.
//!
//! Apply never fails: a record that replay refuses is logged and skipped (the image is
//! unchanged by it), as the quorum-of-one controller and Kafka's broker loader do.
//!
//! Publishing: each applied batch's delta goes to the node's [`MetadataPublisher`] (the
//! broker's replica manager, which creates and deletes partition logs) before the new image
//! is visible to readers; at open the snapshot's image is published as a delta from empty,
//! and an installed snapshot as the delta between the old and the new image.
//!
//! Snapshots are the image as records (`MetadataImage::to_records`) plus the next offset,
//! as JSON, kept in `__cluster_metadata-0/raft-snapshot.json` (temp + fsync + rename) so
//! that a node whose log was purged restarts from it. When to take one is Kafka's rule
//! (`metadata.log.max.record.bytes.between.snapshots`, `metadata.log.max.snapshot.interval.ms`):
//! the state machine counts the record bytes applied since its last snapshot and the time
//! since it ([`MetadataStateMachine::snapshot_due`]); the quorum asks openraft for one.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moldau_metadata::{MetadataDelta, MetadataImage, MetadataRecord};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::raft_files::write_durably;
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

pub const SNAPSHOT_FILE: &str = "raft-snapshot.json";

/// Reacts to committed metadata before readers see the new image. Infallible: a side
/// effect that fails (a log dir not created or not removed) is the publisher's to retry.
pub trait MetadataPublisher: Send + Sync {
    fn publish(&self, delta: &MetadataDelta, image: &Arc<MetadataImage>);
}

/// Publishes nowhere (a controller-only node, tests).
pub struct NoPublisher;

impl MetadataPublisher for NoPublisher {
    fn publish(&self, _: &MetadataDelta, _: &Arc<MetadataImage>) {}
}

/// What a snapshot holds: enough to rebuild the image and go on numbering offsets.
#[derive(Serialize, Deserialize)]
struct SnapshotContent {
    next_offset: i64,
    image_offset: i64,
    records: Vec<MetadataRecord>,
}

#[derive(Serialize, Deserialize)]
struct PersistedSnapshot {
    meta: SnapshotMeta,
    content: SnapshotContent,
}

#[derive(Clone)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// The offset the next committed record (or control entry) takes.
    next_offset: i64,
    image: Arc<MetadataImage>,
    /// Encoded bytes of the records applied since the last snapshot built or installed.
    record_bytes_since_snapshot: u64,
    /// When the last snapshot was built or installed (or the state machine opened).
    last_snapshot_at: Instant,
}

impl Applied {
    fn at_snapshot(
        last_applied: Option<LogId>,
        membership: StoredMembership,
        next_offset: i64,
        image: Arc<MetadataImage>,
    ) -> Applied {
        Applied {
            last_applied,
            membership,
            next_offset,
            image,
            record_bytes_since_snapshot: 0,
            last_snapshot_at: Instant::now(),
        }
    }
}

struct Shared {
    dir: PathBuf,
    applied: Mutex<Applied>,
    /// The current snapshot: its meta, data, and the offset after its last record.
    snapshot: Mutex<Option<(SnapshotMeta, Vec<u8>, i64)>>,
    image_tx: watch::Sender<Arc<MetadataImage>>,
    publisher: Arc<dyn MetadataPublisher>,
}

/// openraft's `RaftStateMachine`; clones share state (the snapshot builder is a clone).
#[derive(Clone)]
pub struct MetadataStateMachine {
    shared: Arc<Shared>,
}

fn rebuild(content: &SnapshotContent) -> MetadataImage {
    let mut delta = MetadataDelta::new(&MetadataImage::empty());
    for record in &content.records {
        if let Err(e) = delta.replay(content.image_offset, record) {
            tracing::error!(%e, "skipping snapshot record");
        }
    }
    let mut image = delta.apply();
    image.offset = content.image_offset;
    image
}

impl MetadataStateMachine {
    /// Opens the state machine at the last persisted snapshot in `dir` (the partition dir),
    /// or empty. Entries after it are re-applied by openraft as they are known committed.
    /// Publishes the snapshot's image (if any) to `publisher` before returning.
    pub fn open_in(
        dir: &Path,
        publisher: Arc<dyn MetadataPublisher>,
    ) -> io::Result<MetadataStateMachine> {
        let dir = dir.to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let mut applied = Applied::at_snapshot(
            None,
            StoredMembership::default(),
            0,
            Arc::new(MetadataImage::empty()),
        );
        let mut snapshot = None;
        match std::fs::read(dir.join(SNAPSHOT_FILE)) {
            Ok(bytes) => {
                let persisted: PersistedSnapshot = serde_json::from_slice(&bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                applied = Applied::at_snapshot(
                    persisted.meta.last_log_id,
                    persisted.meta.last_membership.clone(),
                    persisted.content.next_offset,
                    Arc::new(rebuild(&persisted.content)),
                );
                let data = serde_json::to_vec(&persisted.content).expect("snapshot serializes");
                snapshot = Some((persisted.meta, data, persisted.content.next_offset));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let empty = MetadataImage::empty();
        publisher.publish(
            &MetadataDelta::between(&empty, &applied.image),
            &applied.image,
        );
        let (image_tx, _) = watch::channel(applied.image.clone());
        Ok(MetadataStateMachine {
            shared: Arc::new(Shared {
                dir,
                applied: Mutex::new(applied),
                snapshot: Mutex::new(snapshot),
                image_tx,
                publisher,
            }),
        })
    }

    /// The image as of the last applied committed entry.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.shared.image_tx.borrow().clone()
    }

    /// Follows the image: a new value after each applied batch or installed snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.shared.image_tx.subscribe()
    }

    /// The metadata-log offset after entry `log_id`, if it is the current snapshot's last
    /// entry: where a log that was replaced by that snapshot goes on.
    pub fn offset_after_snapshot(&self, log_id: LogId) -> Option<i64> {
        let snapshot = self.shared.snapshot.lock();
        let (meta, _, next_offset) = snapshot.as_ref()?;
        (meta.last_log_id == Some(log_id)).then_some(*next_offset)
    }

    pub fn last_applied(&self) -> Option<LogId> {
        self.shared.applied.lock().last_applied
    }

    /// Whether a snapshot is due by Kafka's rule: `max_record_bytes` of records applied
    /// since the last one (`metadata.log.max.record.bytes.between.snapshots`), or any
    /// record applied and `max_interval` passed since it
    /// (`metadata.log.max.snapshot.interval.ms`; `None` turns the time rule off).
    pub fn snapshot_due(&self, max_record_bytes: u64, max_interval: Option<Duration>) -> bool {
        let applied = self.shared.applied.lock();
        let bytes = applied.record_bytes_since_snapshot;
        bytes >= max_record_bytes
            || (bytes > 0 && max_interval.is_some_and(|i| applied.last_snapshot_at.elapsed() >= i))
    }

    /// Applies committed entries in order. Infallible by design: see the module docs.
    pub fn apply_entries(&self, entries: impl IntoIterator<Item = Entry>) -> Vec<i64> {
        let mut applied = self.shared.applied.lock();
        let mut responses = Vec::new();
        let mut changed = false;
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            let first = applied.next_offset;
            match entry.payload {
                EntryPayload::Blank => applied.next_offset += 1,
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    applied.next_offset += 1;
                }
                // An empty proposal is one no-op record in the log's layout.
                EntryPayload::Normal(batch) if batch.is_empty() => applied.next_offset += 1,
                EntryPayload::Normal(batch) => {
                    let mut delta = MetadataDelta::new(&applied.image);
                    for record in &batch {
                        let offset = applied.next_offset;
                        applied.record_bytes_since_snapshot += record.encode().len() as u64;
                        if let Err(e) = delta.replay(offset, record) {
                            tracing::error!(offset, %e, "skipping committed metadata record");
                        }
                        applied.next_offset += 1;
                    }
                    let image = Arc::new(delta.current().clone());
                    self.shared.publisher.publish(&delta, &image);
                    applied.image = image;
                    changed = true;
                }
            }
            responses.push(first);
        }
        if changed {
            self.shared.image_tx.send_replace(applied.image.clone());
        }
        responses
    }

    fn persist(&self, meta: &SnapshotMeta, content: SnapshotContent) -> io::Result<Vec<u8>> {
        let data = serde_json::to_vec(&content).expect("snapshot serializes");
        let persisted = PersistedSnapshot {
            meta: meta.clone(),
            content,
        };
        let bytes = serde_json::to_vec(&persisted).expect("snapshot serializes");
        write_durably(&self.shared.dir, SNAPSHOT_FILE, &bytes)?;
        Ok(data)
    }
}

/// Writes `image` as the snapshot that ends at entry `meta.last_log_id`, the next entry's
/// records numbered from `next_offset` (the migration of a quorum-of-one log).
pub(crate) fn write_snapshot(
    dir: &Path,
    meta: SnapshotMeta,
    next_offset: i64,
    image: &MetadataImage,
) -> io::Result<()> {
    let persisted = PersistedSnapshot {
        meta,
        content: SnapshotContent {
            next_offset,
            image_offset: image.offset,
            records: image.to_records(),
        },
    };
    let bytes = serde_json::to_vec(&persisted).expect("snapshot serializes");
    write_durably(dir, SNAPSHOT_FILE, &bytes)
}

fn snapshot_err(e: &io::Error) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(e)).into()
}

impl RaftSnapshotBuilder<TypeConfig> for MetadataStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let applied = self.shared.applied.lock().clone();
        let snapshot_id = match applied.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, applied.next_offset),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
            snapshot_id,
        };
        let content = SnapshotContent {
            next_offset: applied.next_offset,
            image_offset: applied.image.offset,
            records: applied.image.to_records(),
        };
        let data = self.persist(&meta, content).map_err(|e| snapshot_err(&e))?;
        {
            // Records applied while this snapshot was written are not in it: they count
            // towards the next one.
            let mut now_applied = self.shared.applied.lock();
            now_applied.record_bytes_since_snapshot = now_applied
                .record_bytes_since_snapshot
                .saturating_sub(applied.record_bytes_since_snapshot);
            now_applied.last_snapshot_at = Instant::now();
        }
        *self.shared.snapshot.lock() = Some((meta.clone(), data.clone(), applied.next_offset));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for MetadataStateMachine {
    type SnapshotBuilder = MetadataStateMachine;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.shared.applied.lock();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<i64>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        // Publishing may create or delete many partition logs.
        Ok(crate::raft_files::blocking(|| self.apply_entries(entries)))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let content: SnapshotContent = serde_json::from_slice(&data).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                AnyError::new(&e),
            ))
        })?;
        let image = Arc::new(rebuild(&content));
        let next_offset = content.next_offset;
        let data = self.persist(meta, content).map_err(|e| snapshot_err(&e))?;
        {
            let mut applied = self.shared.applied.lock();
            let delta = MetadataDelta::between(&applied.image, &image);
            self.shared.publisher.publish(&delta, &image);
            *applied = Applied::at_snapshot(
                meta.last_log_id,
                meta.last_membership.clone(),
                next_offset,
                image.clone(),
            );
        }
        *self.shared.snapshot.lock() = Some((meta.clone(), data, next_offset));
        self.shared.image_tx.send_replace(image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self
            .shared
            .snapshot
            .lock()
            .as_ref()
            .map(|(meta, data, _)| Snapshot {
                meta: meta.clone(),
                snapshot: Box::new(Cursor::new(data.clone())),
            }))
    }
}

#[cfg(test)]
mod tests {
    use moldau_metadata::Uuid;
    use openraft::CommittedLeaderId;

    use super::*;

    fn normal(index: u64, batch: Vec<MetadataRecord>) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(batch),
        }
    }

    #[tokio::test]
    async fn apply_numbers_offsets_skips_bad_records_and_snapshots_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = MetadataStateMachine::open_in(dir.path(), Arc::new(NoPublisher)).unwrap();
        let topic_id = Uuid::new_v4();
        let blank = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
            payload: EntryPayload::Blank,
        };
        let topic = MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        };
        // Refers to an unknown topic: skipped, but it still takes its offset.
        let bad = MetadataRecord::RemoveTopic {
            topic_id: Uuid::new_v4(),
        };
        let responses = sm
            .apply(vec![
                blank,
                normal(2, vec![bad, topic]),
                normal(
                    3,
                    vec![MetadataRecord::ProducerIds {
                        broker_id: 1,
                        broker_epoch: 1,
                        next_producer_id: 1000,
                    }],
                ),
            ])
            .await
            .unwrap();
        assert_eq!(responses, vec![0, 1, 3]);
        let image = sm.image();
        assert_eq!(image.offset, 3);
        assert!(image.topic_by_id(&topic_id).is_some());

        sm.build_snapshot().await.unwrap();
        let reopened = MetadataStateMachine::open_in(dir.path(), Arc::new(NoPublisher)).unwrap();
        assert_eq!(reopened.last_applied().unwrap().index, 3);
        assert_eq!(reopened.image().to_records(), image.to_records());
        assert_eq!(reopened.image().offset, 3);
        assert_eq!(reopened.shared.applied.lock().next_offset, 4);
    }

    #[tokio::test]
    async fn a_snapshot_is_due_by_record_bytes_or_by_time_with_records_since() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = MetadataStateMachine::open_in(dir.path(), Arc::new(NoPublisher)).unwrap();
        let interval = Duration::from_millis(50);
        let record = MetadataRecord::Topic {
            name: "t".into(),
            topic_id: Uuid::new_v4(),
        };
        let record_bytes = record.encode().len() as u64;
        // Nothing applied: never due, however long it has been.
        tokio::time::sleep(2 * interval).await;
        assert!(!sm.snapshot_due(1, Some(interval)));

        sm.apply(vec![normal(1, vec![record])]).await.unwrap();
        assert!(sm.snapshot_due(record_bytes, None));
        assert!(!sm.snapshot_due(record_bytes + 1, None));
        // The clock started at open: the interval has passed with a record applied.
        assert!(sm.snapshot_due(u64::MAX, Some(interval)));

        sm.build_snapshot().await.unwrap();
        assert!(!sm.snapshot_due(1, Some(Duration::ZERO)));
        sm.apply(vec![normal(2, vec![])]).await.unwrap();
        // An empty batch carries no record bytes.
        assert!(!sm.snapshot_due(1, Some(Duration::ZERO)));
    }
}
