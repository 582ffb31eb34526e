//! The metadata quorum controller, as a quorum of one.
//!
//! Every metadata change is a batch of [`MetadataRecord`]s appended to the metadata log
//! (`__cluster_metadata-0`), flushed, replayed into a [`MetadataDelta`], handed to the
//! publisher (the broker side, which creates and deletes partition logs) and then published
//! as the new immutable [`MetadataImage`]. Writes are serialized by one lock, so a check made
//! against the current image inside [`Controller::write`] cannot be raced by another write.
//!
//! Contract (what the Raft state machine will rely on): every check a record implies is
//! made by `decide` against the image, before the append. Once a record is appended it is
//! committed: replay applies it or skips it with a logged error (never stops), the new
//! image is published whatever local side effects do (the publisher reconciles its own
//! failures), and a failed append or flush halts the controller, because the log's state
//! is then unknown; the node restarts on what the log holds.
//!
//! The cluster work replaces the local append + flush with a Raft commit; nothing else here
//! (or in the broker) needs to change shape.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use moldau_metadata::{MetadataDelta, MetadataImage, MetadataRecord};
use moldau_storage::{AppendOrigin, Log};
use parking_lot::RwLock;

use crate::error::BrokerError;
use crate::internal_log;

/// The metadata topic partition, as Kafka names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Kafka's bound on the records one client operation may commit (`MAX_RECORDS_PER_USER_OP`);
/// past it the operation is refused with POLICY_VIOLATION and nothing is written.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;

/// Reacts to committed metadata before readers see the new image. Infallible: a side
/// effect that fails (a log dir not created or not removed) is the publisher's to retry.
pub trait MetadataPublisher: Send + Sync {
    fn publish(&self, delta: &MetadataDelta, image: &Arc<MetadataImage>);
}

pub struct Controller {
    metadata_log: Arc<Log>,
    publisher: Arc<dyn MetadataPublisher>,
    /// Holds why the controller halted (a failed append or flush), once it has.
    write_lock: tokio::sync::Mutex<Option<String>>,
    image: RwLock<Arc<MetadataImage>>,
}

impl Controller {
    /// Replays the whole metadata log into an image and publishes it.
    pub fn open(
        metadata_log: Arc<Log>,
        publisher: Arc<dyn MetadataPublisher>,
    ) -> Result<Controller, BrokerError> {
        let empty = MetadataImage::empty();
        let mut delta = MetadataDelta::new(&empty);
        let end = metadata_log.log_end_offset();
        internal_log::replay(&metadata_log, |record| {
            let value = record.value.as_deref().unwrap_or_default();
            // Skipped, not fatal, as a Kafka broker's metadata loader: the node must start.
            match MetadataRecord::decode(value) {
                Ok(metadata_record) => replay_logged(&mut delta, record.offset, &metadata_record),
                Err(e) => tracing::error!(offset = record.offset, %e, "skipping metadata record"),
            }
            Ok::<_, BrokerError>(())
        })?;
        metadata_log.update_high_watermark(end);
        let image = Arc::new(delta.current().clone());
        publisher.publish(&delta, &image);
        Ok(Controller {
            metadata_log,
            publisher,
            write_lock: tokio::sync::Mutex::new(None),
            image: RwLock::new(image),
        })
    }

    /// The latest published image. Cheap: readers share it and never lock while using it.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// Decides the records to write from the current image (`decide` may refuse with an
    /// error), commits them, and returns what `decide` returned alongside them.
    pub async fn write<T, E>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), E>,
    ) -> Result<T, E>
    where
        E: From<BrokerError>,
    {
        let mut halted = self.write_lock.lock().await;
        if let Some(reason) = halted.as_ref() {
            return Err(BrokerError::MetadataLog(format!(
                "metadata writes halted until restart: {reason}"
            ))
            .into());
        }
        let image = self.image();
        let (records, out) = decide(&image)?;
        if records.len() > MAX_RECORDS_PER_USER_OP {
            return Err(BrokerError::TooManyRecords(records.len()).into());
        }
        if !records.is_empty() {
            let mut batch = encode(&records)?;
            match self.append(&mut batch) {
                Ok(first_offset) => self.apply(&image, first_offset, &records),
                Err(e) => {
                    tracing::error!(%e, "metadata log append failed: halting metadata writes");
                    *halted = Some(e.to_string());
                    return Err(e.into());
                }
            }
        }
        Ok(out)
    }

    /// Appends and flushes: the commit. Returns the offset of the first record.
    fn append(&self, batch: &mut [u8]) -> Result<i64, BrokerError> {
        let info = self.metadata_log.append_as_leader(
            batch,
            0,
            AppendOrigin::Coordinator,
            crate::now_ms(),
        )?;
        // A metadata change is acknowledged only once it is on disk, as a Raft commit would be.
        self.metadata_log.flush()?;
        self.metadata_log
            .update_high_watermark(self.metadata_log.log_end_offset());
        Ok(info.first_offset)
    }

    /// Applies committed records: cannot fail, so the image always follows the log.
    fn apply(&self, image: &MetadataImage, first_offset: i64, records: &[MetadataRecord]) {
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            replay_logged(&mut delta, first_offset + i as i64, record);
        }
        let next = Arc::new(delta.current().clone());
        self.publisher.publish(&delta, &next);
        *self.image.write() = next;
    }
}

fn encode(records: &[MetadataRecord]) -> Result<BytesMut, BrokerError> {
    internal_log::encode_batch(
        records.iter().map(|r| {
            (
                Bytes::from_static(r.type_name().as_bytes()),
                Some(Bytes::from(r.encode())),
            )
        }),
        crate::now_ms(),
    )
}

/// A skipped record at replay means old data (written before decide checked everything)
/// or a decide bug; either way it is logged and the rest applies.
fn replay_logged(delta: &mut MetadataDelta, offset: i64, record: &MetadataRecord) {
    if let Err(e) = delta.replay(offset, record) {
        tracing::error!(%e, record = record.type_name(), "skipping metadata record");
    }
}

#[cfg(test)]
mod tests {
    use moldau_metadata::Uuid;
    use moldau_storage::{LogConfig, LogManager, LogManagerConfig, TopicPartition};

    use super::*;
    use crate::replica_manager::ReplicaManager;

    const NODE_ID: i32 = 1;

    struct Node {
        log_manager: Arc<LogManager>,
        replica_manager: Arc<ReplicaManager>,
        controller: Controller,
    }

    fn open(dir: &std::path::Path) -> Node {
        let log_manager =
            LogManager::open(LogManagerConfig::new(dir), LogConfig::default()).expect("open logs");
        let metadata_log = log_manager
            .get_or_create_log(
                &TopicPartition::new(METADATA_TOPIC, 0),
                Uuid::nil(),
                LogConfig::default(),
            )
            .expect("metadata log");
        let replica_manager = Arc::new(ReplicaManager::new(
            NODE_ID,
            log_manager.clone(),
            LogConfig::default(),
        ));
        let controller =
            Controller::open(metadata_log, replica_manager.clone()).expect("controller opens");
        Node {
            log_manager,
            replica_manager,
            controller,
        }
    }

    impl Node {
        fn close(self) {
            self.log_manager.shutdown().expect("shutdown");
        }

        /// Commits records as given, without the checks a handler's `decide` makes: this is
        /// how logs written by earlier versions came to hold duplicates.
        async fn commit_unchecked(&self, records: Vec<MetadataRecord>) {
            self.controller
                .write(|_| Ok::<_, BrokerError>((records, ())))
                .await
                .expect("commit");
        }

        fn hosts(&self, topic: &str, partition: i32) -> bool {
            let tp = TopicPartition::new(topic, partition);
            self.replica_manager.partition(&tp).is_some()
        }
    }

    fn topic(name: &str, topic_id: Uuid, partitions: i32) -> Vec<MetadataRecord> {
        let mut records = vec![MetadataRecord::Topic {
            name: name.into(),
            topic_id,
        }];
        records.extend(
            (0..partitions).map(|partition_id| MetadataRecord::Partition {
                topic_id,
                partition_id,
                replicas: vec![NODE_ID],
                isr: vec![NODE_ID],
                leader: NODE_ID,
                leader_epoch: 0,
                partition_epoch: 0,
            }),
        );
        records
    }

    #[tokio::test]
    async fn a_log_with_duplicate_remove_topic_and_topic_names_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let (removed, first_b, second_b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let node = open(dir.path());
        node.commit_unchecked(topic("a", removed, 1)).await;
        node.commit_unchecked(vec![MetadataRecord::RemoveTopic { topic_id: removed }])
            .await;
        node.commit_unchecked(vec![MetadataRecord::RemoveTopic { topic_id: removed }])
            .await;
        node.commit_unchecked(topic("b", first_b, 1)).await;
        node.commit_unchecked(topic("b", second_b, 2)).await;
        assert!(node.hosts("b", 1) && !node.hosts("a", 0));
        node.close();

        let node = open(dir.path());
        let image = node.controller.image();
        assert!(image.topic_by_name("a").is_none());
        assert_eq!(image.topics().len(), 1);
        let b = image.topic_by_name("b").unwrap();
        assert_eq!((b.topic_id, b.partitions.len()), (second_b, 2));
        assert!(node.hosts("b", 0) && node.hosts("b", 1) && !node.hosts("a", 0));
        assert!(!dir.path().join("a-0").exists());
        // The superseded id is gone for good: deleting the live topic leaves nothing.
        node.commit_unchecked(vec![MetadataRecord::RemoveTopic { topic_id: second_b }])
            .await;
        assert!(node.controller.image().topics().is_empty());
        node.close();
        let node = open(dir.path());
        assert!(node.controller.image().topics().is_empty());
        node.close();
    }

    #[tokio::test]
    async fn a_partition_whose_log_cannot_be_created_is_offline_until_reconciled() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where the partition's dir must go: creating the log fails.
        let obstacle = dir.path().join("c-0");
        std::fs::write(&obstacle, b"in the way").unwrap();
        let node = open(dir.path());
        node.commit_unchecked(topic("c", Uuid::new_v4(), 2)).await;
        // Committed, hence in the image, whatever the disk did.
        assert!(node.controller.image().topic_by_name("c").is_some());
        assert!(!node.hosts("c", 0) && node.hosts("c", 1));
        let tp = TopicPartition::new("c", 0);
        let refused = node.replica_manager.append_records(
            &tp,
            &mut [],
            1,
            moldau_storage::AppendOrigin::Client,
            None,
        );
        assert!(matches!(
            refused,
            Err(crate::replica_manager::AppendError::Kafka(
                kafka_protocol::ResponseError::KafkaStorageError
            ))
        ));
        node.replica_manager.reconcile();
        assert!(!node.hosts("c", 0));
        node.close();

        // The node starts with the obstacle still there, and heals once it is gone.
        let node = open(dir.path());
        assert!(!node.hosts("c", 0) && node.hosts("c", 1));
        assert!(node.replica_manager.has_pending_effects());
        std::fs::remove_file(&obstacle).unwrap();
        node.replica_manager.reconcile();
        assert!(node.hosts("c", 0));
        assert!(!node.replica_manager.has_pending_effects());
        node.close();
    }
}
