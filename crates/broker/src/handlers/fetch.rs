//! Fetch: read whole batches up to the high watermark (or last stable offset), long-polling
//! on `max_wait_ms` / `min_bytes`.
//!
//! A waiting fetch subscribes to each partition's high-watermark channel before it reads,
//! so an append between the read and the wait still wakes it; it is completed by appends,
//! never by polling. As Kafka's DelayedFetch, a waiting fetch does not read on each append:
//! it notes where its fetch offsets lie ([`LogOffsetMetadata`]) and compares them with the
//! position of the high watermark (or last stable offset); data is read once, to answer.
//! Fetch sessions (KIP-227) are answered sessionless: every response is a full response
//! with session id 0, which clients accept and then keep sending full requests.
//!
//! A fetch with a replica id is a follower's: it reads up to the log end (not the high
//! watermark), waits on the log end, records the follower's progress (which moves the high
//! watermark and the ISR), and gets a diverging epoch instead of records when its last
//! fetched epoch shows its log went another way (KIP-595's truncation on fetch, Kafka's
//! path since 2.7; OffsetForLeaderEpoch answers the same question on its own).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::select_all;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_storage::{LogOffsetMetadata, StorageError, TopicPartition, Uuid};
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::error::storage_error_code;
use crate::replica_manager::Partition;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = FetchRequest::VERSIONS;

const READ_COMMITTED: i8 = 1;
/// Session epoch a client sends to close its session or to fetch without one.
const FINAL_EPOCH: i32 = -1;
/// Kafka's `fetch.max.bytes` default: the most one response holds, whatever the request's
/// `max_bytes` (up to 2 GiB) asks for, since the response is built in memory.
const FETCH_MAX_BYTES: i32 = 57_671_680;
/// Longest a fetch waits, whatever its `max_wait_ms`: Kafka sets no bound, but clients send
/// less than their request timeout (30 s for Kafka's consumer), and nothing may park forever.
const MAX_WAIT_MS_CAP: i32 = 30_000;

/// One requested partition, resolved against the metadata image.
struct Wanted {
    topic: TopicName,
    topic_id: Uuid,
    partition_index: i32,
    fetch_offset: i64,
    partition_max_bytes: i32,
    partition: Result<Arc<Partition>, ResponseError>,
    /// Where the follower's log diverges from this one: (epoch, end offset), or
    /// Err(OFFSET_OUT_OF_RANGE) when its last fetched epoch cannot be placed here.
    diverging_epoch: Option<Result<(i32, i64), ResponseError>>,
    /// KIP-392: the replica in the consumer's rack it should fetch from instead.
    preferred_read_replica: Option<i32>,
    /// A follower's fetch of a replica under the leader's replication throttle:
    /// `Some(true)` while the rate is exceeded (answered without records).
    leader_throttle: Option<bool>,
}

/// How far a fetch may read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadLimit {
    HighWatermark,
    LastStableOffset,
    /// Followers replicate everything the leader has.
    LogEnd,
}

impl ReadLimit {
    fn offset(self, log: &moldau_storage::Log) -> i64 {
        match self {
            ReadLimit::HighWatermark => log.high_watermark(),
            ReadLimit::LastStableOffset => log.last_stable_offset(),
            ReadLimit::LogEnd => log.log_end_offset(),
        }
    }
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: FetchRequest,
) -> FetchResponse {
    if request.session_id != 0
        || (request.session_epoch != 0 && request.session_epoch != FINAL_EPOCH)
    {
        // Only sessionless fetches exist here, so no incremental session can be found.
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    // v15 moved the replica id into ReplicaState; consumers send -1.
    let replica_id = if ctx.api_version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let from_follower = replica_id >= 0;
    let wanted = resolve(state, ctx, &request, replica_id);
    let max_bytes = request.max_bytes.min(FETCH_MAX_BYTES);
    let limit = if from_follower {
        ReadLimit::LogEnd
    } else if request.isolation_level == READ_COMMITTED {
        ReadLimit::LastStableOffset
    } else {
        ReadLimit::HighWatermark
    };
    let mut watchers: Vec<watch::Receiver<i64>> = wanted
        .iter()
        .filter_map(|w| {
            let partition = w.partition.as_ref().ok()?;
            Some(if from_follower {
                partition.subscribe_log_end()
            } else {
                partition.subscribe()
            })
        })
        .collect();
    let max_wait_ms = request.max_wait_ms.clamp(0, MAX_WAIT_MS_CAP);
    let deadline = Instant::now() + Duration::from_millis(max_wait_ms as u64);
    for watcher in &mut watchers {
        watcher.mark_unchanged();
    }
    let (responses, bytes, any_error) = read_all(state, &wanted, max_bytes, limit);
    let min_bytes = i64::from(request.min_bytes);
    if bytes >= min_bytes || any_error || watchers.is_empty() || Instant::now() >= deadline {
        return FetchResponse::default().with_responses(responses);
    }
    drop(responses);
    let parked: Vec<Option<LogOffsetMetadata>> = wanted
        .iter()
        .map(|w| {
            let partition = w.partition.as_ref().ok()?;
            partition.log.offset_metadata(w.fetch_offset).ok()
        })
        .collect();
    loop {
        let any_change = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        match tokio::time::timeout_at(deadline, any_change).await {
            // The deadline, or a closed channel (its partition is gone): answer now.
            Err(_) | Ok((Err(_), _, _)) => break,
            Ok((Ok(()), _, _)) => {}
        }
        // Before comparing, so that a change made while comparing wakes the next wait.
        for watcher in &mut watchers {
            watcher.mark_unchanged();
        }
        if can_complete(&wanted, &parked, limit, min_bytes) {
            break;
        }
    }
    let (responses, _, _) = read_all(state, &wanted, max_bytes, limit);
    FetchResponse::default().with_responses(responses)
}

/// Kafka's DelayedFetch.tryComplete: whether the bytes between each fetch offset and the
/// high watermark (or last stable offset) reach `min_bytes`, counted from positions the
/// log already knows. A segment roll, a truncation or an error completes the fetch, which
/// then reads and reports what it finds.
fn can_complete(
    wanted: &[Wanted],
    parked: &[Option<LogOffsetMetadata>],
    limit: ReadLimit,
    min_bytes: i64,
) -> bool {
    let mut accumulated_bytes = 0i64;
    for (w, start) in wanted.iter().zip(parked) {
        let (Ok(partition), Some(start)) = (&w.partition, start) else {
            continue;
        };
        let log = &partition.log;
        let end_offset = limit.offset(log);
        if end_offset == start.offset {
            continue;
        }
        if end_offset < start.offset {
            return true;
        }
        let Ok(end) = log.offset_metadata(end_offset) else {
            return true;
        };
        match start.bytes_until(&end) {
            Some(bytes) => {
                let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
                accumulated_bytes += bytes.min(i64::from(w.partition_max_bytes.max(0)));
            }
            None => return true,
        }
    }
    accumulated_bytes >= min_bytes
}

fn resolve(
    state: &BrokerState,
    ctx: &RequestContext,
    request: &FetchRequest,
    replica_id: i32,
) -> Vec<Wanted> {
    let image = state.image();
    let by_id = ctx.api_version >= 13;
    let mut wanted = Vec::new();
    // As Kafka: a follower needs CLUSTER_ACTION on the cluster, a consumer READ on each
    // topic; refused partitions are TOPIC_AUTHORIZATION_FAILED.
    let follower_allowed =
        replica_id >= 0 && authorizer::allowed_cluster(state, ctx, AclOperation::ClusterAction);
    for topic in &request.topics {
        let name = if by_id {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.topic.to_string())
        };
        let refused = name.as_deref().is_some_and(|name| {
            if replica_id >= 0 {
                !follower_allowed
            } else {
                !authorizer::allowed(state, ctx, AclOperation::Read, ResourceType::Topic, name)
            }
        });
        for p in &topic.partitions {
            let mut diverging_epoch = None;
            let mut preferred_read_replica = None;
            let mut leader_throttle = None;
            let partition = match &name {
                None => Err(ResponseError::UnknownTopicId),
                Some(_) if refused => Err(ResponseError::TopicAuthorizationFailed),
                Some(name) => state
                    .replica_manager
                    .hosted_partition(&TopicPartition::new(name.clone(), p.partition))
                    .and_then(|partition| {
                        check_replica(state, ctx, partition, replica_id, p.current_leader_epoch)
                    })
                    .and_then(|partition| {
                        let last_fetched_epoch = if ctx.api_version >= 12 {
                            p.last_fetched_epoch
                        } else {
                            -1
                        };
                        diverging_epoch =
                            diverging(&partition.log, last_fetched_epoch, p.fetch_offset);
                        if replica_id >= 0 && diverging_epoch.is_none() {
                            // KIP-903: v15+ carries the follower's broker epoch.
                            let broker_epoch = if ctx.api_version >= 15 {
                                request.replica_state.replica_epoch
                            } else {
                                -1
                            };
                            follower_fetched(
                                state,
                                &partition,
                                replica_id,
                                broker_epoch,
                                p.fetch_offset,
                                p.log_start_offset,
                            )?;
                            leader_throttle = state
                                .replica_manager
                                .leader_throttle(&partition, replica_id);
                        }
                        if replica_id < 0 && ctx.api_version >= 11 {
                            preferred_read_replica = preferred_replica(
                                state,
                                &partition,
                                request.rack_id.as_str(),
                                p.fetch_offset,
                            );
                        }
                        Ok(partition)
                    }),
            };
            wanted.push(Wanted {
                topic: topic.topic.clone(),
                topic_id: topic.topic_id,
                partition_index: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
                partition,
                diverging_epoch,
                preferred_read_replica,
                leader_throttle,
            });
        }
    }
    wanted
}

/// Kafka's `validateFetchOffsetAndMaybeGetDivergingEpoch`: a fetcher's last fetched epoch
/// that ends earlier here than its fetch offset, or is not an epoch here, means its log
/// went another way: it gets this log's (epoch, end offset) for that epoch to truncate to.
/// An epoch this log cannot place at all is OFFSET_OUT_OF_RANGE.
fn diverging(
    log: &moldau_storage::Log,
    last_fetched_epoch: i32,
    fetch_offset: i64,
) -> Option<Result<(i32, i64), ResponseError>> {
    if last_fetched_epoch < 0 {
        return None;
    }
    match log.end_offset_for_epoch(last_fetched_epoch) {
        None => Some(Err(ResponseError::OffsetOutOfRange)),
        Some(found)
            if found.leader_epoch < last_fetched_epoch || found.end_offset < fetch_offset =>
        {
            Some(Ok((found.leader_epoch, found.end_offset)))
        }
        Some(_) => None,
    }
}

/// A follower's fetch offset is its log end: the leader records it (high watermark, ISR).
/// An offset outside this log is left to the read, which answers OFFSET_OUT_OF_RANGE.
fn follower_fetched(
    state: &BrokerState,
    partition: &Partition,
    replica_id: i32,
    broker_epoch: i64,
    fetch_offset: i64,
    log_start_offset: i64,
) -> Result<(), ResponseError> {
    let log = &partition.log;
    if fetch_offset < log.log_start_offset() || fetch_offset > log.log_end_offset() {
        return Ok(());
    }
    state.replica_manager.update_follower_fetch(
        partition,
        replica_id,
        broker_epoch,
        fetch_offset,
        log_start_offset,
    )
}

/// Who may be fetched from: the leader always; a follower by a consumer that sent client
/// metadata (Fetch v11+, KIP-392: it was pointed there), with the leader epoch checked
/// against the one the follower knows.
fn check_replica(
    state: &BrokerState,
    ctx: &RequestContext,
    partition: Arc<Partition>,
    replica_id: i32,
    current_leader_epoch: i32,
) -> Result<Arc<Partition>, ResponseError> {
    let follower_read = replica_id < 0
        && ctx.api_version >= 11
        && partition.leader != state.node_id
        && partition.replicas.contains(&state.node_id);
    if !follower_read {
        super::check_leader_epoch(state, &partition, current_leader_epoch)?;
        return Ok(partition);
    }
    if current_leader_epoch >= 0 && current_leader_epoch < partition.leader_epoch {
        return Err(ResponseError::FencedLeaderEpoch);
    }
    if current_leader_epoch > partition.leader_epoch {
        return Err(ResponseError::UnknownLeaderEpoch);
    }
    Ok(partition)
}

/// Kafka's RackAwareReplicaSelector on the leader (KIP-392): for a consumer that names its
/// rack, an in-sync replica in that rack that already holds the fetch offset, unless the
/// leader is in that rack too (then None: fetch here).
fn preferred_replica(
    state: &BrokerState,
    partition: &Partition,
    client_rack: &str,
    fetch_offset: i64,
) -> Option<i32> {
    if !state.config.replication.rack_aware_replica_selector
        || client_rack.is_empty()
        || partition.leader != state.node_id
    {
        return None;
    }
    let image = state.image();
    let in_rack = |id: &i32| {
        image
            .brokers
            .get(id)
            .is_some_and(|b| !b.fenced && b.rack.as_deref() == Some(client_rack))
    };
    if in_rack(&state.node_id) {
        return None;
    }
    partition
        .isr
        .iter()
        .filter(|id| **id != state.node_id && in_rack(id))
        .find(|id| {
            state
                .replica_manager
                .follower_log_end_offset(partition, **id)
                .is_some_and(|end| end >= fetch_offset)
        })
        .copied()
}

/// Reads every partition within the response's byte budget. The first partition with data
/// may exceed the budget by one batch, so a consumer always makes progress.
fn read_all(
    state: &BrokerState,
    wanted: &[Wanted],
    max_bytes: i32,
    limit: ReadLimit,
) -> (Vec<FetchableTopicResponse>, i64, bool) {
    let mut remaining = i64::from(max_bytes.max(0));
    let mut total_bytes = 0i64;
    let mut any_error = false;
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    for w in wanted {
        let byte_limit = remaining.min(i64::from(w.partition_max_bytes.max(0))) as u32;
        let min_one_message = total_bytes == 0;
        let data = match &w.partition {
            Err(e) => {
                any_error = true;
                error_partition(w.partition_index, e.code())
            }
            Ok(partition) if w.preferred_read_replica.is_some() => {
                // Answered at once, without records: the consumer goes to that replica.
                any_error = true;
                marks(partition, PartitionData::default())
                    .with_partition_index(w.partition_index)
                    .with_preferred_read_replica(BrokerId(w.preferred_read_replica.unwrap_or(-1)))
                    .with_records(Some(Bytes::new()))
            }
            Ok(partition) if w.diverging_epoch.is_some() => {
                // Answered at once, without records: the follower truncates first.
                any_error = true;
                match w.diverging_epoch {
                    Some(Ok((epoch, end_offset))) => marks(partition, PartitionData::default())
                        .with_partition_index(w.partition_index)
                        .with_diverging_epoch(
                            EpochEndOffset::default()
                                .with_epoch(epoch)
                                .with_end_offset(end_offset),
                        )
                        .with_records(Some(Bytes::new())),
                    _ => marks(
                        partition,
                        error_partition(w.partition_index, ResponseError::OffsetOutOfRange.code()),
                    ),
                }
            }
            // Held back by the leader's replication throttle: marks, no records.
            Ok(partition) if w.leader_throttle == Some(true) => {
                marks(partition, PartitionData::default())
                    .with_partition_index(w.partition_index)
                    .with_records(Some(Bytes::new()))
            }
            Ok(partition) => {
                match read_partition(partition, w, byte_limit, min_one_message, limit) {
                    Ok((data, bytes)) => {
                        if w.leader_throttle.is_some() {
                            let sent = u64::try_from(bytes).unwrap_or(0);
                            state.replica_manager.record_leader_throttled_bytes(sent);
                        }
                        total_bytes += bytes;
                        remaining = (remaining - bytes).max(0);
                        data
                    }
                    Err(e) => {
                        any_error = true;
                        marks(
                            partition,
                            error_partition(w.partition_index, storage_error_code(&e)),
                        )
                    }
                }
            }
        };
        match topics.last_mut() {
            Some(t) if t.topic == w.topic && t.topic_id == w.topic_id => t.partitions.push(data),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(w.topic.clone())
                    .with_topic_id(w.topic_id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    (topics, total_bytes, any_error)
}

/// The partition's marks (high watermark, last stable offset, log start) on an answer: a
/// follower learns from them where to go after OFFSET_OUT_OF_RANGE.
fn marks(partition: &Partition, data: PartitionData) -> PartitionData {
    let log = &partition.log;
    data.with_high_watermark(log.high_watermark())
        .with_last_stable_offset(log.last_stable_offset())
        .with_log_start_offset(log.log_start_offset())
}

fn read_partition(
    partition: &Partition,
    w: &Wanted,
    byte_limit: u32,
    min_one_message: bool,
    limit: ReadLimit,
) -> Result<(PartitionData, i64), StorageError> {
    let log = &partition.log;
    let high_watermark = log.high_watermark();
    let last_stable_offset = log.last_stable_offset();
    let read_committed = limit == ReadLimit::LastStableOffset;
    let max_offset = limit.offset(log);
    let fetched = log.read(w.fetch_offset, byte_limit, max_offset, min_one_message)?;
    let records = if fetched.is_empty() {
        Bytes::new()
    } else {
        fetched.read_to_bytes()?
    };
    let bytes = records.len() as i64;
    let aborted_transactions = if read_committed {
        Some(aborted_transactions(log, w.fetch_offset, &records)?)
    } else {
        None
    };
    let data = PartitionData::default()
        .with_partition_index(w.partition_index)
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(last_stable_offset)
        .with_log_start_offset(log.log_start_offset())
        .with_aborted_transactions(aborted_transactions)
        .with_records(Some(records));
    Ok((data, bytes))
}

/// The aborted transactions a READ_COMMITTED consumer needs to drop aborted records among
/// the fetched batches: those overlapping [fetch offset, end of the last fetched batch).
fn aborted_transactions(
    log: &moldau_storage::Log,
    fetch_offset: i64,
    records: &[u8],
) -> Result<Vec<AbortedTransaction>, StorageError> {
    let mut position = 0;
    let mut upper_bound = fetch_offset;
    while position < records.len() {
        let Ok(header) = moldau_storage::BatchHeader::parse(&records[position..]) else {
            break;
        };
        position += header.size_bytes();
        upper_bound = header.next_offset();
    }
    if upper_bound <= fetch_offset {
        return Ok(vec![]);
    }
    Ok(log
        .aborted_transactions(fetch_offset, upper_bound)?
        .into_iter()
        .map(|(producer_id, first_offset)| {
            AbortedTransaction::default()
                .with_producer_id(producer_id.into())
                .with_first_offset(first_offset)
        })
        .collect())
}

fn error_partition(partition_index: i32, error_code: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition_index)
        .with_error_code(error_code)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_records(Some(Bytes::new()))
}
