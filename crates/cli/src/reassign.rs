//! `moldau reassign generate|execute|verify|cancel|list`: partition reassignment, as
//! `kafka-reassign-partitions` does it, reading and writing its JSON files and printing
//! what it prints:
//!
//! - `generate --topics-to-move-json-file F --broker-list 1,2,3`: the current assignment of
//!   the topics (`{"topics":[{"topic":"t"}],"version":1}`) and a proposed one over the
//!   brokers (Kafka's `AdminUtils.assignReplicasToBrokers`: round robin from a random start,
//!   rack-aware when every broker has a rack, unless `--disable-rack-aware`).
//! - `execute --reassignment-json-file F`: prints the current assignment of the file's
//!   partitions (to save for a rollback) and starts the reassignment
//!   (AlterPartitionReassignments); `--throttle B` first sets Kafka's replication throttles
//!   (the moving replicas in `leader.`/`follower.replication.throttled.replicas`, the rates
//!   on every broker involved); `--additional` is needed while other reassignments run.
//!   Then each replica given a log dir other than "any" is sent to it (AlterReplicaLogDirs
//!   to its broker, retried while the broker does not have the replica yet, for up to
//!   `--timeout` ms); a dir the broker does not have fails the command. A Moldau broker has
//!   one log dir, so the only dir a replica can be given is the one it is in.
//! - `verify`: whether each partition of the file has its target replicas; once no
//!   reassignment runs anywhere, clears the throttles (unless `--preserve-throttles`).
//! - `cancel`: cancels the file's reassignments that are in progress (the partitions
//!   return to their original replicas) and clears the throttles.
//! - `list`: every reassignment in progress.
//!
//! The requests go through `moldau_wire` (librdkafka has no API for reassignments): any broker
//! forwards them to the active controller. Broker-level throttles are set on each broker
//! itself, as Kafka's Admin does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::alter_replica_log_dirs_request::{
    AlterReplicaLogDir, AlterReplicaLogDirTopic,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterReplicaLogDirsRequest, BrokerId,
    DescribeClusterRequest, IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use moldau_wire::{check, retrying, ClientSettings, Cluster, WireError};
use serde::{Deserialize, Serialize};

use crate::args::ConnectArgs;
use crate::transactions::{connect, explain, run_wire};
use crate::Failure;

#[derive(Subcommand)]
pub enum ReassignCommand {
    /// Propose an assignment of topics' partitions to brokers (prints current and proposed JSON).
    Generate(GenerateArgs),
    /// Start the reassignment a JSON file describes (prints the current assignment for rollback).
    Execute(ExecuteArgs),
    /// Report whether the reassignments of a JSON file completed; clear throttles once all did.
    Verify(VerifyArgs),
    /// Cancel the reassignments of a JSON file that are in progress.
    Cancel(CancelArgs),
    /// List every reassignment in progress.
    List(ListArgs),
}

#[derive(Args)]
pub struct GenerateArgs {
    /// JSON file of the topics to move: {"topics":[{"topic":"t"}],"version":1}.
    #[arg(long, value_name = "FILE")]
    topics_to_move_json_file: std::path::PathBuf,
    /// The brokers to move the partitions to, e.g. 1,2,3.
    #[arg(long, value_name = "IDS")]
    broker_list: String,
    /// Ignore the brokers' racks.
    #[arg(long)]
    disable_rack_aware: bool,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct ExecuteArgs {
    /// The reassignment JSON file ({"version":1,"partitions":[...]}).
    #[arg(long, value_name = "FILE")]
    reassignment_json_file: std::path::PathBuf,
    /// Start it even though other reassignments are in progress (also changes the throttle).
    #[arg(long)]
    additional: bool,
    /// Throttle the replication of the moving replicas to this many bytes/s (-1: none).
    #[arg(long, default_value_t = -1, value_name = "BYTES_PER_SEC", allow_negative_numbers = true)]
    throttle: i64,
    /// Refuse a target with another number of replicas than the partition has (KIP-860).
    #[arg(long)]
    disallow_replication_factor_change: bool,
    /// How long to wait for the replicas' log directory moves to start, in ms.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    timeout: u64,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The reassignment JSON file given to execute.
    #[arg(long, value_name = "FILE")]
    reassignment_json_file: std::path::PathBuf,
    /// Leave the broker and topic throttles as they are.
    #[arg(long)]
    preserve_throttles: bool,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct CancelArgs {
    /// The reassignment JSON file given to execute.
    #[arg(long, value_name = "FILE")]
    reassignment_json_file: std::path::PathBuf,
    /// Leave the broker and topic throttles as they are.
    #[arg(long)]
    preserve_throttles: bool,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    conn: ConnectArgs,
}

pub fn run(cmd: ReassignCommand) -> Result<(), Failure> {
    match cmd {
        ReassignCommand::Generate(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| generate(args, settings))
        }
        ReassignCommand::Execute(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| execute(args, settings))
        }
        ReassignCommand::Verify(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| verify(args, settings))
        }
        ReassignCommand::Cancel(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| cancel(args, settings))
        }
        ReassignCommand::List(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| list(args, settings))
        }
    }
}

/// The topic configs that name throttled replicas, and the broker rates.
const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";
const LEADER_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
const FOLLOWER_THROTTLED_RATE: &str = "follower.replication.throttled.rate";

/// kafka-reassign-partitions' "any" log dir: wherever the broker puts it.
const ANY_LOG_DIR: &str = "any";

/// A partition, printed as Kafka prints a TopicPartition: `topic-0`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Tp {
    topic: String,
    partition: i32,
}

impl std::fmt::Display for Tp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The reassignment JSON of kafka-reassign-partitions.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct ReassignmentJson {
    version: i32,
    partitions: Vec<PartitionJson>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct PartitionJson {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log_dirs: Option<Vec<String>>,
}

/// The JSON of an assignment, as Kafka formats it (partitions in order, "any" log dirs).
fn assignment_json(assignment: &BTreeMap<Tp, Vec<i32>>) -> String {
    let json = ReassignmentJson {
        version: 1,
        partitions: assignment
            .iter()
            .map(|(tp, replicas)| PartitionJson {
                topic: tp.topic.clone(),
                partition: tp.partition,
                replicas: replicas.clone(),
                log_dirs: Some(vec![ANY_LOG_DIR.to_string(); replicas.len()]),
            })
            .collect(),
    };
    serde_json::to_string(&json).expect("assignment JSON serializes")
}

fn read_file(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A replica: a partition on a broker, printed as Kafka prints a TopicPartitionReplica:
/// `topic-0-1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Replica {
    tp: Tp,
    broker: i32,
}

impl std::fmt::Display for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.tp, self.broker)
    }
}

/// A reassignment file as read.
struct Reassignment {
    /// Each partition's target replicas, in file order.
    partitions: Vec<(Tp, Vec<i32>)>,
    /// The replicas given a log dir other than "any", with it.
    log_dirs: BTreeMap<Replica, String>,
}

/// The partitions' target replicas, without the log dirs.
fn parse_reassignment(text: &str) -> anyhow::Result<Vec<(Tp, Vec<i32>)>> {
    Ok(parse_reassignment_with_dirs(text)?.partitions)
}

/// Kafka's `parsePartitionReassignmentData`: version 1 only (the default), `log_dirs` as
/// long as `replicas` when given.
fn parse_reassignment_with_dirs(text: &str) -> anyhow::Result<Reassignment> {
    let value: serde_json::Value =
        serde_json::from_str(text).context("the reassignment file is not valid JSON")?;
    let version = value.get("version").and_then(|v| v.as_i64()).unwrap_or(1);
    if version != 1 {
        bail!("Not supported version field value {version}");
    }
    let partitions = match value.get("partitions") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(partitions) => serde_json::from_value::<Vec<PartitionJson>>(partitions.clone())
            .context("the reassignment file's partitions are not as expected")?,
    };
    let mut parsed = Vec::with_capacity(partitions.len());
    let mut log_dirs = BTreeMap::new();
    for p in partitions {
        let tp = Tp {
            topic: p.topic,
            partition: p.partition,
        };
        if let Some(dirs) = p.log_dirs {
            if dirs.len() != p.replicas.len() {
                bail!(
                    "Size of replicas list {:?} is different from size of log dirs list {:?} \
                     for partition {tp}",
                    p.replicas,
                    dirs
                );
            }
            for (broker, dir) in p.replicas.iter().zip(dirs) {
                if dir != ANY_LOG_DIR {
                    let replica = Replica {
                        tp: tp.clone(),
                        broker: *broker,
                    };
                    log_dirs.insert(replica, dir);
                }
            }
        }
        parsed.push((tp, p.replicas));
    }
    Ok(Reassignment {
        partitions: parsed,
        log_dirs,
    })
}

/// Kafka's `parseExecuteAssignmentArgs` checks.
fn check_execute_assignment(parts: &[(Tp, Vec<i32>)]) -> anyhow::Result<BTreeMap<Tp, Vec<i32>>> {
    if parts.is_empty() {
        bail!("Partition reassignment list cannot be empty");
    }
    if parts.iter().any(|(_, replicas)| replicas.is_empty()) {
        bail!("Partition replica list cannot be empty");
    }
    let mut seen = BTreeSet::new();
    let duplicates: BTreeSet<String> = parts
        .iter()
        .filter(|(tp, _)| !seen.insert(tp.clone()))
        .map(|(tp, _)| tp.to_string())
        .collect();
    if !duplicates.is_empty() {
        bail!(
            "Partition reassignment contains duplicate topic partitions: {}",
            duplicates.into_iter().collect::<Vec<_>>().join(",")
        );
    }
    let duplicate_replicas: Vec<String> = parts
        .iter()
        .filter_map(|(tp, replicas)| {
            let mut seen = BTreeSet::new();
            let twice: BTreeSet<i32> = replicas
                .iter()
                .filter(|id| !seen.insert(**id))
                .copied()
                .collect();
            (!twice.is_empty()).then(|| {
                format!(
                    "{tp} contains multiple entries for {}",
                    crate::output::id_list(&twice.into_iter().collect::<Vec<_>>())
                )
            })
        })
        .collect();
    if !duplicate_replicas.is_empty() {
        bail!(
            "Partition replica lists may not contain duplicate entries: {}",
            duplicate_replicas.join(". ")
        );
    }
    Ok(parts.iter().cloned().collect())
}

/// Kafka's `parseTopicsData`: `{"topics":[{"topic":"t"}],"version":1}`.
fn parse_topics_to_move(text: &str) -> anyhow::Result<Vec<String>> {
    let value: serde_json::Value =
        serde_json::from_str(text).context("The input string is not a valid JSON")?;
    let version = value.get("version").and_then(|v| v.as_i64()).unwrap_or(1);
    if version != 1 {
        bail!("Not supported version field value {version}");
    }
    let mut topics = Vec::new();
    if let Some(list) = value.get("topics").and_then(|t| t.as_array()) {
        for entry in list {
            let topic = entry
                .get("topic")
                .and_then(|t| t.as_str())
                .ok_or_else(|| anyhow!("every entry of \"topics\" needs a \"topic\" string"))?;
            topics.push(topic.to_string());
        }
    }
    Ok(topics)
}

/// Kafka's `parseGenerateAssignmentArgs`: the broker list and the topics, without repeats.
fn parse_generate_args(
    broker_list: &str,
    topics_json: &str,
) -> anyhow::Result<(Vec<i32>, Vec<String>)> {
    let brokers: Vec<i32> = broker_list
        .split(',')
        .map(|id| {
            id.trim()
                .parse::<i32>()
                .map_err(|_| anyhow!("--broker-list: {id:?} is not a broker id"))
        })
        .collect::<anyhow::Result<_>>()?;
    let twice = duplicates(&brokers);
    if !twice.is_empty() {
        bail!(
            "Broker list contains duplicate entries: {}",
            crate::output::id_list(&twice)
        );
    }
    let topics = parse_topics_to_move(topics_json)?;
    let twice = duplicates(&topics);
    if !twice.is_empty() {
        bail!(
            "List of topics to reassign contains duplicate entries: {}",
            twice.join(",")
        );
    }
    Ok((brokers, topics))
}

fn duplicates<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut seen = BTreeSet::new();
    let twice: BTreeSet<T> = items
        .iter()
        .filter(|item| !seen.insert((*item).clone()))
        .cloned()
        .collect();
    twice.into_iter().collect()
}

/// A random index below `n` (Kafka starts its round robin at a random broker).
fn random_below(n: usize) -> usize {
    let random =
        std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    (random % n.max(1) as u64) as usize
}

/// Kafka's `AdminUtils.replicaIndex`.
fn replica_index(first: usize, shift: usize, replica: usize, brokers: usize) -> usize {
    let shift = 1 + (shift + replica) % (brokers - 1);
    (first + shift) % brokers
}

/// Kafka's `AdminUtils.assignReplicasToBrokers` (what kafka-reassign-partitions proposes):
/// `brokers` as (id, rack); rack-aware when every broker has a rack, an error when only
/// some have. `start` is the random start index and shift (Kafka draws both).
fn assign_replicas(
    brokers: &[(i32, Option<String>)],
    partitions: i32,
    replication_factor: usize,
    start: (usize, usize),
) -> anyhow::Result<BTreeMap<i32, Vec<i32>>> {
    if partitions <= 0 {
        bail!("Number of partitions must be larger than 0.");
    }
    if replication_factor == 0 {
        bail!("Replication factor must be larger than 0.");
    }
    if replication_factor > brokers.len() {
        bail!(
            "Replication factor: {replication_factor} larger than available brokers: {}.",
            brokers.len()
        );
    }
    let with_rack = brokers.iter().filter(|(_, rack)| rack.is_some()).count();
    let mut assignment = BTreeMap::new();
    if with_rack == 0 {
        let ids: Vec<i32> = brokers.iter().map(|(id, _)| *id).collect();
        let n = ids.len();
        let (start_index, mut shift) = (start.0 % n, start.1 % n);
        for p in 0..partitions as usize {
            if p > 0 && p % n == 0 {
                shift += 1;
            }
            let first = (p + start_index) % n;
            let mut replicas = vec![ids[first]];
            for j in 0..replication_factor - 1 {
                replicas.push(ids[replica_index(first, shift, j, n)]);
            }
            assignment.insert(p as i32, replicas);
        }
        return Ok(assignment);
    }
    if with_rack != brokers.len() {
        bail!(
            "Not all brokers have rack information. Add --disable-rack-aware in command line \
             to make replica assignment without rack information."
        );
    }
    // The rack-alternated broker list: racks in name order, each rack's brokers in id order.
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack
            .entry(rack.as_deref().unwrap_or_default())
            .or_default()
            .push(*id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
    }
    let rack_of: HashMap<i32, &str> = brokers
        .iter()
        .map(|(id, rack)| (*id, rack.as_deref().unwrap_or_default()))
        .collect();
    let racks: Vec<&Vec<i32>> = by_rack.values().collect();
    let mut arranged = Vec::with_capacity(brokers.len());
    let mut depth = 0;
    while arranged.len() < brokers.len() {
        for ids in &racks {
            if let Some(id) = ids.get(depth) {
                arranged.push(*id);
            }
        }
        depth += 1;
    }
    let num_racks = racks.len();
    let n = arranged.len();
    let (start_index, mut shift) = (start.0 % n, start.1 % n);
    for p in 0..partitions as usize {
        if p > 0 && p % n == 0 {
            shift += 1;
        }
        let first = (p + start_index) % n;
        let leader = arranged[first];
        let mut replicas = vec![leader];
        let mut racks_used: BTreeSet<&str> = [rack_of[&leader]].into();
        let mut brokers_used: BTreeSet<i32> = [leader].into();
        let mut k = 0;
        for _ in 0..replication_factor - 1 {
            loop {
                let broker = arranged[replica_index(first, shift * num_racks, k, n)];
                let rack = rack_of[&broker];
                k += 1;
                let rack_ok = !racks_used.contains(rack) || racks_used.len() == num_racks;
                let broker_ok = !brokers_used.contains(&broker) || brokers_used.len() == n;
                if rack_ok && broker_ok {
                    replicas.push(broker);
                    racks_used.insert(rack);
                    brokers_used.insert(broker);
                    break;
                }
            }
        }
        assignment.insert(p as i32, replicas);
    }
    Ok(assignment)
}

/// The replicas of every partition of `topics` (Metadata); an unknown topic is an error.
async fn current_assignment(
    cluster: &mut Cluster,
    topics: &[String],
) -> Result<BTreeMap<Tp, Vec<i32>>, WireError> {
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let response = cluster.metadata(Some(&names)).await?;
    let mut assignment = BTreeMap::new();
    for name in topics {
        let topic = response
            .topics
            .iter()
            .find(|t| t.name.as_deref().map(|n| n.as_str()) == Some(name.as_str()))
            .filter(|t| t.error_code != ResponseError::UnknownTopicOrPartition.code())
            .ok_or_else(|| WireError::UnknownTopic(name.clone()))?;
        check(topic.error_code, None)?;
        for p in &topic.partitions {
            assignment.insert(
                Tp {
                    topic: name.clone(),
                    partition: p.partition_index,
                },
                p.replica_nodes.iter().map(|id| id.0).collect(),
            );
        }
    }
    Ok(assignment)
}

/// The brokers as DescribeCluster lists them: (id, rack, fenced).
async fn cluster_brokers(
    cluster: &mut Cluster,
    include_fenced: bool,
) -> Result<Vec<(i32, Option<String>, bool)>, WireError> {
    let request = DescribeClusterRequest::default()
        .with_endpoint_type(1)
        .with_include_fenced_brokers(include_fenced);
    let response = cluster.bootstrap().send(&request).await?;
    check(response.error_code, response.error_message.as_ref())?;
    let mut brokers: Vec<_> = response
        .brokers
        .iter()
        .map(|b| {
            (
                b.broker_id.0,
                b.rack.as_ref().map(|r| r.to_string()),
                b.is_fenced,
            )
        })
        .collect();
    brokers.sort();
    Ok(brokers)
}

/// One reassignment in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ongoing {
    replicas: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
}

/// The reassignments in progress (of `partitions`, or all), from the active controller.
async fn ongoing(
    cluster: &mut Cluster,
    partitions: Option<&[Tp]>,
) -> Result<BTreeMap<Tp, Ongoing>, WireError> {
    let topics = partitions.map(|parts| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in parts {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        by_topic
            .into_iter()
            .map(|(name, ids)| {
                ListPartitionReassignmentsTopics::default()
                    .with_name(TopicName(StrBytes::from_string(name.to_string())))
                    .with_partition_indexes(ids)
            })
            .collect()
    });
    let request = ListPartitionReassignmentsRequest::default().with_topics(topics);
    let timeout = request_timeout(cluster);
    let response = retrying(timeout, async || {
        let response = cluster.bootstrap().send(&request).await?;
        check(response.error_code, response.error_message.as_ref())?;
        Ok(response)
    })
    .await?;
    let ids = |ids: &[BrokerId]| ids.iter().map(|id| id.0).collect::<Vec<_>>();
    let mut found = BTreeMap::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            found.insert(
                Tp {
                    topic: topic.name.to_string(),
                    partition: p.partition_index,
                },
                Ongoing {
                    replicas: ids(&p.replicas),
                    adding: ids(&p.adding_replicas),
                    removing: ids(&p.removing_replicas),
                },
            );
        }
    }
    Ok(found)
}

fn request_timeout(cluster: &Cluster) -> std::time::Duration {
    cluster.settings().timeout
}

/// AlterPartitionReassignments for `targets` (`None`: cancel); each partition's error.
async fn alter_reassignments(
    cluster: &mut Cluster,
    targets: &BTreeMap<Tp, Option<Vec<i32>>>,
    allow_replication_factor_change: bool,
) -> Result<BTreeMap<Tp, Option<String>>, WireError> {
    let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
    for (tp, replicas) in targets {
        by_topic.entry(&tp.topic).or_default().push(
            ReassignablePartition::default()
                .with_partition_index(tp.partition)
                .with_replicas(
                    replicas
                        .as_ref()
                        .map(|r| r.iter().copied().map(BrokerId).collect()),
                ),
        );
    }
    let request = AlterPartitionReassignmentsRequest::default()
        .with_allow_replication_factor_change(allow_replication_factor_change)
        .with_topics(
            by_topic
                .into_iter()
                .map(|(name, partitions)| {
                    ReassignableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(name.to_string())))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let timeout = request_timeout(cluster);
    // Only a refusal of the whole request by a node that is not (or no longer) the
    // active controller is retried: nothing was written then.
    let response = retrying(timeout, async || {
        let response = cluster.bootstrap().send(&request).await?;
        match ResponseError::try_from_code(response.error_code) {
            Some(ResponseError::NotController) => Err(WireError::Kafka {
                error: ResponseError::NotController,
                message: None,
            }),
            _ => Ok(response),
        }
    })
    .await?;
    if response.error_code != 0 && response.responses.is_empty() {
        check(response.error_code, response.error_message.as_ref())?;
    }
    let mut errors = BTreeMap::new();
    for topic in &response.responses {
        for p in &topic.partitions {
            let tp = Tp {
                topic: topic.name.to_string(),
                partition: p.partition_index,
            };
            let error = check(p.error_code, p.error_message.as_ref())
                .err()
                .map(|e| match e {
                    WireError::Kafka {
                        message: Some(m), ..
                    } if !m.is_empty() => m,
                    e => e.to_string(),
                });
            errors.insert(tp, error);
        }
    }
    Ok(errors)
}

/// Sets (`Some`) or deletes (`None`) configs of one resource through IncrementalAlterConfigs
/// on `connection`.
async fn alter_configs(
    connection: &mut moldau_wire::Connection,
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<String>)],
) -> Result<(), WireError> {
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(
                configs
                    .iter()
                    .map(|(key, value)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string(key.to_string()))
                            .with_config_operation(if value.is_some() { SET } else { DELETE })
                            .with_value(value.clone().map(StrBytes::from_string))
                    })
                    .collect(),
            ),
    ]);
    let response = connection.send(&request).await?;
    for r in &response.responses {
        check(r.error_code, r.error_message.as_ref())?;
    }
    Ok(())
}

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

async fn generate(args: GenerateArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let topics_json = read_file(&args.topics_to_move_json_file)?;
    let (broker_ids, topics) = parse_generate_args(&args.broker_list, &topics_json)?;
    let mut cluster = connect(conn, settings).await?;
    let current = current_assignment(&mut cluster, &topics)
        .await
        .map_err(|e| match e {
            WireError::UnknownTopic(topic) => anyhow!("Topic {topic} not found."),
            e => explain(conn, "cannot describe the topics", e),
        })?;
    // Kafka's tool proposes over the brokers of the list that are in the cluster.
    let brokers: Vec<(i32, Option<String>)> = cluster_brokers(&mut cluster, false)
        .await
        .map_err(|e| explain(conn, "cannot describe the cluster", e))?
        .into_iter()
        .filter(|(id, _, _)| broker_ids.contains(id))
        .map(|(id, rack, _)| (id, if args.disable_rack_aware { None } else { rack }))
        .collect();
    let mut proposed = BTreeMap::new();
    for topic in &topics {
        let partitions: Vec<(&Tp, &Vec<i32>)> = current
            .iter()
            .filter(|(tp, _)| tp.topic == *topic)
            .collect();
        let Some((_, first)) = partitions.first() else {
            continue;
        };
        let start = (random_below(brokers.len()), random_below(brokers.len()));
        let assigned = assign_replicas(&brokers, partitions.len() as i32, first.len(), start)?;
        for (partition, replicas) in assigned {
            proposed.insert(
                Tp {
                    topic: topic.clone(),
                    partition,
                },
                replicas,
            );
        }
    }
    say!(
        "Current partition replica assignment\n{}\n",
        assignment_json(&current)
    );
    say!(
        "Proposed partition reassignment configuration\n{}",
        assignment_json(&proposed)
    );
    Ok(())
}

/// Kafka's partition moves: per partition, the replicas it moves from (the original
/// replicas, of an ongoing reassignment too) and the ones it moves to.
fn moves(
    ongoing: &BTreeMap<Tp, Ongoing>,
    proposed: &BTreeMap<Tp, Vec<i32>>,
    current: &BTreeMap<Tp, Vec<i32>>,
) -> BTreeMap<Tp, (BTreeSet<i32>, BTreeSet<i32>)> {
    let mut moves: BTreeMap<Tp, (BTreeSet<i32>, BTreeSet<i32>)> = ongoing
        .iter()
        .map(|(tp, o)| {
            let sources = o
                .replicas
                .iter()
                .filter(|id| !o.adding.contains(id))
                .copied()
                .collect();
            (tp.clone(), (sources, o.adding.iter().copied().collect()))
        })
        .collect();
    for (tp, replicas) in proposed {
        let sources: BTreeSet<i32> = match moves.get(tp) {
            Some((sources, _)) => sources.clone(),
            None => current
                .get(tp)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        };
        let destinations = replicas
            .iter()
            .filter(|id| !sources.contains(id))
            .copied()
            .collect();
        moves.insert(tp.clone(), (sources, destinations));
    }
    moves
}

/// Kafka's `calculateLeaderThrottles` / `calculateFollowerThrottles`: per topic, the
/// `partition:broker` lists of the sources and of the destinations.
fn throttled_replicas(
    moves: &BTreeMap<Tp, (BTreeSet<i32>, BTreeSet<i32>)>,
) -> BTreeMap<String, (String, String)> {
    let mut lists: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (tp, (sources, destinations)) in moves {
        let entry = lists.entry(tp.topic.clone()).or_default();
        for id in sources {
            entry.0.insert(format!("{}:{id}", tp.partition));
        }
        for id in destinations.iter().filter(|id| !sources.contains(id)) {
            entry.1.insert(format!("{}:{id}", tp.partition));
        }
    }
    let join = |set: BTreeSet<String>| set.into_iter().collect::<Vec<_>>().join(",");
    lists
        .into_iter()
        .map(|(topic, (leader, follower))| (topic, (join(leader), join(follower))))
        .collect()
}

async fn execute(args: ExecuteArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let text = read_file(&args.reassignment_json_file)?;
    let Reassignment {
        partitions,
        log_dirs,
    } = parse_reassignment_with_dirs(&text)?;
    let proposed = check_execute_assignment(&partitions)?;
    let mut cluster = connect(conn, settings).await?;
    let running = ongoing(&mut cluster, None)
        .await
        .map_err(|e| explain(conn, "cannot list the partition reassignments", e))?;
    if !args.additional && !running.is_empty() {
        bail!(
            "Cannot execute because there is an existing partition assignment.  Use \
             --additional to override this and create a new partition assignment in addition \
             to the existing one. The --additional flag can also be used to change the \
             throttle by resubmitting the current reassignment."
        );
    }
    // Registered brokers: a fenced one may be a target (it catches up when it is back).
    let registered: BTreeSet<i32> = cluster_brokers(&mut cluster, true)
        .await
        .map_err(|e| explain(conn, "cannot describe the cluster", e))?
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    if let Some(unknown) = proposed
        .values()
        .flatten()
        .find(|id| !registered.contains(id))
    {
        bail!("Unknown broker id {unknown}");
    }
    let topics: Vec<String> = proposed
        .keys()
        .map(|tp| tp.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let all = current_assignment(&mut cluster, &topics)
        .await
        .map_err(|e| explain(conn, "cannot describe the topics", e))?;
    let missing: Vec<String> = proposed
        .keys()
        .filter(|tp| !all.contains_key(tp))
        .map(Tp::to_string)
        .collect();
    if !missing.is_empty() {
        bail!("Unable to find partition: {}", missing.join(", "));
    }
    let current: BTreeMap<Tp, Vec<i32>> = all
        .into_iter()
        .filter(|(tp, _)| proposed.contains_key(tp))
        .collect();
    say!(
        "Current partition replica assignment\n\n{}\n\nSave this to use as the \
         --reassignment-json-file option during rollback",
        assignment_json(&current)
    );
    if args.throttle >= 0 {
        say!(
            "Warning: You must run --verify periodically, until the reassignment completes, \
             to ensure the throttle is removed."
        );
        let moves = moves(&running, &proposed, &current);
        for (topic, (leader, follower)) in throttled_replicas(&moves) {
            let configs = [
                (LEADER_THROTTLED_REPLICAS, Some(leader)),
                (FOLLOWER_THROTTLED_REPLICAS, Some(follower)),
            ];
            alter_configs(cluster.bootstrap(), RESOURCE_TOPIC, &topic, &configs)
                .await
                .map_err(|e| explain(conn, &format!("cannot throttle topic {topic}"), e))?;
        }
        let brokers: BTreeSet<i32> = moves
            .values()
            .flat_map(|(sources, destinations)| sources.iter().chain(destinations))
            .copied()
            .collect();
        let rate = args.throttle.to_string();
        for id in brokers {
            let configs = [
                (LEADER_THROTTLED_RATE, Some(rate.clone())),
                (FOLLOWER_THROTTLED_RATE, Some(rate.clone())),
            ];
            let connection = cluster
                .broker(id)
                .await
                .map_err(|e| explain(conn, &format!("cannot reach broker {id}"), e))?;
            alter_configs(connection, RESOURCE_BROKER, &id.to_string(), &configs)
                .await
                .map_err(|e| explain(conn, &format!("cannot throttle broker {id}"), e))?;
        }
        say!(
            "The inter-broker throttle limit was set to {} B/s",
            args.throttle
        );
    }
    let targets = proposed
        .iter()
        .map(|(tp, replicas)| (tp.clone(), Some(replicas.clone())))
        .collect();
    let errors = alter_reassignments(
        &mut cluster,
        &targets,
        !args.disallow_replication_factor_change,
    )
    .await
    .map_err(|e| explain(conn, "cannot reassign the partitions", e))?;
    let failed: Vec<String> = errors
        .iter()
        .filter_map(|(tp, e)| e.as_ref().map(|e| format!("{tp}: {e}")))
        .collect();
    if !failed.is_empty() {
        bail!("Error reassigning partition(s):\n{}", failed.join("\n"));
    }
    say!(
        "Successfully started partition reassignment{} for {}",
        if proposed.len() == 1 { "" } else { "s" },
        proposed
            .keys()
            .map(Tp::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    if !log_dirs.is_empty() {
        let timeout = std::time::Duration::from_millis(args.timeout);
        execute_log_dir_moves(&mut cluster, conn, log_dirs, timeout).await?;
    }
    Ok(())
}

/// Kafka's `executeMoves`: AlterReplicaLogDirs for the replicas given a log dir, until
/// every broker took its replicas. A broker that does not have a replica yet (it is being
/// moved there) answers REPLICA_NOT_AVAILABLE: asked again every 100 ms for up to
/// `timeout`. Any other error fails, naming the replica, its broker and the dir.
async fn execute_log_dir_moves(
    cluster: &mut Cluster,
    conn: &ConnectArgs,
    mut pending: BTreeMap<Replica, String>,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let brokers: BTreeSet<i32> = pending.keys().map(|r| r.broker).collect();
        let mut failed = Vec::new();
        for broker in brokers {
            let errors = alter_replica_log_dirs(cluster, broker, &pending)
                .await
                .map_err(|e| {
                    explain(
                        conn,
                        &format!("cannot alter the log dirs of replicas on broker {broker}"),
                        e,
                    )
                })?;
            for (replica, error) in errors {
                match error {
                    None => {
                        let dir = pending.remove(&replica).expect("a pending replica");
                        say!(
                            "Successfully started moving log directory to {dir} for replica \
                             {} with broker {}",
                            replica.tp,
                            replica.broker
                        );
                    }
                    Some(ResponseError::ReplicaNotAvailable) => {}
                    Some(error) => failed.push(format!(
                        "replica {} on broker {} to log dir {}: {}",
                        replica.tp,
                        replica.broker,
                        pending[&replica],
                        error_name(error)
                    )),
                }
            }
        }
        if !failed.is_empty() {
            bail!("Failed to alter dir for {}", failed.join("; "));
        }
        if pending.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            bail!(
                "Timed out before log directory move{} could be started for: {}",
                if pending.len() == 1 { "" } else { "s" },
                pending
                    .keys()
                    .map(Replica::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// One AlterReplicaLogDirs to `broker` for its replicas in `log_dirs`: each one's error
/// (`None`: the broker took it). An answer that leaves a replica out is an error, as
/// Kafka's Admin makes it.
async fn alter_replica_log_dirs(
    cluster: &mut Cluster,
    broker: i32,
    log_dirs: &BTreeMap<Replica, String>,
) -> Result<Vec<(Replica, Option<ResponseError>)>, WireError> {
    let mut by_dir: BTreeMap<&str, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (replica, dir) in log_dirs.iter().filter(|(r, _)| r.broker == broker) {
        by_dir
            .entry(dir)
            .or_default()
            .entry(&replica.tp.topic)
            .or_default()
            .push(replica.tp.partition);
    }
    let request = AlterReplicaLogDirsRequest::default().with_dirs(
        by_dir
            .into_iter()
            .map(|(dir, topics)| {
                AlterReplicaLogDir::default()
                    .with_path(StrBytes::from_string(dir.to_string()))
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(topic, partitions)| {
                                AlterReplicaLogDirTopic::default()
                                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    let connection = cluster.broker(broker).await?;
    let response = connection.send(&request).await?;
    let mut answered: BTreeMap<Tp, Option<ResponseError>> = BTreeMap::new();
    for topic in &response.results {
        for p in &topic.partitions {
            let tp = Tp {
                topic: topic.topic_name.to_string(),
                partition: p.partition_index,
            };
            answered.insert(tp, ResponseError::try_from_code(p.error_code));
        }
    }
    log_dirs
        .keys()
        .filter(|r| r.broker == broker)
        .map(|replica| match answered.get(&replica.tp) {
            Some(error) => Ok((replica.clone(), *error)),
            None => Err(WireError::Protocol {
                addr: connection.addr().to_string(),
                message: format!("the answer did not contain a result for replica {replica}"),
            }),
        })
        .collect()
}

/// Kafka's name of an error code: `LOG_DIR_NOT_FOUND`.
fn error_name(error: ResponseError) -> String {
    let camel = error.to_string();
    if matches!(error, ResponseError::Unknown(_)) {
        return camel;
    }
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// What `verify` reports of one partition.
#[derive(Debug, PartialEq, Eq)]
enum State {
    InProgress,
    Completed,
    /// No reassignment runs, but the replicas are not the target's.
    Differs {
        current: Vec<i32>,
    },
}

fn state_line(tp: &Tp, target: &[i32], state: &State) -> String {
    match state {
        State::InProgress => format!("Reassignment of partition {tp} is still in progress."),
        State::Completed => format!("Reassignment of partition {tp} is completed."),
        State::Differs { current } => format!(
            "There is no active reassignment of partition {tp}, but replica set is {} rather \
             than {}.",
            crate::output::id_list(current),
            crate::output::id_list(target)
        ),
    }
}

async fn verify(args: VerifyArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let text = read_file(&args.reassignment_json_file)?;
    let targets = parse_reassignment(&text)?;
    let mut cluster = connect(conn, settings).await?;
    let running = ongoing(&mut cluster, None)
        .await
        .map_err(|e| explain(conn, "cannot list the partition reassignments", e))?;
    let topics: Vec<String> = targets
        .iter()
        .map(|(tp, _)| tp.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut current = BTreeMap::new();
    for topic in &topics {
        // A topic that is gone has no replicas (Kafka reports it as differing).
        match current_assignment(&mut cluster, std::slice::from_ref(topic)).await {
            Ok(found) => current.extend(found),
            Err(WireError::UnknownTopic(_)) => {}
            Err(e) => return Err(explain(conn, "cannot describe the topics", e)),
        }
    }
    let mut lines = vec!["Status of partition reassignment:".to_string()];
    let sorted: BTreeMap<&Tp, &Vec<i32>> = targets.iter().map(|(tp, r)| (tp, r)).collect();
    for (tp, target) in sorted {
        let state = if running.contains_key(tp) {
            State::InProgress
        } else {
            let replicas = current.get(tp).cloned().unwrap_or_default();
            if replicas == *target {
                State::Completed
            } else {
                State::Differs { current: replicas }
            }
        };
        lines.push(state_line(tp, target, &state));
    }
    say!("{}", lines.join("\n"));
    if running.is_empty() && !args.preserve_throttles {
        clear_throttles(&mut cluster, conn, &targets).await?;
    }
    Ok(())
}

/// Kafka's `clearAllThrottles`: the rates on every broker (the live ones and those the
/// file names) and the throttled replicas of the file's topics. A broker that cannot be
/// reached keeps its rate (named on stderr).
async fn clear_throttles(
    cluster: &mut Cluster,
    conn: &ConnectArgs,
    targets: &[(Tp, Vec<i32>)],
) -> anyhow::Result<()> {
    let live: BTreeSet<i32> = cluster_brokers(cluster, false)
        .await
        .map_err(|e| explain(conn, "cannot describe the cluster", e))?
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    let mut brokers = live.clone();
    brokers.extend(targets.iter().flat_map(|(_, r)| r.iter().copied()));
    let brokers: Vec<i32> = brokers.into_iter().collect();
    say!(
        "Clearing broker-level throttles on broker{} {}",
        if brokers.len() == 1 { "" } else { "s" },
        crate::output::id_list(&brokers)
    );
    let rates = [
        (LEADER_THROTTLED_RATE, None),
        (FOLLOWER_THROTTLED_RATE, None),
    ];
    for id in &brokers {
        if !live.contains(id) {
            note!("broker {id} is not running: its replication throttle rates stay set");
            continue;
        }
        let cleared = match cluster.broker(*id).await {
            Ok(connection) => {
                alter_configs(connection, RESOURCE_BROKER, &id.to_string(), &rates).await
            }
            Err(e) => Err(e),
        };
        cleared.map_err(|e| {
            explain(
                conn,
                &format!("cannot clear the throttle of broker {id}"),
                e,
            )
        })?;
    }
    let topics: Vec<String> = targets
        .iter()
        .map(|(tp, _)| tp.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    say!(
        "Clearing topic-level throttles on topic{} {}",
        if topics.len() == 1 { "" } else { "s" },
        topics.join(",")
    );
    let replicas = [
        (LEADER_THROTTLED_REPLICAS, None),
        (FOLLOWER_THROTTLED_REPLICAS, None),
    ];
    for topic in &topics {
        match alter_configs(cluster.bootstrap(), RESOURCE_TOPIC, topic, &replicas).await {
            Ok(()) => {}
            // A topic deleted meanwhile has no throttle left to clear.
            Err(e) if e.kafka() == Some(ResponseError::UnknownTopicOrPartition) => {}
            Err(e) => {
                return Err(explain(
                    conn,
                    &format!("cannot clear the throttle of topic {topic}"),
                    e,
                ))
            }
        }
    }
    Ok(())
}

async fn cancel(args: CancelArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let text = read_file(&args.reassignment_json_file)?;
    let targets = parse_reassignment(&text)?;
    let mut cluster = connect(conn, settings).await?;
    let partitions: Vec<Tp> = targets.iter().map(|(tp, _)| tp.clone()).collect();
    let running = ongoing(&mut cluster, Some(&partitions))
        .await
        .map_err(|e| explain(conn, "cannot list the partition reassignments", e))?;
    if running.is_empty() {
        say!("None of the specified partition reassignments are active.");
    } else {
        let cancels = running.keys().map(|tp| (tp.clone(), None)).collect();
        let errors = alter_reassignments(&mut cluster, &cancels, true)
            .await
            .map_err(|e| explain(conn, "cannot cancel the partition reassignments", e))?;
        let failed: Vec<String> = errors
            .iter()
            .filter_map(|(tp, e)| e.as_ref().map(|e| format!("{tp}: {e}")))
            .collect();
        if !failed.is_empty() {
            bail!(
                "Error cancelling partition reassignment{} for:\n{}",
                if failed.len() == 1 { "" } else { "s" },
                failed.join("\n")
            );
        }
        say!(
            "Successfully cancelled partition reassignment{} for: {}",
            if running.len() == 1 { "" } else { "s" },
            running
                .keys()
                .map(Tp::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    if !args.preserve_throttles {
        clear_throttles(&mut cluster, conn, &targets).await?;
    }
    Ok(())
}

async fn list(args: ListArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let mut cluster = connect(conn, settings).await?;
    let running = ongoing(&mut cluster, None)
        .await
        .map_err(|e| explain(conn, "cannot list the partition reassignments", e))?;
    if running.is_empty() {
        say!("No partition reassignments found.");
        return Ok(());
    }
    say!("Current partition reassignments:");
    for (tp, o) in &running {
        let mut line = format!("{tp}: replicas: {}.", crate::output::id_list(&o.replicas));
        if !o.adding.is_empty() {
            line.push_str(&format!(" adding: {}.", crate::output::id_list(&o.adding)));
        }
        if !o.removing.is_empty() {
            line.push_str(&format!(
                " removing: {}.",
                crate::output::id_list(&o.removing)
            ));
        }
        say!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partition: i32) -> Tp {
        Tp {
            topic: topic.into(),
            partition,
        }
    }

    #[test]
    fn reassignment_json_reads_and_writes_kafkas_format() {
        let text = r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3],"log_dirs":["any","any"]},{"topic":"t","partition":1,"replicas":[1]}]}"#;
        let parsed = parse_reassignment(text).unwrap();
        assert_eq!(
            parsed,
            vec![(tp("t", 0), vec![2, 3]), (tp("t", 1), vec![1])]
        );
        let assignment: BTreeMap<Tp, Vec<i32>> = parsed.into_iter().collect();
        assert_eq!(
            assignment_json(&assignment),
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3],"log_dirs":["any","any"]},{"topic":"t","partition":1,"replicas":[1],"log_dirs":["any"]}]}"#
        );
        // No version means 1; others are refused.
        assert!(parse_reassignment(r#"{"partitions":[]}"#)
            .unwrap()
            .is_empty());
        let err = parse_reassignment(r#"{"version":2,"partitions":[]}"#).unwrap_err();
        assert_eq!(err.to_string(), "Not supported version field value 2");
        // Log dirs other than "any" are the replicas' (replica i on broker replicas[i]).
        let dirs = r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","/d"]}]}"#;
        let parsed = parse_reassignment_with_dirs(dirs).unwrap();
        assert_eq!(parsed.partitions, vec![(tp("t", 0), vec![1, 2])]);
        let replica = Replica {
            tp: tp("t", 0),
            broker: 2,
        };
        assert_eq!(replica.to_string(), "t-0-2");
        assert_eq!(parsed.log_dirs, [(replica, "/d".to_string())].into());
        let mismatch =
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}"#;
        assert!(parse_reassignment(mismatch)
            .unwrap_err()
            .to_string()
            .starts_with("Size of replicas list [1, 2] is different"));
    }

    #[test]
    fn errors_are_named_as_kafka_names_them() {
        assert_eq!(
            error_name(ResponseError::LogDirNotFound),
            "LOG_DIR_NOT_FOUND"
        );
        assert_eq!(
            error_name(ResponseError::KafkaStorageError),
            "KAFKA_STORAGE_ERROR"
        );
        assert_eq!(
            error_name(ResponseError::Unknown(-42)),
            "Unknown error code: -42"
        );
    }

    #[test]
    fn execute_refuses_what_kafka_refuses() {
        let msg =
            |parts: &[(Tp, Vec<i32>)]| check_execute_assignment(parts).unwrap_err().to_string();
        assert_eq!(msg(&[]), "Partition reassignment list cannot be empty");
        assert_eq!(
            msg(&[(tp("t", 0), vec![])]),
            "Partition replica list cannot be empty"
        );
        assert_eq!(
            msg(&[(tp("t", 0), vec![1]), (tp("t", 0), vec![2])]),
            "Partition reassignment contains duplicate topic partitions: t-0"
        );
        assert_eq!(
            msg(&[(tp("t", 0), vec![1, 1, 2, 2])]),
            "Partition replica lists may not contain duplicate entries: t-0 contains multiple \
             entries for 1,2"
        );
    }

    #[test]
    fn generate_arguments() {
        let (brokers, topics) = parse_generate_args(
            "1,2,3",
            r#"{"topics":[{"topic":"a"},{"topic":"b"}],"version":1}"#,
        )
        .unwrap();
        assert_eq!(
            (brokers, topics),
            (vec![1, 2, 3], vec!["a".into(), "b".into()])
        );
        assert_eq!(
            parse_generate_args("1,1", r#"{"topics":[]}"#)
                .unwrap_err()
                .to_string(),
            "Broker list contains duplicate entries: 1"
        );
        assert!(parse_generate_args("1,x", r#"{"topics":[]}"#).is_err());
        assert_eq!(
            parse_generate_args("1", r#"{"topics":[{"topic":"a"},{"topic":"a"}]}"#)
                .unwrap_err()
                .to_string(),
            "List of topics to reassign contains duplicate entries: a"
        );
    }

    #[test]
    fn proposals_follow_kafkas_round_robin() {
        // Kafka's AdminUtils example: 5 brokers, 10 partitions, RF 3, start 0.
        let brokers: Vec<(i32, Option<String>)> = (0..5).map(|id| (id, None)).collect();
        let a = assign_replicas(&brokers, 10, 3, (0, 0)).unwrap();
        assert_eq!(a[&0], vec![0, 1, 2]);
        assert_eq!(a[&4], vec![4, 0, 1]);
        assert_eq!(a[&5], vec![0, 2, 3]);
        assert_eq!(a[&9], vec![4, 1, 2]);
        // Rack-aware: Kafka's example of 6 brokers over 3 racks.
        let racks = ["rack1", "rack3", "rack3", "rack2", "rack2", "rack1"];
        let brokers: Vec<(i32, Option<String>)> = racks
            .iter()
            .enumerate()
            .map(|(id, rack)| (id as i32, Some(rack.to_string())))
            .collect();
        let a = assign_replicas(&brokers, 7, 3, (0, 0)).unwrap();
        assert_eq!(a[&0], vec![0, 3, 1]);
        assert_eq!(a[&1], vec![3, 1, 5]);
        assert_eq!(a[&5], vec![2, 0, 3]);
        assert_eq!(a[&6], vec![0, 4, 2]);
        for replicas in a.values() {
            let used: BTreeSet<&str> = replicas.iter().map(|id| racks[*id as usize]).collect();
            assert_eq!(used.len(), 3);
        }
        assert!(assign_replicas(&brokers[..2], 1, 3, (0, 0)).is_err());
        let mixed = vec![(1, Some("r".to_string())), (2, None)];
        assert!(assign_replicas(&mixed, 1, 1, (0, 0))
            .unwrap_err()
            .to_string()
            .contains("--disable-rack-aware"));
    }

    #[test]
    fn throttles_name_the_moving_replicas() {
        let current: BTreeMap<Tp, Vec<i32>> =
            [(tp("t", 0), vec![1, 2]), (tp("t", 1), vec![2, 3])].into();
        let proposed: BTreeMap<Tp, Vec<i32>> =
            [(tp("t", 0), vec![3, 2]), (tp("t", 1), vec![2, 3])].into();
        let moves = moves(&BTreeMap::new(), &proposed, &current);
        assert_eq!(
            throttled_replicas(&moves)["t"],
            ("0:1,0:2,1:2,1:3".to_string(), "0:3".to_string())
        );
        // An ongoing reassignment's sources are its original replicas.
        let ongoing: BTreeMap<Tp, Ongoing> = [(
            tp("t", 0),
            Ongoing {
                replicas: vec![4, 1, 2],
                adding: vec![4],
                removing: vec![],
            },
        )]
        .into();
        let moves = super::moves(&ongoing, &proposed, &current);
        assert_eq!(moves[&tp("t", 0)].0, [1, 2].into());
    }

    #[test]
    fn verify_lines_read_as_kafkas() {
        assert_eq!(
            state_line(&tp("t", 0), &[2, 3], &State::Completed),
            "Reassignment of partition t-0 is completed."
        );
        assert_eq!(
            state_line(&tp("t", 0), &[2, 3], &State::InProgress),
            "Reassignment of partition t-0 is still in progress."
        );
        assert_eq!(
            state_line(&tp("t", 0), &[2, 3], &State::Differs { current: vec![1] }),
            "There is no active reassignment of partition t-0, but replica set is 1 rather than 2,3."
        );
    }
}
