//! Followers replicate (Kafka's ReplicaFetcherManager and ReplicaFetcherThread): every
//! partition this node holds a replica of, led by another broker, is fetched from that
//! leader with ordinary Fetch requests carrying this node's replica id and broker epoch.
//!
//! `num.replica.fetchers` tasks per leader, a partition always in the same one; each sends
//! one Fetch at a time for all its partitions (`replica.fetch.max.bytes` per partition,
//! `replica.fetch.response.max.bytes` in all, waiting up to `replica.fetch.wait.max.ms` at
//! the leader), appends what comes back as a follower (offsets, epochs and producer state
//! as the leader wrote them) and takes the leader's high watermark and log start offset.
//! A diverging epoch in the answer truncates the log to where it diverged before anything
//! else is fetched; OFFSET_OUT_OF_RANGE truncates to the leader's range (an empty new
//! replica of a partition whose leader deleted its first offsets starts over at the
//! leader's log start). A partition whose fetch fails waits `replica.fetch.backoff.ms` (or
//! the next metadata change). A throttled partition (`follower.replication.throttled.*`,
//! see `replication_quota`) is left out of the fetch while the follower rate is exceeded,
//! and asks for at most one second's worth of bytes.
//!
//! Invariant: a follower's log is always a prefix of some leader's log at its epoch
//! boundaries: it appends only batches that continue its own log end, and cuts anything
//! past the point a leader reports divergence.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use moldau_storage::{BatchHeader, Log, TopicPartition, Uuid};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::replica_manager::Partition;
use crate::state::BrokerState;

/// The Fetch version followers send (replica state in the body, topic ids).
const FETCH_VERSION: i16 = 16;
/// How often the assignment is recomputed even without a metadata change (a log that
/// came online on retry).
const RECHECK_INTERVAL: Duration = Duration::from_secs(2);

/// One partition a fetcher follows, in the leader epoch the image gave.
#[derive(Clone, Debug)]
struct Following {
    topic_id: Uuid,
    leader_epoch: i32,
    /// Not fetched before this (after an error).
    backoff_until: Option<Instant>,
}

struct Fetcher {
    partitions: Arc<Mutex<BTreeMap<TopicPartition, Following>>>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

/// Starts the manager that keeps one set of fetchers per leader in line with the
/// partitions this node follows.
pub fn spawn_replica_fetchers(state: Arc<BrokerState>) -> JoinHandle<()> {
    crate::supervisor::spawn_supervised("replica fetcher manager", move || {
        let state = state.clone();
        async move {
            let mut fetchers = Fetchers::default();
            let mut images = state.controller.quorum().subscribe();
            loop {
                assign(&state, &mut fetchers.0);
                tokio::select! {
                    changed = images.changed() => if changed.is_err() { break },
                    _ = tokio::time::sleep(RECHECK_INTERVAL) => {}
                }
            }
        }
    })
}

/// The fetchers by (leader, fetcher index); their tasks stop when the manager's does
/// (ended or aborted at shutdown).
#[derive(Default)]
struct Fetchers(HashMap<(i32, usize), Fetcher>);

impl Drop for Fetchers {
    fn drop(&mut self) {
        for (_, fetcher) in self.0.drain() {
            fetcher.task.abort();
        }
    }
}

/// Kafka's fetcher id: a partition always goes to the same one of a leader's fetchers.
fn fetcher_index(tp: &TopicPartition, num_fetchers: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    tp.hash(&mut hasher);
    (hasher.finish() % num_fetchers.max(1) as u64) as usize
}

/// Brings the fetchers in line with the partitions this node follows now: new leaders
/// and epochs start fetching at once, partitions no longer followed stop.
fn assign(state: &Arc<BrokerState>, fetchers: &mut HashMap<(i32, usize), Fetcher>) {
    let node_id = state.node_id;
    let num_fetchers = state.config.replication.num_replica_fetchers;
    let mut wanted: HashMap<(i32, usize), BTreeMap<TopicPartition, (Uuid, i32)>> = HashMap::new();
    for (tp, partition) in state.replica_manager.partitions() {
        if partition.leader < 0 || partition.leader == node_id {
            continue;
        }
        let key = (partition.leader, fetcher_index(&tp, num_fetchers));
        wanted
            .entry(key)
            .or_default()
            .insert(tp, (partition.topic_id, partition.leader_epoch));
    }
    fetchers.retain(|key, fetcher| {
        let keep = wanted.contains_key(key);
        if !keep {
            fetcher.task.abort();
        }
        keep
    });
    for (key, partitions) in wanted {
        let fetcher = fetchers.entry(key).or_insert_with(|| {
            let partitions = Arc::new(Mutex::new(BTreeMap::new()));
            let wake = Arc::new(Notify::new());
            let task = tokio::spawn(run_fetcher(
                state.clone(),
                key.0,
                partitions.clone(),
                wake.clone(),
            ));
            Fetcher {
                partitions,
                wake,
                task,
            }
        });
        let mut followed = fetcher.partitions.lock();
        followed.retain(|tp, _| partitions.contains_key(tp));
        for (tp, (topic_id, leader_epoch)) in partitions {
            let current = followed
                .get(&tp)
                .is_some_and(|f| f.leader_epoch == leader_epoch);
            if !current {
                followed.insert(
                    tp,
                    Following {
                        topic_id,
                        leader_epoch,
                        backoff_until: None,
                    },
                );
            }
        }
        drop(followed);
        fetcher.wake.notify_one();
    }
}

/// What became of one partition's fetch.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// Wait `replica.fetch.backoff.ms` (or a new leader epoch) before fetching it again.
    Backoff,
}

async fn run_fetcher(
    state: Arc<BrokerState>,
    leader: i32,
    partitions: Arc<Mutex<BTreeMap<TopicPartition, Following>>>,
    wake: Arc<Notify>,
) {
    let config = state.config.replication.clone();
    let backoff = Duration::from_millis(config.replica_fetch_backoff_ms);
    let mut warned = false;
    loop {
        let now = Instant::now();
        let ready: Vec<(TopicPartition, Following)> = partitions
            .lock()
            .iter()
            .filter(|(_, f)| f.backoff_until.is_none_or(|t| t <= now))
            .map(|(tp, f)| (tp.clone(), f.clone()))
            .collect();
        if ready.is_empty() {
            let next = partitions
                .lock()
                .values()
                .filter_map(|f| f.backoff_until)
                .min()
                .unwrap_or(now + Duration::from_secs(60));
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep_until(next) => {}
            }
            continue;
        }
        let (request, sent) = build_request(&state, leader, &ready);
        if sent.is_empty() {
            // The image moved on (leader or epoch changed: the manager reassigns), or
            // every ready partition is throttled for now.
            back_off(&partitions, &ready, backoff);
            continue;
        }
        let Some(addr) = state.broker_addr(leader) else {
            back_off(&partitions, &ready, backoff);
            continue;
        };
        let timeout = Duration::from_millis(config.replica_socket_timeout_ms)
            + Duration::from_millis(config.replica_fetch_wait_max_ms as u64);
        let response = match state
            .inter_broker
            .send(&addr, &request, FETCH_VERSION, timeout)
            .await
        {
            Ok(response) => response,
            Err(e) => {
                if !warned {
                    tracing::warn!(leader, %e, "follower fetch failed; retrying");
                    warned = true;
                }
                back_off(&partitions, &ready, backoff);
                continue;
            }
        };
        warned = false;
        if let Some(e) = ResponseError::try_from_code(response.error_code) {
            tracing::warn!(leader, ?e, "follower fetch refused");
            back_off(&partitions, &ready, backoff);
            continue;
        }
        let task_state = state.clone();
        crate::slow_disk(&state.config.log_dir).await;
        let outcomes =
            crate::spawn_blocking(move || handle_response(&task_state, leader, &sent, response))
                .await
                .unwrap_or_default();
        let failed: Vec<(TopicPartition, Following)> = ready
            .into_iter()
            .filter(|(tp, _)| outcomes.contains(tp))
            .collect();
        back_off(&partitions, &failed, backoff);
    }
}

/// Puts partitions in backoff, unless a new leader epoch replaced them meanwhile.
fn back_off(
    partitions: &Mutex<BTreeMap<TopicPartition, Following>>,
    which: &[(TopicPartition, Following)],
    backoff: Duration,
) {
    let until = Instant::now() + backoff;
    let mut followed = partitions.lock();
    for (tp, sent) in which {
        if let Some(f) = followed
            .get_mut(tp)
            .filter(|f| f.leader_epoch == sent.leader_epoch)
        {
            f.backoff_until = Some(until);
        }
    }
}

/// What a fetch asked for one partition.
struct Sent {
    tp: TopicPartition,
    leader_epoch: i32,
    /// Its bytes count against the follower's replication throttle.
    throttled: bool,
}

/// The most a throttled partition asks for in one fetch: one second at `rate` (at least a
/// byte: the leader still sends one whole batch), never more than unthrottled.
fn throttled_max_bytes(rate: Option<u64>, max_bytes: i32) -> i32 {
    match rate {
        Some(rate) => rate.clamp(1, max_bytes.max(1) as u64) as i32,
        None => max_bytes,
    }
}

fn build_request(
    state: &BrokerState,
    leader: i32,
    ready: &[(TopicPartition, Following)],
) -> (FetchRequest, HashMap<(Uuid, i32), Sent>) {
    let config = &state.config.replication;
    let broker_epoch = state
        .image()
        .brokers
        .get(&state.node_id)
        .map_or(-1, |b| b.broker_epoch);
    let mut topics: BTreeMap<Uuid, Vec<FetchPartition>> = BTreeMap::new();
    let mut sent = HashMap::new();
    for (tp, following) in ready {
        let Some(partition) = state.replica_manager.partition(tp) else {
            continue;
        };
        if partition.leader != leader || partition.leader_epoch != following.leader_epoch {
            continue;
        }
        let throttle = state.replica_manager.follower_throttle(&partition);
        if throttle.is_some_and(|(_, exceeded)| exceeded) {
            continue;
        }
        let max_bytes = match throttle {
            Some((rate, _)) => throttled_max_bytes(rate, config.replica_fetch_max_bytes),
            None => config.replica_fetch_max_bytes,
        };
        let log = &partition.log;
        topics.entry(following.topic_id).or_default().push(
            FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(following.leader_epoch)
                .with_fetch_offset(log.log_end_offset())
                .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
                .with_log_start_offset(log.log_start_offset())
                .with_partition_max_bytes(max_bytes),
        );
        sent.insert(
            (following.topic_id, tp.partition),
            Sent {
                tp: tp.clone(),
                leader_epoch: following.leader_epoch,
                throttled: throttle.is_some(),
            },
        );
    }
    let request = FetchRequest::default()
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(state.node_id))
                .with_replica_epoch(broker_epoch),
        )
        .with_max_wait_ms(config.replica_fetch_wait_max_ms)
        .with_min_bytes(config.replica_fetch_min_bytes)
        .with_max_bytes(config.replica_fetch_response_max_bytes)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(topic_id, partitions)| {
                    FetchTopic::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        );
    (request, sent)
}

/// Applies a fetch answer; returns the partitions to back off.
fn handle_response(
    state: &BrokerState,
    leader: i32,
    sent: &HashMap<(Uuid, i32), Sent>,
    response: FetchResponse,
) -> Vec<TopicPartition> {
    let mut failed = Vec::new();
    for topic in response.responses {
        for data in topic.partitions {
            let Some(sent) = sent.get(&(topic.topic_id, data.partition_index)) else {
                continue;
            };
            let Some(partition) = state.replica_manager.partition(&sent.tp) else {
                continue;
            };
            if sent.throttled {
                let bytes = data.records.as_ref().map_or(0, |r| r.len() as u64);
                state.replica_manager.record_follower_throttled_bytes(bytes);
            }
            // Applied only in the epoch it was asked in: a newer leader decides anew.
            if partition.leader != leader || partition.leader_epoch != sent.leader_epoch {
                continue;
            }
            if handle_partition(state, &partition, &data) == Outcome::Backoff {
                failed.push(sent.tp.clone());
            }
        }
    }
    failed
}

fn handle_partition(state: &BrokerState, partition: &Partition, data: &PartitionData) -> Outcome {
    let log = &partition.log;
    let tp = log.topic_partition();
    let result = match ResponseError::try_from_code(data.error_code) {
        None if data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0 => {
            truncate_on_divergence(
                log,
                data.diverging_epoch.epoch,
                data.diverging_epoch.end_offset,
            )
        }
        None => append_fetched(log, data),
        Some(ResponseError::OffsetOutOfRange) => truncate_out_of_range(log, data),
        Some(e) => {
            tracing::debug!(%tp, ?e, "follower fetch of partition refused");
            return Outcome::Backoff;
        }
    };
    match result {
        Ok(()) => {
            state.replica_manager.notify_follower_progress(partition);
            Outcome::Done
        }
        Err(e) => {
            tracing::warn!(%tp, %e, "follower could not apply fetched data");
            Outcome::Backoff
        }
    }
}

/// Appends the fetched batches that continue this log and takes the leader's marks.
fn append_fetched(log: &Log, data: &PartitionData) -> Result<(), String> {
    let empty = Bytes::new();
    let records = data.records.as_ref().unwrap_or(&empty);
    if let Some(mut batches) = continuing_batches(log, records)? {
        log.append_as_follower(&mut batches)
            .map_err(|e| e.to_string())?;
    }
    if data.high_watermark >= 0 {
        // A follower's mark: the leader's, never past what this log holds.
        let high_watermark = data.high_watermark.min(log.log_end_offset());
        if high_watermark > log.high_watermark() {
            log.update_high_watermark(high_watermark);
        }
    }
    // The leader's log start offset moved (retention, DeleteRecords): so does this one,
    // as far as its high watermark.
    let new_start = data.log_start_offset.min(log.high_watermark());
    if new_start > log.log_start_offset() {
        log.delete_records_before(new_start)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The whole batches of `records` past this log's end, as a buffer to append; None if
/// there are none. A batch straddling the log end (only after an unusual truncation)
/// truncates the log to its base, so that it is appended whole.
fn continuing_batches(log: &Log, records: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let log_end_offset = log.log_end_offset();
    let mut position = 0;
    let mut start = None;
    while position < records.len() {
        let Ok(header) = BatchHeader::parse(&records[position..]) else {
            break;
        };
        let size = header.size_bytes();
        if position + size > records.len() {
            break;
        }
        if start.is_none() && header.next_offset() > log_end_offset {
            if header.base_offset < log_end_offset {
                log.truncate_to(header.base_offset)
                    .map_err(|e| e.to_string())?;
            }
            start = Some(position);
        }
        position += size;
    }
    Ok(start
        .filter(|s| *s < position)
        .map(|s| records[s..position].to_vec()))
}

/// The leader reports that this log went another way after `epoch` (ending at
/// `end_offset` there): truncate to where both agree (Kafka's truncation on fetch). If
/// this log knows the epoch differently, it cuts to the earlier end and the next fetch
/// (with its now latest epoch) narrows it further.
fn truncate_on_divergence(log: &Log, epoch: i32, end_offset: i64) -> Result<(), String> {
    let target = if epoch < 0 {
        end_offset.min(log.log_end_offset())
    } else {
        match log.end_offset_for_epoch(epoch) {
            Some(found) => end_offset.min(found.end_offset),
            None => end_offset.min(log.log_end_offset()),
        }
    };
    let target = target.max(log.log_start_offset());
    tracing::info!(
        tp = %log.topic_partition(),
        epoch,
        end_offset,
        target,
        log_end_offset = log.log_end_offset(),
        "truncating a diverged follower log"
    );
    log.truncate_to(target).map_err(|e| e.to_string())
}

/// OFFSET_OUT_OF_RANGE for this log's end: below the leader's log start, start over
/// there; past the leader's high watermark, cut back to it (the leader lost that tail).
fn truncate_out_of_range(log: &Log, data: &PartitionData) -> Result<(), String> {
    let log_end_offset = log.log_end_offset();
    let (leader_start, leader_high_watermark) = (data.log_start_offset, data.high_watermark);
    if leader_start < 0 || leader_high_watermark < 0 {
        return Err("offset out of range, and the leader gave no offsets".into());
    }
    let tp = log.topic_partition();
    if log_end_offset < leader_start {
        tracing::info!(%tp, log_end_offset, leader_start, "follower log starts over at the leader's log start");
        log.truncate_fully_and_start_at(leader_start)
    } else if log_end_offset > leader_high_watermark {
        tracing::info!(%tp, log_end_offset, leader_high_watermark, "follower log cut back to the leader's high watermark");
        log.truncate_to(leader_high_watermark)
    } else {
        // In range, yet refused: the leader cannot place this log's last epoch.
        tracing::warn!(%tp, log_end_offset, leader_start, "follower log has no epoch the leader knows; starting over");
        log.truncate_fully_and_start_at(leader_start)
    }
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use moldau_storage::{LogConfig, LogManager, LogManagerConfig};

    use super::*;

    /// A batch of `count` records at `base_offset` in leader epoch `epoch`, as a leader
    /// serves it (the offset and epoch fields are outside the CRC).
    fn batch_at(base_offset: i64, count: usize, epoch: i32) -> Vec<u8> {
        let records = (0..count).map(|i| {
            let value = bytes::Bytes::from(format!("v{i}"));
            (bytes::Bytes::from_static(b"k"), Some(value))
        });
        let mut batch = crate::internal_log::encode_batch(records, 1)
            .unwrap()
            .to_vec();
        batch[..8].copy_from_slice(&base_offset.to_be_bytes());
        batch[12..16].copy_from_slice(&epoch.to_be_bytes());
        batch
    }

    /// A new replica's empty log fetching from a leader whose retention (or DeleteRecords)
    /// removed its first offsets: the leader answers OFFSET_OUT_OF_RANGE with its log
    /// start, the follower starts over there, and a first batch that straddles that start
    /// is appended whole (Kafka's UnexpectedAppendOffsetException path).
    #[test]
    fn an_empty_new_replica_starts_at_the_leaders_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let manager =
            LogManager::open(LogManagerConfig::new(dir.path()), LogConfig::default()).unwrap();
        let tp = TopicPartition::new("moved", 0);
        let log = manager
            .get_or_create_log(&tp, Uuid::from_u128(1), LogConfig::default())
            .unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        let out_of_range = PartitionData::default()
            .with_error_code(ResponseError::OffsetOutOfRange.code())
            .with_log_start_offset(100)
            .with_high_watermark(110);
        truncate_out_of_range(&log, &out_of_range).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
        // The leader's log starts at 100 inside a batch of 95..=104.
        let fetched = PartitionData::default()
            .with_records(Some(Bytes::from(batch_at(95, 10, 3))))
            .with_log_start_offset(100)
            .with_high_watermark(105);
        append_fetched(&log, &fetched).unwrap();
        assert_eq!(log.log_end_offset(), 105);
        assert_eq!(log.high_watermark(), 105);
        assert_eq!(log.log_start_offset(), 100);
        assert_eq!(log.latest_epoch(), Some(3));
        // And it goes on from there.
        let next = PartitionData::default()
            .with_records(Some(Bytes::from(batch_at(105, 2, 3))))
            .with_log_start_offset(100)
            .with_high_watermark(107);
        append_fetched(&log, &next).unwrap();
        assert_eq!(log.log_end_offset(), 107);
        manager.shutdown().unwrap();
    }

    #[test]
    fn a_throttled_partition_asks_for_one_seconds_worth() {
        assert_eq!(throttled_max_bytes(Some(10_000), 1 << 20), 10_000);
        assert_eq!(throttled_max_bytes(Some(10 << 20), 1 << 20), 1 << 20);
        assert_eq!(throttled_max_bytes(Some(0), 1 << 20), 1);
        assert_eq!(throttled_max_bytes(None, 1 << 20), 1 << 20);
    }

    #[test]
    fn a_partition_always_goes_to_the_same_fetcher() {
        let tp = TopicPartition::new("orders", 3);
        let first = fetcher_index(&tp, 4);
        assert!(first < 4);
        assert_eq!(fetcher_index(&tp, 4), first);
        assert_eq!(fetcher_index(&tp, 1), 0);
        let spread: std::collections::HashSet<usize> = (0..64)
            .map(|p| fetcher_index(&TopicPartition::new("orders", p), 4))
            .collect();
        assert_eq!(spread.len(), 4, "partitions spread over the fetchers");
    }
}
