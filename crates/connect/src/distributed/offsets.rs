//! Source offsets in the offsets topic (`offset.storage.topic`), Kafka's
//! `KafkaOffsetBackingStore`: keys `["<connector>",{partition}]` partitioned by murmur2 as
//! Java's producer does, so Kafka's workers and tools find them where they look.

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::storage::{encode_offset_value, OffsetKey, OffsetMap};
use crate::worker::offsets::{OffsetStore, OffsetTable};
use crate::worker::WorkerError;

use super::kafka_log::KafkaLog;

pub struct KafkaOffsetStore {
    log: KafkaLog,
    table: Mutex<OffsetTable>,
    /// One refresh at a time (they read the same consumer).
    reading: tokio::sync::Mutex<()>,
}

impl KafkaOffsetStore {
    /// Reads the whole topic.
    pub async fn open(log: KafkaLog) -> Result<KafkaOffsetStore, WorkerError> {
        let store = KafkaOffsetStore {
            log,
            table: Mutex::new(OffsetTable::default()),
            reading: tokio::sync::Mutex::new(()),
        };
        store.refresh().await?;
        Ok(store)
    }
}

#[async_trait]
impl OffsetStore for KafkaOffsetStore {
    fn connector_offsets(&self, connector: &str) -> Vec<(OffsetMap, OffsetMap)> {
        self.table.lock().connector_offsets(connector)
    }

    async fn write(
        &self,
        connector: &str,
        entries: Vec<(OffsetMap, Option<OffsetMap>)>,
    ) -> Result<(), WorkerError> {
        let bad = |e: crate::storage::StorageError| WorkerError::Offsets(e.to_string());
        for (partition, offset) in &entries {
            let key = OffsetKey::new(connector, partition.clone());
            let bytes = key.encode().map_err(bad)?;
            let value = encode_offset_value(offset.as_ref()).map_err(bad)?;
            let p = key.topic_partition(self.log.partitions()).map_err(bad)?;
            self.log.send(&bytes, value.as_deref(), Some(p)).await?;
        }
        self.table.lock().apply(connector, &entries)
    }

    fn note_committed(&self, connector: &str, entries: &[(OffsetMap, Option<OffsetMap>)]) {
        if let Err(e) = self.table.lock().apply(connector, entries) {
            tracing::warn!("offsets of {connector}: {e}");
        }
    }

    fn topic(&self) -> Option<(String, i32)> {
        Some((self.log.topic().to_string(), self.log.partitions()))
    }

    async fn refresh(&self) -> Result<(), WorkerError> {
        let _reading = self.reading.lock().await;
        let records = self.log.read_to_end().await?;
        let mut table = self.table.lock();
        for m in records {
            use rdkafka::Message;
            let Some(key) = m.key() else { continue };
            match m.payload() {
                Some(v) => {
                    table.entries.insert(key.to_vec(), v.to_vec());
                }
                None => {
                    table.entries.remove(key);
                }
            }
        }
        Ok(())
    }
}
