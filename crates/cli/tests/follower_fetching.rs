//! Follower fetching (KIP-392) on a three-node cluster with one rack per node and
//! `replica.selector.class=...RackAwareReplicaSelector`: a librdkafka consumer that sets
//! `client.rack` is sent by the leader to the in-sync replica in its rack and reads every
//! acknowledged record there; a consumer whose rack has no replica stays on the leader.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use common::cluster::*;

const TOPIC: &str = "racked";

/// Keeps librdkafka's view of partition 0: (the broker it fetches from, the leader).
#[derive(Clone, Default)]
struct FetchSource(Arc<Mutex<Option<(i32, i32)>>>);

impl ClientContext for FetchSource {
    fn stats(&self, statistics: Statistics) {
        let seen = statistics
            .topics
            .get(TOPIC)
            .and_then(|t| t.partitions.get(&0))
            .map(|p| (p.broker, p.leader));
        if let Some(seen) = seen {
            *self.0.lock().unwrap() = Some(seen);
        }
    }
}

impl ConsumerContext for FetchSource {}

/// Reads partition 0 from the start with `client.rack` = `rack` until `count` records
/// came; returns their values and the broker librdkafka fetched them from.
fn read_from_rack(cluster: &Cluster, rack: &str, count: usize) -> (Vec<String>, i32, i32) {
    let source = FetchSource::default();
    let consumer: BaseConsumer<FetchSource> = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap())
        .set("group.id", format!("rack-{rack}"))
        .set("client.rack", rack)
        .set("enable.auto.commit", "false")
        .set("statistics.interval.ms", "200")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create_with_context(source.clone())
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while values.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            values.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    // The statistics after the last record show where it came from.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = None;
    while Instant::now() < deadline {
        consumer.poll(Duration::from_millis(100));
        seen = *source.0.lock().unwrap();
        if seen.is_some_and(|(broker, _)| broker >= 0) {
            break;
        }
    }
    let (broker, leader) = seen.expect("librdkafka statistics for the partition");
    (values, broker, leader)
}

#[test]
fn a_consumer_reads_from_the_in_sync_replica_in_its_rack() {
    let mut cluster = Cluster::with_overrides(
        3,
        &["replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"],
    );
    for id in 1..=3 {
        cluster
            .node_overrides
            .insert(id, vec![format!("broker.rack=rack-{id}")]);
    }
    cluster.start_all();
    let addr = cluster.server(1).addr.to_string();
    wait_for("all brokers registered", &cluster, || {
        brokers(&addr).filter(|b| b.len() == 3)
    });
    cluster.server(1).ok(&[
        "topics",
        "create",
        "--topic",
        TOPIC,
        "--partitions",
        "1",
        "--replication-factor",
        "3",
    ]);
    let leader = wait_for("three in-sync replicas", &cluster, || {
        let states = replica_states(cluster.server(1), TOPIC);
        states
            .first()
            .filter(|(l, r, isr)| *l >= 0 && r.len() == 3 && isr.len() == 3)
            .map(|(l, _, _)| *l)
    });
    let values: Vec<String> = (0..300).map(|i| format!("r{i}")).collect();
    produce_acked(&cluster.bootstrap(), TOPIC, 0, &values);

    // A follower's rack: the leader points the consumer there and it reads everything.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let (read, broker, seen_leader) =
        read_from_rack(&cluster, &format!("rack-{follower}"), values.len());
    assert_eq!(read, values, "{}", cluster.logs());
    assert_eq!(seen_leader, leader);
    assert_eq!(
        broker, follower,
        "a consumer in rack-{follower} should fetch from broker {follower}, not {broker}"
    );

    // A rack without a replica: the leader serves it itself.
    let (read, broker, _) = read_from_rack(&cluster, "elsewhere", values.len());
    assert_eq!(read, values);
    assert_eq!(broker, leader);
}
