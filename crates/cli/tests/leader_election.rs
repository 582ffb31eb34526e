//! Leader elections on a three-node cluster: `moldau leaders elect` (ElectLeaders) moves
//! leadership back to the preferred replicas after a broker returns and gives a
//! leaderless partition an out-of-sync leader on demand; the active controller rebalances
//! by itself (`auto.leader.rebalance.enable`) and runs unclean elections once a topic's
//! `unclean.leader.election.enable` is turned on.

mod common;

use std::collections::BTreeSet;

use common::cluster::*;

/// (leader, replicas, ISR) of every partition of `topic`.
type States = Vec<(i32, Vec<i32>, Vec<i32>)>;

/// Starts the cluster, waits for every broker, creates `topics` (name, partitions,
/// replication factor) and waits until every partition has its whole ISR.
fn cluster_with_topics(overrides: &[&str], topics: &[(&str, i32, i32)]) -> Cluster {
    let mut cluster = Cluster::with_overrides(3, overrides);
    cluster.start_all();
    let addr = cluster.server(1).addr.to_string();
    wait_for("all brokers registered", &cluster, || {
        brokers(&addr).filter(|b| b.len() == 3)
    });
    for (topic, partitions, replication_factor) in topics {
        cluster.server(1).ok(&[
            "topics",
            "create",
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
            "--replication-factor",
            &replication_factor.to_string(),
        ]);
        wait_for("every replica in sync", &cluster, || {
            let states = replica_states(cluster.server(1), topic);
            (states.len() == *partitions as usize
                && states
                    .iter()
                    .all(|(l, r, isr)| *l >= 0 && isr.len() == r.len()))
            .then_some(())
        });
    }
    cluster
}

/// Whether every partition is led by its first replica.
fn preferred_everywhere(states: &States) -> bool {
    !states.is_empty() && states.iter().all(|(l, r, _)| r.first() == Some(l))
}

/// `topic`-`p` for each partition whose first replica is `broker`.
fn preferred_by(states: &States, topic: &str, broker: i32) -> Vec<String> {
    states
        .iter()
        .enumerate()
        .filter(|(_, (_, r, _))| r.first() == Some(&broker))
        .map(|(p, _)| format!("{topic}-{p}"))
        .collect()
}

/// kill -9 of `victim`, until it leads nothing and has left every ISR of `topic`.
fn kill_and_wait_for_failover(cluster: &mut Cluster, victim: i32, topic: &str) {
    drop(cluster.servers.remove(&victim).unwrap());
    let probe = *cluster.servers.keys().next().unwrap();
    wait_for(
        "leadership and ISRs without the killed broker",
        cluster,
        || {
            let states = replica_states(cluster.server(probe), topic);
            (!states.is_empty()
                && states
                    .iter()
                    .all(|(l, _, isr)| *l >= 0 && *l != victim && !isr.contains(&victim)))
            .then_some(())
        },
    );
}

/// Restarts `id`, until it is back in every ISR of `topic`, as another node sees it (a
/// restarted node may still answer from the image it had before).
fn restart_and_wait_for_isr(cluster: &mut Cluster, id: i32, topic: &str) {
    cluster.spawn(id);
    cluster.servers.get_mut(&id).unwrap().wait_until_accepting();
    let probe = (1..=3).find(|other| *other != id).unwrap();
    wait_for("the ISR whole again", cluster, || {
        let states = replica_states(cluster.server(probe), topic);
        (!states.is_empty() && states.iter().all(|(_, r, isr)| isr.len() == r.len())).then_some(())
    });
}

#[test]
fn a_preferred_election_moves_leadership_back_to_a_returning_broker() {
    // No automatic rebalancing here: the election on demand must do it.
    let mut cluster = cluster_with_topics(&["auto.leader.rebalance.enable=false"], &[("p", 6, 3)]);
    let before = replica_states(cluster.server(1), "p");
    assert!(preferred_everywhere(&before), "{before:?}");
    let values: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    produce_acked(&cluster.bootstrap(), "p", 0, &values);

    // A broker other than the active controller dies and comes back: its partitions
    // stay with the replicas that took them over.
    let controller = wait_for("an active controller", &cluster, || {
        controller_id(cluster.server(1))
    });
    let victim = (1..=3).find(|id| *id != controller).unwrap();
    let moved_back = preferred_by(&before, "p", victim);
    assert!(!moved_back.is_empty(), "{before:?}");
    kill_and_wait_for_failover(&mut cluster, victim, "p");
    restart_and_wait_for_isr(&mut cluster, victim, "p");
    let after_restart = replica_states(cluster.server(controller), "p");
    assert!(
        after_restart.iter().all(|(l, _, _)| *l != victim),
        "{after_restart:?}"
    );

    // A named partition that needs nothing says so.
    let unmoved = (0..6)
        .find(|p| before[*p].1.first() != Some(&victim))
        .unwrap();
    let out = cluster.server(controller).ok(&[
        "leaders",
        "elect",
        "--election-type",
        "preferred",
        "--topic",
        "p",
        "--partition",
        &unmoved.to_string(),
    ]);
    assert_eq!(
        out.stdout.trim(),
        format!("Valid replica already elected for partitions p-{unmoved}")
    );

    // Every partition: the returning broker leads its preferred partitions again. Sent
    // through the broker that just came back, which finds the active controller.
    let out = cluster.server(victim).ok(&[
        "leaders",
        "elect",
        "--election-type",
        "preferred",
        "--all-topic-partitions",
    ]);
    let line = out
        .stdout
        .lines()
        .find(|l| {
            l.starts_with("Successfully completed leader election (PREFERRED) for partitions ")
        })
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let elected: BTreeSet<&str> = line
        .trim_start_matches("Successfully completed leader election (PREFERRED) for partitions ")
        .split(", ")
        .collect();
    for partition in &moved_back {
        assert!(elected.contains(partition.as_str()), "{line}");
    }
    assert!(!out.stdout.contains("Error"), "{}", out.stdout);
    let states = replica_states(cluster.server(controller), "p");
    assert!(preferred_everywhere(&states), "{states:?}");
    // Nothing lost on the way.
    let read = partition_values(&cluster.bootstrap(), "p", 0, values.len());
    assert_eq!(read, values);

    // A second run has nothing to do.
    let out = cluster.server(controller).ok(&[
        "leaders",
        "elect",
        "--election-type",
        "preferred",
        "--all-topic-partitions",
    ]);
    assert_eq!(
        out.stdout.trim(),
        "No partition needed a leader election (PREFERRED)"
    );
    let json = cluster.server(victim).json(&[
        "leaders",
        "elect",
        "--election-type",
        "PREFERRED",
        "--all-topic-partitions",
        "-o",
        "json",
    ]);
    assert_eq!(json["election_type"], "PREFERRED");
    for list in ["elected", "not_needed", "failed"] {
        assert_eq!(json[list], serde_json::json!([]), "{json}");
    }

    // kafka-leader-election's JSON file; unknown partitions are per-partition errors
    // (exit 1).
    let file = cluster.tmp.path().join("election.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"partitions": [{{"topic": "p", "partition": {unmoved}}},
                {{"topic": "p", "partition": 9}}, {{"topic": "nope", "partition": 0}}]}}"#
        ),
    )
    .unwrap();
    let out = cluster.server(victim).run(&[
        "leaders",
        "elect",
        "--election-type",
        "preferred",
        "--path-to-json-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            format!("Valid replica already elected for partitions p-{unmoved}"),
            "Error completing leader election (PREFERRED) for partition: nope-0: \
             UnknownTopicOrPartition: No such topic as nope"
                .to_string(),
            "Error completing leader election (PREFERRED) for partition: p-9: \
             UnknownTopicOrPartition: No such partition as p-9"
                .to_string(),
        ],
        "{}",
        out.stderr
    );
    out.assert_one_line_error(1, "2 replica(s) could not be elected");
}

#[test]
fn the_controller_rebalances_leaders_by_itself() {
    let mut cluster = cluster_with_topics(
        &[
            "leader.imbalance.check.interval.seconds=1",
            "leader.imbalance.per.broker.percentage=0",
        ],
        &[("auto", 3, 3)],
    );
    let controller = wait_for("an active controller", &cluster, || {
        controller_id(cluster.server(1))
    });
    let victim = (1..=3).find(|id| *id != controller).unwrap();
    kill_and_wait_for_failover(&mut cluster, victim, "auto");
    restart_and_wait_for_isr(&mut cluster, victim, "auto");
    wait_for(
        "leadership back on the preferred replicas",
        &cluster,
        || preferred_everywhere(&replica_states(cluster.server(controller), "auto")).then_some(()),
    );
    // The balancer did it (the restarted broker got no leadership back by itself).
    assert!(
        cluster
            .logs()
            .contains("auto leader rebalance: elected new leaders"),
        "{}",
        cluster.logs()
    );
}

/// The partition of `states` whose replicas are `a` and `b`.
fn partition_on(states: &States, a: i32, b: i32) -> i32 {
    let pair: BTreeSet<i32> = [a, b].into();
    let found = states
        .iter()
        .position(|(_, r, _)| r.iter().copied().collect::<BTreeSet<i32>>() == pair);
    found.unwrap_or_else(|| panic!("no partition on {a} and {b}: {states:?}")) as i32
}

#[test]
fn an_unclean_election_gives_a_leaderless_partition_an_out_of_sync_leader() {
    // Two topics of three partitions on two replicas each: each has one partition on
    // any two brokers.
    let mut cluster = cluster_with_topics(&[], &[("u", 3, 2), ("v", 3, 2)]);
    let u = replica_states(cluster.server(1), "u");
    let (a, b) = (u[0].1[0], u[0].1[1]);
    let c = (1..=3).find(|id| *id != a && *id != b).unwrap();
    let v_partition = partition_on(&replica_states(cluster.server(1), "v"), a, b);
    let before: Vec<String> = (0..10).map(|i| format!("before{i}")).collect();
    let after: Vec<String> = (0..10).map(|i| format!("after{i}")).collect();
    produce_acked(&cluster.bootstrap(), "u", 0, &before);
    produce_acked(&cluster.bootstrap(), "v", v_partition, &before);

    // b dies: a alone is in sync, and takes records b never gets.
    drop(cluster.servers.remove(&b).unwrap());
    wait_for("b out of the ISRs", &cluster, || {
        let u = replica_states(cluster.server(c), "u");
        let v = replica_states(cluster.server(c), "v");
        let alone = |states: &States, p: usize| {
            states
                .get(p)
                .is_some_and(|(l, _, isr)| *l == a && *isr == vec![a])
        };
        (alone(&u, 0) && alone(&v, v_partition as usize)).then_some(())
    });
    produce_acked(&cluster.bootstrap(), "u", 0, &after);
    produce_acked(&cluster.bootstrap(), "v", v_partition, &after);

    // a dies too, and b comes back (with c, a majority of the quorum again): a is fenced
    // and was the last in-sync replica, so it leaves the ISR for the eligible leader
    // replicas (KIP-966, as Kafka 4.1) and both partitions have no leader, since
    // unclean.leader.election.enable is off.
    drop(cluster.servers.remove(&a).unwrap());
    cluster.spawn(b);
    cluster.servers.get_mut(&b).unwrap().wait_until_accepting();
    wait_for("both partitions leaderless", &cluster, || {
        let u = replica_states(cluster.server(c), "u");
        let v = replica_states(cluster.server(c), "v");
        let leaderless = |states: &States, p: usize| {
            states
                .get(p)
                .is_some_and(|(l, _, isr)| *l == -1 && isr.is_empty())
        };
        (leaderless(&u, 0) && leaderless(&v, v_partition as usize)).then_some(())
    });

    // A preferred election cannot help: no in-sync replica is up.
    let elect = |kind: &str, topic: &str, partition: i32| {
        cluster.server(c).run(&[
            "leaders",
            "elect",
            "--election-type",
            kind,
            "--topic",
            topic,
            "--partition",
            &partition.to_string(),
        ])
    };
    let out = elect("preferred", "u", 0);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("Error completing leader election (PREFERRED) for partition: u-0: "),
        "{}",
        out.stdout
    );

    // An unclean election on demand: b leads, alone in the ISR; what only a had is gone.
    let out = elect("unclean", "u", 0);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "Successfully completed leader election (UNCLEAN) for partitions u-0"
    );
    let states = replica_states(cluster.server(c), "u");
    assert_eq!((states[0].0, states[0].2.clone()), (b, vec![b]));
    let read = partition_values(&cluster.bootstrap(), "u", 0, before.len());
    assert_eq!(read, before);
    let out = elect("unclean", "u", 0);
    assert_eq!(
        out.stdout.trim(),
        "Valid replica already elected for partitions u-0"
    );

    // v's partition waits for a, until its topic allows unclean elections: then the
    // active controller elects b by itself.
    let v_states = replica_states(cluster.server(c), "v");
    assert_eq!(v_states[v_partition as usize].0, -1, "{v_states:?}");
    cluster.server(c).ok(&[
        "configs",
        "alter",
        "--topic",
        "v",
        "--add-config",
        "unclean.leader.election.enable=true",
    ]);
    wait_for("b elected for v by the controller", &cluster, || {
        let v = replica_states(cluster.server(c), "v");
        v.get(v_partition as usize)
            .filter(|(l, _, isr)| *l == b && *isr == vec![b])
            .map(|_| ())
    });
    assert!(
        cluster
            .logs()
            .contains("unclean leader election: elected new leaders"),
        "{}",
        cluster.logs()
    );
    let described = cluster
        .server(c)
        .json(&["configs", "describe", "--topic", "v", "--output", "json"]);
    let unclean = described
        .as_array()
        .and_then(|configs| {
            configs
                .iter()
                .find(|e| e["name"] == "unclean.leader.election.enable")
        })
        .unwrap_or_else(|| panic!("{described}"));
    assert_eq!(unclean["value"], "true", "{described}");
    let read = partition_values(&cluster.bootstrap(), "v", v_partition, before.len());
    assert_eq!(read, before);
}
