//! The transactional client: a producer with a `transactional.id` writes transactions that
//! span both partitions of `sim-txn`, committing or aborting each as the seed says, and
//! records what it was told of each outcome; at the end a `read_committed` reader reads
//! both partitions for the checker (committed transactions whole, aborted ones invisible).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest, ProduceRequest, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
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

struct Producer {
    coordinator: Option<String>,
    producer_id: i64,
    producer_epoch: i16,
    sequences: BTreeMap<i32, i32>,
}

/// Runs `count` transactions; `commit[i]` says whether the i-th is meant to commit.
pub(crate) async fn run(
    admin: &mut Admin,
    shared: &Shared,
    commit: &[bool],
    pace: Duration,
) -> Vec<Transaction> {
    admin.create_topic(TXN_TOPIC, 2, shared).await;
    let mut producer = Producer {
        coordinator: None,
        producer_id: -1,
        producer_epoch: -1,
        sequences: BTreeMap::new(),
    };
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

/// Finds the coordinator and gets a producer id and epoch, retrying until it works.
async fn init(admin: &mut Admin, producer: &mut Producer, shared: &Shared) {
    let mut last_error = String::new();
    loop {
        let coordinator = match &producer.coordinator {
            Some(c) => c.clone(),
            None => match admin.find_coordinator(TRANSACTIONAL_ID, 1).await {
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
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(
                TRANSACTIONAL_ID,
            ))))
            .with_transaction_timeout_ms(20_000)
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
                            "transactional producer id {} epoch {}",
                            r.producer_id.0, r.producer_epoch
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
    let mut written = add_partitions(admin, producer, &partitions, shared).await;
    if written {
        for (partition, values) in records {
            if !produce(admin, producer, *partition, values, shared).await {
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

fn retriable(error: ResponseError) -> bool {
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

async fn add_partitions(
    admin: &mut Admin,
    producer: &mut Producer,
    partitions: &[i32],
    shared: &Shared,
) -> bool {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_static_str(
            TRANSACTIONAL_ID,
        )))
        .with_v3_and_below_producer_id(ProducerId(producer.producer_id))
        .with_v3_and_below_producer_epoch(producer.producer_epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TXN_TOPIC)))
            .with_partitions(partitions.to_vec())]);
    let give_up = tokio::time::Instant::now() + STEP_TIMEOUT;
    while tokio::time::Instant::now() < give_up {
        let Some(coordinator) = coordinator(admin, producer).await else {
            continue;
        };
        let error = match admin.send(&coordinator, &request, 3).await {
            Ok(r) => {
                let codes = r
                    .results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| {
                        t.results_by_partition
                            .iter()
                            .map(|p| p.partition_error_code)
                    })
                    .chain(std::iter::once(r.error_code));
                match codes.filter_map(ResponseError::try_from_code).next() {
                    None => return true,
                    Some(e) => Some(e),
                }
            }
            Err(_) => None,
        };
        if let Some(e) = error {
            if !retriable(e) {
                note(shared, format!("AddPartitionsToTxn: {e:?}"));
                return false;
            }
        }
        producer.coordinator = None;
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
    false
}

async fn coordinator(admin: &mut Admin, producer: &mut Producer) -> Option<String> {
    if producer.coordinator.is_none() {
        producer.coordinator = admin.find_coordinator(TRANSACTIONAL_ID, 1).await;
        if producer.coordinator.is_none() {
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }
    producer.coordinator.clone()
}

async fn produce(
    admin: &mut Admin,
    producer: &mut Producer,
    partition: i32,
    values: &[String],
    shared: &Shared,
) -> bool {
    let sequence = *producer.sequences.get(&partition).unwrap_or(&0);
    let batch = encode_batch(
        values,
        producer.producer_id,
        producer.producer_epoch,
        sequence,
        true,
    );
    let request = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(
            TRANSACTIONAL_ID,
        ))))
        .with_acks(-1)
        .with_timeout_ms(3_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TXN_TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    match admin
        .produce_request(TXN_TOPIC, partition, &request, STEP_TIMEOUT, shared)
        .await
    {
        Some(_) => {
            producer
                .sequences
                .insert(partition, sequence + values.len() as i32);
            true
        }
        None => false,
    }
}

/// EndTxn until answered; `None` when it never was (the outcome is then unknown).
async fn end(
    admin: &mut Admin,
    producer: &mut Producer,
    commit: bool,
    shared: &Shared,
) -> Option<()> {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(StrBytes::from_static_str(TRANSACTIONAL_ID)))
        .with_producer_id(ProducerId(producer.producer_id))
        .with_producer_epoch(producer.producer_epoch)
        .with_committed(commit);
    let give_up = tokio::time::Instant::now() + STEP_TIMEOUT;
    while tokio::time::Instant::now() < give_up {
        let Some(coordinator) = coordinator(admin, producer).await else {
            continue;
        };
        if let Ok(r) = admin.send(&coordinator, &request, 3).await {
            match ResponseError::try_from_code(r.error_code) {
                None => return Some(()),
                Some(e) if retriable(e) => {}
                Some(e) => {
                    note(shared, format!("EndTxn: {e:?}"));
                    return None;
                }
            }
        }
        producer.coordinator = None;
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
    None
}

/// Every record `read_committed` shows of `partition`, up to its last stable offset:
/// records of aborted transactions and control records left out, as a consumer does.
pub(crate) async fn read_committed(admin: &mut Admin, partition: i32) -> Vec<(i64, String)> {
    let mut records = Vec::new();
    let mut offset = 0i64;
    // Producers whose current transaction is aborted, and the aborted transactions not
    // reached yet (producer id, first offset), as the consumer's fetcher tracks them.
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut pending_aborts: Vec<(i64, i64)> = Vec::new();
    loop {
        let Some(data) = admin.fetch(TXN_TOPIC, partition, offset, 1).await else {
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
