//! The replica manager: the partitions this node hosts, their logs and high watermarks.
//!
//! It follows the metadata image (as a [`MetadataPublisher`]): a partition assigned to this
//! node gets a log, a deleted topic's logs go away, and so does the log of a replica moved
//! off this node (Kafka's StopReplica with delete), a topic config change (or a dynamic
//! broker default, for topics without their own override) reaches its logs.
//! Produce appends through it; Fetch reads through it and parks on a partition's
//! high-watermark channel to be woken by appends rather than by polling.
//!
//! Invariant: a partition is in the map only if the published image assigns it to this
//! node. Publishing never fails: a log that cannot be opened or created leaves its partition
//! offline (clients get KAFKA_STORAGE_ERROR) and a removed topic's log that cannot be
//! deleted stays pending; [`ReplicaManager::reconcile`] retries both against the image.
//!
//! A replica moved off this node leaves the map at once (it serves nothing from then on);
//! its log is deleted by the next [`ReplicaManager::reconcile`], if the latest image still
//! does not assign the partition here. Deleting at publish time would act on every
//! intermediate image a restarting node replays: a partition moved away and back again
//! would lose the log it holds now. Reconcile runs only once the node has caught up with
//! the metadata (it starts after the broker is unfenced), every 2 s; a partition assigned
//! here again before that keeps its log (the follower's truncation rules apply to it).

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
use tokio::sync::{mpsc, watch};

use crate::config::ReplicationConfig;
use crate::controller::MetadataPublisher;
use crate::error::BrokerError;
use crate::leader_state::{LeaderState, PendingIsrChange};
use crate::replication_quota::{ReplicationQuota, Throttles};
use crate::topic_configs::dynamic_log_defaults;

pub struct Partition {
    pub log: Arc<Log>,
    pub topic_id: Uuid,
    pub replicas: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
    /// Survives the metadata changes that replace this snapshot of the partition.
    shared: Arc<PartitionShared>,
}

struct PartitionShared {
    /// Carries the high watermark; consumers' fetches and acks=all produces wait on it.
    high_watermark_tx: watch::Sender<i64>,
    /// Carries the log end offset; followers' fetches wait on it.
    log_end_tx: watch::Sender<i64>,
    /// The followers' progress, while this node leads the partition.
    leader_state: Mutex<Option<LeaderState>>,
}

impl Partition {
    /// The high watermark's channel: changed by appends that move it, by follower
    /// fetches, and by every metadata change of the partition (leadership moves wake
    /// waiters, which then look again).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.shared.high_watermark_tx.subscribe()
    }

    /// The log end offset's channel (followers' long polls).
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.shared.log_end_tx.subscribe()
    }
}

/// An ISR change the leader asks the controller for (Kafka's AlterPartition item).
#[derive(Clone, Debug)]
pub struct IsrChangeRequest {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// Each member with the broker epoch it fetched with (the leader: its own).
    pub new_isr: Vec<(i32, i64)>,
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
    replication: ReplicationConfig,
    /// ISR changes for the AlterPartition sender; at most one in flight per partition
    /// (the leader state's `pending`), so the queue is bounded by the partitions led here.
    isr_change_tx: mpsc::UnboundedSender<IsrChangeRequest>,
    isr_change_rx: Mutex<Option<mpsc::UnboundedReceiver<IsrChangeRequest>>>,
    /// The replication throttles of the published image (see `replication_quota`).
    throttles: RwLock<Arc<Throttles>>,
    leader_quota: ReplicationQuota,
    follower_quota: ReplicationQuota,
}

#[derive(Default)]
struct PendingEffects {
    /// Assigned partitions whose log could not be opened or created (offline), with why.
    offline: HashMap<TopicPartition, String>,
    /// Partitions of removed topics whose log is not deleted yet, with the topic id.
    deletions: HashMap<TopicPartition, Uuid>,
    /// Replicas moved off this node whose log is still here, with the topic id; deleted by
    /// `reconcile` unless the partition is assigned here again first.
    removed_replicas: HashMap<TopicPartition, Uuid>,
    /// The last published image, which `reconcile` works from.
    image: Option<Arc<MetadataImage>>,
}

impl ReplicaManager {
    pub fn new(
        node_id: i32,
        log_manager: Arc<LogManager>,
        log_defaults: LogConfig,
        replication: ReplicationConfig,
    ) -> Self {
        let (isr_change_tx, isr_change_rx) = mpsc::unbounded_channel();
        ReplicaManager {
            node_id,
            log_manager,
            effective_log_defaults: RwLock::new(Arc::new(log_defaults.clone())),
            log_defaults,
            partitions: RwLock::new(HashMap::new()),
            pending: Mutex::new(PendingEffects::default()),
            replication,
            isr_change_tx,
            isr_change_rx: Mutex::new(Some(isr_change_rx)),
            throttles: RwLock::new(Arc::new(Throttles::default())),
            leader_quota: ReplicationQuota::default(),
            follower_quota: ReplicationQuota::default(),
        }
    }

    /// Whether the leader holds back `replica_id`'s fetch of `partition` now: a throttled
    /// replica outside the ISR while the leader's replication rate is exceeded (Kafka's
    /// `shouldLeaderThrottle`). `Some(false)`: throttled but within the rate (count its
    /// bytes with [`Self::record_leader_throttled_bytes`]); `None`: not throttled.
    pub fn leader_throttle(&self, partition: &Partition, replica_id: i32) -> Option<bool> {
        let throttles = self.throttles.read().clone();
        let tp = partition.log.topic_partition();
        if !throttles.leader.contains(&tp.topic, tp.partition)
            || partition.isr.contains(&replica_id)
        {
            return None;
        }
        Some(
            self.leader_quota
                .is_exceeded(throttles.leader_rate, crate::now_ms()),
        )
    }

    pub fn record_leader_throttled_bytes(&self, bytes: u64) {
        self.leader_quota.record(bytes, crate::now_ms());
    }

    /// This follower's throttle on `partition` (Kafka's `shouldFollowerThrottle`): `None`
    /// when not throttled (listed and this node outside the ISR); else `Some(rate)`, the
    /// follower rate (bytes/s, `None`: unlimited) and whether it is exceeded now.
    pub fn follower_throttle(&self, partition: &Partition) -> Option<(Option<u64>, bool)> {
        let throttles = self.throttles.read().clone();
        let tp = partition.log.topic_partition();
        if !throttles.follower.contains(&tp.topic, tp.partition)
            || partition.isr.contains(&self.node_id)
        {
            return None;
        }
        let exceeded = self
            .follower_quota
            .is_exceeded(throttles.follower_rate, crate::now_ms());
        Some((throttles.follower_rate, exceeded))
    }

    pub fn record_follower_throttled_bytes(&self, bytes: u64) {
        self.follower_quota.record(bytes, crate::now_ms());
    }

    /// The ISR changes leaders ask for, for the one AlterPartition sender (None after the
    /// first call).
    pub fn take_isr_changes(&self) -> Option<mpsc::UnboundedReceiver<IsrChangeRequest>> {
        self.isr_change_rx.lock().take()
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
        !pending.offline.is_empty()
            || !pending.deletions.is_empty()
            || !pending.removed_replicas.is_empty()
    }

    /// Retries failed side effects against the last published image: deletes what removed
    /// topics left and the logs of replicas moved off this node (unless assigned here
    /// again), and opens (or re-creates) the logs of offline partitions still assigned
    /// here. Under the partitions lock, so it never acts on an image older than one
    /// `publish` already applied.
    pub fn reconcile(&self) {
        let mut map = self.partitions.write();
        let (image, offline, deletions, removed_replicas) = {
            let mut pending = self.lock_pending();
            let Some(image) = pending.image.clone() else {
                return;
            };
            (
                image,
                pending.offline.keys().cloned().collect::<Vec<_>>(),
                pending.deletions.clone(),
                std::mem::take(&mut pending.removed_replicas),
            )
        };
        for (tp, topic_id) in deletions {
            self.delete_partition(&tp, topic_id);
        }
        for (tp, topic_id) in removed_replicas {
            if self.assigned_here(&image, &tp) {
                continue;
            }
            // The log's own topic id: whatever topic of this name wrote it, no replica of
            // the partition is assigned here.
            let topic_id = self
                .log_manager
                .get_log(&tp)
                .and_then(|log| log.topic_id())
                .unwrap_or(topic_id);
            if self.delete_partition(&tp, topic_id) {
                tracing::info!(%tp, "deleted the log of a replica moved off this node");
            }
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

    /// Whether `image` assigns a replica of `tp` to this node.
    fn assigned_here(&self, image: &MetadataImage, tp: &TopicPartition) -> bool {
        image
            .topic_by_name(&tp.topic)
            .and_then(|topic| topic.partitions.get(&tp.partition))
            .is_some_and(|p| p.replicas.contains(&self.node_id))
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
        let removed_id = {
            let mut pending = self.lock_pending();
            // Assigned here again before its log went: the log stays (a follower's
            // truncation on fetch brings it in line with the leader).
            if pending.removed_replicas.remove(tp).is_some() {
                tracing::info!(%tp, "replica assigned to this node again; its log is kept");
            }
            pending.deletions.get(tp).copied()
        };
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
    /// high watermark as far as the ISR allows. acks=-1 is refused with
    /// NOT_ENOUGH_REPLICAS when the ISR is below `min.insync.replicas`; waiting for the
    /// high watermark to pass the records is the caller's ([`Self::wait_for_replication`]).
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
            let min_isr = partition.log.min_insync_replicas();
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
        self.after_leader_append(&partition);
        Ok(info)
    }

    /// After anything is appended to a partition this node leads (records, markers):
    /// wakes waiting followers and moves the high watermark if the ISR allows.
    pub fn after_leader_append(&self, partition: &Partition) {
        partition
            .shared
            .log_end_tx
            .send_replace(partition.log.log_end_offset());
        self.maybe_increment_high_watermark(partition);
    }

    /// Waits until the high watermark passes `required_offset` (Kafka's DelayedProduce
    /// for acks=-1), or leadership moves (NOT_LEADER_OR_FOLLOWER), or `timeout` passes
    /// (REQUEST_TIMED_OUT). Once passed, NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR is
    /// below `min.insync.replicas`, as Kafka answers.
    pub async fn wait_for_replication(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        required_offset: i64,
        timeout: std::time::Duration,
    ) -> Result<(), kafka_protocol::ResponseError> {
        use kafka_protocol::ResponseError as E;
        self.wait_while_leading(tp, leader_epoch, timeout, |partition| {
            (partition.log.high_watermark() >= required_offset).then(|| {
                let min_isr = partition.log.min_insync_replicas();
                if (partition.isr.len() as i32) < min_isr {
                    Err(E::NotEnoughReplicasAfterAppend)
                } else {
                    Ok(())
                }
            })
        })
        .await
    }

    /// Waits until the low watermark of a partition this node leads in `leader_epoch`
    /// reaches `required_offset` (Kafka's DelayedDeleteRecords): every follower on a live
    /// broker has moved its log start there. Returns the low watermark; REQUEST_TIMED_OUT
    /// past `timeout`, NOT_LEADER_OR_FOLLOWER if leadership moves.
    pub async fn wait_for_low_watermark(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        required_offset: i64,
        timeout: std::time::Duration,
    ) -> Result<i64, kafka_protocol::ResponseError> {
        use kafka_protocol::ResponseError as E;
        self.wait_while_leading(tp, leader_epoch, timeout, |partition| {
            let image = self.published_image();
            let alive = |id: i32| Self::isr_eligible(image.as_deref(), id);
            match partition.shared.leader_state.lock().as_ref() {
                Some(leader) => {
                    let low_watermark =
                        leader.low_watermark(partition.log.log_start_offset(), alive);
                    (low_watermark >= required_offset).then_some(Ok(low_watermark))
                }
                None => Some(Err(E::NotLeaderOrFollower)),
            }
        })
        .await
    }

    /// Kafka's delayed operations on a led partition: `done` is asked on every change of
    /// the partition's high-watermark channel (follower progress, appends, metadata) until
    /// it answers, while this node leads in `leader_epoch` (else NOT_LEADER_OR_FOLLOWER),
    /// for at most `timeout` (then REQUEST_TIMED_OUT).
    async fn wait_while_leading<T>(
        &self,
        tp: &TopicPartition,
        leader_epoch: i32,
        timeout: std::time::Duration,
        done: impl Fn(&Partition) -> Option<Result<T, kafka_protocol::ResponseError>>,
    ) -> Result<T, kafka_protocol::ResponseError> {
        use kafka_protocol::ResponseError as E;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut watcher = self
            .partition(tp)
            .ok_or(E::NotLeaderOrFollower)?
            .subscribe();
        loop {
            watcher.mark_unchanged();
            let partition = self.partition(tp).ok_or(E::NotLeaderOrFollower)?;
            if partition.leader != self.node_id || partition.leader_epoch != leader_epoch {
                return Err(E::NotLeaderOrFollower);
            }
            if let Some(outcome) = done(&partition) {
                return outcome;
            }
            match tokio::time::timeout_at(deadline, watcher.changed()).await {
                Err(_) => return Err(E::RequestTimedOut),
                // The partition's channel closed: it left this node.
                Ok(Err(_)) => return Err(E::NotLeaderOrFollower),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Waits until everything in a led partition's log as of now is replicated to the ISR:
    /// a coordinator's writes count once they are (Kafka's coordinators append with
    /// acks=-1), so a leader change never loses what a client was told.
    pub async fn wait_for_log_end_replicated(
        &self,
        tp: &TopicPartition,
        timeout: std::time::Duration,
    ) -> Result<(), kafka_protocol::ResponseError> {
        let partition = self
            .partition(tp)
            .filter(|p| p.leader == self.node_id)
            .ok_or(kafka_protocol::ResponseError::NotLeaderOrFollower)?;
        let required_offset = partition.log.log_end_offset();
        self.wait_for_replication(tp, partition.leader_epoch, required_offset, timeout)
            .await
    }

    /// Moves a led partition's high watermark up to what the ISR allows; true if it moved.
    fn maybe_increment_high_watermark(&self, partition: &Partition) -> bool {
        // KIP-966's strict min ISR: below `min.insync.replicas` the high watermark stays,
        // so the replicas that left the ISR meanwhile (the eligible leader replicas) hold
        // every committed record and may lead if the ISR empties.
        if (partition.isr.len() as i32) < partition.log.min_insync_replicas() {
            return false;
        }
        let log_end_offset = partition.log.log_end_offset();
        let now_ms = crate::now_ms();
        let image = self.published_image();
        let eligible = |id: i32| Self::isr_eligible(image.as_deref(), id);
        let high_watermark = match partition.shared.leader_state.lock().as_ref() {
            Some(leader) => leader.high_watermark(
                &partition.isr,
                log_end_offset,
                now_ms,
                self.replication.replica_lag_time_max_ms,
                eligible,
            ),
            None => return false,
        };
        if high_watermark <= partition.log.high_watermark() {
            return false;
        }
        partition.log.update_high_watermark(high_watermark);
        partition
            .shared
            .high_watermark_tx
            .send_replace(partition.log.high_watermark());
        true
    }

    /// A follower's log end offset as this leader last saw it (None: not a follower
    /// here, or not fetched in this leader epoch).
    pub fn follower_log_end_offset(&self, partition: &Partition, replica_id: i32) -> Option<i64> {
        let leader_state = partition.shared.leader_state.lock();
        let log_end_offset = leader_state.as_ref()?.follower(replica_id)?.log_end_offset;
        (log_end_offset >= 0).then_some(log_end_offset)
    }

    /// Kafka's `isReplicaIsrEligible`: a registered, unfenced broker.
    fn isr_eligible(image: Option<&MetadataImage>, broker_id: i32) -> bool {
        image
            .and_then(|image| image.brokers.get(&broker_id))
            .is_some_and(|b| !b.fenced)
    }

    /// A follower fetched `fetch_offset` from a partition this node leads: records its
    /// progress, moves the high watermark, and asks for its return to the ISR once it
    /// has caught up. NOT_LEADER_OR_FOLLOWER if `replica_id` is not a follower here.
    pub fn update_follower_fetch(
        &self,
        partition: &Partition,
        replica_id: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        log_start_offset: i64,
    ) -> Result<(), kafka_protocol::ResponseError> {
        let now_ms = crate::now_ms();
        let (updated, log_start_moved) = match partition.shared.leader_state.lock().as_mut() {
            Some(leader) => {
                leader.update_follower_broker_epoch(replica_id, broker_epoch);
                (
                    leader.update_follower(
                        replica_id,
                        fetch_offset,
                        partition.log.log_end_offset(),
                        now_ms,
                    ),
                    leader.update_follower_log_start(replica_id, log_start_offset),
                )
            }
            None => (false, false),
        };
        if !updated {
            return Err(kafka_protocol::ResponseError::NotLeaderOrFollower);
        }
        if !self.maybe_increment_high_watermark(partition) && log_start_moved {
            // A DeleteRecords may be waiting for this follower's log start.
            self.notify(partition);
        }
        self.maybe_change_isr(partition, now_ms);
        Ok(())
    }

    /// Asks the controller to shrink the ISR of out-of-sync followers or to expand it
    /// with caught-up ones, unless a change is already in flight.
    fn maybe_change_isr(&self, partition: &Partition, now_ms: i64) {
        let image = self.published_image();
        let registered_epoch = |id: i32| {
            image
                .as_deref()
                .and_then(|image| image.brokers.get(&id))
                .filter(|b| !b.fenced)
                .map(|b| b.broker_epoch)
        };
        let mut guard = partition.shared.leader_state.lock();
        let Some(leader) = guard.as_mut() else {
            return;
        };
        let Some(new_isr) = leader.isr_change(
            &partition.isr,
            partition.log.log_end_offset(),
            partition.log.high_watermark(),
            now_ms,
            self.replication.replica_lag_time_max_ms,
            registered_epoch,
        ) else {
            return;
        };
        let own_epoch = registered_epoch(self.node_id).unwrap_or(-1);
        let new_isr_with_epochs: Vec<(i32, i64)> = new_isr
            .iter()
            .map(|id| match *id == self.node_id {
                true => (*id, own_epoch),
                false => (
                    *id,
                    leader
                        .follower(*id)
                        .and_then(|f| f.broker_epoch)
                        .unwrap_or(-1),
                ),
            })
            .collect();
        leader.pending = Some(PendingIsrChange {
            isr: new_isr.clone(),
            committed_partition_epoch: None,
        });
        let tp = partition.log.topic_partition().clone();
        tracing::info!(%tp, isr = ?partition.isr, ?new_isr, "asking the controller to change the ISR");
        let _ = self.isr_change_tx.send(IsrChangeRequest {
            tp,
            topic_id: partition.topic_id,
            leader_epoch: partition.leader_epoch,
            partition_epoch: partition.partition_epoch,
            new_isr: new_isr_with_epochs,
        });
    }

    /// Kafka's ISR expiration pass (every `replica.lag.time.max.ms / 2`): every partition
    /// led here drops followers that fell behind, and its high watermark moves if that
    /// lets it.
    pub fn shrink_isrs(&self) {
        let now_ms = crate::now_ms();
        for (_, partition) in self.partitions() {
            if partition.leader == self.node_id && partition.isr.len() > 1 {
                self.maybe_change_isr(&partition, now_ms);
            }
        }
    }

    /// The controller answered an ISR change: committed at `Ok(partition_epoch)` (it
    /// stays pending until the image shows it), or refused (no longer pending; the next
    /// fetch or expiration pass decides again from the image).
    pub fn isr_change_completed(&self, request: &IsrChangeRequest, result: Result<i32, String>) {
        let Some(partition) = self.partition(&request.tp) else {
            return;
        };
        let mut guard = partition.shared.leader_state.lock();
        let Some(leader) = guard
            .as_mut()
            .filter(|l| l.leader_epoch == request.leader_epoch)
        else {
            return;
        };
        match result {
            Ok(partition_epoch) => {
                if let Some(pending) = leader.pending.as_mut() {
                    pending.committed_partition_epoch = Some(partition_epoch);
                }
                leader.observe_partition_epoch(partition.partition_epoch);
            }
            Err(why) if why == "NewLeaderElected" => {
                // Committed, and it completed a reassignment that moved the leadership.
                tracing::info!(tp = %request.tp, new_isr = ?request.new_isr, "ISR change committed with a new leader");
                leader.pending = None;
            }
            Err(why) => {
                tracing::warn!(tp = %request.tp, new_isr = ?request.new_isr, %why, "ISR change refused");
                leader.pending = None;
            }
        }
    }

    /// Wakes fetchers of a partition whose log changed outside append (DeleteRecords).
    pub fn notify(&self, partition: &Partition) {
        partition
            .shared
            .high_watermark_tx
            .send_replace(partition.log.high_watermark());
    }

    /// After a follower appended fetched records or moved its marks: wakes local
    /// readers of the high watermark.
    pub fn notify_follower_progress(&self, partition: &Partition) {
        partition
            .shared
            .log_end_tx
            .send_replace(partition.log.log_end_offset());
        self.notify(partition);
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
        let shared = match existing {
            Some(p) => p.shared.clone(),
            None => Arc::new(PartitionShared {
                high_watermark_tx: watch::channel(log.high_watermark()).0,
                log_end_tx: watch::channel(log.log_end_offset()).0,
                leader_state: Mutex::new(None),
            }),
        };
        {
            let mut leader_state = shared.leader_state.lock();
            if state.leader != self.node_id {
                *leader_state = None;
            } else {
                match leader_state.as_mut() {
                    Some(leader) if leader.leader_epoch == state.leader_epoch => {
                        leader.update_replicas(&state.replicas);
                        leader.observe_partition_epoch(state.partition_epoch);
                    }
                    _ => {
                        // A new leader epoch starts at this log's end; a fresh partition
                        // (epoch 0, empty) has nothing for any follower to diverge from.
                        if state.leader_epoch > 0 || log.log_end_offset() > 0 {
                            log.assign_epoch_start_offset(state.leader_epoch);
                        }
                        *leader_state = Some(LeaderState::new(
                            self.node_id,
                            state.leader_epoch,
                            &state.replicas,
                            &state.isr,
                            log.log_end_offset(),
                            crate::now_ms(),
                        ));
                    }
                }
            }
        }
        let partition = Partition {
            log,
            topic_id,
            replicas: state.replicas.clone(),
            leader: state.leader,
            leader_epoch: state.leader_epoch,
            isr: state.isr.clone(),
            partition_epoch: state.partition_epoch,
            shared,
        };
        if partition.leader == self.node_id {
            // The ISR may have shrunk: the mark may move.
            self.maybe_increment_high_watermark(&partition);
        }
        // Leadership or the ISR changed: waiters look again (acks=-1 produces answer
        // NOT_LEADER_OR_FOLLOWER once leadership left).
        self.notify(&partition);
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
                {
                    let mut pending = self.lock_pending();
                    pending.offline.remove(&tp);
                    pending.removed_replicas.remove(&tp);
                }
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
        if delta.changed_configs().next().is_some() || !delta.deleted_topics().is_empty() {
            *self.throttles.write() = Arc::new(Throttles::of(image, self.node_id));
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
                    let hosted = map.remove(&tp).is_some();
                    let mut pending = self.lock_pending();
                    pending.offline.remove(&tp);
                    // A replica moved off this node (or a stray log found at start): its
                    // log goes once `reconcile` confirms it against the latest image.
                    if hosted || self.log_manager.get_log(&tp).is_some() {
                        pending.removed_replicas.insert(tp, topic_id);
                    }
                    continue;
                }
                self.open_partition(&mut map, image, &tp, topic_id, state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use moldau_metadata::MetadataRecord;
    use moldau_storage::LogManagerConfig;

    use super::*;

    const TOPIC: Uuid = Uuid::from_u128(3);

    /// Node 1's replica manager on a fresh dir.
    fn node(dir: &std::path::Path) -> (Arc<LogManager>, ReplicaManager) {
        let log_manager =
            LogManager::open(LogManagerConfig::new(dir), LogConfig::default()).expect("open logs");
        let replica_manager = ReplicaManager::new(
            1,
            log_manager.clone(),
            LogConfig::default(),
            ReplicationConfig::default(),
        );
        (log_manager, replica_manager)
    }

    /// Publishes `records` on top of `image`, as the state machine does.
    fn publish(
        rm: &ReplicaManager,
        image: &Arc<MetadataImage>,
        records: &[MetadataRecord],
    ) -> Arc<MetadataImage> {
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            delta.replay(image.offset + 1 + i as i64, record).unwrap();
        }
        let next = Arc::new(delta.current().clone());
        rm.publish(&delta, &next);
        next
    }

    fn created() -> Vec<MetadataRecord> {
        let mut records: Vec<MetadataRecord> = (1..=2)
            .map(|id| MetadataRecord::RegisterBroker {
                broker_id: id,
                broker_epoch: id as i64,
                host: "h".into(),
                port: 1,
                rack: None,
                fenced: false,
                incarnation_id: None,
                listeners: vec![],
            })
            .collect();
        records.push(MetadataRecord::Topic {
            name: "t".into(),
            topic_id: TOPIC,
        });
        records.push(MetadataRecord::Partition {
            topic_id: TOPIC,
            partition_id: 0,
            replicas: vec![1],
            isr: vec![1],
            adding_replicas: vec![],
            removing_replicas: vec![],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
        });
        records
    }

    fn moved_to(replicas: &[i32]) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            topic_id: TOPIC,
            partition_id: 0,
            leader: Some(replicas[0]),
            isr: Some(replicas.to_vec()),
            replicas: Some(replicas.to_vec()),
            adding_replicas: None,
            removing_replicas: None,
            eligible_leader_replicas: None,
            last_known_elr: None,
        }
    }

    fn append_one(rm: &ReplicaManager, tp: &TopicPartition) {
        let mut batch = crate::internal_log::encode_batch(
            [(
                bytes::Bytes::from_static(b"k"),
                Some(bytes::Bytes::from_static(b"v")),
            )],
            1,
        )
        .unwrap();
        rm.append_records(tp, &mut batch, 1, AppendOrigin::Client, None)
            .map_err(|e| format!("{e:?}"))
            .unwrap();
    }

    #[test]
    fn a_replica_moved_off_this_node_leaves_at_once_and_its_log_goes_at_reconcile() {
        let dir = tempfile::tempdir().unwrap();
        let (log_manager, rm) = node(dir.path());
        let tp = TopicPartition::new("t", 0);
        let image = publish(&rm, &Arc::new(MetadataImage::empty()), &created());
        assert!(rm.partition(&tp).is_some());
        append_one(&rm, &tp);
        let image = publish(&rm, &image, &[moved_to(&[2])]);
        // Serves nothing at once; the log waits for the reconcile pass.
        assert!(rm.partition(&tp).is_none());
        assert!(dir.path().join("t-0").exists());
        assert!(rm.has_pending_effects());
        rm.reconcile();
        assert!(!dir.path().join("t-0").exists());
        assert!(log_manager.get_log(&tp).is_none());
        assert!(!rm.has_pending_effects());
        // Assigned here again: a new, empty log (the follower fetches it all).
        publish(&rm, &image, &[moved_to(&[2, 1])]);
        let back = rm.partition(&tp).expect("hosted again");
        assert_eq!(back.log.log_end_offset(), 0);
        log_manager.shutdown().unwrap();
    }

    #[test]
    fn a_replica_moved_away_and_back_before_reconcile_keeps_its_log() {
        // What a restarting node replaying an away-and-back move sees: the log it holds
        // now must survive the intermediate image.
        let dir = tempfile::tempdir().unwrap();
        let (log_manager, rm) = node(dir.path());
        let tp = TopicPartition::new("t", 0);
        let image = publish(&rm, &Arc::new(MetadataImage::empty()), &created());
        append_one(&rm, &tp);
        let image = publish(&rm, &image, &[moved_to(&[2])]);
        publish(&rm, &image, &[moved_to(&[1])]);
        rm.reconcile();
        let kept = rm.partition(&tp).expect("hosted");
        assert_eq!(kept.log.log_end_offset(), 1);
        assert!(!rm.has_pending_effects());
        log_manager.shutdown().unwrap();
    }

    #[test]
    fn a_stray_log_found_at_start_is_deleted_once_reconciled() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("t", 0);
        {
            let (log_manager, rm) = node(dir.path());
            publish(&rm, &Arc::new(MetadataImage::empty()), &created());
            append_one(&rm, &tp);
            log_manager.shutdown().unwrap();
        }
        // The node restarts on a snapshot in which the partition moved away meanwhile.
        let (log_manager, rm) = node(dir.path());
        let mut records = created();
        records.push(moved_to(&[2]));
        publish(&rm, &Arc::new(MetadataImage::empty()), &records);
        assert!(rm.partition(&tp).is_none());
        assert!(rm.has_pending_effects());
        rm.reconcile();
        assert!(!dir.path().join("t-0").exists());
        log_manager.shutdown().unwrap();
    }
}
