//! The simulated clients: an admin that creates the topic, an idempotent acks=all
//! producer that records every acknowledgement, and at the end a reader that fetches every
//! partition from its leader for the checker.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, FindCoordinatorRequest, InitProducerIdRequest,
    MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use kafka_protocol::ResponseError;

use crate::client::{ClientError, KafkaConnection};

pub const TOPIC: &str = "sim-events";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// What the producer was told: `values[i]` is at `base_offset + i` of `partition`.
#[derive(Clone, Debug)]
pub struct Acknowledged {
    pub partition: i32,
    pub base_offset: i64,
    pub values: Vec<String>,
}

/// Everything the clients saw, shared with the harness (one thread runs both).
#[derive(Default)]
pub struct Observations {
    pub acknowledged: Vec<Acknowledged>,
    /// Batches given up on (outcome unknown: they may or may not be in the log).
    pub abandoned: usize,
    /// Records read back from each partition's leader, `(offset, value)` in offset order,
    /// and the high watermark they were read up to.
    pub read_back: BTreeMap<i32, (i64, Vec<(i64, String)>)>,
    pub events: Vec<String>,
    /// The transactional client's transactions, and what `read_committed` showed of
    /// `sim-txn` by partition.
    pub transactions: Vec<crate::transactions::Transaction>,
    pub read_committed: BTreeMap<i32, Vec<(i64, String)>>,
    /// What each OffsetFetch of the group showed, in order.
    pub offsets_seen: Vec<crate::offsets::OffsetsSeen>,
    /// The pipeline group's committed offsets of `sim-events` once the pipeline stopped,
    /// what `read_committed` showed of `sim-pipeline-out` by partition, and why the
    /// pipeline gave up, if it did.
    pub pipeline_committed: BTreeMap<i32, i64>,
    pub pipeline_output: BTreeMap<i32, Vec<(i64, String)>>,
    pub pipeline_failure: Option<String>,
    pub producing_done: bool,
    pub done: bool,
}

pub type Shared = Rc<RefCell<Observations>>;

pub struct WorkloadSpec {
    pub bootstrap: Vec<String>,
    pub partitions: i32,
    pub batches: usize,
    pub max_records_per_batch: usize,
    /// Drawn from the seed: record counts per batch.
    pub batch_sizes: Vec<usize>,
    /// Drawn from the seed: whether each transaction is meant to commit.
    pub transaction_commits: Vec<bool>,
    /// Offset commits of the group-offsets client.
    pub offset_commits: usize,
    /// Transactions each pipeline member runs over the fault window (more once the
    /// producer is done, until the input is consumed).
    pub pipeline_transactions: usize,
    /// Drawn from the seed: the pipeline member that fails mid-transaction, and how.
    pub pipeline_fault: Option<crate::pipeline::MemberFault>,
    /// Whether the admin moves a replica of every partition to another broker.
    pub reassign: bool,
    /// How long the clients spread their work over: the fault window, so that every
    /// fault meets writes, transactions and commits in flight.
    pub spread_over: Duration,
}

impl WorkloadSpec {
    /// The pause between two of `count` steps spread over `spread_over`.
    pub(crate) fn pace(&self, count: usize) -> Duration {
        self.spread_over / (count.max(1) as u32)
    }
}

/// The client host's program: the idempotent producer, the transactional one, the group
/// clients and the pipeline side by side, then (once the harness has healed the cluster,
/// `heal` tells it, and the pipeline has consumed its input) every partition read back,
/// `sim-txn` and `sim-pipeline-out` with `read_committed`.
pub async fn run(
    spec: Rc<WorkloadSpec>,
    shared: Shared,
    heal: Rc<RefCell<bool>>,
) -> turmoil::Result {
    let mut admin = Admin::new(spec.bootstrap.clone());
    let mut txn_admin = Admin::new(spec.bootstrap.clone());
    let mut offsets_admin = Admin::new(spec.bootstrap.clone());
    let transactions = async {
        let pace = spec.pace(spec.transaction_commits.len());
        crate::transactions::run(&mut txn_admin, &shared, &spec.transaction_commits, pace).await
    };
    let offsets = async {
        let pace = spec.pace(spec.offset_commits);
        let partitions = spec.partitions;
        let commits = spec.offset_commits;
        crate::offsets::run(&mut offsets_admin, &shared, partitions, commits, pace).await
    };
    let mut member_admin = Admin::new(spec.bootstrap.clone());
    let member = async {
        let steps = spec.offset_commits / 3;
        let pace = spec.pace(steps);
        crate::member::run(&mut member_admin, &shared, spec.partitions, steps, pace).await
    };
    let mut reassign_admin = Admin::new(spec.bootstrap.clone());
    let reassignment = async {
        if spec.reassign {
            let start = Duration::from_secs(8);
            crate::reassign::run(
                &mut reassign_admin,
                &shared,
                start,
                Duration::from_secs(120),
            )
            .await;
        }
    };
    let clients = async {
        let ((), transactions, mut offsets, member_offsets, ()) = tokio::join!(
            produce_all(&spec, &mut admin, &shared),
            transactions,
            offsets,
            member,
            reassignment
        );
        offsets.extend(member_offsets);
        shared.borrow_mut().transactions = transactions;
        shared.borrow_mut().offsets_seen = offsets;
        shared.borrow_mut().producing_done = true;
        note(&shared, "producing done".to_string());
    };
    // The pipeline outlives the other clients: it consumes the input to its end.
    let ((), committed) = tokio::join!(clients, crate::pipeline::run(&spec, &shared, &heal));
    shared.borrow_mut().pipeline_committed = committed;
    while !*heal.borrow() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for partition in 0..spec.partitions {
        let read = admin.read_partition(partition).await;
        shared.borrow_mut().read_back.insert(partition, read);
    }
    for partition in 0..2 {
        let topic = crate::transactions::TXN_TOPIC;
        let read = crate::transactions::read_committed(&mut admin, topic, partition).await;
        shared.borrow_mut().read_committed.insert(partition, read);
    }
    for partition in 0..spec.partitions {
        let topic = crate::pipeline::OUTPUT_TOPIC;
        let read = crate::transactions::read_committed(&mut admin, topic, partition).await;
        shared.borrow_mut().pipeline_output.insert(partition, read);
    }
    shared.borrow_mut().done = true;
    Ok(())
}

/// The idempotent acks=all producer: every batch retried with its sequence until
/// acknowledged (or given up on), each acknowledgement recorded.
async fn produce_all(spec: &WorkloadSpec, admin: &mut Admin, shared: &Shared) {
    admin.create_topic(TOPIC, spec.partitions, shared).await;
    let (producer_id, producer_epoch) = admin.init_producer_id(shared).await;
    note(
        shared,
        format!("producer id {producer_id} epoch {producer_epoch}"),
    );
    let mut next_sequence: BTreeMap<i32, i32> = BTreeMap::new();
    let pace = spec.pace(spec.batches);
    for batch in 0..spec.batches {
        tokio::time::sleep(pace).await;
        let partition = (batch as i32) % spec.partitions;
        let Some(&sequence) = next_sequence.get(&partition).or(Some(&0)) else {
            continue;
        };
        if sequence == i32::MIN {
            continue;
        }
        let count =
            spec.batch_sizes[batch % spec.batch_sizes.len()].clamp(1, spec.max_records_per_batch);
        let values: Vec<String> = (0..count)
            .map(|i| format!("p{partition}-s{}", sequence + i as i32))
            .collect();
        let records = encode_batch(&values, producer_id, producer_epoch, sequence, false);
        match admin.produce(partition, records, shared).await {
            Some(base_offset) => {
                shared.borrow_mut().acknowledged.push(Acknowledged {
                    partition,
                    base_offset,
                    values,
                });
                next_sequence.insert(partition, sequence + count as i32);
            }
            None => {
                // Unknown outcome: the next batch cannot reuse or skip this sequence
                // safely, so this partition's producing stops (as a client raising
                // the error to its application would).
                shared.borrow_mut().abandoned += 1;
                next_sequence.insert(partition, i32::MIN);
            }
        }
    }
}

pub(crate) fn note(shared: &Shared, event: String) {
    let at = turmoil::sim_elapsed().unwrap_or_default().as_millis();
    shared
        .borrow_mut()
        .events
        .push(format!("{at:>7} ms client: {event}"));
}

/// One batch of `values` from a producer, starting at `sequence`.
pub(crate) fn encode_batch(
    values: &[String],
    producer_id: i64,
    producer_epoch: i16,
    sequence: i32,
    transactional: bool,
) -> Bytes {
    let now_ms = moldau_storage::seams::now_ms();
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: sequence + i as i32,
            timestamp: now_ms,
            key: None,
            value: Some(Bytes::from(value.clone())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("a batch of small records encodes");
    buf.freeze()
}

/// Bootstrap addresses, cached leaders, and one connection per node.
pub(crate) struct Admin {
    bootstrap: Vec<String>,
    /// How long a request may wait for its answer.
    request_timeout: Duration,
    next_bootstrap: usize,
    /// Leader address by topic and partition.
    leaders: BTreeMap<(String, i32), String>,
    connections: BTreeMap<String, KafkaConnection>,
}

impl Admin {
    pub(crate) fn new(bootstrap: Vec<String>) -> Self {
        Admin::with_timeout(bootstrap, REQUEST_TIMEOUT)
    }

    /// For requests the broker may hold longer than usual (JoinGroup waits for the
    /// group's rebalance).
    pub(crate) fn with_timeout(bootstrap: Vec<String>, request_timeout: Duration) -> Self {
        Admin {
            bootstrap,
            request_timeout,
            next_bootstrap: 0,
            leaders: BTreeMap::new(),
            connections: BTreeMap::new(),
        }
    }

    async fn connection(&mut self, addr: &str) -> Result<&mut KafkaConnection, ClientError> {
        if !self.connections.contains_key(addr) {
            let connection = KafkaConnection::connect(addr, self.request_timeout).await?;
            self.connections.insert(addr.to_string(), connection);
        }
        Ok(self.connections.get_mut(addr).expect("just inserted"))
    }

    /// The coordinator of `key` (`key_type` 0: a group, 1: a transactional id), asked of
    /// any node; `None` when it did not say.
    pub(crate) async fn find_coordinator(&mut self, key: &str, key_type: i8) -> Option<String> {
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(key.to_string()))
            .with_key_type(key_type);
        let addr = self.any_node();
        let response = self.send(&addr, &request, 3).await.ok()?;
        (response.error_code == 0).then(|| format!("{}:{}", response.host, response.port))
    }

    pub(crate) fn any_node(&mut self) -> String {
        self.next_bootstrap += 1;
        self.bootstrap[self.next_bootstrap % self.bootstrap.len()].clone()
    }

    /// Sends to `addr`; a failed connection is dropped so the next call reconnects.
    pub(crate) async fn send<R: kafka_protocol::protocol::Request>(
        &mut self,
        addr: &str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let result = match self.connection(addr).await {
            Ok(connection) => connection.send(request, version).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.connections.remove(addr);
        }
        result
    }

    /// Creates `topic` (RF 3, `min.insync.replicas=2`), retrying until it exists.
    pub(crate) async fn create_topic(&mut self, topic: &str, partitions: i32, shared: &Shared) {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_num_partitions(partitions)
                .with_replication_factor(3)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("min.insync.replicas"))
                    .with_value(Some(StrBytes::from_static_str("2")))])]);
        loop {
            let addr = self.any_node();
            match self.send(&addr, &request, 5).await {
                Ok(response) => {
                    let code = response.topics.first().map_or(-1, |t| t.error_code);
                    match ResponseError::try_from_code(code) {
                        None | Some(ResponseError::TopicAlreadyExists) => {
                            note(shared, format!("topic {topic} created through {addr}"));
                            return;
                        }
                        Some(e) => note(shared, format!("CreateTopics {topic} via {addr}: {e:?}")),
                    }
                }
                Err(e) => note(shared, format!("CreateTopics {topic} via {addr}: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub(crate) async fn init_producer_id(&mut self, shared: &Shared) -> (i64, i16) {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(kafka_protocol::messages::ProducerId(-1))
            .with_producer_epoch(-1);
        let mut last_error = String::new();
        loop {
            let addr = self.any_node();
            let error = match self.send(&addr, &request, 4).await {
                Ok(response) => match ResponseError::try_from_code(response.error_code) {
                    None => return (response.producer_id.0, response.producer_epoch),
                    Some(e) => format!("{e:?}"),
                },
                Err(e) => e.to_string(),
            };
            if error != last_error {
                note(shared, format!("InitProducerId via {addr}: {error}"));
                last_error = error;
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    }

    async fn refresh_leaders(&mut self) {
        let topics = [
            TOPIC,
            crate::transactions::TXN_TOPIC,
            crate::pipeline::OUTPUT_TOPIC,
        ]
        .map(|name| {
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str(name))))
        });
        let request = MetadataRequest::default().with_topics(Some(topics.to_vec()));
        let addr = self.any_node();
        let Ok(response) = self.send(&addr, &request, 9).await else {
            return;
        };
        let brokers: BTreeMap<BrokerId, String> = response
            .brokers
            .iter()
            .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
            .collect();
        self.leaders.clear();
        for topic in &response.topics {
            let Some(name) = &topic.name else {
                continue;
            };
            for p in &topic.partitions {
                if let Some(addr) = brokers.get(&p.leader_id) {
                    self.leaders
                        .insert((name.to_string(), p.partition_index), addr.clone());
                }
            }
        }
    }

    /// The leader of `topic`-`partition`, from Metadata when not known (`None` after a
    /// refresh that did not find it; the caller retries).
    pub(crate) async fn leader(&mut self, topic: &str, partition: i32) -> Option<String> {
        let key = (topic.to_string(), partition);
        if let Some(addr) = self.leaders.get(&key) {
            return Some(addr.clone());
        }
        self.refresh_leaders().await;
        let found = self.leaders.get(&key).cloned();
        if found.is_none() {
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
        found
    }

    pub(crate) fn forget_leader(&mut self, topic: &str, partition: i32) {
        self.leaders.remove(&(topic.to_string(), partition));
    }

    /// Produces one batch of `sim-events` with acks=all, retrying the same bytes (same
    /// sequence) until acknowledged; `None` after a minute of simulated time.
    async fn produce(&mut self, partition: i32, records: Bytes, shared: &Shared) -> Option<i64> {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(3_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])]);
        self.produce_request(TOPIC, partition, &request, Duration::from_secs(60), shared)
            .await
    }

    /// Sends `request` (one batch for `topic`-`partition`) to the partition's leader
    /// until it is acknowledged (the base offset), following leader changes; `None` once
    /// `timeout` of simulated time has passed without.
    pub(crate) async fn produce_request(
        &mut self,
        topic: &str,
        partition: i32,
        request: &ProduceRequest,
        timeout: Duration,
        shared: &Shared,
    ) -> Option<i64> {
        let give_up = tokio::time::Instant::now() + timeout;
        let mut last_error = String::new();
        while tokio::time::Instant::now() < give_up {
            let Some(addr) = self.leader(topic, partition).await else {
                continue;
            };
            let error = match self.send(&addr, request, 9).await {
                Ok(response) => {
                    let p = response
                        .responses
                        .first()
                        .and_then(|t| t.partition_responses.first());
                    match p.map(|p| (ResponseError::try_from_code(p.error_code), p.base_offset)) {
                        Some((None, base_offset)) => return Some(base_offset),
                        Some((Some(e), _)) => format!("{e:?}"),
                        None => "empty response".to_string(),
                    }
                }
                Err(e) => e.to_string(),
            };
            if error != last_error {
                note(
                    shared,
                    format!("produce {topic}-{partition} via {addr}: {error}"),
                );
                last_error = error;
            }
            self.forget_leader(topic, partition);
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
        note(shared, format!("produce {topic}-{partition}: gave up"));
        None
    }

    /// One Fetch of `topic`-`partition` at `offset` from its leader (`isolation_level` 1:
    /// read_committed); `None` after an error (the leader is looked up again).
    pub(crate) async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        isolation_level: i8,
    ) -> Option<PartitionData> {
        let addr = self.leader(topic, partition).await?;
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_isolation_level(isolation_level)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let data = match self.send(&addr, &request, 12).await {
            Ok(response) => response
                .responses
                .into_iter()
                .next()
                .and_then(|t| t.partitions.into_iter().next())
                .filter(|data| data.error_code == 0),
            Err(_) => None,
        };
        if data.is_none() {
            self.forget_leader(topic, partition);
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
        data
    }

    /// Every record of `partition` up to its leader's high watermark (read_uncommitted).
    pub(crate) async fn read_partition(&mut self, partition: i32) -> (i64, Vec<(i64, String)>) {
        let mut records = Vec::new();
        let mut offset = 0i64;
        loop {
            let Some(data) = self.fetch(TOPIC, partition, offset, 0).await else {
                continue;
            };
            let high_watermark = data.high_watermark;
            for record in decode(data.records) {
                if record.offset >= offset && record.offset < high_watermark {
                    records.push((record.offset, value_of(&record)));
                    offset = record.offset + 1;
                }
            }
            if offset >= high_watermark {
                return (high_watermark, records);
            }
        }
    }
}

/// The records of a Fetch answer's batches.
pub(crate) fn decode(records: Option<Bytes>) -> Vec<Record> {
    let mut bytes = records.unwrap_or_default();
    let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap_or_default();
    sets.into_iter().flat_map(|s| s.records).collect()
}

/// A record's value as the clients wrote it (UTF-8).
pub(crate) fn value_of(record: &Record) -> String {
    record
        .value
        .as_ref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}
