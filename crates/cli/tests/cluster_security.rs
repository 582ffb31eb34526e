//! A cluster whose nodes talk to each other only over secured listeners: the metadata
//! quorum's Raft RPCs and controller requests over mutual TLS (the controller listener
//! requires client certificates), replication and transaction markers over SASL_SSL with
//! PLAIN; clients stay on a PLAINTEXT listener. Certificates are made by the test.

mod common;

use std::collections::BTreeSet;

use common::cluster::*;
use common::free_port;
use moldau_security::test_pki::TestPki;

const INTERNAL_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
    username=\"broker\" password=\"broker-secret\" user_broker=\"broker-secret\";";

#[test]
fn nodes_form_a_quorum_over_mutual_tls_and_replicate_over_sasl_ssl() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    // One certificate per node, each valid for 127.0.0.1 (peers verify host names).
    let ca = pki.write_ca(pki_dir.path());
    let mut cluster = Cluster::new(3);
    for id in 1..=3 {
        let node = pki.write_leaf(
            pki_dir.path(),
            &format!("node-{id}"),
            &format!("node-{id}"),
            &["127.0.0.1", "localhost"],
        );
        let (client, controller) = {
            let n = &cluster.nodes[(id - 1) as usize];
            (n.client_port, n.controller_port)
        };
        let internal = free_port();
        cluster.node_overrides.insert(
            id,
            vec![
                format!(
                    "listeners=PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller},\
                     INTERNAL://127.0.0.1:{internal}"
                ),
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:SSL,\
                 INTERNAL:SASL_SSL"
                    .to_string(),
                "inter.broker.listener.name=INTERNAL".to_string(),
                "ssl.keystore.type=PEM".to_string(),
                format!("ssl.keystore.location={}", node.key_store.display()),
                "ssl.truststore.type=PEM".to_string(),
                format!("ssl.truststore.location={}", ca.display()),
                "listener.name.controller.ssl.client.auth=required".to_string(),
                "sasl.enabled.mechanisms=PLAIN".to_string(),
                "sasl.mechanism.inter.broker.protocol=PLAIN".to_string(),
                format!("listener.name.internal.plain.sasl.jaas.config={INTERNAL_JAAS}"),
            ],
        );
    }
    cluster.start_all();

    // The quorum formed over the TLS controller listeners.
    let server = cluster.server(1);
    let (_, voters, _) = wait_for("a quorum of three voters", &cluster, || {
        quorum(server).filter(|(_, voters, _)| voters.len() == 3)
    });
    assert_eq!(voters, vec![1, 2, 3]);
    let all: BTreeSet<i32> = [1, 2, 3].into();
    let addr = server.addr.to_string();
    wait_for("all brokers registered", &cluster, || {
        brokers(&addr).filter(|b| *b == all)
    });

    // Three replicas of each partition, all in sync: followers fetch over SASL_SSL.
    let out = server.run(&[
        "topics",
        "create",
        "--topic",
        "secured",
        "--partitions",
        "3",
        "--replication-factor",
        "3",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let values: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    produce(&cluster.bootstrap(), "secured", &values);
    wait_for("every replica in sync", &cluster, || {
        let states = replica_states(server, "secured");
        (states.len() == 3 && states.iter().all(|(_, _, isr)| *isr == vec![1, 2, 3])).then_some(())
    });
    // Every node's copy of each partition holds the same bytes: the followers fetched
    // everything over the secured listener.
    wait_for("followers caught up", &cluster, || {
        let sizes: Vec<Vec<u64>> = (1..=3)
            .map(|id| {
                (0..3)
                    .map(|p| {
                        let log = cluster
                            .dir(id)
                            .join("data")
                            .join(format!("secured-{p}"))
                            .join("00000000000000000000.log");
                        std::fs::metadata(log).map_or(0, |m| m.len())
                    })
                    .collect()
            })
            .collect();
        let leader_sizes = &sizes[0];
        (leader_sizes.iter().sum::<u64>() > 0 && sizes.iter().all(|s| s == leader_sizes))
            .then_some(())
    });
    let read = consume_all(&cluster.bootstrap(), "secured", 3, values.len());
    assert_eq!(read.len(), values.len());
    assert!(
        !cluster.logs().contains("cannot connect to it"),
        "a node could not use a secured peer listener:\n{}",
        cluster.logs()
    );
}
