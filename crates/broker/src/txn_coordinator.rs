//! The runtime of the transaction coordinator: drives `moldau_coordinator::txn::TxnShard`s.
//!
//! One shard per `__transaction_state` partition this node leads. The runtime:
//! - creates `__transaction_state` (compacted, `transaction.state.log.num.partitions`
//!   partitions) on the first FindCoordinator for a transactional id;
//! - rebuilds each shard at startup by replaying its partition's log, then finishes every
//!   transaction it finds in PrepareCommit / PrepareAbort;
//! - appends each state change through the replica manager (`AppendOrigin::Coordinator`)
//!   and applies it to the shard only once it is in the log;
//! - writes COMMIT / ABORT markers through [`write_marker`], the path a WriteTxnMarkers
//!   request takes, then records CompleteCommit / CompleteAbort;
//! - every `transaction.abort.timed.out.transaction.cleanup.interval.ms` aborts ongoing
//!   transactions past their timeout and retries markers that failed.
//!
//! Locking: a shard's mutex is held for one decision plus its (synchronous) append, never
//! across an await or while markers are written.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ResponseError;
use moldau_coordinator::txn::{
    MarkerJob, TxnConfig, TxnMetadata, TxnPartition, TxnShard, TxnWrite, TRANSACTION_STATE_TOPIC,
};
use moldau_coordinator::{partition_for, OFFSETS_TOPIC};
use moldau_metadata::MetadataImage;
use moldau_storage::{AppendOrigin, StorageError, TopicPartition};
use parking_lot::{Mutex, RwLock};
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::error::BrokerError;
use crate::internal_log;
use crate::replica_manager::{AppendError, ReplicaManager};
use crate::state::BrokerState;

struct LoadedShard {
    shard: Mutex<TxnShard>,
    /// The leader epoch of the partition at load: the coordinator epoch markers carry.
    coordinator_epoch: i32,
    /// Where each transactional id's last state record ends in the partition (the next
    /// offset), and where the log ended at load for ids not written since: markers go out
    /// only once the high watermark has passed it in `coordinator_epoch`.
    written_to: Mutex<HashMap<String, i64>>,
    loaded_to: i64,
}

type Shard = Arc<LoadedShard>;

pub struct TxnCoordinator {
    config: TxnConfig,
    topic: internal_log::CoordinatorTopic,
    abort_interval_ms: u64,
    node_id: i32,
    replica_manager: Arc<ReplicaManager>,
    shards: RwLock<HashMap<i32, Shard>>,
    /// Transactional ids whose markers are being written (by a request or the timer).
    inflight: Mutex<HashSet<String>>,
    timer_task: Mutex<Option<JoinHandle<()>>>,
    /// The broker, for marker tasks that outlive a request (set at start; weak: the state
    /// owns this coordinator).
    state: std::sync::OnceLock<std::sync::Weak<BrokerState>>,
}

impl TxnCoordinator {
    pub fn new(config: &ServerConfig, replica_manager: Arc<ReplicaManager>) -> Self {
        TxnCoordinator {
            config: config.txn.clone(),
            topic: internal_log::CoordinatorTopic::new(
                TRANSACTION_STATE_TOPIC,
                config.transaction_state_log_num_partitions,
                config.transaction_state_log_segment_bytes,
            ),
            abort_interval_ms: config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
            node_id: config.node_id,
            replica_manager,
            shards: RwLock::new(HashMap::new()),
            inflight: Mutex::new(HashSet::new()),
            timer_task: Mutex::new(None),
            state: std::sync::OnceLock::new(),
        }
    }

    /// Loads every hosted `__transaction_state` partition, completes the transactions left
    /// half-ended, and starts the timeout task.
    pub async fn start(state: &Arc<BrokerState>) -> Result<(), BrokerError> {
        let _ = state.txn_coordinator.state.set(Arc::downgrade(state));
        let this = state.txn_coordinator.clone();
        crate::spawn_blocking(move || this.load_partitions())
            .await
            .map_err(|e| BrokerError::MetadataLog(format!("txn load task failed: {e}")))??;
        state.txn_coordinator.tick(state);
        // Aborted by `shutdown`, which also breaks the Arc cycle.
        let task_state = state.clone();
        let interval = Duration::from_millis(state.txn_coordinator.abort_interval_ms.max(1));
        let task =
            crate::supervisor::spawn_supervised("transaction coordinator timers", move || {
                let task_state = task_state.clone();
                async move {
                    loop {
                        tokio::time::sleep(interval).await;
                        let state = task_state.clone();
                        let tick =
                            crate::spawn_blocking(move || state.txn_coordinator.tick(&state));
                        if let Err(e) = tick.await {
                            // The next tick starts afresh: the shards change only through writes.
                            tracing::error!(error = %e, "transaction coordinator tick failed");
                        }
                    }
                }
            });
        *state.txn_coordinator.timer_task.lock() = Some(task);
        Ok(())
    }

    pub fn shutdown(&self) {
        if let Some(task) = self.timer_task.lock().take() {
            task.abort();
        }
    }

    fn num_partitions(&self) -> i32 {
        self.topic.num_partitions()
    }

    /// The `__transaction_state` partition of a transactional id.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        partition_for(transactional_id, self.num_partitions())
    }

    fn load_partitions(&self) -> Result<(), BrokerError> {
        let to_load =
            self.topic
                .partitions_to_load(&self.replica_manager, self.node_id, |partition_id| {
                    self.shard_at(partition_id).is_some()
                });
        for (partition_id, partition) in to_load {
            let mut shard = TxnShard::new(self.config.clone());
            let mut count = 0usize;
            internal_log::replay(&partition.log, |record| {
                if let Some(key) = record.key {
                    shard.replay(&moldau_coordinator::CoordinatorRecord {
                        key,
                        value: record.value,
                    });
                    count += 1;
                }
                Ok(())
            })?;
            if count > 0 {
                tracing::info!(
                    "loaded {count} records of {TRANSACTION_STATE_TOPIC}-{partition_id}"
                );
            }
            let loaded = LoadedShard {
                shard: Mutex::new(shard),
                coordinator_epoch: partition.leader_epoch,
                written_to: Mutex::new(HashMap::new()),
                loaded_to: partition.log.log_end_offset(),
            };
            self.shards.write().insert(partition_id, Arc::new(loaded));
        }
        Ok(())
    }

    fn shard_at(&self, partition_id: i32) -> Option<Shard> {
        self.shards.read().get(&partition_id).cloned()
    }

    /// Drops the shards of partitions this node no longer leads: the new leader loads
    /// them (and finishes their Prepare* transactions) from its log; leadership that
    /// comes back loads afresh, under the new leader epoch as coordinator epoch.
    pub fn unload_unled_partitions(&self, image: &MetadataImage) {
        let lost =
            self.topic
                .unled_partitions(image, self.node_id, self.shards.read().keys().copied());
        let mut shards = self.shards.write();
        for partition_id in lost {
            shards.remove(&partition_id);
            tracing::info!(
                "unloaded {TRANSACTION_STATE_TOPIC}-{partition_id}: no longer its leader"
            );
        }
    }

    fn shard_for(&self, transactional_id: &str) -> Result<(i32, Shard), ResponseError> {
        let partition_id = self.partition_for(transactional_id);
        self.shard_at(partition_id)
            .map(|shard| (partition_id, shard))
            .ok_or(ResponseError::NotCoordinator)
    }

    /// Loads the shards of `__transaction_state` partitions this node has come to lead since the
    /// last look (called on every metadata change).
    pub async fn load_led_partitions(&self, state: &BrokerState) {
        self.topic
            .load_led(
                state,
                || self.shards.read().len(),
                || self.load_partitions(),
            )
            .await
    }

    /// FindCoordinator for a transactional id: makes sure `__transaction_state` exists and
    /// is loaded.
    pub async fn ensure_state_topic(&self, state: &BrokerState) -> Result<(), ResponseError> {
        self.topic
            .ensure_loaded(
                state,
                || self.shards.read().len(),
                || self.load_partitions(),
            )
            .await
    }

    /// The broker that coordinates `transactional_id` now (the leader of its partition), if
    /// the topic exists and the partition has a leader.
    pub fn coordinator_node(&self, state: &BrokerState, transactional_id: &str) -> Option<i32> {
        self.topic
            .coordinator_of(&state.image(), self.partition_for(transactional_id))
            .ok()
    }

    /// FindCoordinator for a transactional id: the broker leading its `__transaction_state`
    /// partition (this node's shards loaded first, the topic created if missing).
    pub async fn find_coordinator(
        &self,
        state: &BrokerState,
        transactional_id: &str,
    ) -> Result<i32, ResponseError> {
        self.ensure_state_topic(state).await?;
        self.topic
            .coordinator_of(&state.image(), self.partition_for(transactional_id))
    }

    /// Appends a state change to the shard's partition, then applies it. The caller holds
    /// the shard's lock.
    fn write(
        &self,
        partition_id: i32,
        shard: &mut TxnShard,
        write: &TxnWrite,
    ) -> Result<(), ResponseError> {
        self.write_at(partition_id, shard, write).map(drop)
    }

    /// [`Self::write`], returning the offset after the record.
    fn write_at(
        &self,
        partition_id: i32,
        shard: &mut TxnShard,
        write: &TxnWrite,
    ) -> Result<i64, ResponseError> {
        let record = write.record();
        let mut batch = internal_log::encode_batch([(record.key, record.value)], crate::now_ms())
            .map_err(|e| {
            tracing::error!("cannot encode {TRANSACTION_STATE_TOPIC} batch: {e}");
            ResponseError::UnknownServerError
        })?;
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition_id);
        let info = self
            .replica_manager
            .append_records(&tp, &mut batch, 1, AppendOrigin::Coordinator, None)
            .map_err(|e| {
                tracing::warn!("cannot append to {TRANSACTION_STATE_TOPIC}-{partition_id}: {e:?}");
                append_error_code(&e)
            })?;
        shard.apply(write);
        Ok(info.last_offset + 1)
    }

    /// Appends a state change that ends a transaction (Prepare*), noting where it ends so
    /// that its markers wait for it to be replicated.
    fn write_ending(
        &self,
        partition_id: i32,
        shard: &LoadedShard,
        guard: &mut TxnShard,
        write: &TxnWrite,
    ) -> Result<(), ResponseError> {
        let next_offset = self.write_at(partition_id, guard, write)?;
        shard
            .written_to
            .lock()
            .insert(write.transactional_id.clone(), next_offset);
        Ok(())
    }

    /// Where the high watermark must be before `transactional_id`'s markers go out, if it
    /// is not there yet. Kafka sends markers only once the Prepare record is replicated: a
    /// coordinator deposed before then must not have ended the transaction on any
    /// partition, since its successor may not know the Prepare and abort instead.
    fn unreplicated_end(
        &self,
        partition_id: i32,
        shard: &LoadedShard,
        transactional_id: &str,
    ) -> Option<i64> {
        let required = shard
            .written_to
            .lock()
            .get(transactional_id)
            .copied()
            .unwrap_or(shard.loaded_to);
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition_id);
        let replicated = self.replica_manager.partition(&tp).is_some_and(|p| {
            p.leader_epoch == shard.coordinator_epoch && p.log.high_watermark() >= required
        });
        (!replicated).then_some(required)
    }

    /// InitProducerId with a transactional id.
    pub async fn init_producer_id(
        &self,
        state: &BrokerState,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), ResponseError> {
        let (partition_id, shard) = self.shard_for(transactional_id)?;
        let needs = shard.shard.lock().needs_producer_id(transactional_id);
        let fresh = if needs {
            match state.next_producer_id().await {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::error!("cannot allocate a producer id block: {e}");
                    return Err(ResponseError::UnknownServerError);
                }
            }
        } else {
            None
        };
        let outcome = {
            let mut guard = shard.shard.lock();
            let outcome = guard.init_producer_id(
                transactional_id,
                timeout_ms,
                expected,
                fresh,
                crate::now_ms(),
            )?;
            if let Some(write) = &outcome.write {
                self.write_ending(partition_id, &shard, &mut guard, write)?;
            }
            outcome
        };
        if let Some(job) = outcome.markers {
            self.finish(state, partition_id, &shard, job);
        }
        outcome.answer
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TxnPartition],
    ) -> Result<(), ResponseError> {
        let (partition_id, shard) = self.shard_for(transactional_id)?;
        let mut guard = shard.shard.lock();
        let write = guard.add_partitions(
            transactional_id,
            producer_id,
            producer_epoch,
            partitions,
            crate::now_ms(),
        )?;
        match write {
            Some(write) => self.write(partition_id, &mut guard, &write),
            None => Ok(()),
        }
    }

    /// KIP-890 verification: the partitions not in the producer's ongoing transaction.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TxnPartition],
    ) -> Result<Vec<(TxnPartition, ResponseError)>, ResponseError> {
        let (_, shard) = self.shard_for(transactional_id)?;
        let guard = shard.shard.lock();
        guard.verify_partitions(transactional_id, producer_id, producer_epoch, partitions)
    }

    /// EndTxn: writes PrepareCommit / PrepareAbort, the markers, then Complete*.
    pub fn end_txn(
        &self,
        state: &BrokerState,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let (partition_id, shard) = self.shard_for(transactional_id)?;
        let job = {
            let mut guard = shard.shard.lock();
            let Some((write, job)) = guard.end_txn(
                transactional_id,
                producer_id,
                producer_epoch,
                commit,
                crate::now_ms(),
            )?
            else {
                return Ok(());
            };
            self.write_ending(partition_id, &shard, &mut guard, &write)?;
            job
        };
        self.finish(state, partition_id, &shard, job);
        Ok(())
    }

    /// Writes a transaction's markers and, when every partition has its marker, records
    /// the transaction complete. Markers for partitions this node leads are written here;
    /// those led by other brokers go there by WriteTxnMarkers, from a task that completes
    /// the transaction once they all landed. Failed markers are retried by the timer.
    fn finish(&self, state: &BrokerState, partition_id: i32, shard: &Shard, job: MarkerJob) {
        if let Some(required) = self.unreplicated_end(partition_id, shard, &job.transactional_id) {
            self.finish_once_replicated(partition_id, shard, job, required);
            return;
        }
        if !self.inflight.lock().insert(job.transactional_id.clone()) {
            return;
        }
        let image = state.image();
        let mut remote: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
        let mut local: Vec<(TopicPartition, MarkerWritten)> = Vec::new();
        let mut done = true;
        for (topic, partition) in &job.partitions {
            let tp = TopicPartition::new(topic.clone(), *partition);
            let leader = image
                .topic_by_name(topic)
                .and_then(|t| t.partitions.get(partition))
                .map(|p| p.leader);
            if let Some(leader) = leader.filter(|l| *l != state.node_id) {
                remote.entry(leader).or_default().push(tp);
                continue;
            }
            match write_marker(
                state,
                &tp,
                job.producer_id,
                job.producer_epoch,
                shard.coordinator_epoch,
                job.commit,
            ) {
                Ok(written) => local.push((tp, written)),
                // A deleted partition needs no marker (Kafka drops it too).
                Err(ResponseError::UnknownTopicOrPartition) => {}
                Err(e) => {
                    tracing::warn!(
                        "marker for {} on {tp:?} failed ({e:?}); retrying later",
                        job.transactional_id
                    );
                    done = false;
                    break;
                }
            }
        }
        let task_state = self.state.get().and_then(std::sync::Weak::upgrade);
        let replicating = local.iter().any(|(_, w)| w.replicated);
        match task_state {
            Some(task_state) if done && (!remote.is_empty() || replicating) => {
                let shard = shard.clone();
                tokio::spawn(async move {
                    let coordinator = &task_state.txn_coordinator;
                    let epoch = shard.coordinator_epoch;
                    let local_landed = match markers_replicated(&task_state, &local).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(
                                "markers for {} not replicated ({e:?}); retrying later",
                                job.transactional_id
                            );
                            false
                        }
                    };
                    if local_landed && send_markers(&task_state, &job, epoch, remote).await {
                        coordinator.complete(partition_id, &shard, &job);
                    }
                    coordinator.inflight.lock().remove(&job.transactional_id);
                });
            }
            _ => {
                if done && remote.is_empty() && !replicating {
                    self.complete(partition_id, shard, &job);
                }
                self.inflight.lock().remove(&job.transactional_id);
            }
        }
    }

    /// Finishes `job` once its Prepare record (ending before `required`) is replicated; if
    /// that fails (leadership moved, the ISR is away) the timer tries again while this
    /// node still coordinates the transaction.
    fn finish_once_replicated(
        &self,
        partition_id: i32,
        shard: &Shard,
        job: MarkerJob,
        required: i64,
    ) {
        let Some(task_state) = self.state.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        if !self.inflight.lock().insert(job.transactional_id.clone()) {
            return;
        }
        let shard = shard.clone();
        tokio::spawn(async move {
            let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition_id);
            let waited = task_state
                .replica_manager
                .wait_for_replication(
                    &tp,
                    shard.coordinator_epoch,
                    required,
                    MARKER_REPLICATION_TIMEOUT,
                )
                .await;
            let coordinator = &task_state.txn_coordinator;
            coordinator.inflight.lock().remove(&job.transactional_id);
            match waited {
                Ok(()) | Err(ResponseError::NotEnoughReplicasAfterAppend) => {
                    coordinator.finish(&task_state, partition_id, &shard, job);
                }
                Err(e) => tracing::debug!(
                    "prepare of {} not replicated ({e:?}); markers wait",
                    job.transactional_id
                ),
            }
        });
    }

    /// Records a transaction complete once every partition has its marker.
    fn complete(&self, partition_id: i32, shard: &LoadedShard, job: &MarkerJob) {
        let mut guard = shard.shard.lock();
        if let Some(write) = guard.complete(job, crate::now_ms()) {
            match self.write(partition_id, &mut guard, &write) {
                Ok(()) => {
                    shard.written_to.lock().remove(&job.transactional_id);
                }
                Err(e) => tracing::warn!("cannot complete {}: {e:?}", job.transactional_id),
            }
        }
    }

    /// Completes half-ended transactions and aborts timed-out ones. Blocking (log writes).
    fn tick(&self, state: &BrokerState) {
        let shards: Vec<(i32, Shard)> = self
            .shards
            .read()
            .iter()
            .map(|(p, s)| (*p, s.clone()))
            .collect();
        for (partition_id, shard) in shards {
            let pending = shard.shard.lock().pending_markers();
            for job in pending {
                self.finish(state, partition_id, &shard, job);
            }
            let aborts = {
                let mut guard = shard.shard.lock();
                let mut jobs = Vec::new();
                for (write, job) in guard.abort_timed_out(crate::now_ms()) {
                    tracing::info!(
                        "aborting transaction {} past its timeout",
                        write.transactional_id
                    );
                    if self
                        .write_ending(partition_id, &shard, &mut guard, &write)
                        .is_ok()
                    {
                        jobs.push(job);
                    }
                }
                jobs
            };
            for job in aborts {
                self.finish(state, partition_id, &shard, job);
            }
            self.expire_ids(partition_id, &shard);
        }
    }

    /// Forgets transactional ids idle past `transactional.id.expiration.ms` (tombstones).
    fn expire_ids(&self, partition_id: i32, shard: &LoadedShard) {
        let mut guard = shard.shard.lock();
        let tombstones = guard.expired_ids(crate::now_ms());
        if tombstones.is_empty() {
            return;
        }
        let mut batch = match internal_log::encode_batch(
            tombstones.iter().map(|r| (r.key.clone(), r.value.clone())),
            crate::now_ms(),
        ) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!("cannot encode {TRANSACTION_STATE_TOPIC} tombstones: {e}");
                return;
            }
        };
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition_id);
        match self.replica_manager.append_records(
            &tp,
            &mut batch,
            1,
            AppendOrigin::Coordinator,
            None,
        ) {
            Ok(_) => {
                for tombstone in &tombstones {
                    guard.replay(tombstone);
                }
            }
            Err(e) => tracing::warn!("cannot expire transactional ids: {e:?}"),
        }
    }

    /// Every transactional id this node coordinates, with its metadata.
    pub fn transactions(&self) -> Vec<(String, TxnMetadata)> {
        let shards: Vec<Shard> = self.shards.read().values().cloned().collect();
        let mut all: Vec<(String, TxnMetadata)> = shards
            .iter()
            .flat_map(|s| {
                s.shard
                    .lock()
                    .transactions()
                    .map(|(id, m)| (id.clone(), m.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// One transactional id's metadata, or the coordinator error.
    pub fn describe(&self, transactional_id: &str) -> Result<Option<TxnMetadata>, ResponseError> {
        let (_, shard) = self.shard_for(transactional_id)?;
        let guard = shard.shard.lock();
        Ok(guard.get(transactional_id).cloned())
    }
}

/// Writes one COMMIT / ABORT marker to a partition this node leads: the work of one
/// partition of a WriteTxnMarkers request, which the coordinator calls directly for local
/// partitions.
pub fn write_marker(
    state: &BrokerState,
    tp: &TopicPartition,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
) -> Result<MarkerWritten, ResponseError> {
    let partition = state
        .replica_manager
        .partition(tp)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    if partition.leader != state.node_id {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    partition
        .log
        .append_control_marker(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            commit,
            partition.leader_epoch,
            crate::now_ms(),
        )
        .map_err(|e| {
            ResponseError::try_from_code(e.kafka_error_code())
                .unwrap_or(ResponseError::UnknownServerError)
        })?;
    if tp.topic == OFFSETS_TOPIC {
        // Offsets committed in the transaction become visible with its COMMIT marker.
        state
            .group_coordinator
            .complete_txn_offsets(tp.partition, producer_id, commit);
    }
    state.replica_manager.after_leader_append(&partition);
    Ok(MarkerWritten {
        leader_epoch: partition.leader_epoch,
        next_offset: partition.log.log_end_offset(),
        replicated: partition.replicas.len() > 1,
    })
}

/// Where a marker went: it counts once the high watermark passes `next_offset` in
/// `leader_epoch` (at once with one replica).
#[derive(Clone, Copy, Debug)]
pub struct MarkerWritten {
    pub leader_epoch: i32,
    pub next_offset: i64,
    pub replicated: bool,
}

/// How long a marker waits to reach the ISR before the coordinator is told it failed
/// (and retries): within the coordinator's [`INTER_BROKER_TIMEOUT`].
pub const MARKER_REPLICATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for a written marker to reach the ISR.
pub async fn marker_replicated(
    state: &BrokerState,
    tp: &TopicPartition,
    written: MarkerWritten,
) -> Result<(), ResponseError> {
    if !written.replicated {
        return Ok(());
    }
    state
        .replica_manager
        .wait_for_replication(
            tp,
            written.leader_epoch,
            written.next_offset,
            MARKER_REPLICATION_TIMEOUT,
        )
        .await
}

/// Waits for written markers to reach the ISR; the first failure, if any.
async fn markers_replicated(
    state: &BrokerState,
    written: &[(TopicPartition, MarkerWritten)],
) -> Result<(), ResponseError> {
    let waits = written
        .iter()
        .map(|(tp, w)| marker_replicated(state, tp, *w));
    futures_util::future::join_all(waits)
        .await
        .into_iter()
        .collect()
}

/// Kafka's mapping of a failed coordinator append to what the client sees.
fn append_error_code(error: &AppendError) -> ResponseError {
    match error {
        AppendError::Kafka(ResponseError::NotLeaderOrFollower) => ResponseError::NotCoordinator,
        AppendError::Kafka(_) => ResponseError::CoordinatorNotAvailable,
        AppendError::Storage(StorageError::MessageTooLarge { .. })
        | AppendError::Storage(StorageError::RecordListTooLarge(_)) => {
            ResponseError::UnknownServerError
        }
        AppendError::Storage(_) => ResponseError::NotCoordinator,
    }
}

/// How long a partition leader waits for a remote coordinator's verification, and a
/// coordinator for a remote partition leader's markers.
const INTER_BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// KIP-890 verification by a coordinator on another broker: AddPartitionsToTxn v4 with
/// `verify_only`, as Kafka's partition leaders send it. A coordinator that cannot be
/// reached is NOT_COORDINATOR to the caller (retriable, like a moving coordinator).
pub async fn verify_remotely(
    state: &BrokerState,
    coordinator: i32,
    transactional_id: &str,
    (producer_id, producer_epoch): (i64, i16),
    tp: &TopicPartition,
) -> Result<(), ResponseError> {
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    use kafka_protocol::messages::{
        AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId,
    };
    use kafka_protocol::protocol::StrBytes;
    let addr = state
        .broker_addr(coordinator)
        .ok_or(ResponseError::NotCoordinator)?;
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(
                transactional_id.to_string(),
            )))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(true)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                .with_partitions(vec![tp.partition])]),
    ]);
    let response = state
        .inter_broker
        .send(&addr, &request, 5, INTER_BROKER_TIMEOUT)
        .await
        .map_err(|e| {
            tracing::debug!(%e, "transaction verification not answered");
            ResponseError::NotCoordinator
        })?;
    if let Some(error) = ResponseError::try_from_code(response.error_code) {
        return Err(error);
    }
    let error = response
        .results_by_transaction
        .iter()
        .flat_map(|t| t.topic_results.iter())
        .flat_map(|t| t.results_by_partition.iter())
        .find_map(|p| ResponseError::try_from_code(p.partition_error_code));
    error.map_or(Ok(()), Err)
}

/// Sends a transaction's markers to the brokers leading its other partitions (one
/// WriteTxnMarkers per broker, as Kafka's marker channel). True when every partition took
/// its marker (or no longer exists).
async fn send_markers(
    state: &BrokerState,
    job: &MarkerJob,
    coordinator_epoch: i32,
    remote: HashMap<i32, Vec<TopicPartition>>,
) -> bool {
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
    use kafka_protocol::protocol::StrBytes;
    let mut all_landed = true;
    for (leader, partitions) in remote {
        let mut topics: HashMap<String, Vec<i32>> = HashMap::new();
        for tp in &partitions {
            topics
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
        let marker = WritableTxnMarker::default()
            .with_producer_id(ProducerId(job.producer_id))
            .with_producer_epoch(job.producer_epoch)
            .with_transaction_result(job.commit)
            .with_coordinator_epoch(coordinator_epoch)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        WritableTxnMarkerTopic::default()
                            .with_name(TopicName(StrBytes::from_string(name)))
                            .with_partition_indexes(partitions)
                    })
                    .collect(),
            );
        let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
        let Some(addr) = state.broker_addr(leader) else {
            all_landed = false;
            continue;
        };
        match state
            .inter_broker
            .send(&addr, &request, 1, INTER_BROKER_TIMEOUT)
            .await
        {
            Ok(response) => {
                let failed = response
                    .markers
                    .iter()
                    .flat_map(|m| m.topics.iter())
                    .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
                    .filter(|(_, p)| {
                        !matches!(
                            ResponseError::try_from_code(p.error_code),
                            None | Some(ResponseError::UnknownTopicOrPartition)
                        )
                    })
                    .map(|(t, p)| {
                        format!(
                            "{}-{}: {}",
                            t.name.as_str(),
                            p.partition_index,
                            p.error_code
                        )
                    })
                    .collect::<Vec<_>>();
                if !failed.is_empty() {
                    tracing::warn!(
                        "markers for {} refused by broker {leader} ({}); retrying later",
                        job.transactional_id,
                        failed.join(", ")
                    );
                    all_landed = false;
                }
            }
            Err(e) => {
                tracing::warn!(
                    "markers for {} not sent to broker {leader} ({e}); retrying later",
                    job.transactional_id
                );
                all_landed = false;
            }
        }
    }
    all_landed
}
