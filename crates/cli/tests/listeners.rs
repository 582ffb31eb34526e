//! Several listeners per broker, as Kafka deployments split client and replication
//! traffic: every broker registers all its advertised listeners, clients are answered with
//! the endpoints of the listener they connected to, and brokers talk to each other (follower
//! fetches, transaction markers, forwarded requests, the metadata log to a broker-only
//! node) on `inter.broker.listener.name` only. `moldau server` processes driven by
//! librdkafka (rdkafka).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::cluster::*;
use common::free_port;
use common::proxy::{Network, Proxy};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaRespErr;

/// (broker id → host:port, partition → (leader, error)) of `topic`, as librdkafka's
/// Metadata through `bootstrap` reports them.
type Answer = (
    BTreeMap<i32, String>,
    BTreeMap<i32, (i32, Option<RDKafkaRespErr>)>,
);

fn metadata(bootstrap: &str, topic: &str) -> Option<Answer> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let brokers = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
        .collect();
    let partitions = metadata
        .topics()
        .first()?
        .partitions()
        .iter()
        .map(|p| (p.id(), (p.leader(), p.error())))
        .collect();
    Some((brokers, partitions))
}

fn create_topic(bootstrap: &str, topic: &NewTopic) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = runtime
        .block_on(admin.create_topics([topic], &options))
        .unwrap();
    for result in results {
        result.unwrap();
    }
}

/// One transaction of `values` over every partition of `topic`, committed, then read back
/// read_committed by a group that commits its offsets: markers and the group's and the
/// transaction's coordinators, wherever they are.
fn transact_and_read(bootstrap: &str, topic: &str, partitions: i32, values: &[String]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", format!("txn-{topic}"))
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    producer.begin_transaction().unwrap();
    for (i, value) in values.iter().enumerate() {
        producer
            .send(
                BaseRecord::<str, str>::to(topic)
                    .partition(i as i32 % partitions)
                    .payload(value),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer
        .commit_transaction(Duration::from_secs(30))
        .unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("readers-{topic}"))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut read = BTreeSet::new();
    let deadline = Instant::now() + DEADLINE;
    while read.len() < values.len() && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) {
            read.insert(message.payload_view::<str>().unwrap().unwrap().to_string());
        }
    }
    assert_eq!(read, values.iter().cloned().collect::<BTreeSet<_>>());
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .unwrap();
}

#[test]
fn clients_get_their_listeners_endpoints_and_brokers_talk_on_the_inter_broker_listener() {
    // Three combined nodes and a broker-only one. Each combined node listens on INTERNAL
    // (replication; where the test harness reaches it), EXTERNAL (clients, advertised
    // through a proxy the test can take away) and CONTROLLER; the broker-only node has
    // INTERNAL only.
    let mut cluster = Cluster::with_roles(
        &[COMBINED, COMBINED, COMBINED, "broker"],
        &[
            "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=INTERNAL",
        ],
    );
    let network = Network::new();
    let mut proxies = Vec::new();
    let mut external = BTreeMap::new();
    for id in 1..=4 {
        let node = &cluster.nodes[(id - 1) as usize];
        let internal = format!("INTERNAL://127.0.0.1:{}", node.client_port);
        let overrides = if id == 4 {
            vec![format!("listeners={internal}")]
        } else {
            let port = free_port();
            let proxy = Proxy::start(id, ([127, 0, 0, 1], port).into(), network.clone());
            external.insert(id, proxy.addr());
            let controller = format!("CONTROLLER://127.0.0.1:{}", node.controller_port);
            let overrides = vec![
                format!("listeners={internal},EXTERNAL://127.0.0.1:{port},{controller}"),
                format!(
                    "advertised.listeners={internal},EXTERNAL://{}",
                    proxy.addr()
                ),
            ];
            proxies.push(proxy);
            overrides
        };
        cluster.node_overrides.insert(id, overrides);
    }
    cluster.start_all();
    let internal_bootstrap = cluster.bootstrap();
    let internal: BTreeMap<i32, String> = cluster
        .servers
        .iter()
        .map(|(id, s)| (*id, s.addr.to_string()))
        .collect();
    let external_bootstrap = external.values().cloned().collect::<Vec<_>>().join(",");

    // A topic over the combined brokers, each leading one partition (RF=3, every replica
    // needed for acks=all), and one led by the broker-only node, which has no EXTERNAL
    // listener.
    create_topic(
        &internal_bootstrap,
        &NewTopic::new(
            "everywhere",
            3,
            TopicReplication::Variable(&[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]]),
        )
        .set("min.insync.replicas", "3"),
    );
    create_topic(
        &internal_bootstrap,
        &NewTopic::new("internal-only", 1, TopicReplication::Variable(&[&[4]])),
    );

    // Each listener's clients see every broker on that listener.
    let (brokers, _) = wait_for("Metadata on INTERNAL with all four", &cluster, || {
        metadata(&internal_bootstrap, "everywhere").filter(|(b, _)| b.len() == 4)
    });
    assert_eq!(brokers, internal);
    let (brokers, _) = wait_for("Metadata on EXTERNAL", &cluster, || {
        metadata(&external_bootstrap, "everywhere").filter(|(b, _)| b.len() == 3)
    });
    assert_eq!(brokers, external, "the broker without EXTERNAL is left out");
    // The partition led by the broker without EXTERNAL: no leader for these clients.
    let (_, partitions) = metadata(&external_bootstrap, "internal-only").unwrap();
    assert_eq!(
        partitions[&0],
        (
            -1,
            Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_LISTENER_NOT_FOUND)
        ),
    );
    let (_, partitions) = metadata(&internal_bootstrap, "internal-only").unwrap();
    assert_eq!(partitions[&0], (4, None));

    // Clients on EXTERNAL work end to end (through the proxies).
    let first: Vec<String> = (0..30).map(|i| format!("external-{i}")).collect();
    for partition in 0..3 {
        let values = &first[partition as usize * 10..][..10];
        produce_acked(&external_bootstrap, "everywhere", partition, values);
    }
    assert_eq!(
        consume_all(&external_bootstrap, "everywhere", 3, 30),
        first.iter().cloned().collect::<BTreeSet<_>>(),
        "{}",
        cluster.logs()
    );

    // Take EXTERNAL away: brokers never used it, so replication (acks=all with every
    // replica in sync), transaction markers, group and transaction coordinators and the
    // broker-only node's metadata all go on as before on INTERNAL.
    drop(proxies);
    let second: Vec<String> = (0..30).map(|i| format!("internal-{i}")).collect();
    for partition in 0..3 {
        let values = &second[partition as usize * 10..][..10];
        produce_acked(&internal_bootstrap, "everywhere", partition, values);
    }
    for (leader, _, isr) in replica_states(cluster.server(1), "everywhere") {
        assert!(leader > 0);
        assert_eq!(isr, vec![1, 2, 3], "{}", cluster.logs());
    }
    create_topic(
        &internal_bootstrap,
        &NewTopic::new("late", 3, TopicReplication::Fixed(3)),
    );
    wait_for(
        "the broker-only node applies the new topic",
        &cluster,
        || metadata(&internal[&4], "late").filter(|(_, p)| p.len() == 3),
    );
    let values: Vec<String> = (0..12).map(|i| format!("txn-{i}")).collect();
    transact_and_read(&internal_bootstrap, "late", 3, &values);
}
