//! Partition reassignment on a three-node cluster with `moldau reassign`, as an operator
//! runs kafka-reassign-partitions: a partition moves off its only broker onto two others
//! (execute, then verify until completed), its records all readable from the new replicas
//! with the old broker gone, the old broker's log deleted; a reassignment that cannot
//! finish (its target broker is down) is cancelled and the partition is back where it was;
//! a throttled move keeps to its byte rate, and verify clears the throttles. Replicas
//! given log dirs are placed in them (AlterReplicaLogDirs), and a log dir a broker does
//! not have fails the command.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::*;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::TopicPartitionList;

/// The reassignment JSON of kafka-reassign-partitions for partition 0 of `topic`.
fn reassignment_json(topic: &str, replicas: &[i32]) -> String {
    let dirs = vec!["\"any\""; replicas.len()].join(",");
    let ids = replicas
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    format!(
        r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"replicas":[{ids}],"log_dirs":[{dirs}]}}]}}"#
    )
}

/// DeleteRecords before `offset` on partition 0 of `topic` (the leader's log then starts
/// there, as after retention).
fn delete_records_before(bootstrap: &str, topic: &str, offset: i64) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 0, rdkafka::Offset::Offset(offset))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let result = runtime
        .block_on(admin.delete_records(&offsets, &options))
        .unwrap();
    let low = result.find_partition(topic, 0).unwrap();
    assert!(low.error().is_ok(), "{:?}", low.error());
    assert_eq!(low.offset(), rdkafka::Offset::Offset(offset));
}

#[test]
fn a_partition_moves_to_other_brokers_and_a_stuck_move_is_cancelled() {
    let mut cluster = Cluster::new(3);
    cluster.start_all();
    let addr = |c: &Cluster, id: i32| c.server(id).addr.to_string();
    wait_for("all brokers registered", &cluster, || {
        brokers(&addr(&cluster, 1)).filter(|b| b.len() == 3)
    });

    // An RF=1 partition with records, the first 50 removed (its log starts at 50).
    cluster.server(1).ok(&[
        "topics",
        "create",
        "--topic",
        "moved",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let old = wait_for("the topic's leader", &cluster, || {
        let states = replica_states(cluster.server(1), "moved");
        let (leader, _, _) = states.first()?;
        (*leader >= 0).then_some(*leader)
    });
    let values: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    produce_acked(&cluster.bootstrap(), "moved", 0, &values);
    delete_records_before(&cluster.bootstrap(), "moved", 50);
    let target: Vec<i32> = (1..=3).filter(|id| *id != old).collect();

    // generate proposes the partition over the given brokers.
    let topics_file = cluster.tmp.path().join("topics.json");
    std::fs::write(
        &topics_file,
        r#"{"topics":[{"topic":"moved"}],"version":1}"#,
    )
    .unwrap();
    let broker_list = target
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let generated = cluster.server(1).ok(&[
        "reassign",
        "generate",
        "--topics-to-move-json-file",
        topics_file.to_str().unwrap(),
        "--broker-list",
        &broker_list,
    ]);
    let lines: Vec<&str> = generated.stdout.lines().collect();
    assert_eq!(lines[0], "Current partition replica assignment");
    assert_eq!(
        lines[1],
        format!(
            r#"{{"version":1,"partitions":[{{"topic":"moved","partition":0,"replicas":[{old}],"log_dirs":["any"]}}]}}"#
        )
    );
    assert_eq!(lines[3], "Proposed partition reassignment configuration");
    let proposed: serde_json::Value = serde_json::from_str(lines[4]).unwrap();
    let proposed_replica = proposed["partitions"][0]["replicas"][0].as_i64().unwrap() as i32;
    assert!(target.contains(&proposed_replica), "{}", generated.stdout);

    // execute prints the assignment to roll back to, and starts the move.
    let plan = cluster.tmp.path().join("move.json");
    std::fs::write(&plan, reassignment_json("moved", &target)).unwrap();
    let plan_arg = plan.to_str().unwrap();
    let executed =
        cluster
            .server(1)
            .ok(&["reassign", "execute", "--reassignment-json-file", plan_arg]);
    assert!(
        executed.stdout.contains(&format!(
            "Current partition replica assignment\n\n{}\n\nSave this to use as the \
             --reassignment-json-file option during rollback",
            reassignment_json("moved", &[old])
        )),
        "{}",
        executed.stdout
    );
    assert!(
        executed
            .stdout
            .contains("Successfully started partition reassignment for moved-0"),
        "{}",
        executed.stdout
    );

    // verify, until it reports the move completed.
    wait_for("the reassignment completed", &cluster, || {
        let out =
            cluster
                .server(1)
                .ok(&["reassign", "verify", "--reassignment-json-file", plan_arg]);
        assert!(out
            .stdout
            .starts_with("Status of partition reassignment:\n"));
        if out
            .stdout
            .contains("Reassignment of partition moved-0 is still in progress.")
        {
            return None;
        }
        assert!(
            out.stdout
                .contains("Reassignment of partition moved-0 is completed."),
            "{}",
            out.stdout
        );
        Some(())
    });
    let (leader, replicas, isr) = replica_states(cluster.server(1), "moved")[0].clone();
    assert_eq!(replicas, target);
    assert_eq!(isr, target);
    assert_eq!(leader, target[0]);
    let listed = cluster.server(1).ok(&["reassign", "list"]);
    assert_eq!(listed.stdout.trim(), "No partition reassignments found.");

    // The old broker's log is deleted; both new replicas hold the same bytes.
    wait_for("the old replica's log deleted", &cluster, || {
        (!cluster.dir(old).join("data").join("moved-0").exists()).then_some(())
    });
    let size = |id: i32| dir_bytes(&cluster.dir(id).join("data").join("moved-0"));
    wait_for("both new replicas alike", &cluster, || {
        (size(target[0]) > 0 && size(target[0]) == size(target[1])).then_some(())
    });

    // Everything from the log start is read from the new replicas, the old broker down.
    drop(cluster.servers.remove(&old).unwrap());
    let read = partition_values(&cluster.bootstrap(), "moved", 0, 250);
    assert_eq!(read, values[50..], "{}", cluster.logs());

    // A move onto the broker that is down cannot finish: cancel puts the partition back.
    let up = target[0];
    wait_for("the stopped broker fenced", &cluster, || {
        brokers(&addr(&cluster, up)).filter(|b| b.len() == 2)
    });
    cluster.server(up).ok(&[
        "topics",
        "create",
        "--topic",
        "stuck",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let original = wait_for("the second topic's leader", &cluster, || {
        let states = replica_states(cluster.server(up), "stuck");
        let (leader, replicas, _) = states.first()?;
        (*leader >= 0).then_some(replicas.clone())
    });
    produce_acked(&cluster.bootstrap(), "stuck", 0, &values[..10]);
    let mut onto_down = original.clone();
    onto_down.push(old);
    let stuck_plan = cluster.tmp.path().join("stuck.json");
    std::fs::write(&stuck_plan, reassignment_json("stuck", &onto_down)).unwrap();
    let stuck_arg = stuck_plan.to_str().unwrap();
    cluster
        .server(up)
        .ok(&["reassign", "execute", "--reassignment-json-file", stuck_arg]);
    let listed = cluster.server(up).ok(&["reassign", "list"]);
    assert_eq!(
        listed.stdout,
        format!(
            "Current partition reassignments:\nstuck-0: replicas: {}. adding: {old}.\n",
            onto_down
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    );
    let verified =
        cluster
            .server(up)
            .ok(&["reassign", "verify", "--reassignment-json-file", stuck_arg]);
    assert!(
        verified
            .stdout
            .contains("Reassignment of partition stuck-0 is still in progress."),
        "{}",
        verified.stdout
    );
    let cancelled =
        cluster
            .server(up)
            .ok(&["reassign", "cancel", "--reassignment-json-file", stuck_arg]);
    assert!(
        cancelled
            .stdout
            .contains("Successfully cancelled partition reassignment for: stuck-0"),
        "{}",
        cancelled.stdout
    );
    let states = replica_states(cluster.server(up), "stuck");
    let (leader, replicas, _) = &states[0];
    assert_eq!(replicas, &original);
    assert!(original.contains(leader));
    let listed = cluster.server(up).ok(&["reassign", "list"]);
    assert_eq!(listed.stdout.trim(), "No partition reassignments found.");
    let again = cluster.server(up).ok(&[
        "reassign",
        "cancel",
        "--reassignment-json-file",
        stuck_arg,
        "--preserve-throttles",
    ]);
    assert_eq!(
        again.stdout.trim(),
        "None of the specified partition reassignments are active."
    );
    let read: BTreeSet<String> = partition_values(&cluster.bootstrap(), "stuck", 0, 10)
        .into_iter()
        .collect();
    assert_eq!(read, values[..10].iter().cloned().collect());

    // A throttled move holds its rate: 100 KB/s lets about 1 MB through in the first ten
    // seconds (Kafka's rate window), so ~1.7 MB take over ten seconds, where an unthrottled
    // move takes about one.
    let other = target[1];
    cluster.server(up).ok(&[
        "topics",
        "create",
        "--topic",
        "slow",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let source = wait_for("the third topic's leader", &cluster, || {
        let states = replica_states(cluster.server(up), "slow");
        let (leader, _, _) = states.first()?;
        (*leader >= 0).then_some(*leader)
    });
    let destination = if source == up { other } else { up };
    let big: Vec<String> = (0..800)
        .map(|i| format!("{i:04}{}", "x".repeat(1020)))
        .collect();
    produce_acked(&cluster.bootstrap(), "slow", 0, &big);
    let slow_plan = cluster.tmp.path().join("slow.json");
    std::fs::write(&slow_plan, reassignment_json("slow", &[destination])).unwrap();
    let slow_arg = slow_plan.to_str().unwrap();
    let started = std::time::Instant::now();
    let executed = cluster.server(up).ok(&[
        "reassign",
        "execute",
        "--reassignment-json-file",
        slow_arg,
        "--throttle",
        "100000",
    ]);
    assert!(
        executed
            .stdout
            .contains("The inter-broker throttle limit was set to 100000 B/s"),
        "{}",
        executed.stdout
    );
    let topic_configs = cluster
        .server(up)
        .ok(&["configs", "describe", "--topic", "slow"]);
    let value_of = |table: &str, key: &str| -> Option<String> {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    assert_eq!(
        value_of(
            &topic_configs.stdout,
            "leader.replication.throttled.replicas"
        ),
        Some(format!("0:{source}"))
    );
    assert_eq!(
        value_of(
            &topic_configs.stdout,
            "follower.replication.throttled.replicas"
        ),
        Some(format!("0:{destination}"))
    );
    let broker_configs =
        cluster
            .server(up)
            .ok(&["configs", "describe", "--broker", &destination.to_string()]);
    assert_eq!(
        value_of(
            &broker_configs.stdout,
            "follower.replication.throttled.rate"
        )
        .as_deref(),
        Some("100000"),
        "{}",
        broker_configs.stdout
    );
    wait_for("the throttled move completed", &cluster, || {
        let out =
            cluster
                .server(up)
                .ok(&["reassign", "verify", "--reassignment-json-file", slow_arg]);
        out.stdout
            .contains("Reassignment of partition slow-0 is completed.")
            .then_some(())
    });
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(6),
        "a throttled move took {took:?}"
    );
    // verify cleared the throttles once nothing was moving.
    let topic_configs = cluster
        .server(up)
        .ok(&["configs", "describe", "--topic", "slow"]);
    assert!(
        !topic_configs.stdout.contains("throttled"),
        "{}",
        topic_configs.stdout
    );
    let read = partition_values(&cluster.bootstrap(), "slow", 0, big.len());
    assert_eq!(read, big);
}

/// The reassignment JSON of kafka-reassign-partitions for partition 0 of `topic`, each
/// replica with its log dir.
fn reassignment_json_with_dirs(topic: &str, replicas: &[(i32, &str)]) -> String {
    serde_json::json!({
        "version": 1,
        "partitions": [{
            "topic": topic,
            "partition": 0,
            "replicas": replicas.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            "log_dirs": replicas.iter().map(|(_, dir)| *dir).collect::<Vec<_>>(),
        }],
    })
    .to_string()
}

#[test]
fn replicas_go_to_the_log_dirs_a_reassignment_names() {
    let mut cluster = Cluster::new(2);
    cluster.start_all();
    let first = cluster.server(1).addr.to_string();
    wait_for("both brokers registered", &cluster, || {
        brokers(&first).filter(|b| b.len() == 2)
    });
    cluster.server(1).ok(&[
        "topics",
        "create",
        "--topic",
        "placed",
        "--partitions",
        "1",
        "--replication-factor",
        "1",
    ]);
    let old = wait_for("the topic's leader", &cluster, || {
        let states = replica_states(cluster.server(1), "placed");
        let (leader, _, _) = states.first()?;
        (*leader >= 0).then_some(*leader)
    });
    let new = 3 - old;
    let values: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    produce_acked(&cluster.bootstrap(), "placed", 0, &values);
    let data_dir = |id: i32| cluster.dir(id).join("data").to_str().unwrap().to_string();
    let (old_dir, new_dir) = (data_dir(old), data_dir(new));

    // Onto both brokers, each replica in the broker's own (only) log dir: the move starts
    // on the new broker once it has the replica, and there is nothing to move on the old.
    let plan = cluster.tmp.path().join("placed.json");
    std::fs::write(
        &plan,
        reassignment_json_with_dirs("placed", &[(new, &new_dir), (old, &old_dir)]),
    )
    .unwrap();
    let plan_arg = plan.to_str().unwrap();
    let executed =
        cluster
            .server(1)
            .ok(&["reassign", "execute", "--reassignment-json-file", plan_arg]);
    for (id, dir) in [(new, &new_dir), (old, &old_dir)] {
        let line = format!(
            "Successfully started moving log directory to {dir} for replica placed-0 with \
             broker {id}"
        );
        assert!(executed.stdout.contains(&line), "{}", executed.stdout);
    }
    wait_for("the reassignment completed", &cluster, || {
        let out =
            cluster
                .server(1)
                .ok(&["reassign", "verify", "--reassignment-json-file", plan_arg]);
        out.stdout
            .contains("Reassignment of partition placed-0 is completed.")
            .then_some(())
    });
    let (_, replicas, isr) = replica_states(cluster.server(1), "placed")[0].clone();
    assert_eq!(replicas, vec![new, old]);
    assert_eq!(isr.len(), 2);
    assert!(std::path::Path::new(&new_dir).join("placed-0").is_dir());
    assert_eq!(
        partition_values(&cluster.bootstrap(), "placed", 0, values.len()),
        values
    );

    // A log dir the broker does not have fails the command, naming the replica, its broker
    // and the dir; the replicas stay where they are.
    let bogus = cluster.tmp.path().join("no-such-log-dir");
    let bogus = bogus.to_str().unwrap();
    let bad_plan = cluster.tmp.path().join("bogus.json");
    std::fs::write(
        &bad_plan,
        reassignment_json_with_dirs("placed", &[(new, bogus), (old, "any")]),
    )
    .unwrap();
    let failed = cluster.server(1).run(&[
        "reassign",
        "execute",
        "--reassignment-json-file",
        bad_plan.to_str().unwrap(),
    ]);
    failed.assert_last_line_error(
        1,
        &format!("replica placed-0 on broker {new} to log dir {bogus}: LOG_DIR_NOT_FOUND"),
    );
    assert!(!std::path::Path::new(bogus).exists());
    let (_, replicas, _) = replica_states(cluster.server(1), "placed")[0].clone();
    assert_eq!(replicas, vec![new, old]);
    assert_eq!(
        partition_values(&cluster.bootstrap(), "placed", 0, values.len()),
        values
    );
}

#[test]
fn a_broker_that_joins_takes_the_partitions_of_one_that_is_drained() {
    // Three combined nodes first; node 4 (broker-only) joins the running cluster later.
    let mut cluster = Cluster::with_roles(&[COMBINED, COMBINED, COMBINED, "broker"], &[]);
    for id in 1..=3 {
        cluster.spawn(id);
    }
    for id in 1..=3 {
        cluster.servers.get_mut(&id).unwrap().wait_until_accepting();
    }
    let b1 = cluster.server(1).addr.to_string();
    cluster.server(1).ok(&[
        "topics",
        "create",
        "--topic",
        "drained",
        "--partitions",
        "3",
        "--replication-factor",
        "2",
    ]);
    let values: Vec<String> = (0..90).map(|i| format!("d{i}")).collect();
    for partition in 0..3 {
        let slice = &values[partition as usize * 30..][..30];
        produce_acked(&b1, "drained", partition, slice);
    }
    cluster.spawn(4);
    cluster.servers.get_mut(&4).unwrap().wait_until_accepting();
    let all: BTreeSet<i32> = [1, 2, 3, 4].into();
    wait_for("broker 4 registered", &cluster, || {
        brokers(&b1).filter(|b| *b == all)
    });

    // kafka-reassign-partitions' way to drain broker 1: propose over 2, 3, 4, execute.
    let topics_file = cluster.tmp.path().join("drain-topics.json");
    std::fs::write(
        &topics_file,
        r#"{"topics":[{"topic":"drained"}],"version":1}"#,
    )
    .unwrap();
    let generated = cluster.server(1).ok(&[
        "reassign",
        "generate",
        "--topics-to-move-json-file",
        topics_file.to_str().unwrap(),
        "--broker-list",
        "2,3,4",
    ]);
    let proposal = generated.stdout.lines().nth(4).unwrap().to_string();
    let plan = cluster.tmp.path().join("drain.json");
    std::fs::write(&plan, &proposal).unwrap();
    let plan_arg = plan.to_str().unwrap();
    cluster
        .server(1)
        .ok(&["reassign", "execute", "--reassignment-json-file", plan_arg]);
    wait_for("the drain completed", &cluster, || {
        let out =
            cluster
                .server(1)
                .ok(&["reassign", "verify", "--reassignment-json-file", plan_arg]);
        (!out.stdout.contains("still in progress")).then_some(())
    });
    let states = replica_states(cluster.server(1), "drained");
    assert_eq!(states.len(), 3);
    for (leader, replicas, isr) in &states {
        assert!(!replicas.contains(&1) && leader != &1, "{states:?}");
        let mut sorted = replicas.clone();
        sorted.sort();
        assert_eq!(&sorted, isr, "{states:?}");
    }
    assert!(
        states.iter().any(|(_, replicas, _)| replicas.contains(&4)),
        "the new broker got nothing: {states:?}"
    );
    // (A deleted log's directory is renamed `<partition>.<id>-delete` before it goes.)
    wait_for("broker 1 holds no replica of the topic", &cluster, || {
        let data = cluster.dir(1).join("data");
        let held = (0..3).any(|p| data.join(format!("drained-{p}")).exists());
        (!held).then_some(())
    });
    // Every record is still there, read with broker 1 gone.
    drop(cluster.servers.remove(&1).unwrap());
    let bootstrap = cluster.bootstrap();
    let read = consume_all(&bootstrap, "drained", 3, values.len());
    assert_eq!(read.len(), values.len(), "{}", cluster.logs());
}
