//! The runtime of the group coordinator: drives `moldau_coordinator::GroupShard`s.
//!
//! One shard per `__consumer_offsets` partition this node leads. The runtime:
//! - creates `__consumer_offsets` (compacted, `offsets.topic.num.partitions` partitions,
//!   `offsets.topic.segment.bytes` segments) on the first FindCoordinator for a group;
//! - rebuilds each shard at startup by replaying its partition's log;
//! - appends the records a shard returns through the replica manager
//!   (`AppendOrigin::Coordinator`) and only then delivers the shard's answers, so a commit
//!   is acknowledged only once it is in the log;
//! - parks JoinGroup and SyncGroup requests on oneshot channels the shard answers later;
//! - fires the shards' timers (sessions, rebalance timeouts, initial delay, offset expiry)
//!   from one tokio task woken at the earliest deadline or after any request.
//!
//! Locking: a shard's mutex is held for one operation plus its (synchronous) append, never
//! across an await.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest, OffsetCommitResponse,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::ResponseError;
use moldau_coordinator::records::{decode_key, RecordKey};
use moldau_coordinator::{
    partition_for, CoordinatorRecord, Effects, FetchedOffset, GroupConfig, GroupShard, ListedGroup,
    RequestInfo, TopicInfo, Topics, Waiter, OFFSETS_TOPIC,
};
use moldau_metadata::MetadataImage;
use moldau_storage::{AppendOrigin, Log, StorageError, TopicPartition, Uuid};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::api::RequestContext;
use crate::config::ServerConfig;
use crate::error::BrokerError;
use crate::internal_log;
use crate::replica_manager::{AppendError, ReplicaManager};
use crate::state::BrokerState;

enum Parked {
    Join(oneshot::Sender<JoinGroupResponse>),
    Sync(oneshot::Sender<SyncGroupResponse>),
}

pub struct GroupCoordinator {
    config: GroupConfig,
    /// offsets.topic.num.partitions: the partition count `__consumer_offsets` is created with.
    topic: internal_log::CoordinatorTopic,
    node_id: i32,
    replica_manager: Arc<ReplicaManager>,
    shards: RwLock<HashMap<i32, Arc<Mutex<GroupShard>>>>,
    /// Requests waiting on a shard, with the shard's partition.
    parked: Mutex<HashMap<Waiter, (i32, Parked)>>,
    next_waiter: AtomicU64,
    timer_wake: Notify,
    timer_task: Mutex<Option<JoinHandle<()>>>,
    /// TxnOffsetCommit offsets held until their transaction's marker reaches the group's
    /// partition: (partition, producer id) -> offset commit records.
    pending_txn_offsets: Mutex<HashMap<(i32, i64), Vec<CoordinatorRecord>>>,
    /// OffsetCommit records appended but not yet below the high watermark, by partition,
    /// in log order with the log end offset the high watermark must reach: OffsetFetch
    /// serves only replicated commits (a commit the ISR never got is lost with its leader).
    pending_offsets: Mutex<HashMap<i32, Vec<PendingCommit>>>,
}

type Shard = Arc<Mutex<GroupShard>>;

/// An appended OffsetCommit's records and the log end offset after them.
type PendingCommit = (i64, Vec<CoordinatorRecord>);

/// OffsetFetch's answer for one group: by topic, each partition's committed offset and
/// the error that stands in for it (UNSTABLE_OFFSET_COMMIT), if any.
pub type FetchedTopics = Vec<(String, Vec<(FetchedOffset, Option<ResponseError>)>)>;

impl GroupCoordinator {
    pub fn new(config: &ServerConfig, replica_manager: Arc<ReplicaManager>) -> Self {
        GroupCoordinator {
            config: config.group.clone(),
            topic: internal_log::CoordinatorTopic::new(
                OFFSETS_TOPIC,
                config.offsets_topic_num_partitions,
                config.offsets_topic_segment_bytes,
            ),
            node_id: config.node_id,
            replica_manager,
            shards: RwLock::new(HashMap::new()),
            parked: Mutex::new(HashMap::new()),
            next_waiter: AtomicU64::new(1),
            timer_wake: Notify::new(),
            timer_task: Mutex::new(None),
            pending_txn_offsets: Mutex::new(HashMap::new()),
            pending_offsets: Mutex::new(HashMap::new()),
        }
    }

    /// Loads every hosted `__consumer_offsets` partition and starts the timer task.
    pub async fn start(self: &Arc<Self>) -> Result<(), BrokerError> {
        let this = self.clone();
        crate::spawn_blocking(move || this.load_partitions())
            .await
            .map_err(|e| BrokerError::MetadataLog(format!("group load task failed: {e}")))??;
        // Aborted by `shutdown`, which also breaks the Arc cycle.
        let this = self.clone();
        let task = crate::supervisor::spawn_supervised("group coordinator timers", move || {
            let this = this.clone();
            async move {
                loop {
                    let wait_ms = this.fire_timers();
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
                        _ = this.timer_wake.notified() => {}
                    }
                }
            }
        });
        *self.timer_task.lock() = Some(task);
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

    /// Builds a shard for each hosted partition that has none yet, replaying its log.
    fn load_partitions(&self) -> Result<(), BrokerError> {
        let now_ms = crate::now_ms();
        let to_load =
            self.topic
                .partitions_to_load(&self.replica_manager, self.node_id, |partition_id| {
                    self.shard_at(partition_id).is_some()
                });
        for (partition_id, partition) in to_load {
            self.pending_offsets.lock().remove(&partition_id);
            let mut shard = GroupShard::new(self.config.clone());
            let (count, pending) = replay_log(&partition.log, &mut shard, now_ms)?;
            shard.finish_load(now_ms);
            let mut held = self.pending_txn_offsets.lock();
            for (producer_id, records) in pending {
                held.insert((partition_id, producer_id), records);
            }
            drop(held);
            if count > 0 {
                tracing::info!("loaded {count} records of {OFFSETS_TOPIC}-{partition_id}");
            }
            self.shards
                .write()
                .insert(partition_id, Arc::new(Mutex::new(shard)));
        }
        Ok(())
    }

    /// Drops the shards of partitions this node no longer leads (Kafka's coordinator
    /// unload on resignation): their groups are served by the new leader, which loads
    /// them from its log; requests parked on them are answered COORDINATOR_NOT_AVAILABLE
    /// (clients look the coordinator up again). Leadership that comes back loads afresh.
    pub fn unload_unled_partitions(&self, image: &MetadataImage) {
        let lost =
            self.topic
                .unled_partitions(image, self.node_id, self.shards.read().keys().copied());
        if lost.is_empty() {
            return;
        }
        let mut shards = self.shards.write();
        for partition_id in &lost {
            shards.remove(partition_id);
            tracing::info!("unloaded {OFFSETS_TOPIC}-{partition_id}: no longer its leader");
        }
        drop(shards);
        self.pending_txn_offsets
            .lock()
            .retain(|(partition_id, _), _| !lost.contains(partition_id));
        self.pending_offsets
            .lock()
            .retain(|partition_id, _| !lost.contains(partition_id));
        self.parked
            .lock()
            .retain(|_, (partition_id, _)| !lost.contains(partition_id));
    }

    fn shard_at(&self, partition_id: i32) -> Option<Shard> {
        self.shards.read().get(&partition_id).cloned()
    }

    /// The `__consumer_offsets` partition of a group.
    pub fn partition_for_group(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.num_partitions())
    }

    /// The partition and shard coordinating `group_id`, or NOT_COORDINATOR.
    fn shard_for(&self, group_id: &str) -> Result<(i32, Shard), ResponseError> {
        let partition_id = partition_for(group_id, self.num_partitions());
        self.shard_at(partition_id)
            .map(|shard| (partition_id, shard))
            .ok_or(ResponseError::NotCoordinator)
    }

    /// Loads the shards of `__consumer_offsets` partitions this node has come to lead since the
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

    /// FindCoordinator for a group: makes sure `__consumer_offsets` exists and is loaded.
    pub async fn ensure_offsets_topic(&self, state: &BrokerState) -> Result<(), ResponseError> {
        self.topic
            .ensure_loaded(
                state,
                || self.shards.read().len(),
                || self.load_partitions(),
            )
            .await
    }

    /// FindCoordinator for a group: the broker leading its `__consumer_offsets` partition
    /// (this node's shards loaded first, the topic created if missing).
    pub async fn find_coordinator(
        &self,
        state: &BrokerState,
        group_id: &str,
    ) -> Result<i32, ResponseError> {
        self.ensure_offsets_topic(state).await?;
        self.topic
            .coordinator_of(&state.image(), self.partition_for_group(group_id))
    }

    fn park(&self, partition_id: i32, parked: Parked) -> Waiter {
        let waiter = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        self.parked.lock().insert(waiter, (partition_id, parked));
        waiter
    }

    /// Appends `records` to the shard's partition. The caller holds the shard's lock.
    fn append(
        &self,
        partition_id: i32,
        records: &[CoordinatorRecord],
    ) -> Result<(), ResponseError> {
        if records.is_empty() {
            return Ok(());
        }
        let now_ms = crate::now_ms();
        let mut batch = internal_log::encode_batch(
            records.iter().map(|r| (r.key.clone(), r.value.clone())),
            now_ms,
        )
        .map_err(|e| {
            tracing::error!("cannot encode {OFFSETS_TOPIC} batch: {e}");
            ResponseError::UnknownServerError
        })?;
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition_id);
        self.replica_manager
            .append_records(&tp, &mut batch, 1, AppendOrigin::Coordinator, None)
            .map(|_| ())
            .map_err(|e| {
                tracing::warn!("cannot append to {OFFSETS_TOPIC}-{partition_id}: {e:?}");
                append_error_code(&e)
            })
    }

    /// Writes a shard's effects, then delivers its answers (or the write error).
    fn complete(&self, partition_id: i32, shard: &mut GroupShard, fx: Effects, now_ms: i64) {
        let mut fx = fx;
        if let Err(error) = self.append(partition_id, &fx.records) {
            if let Some((group_id, generation)) = fx.assignment_written.take() {
                let waiters: Vec<Waiter> = fx.sync_replies.drain(..).map(|(w, _)| w).collect();
                let failed =
                    shard.assignment_write_failed(&group_id, generation, &waiters, error, now_ms);
                fx.join_replies.extend(failed.join_replies);
                fx.sync_replies = failed.sync_replies;
            }
        } else {
            shard.apply_written(&fx.records, now_ms);
        }
        let mut parked = self.parked.lock();
        for (waiter, response) in fx.join_replies {
            if let Some((_, Parked::Join(tx))) = parked.remove(&waiter) {
                let _ = tx.send(response);
            }
        }
        for (waiter, response) in fx.sync_replies {
            if let Some((_, Parked::Sync(tx))) = parked.remove(&waiter) {
                let _ = tx.send(response);
            }
        }
        drop(parked);
        // Deadlines may have moved earlier.
        self.timer_wake.notify_one();
    }

    /// Fires due timers of every shard; returns how long to sleep until the next deadline.
    fn fire_timers(&self) -> u64 {
        let shards: Vec<(i32, Shard)> = self
            .shards
            .read()
            .iter()
            .map(|(p, s)| (*p, s.clone()))
            .collect();
        let now_ms = crate::now_ms();
        let mut next = now_ms + 60_000;
        for (partition_id, shard) in shards {
            let mut shard = shard.lock();
            if shard.next_deadline_ms() <= now_ms {
                let fx = shard.tick(now_ms);
                self.complete(partition_id, &mut shard, fx, now_ms);
            }
            next = next.min(shard.next_deadline_ms());
        }
        (next - crate::now_ms()).clamp(1, 60_000) as u64
    }

    pub async fn join_group(
        &self,
        info: RequestInfo,
        request: JoinGroupRequest,
    ) -> JoinGroupResponse {
        let (partition_id, shard) = match self.shard_for(request.group_id.as_str()) {
            Ok(found) => found,
            Err(e) => return join_error(&request, e),
        };
        let (tx, rx) = oneshot::channel();
        let waiter = self.park(partition_id, Parked::Join(tx));
        {
            let mut shard = shard.lock();
            let fresh_id = Uuid::new_v4().to_string();
            let fx = shard.join_group(&info, waiter, &request, &fresh_id);
            self.complete(partition_id, &mut shard, fx, info.now_ms);
        }
        rx.await
            .unwrap_or_else(|_| join_error(&request, ResponseError::CoordinatorNotAvailable))
    }

    pub async fn sync_group(
        &self,
        info: RequestInfo,
        request: SyncGroupRequest,
    ) -> SyncGroupResponse {
        let error = |e: ResponseError| SyncGroupResponse::default().with_error_code(e.code());
        let (partition_id, shard) = match self.shard_for(request.group_id.as_str()) {
            Ok(found) => found,
            Err(e) => return error(e),
        };
        let (tx, rx) = oneshot::channel();
        let waiter = self.park(partition_id, Parked::Sync(tx));
        {
            let mut shard = shard.lock();
            let fx = shard.sync_group(&info, waiter, &request);
            self.complete(partition_id, &mut shard, fx, info.now_ms);
        }
        rx.await
            .unwrap_or_else(|_| error(ResponseError::CoordinatorNotAvailable))
    }

    pub fn heartbeat(
        &self,
        info: RequestInfo,
        request: &HeartbeatRequest,
    ) -> Result<(), ResponseError> {
        let (_, shard) = self.shard_for(request.group_id.as_str())?;
        let mut shard = shard.lock();
        shard.heartbeat(&info, request)
    }

    pub fn leave_group(
        &self,
        info: RequestInfo,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> (Option<ResponseError>, Vec<MemberResponse>) {
        let (partition_id, shard) = match self.shard_for(group_id) {
            Ok(found) => found,
            Err(e) => return (Some(e), vec![]),
        };
        let mut shard = shard.lock();
        let (fx, error, members) = shard.leave_group(&info, group_id, members);
        self.complete(partition_id, &mut shard, fx, info.now_ms);
        (error, members)
    }

    /// Commits offsets; the answer is sent only after the records are appended.
    pub fn commit_offsets(
        &self,
        info: RequestInfo,
        request: &OffsetCommitRequest,
    ) -> Result<OffsetCommitResponse, ResponseError> {
        let (partition_id, shard) = self.shard_for(request.group_id.as_str())?;
        let mut shard = shard.lock();
        let (records, mut response) = shard.commit_offsets(&info, request);
        match self.append(partition_id, &records) {
            Ok(()) => {
                // Visible once replicated (`apply_replicated_offsets`), as Kafka's pending
                // offset commits.
                let tp = TopicPartition::new(OFFSETS_TOPIC, partition_id);
                let log_end = self
                    .replica_manager
                    .partition(&tp)
                    .map_or(i64::MAX, |p| p.log.log_end_offset());
                if !records.is_empty() {
                    self.pending_offsets
                        .lock()
                        .entry(partition_id)
                        .or_default()
                        .push((log_end, records));
                }
                self.apply_replicated_offsets(partition_id, &mut shard);
            }
            Err(error) => {
                for p in response
                    .topics
                    .iter_mut()
                    .flat_map(|t| t.partitions.iter_mut())
                {
                    if p.error_code == 0 {
                        p.error_code = error.code();
                    }
                }
            }
        }
        Ok(response)
    }

    /// Applies, in log order, the pending offset commits of `partition_id` that the high
    /// watermark has passed. The caller holds the shard's lock.
    fn apply_replicated_offsets(&self, partition_id: i32, shard: &mut GroupShard) {
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition_id);
        let Some(partition) = self.replica_manager.partition(&tp) else {
            return;
        };
        let high_watermark = partition.log.high_watermark();
        let mut pending = self.pending_offsets.lock();
        let Some(queue) = pending.get_mut(&partition_id) else {
            return;
        };
        let due = queue
            .iter()
            .take_while(|(end, _)| *end <= high_watermark)
            .count();
        let now_ms = crate::now_ms();
        for (_, records) in queue.drain(..due) {
            shard.apply_written(&records, now_ms);
        }
    }

    /// After an OffsetCommit's write reached the ISR: makes it (and earlier ones) visible.
    pub fn offsets_replicated(&self, group_id: &str) {
        if let Ok((partition_id, shard)) = self.shard_for(group_id) {
            let mut shard = shard.lock();
            self.apply_replicated_offsets(partition_id, &mut shard);
        }
    }

    /// TxnOffsetCommit: validates the commit as OffsetCommit does (member, generation) and
    /// holds the offsets until the transaction ends ([`Self::complete_txn_offsets`]).
    pub fn txn_commit_offsets(
        &self,
        info: RequestInfo,
        producer: (i64, i16),
        request: &OffsetCommitRequest,
    ) -> Result<OffsetCommitResponse, ResponseError> {
        let (partition_id, shard) = self.shard_for(request.group_id.as_str())?;
        let mut shard = shard.lock();
        let (records, mut response) = shard.txn_commit_offsets(&info, request);
        let producer_id = producer.0;
        // Written now as the producer's transactional batch (Kafka's layout), so that a
        // restart finds them; they count once the COMMIT marker follows.
        if let Err(error) = self.append_transactional(partition_id, &records, producer) {
            for p in response
                .topics
                .iter_mut()
                .flat_map(|t| t.partitions.iter_mut())
            {
                if p.error_code == 0 {
                    p.error_code = error.code();
                }
            }
            return Ok(response);
        }
        self.pending_txn_offsets
            .lock()
            .entry((partition_id, producer_id))
            .or_default()
            .extend(records);
        Ok(response)
    }

    /// A COMMIT or ABORT marker of `producer_id` was written to a `__consumer_offsets`
    /// partition: a commit applies the offsets the transaction wrote, an abort drops them.
    pub fn complete_txn_offsets(&self, partition_id: i32, producer_id: i64, commit: bool) {
        // Under the shard's lock (when loaded): a require_stable OffsetFetch sees the
        // commit either pending or applied, never gone and not yet applied.
        let shard = self.shard_at(partition_id);
        let mut shard = shard.as_ref().map(|s| s.lock());
        let pending = self
            .pending_txn_offsets
            .lock()
            .remove(&(partition_id, producer_id));
        if let (Some(records), true, Some(shard)) = (pending, commit, shard.as_mut()) {
            shard.apply_written(&records, crate::now_ms());
        }
    }

    /// Appends TxnOffsetCommit records as the producer's transactional batch.
    fn append_transactional(
        &self,
        partition_id: i32,
        records: &[CoordinatorRecord],
        producer: (i64, i16),
    ) -> Result<(), ResponseError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut batch = internal_log::encode_transactional_batch(
            records.iter().map(|r| (r.key.clone(), r.value.clone())),
            producer,
            crate::now_ms(),
        )
        .map_err(|e| {
            tracing::error!("cannot encode {OFFSETS_TOPIC} batch: {e}");
            ResponseError::UnknownServerError
        })?;
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition_id);
        self.replica_manager
            .append_records(&tp, &mut batch, 1, AppendOrigin::Coordinator, None)
            .map(|_| ())
            .map_err(|e| {
                tracing::warn!("cannot append to {OFFSETS_TOPIC}-{partition_id}: {e:?}");
                match e {
                    AppendError::Storage(StorageError::InvalidProducerEpoch(_)) => {
                        ResponseError::ProducerFenced
                    }
                    e => append_error_code(&e),
                }
            })
    }

    /// Committed offsets; `member` (OffsetFetch v9+) is checked against KIP-848 groups.
    /// With `require_stable` (KIP-447), a partition with a transactional commit waiting
    /// for its marker is answered UNSTABLE_OFFSET_COMMIT and offset -1 (as Kafka's
    /// `fetchOffsets` / `fetchAllOffsets`): the consumer retries rather than start from
    /// an offset the open transaction is about to move.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        member: Option<(&str, i32)>,
        topics: Option<&[(String, Vec<i32>)]>,
        require_stable: bool,
    ) -> Result<FetchedTopics, ResponseError> {
        let (partition_id, shard) = self.shard_for(group_id)?;
        // Held while the pending commits are looked at: a marker completes them under
        // this lock too, so an answer never pairs an old offset with "nothing pending".
        let mut shard = shard.lock();
        self.apply_replicated_offsets(partition_id, &mut shard);
        let fetched = shard.fetch_offsets_as(group_id, member, topics)?;
        let unstable = if require_stable {
            self.pending_txn_partitions(partition_id, group_id)
        } else {
            HashSet::new()
        };
        Ok(fetched
            .into_iter()
            .map(|(topic, partitions)| {
                let partitions = partitions
                    .into_iter()
                    .map(|o| {
                        if unstable.contains(&(topic.clone(), o.partition)) {
                            let unknown = FetchedOffset {
                                partition: o.partition,
                                offset: -1,
                                leader_epoch: -1,
                                metadata: String::new(),
                            };
                            (unknown, Some(ResponseError::UnstableOffsetCommit))
                        } else {
                            (o, None)
                        }
                    })
                    .collect();
                (topic, partitions)
            })
            .collect())
    }

    /// The (topic, partition)s of `group_id` with a transactional offset commit waiting
    /// for its transaction's marker on `partition_id`.
    fn pending_txn_partitions(&self, partition_id: i32, group_id: &str) -> HashSet<(String, i32)> {
        let pending = self.pending_txn_offsets.lock();
        let mut found = HashSet::new();
        for record in pending
            .iter()
            .filter(|((p, _), _)| *p == partition_id)
            .flat_map(|(_, records)| records)
        {
            if let Ok(RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            }) = decode_key(&record.key)
            {
                if group == group_id {
                    found.insert((topic, partition));
                }
            }
        }
        found
    }

    /// ConsumerGroupHeartbeat (KIP-848); topics are looked up in the current image.
    pub fn consumer_heartbeat(
        &self,
        state: &BrokerState,
        info: RequestInfo,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> ConsumerGroupHeartbeatResponse {
        let (partition_id, shard) = match self.shard_for(request.group_id.as_str()) {
            Ok(found) => found,
            Err(e) => return ConsumerGroupHeartbeatResponse::default().with_error_code(e.code()),
        };
        let image = ImageTopics(state.image());
        let fresh_id = Uuid::new_v4().to_string();
        let response = {
            let mut shard = shard.lock();
            let (records, response) = shard.consumer_heartbeat(&info, request, &fresh_id, &image);
            // The member's new epoch and assignment are answered only once persisted.
            match self.append(partition_id, &records) {
                Ok(()) => {
                    shard.apply_written(&records, info.now_ms);
                    response
                }
                Err(e) => ConsumerGroupHeartbeatResponse::default().with_error_code(e.code()),
            }
        };
        // Session deadlines moved.
        self.timer_wake.notify_one();
        response
    }

    pub fn consumer_describe(
        &self,
        group_id: &str,
    ) -> Result<ConsumerDescribedGroup, ResponseError> {
        let (_, shard) = self.shard_for(group_id)?;
        let shard = shard.lock();
        Ok(shard.consumer_describe(group_id))
    }

    #[allow(clippy::type_complexity)]
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
    ) -> Result<Vec<(String, Vec<(i32, Option<ResponseError>)>)>, ResponseError> {
        let (partition_id, shard) = self.shard_for(group_id)?;
        let mut shard = shard.lock();
        let (records, results) = shard.delete_offsets(group_id, topics)?;
        self.append(partition_id, &records)?;
        shard.apply_written(&records, crate::now_ms());
        Ok(results)
    }

    pub fn delete_group(&self, group_id: &str) -> Option<ResponseError> {
        let (partition_id, shard) = match self.shard_for(group_id) {
            Ok(found) => found,
            Err(e) => return Some(e),
        };
        let mut shard = shard.lock();
        let (records, results) = shard.delete_groups(&[group_id.to_string()]);
        if let Err(e) = self.append(partition_id, &records) {
            return Some(e);
        }
        shard.apply_written(&records, crate::now_ms());
        results.into_iter().next().and_then(|(_, e)| e)
    }

    pub fn list_groups(&self) -> Vec<ListedGroup> {
        let shards: Vec<Shard> = self.shards.read().values().cloned().collect();
        let mut groups: Vec<ListedGroup> =
            shards.iter().flat_map(|s| s.lock().list_groups()).collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups
    }

    pub fn describe_group(
        &self,
        group_id: &str,
        api_version: i16,
    ) -> Result<DescribedGroup, ResponseError> {
        let (_, shard) = self.shard_for(group_id)?;
        let shard = shard.lock();
        Ok(shard.describe_group(group_id, api_version))
    }
}

/// The metadata image as the coordinator's view of topics.
struct ImageTopics(Arc<MetadataImage>);

impl Topics for ImageTopics {
    fn get(&self, name: &str) -> Option<TopicInfo> {
        self.0.topic_by_name(name).map(|t| TopicInfo {
            id: t.topic_id,
            partitions: t.partitions.len() as i32,
        })
    }

    fn names(&self) -> Vec<String> {
        self.0.topics().iter().map(|t| t.name.clone()).collect()
    }
}

/// Who sent a request, with which version, and when: what a shard needs beyond the body.
pub fn request_info(ctx: &RequestContext) -> RequestInfo {
    RequestInfo {
        now_ms: crate::now_ms(),
        api_version: ctx.api_version,
        client_id: ctx
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        // Kafka reports the address as Java's InetAddress.toString(): "/127.0.0.1".
        client_host: format!("/{}", ctx.peer.ip()),
    }
}

fn join_error(request: &JoinGroupRequest, error: ResponseError) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(error.code())
        .with_generation_id(-1)
        .with_member_id(request.member_id.clone())
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

/// Transactional offset commits replayed without their marker yet, by producer id.
type PendingTxnOffsets = HashMap<i64, Vec<CoordinatorRecord>>;

/// Replays a `__consumer_offsets` partition into `shard`; returns the number of records
/// and the transactional offsets whose transaction is still open. Offsets a transaction
/// wrote are replayed at its COMMIT marker and dropped at its ABORT marker.
fn replay_log(
    log: &Log,
    shard: &mut GroupShard,
    now_ms: i64,
) -> Result<(usize, PendingTxnOffsets), BrokerError> {
    let mut count = 0;
    let pending = std::cell::RefCell::new(PendingTxnOffsets::new());
    let shard = std::cell::RefCell::new(shard);
    internal_log::replay_with_markers(
        log,
        |record| {
            if let Some(key) = record.key {
                let record_value = CoordinatorRecord {
                    key,
                    value: record.value,
                };
                if record.transactional_producer_id >= 0 {
                    pending
                        .borrow_mut()
                        .entry(record.transactional_producer_id)
                        .or_default()
                        .push(record_value);
                } else {
                    shard.borrow_mut().replay(&record_value, now_ms);
                }
                count += 1;
            }
            Ok(())
        },
        |marker| {
            let records = pending.borrow_mut().remove(&marker.producer_id);
            if let (Some(records), true) = (records, marker.commit) {
                for record in &records {
                    shard.borrow_mut().replay(record, now_ms);
                }
            }
            Ok(())
        },
    )?;
    Ok((count, pending.into_inner()))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::GroupId;
    use kafka_protocol::protocol::StrBytes;
    use moldau_metadata::{MetadataDelta, MetadataRecord};
    use moldau_storage::{LogConfig, LogManager, LogManagerConfig};

    use super::*;
    use crate::controller::MetadataPublisher;

    const GROUP: &str = "eos";

    /// Node 1 leading the one partition of `__consumer_offsets` and of topic "in".
    fn coordinator(dir: &std::path::Path) -> (Arc<LogManager>, GroupCoordinator) {
        let overrides =
            [("offsets.topic.num.partitions", "1")].map(|(k, v)| (k.to_string(), v.to_string()));
        let (config, _) = ServerConfig::load(None, &overrides).expect("config");
        let log_manager =
            LogManager::open(LogManagerConfig::new(dir), LogConfig::default()).expect("open logs");
        let replica_manager = Arc::new(ReplicaManager::new(
            1,
            log_manager.clone(),
            LogConfig::default(),
            config.replication.clone(),
        ));
        let mut records = vec![MetadataRecord::RegisterBroker {
            broker_id: 1,
            broker_epoch: 1,
            host: "h".into(),
            port: 1,
            rack: None,
            fenced: false,
            incarnation_id: None,
            listeners: vec![],
        }];
        for (i, name) in [OFFSETS_TOPIC, "in"].into_iter().enumerate() {
            let topic_id = Uuid::from_u128(i as u128 + 1);
            records.push(MetadataRecord::Topic {
                name: name.into(),
                topic_id,
            });
            records.push(MetadataRecord::Partition {
                topic_id,
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
        }
        let base = MetadataImage::empty();
        let mut delta = MetadataDelta::new(&base);
        for (offset, record) in records.iter().enumerate() {
            delta.replay(offset as i64, record).expect("replay");
        }
        replica_manager.publish(&delta, &Arc::new(delta.current().clone()));
        let coordinator = GroupCoordinator::new(&config, replica_manager);
        coordinator.load_partitions().expect("load");
        (log_manager, coordinator)
    }

    fn commit(offset: i64) -> OffsetCommitRequest {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(crate::handlers::topic_name("in"))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1)])])
    }

    fn info() -> RequestInfo {
        RequestInfo {
            now_ms: crate::now_ms(),
            api_version: 7,
            client_id: "test".into(),
            client_host: "/127.0.0.1".into(),
        }
    }

    /// (offset, error code) of partition 0 of "in", asked for by name or as "all".
    fn fetch(c: &GroupCoordinator, all: bool, require_stable: bool) -> (i64, i16) {
        let named = [("in".to_string(), vec![0])];
        let topics = (!all).then_some(&named[..]);
        let fetched = c
            .fetch_offsets(GROUP, None, topics, require_stable)
            .expect("fetch");
        let (offset, error) = fetched
            .into_iter()
            .find(|(t, _)| t == "in")
            .and_then(|(_, ps)| ps.into_iter().find(|(o, _)| o.partition == 0))
            .expect("partition 0 of in");
        (offset.offset, error.map_or(0, |e| e.code()))
    }

    #[test]
    fn a_pending_transactional_commit_is_unstable_until_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let (log_manager, c) = coordinator(dir.path());
        let response = c.commit_offsets(info(), &commit(5)).expect("commit");
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
        assert_eq!(fetch(&c, false, true), (5, 0));

        let producer = (7, 0);
        let response = c
            .txn_commit_offsets(info(), producer, &commit(9))
            .expect("txn commit");
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
        let unstable = ResponseError::UnstableOffsetCommit.code();
        for all in [false, true] {
            assert_eq!(
                fetch(&c, all, true),
                (-1, unstable),
                "all partitions: {all}"
            );
            assert_eq!(fetch(&c, all, false), (5, 0), "all partitions: {all}");
        }

        // The COMMIT marker reached the group's partition.
        c.complete_txn_offsets(0, producer.0, true);
        for all in [false, true] {
            assert_eq!(fetch(&c, all, true), (9, 0));
            assert_eq!(fetch(&c, all, false), (9, 0));
        }

        // An aborted transaction's offsets never count, and are stable once it ends.
        c.txn_commit_offsets(info(), producer, &commit(12))
            .expect("txn commit");
        assert_eq!(fetch(&c, false, true), (-1, unstable));
        c.complete_txn_offsets(0, producer.0, false);
        assert_eq!(fetch(&c, false, true), (9, 0));
        log_manager.shutdown().unwrap();
    }
}
