//! The replica manager: the partitions this node hosts, their logs and high watermarks.
//!
//! It follows the metadata image (as a [`MetadataPublisher`]): a partition assigned to this
//! node gets a log, a deleted topic's logs go away, a topic config change (or a dynamic
//! broker default, for topics without their own override) reaches its logs.
//! Produce appends through it; Fetch reads through it and parks on a partition's
//! high-watermark channel to be woken by appends rather than by polling.
//!
//! Invariant: a partition is in the map only if the published image assigns it to this
//! node. Publishing never fails: a log that cannot be opened or created leaves its partition
//! offline (clients get KAFKA_STORAGE_ERROR) and a removed topic's log that cannot be
//! deleted stays pending; [`ReplicaManager::reconcile`] retries both against the image.

use std::collections::HashMap;
use std::sync::Arc;

use moldau_metadata::{
    ConfigResource, ConfigResourceType, MetadataDelta, MetadataImage, PartitionImage,
};
use moldau_storage::{
    AppendOrigin, Log, LogAppendInfo, LogConfig, LogManager, StorageError, TopicPartition, Uuid,
    VerificationGuard,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::controller::MetadataPublisher;
use crate::error::BrokerError;
use crate::topic_configs::dynamic_log_defaults;

pub struct Partition {
    pub log: Arc<Log>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// Carries the high watermark; Fetch waits on it.
    high_watermark_tx: Arc<watch::Sender<i64>>,
}

impl Partition {
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark_tx.subscribe()
    }
}

/// Why an append was refused before reaching the log, as Kafka error codes.
#[derive(Debug)]
pub enum AppendError {
    Kafka(kafka_protocol::ResponseError),
    Storage(StorageError),
}

pub struct ReplicaManager {
    node_id: i32,
    log_manager: Arc<LogManager>,
    /// Topic defaults from `server.properties`.
    log_defaults: LogConfig,
    /// `log_defaults` with the dynamic broker configs of the published image applied.
    effective_log_defaults: RwLock<Arc<LogConfig>>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Side effects of committed metadata that failed, retried by `reconcile`.
    pending: Mutex<PendingEffects>,
}

#[derive(Default)]
struct PendingEffects {
    /// Assigned partitions whose log could not be opened or created (offline), with why.
    offline: HashMap<TopicPartition, String>,
    /// Partitions of removed topics whose log is not deleted yet, with the topic id.
    deletions: HashMap<TopicPartition, Uuid>,
    /// The last published image, which `reconcile` works from.
    image: Option<Arc<MetadataImage>>,
}

impl ReplicaManager {
    pub fn new(node_id: i32, log_manager: Arc<LogManager>, log_defaults: LogConfig) -> Self {
        ReplicaManager {
            node_id,
            log_manager,
            effective_log_defaults: RwLock::new(Arc::new(log_defaults.clone())),
            log_defaults,
            partitions: RwLock::new(HashMap::new()),
            pending: Mutex::new(PendingEffects::default()),
        }
    }

    /// What a client gets for a partition this node does not serve: KAFKA_STORAGE_ERROR
    /// while its log is offline, NOT_LEADER_OR_FOLLOWER when the partition exists on other
    /// brokers (the client's metadata is stale, as Kafka answers), else
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub fn missing_partition_error(&self, tp: &TopicPartition) -> kafka_protocol::ResponseError {
        use kafka_protocol::ResponseError as E;
        let pending = self.lock_pending();
        if pending.offline.contains_key(tp) {
            return E::KafkaStorageError;
        }
        let elsewhere = pending.image.as_ref().is_some_and(|image| {
            image
                .topic_by_name(&tp.topic)
                .and_then(|topic| topic.partitions.get(&tp.partition))
                .is_some_and(|p| !p.replicas.contains(&self.node_id))
        });
        if elsewhere {
            E::NotLeaderOrFollower
        } else {
            E::UnknownTopicOrPartition
        }
    }

    /// The last image published to this replica manager (None before the first).
    pub fn published_image(&self) -> Option<Arc<MetadataImage>> {
        self.lock_pending().image.clone()
    }

    /// Whether some committed change is not yet reflected on disk.
    pub fn has_pending_effects(&self) -> bool {
        let pending = self.lock_pending();
        !pending.offline.is_empty() || !pending.deletions.is_empty()
    }

    /// Retries failed side effects against the last published image: deletes what removed
    /// topics left and opens (or re-creates) the logs of offline partitions still assigned
    /// here. Under the partitions lock, so it never acts on an image older than one
    /// `publish` already applied.
    pub fn reconcile(&self) {
        let mut map = self.partitions.write();
        let (image, offline, deletions) = {
            let pending = self.lock_pending();
            let Some(image) = pending.image.clone() else {
                return;
            };
            (
                image,
                pending.offline.keys().cloned().collect::<Vec<_>>(),
                pending.deletions.clone(),
            )
        };
        for (tp, topic_id) in deletions {
            self.delete_partition(&tp, topic_id);
        }
        for tp in offline {
            let assigned = image.topic_by_name(&tp.topic).and_then(|topic| {
                let state = topic.partitions.get(&tp.partition)?;
                state
                    .replicas
                    .contains(&self.node_id)
                    .then_some((topic.topic_id, state))
            });
            match assigned {
                Some((topic_id, state)) => {
                    self.open_partition(&mut map, &image, &tp, topic_id, state)
                }
                None => {
                    self.lock_pending().offline.remove(&tp);
                }
            }
        }
    }

    fn lock_pending(&self) -> parking_lot::MutexGuard<'_, PendingEffects> {
        self.pending.lock()
    }

    /// Deletes a removed topic's partition log, or leaves it pending. A log whose delete
    /// failed half way (out of the manager, dir still there) is reopened to delete again.
    fn delete_partition(&self, tp: &TopicPartition, topic_id: Uuid) -> bool {
        let result = (|| {
            if self.log_manager.get_log(tp).is_none() {
                if !self.log_manager.log_dir().join(tp.dir_name()).exists() {
                    return Ok(());
                }
                let config = self.log_manager.default_log_config().clone();
                self.log_manager.get_or_create_log(tp, topic_id, config)?;
            }
            self.log_manager.delete_log(tp, topic_id)
        })();
        let mut pending = self.lock_pending();
        match result {
            Ok(()) => {
                if pending.deletions.remove(tp).is_some() {
                    tracing::info!(%tp, "deleted the log of a removed topic on retry");
                }
                true
            }
            Err(e) => {
                if pending.deletions.insert(tp.clone(), topic_id).is_none() {
                    tracing::error!(%tp, %e, "could not delete the log of a removed topic; will retry");
                }
                false
            }
        }
    }

    /// Opens or creates an assigned partition's log and puts it in the map; on failure the
    /// partition is offline until `reconcile` succeeds.
    fn open_partition(
        &self,
        map: &mut HashMap<TopicPartition, Arc<Partition>>,
        image: &MetadataImage,
        tp: &TopicPartition,
        topic_id: Uuid,
        state: &PartitionImage,
    ) {
        let removed_id = self.lock_pending().deletions.get(tp).copied();
        // A re-created topic must not pick up the removed one's log.
        let result = if removed_id.is_some_and(|id| !self.delete_partition(tp, id)) {
            Err("the log of a removed topic of that name is not deleted yet".to_string())
        } else {
            self.make_partition(image, tp, topic_id, state, map.get(tp))
                .map_err(|e| e.to_string())
        };
        let mut pending = self.lock_pending();
        match result {
            Ok(partition) => {
                map.insert(tp.clone(), Arc::new(partition));
                if pending.offline.remove(tp).is_some() {
                    tracing::info!(%tp, "partition log opened on retry: online");
                }
            }
            // An open log stays in service (say, a config it could not take); a new one is offline.
            Err(e) if map.contains_key(tp) => {
                tracing::error!(%tp, %e, "could not apply metadata to the partition log");
            }
            Err(e) => {
                if pending.offline.insert(tp.clone(), e.clone()).is_none() {
                    tracing::error!(%tp, %e, "partition offline: could not open its log; will retry");
                }
            }
        }
    }

    pub fn log_manager(&self) -> &Arc<LogManager> {
        &self.log_manager
    }

    pub fn partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }

    /// The partition, or the error a client gets for one this node does not serve
    /// ([`Self::missing_partition_error`]).
    pub fn hosted_partition(
        &self,
        tp: &TopicPartition,
    ) -> Result<Arc<Partition>, kafka_protocol::ResponseError> {
        self.partition(tp)
            .ok_or_else(|| self.missing_partition_error(tp))
    }

    pub fn partitions(&self) -> Vec<(TopicPartition, Arc<Partition>)> {
        let map = self.partitions.read();
        let mut all: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The effective log config of a topic: broker defaults (static and dynamic) plus the
    /// topic's overrides.
    pub fn topic_log_config(
        &self,
        image: &MetadataImage,
        topic: &str,
    ) -> Result<LogConfig, StorageError> {
        let resource = ConfigResource {
            resource_type: ConfigResourceType::Topic,
            name: topic.to_string(),
        };
        let defaults = self.effective_log_defaults();
        match image.configs(&resource) {
            Some(overrides) => Ok(LogConfig::with_overrides(
                &defaults,
                overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )?),
            None => Ok((*defaults).clone()),
        }
    }

    /// The static topic defaults (`server.properties`), without dynamic broker configs.
    pub fn log_defaults(&self) -> &LogConfig {
        &self.log_defaults
    }

    /// The topic defaults in force: static defaults with dynamic broker configs applied.
    pub fn effective_log_defaults(&self) -> Arc<LogConfig> {
        self.effective_log_defaults.read().clone()
    }

    /// Appends a produce request's records for one partition as leader and advances the
    /// high watermark to the minimum log end offset over the ISR (this node alone until
    /// replication lands).
    pub fn append_records(
        &self,
        tp: &TopicPartition,
        records: &mut [u8],
        required_acks: i16,
        origin: AppendOrigin,
        verification_guard: Option<VerificationGuard>,
    ) -> Result<LogAppendInfo, AppendError> {
        use kafka_protocol::ResponseError as E;
        let partition = self
            .partition(tp)
            .ok_or_else(|| AppendError::Kafka(self.missing_partition_error(tp)))?;
        if partition.leader != self.node_id {
            return Err(AppendError::Kafka(E::NotLeaderOrFollower));
        }
        if required_acks == -1 {
            let min_isr = partition.log.config().min_insync_replicas;
            if (partition.isr.len() as i32) < min_isr {
                return Err(AppendError::Kafka(E::NotEnoughReplicas));
            }
        }
        let now_ms = crate::now_ms();
        let info = match verification_guard {
            Some(guard) => partition.log.append_as_leader_verified(
                records,
                partition.leader_epoch,
                origin,
                now_ms,
                guard,
            ),
            None => partition
                .log
                .append_as_leader(records, partition.leader_epoch, origin, now_ms),
        }
        .map_err(AppendError::Storage)?;
        self.advance_high_watermark(&partition);
        Ok(info)
    }

    fn advance_high_watermark(&self, partition: &Partition) {
        // With this node the only ISR member, the HW is its log end offset.
        let high_watermark = partition.log.log_end_offset();
        partition.log.update_high_watermark(high_watermark);
        partition.high_watermark_tx.send_replace(high_watermark);
    }

    /// Wakes fetchers of a partition whose log changed outside append (DeleteRecords).
    pub fn notify(&self, partition: &Partition) {
        partition
            .high_watermark_tx
            .send_replace(partition.log.high_watermark());
    }

    fn make_partition(
        &self,
        image: &MetadataImage,
        tp: &TopicPartition,
        topic_id: Uuid,
        state: &PartitionImage,
        existing: Option<&Arc<Partition>>,
    ) -> Result<Partition, BrokerError> {
        let config = self.topic_log_config(image, &tp.topic)?;
        let log = self
            .log_manager
            .get_or_create_log(tp, topic_id, config.clone())?;
        log.update_config(config);
        let high_watermark_tx = match existing {
            Some(p) => p.high_watermark_tx.clone(),
            None => Arc::new(watch::channel(log.high_watermark()).0),
        };
        let partition = Partition {
            log,
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            isr: state.isr.clone(),
            high_watermark_tx,
        };
        if partition.leader == self.node_id {
            self.advance_high_watermark(&partition);
        }
        Ok(partition)
    }
}

impl MetadataPublisher for ReplicaManager {
    fn publish(&self, delta: &MetadataDelta, image: &Arc<MetadataImage>) {
        let mut map = self.partitions.write();
        self.lock_pending().image = Some(image.clone());
        for topic in delta.deleted_topics() {
            for partition_id in topic.partitions.keys() {
                let tp = TopicPartition::new(topic.name.clone(), *partition_id);
                map.remove(&tp);
                self.lock_pending().offline.remove(&tp);
                self.delete_partition(&tp, topic.topic_id);
            }
        }
        let mut touched: Vec<Uuid> = delta.changed_topics().copied().collect();
        let node_name = self.node_id.to_string();
        let mut defaults_changed = false;
        for resource in delta.changed_configs() {
            match resource.resource_type {
                ConfigResourceType::Topic => {
                    if let Some(topic) = image.topic_by_name(&resource.name) {
                        touched.push(topic.topic_id);
                    }
                }
                ConfigResourceType::Broker => {
                    defaults_changed |= resource.name.is_empty() || resource.name == node_name;
                }
            }
        }
        if defaults_changed {
            // Dynamic broker defaults apply to every topic without its own override.
            let defaults = dynamic_log_defaults(&self.log_defaults, image, self.node_id);
            *self.effective_log_defaults.write() = Arc::new(defaults);
            touched.extend(image.topics().iter().map(|t| t.topic_id));
        }
        touched.sort();
        touched.dedup();
        for topic_id in touched {
            let Some(topic) = image.topic_by_id(&topic_id) else {
                continue;
            };
            for (partition_id, state) in &topic.partitions {
                let tp = TopicPartition::new(topic.name.clone(), *partition_id);
                if !state.replicas.contains(&self.node_id) {
                    map.remove(&tp);
                    self.lock_pending().offline.remove(&tp);
                    continue;
                }
                self.open_partition(&mut map, image, &tp, topic_id, state);
            }
        }
    }
}
