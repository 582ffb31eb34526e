//! Kafka's other two `process.roles`, as `moldau server` processes driven by librdkafka
//! (rdkafka) and the `moldau` CLI: dedicated controllers (`controller`: voters of the
//! metadata quorum, no broker) and broker-only nodes (`broker`: observers of the quorum,
//! registered brokers that serve clients and host replicas).

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::cluster::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;

/// Five or four server processes each: one such cluster at a time on a small machine.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Partition directories of `topic` in node `id`'s data directory.
fn partition_dirs(cluster: &Cluster, id: i32, topic: &str) -> usize {
    std::fs::read_dir(cluster.dir(id).join("data"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    name.strip_prefix(topic)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(|p| p.parse::<u32>().is_ok())
                })
                .count()
        })
        .unwrap_or(0)
}

/// A consumer group member on `topic` that reads `count` records and commits them
/// (FindCoordinator, `__consumer_offsets`, JoinGroup/SyncGroup, OffsetCommit).
fn read_as_group(bootstrap: &str, group: &str, topic: &str, count: usize) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut values = BTreeSet::new();
    let deadline = Instant::now() + DEADLINE;
    while values.len() < count && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) {
            values.insert(message.payload_view::<str>().unwrap().unwrap().to_string());
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    values.len()
}

#[test]
fn dedicated_controllers_and_broker_only_nodes_serve_clients_through_failures() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Nodes 1-3 are the quorum, 4 and 5 the brokers. Two brokers: the internal topics'
    // replication factor defaults to min(3, voters), more than there are brokers.
    let mut cluster = Cluster::with_roles(
        &["controller", "controller", "controller", "broker", "broker"],
        &[
            "offsets.topic.replication.factor=2",
            "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=2",
            "group.initial.rebalance.delay.ms=0",
        ],
    );
    cluster.start_all();
    let controllers: BTreeSet<i32> = [1, 2, 3].into();
    let broker_ids: BTreeSet<i32> = [4, 5].into();
    let b4 = cluster.server(4).addr.to_string();
    let b5 = cluster.server(5).addr.to_string();

    // Clients see the brokers only, and a broker as the controller (Kafka's KRaft brokers
    // name a random unfenced broker: the controllers are not reachable by clients).
    for addr in [&b4, &b5] {
        wait_for("the two brokers in metadata", &cluster, || {
            brokers(addr).filter(|b| *b == broker_ids)
        });
    }
    let named = wait_for("a controller id", &cluster, || {
        controller_id(cluster.server(4))
    });
    assert!(broker_ids.contains(&named), "controller id {named}");
    // The quorum: three voters, the brokers as observers, a controller leading.
    let (leader, voters, _) = wait_for("the quorum with its observers", &cluster, || {
        quorum(cluster.server(5)).filter(|(_, _, observers)| *observers == vec![4, 5])
    });
    assert!(controllers.contains(&leader), "leader {leader}");
    assert_eq!(voters, vec![1, 2, 3]);

    // A replicated topic, created through a broker (forwarded to the active controller),
    // produced to and read back through the brokers.
    cluster.server(4).ok(&[
        "topics",
        "create",
        "--topic",
        "replicated",
        "--partitions",
        "4",
        "--replication-factor",
        "2",
    ]);
    let values: Vec<String> = (0..200).map(|i| format!("v{i}")).collect();
    produce_acked(&cluster.bootstrap(), "replicated", 0, &values[..100]);
    produce(&cluster.bootstrap(), "replicated", &values[100..]);
    let read = consume_all(&b5, "replicated", 4, values.len());
    assert_eq!(read.len(), values.len(), "{}", cluster.logs());
    // Replicas live on the brokers only.
    for id in 4..=5 {
        assert_eq!(partition_dirs(&cluster, id, "replicated"), 4, "broker {id}");
    }
    for id in 1..=3 {
        assert_eq!(
            partition_dirs(&cluster, id, "replicated"),
            0,
            "controller {id}"
        );
    }
    wait_for("both replicas in sync", &cluster, || {
        let states = replica_states(cluster.server(4), "replicated");
        (states.len() == 4 && states.iter().all(|(_, _, isr)| *isr == vec![4, 5])).then_some(())
    });
    // A consumer group: its coordinator is a broker.
    assert_eq!(
        read_as_group(&b4, "readers", "replicated", values.len()),
        values.len(),
        "{}",
        cluster.logs()
    );

    // kill -9 of the active controller: another controller takes over, the brokers keep
    // serving and metadata writes go on.
    drop(cluster.servers.remove(&leader).unwrap());
    let new_leader = wait_for("a new active controller", &cluster, || {
        quorum(cluster.server(4))
            .map(|(l, _, _)| l)
            .filter(|l| *l != leader)
    });
    assert!(controllers.contains(&new_leader), "leader {new_leader}");
    let more: Vec<String> = (200..300).map(|i| format!("v{i}")).collect();
    produce_acked(&cluster.bootstrap(), "replicated", 1, &more);
    wait_for("a topic created after the failover", &cluster, || {
        let out = cluster.server(5).run(&[
            "topics",
            "create",
            "--topic",
            "after-failover",
            "--partitions",
            "2",
            "--replication-factor",
            "2",
        ]);
        (out.code == Some(0)).then_some(())
    });
    produce(&b5, "after-failover", &more);
    assert_eq!(
        consume_all(&b4, "after-failover", 2, more.len()).len(),
        more.len()
    );
    // The brokers are still unfenced: the new controller took their heartbeats over.
    assert_eq!(brokers(&b4), Some(broker_ids.clone()));
    // Growing and deleting a topic through a broker: forwarded as creating it was.
    cluster.server(5).ok(&[
        "topics",
        "alter",
        "--topic",
        "after-failover",
        "--partitions",
        "3",
    ]);
    wait_for("the third partition", &cluster, || {
        (partition_leaders(&b4, "after-failover").len() == 3).then_some(())
    });
    cluster
        .server(4)
        .ok(&["topics", "delete", "--topic", "after-failover"]);
    wait_for("the topic gone from the brokers' disks", &cluster, || {
        (4..=5)
            .all(|id| partition_dirs(&cluster, id, "after-failover") == 0)
            .then_some(())
    });

    // A broker-only node killed and restarted catches up with what it missed.
    drop(cluster.servers.remove(&5).unwrap());
    wait_for("broker 5 fenced", &cluster, || {
        brokers(&b4).filter(|b| *b == BTreeSet::from([4]))
    });
    cluster.server(4).ok(&[
        "topics",
        "create",
        "--topic",
        "while-down",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let late: Vec<String> = (300..350).map(|i| format!("v{i}")).collect();
    produce_acked(&b4, "replicated", 2, &late);
    cluster.spawn(5);
    cluster.servers.get_mut(&5).unwrap().wait_until_accepting();
    wait_for("broker 5 back", &cluster, || {
        brokers(&b5).filter(|b| *b == broker_ids)
    });
    // Its own metadata has the topic created while it was down.
    assert_eq!(partition_leaders(&b5, "while-down"), vec![4]);
    // It fetched what it missed and is back in every ISR.
    wait_for("broker 5 in sync again", &cluster, || {
        let states = replica_states(cluster.server(5), "replicated");
        (states.len() == 4 && states.iter().all(|(_, _, isr)| *isr == vec![4, 5])).then_some(())
    });
    let everything = values.len() + more.len() + late.len();
    assert_eq!(
        consume_all(&b5, "replicated", 4, everything).len(),
        everything
    );
    let (_, _, observers) = wait_for("both brokers observing again", &cluster, || {
        quorum(cluster.server(5)).filter(|(_, _, o)| *o == vec![4, 5])
    });
    assert_eq!(observers, vec![4, 5]);
}

#[test]
fn a_broker_only_node_joins_combined_voters_and_leaves_as_an_observer() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut cluster = Cluster::with_roles(&[COMBINED, COMBINED, COMBINED, "broker"], &[]);
    cluster.start_all();
    let b4 = cluster.server(4).addr.to_string();
    let all: BTreeSet<i32> = [1, 2, 3, 4].into();
    wait_for("four brokers", &cluster, || {
        brokers(&b4).filter(|b| *b == all)
    });
    let (leader, voters, _) = wait_for("broker 4 observing", &cluster, || {
        quorum(cluster.server(1)).filter(|(_, _, observers)| *observers == vec![4])
    });
    assert_eq!(voters, vec![1, 2, 3]);
    assert_ne!(leader, 4);
    // In combined mode the active controller is a broker: Metadata names it.
    let named = wait_for("the controller id", &cluster, || {
        controller_id(cluster.server(4))
    });
    assert_eq!(named, leader);

    // Striped over four brokers, one partition each; clients bootstrap from broker 4 only.
    cluster
        .server(4)
        .ok(&["topics", "create", "--topic", "four", "--partitions", "4"]);
    assert_eq!(partition_dirs(&cluster, 4, "four"), 1);
    let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    produce(&b4, "four", &values);
    assert_eq!(
        consume_all(&b4, "four", 4, values.len()).len(),
        values.len()
    );

    // The active controller dies: broker 4 follows the new one.
    drop(cluster.servers.remove(&leader).unwrap());
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    let new_leader = wait_for("a new active controller", &cluster, || {
        quorum(cluster.server(survivor))
            .map(|(l, _, _)| l)
            .filter(|l| *l != leader)
    });
    assert_ne!(new_leader, 4);
    wait_for("a topic created through broker 4", &cluster, || {
        let out =
            cluster
                .server(4)
                .run(&["topics", "create", "--topic", "later", "--partitions", "3"]);
        (out.code == Some(0)).then_some(())
    });
    assert_eq!(partition_leaders(&b4, "later").len(), 3);

    // Stopped and unregistered, it is no longer an observer.
    assert!(cluster.servers.remove(&4).unwrap().terminate().success());
    cluster
        .server(survivor)
        .ok(&["cluster", "unregister", "--id", "4"]);
    wait_for("broker 4 no longer observing", &cluster, || {
        quorum(cluster.server(survivor)).filter(|(_, _, observers)| observers.is_empty())
    });
}
