//! The metadata quorum controller, as a quorum of one.
//!
//! Every metadata change is a batch of [`MetadataRecord`]s appended to the metadata log
//! (`__cluster_metadata-0`), flushed, replayed into a [`MetadataDelta`], handed to the
//! publisher (the broker side, which creates and deletes partition logs) and then published
//! as the new immutable [`MetadataImage`]. Writes are serialized by one lock, so a check made
//! against the current image inside [`Controller::write`] cannot be raced by another write.
//!
//! The cluster work replaces the local append + flush with a Raft commit; nothing else here
//! (or in the broker) needs to change shape.

use std::sync::{Arc, RwLock};

use bytes::Bytes;
use moldau_metadata::{MetadataDelta, MetadataImage, MetadataRecord};
use moldau_storage::{AppendOrigin, Log};

use crate::error::BrokerError;
use crate::internal_log;

/// The metadata topic partition, as Kafka names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Reacts to committed metadata before readers see the new image.
pub trait MetadataPublisher: Send + Sync {
    fn publish(&self, delta: &MetadataDelta, image: &Arc<MetadataImage>)
        -> Result<(), BrokerError>;
}

pub struct Controller {
    metadata_log: Arc<Log>,
    publisher: Arc<dyn MetadataPublisher>,
    write_lock: tokio::sync::Mutex<()>,
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
            let metadata_record = MetadataRecord::decode(value)
                .map_err(|e| BrokerError::MetadataLog(format!("offset {}: {e}", record.offset)))?;
            delta
                .replay(record.offset, &metadata_record)
                .map_err(|e| BrokerError::MetadataLog(e.to_string()))
        })?;
        metadata_log.update_high_watermark(end);
        let image = Arc::new(delta.current().clone());
        publisher.publish(&delta, &image)?;
        Ok(Controller {
            metadata_log,
            publisher,
            write_lock: tokio::sync::Mutex::new(()),
            image: RwLock::new(image),
        })
    }

    /// The latest published image. Cheap: readers share it and never lock while using it.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().expect("image lock poisoned").clone()
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
        let _guard = self.write_lock.lock().await;
        let image = self.image();
        let (records, out) = decide(&image)?;
        if !records.is_empty() {
            self.commit(&image, &records)?;
        }
        Ok(out)
    }

    fn commit(&self, image: &MetadataImage, records: &[MetadataRecord]) -> Result<(), BrokerError> {
        let now_ms = crate::now_ms();
        let mut batch = internal_log::encode_batch(
            records.iter().map(|r| {
                (
                    Bytes::from_static(r.type_name().as_bytes()),
                    Some(Bytes::from(r.encode())),
                )
            }),
            now_ms,
        )?;
        let info =
            self.metadata_log
                .append_as_leader(&mut batch, 0, AppendOrigin::Coordinator, now_ms)?;
        // A metadata change is acknowledged only once it is on disk, as a Raft commit would be.
        self.metadata_log.flush()?;
        self.metadata_log
            .update_high_watermark(self.metadata_log.log_end_offset());
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            delta
                .replay(info.first_offset + i as i64, record)
                .map_err(|e| BrokerError::MetadataLog(e.to_string()))?;
        }
        let next = Arc::new(delta.current().clone());
        self.publisher.publish(&delta, &next)?;
        *self.image.write().expect("image lock poisoned") = next;
        Ok(())
    }
}
