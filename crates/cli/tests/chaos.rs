//! Chaos: three nodes under a fixed sequence of faults (kill -9 and SIGSTOP of partition
//! leaders, kill -9 of the active controller, a graceful restart, two nodes down at once,
//! a network partition of one node) while three workloads run: an acks=all idempotent
//! producer, a transactional pipeline that commits and aborts, and a read_committed
//! consumer group that commits its offsets. Afterwards every acknowledged record is in
//! the log once and in order, committed transactions are whole and aborted ones invisible,
//! the group's committed offsets never went back, and every ISR is whole again.
//!
//! The timeline of faults and the longest unavailability per fault (the longest gap
//! between produce acknowledgements) go to stderr (`--nocapture`). On failure the nodes'
//! logs are copied under the cargo target's tmp dir, and the path is printed (also on
//! success with `CHAOS_KEEP_LOGS=1`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::cluster::{brokers, controller_id, replica_states, Cluster};
use common::proxy::{Network, Proxy};
use common::Server;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// The acks=all idempotent producer's topic.
const TOPIC: &str = "chaos";
/// The transactional pipeline's topic, read by the consumer group.
const TXN_TOPIC: &str = "chaos-txn";
const PARTITIONS: i32 = 3;
const OFFSETS_TOPIC: &str = "__consumer_offsets";
const TXN_STATE_TOPIC: &str = "__transaction_state";
/// Partitions of each internal topic (fewer than Kafka's 50, for two CPU cores).
const INTERNAL_PARTITIONS: i32 = 3;
const TRANSACTIONAL_ID: &str = "chaos-pipeline";
const GROUP: &str = "chaos-group";
/// Records per transaction; every third transaction is aborted.
const TXN_BATCH: usize = 10;
/// Bound of the recovery after each fault, and of the final reads.
const RECOVERY: Duration = Duration::from_secs(60);
/// Bound of a workload's stop (its last transaction, flush or commit).
const WORKLOAD_STOP: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// kill -9 of a partition leader, restarted after its session expired.
    KillLeader,
    /// SIGSTOP of a partition leader for longer than its session, then SIGCONT.
    PauseLeader,
    /// kill -9 of the active controller, then restarted.
    KillController,
    /// SIGTERM (controlled shutdown) of a node, restarted at once.
    GracefulRestart,
    /// kill -9 of two of the three nodes (no metadata quorum), then both back.
    TwoDown,
    /// A network partition cutting one node off (clients included), then healed.
    Partition,
    /// SIGSTOP of the active controller for longer than the sessions, then SIGCONT.
    PauseController,
    /// A network partition cutting the active controller off, then healed.
    PartitionController,
    /// kill -9 of a partition leader and, as it restarts (before it is back in sync), of
    /// the leader that took over: the last in-sync replica leads alone, below
    /// min.insync.replicas, and the restarted one may not lead before it caught up.
    CascadingKill,
    /// A partition leader cut off from the other nodes but not from clients: it cannot
    /// acknowledge acks=all writes it takes while a new leader is elected.
    PartitionFromPeers,
}

/// The faults, in this order, every run.
const FAULTS: [Fault; 10] = [
    Fault::KillLeader,
    Fault::PauseLeader,
    Fault::KillController,
    Fault::PauseController,
    Fault::GracefulRestart,
    Fault::TwoDown,
    Fault::CascadingKill,
    Fault::Partition,
    Fault::PartitionFromPeers,
    Fault::PartitionController,
];

#[test]
fn acknowledged_writes_transactions_and_group_offsets_survive_faults() {
    let mut chaos = Chaos::start();
    chaos.create_topics();
    let workloads = Workloads::start(&chaos.bootstrap, &chaos.timeline);
    chaos.recover("workloads warmed up", Instant::now(), &workloads);
    for fault in FAULTS {
        chaos.inject(fault, &workloads);
    }
    let stopped = Instant::now();
    let outcome = workloads.stop(&chaos);
    chaos.timeline.note(format!(
        "workloads stopped in {:.1}s",
        stopped.elapsed().as_secs_f64()
    ));
    let mut violations = Vec::new();
    violations.extend(chaos.check_produced(&outcome.produce));
    violations.extend(chaos.check_transactions(&outcome.txn, &outcome.group));
    violations.extend(check_group(&outcome.group));
    violations.extend(chaos.check_isr_whole());
    violations.extend(chaos.check_replicas_identical());
    chaos.report(&outcome);
    if std::env::var_os("CHAOS_KEEP_LOGS").is_some() {
        eprintln!("chaos: node logs kept in {}", chaos.keep_logs());
    }
    if !violations.is_empty() {
        chaos.fail(&format!(
            "{} invariant violation(s):\n  {}",
            violations.len(),
            violations.join("\n  ")
        ));
    }
}

// ---------------------------------------------------------------------------------------
// The cluster behind proxies, the faults and the recovery waits.

struct Timeline {
    start: Instant,
    events: Mutex<Vec<String>>,
}

impl Timeline {
    /// Prints and keeps `what` with the time since the start; returns the time noted.
    fn note(&self, what: impl AsRef<str>) -> Instant {
        let now = Instant::now();
        let line = format!(
            "[{:7.2}s {}] {}",
            self.at(now),
            chrono::Utc::now().format("%H:%M:%S%.3f"),
            what.as_ref()
        );
        eprintln!("chaos: {line}");
        self.events.lock().unwrap().push(line);
        now
    }

    fn at(&self, instant: Instant) -> f64 {
        instant.saturating_duration_since(self.start).as_secs_f64()
    }
}

/// One injected fault, for the report.
struct Injected {
    fault: Fault,
    target: String,
    at: Instant,
    /// When the fault was undone (nodes restarted, SIGCONT, healed).
    restored: Instant,
    recovered: Instant,
    /// The metadata quorum's (leader, epoch) before the fault and after the recovery.
    quorum: (Option<QuorumLeader>, Option<QuorumLeader>),
}

/// The metadata quorum's (leader id, leader epoch).
type QuorumLeader = (i64, i64);

struct Chaos {
    cluster: Cluster,
    network: Arc<Network>,
    _proxies: Vec<Proxy>,
    /// The client listeners' proxies: what clients bootstrap from.
    bootstrap: String,
    timeline: Arc<Timeline>,
    injected: Vec<Injected>,
    restarts: u32,
}

impl Chaos {
    fn start() -> Chaos {
        let timeline = Arc::new(Timeline {
            start: Instant::now(),
            events: Mutex::new(Vec::new()),
        });
        let network = Network::new();
        let mut cluster = Cluster::with_overrides(
            3,
            &[
                "replica.lag.time.max.ms=3000",
                "offsets.topic.num.partitions=3",
                "transaction.state.log.num.partitions=3",
                "group.initial.rebalance.delay.ms=0",
                "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000",
            ],
        );
        // Every node reaches the others (and clients reach every node) through proxies:
        // the voters are named by their controller listeners' proxies, and each node
        // advertises its client listener's proxy.
        let mut proxies = Vec::new();
        let mut voters = Vec::new();
        let mut bootstrap = Vec::new();
        for node in &cluster.nodes {
            let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
            let client = Proxy::start(node.id, local(node.client_port), network.clone());
            let controller = Proxy::start(node.id, local(node.controller_port), network.clone());
            voters.push(format!("{}@{}", node.id, controller.addr()));
            bootstrap.push(client.addr());
            cluster.node_overrides.insert(
                node.id,
                vec![format!(
                    "advertised.listeners=PLAINTEXT://{}",
                    client.addr()
                )],
            );
            proxies.push(client);
            proxies.push(controller);
        }
        cluster
            .overrides
            .push(format!("controller.quorum.voters={}", voters.join(",")));
        cluster.start_all();
        timeline.note(format!(
            "three nodes up (data under {}), clients through {}",
            cluster.tmp.path().display(),
            bootstrap.join(",")
        ));
        Chaos {
            cluster,
            network,
            _proxies: proxies,
            bootstrap: bootstrap.join(","),
            timeline,
            injected: Vec::new(),
            restarts: 0,
        }
    }

    fn create_topics(&self) {
        let all: BTreeSet<i32> = [1, 2, 3].into();
        let addr = self.cluster.server(1).addr.to_string();
        self.wait_until("three brokers registered", RECOVERY, || {
            (brokers(&addr) == Some(all.clone()))
                .then_some(())
                .ok_or_else(|| "not yet".to_string())
        });
        for topic in [TOPIC, TXN_TOPIC] {
            self.cluster.server(1).ok(&[
                "topics",
                "create",
                "--topic",
                topic,
                "--partitions",
                &PARTITIONS.to_string(),
                "--replication-factor",
                "3",
                "--config",
                "min.insync.replicas=2",
            ]);
        }
        self.timeline.note(format!(
            "topics {TOPIC} and {TXN_TOPIC}: {PARTITIONS} partitions, RF 3, min.insync.replicas 2"
        ));
    }

    /// Some live node, for the CLI's probes.
    fn any_server(&self) -> &Server {
        self.cluster.servers.values().next().expect("a live node")
    }

    /// The unfenced brokers, and leader and ISR of every partition of every topic, as node
    /// `id` reports them (Metadata; not the CLI, whose DescribeConfigs waits for an active
    /// controller, see `check_isr_whole`).
    fn view(&self, id: i32) -> Result<View, String> {
        let addr = self.cluster.server(id).addr.to_string();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &addr)
            .create()
            .map_err(|e| e.to_string())?;
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(5))
            .map_err(|e| format!("metadata from node {id}: {e}"))?;
        let mut topics = BTreeMap::new();
        for topic in metadata.topics() {
            let mut partitions: Vec<PartitionState> = topic
                .partitions()
                .iter()
                .map(|p| {
                    let mut isr = p.isr().to_vec();
                    isr.sort();
                    PartitionState {
                        partition: p.id(),
                        leader: p.leader(),
                        isr,
                    }
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            topics.insert(topic.name().to_string(), partitions);
        }
        Ok(View {
            brokers: metadata.brokers().iter().map(|b| b.id()).collect(),
            topics,
        })
    }

    /// Some live node's view.
    fn any_view(&self) -> Result<View, String> {
        self.view(*self.cluster.servers.keys().next().expect("a live node"))
    }

    fn leader_of(&self, topic: &str, partition: i32) -> i32 {
        let view = self.wait_until("the partition leaders", RECOVERY, || self.any_view());
        view.topics
            .get(topic)
            .and_then(|ps| ps.iter().find(|p| p.partition == partition))
            .map(|p| p.leader)
            .filter(|l| *l > 0)
            .unwrap_or_else(|| self.fail(&format!("{topic}-{partition} has no leader")))
    }

    fn active_controller(&self) -> i32 {
        self.wait_until("the active controller", RECOVERY, || {
            controller_id(self.any_server()).ok_or_else(|| "none".to_string())
        })
    }

    /// The leader of a partition of `topic`, preferring one that is not the active
    /// controller (that fault has its own step).
    /// Also returns the partition, and the role as "leader of <topic>-<partition>".
    fn leader_not_controller(&self, topic: &str) -> (i32, String, i32) {
        let controller = self.active_controller();
        let leaders: Vec<(i32, i32)> = (0..PARTITIONS)
            .map(|p| (p, self.leader_of(topic, p)))
            .collect();
        let (p, leader) = leaders
            .iter()
            .find(|(_, l)| *l != controller)
            .copied()
            .unwrap_or(leaders[0]);
        (leader, format!("leader of {topic}-{p}"), p)
    }

    /// In every node's view: the three brokers unfenced, and every partition of the four
    /// topics led, with all three replicas in sync.
    fn isr_whole(&self) -> Result<(), String> {
        for id in self.cluster.servers.keys() {
            let view = self.view(*id)?;
            if view.brokers != BTreeSet::from([1, 2, 3]) {
                return Err(format!("node {id}: unfenced brokers {:?}", view.brokers));
            }
            for (topic, count) in [
                (TOPIC, PARTITIONS),
                (TXN_TOPIC, PARTITIONS),
                (OFFSETS_TOPIC, INTERNAL_PARTITIONS),
                (TXN_STATE_TOPIC, INTERNAL_PARTITIONS),
            ] {
                let partitions = view.topics.get(topic).ok_or(format!("{topic} unknown"))?;
                if partitions.len() != count as usize {
                    return Err(format!("{topic}: {} partitions", partitions.len()));
                }
                for p in partitions {
                    if p.leader < 0 || p.isr != [1, 2, 3] {
                        return Err(format!(
                            "{topic}-{}: leader {}, isr {:?} (node {id}'s view)",
                            p.partition, p.leader, p.isr
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits (bounded) until the cluster is whole again and every workload made progress
    /// after `since`.
    fn recover(&self, what: &str, since: Instant, workloads: &Workloads) -> Instant {
        let started = Instant::now();
        // What the recovery waits for, noted as it changes (where the time goes).
        let mut waiting_for = String::new();
        self.wait_until(what, RECOVERY, || {
            let state = self
                .isr_whole()
                .and_then(|()| workloads.progressed_since(since));
            if let Err(reason) = &state {
                // Partition numbers and ISRs vary while it moves: the kind is enough.
                let kind: String = reason.chars().take_while(|c| *c != ':').collect();
                if kind != waiting_for {
                    self.timeline.note(format!("  waiting: {reason}"));
                    waiting_for = kind;
                }
            }
            state
        });
        let done = Instant::now();
        self.timeline.note(format!(
            "{what}: cluster whole and workloads progressing after {:.1}s",
            done.duration_since(started).as_secs_f64()
        ));
        done
    }

    fn inject(&mut self, fault: Fault, workloads: &Workloads) {
        let quorum_before = self.quorum();
        let (target, at) = match fault {
            Fault::KillLeader => {
                let (node, role, _) = self.leader_not_controller(TOPIC);
                let at = self
                    .timeline
                    .note(format!("FAULT kill -9 node {node} ({role})"));
                self.kill(node);
                std::thread::sleep(Duration::from_secs(3));
                self.restart(&[node]);
                (format!("node {node} ({role})"), at)
            }
            Fault::PauseLeader => {
                let coordinator =
                    self.leader_of(TXN_STATE_TOPIC, coordinator_partition(TRANSACTIONAL_ID));
                let role = format!("transaction coordinator, leader of {TXN_STATE_TOPIC}");
                let pid = self.cluster.server(coordinator).child.id();
                let at = self.timeline.note(format!(
                    "FAULT SIGSTOP node {coordinator} ({role}) for 5s (session 2s)"
                ));
                signal(pid, "-STOP");
                std::thread::sleep(Duration::from_secs(5));
                signal(pid, "-CONT");
                self.timeline.note(format!("SIGCONT node {coordinator}"));
                (format!("node {coordinator} ({role})"), at)
            }
            Fault::KillController => {
                let controller = self.active_controller();
                let at = self.timeline.note(format!(
                    "FAULT kill -9 node {controller} (active controller)"
                ));
                self.kill(controller);
                std::thread::sleep(Duration::from_secs(3));
                self.restart(&[controller]);
                (format!("node {controller} (active controller)"), at)
            }
            Fault::GracefulRestart => {
                let coordinator = self.leader_of(OFFSETS_TOPIC, coordinator_partition(GROUP));
                let role = format!("group coordinator, leader of {OFFSETS_TOPIC}");
                let at = self
                    .timeline
                    .note(format!("FAULT SIGTERM node {coordinator} ({role})"));
                let server = self.cluster.servers.remove(&coordinator).unwrap();
                let stopping = Instant::now();
                let status = server.terminate();
                self.timeline.note(format!(
                    "node {coordinator} exited ({status}) after {:.1}s",
                    stopping.elapsed().as_secs_f64()
                ));
                if !status.success() {
                    self.fail(&format!("node {coordinator}: SIGTERM exit {status}"));
                }
                self.restart(&[coordinator]);
                (format!("node {coordinator} ({role})"), at)
            }
            Fault::TwoDown => {
                let controller = self.active_controller();
                let (leader, ..) = self.leader_not_controller(TOPIC);
                let other = (1..=3).find(|id| *id != controller).unwrap();
                let second = if leader != controller { leader } else { other };
                let at = self.timeline.note(format!(
                    "FAULT kill -9 nodes {controller} (active controller) and {second}: no quorum"
                ));
                self.kill(controller);
                self.kill(second);
                std::thread::sleep(Duration::from_secs(3));
                self.restart(&[controller, second]);
                (format!("nodes {controller} and {second}"), at)
            }
            Fault::Partition => {
                let (node, role, _) = self.leader_not_controller(TOPIC);
                let pid = self.cluster.server(node).child.id();
                let at = self.timeline.note(format!(
                    "FAULT network partition: node {node} ({role}) cut off for 8s"
                ));
                self.network.isolate(node, pid);
                std::thread::sleep(Duration::from_secs(8));
                self.network.heal();
                self.timeline
                    .note(format!("partition of node {node} healed"));
                (format!("node {node} ({role})"), at)
            }
            Fault::CascadingKill => {
                let (first, role, partition) = self.leader_not_controller(TOPIC);
                let at = self
                    .timeline
                    .note(format!("FAULT kill -9 node {first} ({role})"));
                self.kill(first);
                let second = self.wait_until("a new leader", RECOVERY, || {
                    let view = self.any_view()?;
                    let p = &view.topics[TOPIC][partition as usize];
                    (p.leader > 0 && p.leader != first)
                        .then_some(p.leader)
                        .ok_or(format!("{TOPIC}-{partition}: leader {}", p.leader))
                });
                // Started again, but its successor dies before it can catch up.
                self.respawn(first);
                self.timeline.note(format!(
                    "node {first} restarting; FAULT kill -9 node {second} (new leader of \
                     {TOPIC}-{partition})"
                ));
                self.kill(second);
                std::thread::sleep(Duration::from_secs(3));
                self.respawn(second);
                self.wait_accepting(&[first, second]);
                (format!("nodes {first} then {second} ({role})"), at)
            }
            Fault::PartitionFromPeers => {
                let (node, role, _) = self.leader_not_controller(TOPIC);
                let pid = self.cluster.server(node).child.id();
                let peers: Vec<u32> = self
                    .cluster
                    .servers
                    .iter()
                    .filter(|(id, _)| **id != node)
                    .map(|(_, s)| s.child.id())
                    .collect();
                let at = self.timeline.note(format!(
                    "FAULT network partition: node {node} ({role}) cut off from the other \
                     nodes, not from clients, for 8s"
                ));
                self.network.isolate_from_peers(node, pid, peers);
                std::thread::sleep(Duration::from_secs(8));
                self.network.heal();
                self.timeline
                    .note(format!("partition of node {node} healed"));
                (format!("node {node} ({role})"), at)
            }
            Fault::PauseController => {
                let controller = self.active_controller();
                let pid = self.cluster.server(controller).child.id();
                let at = self.timeline.note(format!(
                    "FAULT SIGSTOP node {controller} (active controller) for 5s"
                ));
                signal(pid, "-STOP");
                std::thread::sleep(Duration::from_secs(5));
                signal(pid, "-CONT");
                self.timeline.note(format!("SIGCONT node {controller}"));
                (format!("node {controller} (active controller)"), at)
            }
            Fault::PartitionController => {
                let controller = self.active_controller();
                let pid = self.cluster.server(controller).child.id();
                let at = self.timeline.note(format!(
                    "FAULT network partition: node {controller} (active controller) cut off for 8s"
                ));
                self.network.isolate(controller, pid);
                std::thread::sleep(Duration::from_secs(8));
                self.network.heal();
                self.timeline
                    .note(format!("partition of node {controller} healed"));
                (format!("node {controller} (active controller)"), at)
            }
        };
        let restored = Instant::now();
        let recovered = self.recover(&format!("{fault:?}"), restored, workloads);
        let quorum_after = self.quorum();
        if let (Some((l0, e0)), Some((l1, e1))) = (quorum_before, quorum_after) {
            self.timeline.note(format!(
                "metadata quorum: leader {l0} epoch {e0} before, leader {l1} epoch {e1} after"
            ));
        }
        self.injected.push(Injected {
            fault,
            target,
            at,
            restored,
            recovered,
            quorum: (quorum_before, quorum_after),
        });
    }

    /// The metadata quorum's leader and epoch (DescribeQuorum), if a node answers.
    fn quorum(&self) -> Option<(i64, i64)> {
        let out = self.any_server().run(&[
            "metadata-quorum",
            "describe",
            "--status",
            "--output",
            "json",
        ]);
        let status: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        Some((
            status["leader_id"].as_i64()?,
            status["leader_epoch"].as_i64()?,
        ))
    }

    fn kill(&mut self, id: i32) {
        drop(self.cluster.servers.remove(&id).expect("a live node"));
    }

    /// Starts stopped nodes again and waits until they serve.
    fn restart(&mut self, ids: &[i32]) {
        for id in ids {
            self.respawn(*id);
        }
        self.wait_accepting(ids);
    }

    /// Starts a stopped node again without waiting (its previous log is kept beside the
    /// new one).
    fn respawn(&mut self, id: i32) {
        let port = self.cluster.nodes[(id - 1) as usize].client_port;
        let dir = self.cluster.dir(id);
        self.restarts += 1;
        let _ = std::fs::rename(
            dir.join(format!("server-{port}.log")),
            dir.join(format!(
                "server-{port}.before-restart-{}.log",
                self.restarts
            )),
        );
        self.cluster.spawn(id);
    }

    fn wait_accepting(&mut self, ids: &[i32]) {
        for id in ids {
            self.cluster
                .servers
                .get_mut(id)
                .unwrap()
                .wait_until_accepting();
        }
        self.timeline.note(format!("restarted node(s) {ids:?}"));
    }

    /// Polls `probe` until it answers `Ok`, failing the test after `bound` with its
    /// last answer.
    fn wait_until<T>(
        &self,
        what: &str,
        bound: Duration,
        mut probe: impl FnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + bound;
        loop {
            match probe() {
                Ok(value) => return value,
                Err(last) if Instant::now() > deadline => {
                    self.fail(&format!("{what}: not within {bound:?}; last: {last}"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }

    /// Prints the timeline, keeps the nodes' logs and panics.
    fn fail(&self, message: &str) -> ! {
        let kept = self.keep_logs();
        let mut tails = String::new();
        for (id, server) in &self.cluster.servers {
            let log = server.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            let _ = writeln!(tails, "--- node {id}, last lines ---\n{}", tail.join("\n"));
        }
        let timeline = self.timeline.events.lock().unwrap().join("\n");
        panic!("{message}\n\ntimeline:\n{timeline}\n\n{tails}\nall node logs kept in {kept}");
    }

    /// Copies every node's logs (restarts included) out of the temporary dir.
    fn keep_logs(&self) -> String {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("chaos-{stamp}"));
        for node in &self.cluster.nodes {
            let dir = self.cluster.dir(node.id);
            let to = root.join(format!("node-{}", node.id));
            let _ = std::fs::create_dir_all(&to);
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = entry.file_name();
                if name.to_string_lossy().ends_with(".log") {
                    let _ = std::fs::copy(entry.path(), to.join(name));
                }
            }
        }
        root.display().to_string()
    }

    // -----------------------------------------------------------------------------------
    // Invariants, checked on what the workloads recorded and the topics read back.

    /// Every acknowledged record once, at its acknowledged offset; no duplicates; each
    /// producer's records in send order per partition.
    fn check_produced(&self, produce: &ProduceLog) -> Vec<String> {
        let mut acked: BTreeMap<(i32, u32, u64), i64> = BTreeMap::new();
        for ack in &produce.acks {
            acked.insert((ack.partition, ack.generation, ack.seq), ack.offset);
        }
        let read = read_topic(&self.bootstrap, TOPIC, false, |records| {
            acked.keys().all(|(p, g, s)| {
                records
                    .get(p)
                    .and_then(|r| r.last())
                    .and_then(|(_, v)| parse_value(v.as_bytes()))
                    .is_some_and(|(_, lg, ls)| (lg, ls) >= (*g, *s))
            })
        });
        let mut violations = Violations::default();
        let mut found: BTreeMap<(i32, u32, u64), i64> = BTreeMap::new();
        for (partition, records) in &read {
            let mut last: BTreeMap<u32, u64> = BTreeMap::new();
            for (offset, value) in records {
                let Some((p, generation, seq)) = parse_value(value.as_bytes()) else {
                    violations.push(
                        "garbled",
                        format!("{TOPIC}-{partition}@{offset}: {value:?}"),
                    );
                    continue;
                };
                if p != *partition {
                    violations.push(
                        "misplaced",
                        format!("{TOPIC}-{partition}@{offset}: {value} belongs to partition {p}"),
                    );
                }
                if let Some(first) = found.insert((p, generation, seq), *offset) {
                    violations.push(
                        "duplicate",
                        format!("{TOPIC}-{partition}: {value} at offsets {first} and {offset}"),
                    );
                }
                if let Some(previous) = last.insert(generation, seq) {
                    if seq <= previous {
                        violations.push(
                            "out of order",
                            format!(
                                "{TOPIC}-{partition}@{offset}: {value} after seq {previous} of generation {generation}"
                            ),
                        );
                    }
                }
            }
        }
        for ((p, generation, seq), offset) in &acked {
            match found.get(&(*p, *generation, *seq)) {
                None => violations.push(
                    "acknowledged but lost",
                    format!("{TOPIC}-{p}: {p}:{generation}:{seq} (acknowledged at offset {offset})"),
                ),
                // librdkafka acknowledges without an offset (-1001) the records of a
                // request whose answer was lost once a later request of the same
                // producer succeeds ("implicitly acked": the broker takes sequences in
                // order only). They must be there all the same.
                Some(at) if *offset >= 0 && at != offset => violations.push(
                    "acknowledged at another offset",
                    format!("{TOPIC}-{p}: {p}:{generation}:{seq} acknowledged at {offset}, found at {at}"),
                ),
                Some(_) => {}
            }
        }
        let total: usize = read.values().map(Vec::len).sum();
        let without_offset = acked.values().filter(|o| **o < 0).count();
        self.timeline.note(format!(
            "read back {TOPIC}: {total} records, {} acknowledged ({without_offset} without an \
             offset)",
            acked.len()
        ));
        violations.into_lines()
    }

    /// read_committed sees every committed transaction whole and nothing of an aborted
    /// one; a transaction of unknown outcome is all or nothing; what the group consumed
    /// (read_committed, during the faults) is all in committed transactions.
    fn check_transactions(&self, txn: &TxnLog, group: &GroupLog) -> Vec<String> {
        let committed: BTreeSet<u64> = txn
            .outcomes
            .iter()
            .filter(|(_, o)| o.0 == Outcome::Committed)
            .map(|(b, _)| *b)
            .collect();
        let read = read_topic(&self.bootstrap, TXN_TOPIC, true, |records| {
            let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
            for (_, value) in records.values().flatten() {
                if let Some((batch, _)) = parse_txn_value(value) {
                    *counts.entry(batch).or_default() += 1;
                }
            }
            committed
                .iter()
                .all(|b| counts.get(b).copied().unwrap_or(0) >= TXN_BATCH)
        });
        let mut violations = Violations::default();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut per_batch: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
        for (partition, records) in &read {
            for (offset, value) in records {
                let Some((batch, index)) = parse_txn_value(value) else {
                    violations.push(
                        "garbled",
                        format!("{TXN_TOPIC}-{partition}@{offset}: {value:?}"),
                    );
                    continue;
                };
                if !seen.insert(value.clone()) {
                    violations.push(
                        "duplicate",
                        format!("{TXN_TOPIC}-{partition}@{offset}: {value} seen twice"),
                    );
                }
                per_batch.entry(batch).or_default().insert(index);
            }
        }
        let mut unknown_seen = 0;
        for (batch, (outcome, _)) in &txn.outcomes {
            let count = per_batch.get(batch).map_or(0, BTreeSet::len);
            match outcome {
                Outcome::Committed if count != TXN_BATCH => violations.push(
                    "committed transaction not whole",
                    format!("batch {batch}: {count} of {TXN_BATCH} records visible"),
                ),
                Outcome::Aborted if count != 0 => violations.push(
                    "aborted transaction visible",
                    format!("batch {batch}: {count} records visible"),
                ),
                Outcome::Unknown if count != 0 && count != TXN_BATCH => violations.push(
                    "transaction neither committed nor aborted",
                    format!("batch {batch} (outcome unknown): {count} of {TXN_BATCH} records"),
                ),
                Outcome::Unknown if count == TXN_BATCH => unknown_seen += 1,
                _ => {}
            }
        }
        for batch in per_batch.keys() {
            if !txn.outcomes.contains_key(batch) {
                violations.push("unexpected transaction", format!("batch {batch}"));
            }
        }
        for value in &group.seen {
            if !seen.contains(value) {
                let outcome = parse_txn_value(value).and_then(|(b, _)| txn.outcomes.get(&b));
                violations.push(
                    "consumed by the group but not committed",
                    format!("{value} (transaction outcome {outcome:?})"),
                );
            }
        }
        self.timeline.note(format!(
            "read back {TXN_TOPIC} (read_committed): {} records of {} transactions ({} of unknown outcome)",
            seen.len(),
            per_batch.len(),
            unknown_seen,
        ));
        violations.into_lines()
    }

    /// Once writes stopped and the followers caught up, the three replicas of every
    /// partition hold the same bytes (followers copy the leader's batches verbatim, and a
    /// tail a new leader never had was truncated).
    fn check_replicas_identical(&self) -> Vec<String> {
        let log_bytes = |id: i32, partition: &str| -> Vec<u8> {
            let dir = self.cluster.dir(id).join("data").join(partition);
            let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect();
            segments.sort();
            segments
                .iter()
                .flat_map(|p| std::fs::read(p).unwrap_or_default())
                .collect()
        };
        let partitions: Vec<String> = [
            (TOPIC, PARTITIONS),
            (TXN_TOPIC, PARTITIONS),
            (OFFSETS_TOPIC, INTERNAL_PARTITIONS),
            (TXN_STATE_TOPIC, INTERNAL_PARTITIONS),
        ]
        .iter()
        .flat_map(|(topic, count)| (0..*count).map(move |p| format!("{topic}-{p}")))
        .collect();
        let differing = || -> Vec<String> {
            partitions
                .iter()
                .filter_map(|partition| {
                    let logs: Vec<Vec<u8>> = (1..=3).map(|id| log_bytes(id, partition)).collect();
                    (logs[0] != logs[1] || logs[0] != logs[2]).then(|| {
                        let sizes: Vec<usize> = logs.iter().map(Vec::len).collect();
                        format!("{partition}: log bytes per node {sizes:?}")
                    })
                })
                .collect()
        };
        // Followers may still be fetching the last records or markers.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let differing = differing();
            if differing.is_empty() {
                return vec![];
            }
            if Instant::now() > deadline {
                return differing
                    .into_iter()
                    .map(|d| format!("replicas differ at the end: {d}"))
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Every ISR whole at the end, as `moldau topics describe` reports it through each node.
    fn check_isr_whole(&self) -> Vec<String> {
        let mut violations = Vec::new();
        for (id, server) in &self.cluster.servers {
            for (topic, count) in [
                (TOPIC, PARTITIONS),
                (TXN_TOPIC, PARTITIONS),
                (OFFSETS_TOPIC, INTERNAL_PARTITIONS),
                (TXN_STATE_TOPIC, INTERNAL_PARTITIONS),
            ] {
                let states = replica_states(server, topic);
                if states.len() != count as usize {
                    violations.push(format!(
                        "node {id} describes {} partitions of {topic}",
                        states.len()
                    ));
                }
                for (p, (leader, replicas, isr)) in states.iter().enumerate() {
                    if *leader < 0 || replicas.len() != 3 || isr.len() != 3 {
                        violations.push(format!(
                            "ISR not whole at the end (node {id}): {topic}-{p}: leader {leader}, \
                             replicas {replicas:?}, isr {isr:?}"
                        ));
                    }
                }
            }
        }
        violations
    }

    fn report(&self, outcome: &Recorded) {
        let produce = &outcome.produce;
        let end = outcome.stopped_at;
        let windows: Vec<(Instant, Instant)> = std::iter::once((
            self.timeline.start,
            self.injected.first().map_or(end, |f| f.at),
        ))
        .chain(
            self.injected
                .iter()
                .enumerate()
                .map(|(i, f)| (f.at, self.injected.get(i + 1).map_or(end, |n| n.at))),
        )
        .collect();
        let any = longest_gaps(produce.acks.iter().map(|a| a.at).collect(), &windows);
        let per_partition: Vec<Vec<Duration>> = (0..PARTITIONS)
            .map(|p| {
                let times = produce.acks.iter().filter(|a| a.partition == p);
                longest_gaps(times.map(|a| a.at).collect(), &windows)
            })
            .collect();
        let txn = longest_gaps(
            outcome
                .txn
                .outcomes
                .values()
                .filter(|(o, _)| *o == Outcome::Committed)
                .map(|(_, at)| *at)
                .collect(),
            &windows,
        );
        let group = longest_gaps(outcome.group.commit_times.clone(), &windows);
        let mut table = format!(
            "{:<16} {:<58} {:>6} {:>8} {:>9}  {:>7} {:>14} {:>7} {:>7}  {}\n",
            "fault",
            "target",
            "at",
            "restored",
            "recovered",
            "produce",
            "(worst)",
            "txn",
            "group",
            "quorum leader@epoch"
        );
        for (i, _) in windows.iter().enumerate() {
            let (worst_partition, worst) = (0..PARTITIONS)
                .map(|p| (p, per_partition[p as usize][i]))
                .max_by_key(|(_, gap)| *gap)
                .unwrap();
            let (name, target, at, restored, recovered, quorum) = match i.checked_sub(1) {
                None => {
                    let none = String::new();
                    (
                        "(before faults)".to_string(),
                        none.clone(),
                        0.0,
                        0.0,
                        0.0,
                        none,
                    )
                }
                Some(j) => {
                    let f = &self.injected[j];
                    let quorum = match f.quorum {
                        (Some((l0, e0)), Some((l1, e1))) => format!("{l0}@{e0} -> {l1}@{e1}"),
                        _ => "?".to_string(),
                    };
                    (
                        format!("{:?}", f.fault),
                        f.target.clone(),
                        self.timeline.at(f.at),
                        f.restored.duration_since(f.at).as_secs_f64(),
                        f.recovered.duration_since(f.restored).as_secs_f64(),
                        quorum,
                    )
                }
            };
            let _ = writeln!(
                table,
                "{name:<16} {target:<58} {at:>5.1}s {restored:>7.1}s {recovered:>8.1}s  \
                 {:>6.2}s {:>6.2}s {:<7} {:>6.2}s {:>6.2}s  {quorum}",
                any[i].as_secs_f64(),
                worst.as_secs_f64(),
                format!("{TOPIC}-{worst_partition}"),
                txn[i].as_secs_f64(),
                group[i].as_secs_f64(),
            );
        }
        let outcomes = |o: Outcome| outcome.txn.outcomes.values().filter(|v| v.0 == o).count();
        eprintln!(
            "chaos: per fault: at = seconds into the run; restored = seconds until the fault \
             was undone (restart, SIGCONT, heal); recovered = seconds from then until every ISR \
             was whole and every workload progressed; the longest time (within the fault's \
             window, until the next fault) without: a produce acknowledgement on any partition, \
             on one partition (the worst), a committed transaction, a group offset commit; the \
             metadata quorum's leader and epoch before and after.\n\
             {table}\
             chaos: produced {} acknowledged, {} failed deliveries {:?}, fatal errors {:?}\n\
             chaos: transactions: {} committed, {} aborted, {} unknown; errors: {:?}\n\
             chaos: group: {} records consumed ({} distinct), {} commits ({} failed), greatest offsets \
             committed {:?} and read back {:?} ({} read-backs failed, last: {:?}); slowest \
             commit {:?}, read-back {:?}\n\
             chaos: total wall time {:.1}s",
            produce.acks.len(),
            produce.failed,
            produce.failures,
            produce.fatal,
            outcomes(Outcome::Committed),
            outcomes(Outcome::Aborted),
            outcomes(Outcome::Unknown),
            outcome.txn.errors,
            outcome.group.consumed,
            outcome.group.seen.len(),
            outcome.group.commits,
            outcome.group.commit_errors,
            outcome.group.acknowledged,
            outcome.group.committed,
            outcome.group.read_back_errors,
            outcome.group.last_read_back_error,
            outcome.group.slowest_commit,
            outcome.group.slowest_read_back,
            self.timeline.start.elapsed().as_secs_f64(),
        );
    }
}

struct View {
    brokers: BTreeSet<i32>,
    topics: BTreeMap<String, Vec<PartitionState>>,
}

#[derive(Debug)]
struct PartitionState {
    partition: i32,
    leader: i32,
    isr: Vec<i32>,
}

/// Kafka's `abs(javaHashCode(key)) % partitions`: the internal partition of a group or
/// transactional id, whose leader is its coordinator.
fn coordinator_partition(key: &str) -> i32 {
    let hash = key
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % INTERNAL_PARTITIONS
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Violations grouped by kind, a few examples each.
#[derive(Default)]
struct Violations(BTreeMap<&'static str, (usize, Vec<String>)>);

impl Violations {
    fn push(&mut self, kind: &'static str, example: String) {
        let entry = self.0.entry(kind).or_default();
        entry.0 += 1;
        if entry.1.len() < 10 {
            entry.1.push(example);
        }
    }

    fn into_lines(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(kind, (count, examples))| {
                format!("{kind}: {count}, e.g.\n    {}", examples.join("\n    "))
            })
            .collect()
    }
}

/// Per window (from, until): the longest gap between consecutive `times`, each gap
/// counted in the window its end falls in.
fn longest_gaps(mut times: Vec<Instant>, windows: &[(Instant, Instant)]) -> Vec<Duration> {
    times.sort();
    let mut longest = vec![Duration::ZERO; windows.len()];
    for pair in times.windows(2) {
        let window = windows
            .iter()
            .position(|(from, until)| pair[1] >= *from && pair[1] < *until);
        if let Some(w) = window {
            longest[w] = longest[w].max(pair[1] - pair[0]);
        }
    }
    longest
}

/// Every record of `topic` from the beginning, per partition in offset order, read until
/// every partition is at its end and `done` holds (bounded by [`RECOVERY`]).
fn read_topic(
    bootstrap: &str,
    topic: &str,
    read_committed: bool,
    mut done: impl FnMut(&BTreeMap<i32, Vec<(i64, String)>>) -> bool,
) -> BTreeMap<i32, Vec<(i64, String)>> {
    let isolation = if read_committed {
        "read_committed"
    } else {
        "read_uncommitted"
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("chaos-check-{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut records: BTreeMap<i32, Vec<(i64, String)>> =
        (0..PARTITIONS).map(|p| (p, Vec::new())).collect();
    let mut at_end = BTreeSet::new();
    let deadline = Instant::now() + RECOVERY;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                records
                    .entry(message.partition())
                    .or_default()
                    .push((message.offset(), value.into_owned()));
                at_end.remove(&message.partition());
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(_)) | None => {}
        }
        if at_end.len() == PARTITIONS as usize && done(&records) {
            break;
        }
    }
    records
}

// ---------------------------------------------------------------------------------------
// The workloads.

/// `partition:generation:seq`: the producer's values (a new generation after a fatal
/// error, when a new producer takes over).
fn parse_value(value: &[u8]) -> Option<(i32, u32, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(':');
    let p = parts.next()?.parse().ok()?;
    let generation = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((p, generation, seq))
}

/// `batch:index`: the transactional pipeline's values.
fn parse_txn_value(value: &str) -> Option<(u64, usize)> {
    let (batch, index) = value.split_once(':')?;
    Some((batch.parse().ok()?, index.parse().ok()?))
}

struct Ack {
    partition: i32,
    generation: u32,
    seq: u64,
    offset: i64,
    at: Instant,
}

#[derive(Default)]
struct ProduceLog {
    acks: Vec<Ack>,
    last_ack: BTreeMap<i32, Instant>,
    failed: u64,
    /// The first delivery failures.
    failures: Vec<String>,
    fatal: Vec<String>,
}

/// librdkafka's own log of one client, kept in a file when `CHAOS_CLIENT_DEBUG` names
/// its debug contexts (e.g. `eos,msg,broker,protocol`); dropped otherwise.
struct ClientLog(Option<Mutex<std::fs::File>>);

impl ClientLog {
    fn new(name: &str) -> ClientLog {
        ClientLog(std::env::var_os("CHAOS_CLIENT_DEBUG").map(|_| {
            let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
                "chaos-client-{name}-{}.log",
                chrono::Utc::now().format("%H%M%S%.3f")
            ));
            eprintln!("chaos: librdkafka log of {name} in {}", path.display());
            Mutex::new(std::fs::File::create(path).unwrap())
        }))
    }

    fn write(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if let Some(file) = &self.0 {
            use std::io::Write as _;
            let now = chrono::Utc::now().format("%H:%M:%S%.6f");
            let _ = writeln!(file.lock().unwrap(), "{now} {level:?} {facility} {message}");
        }
    }
}

/// A client config on `bootstrap`, with librdkafka's debug log on when asked for.
fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        // librdkafka's defaults wait 60 s for an answer from a broker that stopped
        // answering (SIGSTOP, partition), and back off reconnecting up to 10 s: the
        // measured unavailability would be the client's, not the cluster's.
        .set("socket.timeout.ms", "6000")
        .set("reconnect.backoff.max.ms", "1000");
    if let Ok(debug) = std::env::var("CHAOS_CLIENT_DEBUG") {
        config.set("debug", debug);
        config.set_log_level(RDKafkaLogLevel::Debug);
    }
    config
}

struct AckContext {
    log: Arc<Mutex<ProduceLog>>,
    client_log: ClientLog,
}

impl ClientContext for AckContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.client_log.write(level, facility, message);
    }
}

/// The transactional producer's context: its librdkafka log.
struct LogContext(ClientLog);

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.0.write(level, facility, message);
    }
}

impl ProducerContext for LogContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// The group member's context: its librdkafka log, and its rebalances on the timeline.
struct GroupContext {
    client_log: ClientLog,
    timeline: Arc<Timeline>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.client_log.write(level, facility, message);
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let what = match rebalance {
            Rebalance::Assign(partitions) => {
                // Where it resumes: the committed offsets it is given back.
                let committed = consumer
                    .committed_offsets((*partitions).clone(), Duration::from_secs(5))
                    .map(|c| format!("{:?}", offsets(&c)))
                    .unwrap_or_else(|e| format!("unknown ({e})"));
                format!(
                    "assigned {:?}, committed {committed}",
                    offsets(partitions).keys()
                )
            }
            Rebalance::Revoke(partitions) => format!("revoked {:?}", offsets(partitions).keys()),
            Rebalance::Error(e) => format!("rebalance error {e}"),
        };
        self.timeline.note(format!("group: {what}"));
    }
}

/// The offsets of a partition list, by partition (-1: none).
fn offsets(list: &TopicPartitionList) -> BTreeMap<i32, i64> {
    list.elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect()
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let now = Instant::now();
        let mut log = self.log.lock().unwrap();
        match result {
            Ok(message) => {
                if let Some((partition, generation, seq)) = message.payload().and_then(parse_value)
                {
                    log.last_ack.insert(partition, now);
                    log.acks.push(Ack {
                        partition,
                        generation,
                        seq,
                        offset: message.offset(),
                        at: now,
                    });
                }
            }
            Err((error, message)) => {
                log.failed += 1;
                if log.failures.len() < 5 {
                    let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                    log.failures.push(format!("{value}: {error}"));
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Committed,
    Aborted,
    /// The producer failed before it knew (fatal error or out of retries).
    Unknown,
}

#[derive(Default)]
struct TxnLog {
    outcomes: BTreeMap<u64, (Outcome, Instant)>,
    errors: Vec<String>,
}

impl TxnLog {
    fn error(&mut self, timeline: &Timeline, what: String) {
        timeline.note(format!("transactions: {what}"));
        if self.errors.len() < 20 {
            self.errors.push(what);
        }
    }
}

#[derive(Default)]
struct GroupLog {
    /// Greatest committed offset read back per partition.
    committed: BTreeMap<i32, i64>,
    /// Greatest offset a commit was acknowledged for, per partition.
    acknowledged: BTreeMap<i32, i64>,
    last_commit: Option<Instant>,
    commit_times: Vec<Instant>,
    violations: Vec<String>,
    seen: BTreeSet<String>,
    consumed: u64,
    commits: u64,
    commit_errors: u64,
    read_back_errors: u64,
    last_read_back_error: Option<String>,
    slowest_commit: Duration,
    slowest_read_back: Duration,
}

fn check_group(group: &GroupLog) -> Vec<String> {
    group
        .violations
        .iter()
        .map(|v| format!("group offsets: {v}"))
        .collect()
}

struct Workloads {
    stop: Arc<AtomicBool>,
    produce: Arc<Mutex<ProduceLog>>,
    txn: Arc<Mutex<TxnLog>>,
    group: Arc<Mutex<GroupLog>>,
    threads: Vec<(&'static str, JoinHandle<()>)>,
}

/// What the workloads recorded, once stopped.
struct Recorded {
    produce: ProduceLog,
    txn: TxnLog,
    group: GroupLog,
    stopped_at: Instant,
}

impl Workloads {
    fn start(bootstrap: &str, timeline: &Arc<Timeline>) -> Workloads {
        let stop = Arc::new(AtomicBool::new(false));
        let produce = Arc::new(Mutex::new(ProduceLog::default()));
        let txn = Arc::new(Mutex::new(TxnLog::default()));
        let group = Arc::new(Mutex::new(GroupLog::default()));
        let threads = vec![
            ("producer", {
                let (bootstrap, stop, log, t) = (
                    bootstrap.to_string(),
                    stop.clone(),
                    produce.clone(),
                    timeline.clone(),
                );
                std::thread::spawn(move || run_producer(&bootstrap, &stop, &log, &t))
            }),
            ("transactions", {
                let (bootstrap, stop, log, t) = (
                    bootstrap.to_string(),
                    stop.clone(),
                    txn.clone(),
                    timeline.clone(),
                );
                std::thread::spawn(move || run_transactions(&bootstrap, &stop, &log, &t))
            }),
            ("group", {
                let (bootstrap, stop, log, t) = (
                    bootstrap.to_string(),
                    stop.clone(),
                    group.clone(),
                    timeline.clone(),
                );
                std::thread::spawn(move || run_group(&bootstrap, &stop, &log, &t))
            }),
        ];
        timeline
            .note("workloads started: idempotent producer, transactional pipeline, consumer group");
        Workloads {
            stop,
            produce,
            txn,
            group,
            threads,
        }
    }

    /// `Ok` once every partition had an acknowledgement, a transaction committed and the
    /// group committed offsets after `since`.
    fn progressed_since(&self, since: Instant) -> Result<(), String> {
        {
            let produce = self.produce.lock().unwrap();
            for p in 0..PARTITIONS {
                if produce.last_ack.get(&p).is_none_or(|t| *t <= since) {
                    return Err(format!("no acknowledgement on {TOPIC}-{p} yet"));
                }
            }
        }
        let committed = self
            .txn
            .lock()
            .unwrap()
            .outcomes
            .values()
            .any(|(o, t)| *o == Outcome::Committed && *t > since);
        if !committed {
            return Err("no transaction committed yet".to_string());
        }
        if self
            .group
            .lock()
            .unwrap()
            .last_commit
            .is_none_or(|t| t <= since)
        {
            return Err("no group commit yet".to_string());
        }
        Ok(())
    }

    fn stop(self, chaos: &Chaos) -> Recorded {
        let stopped_at = Instant::now();
        self.stop.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + WORKLOAD_STOP;
        for (name, thread) in self.threads {
            while !thread.is_finished() {
                if Instant::now() > deadline {
                    chaos.fail(&format!(
                        "the {name} workload did not stop within {WORKLOAD_STOP:?}"
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if thread.join().is_err() {
                chaos.fail(&format!("the {name} workload panicked"));
            }
        }
        Recorded {
            produce: take(&self.produce),
            txn: take(&self.txn),
            group: take(&self.group),
            stopped_at,
        }
    }
}

fn take<T: Default>(log: &Mutex<T>) -> T {
    std::mem::take(&mut *log.lock().unwrap())
}

fn idempotent_producer(
    bootstrap: &str,
    log: &Arc<Mutex<ProduceLog>>,
) -> ThreadedProducer<AckContext> {
    client_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("request.timeout.ms", "5000")
        .set("message.timeout.ms", "60000")
        .create_with_context(AckContext {
            log: log.clone(),
            client_log: ClientLog::new("producer"),
        })
        .unwrap()
}

/// Sends `partition:generation:seq` to every partition every 10 ms, in order.
fn run_producer(
    bootstrap: &str,
    stop: &AtomicBool,
    log: &Arc<Mutex<ProduceLog>>,
    timeline: &Timeline,
) {
    let mut generation = 0u32;
    let mut seq = [0u64; PARTITIONS as usize];
    let mut producer = idempotent_producer(bootstrap, log);
    while !stop.load(Ordering::SeqCst) {
        for p in 0..PARTITIONS {
            let value = format!("{p}:{generation}:{}", seq[p as usize]);
            seq[p as usize] += 1;
            loop {
                let record = BaseRecord::to(TOPIC)
                    .partition(p)
                    .key(&value)
                    .payload(&value);
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                        if !stop.load(Ordering::SeqCst) =>
                    {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err((e, _)) => {
                        let mut log = log.lock().unwrap();
                        log.failed += 1;
                        if log.failures.len() < 5 {
                            log.failures.push(format!("{value}: not enqueued: {e}"));
                        }
                        break;
                    }
                }
            }
        }
        if let Some((code, reason)) = producer.client().fatal_error() {
            let what = format!("generation {generation}: {code:?}: {reason}");
            timeline.note(format!("producer FATAL {what}; a new producer takes over"));
            log.lock().unwrap().fatal.push(what);
            drop(producer);
            generation += 1;
            producer = idempotent_producer(bootstrap, log);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if let Err(e) = producer.flush(Duration::from_secs(60)) {
        timeline.note(format!("producer: final flush: {e}"));
    }
}

fn transactional_producer(bootstrap: &str) -> KafkaResult<ThreadedProducer<LogContext>> {
    let producer: ThreadedProducer<LogContext> = client_config(bootstrap)
        .set("transactional.id", TRANSACTIONAL_ID)
        .set("transaction.timeout.ms", "10000")
        .set("message.timeout.ms", "10000")
        .set("request.timeout.ms", "5000")
        .set("linger.ms", "5")
        .create_with_context(LogContext(ClientLog::new("transactions")))?;
    producer.init_transactions(Duration::from_secs(30))?;
    Ok(producer)
}

/// Transactions of [`TXN_BATCH`] records over the partitions, every third one aborted.
fn run_transactions(
    bootstrap: &str,
    stop: &AtomicBool,
    log: &Arc<Mutex<TxnLog>>,
    timeline: &Timeline,
) {
    let mut producer: Option<ThreadedProducer<LogContext>> = None;
    let mut batch = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let Some(current) = &producer else {
            match transactional_producer(bootstrap) {
                Ok(p) => producer = Some(p),
                Err(e) => {
                    log.lock().unwrap().error(timeline, format!("init: {e}"));
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            continue;
        };
        let abort = batch % 3 == 2;
        let started = Instant::now();
        let (outcome, usable) = run_batch(current, batch, abort, log, timeline);
        let took = started.elapsed();
        if took > Duration::from_secs(2) {
            timeline.note(format!(
                "transactions: batch {batch} ({outcome:?}) took {:.1}s",
                took.as_secs_f64()
            ));
        }
        log.lock()
            .unwrap()
            .outcomes
            .insert(batch, (outcome, Instant::now()));
        if !usable {
            producer = None;
        }
        batch += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    // A transaction left open by a failed producer is fenced and finished by the next one
    // (init_transactions), so that read_committed readers are not held back by it.
    if producer.is_none() {
        if let Err(e) = transactional_producer(bootstrap) {
            log.lock()
                .unwrap()
                .error(timeline, format!("final init: {e}"));
        }
    }
}

/// One transaction: its outcome, and whether the producer is still usable.
fn run_batch(
    producer: &ThreadedProducer<LogContext>,
    batch: u64,
    abort: bool,
    log: &Mutex<TxnLog>,
    timeline: &Timeline,
) -> (Outcome, bool) {
    let note = |what: String| log.lock().unwrap().error(timeline, what);
    if let Err(e) = producer.begin_transaction() {
        // Nothing was sent under this batch.
        note(format!("batch {batch}: begin: {e}"));
        return (Outcome::Aborted, false);
    }
    let mut sent = true;
    'records: for i in 0..TXN_BATCH {
        let value = format!("{batch}:{i}");
        loop {
            let record = BaseRecord::<str, str>::to(TXN_TOPIC)
                .partition(i as i32 % PARTITIONS)
                .key(&value)
                .payload(&value);
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err((e, _)) => {
                    note(format!("batch {batch}: send: {e}"));
                    sent = false;
                    break 'records;
                }
            }
        }
    }
    if abort || !sent {
        return abort_batch(producer, batch, &note);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match producer.commit_transaction(Duration::from_secs(15)) {
            Ok(()) => return (Outcome::Committed, true),
            Err(KafkaError::Transaction(e)) if e.is_retriable() && Instant::now() < deadline => {
                note(format!("batch {batch}: commit (retried): {e}"));
            }
            Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                note(format!("batch {batch}: commit (aborting): {e}"));
                return abort_batch(producer, batch, &note);
            }
            Err(e) => {
                note(format!("batch {batch}: commit: {e}"));
                return (Outcome::Unknown, false);
            }
        }
    }
}

fn abort_batch(
    producer: &ThreadedProducer<LogContext>,
    batch: u64,
    note: &dyn Fn(String),
) -> (Outcome, bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match producer.abort_transaction(Duration::from_secs(15)) {
            Ok(()) => return (Outcome::Aborted, true),
            Err(KafkaError::Transaction(e)) if e.is_retriable() && Instant::now() < deadline => {
                note(format!("batch {batch}: abort (retried): {e}"));
            }
            Err(e) => {
                note(format!("batch {batch}: abort: {e}"));
                return (Outcome::Unknown, false);
            }
        }
    }
}

/// One member of [`GROUP`] reading [`TXN_TOPIC`] read_committed, committing its position
/// every 500 ms and reading the committed offsets back: they must never go back, nor
/// fall below an acknowledged commit.
fn run_group(
    bootstrap: &str,
    stop: &AtomicBool,
    log: &Arc<Mutex<GroupLog>>,
    timeline: &Arc<Timeline>,
) {
    let consumer: BaseConsumer<GroupContext> = client_config(bootstrap)
        .set("group.id", GROUP)
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create_with_context(GroupContext {
            client_log: ClientLog::new("group"),
            timeline: timeline.clone(),
        })
        .unwrap();
    consumer.subscribe(&[TXN_TOPIC]).unwrap();
    let mut last_commit = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
            let mut log = log.lock().unwrap();
            log.consumed += 1;
            log.seen.insert(value.into_owned());
        }
        if last_commit.elapsed() >= Duration::from_millis(500) {
            last_commit = Instant::now();
            commit_and_check(&consumer, log, timeline);
        }
    }
}

fn commit_and_check(
    consumer: &BaseConsumer<GroupContext>,
    log: &Mutex<GroupLog>,
    timeline: &Timeline,
) {
    let Ok(positions) = consumer.position() else {
        return;
    };
    let mut commit = TopicPartitionList::new();
    let mut offsets = BTreeMap::new();
    for e in positions.elements() {
        if let Offset::Offset(o) = e.offset() {
            let _ = commit.add_partition_offset(TXN_TOPIC, e.partition(), Offset::Offset(o));
            offsets.insert(e.partition(), o);
        }
    }
    if offsets.is_empty() {
        return;
    }
    let started = Instant::now();
    let committed = consumer.commit(&commit, CommitMode::Sync);
    let commit_took = started.elapsed();
    {
        let mut recorded = log.lock().unwrap();
        recorded.slowest_commit = recorded.slowest_commit.max(commit_took);
        match committed {
            Ok(()) => {
                recorded.commits += 1;
                recorded.last_commit = Some(Instant::now());
                recorded.commit_times.push(Instant::now());
                for (p, o) in &offsets {
                    let acknowledged = recorded.acknowledged.entry(*p).or_insert(*o);
                    *acknowledged = (*acknowledged).max(*o);
                }
            }
            Err(_) => {
                recorded.commit_errors += 1;
                return;
            }
        }
    }
    let started = Instant::now();
    let read_back = consumer.committed(Duration::from_secs(5));
    let mut log = log.lock().unwrap();
    log.slowest_read_back = log.slowest_read_back.max(started.elapsed());
    let read_back = match read_back {
        Ok(read_back) => read_back,
        Err(e) => {
            log.read_back_errors += 1;
            log.last_read_back_error = Some(e.to_string());
            return;
        }
    };
    for e in read_back.elements() {
        let Offset::Offset(o) = e.offset() else {
            continue;
        };
        let p = e.partition();
        let greatest = log.committed.get(&p).copied().unwrap_or(-1);
        let acknowledged = log.acknowledged.get(&p).copied().unwrap_or(-1);
        if o < greatest || o < acknowledged {
            let what = format!(
                "{TXN_TOPIC}-{p}: committed offset read back {o}, after {greatest} was read \
                 back and {acknowledged} acknowledged"
            );
            timeline.note(format!("group: WENT BACK: {what}"));
            log.violations.push(what);
        }
        log.committed.insert(p, greatest.max(o));
    }
}
