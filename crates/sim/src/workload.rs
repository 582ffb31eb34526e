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
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, InitProducerIdRequest, MetadataRequest,
    ProduceRequest, TopicName,
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
}

/// The client host's program: produce everything, then (once the harness has healed the
/// cluster, `producing_done` tells it) read every partition back.
pub async fn run(
    spec: Rc<WorkloadSpec>,
    shared: Shared,
    heal: Rc<RefCell<bool>>,
) -> turmoil::Result {
    let mut admin = Admin::new(spec.bootstrap.clone());
    admin.create_topic(spec.partitions, &shared).await;
    let (producer_id, producer_epoch) = admin.init_producer_id(&shared).await;
    note(
        &shared,
        format!("producer id {producer_id} epoch {producer_epoch}"),
    );
    let mut next_sequence: BTreeMap<i32, i32> = BTreeMap::new();
    for batch in 0..spec.batches {
        let partition = (batch as i32) % spec.partitions;
        let sequence = *next_sequence.entry(partition).or_insert(0);
        let count =
            spec.batch_sizes[batch % spec.batch_sizes.len()].clamp(1, spec.max_records_per_batch);
        let values: Vec<String> = (0..count)
            .map(|i| format!("p{partition}-s{}", sequence + i as i32))
            .collect();
        let records = encode_batch(&values, producer_id, producer_epoch, sequence);
        match admin.produce(partition, records, &shared).await {
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
        if next_sequence.values().all(|s| *s == i32::MIN) {
            break;
        }
        next_sequence.retain(|_, s| *s != i32::MIN);
    }
    shared.borrow_mut().producing_done = true;
    note(&shared, "producing done".to_string());
    while !*heal.borrow() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for partition in 0..spec.partitions {
        let read = admin.read_partition(partition).await;
        shared.borrow_mut().read_back.insert(partition, read);
    }
    shared.borrow_mut().done = true;
    Ok(())
}

fn note(shared: &Shared, event: String) {
    let at = turmoil::sim_elapsed().unwrap_or_default().as_millis();
    shared
        .borrow_mut()
        .events
        .push(format!("{at:>7} ms client: {event}"));
}

fn encode_batch(values: &[String], producer_id: i64, producer_epoch: i16, sequence: i32) -> Bytes {
    let now_ms = moldau_storage::seams::now_ms();
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            transactional: false,
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
struct Admin {
    bootstrap: Vec<String>,
    next_bootstrap: usize,
    leaders: BTreeMap<i32, (i32, String)>,
    connections: BTreeMap<String, KafkaConnection>,
}

impl Admin {
    fn new(bootstrap: Vec<String>) -> Self {
        Admin {
            bootstrap,
            next_bootstrap: 0,
            leaders: BTreeMap::new(),
            connections: BTreeMap::new(),
        }
    }

    async fn connection(&mut self, addr: &str) -> Result<&mut KafkaConnection, ClientError> {
        if !self.connections.contains_key(addr) {
            let connection = KafkaConnection::connect(addr, REQUEST_TIMEOUT).await?;
            self.connections.insert(addr.to_string(), connection);
        }
        Ok(self.connections.get_mut(addr).expect("just inserted"))
    }

    fn any_node(&mut self) -> String {
        self.next_bootstrap += 1;
        self.bootstrap[self.next_bootstrap % self.bootstrap.len()].clone()
    }

    /// Sends to `addr`; a failed connection is dropped so the next call reconnects.
    async fn send<R: kafka_protocol::protocol::Request>(
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

    async fn create_topic(&mut self, partitions: i32, shared: &Shared) {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
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
                            note(shared, format!("topic created through {addr}"));
                            return;
                        }
                        Some(e) => note(shared, format!("CreateTopics via {addr}: {e:?}")),
                    }
                }
                Err(e) => note(shared, format!("CreateTopics via {addr}: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn init_producer_id(&mut self, shared: &Shared) -> (i64, i16) {
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
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))]));
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
            for p in &topic.partitions {
                if let Some(addr) = brokers.get(&p.leader_id) {
                    self.leaders
                        .insert(p.partition_index, (p.leader_id.0, addr.clone()));
                }
            }
        }
    }

    /// Produces one batch with acks=all, retrying the same bytes (same sequence) until
    /// acknowledged; `None` after a minute of simulated time without an answer.
    async fn produce(&mut self, partition: i32, records: Bytes, shared: &Shared) -> Option<i64> {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(3_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])]);
        let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut last_error = String::new();
        while tokio::time::Instant::now() < give_up {
            let Some((_, addr)) = self.leaders.get(&partition).cloned() else {
                self.refresh_leaders().await;
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            };
            let answer = self.send(&addr, &request, 9).await;
            let error = match answer {
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
                note(shared, format!("produce p{partition} via {addr}: {error}"));
                last_error = error;
            }
            self.refresh_leaders().await;
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
        note(shared, format!("produce p{partition}: gave up"));
        None
    }

    /// Every record of `partition` up to its leader's high watermark (read_uncommitted).
    async fn read_partition(&mut self, partition: i32) -> (i64, Vec<(i64, String)>) {
        let mut records = Vec::new();
        let mut offset = 0i64;
        loop {
            let Some((_, addr)) = self.leaders.get(&partition).cloned() else {
                self.refresh_leaders().await;
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            };
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(0)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(partition)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20)])]);
            let Ok(response) = self.send(&addr, &request, 12).await else {
                self.refresh_leaders().await;
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            };
            let Some(data) = response
                .responses
                .first()
                .and_then(|t| t.partitions.first())
            else {
                continue;
            };
            if data.error_code != 0 {
                self.refresh_leaders().await;
                tokio::time::sleep(RETRY_BACKOFF).await;
                continue;
            }
            let high_watermark = data.high_watermark;
            let mut bytes = data.records.clone().unwrap_or_default();
            let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap_or_default();
            for record in sets.into_iter().flat_map(|s| s.records) {
                if record.offset >= offset && record.offset < high_watermark {
                    let value = record
                        .value
                        .map(|v| String::from_utf8_lossy(&v).into_owned())
                        .unwrap_or_default();
                    records.push((record.offset, value));
                    offset = record.offset + 1;
                }
            }
            if offset >= high_watermark {
                return (high_watermark, records);
            }
        }
    }
}
