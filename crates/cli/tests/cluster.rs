//! Three `moldau server` processes as one cluster: a Raft metadata quorum over their
//! controller listeners, driven by librdkafka (rdkafka) and the `moldau` CLI.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::cluster::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

#[test]
fn three_nodes_form_one_cluster_and_outlive_their_active_controller() {
    let mut cluster = Cluster::new(3);
    cluster.start_all();

    // One cluster id, derived alike by every node started without `storage format`.
    let ids: BTreeSet<String> = (1..=3).map(|id| cluster_id(&cluster.dir(id))).collect();
    assert_eq!(ids.len(), 1, "cluster ids {ids:?}");

    // Every node reports all three brokers and the same active controller.
    let all: BTreeSet<i32> = [1, 2, 3].into();
    for id in 1..=3 {
        let addr = cluster.server(id).addr.to_string();
        wait_for("all brokers in metadata", &cluster, || {
            brokers(&addr).filter(|brokers| *brokers == all)
        });
    }
    let leader = wait_for("an active controller", &cluster, || {
        controller_id(cluster.server(1))
    });
    for id in 2..=3 {
        let seen = wait_for("the same controller", &cluster, || {
            controller_id(cluster.server(id)).filter(|c| *c == leader)
        });
        assert_eq!(seen, leader);
    }

    // DescribeQuorum, answered by the leader or forwarded to it by any other node.
    for id in 1..=3 {
        let status = cluster.server(id).json(&[
            "metadata-quorum",
            "describe",
            "--status",
            "--output",
            "json",
        ]);
        assert_eq!(status["leader_id"], leader, "{status}");
        assert_eq!(status["current_voters"], serde_json::json!([1, 2, 3]));
        assert_eq!(
            status["cluster_id"].as_str(),
            ids.iter().next().map(String::as_str)
        );
        assert!(status["high_watermark"].as_i64().unwrap() > 0, "{status}");
    }
    // The same through the controllers' own listeners (KIP-919's endpoint type
    // CONTROLLER, kafka-metadata-quorum --bootstrap-controller).
    for node in &cluster.nodes {
        let controller = format!("127.0.0.1:{}", node.controller_port);
        let status = cluster.server(1).json(&[
            "metadata-quorum",
            "describe",
            "--status",
            "--bootstrap-controller",
            &controller,
            "--output",
            "json",
        ]);
        assert_eq!(status["leader_id"], leader, "{status}");
        assert_eq!(
            status["cluster_id"].as_str(),
            ids.iter().next().map(String::as_str)
        );
    }
    let replication = wait_for("followers caught up", &cluster, || {
        let r = cluster.server(1).json(&[
            "metadata-quorum",
            "describe",
            "--replication",
            "--output",
            "json",
        ]);
        let rows = r.as_array()?.clone();
        let caught_up = rows.len() == 3 && rows.iter().all(|row| row["lag"] == 0);
        caught_up.then_some(rows)
    });
    let leaders: Vec<_> = replication
        .iter()
        .filter(|row| row["status"] == "Leader")
        .map(|row| row["node_id"].as_i64().unwrap())
        .collect();
    assert_eq!(leaders, vec![leader as i64]);

    // A topic over three brokers, created through a node that is not the controller.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster
        .server(follower)
        .ok(&["topics", "create", "--topic", "spread", "--partitions", "6"]);
    let values: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    produce(&cluster.bootstrap(), "spread", &values);
    let read = consume_all(&cluster.bootstrap(), "spread", 6, values.len());
    assert_eq!(read.len(), values.len(), "{}", cluster.logs());
    for id in 1..=3 {
        let dirs = std::fs::read_dir(cluster.dir(id).join("data"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("spread-"))
            .count();
        assert_eq!(dirs, 2, "node {id} hosts two of the six partitions");
    }

    // kill -9 of the active controller: the other two elect one and take writes.
    let killed = cluster.servers.remove(&leader).unwrap();
    drop(killed);
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    let new_leader = wait_for("a new active controller", &cluster, || {
        controller_id(cluster.server(survivor)).filter(|c| *c != leader)
    });
    assert_ne!(new_leader, leader);
    // The dead broker's session expires: fenced, it leaves the metadata clients see.
    let survivors: BTreeSet<i32> = (1..=3).filter(|id| *id != leader).collect();
    let survivor_addr = cluster.server(survivor).addr.to_string();
    wait_for("the dead broker fenced", &cluster, || {
        brokers(&survivor_addr).filter(|b| *b == survivors)
    });
    wait_for("a topic created after the failover", &cluster, || {
        let out = cluster.server(survivor).run(&[
            "topics",
            "create",
            "--topic",
            "after-failover",
            "--partitions",
            "4",
        ]);
        (out.code == Some(0)).then_some(())
    });
    // New partitions go only to live brokers.
    let leaders = partition_leaders(&survivor_addr, "after-failover");
    assert_eq!(leaders.len(), 4);
    assert!(leaders.iter().all(|l| survivors.contains(l)), "{leaders:?}");
    // The dead broker's partitions of `spread` have no leader meanwhile.
    let spread = partition_leaders(&survivor_addr, "spread");
    assert_eq!(spread.iter().filter(|l| **l == -1).count(), 2, "{spread:?}");
    // kafka-topics' filters see them too.
    let unavailable = cluster.server(survivor).json(&[
        "topics",
        "describe",
        "--unavailable-partitions",
        "--output",
        "json",
    ]);
    let listed: Vec<(String, usize)> = unavailable
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let name = t["topic"].as_str().unwrap().to_string();
            (name, t["partitions"].as_array().unwrap().len())
        })
        .filter(|(name, _)| name == "spread")
        .collect();
    assert_eq!(listed, vec![("spread".to_string(), 2)], "{unavailable}");
    let under = cluster.server(survivor).json(&[
        "topics",
        "describe",
        "--topic",
        "spread",
        "--under-replicated-partitions",
        "--output",
        "json",
    ]);
    // Fenced, the dead broker left the ISRs it was alone in (KIP-966, as Kafka 4.1): its
    // partitions are under-replicated too, with an empty ISR, until it is back.
    let under_isrs: Vec<&serde_json::Value> = under[0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["isr"])
        .collect();
    assert_eq!(under_isrs, vec![&serde_json::json!([]); 2], "{under}");

    // The killed node comes back, catches up and serves what was committed without it.
    cluster.spawn(leader);
    cluster
        .servers
        .get_mut(&leader)
        .unwrap()
        .wait_until_accepting();
    let addr = cluster.server(leader).addr.to_string();
    wait_for("the restarted node to see the new topic", &cluster, || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &addr)
            .create()
            .ok()?;
        let metadata = consumer
            .fetch_metadata(Some("after-failover"), Duration::from_secs(5))
            .ok()?;
        let topic = metadata.topics().first()?;
        (topic.error().is_none() && !topic.partitions().is_empty()).then_some(())
    });
    let read = consume_all(&addr, "spread", 6, values.len());
    assert_eq!(read.len(), values.len());
    // Unfenced again, it leads its partitions again.
    wait_for("the restarted broker leading again", &cluster, || {
        let spread = partition_leaders(&addr, "spread");
        (spread.iter().filter(|l| **l == leader).count() == 2).then_some(())
    });
}

#[test]
fn a_gracefully_stopped_broker_hands_over_before_it_exits() {
    let mut cluster = Cluster::new(3);
    cluster.start_all();
    let leader = wait_for("an active controller", &cluster, || {
        controller_id(cluster.server(1))
    });
    let stopping = (1..=3).find(|id| *id != leader).unwrap();
    cluster.server(leader).ok(&[
        "topics",
        "create",
        "--topic",
        "handover",
        "--partitions",
        "3",
    ]);
    let addr = cluster.server(leader).addr.to_string();
    wait_for("the topic on all brokers", &cluster, || {
        let leaders = partition_leaders(&addr, "handover");
        (leaders.len() == 3 && leaders.iter().all(|l| *l > 0)).then_some(())
    });
    // SIGTERM: controlled shutdown fences it and moves its leadership before it exits,
    // well before its session (2 s) would have expired.
    let server = cluster.servers.remove(&stopping).unwrap();
    let started = Instant::now();
    assert!(server.terminate().success());
    // `addr` may have become a follower of the quorum meanwhile (a busy machine, an
    // election): give its image a moment to apply the commit, far less than the 2 s
    // session whose expiry would fence the broker anyway.
    let handed_over = Instant::now() + Duration::from_millis(500);
    let mut leaders = partition_leaders(&addr, "handover");
    while leaders.contains(&stopping) && Instant::now() < handed_over {
        std::thread::sleep(Duration::from_millis(20));
        leaders = partition_leaders(&addr, "handover");
    }
    assert!(!leaders.contains(&stopping), "{leaders:?}");
    assert_eq!(
        leaders.iter().filter(|l| **l == -1).count(),
        1,
        "{leaders:?}"
    );
    let expected: BTreeSet<i32> = (1..=3).filter(|id| *id != stopping).collect();
    assert_eq!(brokers(&addr), Some(expected));
    assert!(started.elapsed() < Duration::from_secs(10));

    // Restarted at once, a new process takes the id (a fenced broker holds no session) and
    // leads its partition again.
    cluster.spawn(stopping);
    cluster
        .servers
        .get_mut(&stopping)
        .unwrap()
        .wait_until_accepting();
    wait_for("the restarted broker leading again", &cluster, || {
        partition_leaders(&addr, "handover")
            .contains(&stopping)
            .then_some(())
    });
    // After kill -9 its old session lives on until broker.session.timeout.ms (2 s here):
    // meanwhile a new process with its id is a duplicate; then it takes over.
    drop(cluster.servers.remove(&stopping).unwrap());
    let killed = Instant::now();
    cluster.spawn(stopping);
    cluster
        .servers
        .get_mut(&stopping)
        .unwrap()
        .wait_until_accepting();
    // Refused as a duplicate until the old session (last heartbeat at most 300 ms before
    // the kill) expired.
    assert!(
        killed.elapsed() >= Duration::from_millis(1200),
        "back after {:?}, before the old session expired",
        killed.elapsed()
    );
    wait_for("the broker back after kill -9", &cluster, || {
        partition_leaders(&addr, "handover")
            .contains(&stopping)
            .then_some(())
    });

    // Decommissioned: stopped, then unregistered through a node that forwards the request
    // to the active controller. It is gone even from DescribeCluster's fenced brokers.
    assert!(cluster
        .servers
        .remove(&stopping)
        .unwrap()
        .terminate()
        .success());
    let other = (1..=3).find(|id| *id != stopping && *id != leader).unwrap();
    let id = stopping.to_string();
    cluster
        .server(other)
        .ok(&["cluster", "unregister", "--id", &id]);
    let view = cluster
        .server(leader)
        .json(&["cluster", "describe", "--output", "json"]);
    let ids: Vec<i64> = view["brokers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert!(!ids.contains(&(stopping as i64)), "{view}");
    let again = cluster
        .server(other)
        .run(&["cluster", "unregister", "--id", &id]);
    again.assert_one_line_error(1, "is not currently registered");
}

#[test]
fn a_node_of_another_cluster_is_refused_by_the_active_controller() {
    let mut cluster = Cluster::new(3);
    // Node 3 was formatted for another cluster.
    let dir = cluster.dir(3);
    let other = common::moldau(&["storage", "random-uuid"]).stdout;
    let data = dir.join("data");
    let formatted = common::moldau(&[
        "storage",
        "format",
        "--cluster-id",
        other.trim(),
        "--override",
        "node.id=3",
        "--override",
        &format!("log.dirs={}", data.display()),
    ]);
    assert_eq!(formatted.code, Some(0), "{}", formatted.stderr);
    for id in 1..=3 {
        cluster.spawn(id);
    }
    for id in 1..=2 {
        cluster.servers.get_mut(&id).unwrap().wait_until_accepting();
    }
    let mut refused = cluster.servers.remove(&3).unwrap();
    let status = wait_for("node 3 to stop", &cluster, || {
        refused.child.try_wait().unwrap()
    });
    assert!(!status.success());
    let log = refused.log();
    assert!(
        log.contains("INCONSISTENT_CLUSTER_ID") && log.contains(other.trim()),
        "{log}"
    );
}

#[test]
fn groups_and_transactions_span_the_brokers() {
    use rdkafka::consumer::CommitMode;
    let mut cluster = Cluster::new(3);
    cluster.start_all();
    let bootstrap = cluster.bootstrap();
    let leader = wait_for("an active controller", &cluster, || {
        controller_id(cluster.server(1))
    });
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster
        .server(follower)
        .ok(&["topics", "create", "--topic", "txn", "--partitions", "6"]);

    // A transaction over partitions on all three brokers, committed; then one aborted.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", "spanning")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    for (outcome, count) in [("committed", 60), ("aborted", 30)] {
        producer.begin_transaction().unwrap();
        for i in 0..count {
            let value = format!("{outcome}-{i}");
            producer
                .send(
                    BaseRecord::<str, str>::to("txn")
                        .partition(i % 6)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
        if outcome == "committed" {
            producer
                .commit_transaction(Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("commit: {e}\n{}", cluster.logs()));
        } else {
            producer.abort_transaction(Duration::from_secs(30)).unwrap();
        }
    }
    // read_committed: the committed sixty, none of the aborted, on every partition.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "spanning-readers")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["txn"]).unwrap();
    let mut values = BTreeSet::new();
    let mut partitions = BTreeSet::new();
    let deadline = Instant::now() + DEADLINE;
    while values.len() < 60 && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) {
            values.insert(message.payload_view::<str>().unwrap().unwrap().to_string());
            partitions.insert(message.partition());
        }
    }
    assert_eq!(values.len(), 60, "{values:?}\n{}", cluster.logs());
    assert!(values.iter().all(|v| v.starts_with("committed-")));
    assert_eq!(partitions.len(), 6);
    // The group's offsets commit at its coordinator, wherever that is, and read back.
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    let committed = consumer
        .committed(Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .filter(|e| matches!(e.offset(), rdkafka::Offset::Offset(o) if o > 0))
        .count();
    assert_eq!(committed, 6, "{}", cluster.logs());
    // Nothing more arrives: the aborted records stay hidden behind their markers.
    let straggler = consumer.poll(Duration::from_secs(2));
    assert!(
        straggler.is_none(),
        "unexpected record after the committed ones"
    );

    // kafka-log-dirs' view: each broker holds two of the six partitions, none empty.
    let report = cluster.server(follower).json(&[
        "log-dirs",
        "describe",
        "--topic-list",
        "txn",
        "--output",
        "json",
    ]);
    let brokers = report["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 3, "{report}");
    for broker in brokers {
        let partitions: Vec<&serde_json::Value> = broker["logDirs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|d| d["partitions"].as_array().unwrap())
            .collect();
        assert_eq!(partitions.len(), 2, "{report}");
        assert!(partitions.iter().all(|p| p["size"].as_i64().unwrap() > 0));
    }
}

#[test]
fn cluster_local_starts_three_nodes_and_stops_them_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("local");
    let mut child = Command::new(common::BIN)
        .args(["cluster", "local", "--nodes", "3", "--dir"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let bootstrap = loop {
        let line = rx
            .recv_timeout(DEADLINE)
            .expect("cluster local prints its bootstrap servers");
        if let Some(b) = line.split("bootstrap servers: ").nth(1) {
            break b.to_string();
        }
    };
    assert_eq!(bootstrap.split(',').count(), 3, "{bootstrap}");
    let described = common::moldau(&[
        "cluster",
        "describe",
        "--bootstrap-server",
        &bootstrap,
        "--output",
        "json",
    ]);
    let view: serde_json::Value = serde_json::from_str(&described.stdout).unwrap();
    assert_eq!(view["brokers"].as_array().unwrap().len(), 3, "{view}");
    assert!(dir.join("cluster.properties").exists());

    let stopped = common::signal_and_wait(&mut child, "-TERM").expect("exits after SIGTERM");
    assert!(stopped.success());
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.iter().any(|l| l == "cluster stopped"), "{rest:?}");
    // Every node shut down cleanly.
    for id in 1..=3 {
        let log = std::fs::read_to_string(dir.join(format!("node-{id}/server.log"))).unwrap();
        assert!(log.contains("stopped cleanly"), "node {id}:\n{log}");
    }
}

#[test]
fn a_replicated_topic_keeps_every_acknowledged_record_through_leader_failures() {
    let mut cluster = Cluster::new(3);
    cluster.start_all();
    let server = |c: &Cluster, id: i32| c.server(id).addr.to_string();
    wait_for("all brokers registered", &cluster, || {
        brokers(&server(&cluster, 1)).filter(|b| b.len() == 3)
    });
    cluster.server(1).ok(&[
        "topics",
        "create",
        "--topic",
        "replicated",
        "--partitions",
        "2",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=2",
    ]);
    cluster.server(1).ok(&[
        "topics",
        "create",
        "--topic",
        "strict",
        "--partitions",
        "1",
        "--replication-factor",
        "3",
        "--config",
        "min.insync.replicas=3",
    ]);
    let states = wait_for("the topic with three in-sync replicas", &cluster, || {
        let states = replica_states(cluster.server(1), "replicated");
        (states.len() == 2
            && states
                .iter()
                .all(|(l, r, isr)| *l >= 0 && r.len() == 3 && isr.len() == 3))
        .then_some(states)
    });
    let first: Vec<String> = (0..200).map(|i| format!("a{i}")).collect();
    produce_acked(&cluster.bootstrap(), "replicated", 0, &first);

    // Every replica holds the acknowledged records, byte for byte the leader's log.
    let leader = states[0].0;
    wait_for("followers caught up", &cluster, || {
        let sizes: BTreeSet<u64> = (1..=3)
            .map(|id| dir_bytes(&cluster.dir(id).join("data").join("replicated-0")))
            .collect();
        (sizes.len() == 1).then_some(())
    });

    // kill -9 of the partition's leader: an in-sync follower takes over, and acks=all
    // writes go on with two replicas (min.insync.replicas=2).
    drop(cluster.servers.remove(&leader).unwrap());
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    let new_leader = wait_for("a new leader from the ISR", &cluster, || {
        let states = replica_states(cluster.server(survivor), "replicated");
        let (l, _, isr) = states.first()?;
        (*l >= 0 && *l != leader && !isr.contains(&leader)).then_some(*l)
    });
    let second: Vec<String> = (0..200).map(|i| format!("b{i}")).collect();
    produce_acked(&cluster.bootstrap(), "replicated", 0, &second);
    let expected: Vec<String> = first.iter().chain(&second).cloned().collect();
    let read = partition_values(&server(&cluster, survivor), "replicated", 0, expected.len());
    assert_eq!(
        read,
        expected,
        "nothing lost, duplicated or reordered\n{}",
        cluster.logs()
    );

    // A topic that needs all three replicas in sync refuses acks=all writes now
    // (NOT_ENOUGH_REPLICAS), rather than acknowledging them with too few copies.
    wait_for(
        "the strict topic's ISR without the dead broker",
        &cluster,
        || {
            let states = replica_states(cluster.server(survivor), "strict");
            let (l, _, isr) = states.first()?;
            (*l >= 0 && isr.len() == 2).then_some(())
        },
    );
    let refused = send_once(&cluster.bootstrap(), "strict", "refused");
    assert_eq!(
        refused,
        Err(RDKafkaErrorCode::NotEnoughReplicas),
        "{}",
        cluster.logs()
    );

    // The killed node comes back, catches up and rejoins the ISR of both topics; then
    // the strict topic takes writes again.
    cluster.spawn(leader);
    cluster
        .servers
        .get_mut(&leader)
        .unwrap()
        .wait_until_accepting();
    for topic in ["replicated", "strict"] {
        wait_for("the ISR whole again", &cluster, || {
            let states = replica_states(cluster.server(survivor), topic);
            (!states.is_empty() && states.iter().all(|(_, _, isr)| isr.len() == 3)).then_some(())
        });
    }
    let size = |id: i32| dir_bytes(&cluster.dir(id).join("data").join("replicated-0"));
    wait_for(
        "the returning replica the same as the leader",
        &cluster,
        || (size(leader) == size(new_leader)).then_some(()),
    );
    assert_eq!(
        send_once(&cluster.bootstrap(), "strict", "accepted"),
        Ok(())
    );
    let read = partition_values(&cluster.bootstrap(), "strict", 0, 1);
    assert_eq!(
        read,
        vec!["accepted".to_string()],
        "the refused record was never written"
    );
    let read = partition_values(&cluster.bootstrap(), "replicated", 0, expected.len());
    assert_eq!(read, expected);
}

/// One DeleteRecords through librdkafka's admin: the partition's low watermark, or its error.
fn delete_records(
    bootstrap: &str,
    topic: &str,
    offset: i64,
    timeout: Duration,
) -> Result<i64, RDKafkaErrorCode> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let mut offsets = rdkafka::TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, rdkafka::Offset::Offset(offset))
        .unwrap();
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout + Duration::from_secs(10)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime
        .block_on(admin.delete_records(&offsets, &options))
        .unwrap();
    let element = &result.elements()[0];
    match element.error() {
        Err(rdkafka::error::KafkaError::OffsetFetch(code)) => Err(code),
        Err(e) => panic!("unexpected DeleteRecords failure: {e}"),
        Ok(()) => match element.offset() {
            rdkafka::Offset::Offset(low_watermark) => Ok(low_watermark),
            other => panic!("low watermark {other:?}"),
        },
    }
}

#[test]
fn delete_records_waits_until_every_live_follower_has_deleted() {
    let mut cluster = Cluster::new(3);
    cluster.start_all();
    let bootstrap = cluster.bootstrap();
    cluster.server(1).ok(&[
        "topics",
        "create",
        "--topic",
        "trimmed",
        "--replication-factor",
        "3",
    ]);
    let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    produce_acked(&bootstrap, "trimmed", 0, &values);
    wait_for("a whole ISR", &cluster, || {
        let states = replica_states(cluster.server(1), "trimmed");
        (states.len() == 1 && states[0].2 == vec![1, 2, 3]).then_some(())
    });
    let leader = replica_states(cluster.server(1), "trimmed")[0].0;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let pid = cluster.server(follower).child.id().to_string();

    // A paused follower (still registered: its session has 2 s to run) has not deleted:
    // the request waits for it and times out, as Kafka's DelayedDeleteRecords does.
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    assert!(stop.success());
    let waited = delete_records(&bootstrap, "trimmed", 40, Duration::from_millis(700));
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert_eq!(
        waited,
        Err(RDKafkaErrorCode::RequestTimedOut),
        "{}",
        cluster.logs()
    );

    // Running again, it follows the leader's log start and reports it: answered with the
    // low watermark every replica has reached.
    let low_watermark = delete_records(&bootstrap, "trimmed", 60, Duration::from_secs(30));
    assert_eq!(low_watermark, Ok(60), "{}", cluster.logs());
    // Whichever replica leads next serves from there.
    let remaining = partition_values(&bootstrap, "trimmed", 0, 40);
    assert_eq!(remaining, values[60..].to_vec());
}
