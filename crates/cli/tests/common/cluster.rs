//! A cluster of `moldau server` processes on 127.0.0.1 for the multi-node tests: a Raft
//! metadata quorum over their controller listeners, and the librdkafka and CLI probes the
//! tests share.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, FutureProducer, FutureRecord, Producer, ThreadedProducer,
};
use rdkafka::TopicPartitionList;

use super::{free_port, Server};

/// Bound of every wait in these tests (elections take about one election timeout).
pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Node {
    pub id: i32,
    pub client_port: u16,
    pub controller_port: u16,
    /// `process.roles`: `broker,controller` (combined, the default), `broker` (listens on
    /// `client_port` only) or `controller` (on `controller_port` only).
    pub roles: &'static str,
}

/// Combined mode, every node's roles unless a test says otherwise.
pub const COMBINED: &str = "broker,controller";

impl Node {
    pub fn is_broker(&self) -> bool {
        self.roles.contains("broker")
    }

    pub fn is_controller(&self) -> bool {
        self.roles.contains("controller")
    }
}

pub struct Cluster {
    pub tmp: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub servers: BTreeMap<i32, Server>,
    /// `--override`s for every node, after the helper's own (the last one wins).
    pub overrides: Vec<String>,
    /// `--override`s for one node, after those for every node.
    pub node_overrides: BTreeMap<i32, Vec<String>>,
}

impl Cluster {
    pub fn new(size: i32) -> Cluster {
        Cluster::with_overrides(size, &[])
    }

    /// A cluster whose nodes all get these `--override`s (`KEY=VALUE`) besides the
    /// helper's short timeouts, which they may replace.
    pub fn with_overrides(size: i32, overrides: &[&str]) -> Cluster {
        let roles = vec![COMBINED; size.max(0) as usize];
        Cluster::with_roles(&roles, overrides)
    }

    /// Nodes 1, 2, ... with these `process.roles` each (see [`Node::roles`]); the voters
    /// are the nodes with the controller role.
    pub fn with_roles(roles: &[&'static str], overrides: &[&str]) -> Cluster {
        let nodes = roles
            .iter()
            .zip(1..)
            .map(|(roles, id)| Node {
                id,
                client_port: free_port(),
                controller_port: free_port(),
                roles,
            })
            .collect();
        Cluster {
            tmp: tempfile::tempdir().unwrap(),
            nodes,
            servers: BTreeMap::new(),
            overrides: overrides.iter().map(|o| o.to_string()).collect(),
            node_overrides: BTreeMap::new(),
        }
    }

    pub fn voters(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.is_controller())
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn dir(&self, id: i32) -> std::path::PathBuf {
        let dir = self.tmp.path().join(format!("node-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts node `id` without waiting: a voter only serves clients once the quorum has
    /// a leader, which takes a majority of the nodes.
    pub fn spawn(&mut self, id: i32) {
        let node = &self.nodes[(id - 1) as usize];
        // The first listener is where the test helper reaches the node.
        let listeners = match (node.is_broker(), node.is_controller()) {
            (true, false) => format!("PLAINTEXT://127.0.0.1:{}", node.client_port),
            (false, true) => format!("CONTROLLER://127.0.0.1:{}", node.controller_port),
            _ => format!(
                "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                node.client_port, node.controller_port
            ),
        };
        let mut args = vec![
            format!("node.id={id}"),
            format!("listeners={listeners}"),
            "controller.listener.names=CONTROLLER".to_string(),
            format!("controller.quorum.voters={}", self.voters()),
            "controller.quorum.election.timeout.ms=500".to_string(),
            "controller.quorum.fetch.timeout.ms=1000".to_string(),
            "broker.heartbeat.interval.ms=300".to_string(),
            "broker.session.timeout.ms=2000".to_string(),
        ];
        if node.roles != COMBINED {
            args.push(format!("process.roles={}", node.roles));
        }
        args.extend(self.overrides.iter().cloned());
        args.extend(self.node_overrides.get(&id).into_iter().flatten().cloned());
        let args: Vec<&str> = args
            .iter()
            .flat_map(|a| ["--override", a.as_str()])
            .collect();
        let server = Server::spawn(&self.dir(id), &[], &args);
        self.servers.insert(id, server);
    }

    pub fn start_all(&mut self) {
        let ids: Vec<i32> = self.nodes.iter().map(|n| n.id).collect();
        for id in &ids {
            self.spawn(*id);
        }
        for server in self.servers.values_mut() {
            server.wait_until_accepting();
        }
    }

    /// The running brokers' client listeners (controller-only nodes serve no clients).
    pub fn bootstrap(&self) -> String {
        self.servers
            .iter()
            .filter(|(id, _)| self.nodes[(**id - 1) as usize].is_broker())
            .map(|(_, s)| s.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn server(&self, id: i32) -> &Server {
        &self.servers[&id]
    }

    pub fn logs(&self) -> String {
        self.servers
            .iter()
            .map(|(id, s)| format!("--- node {id} ---\n{}", s.log()))
            .collect()
    }
}

/// The metadata quorum as `server` reports it (DescribeQuorum, forwarded by a broker to
/// the active controller): leader, voters, observers.
pub fn quorum(server: &Server) -> Option<(i32, Vec<i32>, Vec<i32>)> {
    let out = server.run(&[
        "metadata-quorum",
        "describe",
        "--status",
        "--output",
        "json",
    ]);
    if out.code != Some(0) {
        return None;
    }
    let status: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    let ids = |v: &serde_json::Value| -> Vec<i32> {
        let mut ids: Vec<i32> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i.as_i64())
                    .map(|i| i as i32)
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    };
    let leader = status["leader_id"].as_i64().filter(|l| *l >= 0)? as i32;
    Some((
        leader,
        ids(&status["current_voters"]),
        ids(&status["current_observers"]),
    ))
}

/// The brokers node `addr` reports (librdkafka's Metadata).
pub fn brokers(addr: &str) -> Option<BTreeSet<i32>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .ok()?;
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(5)).ok()?;
    Some(metadata.brokers().iter().map(|b| b.id()).collect())
}

pub fn cluster_id(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("data").join("meta.properties")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("cluster.id="))
        .unwrap()
        .to_string()
}

/// The active controller, as `server` reports it (DescribeCluster, `moldau cluster
/// describe`; rust-rdkafka does not expose Metadata's controller id).
pub fn controller_id(server: &Server) -> Option<i32> {
    let out = server.run(&["cluster", "describe", "--output", "json"]);
    if out.code != Some(0) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    value["controller_id"]
        .as_i64()
        .map(|id| id as i32)
        .filter(|id| *id >= 0)
}

pub fn wait_for<T>(what: &str, cluster: &Cluster, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn produce(bootstrap: &str, topic: &str, values: &[String]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    for (i, value) in values.iter().enumerate() {
        let key = i.to_string();
        producer
            .send(BaseRecord::to(topic).key(&key).payload(value))
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// Every value of `topic` (`partitions` partitions), read from the beginning.
pub fn consume_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
) -> BTreeSet<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut values = BTreeSet::new();
    let deadline = Instant::now() + DEADLINE;
    while values.len() < count && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) {
            let value = message.payload_view::<str>().unwrap().unwrap();
            values.insert(value.to_string());
        }
    }
    values
}

/// The leader of each partition of `topic`, as node `addr` reports them (-1: none).
pub fn partition_leaders(addr: &str, topic: &str) -> Vec<i32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return vec![];
    };
    metadata
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.leader()).collect())
        .unwrap_or_default()
}

/// (leader, replicas, isr) of every partition of `topic`, as `moldau topics describe`
/// reports them through `server`.
pub fn replica_states(server: &Server, topic: &str) -> Vec<(i32, Vec<i32>, Vec<i32>)> {
    let out = server.run(&["topics", "describe", "--topic", topic, "--output", "json"]);
    if out.code != Some(0) {
        return vec![];
    }
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    let ids = |v: &serde_json::Value| -> Vec<i32> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i.as_i64())
                    .map(|i| i as i32)
                    .collect()
            })
            .unwrap_or_default()
    };
    value[0]["partitions"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .map(|p| {
                    let leader = p["leader"].as_i64().unwrap_or(-1) as i32;
                    let mut isr = ids(&p["isr"]);
                    isr.sort();
                    (leader, ids(&p["replicas"]), isr)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The values of one partition in offset order, read from `bootstrap`.
pub fn partition_values(bootstrap: &str, topic: &str, partition: i32, count: usize) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("ordered-{topic}-{partition}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while values.len() < count && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) {
            values.push(message.payload_view::<str>().unwrap().unwrap().to_string());
        }
    }
    // Anything past the expected count shows too.
    while let Some(Ok(message)) = consumer.poll(Duration::from_millis(1000)) {
        values.push(message.payload_view::<str>().unwrap().unwrap().to_string());
    }
    values
}

/// An acks=all idempotent producer whose every send must be acknowledged.
pub fn produce_acked(bootstrap: &str, topic: &str, partition: i32, values: &[String]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "45000")
        .create()
        .unwrap();
    for value in values {
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(partition)
                    .key(value)
                    .payload(value),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// One acks=all send without retries: its delivery error, if any.
pub fn send_once(bootstrap: &str, topic: &str, value: &str) -> Result<(), RDKafkaErrorCode> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("retries", "0")
        .set("message.timeout.ms", "20000")
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let record = FutureRecord::to(topic)
        .partition(0)
        .key(value)
        .payload(value);
    match runtime.block_on(producer.send(record, Duration::from_secs(20))) {
        Ok(_) => Ok(()),
        Err((KafkaError::MessageProduction(code), _)) => Err(code),
        Err((e, _)) => panic!("unexpected produce failure: {e}"),
    }
}

/// Bytes of the `.log` segments of a partition directory.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
