//! `moldau leaders elect`: leader elections on demand, as `kafka-leader-election` runs
//! them. One ElectLeaders request to the active controller (Metadata's controller id; any
//! broker forwards it there): PREFERRED moves leadership back to each partition's first
//! replica where that one is in sync, UNCLEAN gives leaderless partitions a leader, an
//! out-of-sync replica if need be. The output is the tool's: the partitions elected, those
//! that needed nothing, and one line per partition that could not be elected (exit 1).

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::{Message, StrBytes};
use kafka_protocol::ResponseError;
use moldau_wire::{check, retrying, ClientSettings, WireError};
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::output::print_json;
use crate::transactions::{connect, explain, run_wire};
use crate::Failure;

#[derive(Subcommand)]
pub enum LeadersCommand {
    /// Elect partition leaders: the preferred replicas, or (unclean) any replica of
    /// partitions that have no leader, like kafka-leader-election.
    #[command(group(
        ArgGroup::new("partitions")
            .required(true)
            .args(["all_topic_partitions", "topic", "path_to_json_file"])
    ))]
    Elect(ElectArgs),
}

/// Kafka's election types.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    /// The first replica of each partition leads again, where it is in sync.
    Preferred,
    /// A partition without a leader gets one, out of sync if no in-sync replica is up
    /// (records only the lost replicas had are gone).
    Unclean,
}

impl ElectionType {
    fn wire(self) -> i8 {
        match self {
            ElectionType::Preferred => 0,
            ElectionType::Unclean => 1,
        }
    }

    /// As Kafka's tool prints it.
    fn name(self) -> &'static str {
        match self {
            ElectionType::Preferred => "PREFERRED",
            ElectionType::Unclean => "UNCLEAN",
        }
    }
}

#[derive(Args)]
pub struct ElectArgs {
    /// Which election to run.
    #[arg(long, value_enum, ignore_case = true)]
    election_type: ElectionType,
    /// Every partition of every topic (only those that changed or failed are reported).
    #[arg(long)]
    all_topic_partitions: bool,
    /// One topic: the partition given with --partition, else every partition of it.
    #[arg(long, value_parser = crate::args::parse_topic)]
    topic: Option<String>,
    /// The partition of --topic.
    #[arg(long, requires = "topic", value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// A JSON file naming the partitions:
    /// {"partitions": [{"topic": "foo", "partition": 1}, ...]}.
    #[arg(long, value_name = "FILE")]
    path_to_json_file: Option<PathBuf>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(cmd: LeadersCommand) -> Result<(), Failure> {
    match cmd {
        LeadersCommand::Elect(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| elect(args, settings))
        }
    }
}

/// Partitions by topic, in the order first named.
type Targets = Vec<(String, Vec<i32>)>;

/// kafka-leader-election's JSON file: `{"partitions": [{"topic": T, "partition": P}]}`,
/// no partition twice.
fn parse_json_file(text: &str) -> anyhow::Result<Targets> {
    if text.trim().is_empty() {
        bail!("Replica election data is empty");
    }
    let value: serde_json::Value =
        serde_json::from_str(text).context("the file is not valid JSON")?;
    let list = value
        .get("partitions")
        .ok_or_else(|| anyhow!("Replica election data is missing \"partitions\" field"))?
        .as_array()
        .ok_or_else(|| anyhow!("\"partitions\" must be an array"))?;
    let mut seen = BTreeSet::new();
    let mut duplicates = BTreeSet::new();
    let mut targets: Targets = Vec::new();
    for entry in list {
        let topic = entry
            .get("topic")
            .and_then(|t| t.as_str())
            .ok_or_else(|| anyhow!("every partition needs a \"topic\" string: {entry}"))?;
        let partition = entry
            .get("partition")
            .and_then(|p| p.as_i64())
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| anyhow!("every partition needs a \"partition\" number: {entry}"))?;
        if !seen.insert((topic.to_string(), partition)) {
            duplicates.insert(format!("{topic}-{partition}"));
            continue;
        }
        match targets.iter_mut().find(|(t, _)| t == topic) {
            Some((_, partitions)) => partitions.push(partition),
            None => targets.push((topic.to_string(), vec![partition])),
        }
    }
    if !duplicates.is_empty() {
        bail!(
            "Replica election data contains duplicate partitions: {}",
            duplicates.into_iter().collect::<Vec<_>>().join(",")
        );
    }
    Ok(targets)
}

/// What happened to each partition the controller answered for.
#[derive(Default, Serialize)]
struct Outcome {
    election_type: &'static str,
    /// A new leader was elected.
    elected: Vec<PartitionRef>,
    /// A valid leader was in place already (ELECTION_NOT_NEEDED).
    not_needed: Vec<PartitionRef>,
    failed: Vec<FailedPartition>,
}

#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct PartitionRef {
    topic: String,
    partition: i32,
}

#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct FailedPartition {
    topic: String,
    partition: i32,
    error: String,
    message: Option<String>,
}

fn outcome(election: ElectionType, response: &ElectLeadersResponse) -> Outcome {
    let mut outcome = Outcome {
        election_type: election.name(),
        ..Outcome::default()
    };
    for topic in &response.replica_election_results {
        for p in &topic.partition_result {
            let topic = topic.topic.to_string();
            let partition = p.partition_id;
            match ResponseError::try_from_code(p.error_code) {
                None => outcome.elected.push(PartitionRef { topic, partition }),
                Some(ResponseError::ElectionNotNeeded) => {
                    outcome.not_needed.push(PartitionRef { topic, partition })
                }
                Some(error) => outcome.failed.push(FailedPartition {
                    topic,
                    partition,
                    error: error.to_string(),
                    message: p.error_message.as_ref().map(|m| m.to_string()),
                }),
            }
        }
    }
    outcome.elected.sort();
    outcome.not_needed.sort();
    outcome.failed.sort();
    outcome
}

fn list(partitions: &[PartitionRef]) -> String {
    partitions
        .iter()
        .map(|p| format!("{}-{}", p.topic, p.partition))
        .collect::<Vec<_>>()
        .join(", ")
}

/// kafka-leader-election's lines.
fn print_outcome(outcome: &Outcome) {
    let kind = outcome.election_type;
    if !outcome.elected.is_empty() {
        say!(
            "Successfully completed leader election ({kind}) for partitions {}",
            list(&outcome.elected)
        );
    }
    if !outcome.not_needed.is_empty() {
        say!(
            "Valid replica already elected for partitions {}",
            list(&outcome.not_needed)
        );
    }
    for f in &outcome.failed {
        let reason = match f.message.as_deref() {
            Some(m) if !m.is_empty() => format!("{}: {m}", f.error),
            _ => f.error.clone(),
        };
        say!(
            "Error completing leader election ({kind}) for partition: {}-{}: {reason}",
            f.topic,
            f.partition
        );
    }
    if outcome.elected.is_empty() && outcome.not_needed.is_empty() && outcome.failed.is_empty() {
        say!("No partition needed a leader election ({kind})");
    }
}

async fn elect(args: ElectArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let election = args.election_type;
    let mut targets: Option<Targets> = match &args.path_to_json_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(parse_json_file(&text).with_context(|| format!("{}", path.display()))?)
        }
        None => None,
    };
    let timeout = settings.timeout;
    let mut cluster = connect(conn, settings).await?;
    if let Some(topic) = &args.topic {
        let partitions = match args.partition {
            Some(partition) => vec![partition],
            None => {
                let metadata = cluster
                    .metadata(Some(&[topic.as_str()]))
                    .await
                    .map_err(|e| explain(conn, "cannot read the topic's partitions", e))?;
                let found = metadata
                    .topics
                    .iter()
                    .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(topic.as_str()))
                    .filter(|t| t.error_code == 0)
                    .ok_or_else(|| anyhow!("topic '{topic}' does not exist"))?;
                let mut partitions: Vec<i32> =
                    found.partitions.iter().map(|p| p.partition_index).collect();
                partitions.sort();
                partitions
            }
        };
        targets = Some(vec![(topic.clone(), partitions)]);
    }
    let topic_partitions = targets.as_ref().map(|targets| {
        targets
            .iter()
            .map(|(topic, partitions)| {
                TopicPartitions::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(partitions.clone())
            })
            .collect::<Vec<_>>()
    });
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // To the active controller; NOT_CONTROLLER (leadership moving) is retried.
    let response = retrying(timeout, async || {
        let metadata = cluster.metadata(Some(&[])).await?;
        let controller = metadata.controller_id.0;
        let connection = if controller >= 0 {
            cluster.broker(controller).await?
        } else {
            cluster.bootstrap()
        };
        let version = connection.version::<ElectLeadersRequest>()?;
        if version == 0 && election != ElectionType::Preferred {
            return Err(WireError::Unsupported {
                addr: connection.addr().to_string(),
                api: kafka_protocol::messages::ApiKey::ElectLeaders,
                ours: ElectLeadersRequest::VERSIONS,
                theirs: Some(kafka_protocol::protocol::VersionRange { min: 0, max: 0 }),
            });
        }
        let request = ElectLeadersRequest::default()
            .with_election_type(if version >= 1 { election.wire() } else { 0 })
            .with_topic_partitions(topic_partitions.clone())
            .with_timeout_ms(timeout_ms);
        let response = connection.send(&request).await?;
        check(response.error_code, None)?;
        Ok(response)
    })
    .await
    .map_err(|e| explain(conn, "cannot elect leaders", e))?;
    let outcome = outcome(election, &response);
    if args.output.output == OutputFormat::Json {
        print_json(&outcome)?;
    } else {
        print_outcome(&outcome);
    }
    if !outcome.failed.is_empty() {
        bail!("{} replica(s) could not be elected", outcome.failed.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::elect_leaders_response::{
        PartitionResult, ReplicaElectionResult,
    };

    use super::*;

    #[test]
    fn the_json_file_is_read_as_kafka_leader_election_reads_it() {
        let targets = parse_json_file(
            r#"{"partitions": [{"topic": "a", "partition": 1}, {"topic": "b", "partition": 0},
                {"topic": "a", "partition": 0}]}"#,
        )
        .unwrap();
        assert_eq!(
            targets,
            vec![("a".to_string(), vec![1, 0]), ("b".to_string(), vec![0])]
        );
        let err = |text: &str| parse_json_file(text).unwrap_err().to_string();
        assert_eq!(err(" "), "Replica election data is empty");
        assert_eq!(
            err("{}"),
            "Replica election data is missing \"partitions\" field"
        );
        assert_eq!(
            err(
                r#"{"partitions": [{"topic": "a", "partition": 1}, {"topic": "a", "partition": 1}]}"#
            ),
            "Replica election data contains duplicate partitions: a-1"
        );
        assert!(err(r#"{"partitions": [{"topic": "a"}]}"#).contains("partition"));
        assert!(err("{").contains("not valid JSON"));
    }

    #[test]
    fn answers_are_sorted_into_elected_not_needed_and_failed() {
        let result =
            |p: i32, error: Option<ResponseError>| {
                PartitionResult::default()
                    .with_partition_id(p)
                    .with_error_code(error.map_or(0, |e| e.code()))
                    .with_error_message(error.map(|_| {
                        StrBytes::from_static_str("The preferred leader was not available.")
                    }))
            };
        let response = ElectLeadersResponse::default().with_replica_election_results(vec![
            ReplicaElectionResult::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partition_result(vec![
                    result(2, None),
                    result(0, None),
                    result(1, Some(ResponseError::ElectionNotNeeded)),
                    result(3, Some(ResponseError::PreferredLeaderNotAvailable)),
                ]),
        ]);
        let outcome = outcome(ElectionType::Preferred, &response);
        assert_eq!(list(&outcome.elected), "t-0, t-2");
        assert_eq!(list(&outcome.not_needed), "t-1");
        assert_eq!(outcome.failed.len(), 1);
        assert_eq!(outcome.failed[0].error, "PreferredLeaderNotAvailable");
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["election_type"], "PREFERRED");
        assert_eq!(json["elected"][1]["partition"], 2);
    }
}
