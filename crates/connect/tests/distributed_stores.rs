//! The distributed worker's internal topics on a real broker: offsets written by one worker
//! are read by another, in the partition Java's producer would choose; config records
//! round-trip through the config topic into the same cluster state.

mod common;

use common::TestBroker;
use moldau_connect::config::{Props, StorageTopic};
use moldau_connect::data::Value;
use moldau_connect::distributed::config_state::{
    put_connector_records, task_config_records, ConfigState,
};
use moldau_connect::distributed::kafka_log::KafkaLog;
use moldau_connect::distributed::offsets::KafkaOffsetStore;
use moldau_connect::storage::{ConfigRecord, OffsetKey, TargetState};
use moldau_connect::worker::OffsetStore;
use rdkafka::Message;

fn topic(name: &str, partitions: i32) -> StorageTopic {
    StorageTopic {
        topic: name.into(),
        replication_factor: 1,
        partitions,
        settings: Props::new(),
    }
}

fn client(broker: &TestBroker) -> Props {
    Props::from([("bootstrap.servers".to_string(), broker.bootstrap())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_written_by_one_worker_are_read_by_another() {
    let broker = TestBroker::start().await;
    let settings = topic("connect-offsets", 5);
    let a = KafkaOffsetStore::open(KafkaLog::open(&client(&broker), &settings).await.unwrap())
        .await
        .unwrap();
    let b = KafkaOffsetStore::open(KafkaLog::open(&client(&broker), &settings).await.unwrap())
        .await
        .unwrap();
    let partition = vec![("server".to_string(), Value::String("db1".into()))];
    let offset = vec![("pos".to_string(), Value::Int64(99))];
    a.write("cdc", vec![(partition.clone(), Some(offset.clone()))])
        .await
        .unwrap();
    b.refresh().await.unwrap();
    assert_eq!(
        b.connector_offsets("cdc"),
        vec![(partition.clone(), offset)]
    );

    // The record sits where Java's murmur2 partitioner puts its key.
    let expected = OffsetKey::new("cdc", partition.clone())
        .topic_partition(5)
        .unwrap();
    let records = broker.read_topic("connect-offsets", 1, std::time::Duration::from_secs(10));
    assert_eq!(records.len(), 1);
    let key = OffsetKey::new("cdc", partition.clone()).encode().unwrap();
    assert_eq!(records[0].0.as_deref(), Some(key.as_slice()));
    let log = KafkaLog::open(&client(&broker), &settings).await.unwrap();
    let all = log.read_to_end().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].partition(), expected);

    // A deletion (KIP-875 reset) reaches the other worker too.
    b.write("cdc", vec![(partition, None)]).await.unwrap();
    a.refresh().await.unwrap();
    assert!(a.connector_offsets("cdc").is_empty());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_records_round_trip_through_the_config_topic() {
    let broker = TestBroker::start().await;
    let log = KafkaLog::open(&client(&broker), &topic("connect-configs", 1))
        .await
        .unwrap();
    let config = Props::from([(
        "connector.class".to_string(),
        "FileStreamSource".to_string(),
    )]);
    let mut written = put_connector_records("c", &config, Some(TargetState::Stopped));
    written.extend(task_config_records(
        "c",
        &[Props::from([("task".to_string(), "0".to_string())])],
    ));
    for r in &written {
        let (key, value) = r.encode().unwrap();
        log.send(key.as_bytes(), value.as_deref(), Some(0))
            .await
            .unwrap();
    }
    let reader = KafkaLog::open(&client(&broker), &topic("connect-configs", 1))
        .await
        .unwrap();
    let mut state = ConfigState::default();
    for m in reader.read_to_end().await.unwrap() {
        let key = std::str::from_utf8(m.key().unwrap()).unwrap();
        state.apply(ConfigRecord::decode(key, m.payload()).unwrap(), m.offset());
    }
    assert_eq!(state.connectors["c"], config);
    assert_eq!(state.target_states["c"], TargetState::Stopped);
    assert_eq!(state.tasks["c"].len(), 1);
    assert_eq!(state.offset, written.len() as i64);
    broker.shutdown().await;
}
