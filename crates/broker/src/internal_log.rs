//! Logs the broker writes for its own state machines: `__consumer_offsets` and
//! `__transaction_state` (the metadata log is the quorum's, in `moldau-controller`). Each
//! holds keyed records in ordinary batches, written by one coordinator and replayed in
//! full at startup.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use moldau_coordinator::txn::TRANSACTION_STATE_TOPIC;
use moldau_metadata::MetadataImage;
use moldau_storage::{BatchHeader, Log, TopicPartition};

use kafka_protocol::ResponseError;

use crate::error::BrokerError;
use crate::handlers::create_topics::{create_topic_via_controller, NewTopic};
use crate::replica_manager::{Partition, ReplicaManager};
use crate::state::BrokerState;

/// One data record of an internal log.
pub struct InternalRecord {
    pub key: Option<Bytes>,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
    /// The producer of a transactional batch (TxnOffsetCommit in `__consumer_offsets`): its
    /// records count only once a COMMIT marker of that producer follows. -1 otherwise.
    pub transactional_producer_id: i64,
}

/// A COMMIT or ABORT marker of an internal log (`__consumer_offsets`).
pub struct InternalMarker {
    pub producer_id: i64,
    pub commit: bool,
}

/// Encodes `(key, value)` pairs as one uncompressed RecordBatch v2 (offsets are assigned on
/// append).
pub fn encode_batch(
    records: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    now_ms: i64,
) -> Result<BytesMut, BrokerError> {
    encode(records, None, now_ms)
}

/// [`encode_batch`] as a transactional batch of `(producer id, producer epoch)`, as the
/// group coordinator writes TxnOffsetCommit offsets (no sequence: origin Coordinator).
pub fn encode_transactional_batch(
    records: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    producer: (i64, i16),
    now_ms: i64,
) -> Result<BytesMut, BrokerError> {
    encode(records, Some(producer), now_ms)
}

fn encode(
    records: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    producer: Option<(i64, i16)>,
    now_ms: i64,
) -> Result<BytesMut, BrokerError> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch wherever offset - sequence changes: counting
            // up from -1 (NO_SEQUENCE as the base) keeps one write in one batch, so a
            // crash can never leave half of a metadata operation in the log.
            sequence: i as i32 - 1,
            timestamp: now_ms,
            key: Some(key),
            value,
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
    .map_err(|e| BrokerError::MetadataLog(format!("cannot encode batch: {e}")))?;
    Ok(buf)
}

/// Hands every data record from the log start to the log end to `apply`, in offset order.
/// Control batches are skipped; batches emptied by compaction still advance the position.
pub fn replay(
    log: &Log,
    apply: impl FnMut(InternalRecord) -> Result<(), BrokerError>,
) -> Result<(), BrokerError> {
    replay_with_markers(log, apply, |_| Ok(()))
}

/// [`replay`], also handing each transaction marker to `on_marker` in offset order.
pub fn replay_with_markers(
    log: &Log,
    mut apply: impl FnMut(InternalRecord) -> Result<(), BrokerError>,
    mut on_marker: impl FnMut(InternalMarker) -> Result<(), BrokerError>,
) -> Result<(), BrokerError> {
    let name = log.topic_partition().to_string();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let data = log.read(offset, 1 << 20, end, true)?;
        if data.is_empty() {
            break;
        }
        let bytes = data.read_to_bytes()?;
        let before = offset;
        let mut position = 0;
        while position < bytes.len() {
            let header = BatchHeader::parse(&bytes[position..])?;
            let batch_end = position + header.size_bytes();
            let mut batch = bytes.slice(position..batch_end.min(bytes.len()));
            position = batch_end;
            offset = header.next_offset();
            if header.is_control() {
                if let Some(commit) = marker_is_commit(&batch) {
                    on_marker(InternalMarker {
                        producer_id: header.producer_id,
                        commit,
                    })?;
                }
                continue;
            }
            let transactional_producer_id = if header.is_transactional() {
                header.producer_id
            } else {
                -1
            };
            let decoded = RecordBatchDecoder::decode(&mut batch).map_err(|e| {
                BrokerError::MetadataLog(format!(
                    "{name}: undecodable batch at offset {}: {e}",
                    header.base_offset
                ))
            })?;
            for record in decoded.records {
                apply(InternalRecord {
                    key: record.key,
                    value: record.value,
                    transactional_producer_id,
                })?;
            }
        }
        if offset == before {
            break;
        }
    }
    Ok(())
}

/// Whether a control batch is a COMMIT (true) or ABORT (false) marker; `None` for other
/// control records. The control record key is (version: int16, type: int16).
fn marker_is_commit(batch: &Bytes) -> Option<bool> {
    let mut batch = batch.clone();
    let decoded = RecordBatchDecoder::decode(&mut batch).ok()?;
    let key = decoded.records.first()?.key.clone()?;
    match key.get(2..4)? {
        [0, 0] => Some(false),
        [0, 1] => Some(true),
        _ => None,
    }
}

/// A coordinator's internal topic (`__consumer_offsets`, `__transaction_state`): created on
/// first use, its partitions loaded into shards by the coordinator.
pub struct CoordinatorTopic {
    name: &'static str,
    configured_partitions: i32,
    /// The topic's actual partition count once it exists (it may predate the config).
    num_partitions: AtomicI32,
    segment_bytes: i32,
    /// Serializes creation *and* loading: two loads racing would each build a shard for the
    /// same partition, and the second would replace the first with its parked requests.
    load_lock: tokio::sync::Mutex<()>,
}

impl CoordinatorTopic {
    pub fn new(name: &'static str, configured_partitions: i32, segment_bytes: i32) -> Self {
        CoordinatorTopic {
            name,
            configured_partitions,
            num_partitions: AtomicI32::new(configured_partitions),
            segment_bytes,
            load_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn num_partitions(&self) -> i32 {
        self.num_partitions.load(Ordering::Relaxed)
    }

    /// The coordinator of keys in `partition_id`: the broker leading it, or
    /// COORDINATOR_NOT_AVAILABLE when it has no leader (or the topic is not there yet).
    pub fn coordinator_of(
        &self,
        image: &MetadataImage,
        partition_id: i32,
    ) -> Result<i32, ResponseError> {
        image
            .topic_by_name(self.name)
            .and_then(|topic| topic.partitions.get(&partition_id))
            .map(|p| p.leader)
            .filter(|leader| *leader >= 0)
            .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    /// Of `loaded` partitions, those this node does not lead in `image` (an unknown
    /// partition or a deleted topic counts as not led).
    pub fn unled_partitions(
        &self,
        image: &MetadataImage,
        node_id: i32,
        loaded: impl Iterator<Item = i32>,
    ) -> Vec<i32> {
        let topic = image.topic_by_name(self.name);
        loaded
            .filter(|partition_id| {
                topic
                    .and_then(|t| t.partitions.get(partition_id))
                    .is_none_or(|p| p.leader != node_id)
            })
            .collect()
    }

    pub fn set_num_partitions(&self, num_partitions: i32) {
        self.num_partitions.store(num_partitions, Ordering::Relaxed);
    }

    /// The partitions of the topic that this node leads, hosts online and `has_shard` says
    /// are not loaded yet. First refreshes the partition count from the published image
    /// (not from the partitions hosted: an offline one must not change where groups map).
    pub fn partitions_to_load(
        &self,
        replica_manager: &ReplicaManager,
        node_id: i32,
        has_shard: impl Fn(i32) -> bool,
    ) -> Vec<(i32, Arc<Partition>)> {
        let image = replica_manager.published_image();
        if let Some(topic) = image.as_ref().and_then(|i| i.topic_by_name(self.name)) {
            self.set_num_partitions(topic.partitions.len() as i32);
        }
        (0..self.num_partitions())
            .filter(|partition_id| !has_shard(*partition_id))
            .filter_map(|partition_id| {
                let tp = TopicPartition::new(self.name, partition_id);
                let partition = replica_manager.partition(&tp)?;
                (partition.leader == node_id).then_some((partition_id, partition))
            })
            .collect()
    }

    /// Loads the shards of partitions this node has come to lead (a metadata change), if
    /// the topic exists; never creates it. Serialized with [`Self::ensure_loaded`].
    pub async fn load_led(
        &self,
        state: &BrokerState,
        loaded: impl Fn() -> usize,
        load: impl FnOnce() -> Result<(), BrokerError>,
    ) {
        if state.image().topic_by_name(self.name).is_none() {
            return;
        }
        let _guard = self.load_lock.lock().await;
        if self.led_by(state) > loaded() {
            if let Err(e) = load() {
                tracing::error!("cannot load {}: {e}", self.name);
            }
        }
    }

    /// How many partitions of the topic this node leads, by the image.
    fn led_by(&self, state: &BrokerState) -> usize {
        let image = state.image();
        image.topic_by_name(self.name).map_or(0, |topic| {
            topic
                .partitions
                .values()
                .filter(|p| p.leader == state.node_id)
                .count()
        })
    }

    /// FindCoordinator's part: creates the topic if it is missing and has `load` build the
    /// shards of the partitions this node leads that are not yet built (`loaded` counts
    /// those built). COORDINATOR_NOT_AVAILABLE when either fails.
    pub async fn ensure_loaded(
        &self,
        state: &BrokerState,
        loaded: impl Fn() -> usize,
        load: impl FnOnce() -> Result<(), BrokerError>,
    ) -> Result<(), ResponseError> {
        // Ready once every partition this node leads has its shard (the others are other
        // brokers' to coordinate).
        let ready = |this: &Self| {
            state.image().topic_by_name(this.name).is_some() && loaded() >= this.led_by(state)
        };
        if ready(self) {
            return Ok(());
        }
        let _guard = self.load_lock.lock().await;
        if state.image().topic_by_name(self.name).is_none() {
            create_internal_topic(
                state,
                self.name,
                self.configured_partitions,
                self.segment_bytes,
            )
            .await?;
        }
        if let Some(topic) = state.image().topic_by_name(self.name) {
            self.set_num_partitions(topic.partitions.len() as i32);
        }
        if !ready(self) {
            load().map_err(|e| {
                tracing::error!("cannot load {}: {e}", self.name);
                ResponseError::CoordinatorNotAvailable
            })?;
        }
        Ok(())
    }
}

/// Creates a coordinator's internal topic (`__consumer_offsets`, `__transaction_state`):
/// compacted, with its own partition count and segment size, through the active
/// controller, its replicas placed as any topic's. The replication factor is
/// `offsets.topic.replication.factor` / `transaction.state.log.replication.factor`
/// (default: Kafka's 3 capped by the number of voters), and `__transaction_state` gets
/// `min.insync.replicas` = `transaction.state.log.min.isr`. As in Kafka, creation fails
/// (COORDINATOR_NOT_AVAILABLE, which clients retry) while fewer brokers are unfenced than
/// the replication factor. Another creator winning the race is fine.
async fn create_internal_topic(
    state: &BrokerState,
    name: &str,
    num_partitions: i32,
    segment_bytes: i32,
) -> Result<(), ResponseError> {
    let mut configs = vec![
        ("cleanup.policy".into(), Some("compact".into())),
        ("segment.bytes".into(), Some(segment_bytes.to_string())),
        ("compression.type".into(), Some("producer".into())),
    ];
    let replication_factor = if name == TRANSACTION_STATE_TOPIC {
        let min_isr = state.config.effective_transaction_state_log_min_isr();
        configs.push(("min.insync.replicas".into(), Some(min_isr.to_string())));
        state
            .config
            .effective_transaction_state_log_replication_factor()
    } else {
        state.config.effective_offsets_topic_replication_factor()
    };
    let topic = NewTopic {
        name: name.to_string(),
        num_partitions,
        replication_factor,
        assignments: vec![],
        configs,
    };
    match create_topic_via_controller(state, &topic).await {
        Ok(()) => {
            tracing::info!("created {name}");
            Ok(())
        }
        Err((ResponseError::TopicAlreadyExists, _)) => Ok(()),
        Err((_, message)) => {
            tracing::error!("cannot create {name}: {message}");
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_write_is_one_batch() {
        let records = (0..3).map(|i| (Bytes::from(format!("k{i}")), Some(Bytes::from("v"))));
        for producer in [None, Some((7, 1))] {
            let buf = encode(records.clone(), producer, 0).unwrap();
            // Base offset (8 bytes), then the batch length: one batch spans the buffer.
            let batch_length = i32::from_be_bytes(buf[8..12].try_into().unwrap()) as usize;
            assert_eq!(12 + batch_length, buf.len(), "{producer:?}");
            // Base sequence stays NO_SEQUENCE (-1): 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2.
            let base_sequence = i32::from_be_bytes(buf[53..57].try_into().unwrap());
            assert_eq!(base_sequence, -1);
        }
    }
}
