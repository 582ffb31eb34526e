//! moldau-sim: a Moldau cluster in a deterministic simulator.
//!
//! Every node runs the real broker, controller (openraft), replica manager and
//! coordinators as a turmoil host; the network, the clock, background work and the OS
//! randomness go through the seams of [`seams`], so one seed decides everything that
//! happens. A fault schedule drawn from the seed ([`faults`]) crashes, partitions, slows
//! and stalls nodes and steps the clock while simulated clients ([`workload`]) speak the
//! Kafka protocol to the cluster; [`checker`] then checks the invariants. A failing seed
//! replays exactly: `MOLDAU_SIM_SEED=<seed> cargo test -p moldau-sim`.

pub mod checker;
pub mod client;
pub mod faults;
pub mod member;
pub mod offsets;
pub mod pipeline;
pub mod reassign;
pub mod seams;
pub mod transactions;
pub mod workload;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::rc::{Rc, Weak};
use std::time::Duration;

use moldau_broker::config::ServerConfig;
use moldau_broker::Broker;

use crate::faults::{Fault, Scheduled};
use crate::workload::{Observations, Shared, WorkloadSpec};

/// The shape of one simulated run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Voters with both roles (3 or 5).
    pub combined_nodes: usize,
    /// Broker-only nodes (observers of the quorum).
    pub broker_only_nodes: usize,
    pub partitions: i32,
    pub batches: usize,
    /// Transactions of the transactional client (each over both partitions of `sim-txn`).
    pub transactions: usize,
    /// Offset commits of the group-offsets client.
    pub offset_commits: usize,
    /// Transactions of each consume-transform-produce member over the fault window.
    pub pipeline_transactions: usize,
    /// Faults are drawn over this much simulated time, after the cluster has formed.
    pub fault_window: Duration,
    /// After healing, how long the cluster gets to bring every replica back in sync.
    pub settle: Duration,
    /// A run longer than this (simulated) is a liveness failure.
    pub limit: Duration,
}

impl Options {
    /// The shape a seed runs: three combined nodes mostly, sometimes with a broker-only
    /// node (an observer of the quorum, and somewhere to move replicas to), sometimes
    /// five combined nodes (five voters).
    pub fn for_seed(seed: u64) -> Options {
        let (combined_nodes, broker_only_nodes) = match seed % 20 {
            0..=9 => (3, 0),
            10..=16 => (3, 1),
            _ => (5, 0),
        };
        Options {
            combined_nodes,
            broker_only_nodes,
            ..Options::default()
        }
    }
}

impl Options {
    /// The same shape with half the fault window and half the client work: what the
    /// test suite's debug build runs for its fixed seeds (a soak's seed replays with
    /// [`Options::for_seed`] as it ran).
    pub fn quick(self) -> Options {
        Options {
            batches: self.batches / 2,
            transactions: self.transactions / 2,
            offset_commits: self.offset_commits / 2,
            pipeline_transactions: self.pipeline_transactions / 2,
            fault_window: self.fault_window / 2,
            ..self
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            combined_nodes: 3,
            broker_only_nodes: 0,
            partitions: 3,
            batches: 300,
            transactions: 60,
            offset_commits: 300,
            pipeline_transactions: 60,
            fault_window: Duration::from_secs(60),
            settle: Duration::from_secs(20),
            limit: Duration::from_secs(900),
        }
    }
}

/// What a passing run did.
#[derive(Debug)]
pub struct Report {
    pub seed: u64,
    pub simulated: Duration,
    pub acknowledged_records: usize,
    pub faults: usize,
    /// Hash of everything observed: equal for two runs of one seed.
    pub fingerprint: u64,
    pub events: Vec<String>,
}

/// A failing run: the seed that replays it and what happened up to the failure.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub reason: String,
    pub events: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "simulation seed {} failed: {}", self.seed, self.reason)?;
        writeln!(
            f,
            "replay: MOLDAU_SIM_SEED={} cargo test -p moldau-sim --test seeds",
            self.seed
        )?;
        let skip = self.events.len().saturating_sub(80);
        if skip > 0 {
            writeln!(f, "  ... {skip} earlier events")?;
        }
        for event in &self.events[skip..] {
            writeln!(f, "  {event}")?;
        }
        Ok(())
    }
}

/// Runs one seed on a fresh thread (its OS randomness and clock are the seed's alone).
pub fn run(seed: u64, options: &Options) -> Result<Report, Failure> {
    let options = options.clone();
    let thread = std::thread::Builder::new()
        .name(format!("sim-{seed}"))
        .spawn(move || {
            seams::seed_os_randomness(seed);
            seams::reset_clock();
            seams::reset_disks(seed);
            run_on_this_thread(seed, &options)
        })
        .expect("spawn a simulation thread");
    thread.join().unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".to_string());
        Err(Failure {
            seed,
            reason: format!("panicked: {message}"),
            events: Vec::new(),
        })
    })
}

type Registry = Rc<RefCell<BTreeMap<usize, Weak<Broker>>>>;

fn host_name(index: usize) -> String {
    format!("n{}", index + 1)
}

fn node_config(index: usize, options: &Options, root: &std::path::Path) -> ServerConfig {
    let voters: Vec<String> = (0..options.combined_nodes)
        .map(|i| format!("{}@{}:9093", i + 1, host_name(i)))
        .collect();
    let combined = index < options.combined_nodes;
    let name = host_name(index);
    let mut props: BTreeMap<String, String> = [
        ("node.id", (index + 1).to_string()),
        ("controller.listener.names", "CONTROLLER".to_string()),
        ("controller.quorum.voters", voters.join(",")),
        ("advertised.listeners", format!("PLAINTEXT://{name}:9092")),
        ("log.dirs", root.join(&name).display().to_string()),
        ("controller.quorum.election.timeout.ms", "1000".to_string()),
        ("controller.quorum.fetch.timeout.ms", "2000".to_string()),
        ("broker.heartbeat.interval.ms", "500".to_string()),
        ("broker.session.timeout.ms", "3000".to_string()),
        ("replica.lag.time.max.ms", "5000".to_string()),
        // A durable deployment: with Kafka's default (1), `__consumer_offsets` acknowledges
        // a commit its leader alone holds, which a power loss of that leader takes (as in
        // Kafka; the simulation's seed 2 showed it).
        ("min.insync.replicas", "2".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if combined {
        props.insert(
            "listeners".into(),
            "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093".into(),
        );
    } else {
        props.insert("process.roles".into(), "broker".into());
        props.insert("listeners".into(), "PLAINTEXT://0.0.0.0:9092".into());
    }
    match ServerConfig::from_properties(props) {
        Ok((config, _)) => config,
        Err(e) => panic!("the simulation's node config is invalid: {e}"),
    }
}

/// What the harness must undo, and when.
enum Undo {
    Restart(usize),
    Repair(usize, usize),
    RepairOneWay(usize, usize),
    Release(usize),
    Latency,
    Lossless(usize, usize),
    /// Kill the node whose disk failed, and give it a working disk.
    ReplaceDisk(usize),
    RestoreDisk(usize),
}

struct Harness {
    /// The topic's partitions as the active controller last showed them.
    partitions_seen: String,
    names: Vec<String>,
    /// Each node's log dir.
    log_dirs: Vec<std::path::PathBuf>,
    /// Decides what a power loss keeps (drawn from the seed).
    rng: rand::rngs::StdRng,
    crashed: BTreeSet<usize>,
    undo: Vec<(Duration, Undo)>,
    shared: Shared,
}

impl Harness {
    fn note(&self, at: Duration, event: String) {
        self.shared
            .borrow_mut()
            .events
            .push(format!("{:>7} ms fault: {event}", at.as_millis()));
    }

    /// Notes leader, ISR and ELR of every partition whenever the active controller's
    /// image shows them changed (the minimal event log a failure prints).
    fn note_partition_changes(&mut self, registry: &Registry, at: Duration) {
        let Some(image) = active_image(registry) else {
            return;
        };
        let mut summary = String::new();
        for name in [workload::TOPIC, transactions::TXN_TOPIC] {
            let Some(topic) = image.topic_by_name(name) else {
                continue;
            };
            let short = if name == workload::TOPIC {
                "p"
            } else {
                "txn-p"
            };
            for (id, p) in &topic.partitions {
                summary.push_str(&format!(
                    " {short}{id}: leader {} epoch {} isr {:?}",
                    p.leader, p.leader_epoch, p.isr
                ));
                let tp = moldau_storage::TopicPartition::new(name, *id);
                let ends: Vec<String> = registry
                    .borrow()
                    .iter()
                    .filter_map(|(i, b)| {
                        let log = b.upgrade()?.partition_log(&tp)?;
                        Some(format!(
                            "n{}={}/{}",
                            i + 1,
                            log.log_end_offset(),
                            log.high_watermark()
                        ))
                    })
                    .collect();
                summary.push_str(&format!(" [{}]", ends.join(" ")));
                if !p.eligible_leader_replicas.is_empty() || !p.last_known_elr.is_empty() {
                    summary.push_str(&format!(
                        " elr {:?} last known {:?}",
                        p.eligible_leader_replicas, p.last_known_elr
                    ));
                }
                summary.push(';');
            }
        }
        if summary != self.partitions_seen {
            self.partitions_seen = summary.clone();
            self.shared
                .borrow_mut()
                .events
                .push(format!("{:>7} ms metadata:{summary}", at.as_millis()));
        }
    }

    fn apply(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        registry: &Registry,
        at: Duration,
        fault: &Fault,
    ) {
        let n = &self.names;
        match fault {
            Fault::Crash { node, down } => {
                self.crash(sim, at, *node, *down);
            }
            Fault::PowerLoss { node, down } => {
                let logs = registry
                    .borrow()
                    .get(node)
                    .and_then(Weak::upgrade)
                    .map(|b| b.logs())
                    .unwrap_or_default();
                // Kafka does not fsync acknowledged records: it survives one replica's
                // loss of its unflushed tail, not a second before the first is back in
                // sync. Power fails only in a cluster with every replica in sync; else
                // the process just dies.
                if !every_replica_in_sync(registry) {
                    self.note(
                        at,
                        format!(
                            "power loss on {} becomes a crash: replicas are out of sync",
                            n[*node]
                        ),
                    );
                    self.crash(sim, at, *node, *down);
                } else if self.crash(sim, at, *node, *down) {
                    let lost = power_loss(&logs, &mut self.rng);
                    let name = &self.names[*node];
                    self.note(at, format!("power loss on {name}: {lost}"));
                }
            }
            Fault::CrashActiveController { down } => {
                let active = registry
                    .borrow()
                    .values()
                    .filter_map(Weak::upgrade)
                    .find_map(|b| b.active_controller_id());
                match active {
                    Some(id) => {
                        self.crash(sim, at, (id - 1) as usize, *down);
                    }
                    None => self.note(at, "no active controller to crash".into()),
                }
            }
            Fault::Partition { a, b, heal_after } => {
                sim.partition(n[*a].as_str(), n[*b].as_str());
                self.note(at, format!("partition {} | {}", n[*a], n[*b]));
                self.undo.push((at + *heal_after, Undo::Repair(*a, *b)));
            }
            Fault::Bridge { a, b, heal_after } => {
                sim.partition(n[*a].as_str(), n[*b].as_str());
                self.note(
                    at,
                    format!("bridge: {} and {} apart, both reach the rest", n[*a], n[*b]),
                );
                self.undo.push((at + *heal_after, Undo::Repair(*a, *b)));
            }
            Fault::Isolate { node, heal_after } => {
                for other in 0..n.len() {
                    if other != *node {
                        sim.partition(n[*node].as_str(), n[other].as_str());
                        self.undo
                            .push((at + *heal_after, Undo::Repair(*node, other)));
                    }
                }
                self.note(at, format!("isolate {}", n[*node]));
            }
            Fault::OneWay {
                from,
                to,
                heal_after,
            } => {
                sim.partition_oneway(n[*from].as_str(), n[*to].as_str());
                self.note(at, format!("one-way loss {} -> {}", n[*from], n[*to]));
                self.undo
                    .push((at + *heal_after, Undo::RepairOneWay(*from, *to)));
            }
            Fault::Latency { max, restore_after } => {
                sim.set_max_message_latency(*max);
                self.note(at, format!("latency up to {} ms", max.as_millis()));
                self.undo.push((at + *restore_after, Undo::Latency));
            }
            Fault::Stall {
                node,
                release_after,
            } => {
                for other in 0..n.len() {
                    if other != *node {
                        sim.hold(n[*node].as_str(), n[other].as_str());
                    }
                }
                self.note(
                    at,
                    format!("stall {} for {} ms", n[*node], release_after.as_millis()),
                );
                self.undo.push((at + *release_after, Undo::Release(*node)));
            }
            Fault::ClockJump { delta_ms } => {
                seams::jump_clock(*delta_ms);
                self.note(at, format!("wall clock steps {delta_ms} ms"));
            }
            Fault::DiskFailure {
                node,
                restart_after,
            } => {
                // The node will be restarted: it counts as the one node down from now.
                if !self.crashed.is_empty() {
                    self.note(
                        at,
                        format!("skip disk failure of {}: a node is down", n[*node]),
                    );
                    return;
                }
                self.crashed.insert(*node);
                seams::fail_disk(&self.log_dirs[*node]);
                self.note(
                    at,
                    format!(
                        "disk of {} fails (restart in {} ms)",
                        n[*node],
                        restart_after.as_millis()
                    ),
                );
                self.undo
                    .push((at + *restart_after, Undo::ReplaceDisk(*node)));
            }
            Fault::LossyLink {
                a,
                b,
                fail_rate,
                heal_after,
            } => {
                sim.set_link_fail_rate(n[*a].as_str(), n[*b].as_str(), *fail_rate);
                self.note(
                    at,
                    format!("lossy link {} - {} ({fail_rate:.4} per ms)", n[*a], n[*b]),
                );
                self.undo.push((at + *heal_after, Undo::Lossless(*a, *b)));
            }
            Fault::SlowDisk {
                node,
                max,
                restore_after,
            } => {
                seams::slow_down_disk(&self.log_dirs[*node], *max);
                self.note(
                    at,
                    format!("disk of {} slow: up to {} ms", n[*node], max.as_millis()),
                );
                self.undo
                    .push((at + *restore_after, Undo::RestoreDisk(*node)));
            }
        }
    }

    /// `false`: not crashed (another node is down).
    fn crash(
        &mut self,
        sim: &mut turmoil::Sim<'_>,
        at: Duration,
        node: usize,
        down: Duration,
    ) -> bool {
        // One node down at a time: the quorum and min.insync.replicas=2 stay reachable,
        // so every run also checks that the cluster recovers.
        if !self.crashed.is_empty() {
            self.note(
                at,
                format!("skip crash of {}: a node is down", self.names[node]),
            );
            return false;
        }
        sim.crash(self.names[node].as_str());
        self.crashed.insert(node);
        self.note(
            at,
            format!("crash {} for {} ms", self.names[node], down.as_millis()),
        );
        self.undo.push((at + down, Undo::Restart(node)));
        true
    }

    fn undo_due(&mut self, sim: &mut turmoil::Sim<'_>, now: Duration, all: bool) {
        let (due, later): (Vec<_>, Vec<_>) =
            self.undo.drain(..).partition(|(at, _)| all || *at <= now);
        self.undo = later;
        let n = self.names.clone();
        for (_, undo) in due {
            match undo {
                Undo::Restart(node) => {
                    if self.crashed.remove(&node) {
                        sim.bounce(n[node].as_str());
                        self.note(now, format!("restart {}", n[node]));
                    }
                }
                Undo::Repair(a, b) => {
                    sim.repair(n[a].as_str(), n[b].as_str());
                    self.note(now, format!("repair {} | {}", n[a], n[b]));
                }
                Undo::RepairOneWay(from, to) => {
                    sim.repair_oneway(n[from].as_str(), n[to].as_str());
                    self.note(now, format!("repair {} -> {}", n[from], n[to]));
                }
                Undo::Release(node) => {
                    for other in 0..n.len() {
                        if other != node {
                            sim.release(n[node].as_str(), n[other].as_str());
                        }
                    }
                    self.note(now, format!("release {}", n[node]));
                }
                Undo::Latency => {
                    sim.set_max_message_latency(Duration::from_millis(2));
                    self.note(now, "latency back to normal".into());
                }
                Undo::Lossless(a, b) => {
                    sim.set_link_fail_rate(n[a].as_str(), n[b].as_str(), 0.0);
                    self.note(now, format!("link {} - {} lossless", n[a], n[b]));
                }
                Undo::ReplaceDisk(node) => {
                    sim.crash(n[node].as_str());
                    seams::repair_disk(&self.log_dirs[node]);
                    self.note(now, format!("kill {} and give it a working disk", n[node]));
                    self.undo
                        .push((now + Duration::from_secs(1), Undo::Restart(node)));
                }
                Undo::RestoreDisk(node) => {
                    seams::repair_disk(&self.log_dirs[node]);
                    self.note(now, format!("disk of {} back to normal", n[node]));
                }
            }
        }
    }
}

fn run_on_this_thread(seed: u64, options: &Options) -> Result<Report, Failure> {
    seams::install();
    let fail = |reason: String, shared: &Shared| Failure {
        seed,
        reason,
        events: shared.borrow().events.clone(),
    };
    let root = tempfile::tempdir().map_err(|e| Failure {
        seed,
        reason: format!("no temp dir: {e}"),
        events: Vec::new(),
    })?;
    let node_count = options.combined_nodes + options.broker_only_nodes;
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(std::time::UNIX_EPOCH + Duration::from_secs(1_790_000_000))
        .simulation_duration(options.limit)
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_micros(100))
        .max_message_latency(Duration::from_millis(2))
        .tcp_capacity(4096)
        .build();
    let registry: Registry = Rc::new(RefCell::new(BTreeMap::new()));
    let names: Vec<String> = (0..node_count).map(host_name).collect();
    for (index, name) in names.iter().enumerate() {
        let config = node_config(index, options, root.path());
        let registry = registry.clone();
        sim.host(name.as_str(), move || {
            let config = config.clone();
            let registry = registry.clone();
            async move {
                let broker = Rc::new(Broker::start(config).await?);
                registry.borrow_mut().insert(index, Rc::downgrade(&broker));
                std::future::pending::<()>().await;
                drop(broker);
                Ok(())
            }
        });
    }
    let shared: Shared = Rc::new(RefCell::new(Observations::default()));
    let heal = Rc::new(RefCell::new(false));
    let spec = Rc::new(WorkloadSpec {
        bootstrap: names.iter().map(|n| format!("{n}:9092")).collect(),
        partitions: options.partitions,
        batches: options.batches,
        max_records_per_batch: 8,
        batch_sizes: {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xba7c);
            (0..64).map(|_| rng.random_range(1..=8)).collect()
        },
        offset_commits: options.offset_commits,
        pipeline_transactions: options.pipeline_transactions,
        pipeline_fault: {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x9c7f);
            Some(pipeline::MemberFault {
                member: rng.random_range(0..2),
                at: options.fault_window.mul_f64(rng.random_range(0.2..0.8)),
                down: Duration::from_millis(rng.random_range(12_000..25_000)),
                kind: [
                    pipeline::MemberFaultKind::PauseBeforeOffsets,
                    pipeline::MemberFaultKind::PauseBeforeEnd,
                    pipeline::MemberFaultKind::Crash,
                ][rng.random_range(0..3)],
            })
        },
        // With a broker that holds no replica of a partition, one of its replicas moves.
        reassign: node_count > 3,
        spread_over: options.fault_window,
        transaction_commits: {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x7a7c);
            (0..options.transactions)
                .map(|_| rng.random_bool(0.7))
                .collect()
        },
    });
    sim.client("client", workload::run(spec, shared.clone(), heal.clone()));

    let fault_start = Duration::from_secs(5);
    let fault_end = fault_start + options.fault_window;
    let mut schedule: Vec<Scheduled> =
        faults::schedule(seed, node_count, fault_start, options.fault_window);
    let fault_count = schedule.len();
    schedule.reverse();
    let mut harness = Harness {
        partitions_seen: String::new(),
        rng: rand::SeedableRng::seed_from_u64(seed ^ 0xd15c),
        names: names.clone(),
        log_dirs: names.iter().map(|n| root.path().join(n)).collect(),
        crashed: BTreeSet::new(),
        undo: Vec::new(),
        shared: shared.clone(),
    };
    let mut healed_at: Option<Duration> = None;
    let mut sim_steps: u64 = 0;
    loop {
        let now = sim.elapsed();
        while schedule.last().is_some_and(|s| s.at <= now) {
            let next = schedule.pop().expect("checked");
            harness.apply(&mut sim, &registry, now, &next.fault);
        }
        harness.undo_due(&mut sim, now, false);
        if healed_at.is_none() && now >= fault_end && shared.borrow().producing_done {
            harness.undo_due(&mut sim, now, true);
            harness.note(now, "all faults healed".into());
            healed_at = Some(now);
        }
        if healed_at.is_some_and(|at| now >= at + options.settle) && !*heal.borrow() {
            *heal.borrow_mut() = true;
        }
        if shared.borrow().done {
            break;
        }
        if sim_steps.is_multiple_of(10) {
            harness.note_partition_changes(&registry, now);
        }
        sim_steps += 1;
        match sim.step() {
            Ok(_) => {}
            Err(e) => return Err(fail(format!("simulation stopped: {e}"), &shared)),
        }
    }
    let simulated = sim.elapsed();
    let brokers: BTreeMap<usize, Rc<Broker>> = registry
        .borrow()
        .iter()
        .filter_map(|(i, b)| b.upgrade().map(|b| (*i, b)))
        .collect();
    let observations = shared.borrow();
    let outcome = checker::check(&observations, &brokers, options.partitions);
    let events = observations.events.clone();
    drop(observations);
    if let Err(reason) = outcome {
        return Err(fail(reason, &shared));
    }
    let fingerprint = fingerprint(&shared.borrow());
    let acknowledged_records = shared
        .borrow()
        .acknowledged
        .iter()
        .map(|a| a.values.len())
        .sum();
    drop(brokers);
    drop(sim);
    Ok(Report {
        seed,
        simulated,
        acknowledged_records,
        faults: fault_count,
        fingerprint,
        events,
    })
}

fn fingerprint(observations: &Observations) -> u64 {
    // SipHash with fixed keys: the same on every run and machine.
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    observations.events.hash(&mut hasher);
    for a in &observations.acknowledged {
        (a.partition, a.base_offset, &a.values).hash(&mut hasher);
    }
    observations.read_back.hash(&mut hasher);
    observations.read_committed.hash(&mut hasher);
    observations.offsets_seen.hash(&mut hasher);
    for t in &observations.transactions {
        (t.id, &t.records, t.outcome).hash(&mut hasher);
    }
    observations.pipeline_committed.hash(&mut hasher);
    observations.pipeline_output.hash(&mut hasher);
    observations.pipeline_failure.hash(&mut hasher);
    hasher.finish()
}

/// The metadata image of the node that is the active controller, if one is running.
fn active_image(registry: &Registry) -> Option<std::sync::Arc<moldau_metadata::MetadataImage>> {
    let brokers: Vec<Rc<Broker>> = registry
        .borrow()
        .values()
        .filter_map(Weak::upgrade)
        .collect();
    brokers
        .iter()
        .find(|b| b.active_controller_id() == Some(b.node_id()))
        .map(|b| b.metadata_image())
}

/// Whether the active controller's image has every replica of every partition in its ISR.
fn every_replica_in_sync(registry: &Registry) -> bool {
    let Some(image) = active_image(registry) else {
        return false;
    };
    image.topics().iter().all(|topic| {
        topic
            .partitions
            .values()
            .all(|p| p.isr.len() == p.replicas.len())
    })
}

/// Cuts each log as a power loss would: bytes after the recovery point survive only up to
/// a random length, later segments lose everything, and half the time the cut ends in a
/// torn write (zeros or junk). Returns a summary for the event log.
fn power_loss(
    logs: &[std::sync::Arc<moldau_storage::Log>],
    rng: &mut rand::rngs::StdRng,
) -> String {
    use rand::Rng;
    use std::io::Write;
    let (mut cut_bytes, mut torn) = (0u64, 0usize);
    for log in logs {
        let Ok(durable) = log.offset_metadata(log.recovery_point()) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(log.dir()) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(base) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            let Ok(len) = entry.metadata().map(|m| m.len()) else {
                continue;
            };
            let keep = match base.cmp(&durable.segment_base_offset) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal if len > durable.position => {
                    rng.random_range(durable.position..=len)
                }
                std::cmp::Ordering::Equal => continue,
                std::cmp::Ordering::Greater => 0,
            };
            let Ok(mut file) = std::fs::OpenOptions::new().write(true).open(&path) else {
                continue;
            };
            if file.set_len(keep).is_err() {
                continue;
            }
            cut_bytes += len - keep;
            if keep < len && rng.random_bool(0.5) {
                let tail_len = rng.random_range(1..=(len - keep).min(300)) as usize;
                let tail: Vec<u8> = if rng.random_bool(0.5) {
                    vec![0; tail_len]
                } else {
                    (0..tail_len).map(|_| rng.random()).collect()
                };
                use std::io::Seek;
                if file.seek(std::io::SeekFrom::End(0)).is_ok() && file.write_all(&tail).is_ok() {
                    torn += 1;
                }
            }
        }
    }
    format!("{cut_bytes} unsynced bytes lost, {torn} torn tails")
}
