//! The transactional client: a producer with a `transactional.id` writes transactions that
//! span both partitions of `sim-txn`, committing or aborting each as the seed says, and
//! records what it was told of each outcome; at the end a `read_committed` reader reads
//! both partitions for the checker (committed transactions whole, aborted ones invisible).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, GroupId,
    InitProducerIdRequest, ProduceRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Request, StrBytes};
use kafka_protocol::ResponseError;

use crate::workload::{decode, encode_batch, note, value_of, Admin, Shared};

pub const TXN_TOPIC: &str = "sim-txn";
const TRANSACTIONAL_ID: &str = "sim-pipeline";
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// How long one step of a transaction is retried before the client gives up on it.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// What the producer was told of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Committed,
    Aborted,
    /// EndTxn got no answer: either outcome is possible, but only one, whole.
    Unknown,
}

/// One transaction: its records per partition and what the producer was told.
#[derive(Clone, Debug)]
pub struct Transaction {
    pub id: usize,
    pub records: BTreeMap<i32, Vec<String>>,
    pub outcome: Outcome,
}

/// A transactional producer: its id, its coordinator, and the next sequence of each
/// partition it wrote in this epoch.
pub(crate) struct Producer {
    transactional_id: String,
    /// How long the coordinator lets a transaction of this producer stay open.
    transaction_timeout: Duration,
    coordinator: Option<String>,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    sequences: BTreeMap<(String, i32), i32>,
}

impl Producer {
    /// A producer that has no id yet ([`init`] gets one).
    pub(crate) fn new(transactional_id: &str, transaction_timeout: Duration) -> Producer {
        Producer {
            transactional_id: transactional_id.to_string(),
            transaction_timeout,
            coordinator: None,
            producer_id: -1,
            producer_epoch: -1,
            sequences: BTreeMap::new(),
        }
    }

    pub(crate) fn transactional_id(&self) -> TransactionalId {
        TransactionalId(StrBytes::from_string(self.transactional_id.clone()))
    }
}

/// Runs `count` transactions; `commit[i]` says whether the i-th is meant to commit.
pub(crate) async fn run(
    admin: &mut Admin,
    shared: &Shared,
    commit: &[bool],
    pace: Duration,
) -> Vec<Transaction> {
    admin.create_topic(TXN_TOPIC, 2, shared).await;
    let mut producer = Producer::new(TRANSACTIONAL_ID, Duration::from_secs(20));
    init(admin, &mut producer, shared).await;
    let mut done = Vec::new();
    for (id, &commit) in commit.iter().enumerate() {
        tokio::time::sleep(pace).await;
        let records: BTreeMap<i32, Vec<String>> = (0..2)
            .map(|p| (p, (0..3).map(|i| format!("t{id}-p{p}-r{i}")).collect()))
            .collect();
        let outcome = transaction(admin, &mut producer, &records, commit, shared).await;
        if outcome != Outcome::Committed && outcome != Outcome::Aborted {
            note(
                shared,
                format!("transaction {id}: outcome unknown; re-initializing"),
            );
        }
        done.push(Transaction {
            id,
            records,
            outcome,
        });
        if outcome == Outcome::Unknown {
            // A new epoch aborts whatever the coordinator still holds open, and fences
            // this producer's earlier epoch.
            init(admin, &mut producer, shared).await;
        }
    }
    done
}

/// Finds the coordinator and gets a producer id and epoch, retrying until it works. With
/// an epoch already, the coordinator bumps it and ends (completes or aborts) whatever
/// transaction that epoch left open.
pub(crate) async fn init(admin: &mut Admin, producer: &mut Producer, shared: &Shared) {
    let mut last_error = String::new();
    loop {
        let coordinator = match &producer.coordinator {
            Some(c) => c.clone(),
            None => match admin.find_coordinator(&producer.transactional_id, 1).await {
                Some(c) => {
                    producer.coordinator = Some(c.clone());
                    c
                }
                None => {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    continue;
                }
            },
        };
        // KIP-360: a producer that had an epoch asks with it, so the coordinator bumps it.
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(producer.transactional_id()))
            .with_transaction_timeout_ms(producer.transaction_timeout.as_millis() as i32)
            .with_producer_id(ProducerId(producer.producer_id))
            .with_producer_epoch(producer.producer_epoch);
        let error = match admin.send(&coordinator, &request, 4).await {
            Ok(r) => match ResponseError::try_from_code(r.error_code) {
                None => {
                    producer.producer_id = r.producer_id.0;
                    producer.producer_epoch = r.producer_epoch;
                    producer.sequences.clear();
                    note(
                        shared,
                        format!(
                            "transactional producer {} id {} epoch {}",
                            producer.transactional_id, r.producer_id.0, r.producer_epoch
                        ),
                    );
                    return;
                }
                Some(ResponseError::ProducerFenced) => {
                    // This producer was fenced (its transaction timed out and the
                    // coordinator bumped the epoch): as a Java application closes a
                    // fenced producer and makes a new one, start over without an epoch.
                    producer.producer_id = -1;
                    producer.producer_epoch = -1;
                    "ProducerFenced; starting as a new producer".to_string()
                }
                Some(e) => format!("{e:?}"),
            },
            Err(e) => e.to_string(),
        };
        producer.coordinator = None;
        if error != last_error {
            note(shared, format!("InitProducerId (transactional): {error}"));
            last_error = error;
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

/// One transaction: add both partitions, write, end. Any step that keeps failing ends it:
/// with an abort when nothing was committed yet, else with an unknown outcome.
async fn transaction(
    admin: &mut Admin,
    producer: &mut Producer,
    records: &BTreeMap<i32, Vec<String>>,
    commit: bool,
    shared: &Shared,
) -> Outcome {
    let partitions: Vec<i32> = records.keys().copied().collect();
    let mut written = add_partitions(admin, producer, TXN_TOPIC, &partitions, shared).await;
    if written {
        for (partition, values) in records {
            if !produce(admin, producer, TXN_TOPIC, *partition, values, shared).await {
                written = false;
                break;
            }
        }
    }
    let committed = commit && written;
    match end(admin, producer, committed, shared).await {
        Some(()) if committed => Outcome::Committed,
        Some(()) => Outcome::Aborted,
        None => Outcome::Unknown,
    }
}

/// Errors after which the same request may succeed (at the same or another coordinator).
pub(crate) fn retriable(error: ResponseError) -> bool {
    matches!(
        error,
        ResponseError::CoordinatorNotAvailable
            | ResponseError::NotCoordinator
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::ConcurrentTransactions
            | ResponseError::RequestTimedOut
            | ResponseError::NotEnoughReplicas
            | ResponseError::NotEnoughReplicasAfterAppend
            | ResponseError::NotLeaderOrFollower
            | ResponseError::UnknownTopicOrPartition
    )
}

/// AddPartitionsToTxn: `partitions` of `topic` join the producer's transaction.
pub(crate) async fn add_partitions(
    admin: &mut Admin,
    producer: &mut Producer,
    topic: &str,
    partitions: &[i32],
    shared: &Shared,
) -> bool {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(producer.transactional_id())
        .with_v3_and_below_producer_id(ProducerId(producer.producer_id))
        .with_v3_and_below_producer_epoch(producer.producer_epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(partitions.to_vec())]);
    let errors = |r: &kafka_protocol::messages::AddPartitionsToTxnResponse| {
        r.results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .chain(std::iter::once(r.error_code))
            .filter_map(ResponseError::try_from_code)
            .next()
    };
    let sent = to_coordinator(admin, producer, &request, 3, errors, shared);
    sent.await.is_some()
}

/// AddOffsetsToTxn: the `__consumer_offsets` partition of `group` joins the producer's
/// transaction (before its TxnOffsetCommit).
pub(crate) async fn add_offsets(
    admin: &mut Admin,
    producer: &mut Producer,
    group: &str,
    shared: &Shared,
) -> bool {
    let request = AddOffsetsToTxnRequest::default()
        .with_transactional_id(producer.transactional_id())
        .with_producer_id(ProducerId(producer.producer_id))
        .with_producer_epoch(producer.producer_epoch)
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())));
    let errors = |r: &kafka_protocol::messages::AddOffsetsToTxnResponse| {
        ResponseError::try_from_code(r.error_code)
    };
    let sent = to_coordinator(admin, producer, &request, 3, errors, shared);
    sent.await.is_some()
}

/// Sends `request` to the producer's transaction coordinator until it is answered
/// without error (`errors` names an answer's first), finding the coordinator again after
/// retriable errors; `None` on another error or past the step's time limit.
async fn to_coordinator<R: Request>(
    admin: &mut Admin,
    producer: &mut Producer,
    request: &R,
    version: i16,
    errors: impl Fn(&R::Response) -> Option<ResponseError>,
    shared: &Shared,
) -> Option<()> {
    let give_up = tokio::time::Instant::now() + STEP_TIMEOUT;
    while tokio::time::Instant::now() < give_up {
        let Some(coordinator) = coordinator(admin, producer).await else {
            continue;
        };
        if let Ok(r) = admin.send(&coordinator, request, version).await {
            match errors(&r) {
                None => return Some(()),
                Some(e) if retriable(e) => {}
                Some(e) => {
                    let id = &producer.transactional_id;
                    note(shared, format!("{:?} of {id}: {e:?}", R::KEY));
                    return None;
                }
            }
        }
        producer.coordinator = None;
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
    None
}

async fn coordinator(admin: &mut Admin, producer: &mut Producer) -> Option<String> {
    if producer.coordinator.is_none() {
        producer.coordinator = admin.find_coordinator(&producer.transactional_id, 1).await;
        if producer.coordinator.is_none() {
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }
    producer.coordinator.clone()
}

/// Produces `values` to `topic`-`partition` as one batch of the producer's transaction
/// (the partition added first); `false` when it was not acknowledged.
pub(crate) async fn produce(
    admin: &mut Admin,
    producer: &mut Producer,
    topic: &str,
    partition: i32,
    values: &[String],
    shared: &Shared,
) -> bool {
    let key = (topic.to_string(), partition);
    let sequence = *producer.sequences.get(&key).unwrap_or(&0);
    let batch = encode_batch(
        values,
        producer.producer_id,
        producer.producer_epoch,
        sequence,
        true,
    );
    let request = ProduceRequest::default()
        .with_transactional_id(Some(producer.transactional_id()))
        .with_acks(-1)
        .with_timeout_ms(3_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    match admin
        .produce_request(topic, partition, &request, STEP_TIMEOUT, shared)
        .await
    {
        Some(_) => {
            producer
                .sequences
                .insert(key, sequence + values.len() as i32);
            true
        }
        None => false,
    }
}

/// EndTxn until answered; `None` when it never was (the outcome is then unknown).
pub(crate) async fn end(
    admin: &mut Admin,
    producer: &mut Producer,
    commit: bool,
    shared: &Shared,
) -> Option<()> {
    let request = EndTxnRequest::default()
        .with_transactional_id(producer.transactional_id())
        .with_producer_id(ProducerId(producer.producer_id))
        .with_producer_epoch(producer.producer_epoch)
        .with_committed(commit);
    let errors =
        |r: &kafka_protocol::messages::EndTxnResponse| ResponseError::try_from_code(r.error_code);
    to_coordinator(admin, producer, &request, 3, errors, shared).await
}

/// Every record `read_committed` shows of `topic`-`partition`, up to its last stable
/// offset: records of aborted transactions and control records left out, as a consumer
/// does.
pub(crate) async fn read_committed(
    admin: &mut Admin,
    topic: &str,
    partition: i32,
) -> Vec<(i64, String)> {
    let mut records = Vec::new();
    let mut offset = 0i64;
    // Producers whose current transaction is aborted, and the aborted transactions not
    // reached yet (producer id, first offset), as the consumer's fetcher tracks them.
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut pending_aborts: Vec<(i64, i64)> = Vec::new();
    loop {
        let Some(data) = admin.fetch(topic, partition, offset, 1).await else {
            continue;
        };
        let last_stable_offset = data.last_stable_offset;
        for aborted in data.aborted_transactions.iter().flatten() {
            if !pending_aborts.contains(&(aborted.producer_id.0, aborted.first_offset)) {
                pending_aborts.push((aborted.producer_id.0, aborted.first_offset));
            }
        }
        for record in decode(data.records) {
            if record.offset < offset || record.offset >= last_stable_offset {
                continue;
            }
            offset = record.offset + 1;
            let producer_id = record.producer_id;
            if record.transactional {
                pending_aborts.retain(|(pid, first)| {
                    let reached = *pid == producer_id && *first <= record.offset;
                    if reached {
                        aborting.insert(producer_id);
                    }
                    !reached
                });
            }
            if record.control {
                // A marker ends the producer's transaction, aborted or not.
                aborting.remove(&producer_id);
                continue;
            }
            if record.transactional && aborting.contains(&producer_id) {
                continue;
            }
            records.push((record.offset, value_of(&record)));
        }
        if offset >= last_stable_offset {
            return records;
        }
    }
}
