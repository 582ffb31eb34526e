//! `moldau transactions list|describe|describe-producers|abort`, like kafka-transactions:
//! find and end hanging transactions. librdkafka has no API for these requests, so they
//! go over [`moldau_wire`].

use anyhow::{anyhow, bail};
use clap::{ArgGroup, Args, Subcommand};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::describe_producers_response::ProducerState;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeTransactionsRequest, ListTransactionsRequest, ProducerId,
    TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use moldau_wire::{check, retrying, ClientSettings, Cluster, CoordinatorType, WireError};
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::output::{print_json, print_table, table};
use crate::Failure;

#[derive(Subcommand)]
pub enum TransactionsCommand {
    /// List the transactional ids every broker coordinates, with their state.
    List(ListArgs),
    /// Show one transactional id as its coordinator sees it.
    Describe(DescribeArgs),
    /// Show the active producers of a partition and where their open transactions start.
    DescribeProducers(DescribeProducersArgs),
    /// Abort a hanging transaction on one partition by writing its ABORT marker.
    Abort(AbortArgs),
}

/// Transaction states as the coordinator names them (ListTransactions' state filter).
const STATES: [&str; 8] = [
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "PrepareEpochFence",
    "Dead",
];

/// A state name in any case, as the coordinator spells it.
fn parse_state(s: &str) -> Result<String, String> {
    STATES
        .iter()
        .find(|state| state.eq_ignore_ascii_case(s))
        .map(|state| state.to_string())
        .ok_or_else(|| {
            format!(
                "unknown transaction state '{s}' (one of {})",
                STATES.join(", ")
            )
        })
}

fn parse_transactional_id(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("transactional id is empty".to_string());
    }
    Ok(s.to_string())
}

#[derive(Args)]
pub struct ListArgs {
    /// Only transactions in this state (repeatable), e.g. Ongoing.
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    state: Vec<String>,
    /// Only transactions of this producer id (repeatable).
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(i64).range(0..))]
    producer_id: Vec<i64>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct DescribeArgs {
    /// The transactional id.
    #[arg(long, value_parser = parse_transactional_id)]
    transactional_id: String,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct DescribeProducersArgs {
    /// The topic.
    #[arg(long, short = 't', value_parser = crate::args::parse_topic)]
    topic: String,
    /// The partition.
    #[arg(long, short = 'p', value_parser = clap::value_parser!(i32).range(0..))]
    partition: i32,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["start_offset", "producer_id"])))]
pub struct AbortArgs {
    /// The topic.
    #[arg(long, short = 't', value_parser = crate::args::parse_topic)]
    topic: String,
    /// The partition.
    #[arg(long, short = 'p', value_parser = clap::value_parser!(i32).range(0..))]
    partition: i32,
    /// Abort the open transaction that starts at this offset (found with DescribeProducers).
    #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
    start_offset: Option<i64>,
    /// Abort this producer's open transaction (with --producer-epoch and --coordinator-epoch).
    #[arg(long, value_name = "ID", requires_all = ["producer_epoch", "coordinator_epoch"],
          value_parser = clap::value_parser!(i64).range(0..))]
    producer_id: Option<i64>,
    /// The producer's epoch, as describe-producers shows it.
    #[arg(long, value_name = "EPOCH", requires = "producer_id",
          value_parser = clap::value_parser!(i16).range(0..))]
    producer_epoch: Option<i16>,
    /// The coordinator epoch for the marker, as describe-producers shows it (0 when none).
    #[arg(long, value_name = "EPOCH", requires = "producer_id",
          value_parser = clap::value_parser!(i32).range(0..))]
    coordinator_epoch: Option<i32>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(cmd: TransactionsCommand) -> Result<(), Failure> {
    let conn = match &cmd {
        TransactionsCommand::List(a) => &a.conn,
        TransactionsCommand::Describe(a) => &a.conn,
        TransactionsCommand::DescribeProducers(a) => &a.conn,
        TransactionsCommand::Abort(a) => &a.conn,
    };
    let conn = conn.clone();
    run_wire(&conn, |settings| async move {
        match cmd {
            TransactionsCommand::List(args) => list(args, settings).await,
            TransactionsCommand::Describe(args) => describe(args, settings).await,
            TransactionsCommand::DescribeProducers(args) => {
                describe_producers(args, settings).await
            }
            TransactionsCommand::Abort(args) => abort(args, settings).await,
        }
    })
}

/// Runs a command that speaks the protocol itself (`moldau_wire`): its client settings from
/// `conn` (exit code 2 when they are invalid), then `command` on a runtime.
pub(crate) fn run_wire<F, Fut>(conn: &ConnectArgs, command: F) -> Result<(), Failure>
where
    F: FnOnce(ClientSettings) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let settings = settings(conn).map_err(|error| Failure { code: 2, error })?;
    let runtime = crate::client::runtime()?;
    runtime.block_on(command(settings)).map_err(Failure::from)
}

/// These commands speak the protocol themselves: of the client properties
/// (`--command-config`, then `-X`) they take `client.id` and the security settings
/// (`WireSecurity`), built once for the command.
fn settings(conn: &ConnectArgs) -> anyhow::Result<ClientSettings> {
    let properties = crate::client::command_config::client_properties(conn)?;
    let security = crate::client::wire_settings::wire_security(&properties)?;
    Ok(ClientSettings {
        client_id: properties
            .get("client.id")
            .unwrap_or("moldau-cli")
            .to_string(),
        timeout: conn.request_timeout(),
        security,
    })
}

/// A wire error as one line, with a hint when the cluster was not reached.
pub(crate) fn explain(conn: &ConnectArgs, action: &str, e: WireError) -> anyhow::Error {
    if e.is_unreachable() {
        anyhow!(
            "{action}: {e} (is a broker running at {}?)",
            conn.bootstrap_server
        )
    } else {
        anyhow!("{action}: {e}")
    }
}

pub(crate) async fn connect(
    conn: &ConnectArgs,
    settings: ClientSettings,
) -> anyhow::Result<Cluster> {
    Cluster::connect(&conn.bootstrap_server, settings)
        .await
        .map_err(|e| explain(conn, "cannot reach the cluster", e))
}

fn dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

/// One row of `transactions list`.
#[derive(Serialize)]
struct ListedTransaction {
    transactional_id: String,
    coordinator: i32,
    producer_id: i64,
    transaction_state: String,
}

async fn list(args: ListArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let mut cluster = connect(conn, settings).await?;
    let request = ListTransactionsRequest::default()
        .with_state_filters(args.state.iter().cloned().map(StrBytes::from).collect())
        .with_producer_id_filters(args.producer_id.iter().copied().map(ProducerId).collect());
    let brokers: Vec<_> = cluster.brokers().cloned().collect();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    // Each broker coordinates its own share of the transactional ids.
    for broker in &brokers {
        // A broker still loading its transaction state answers COORDINATOR_LOAD_IN_PROGRESS.
        let answer = retrying(conn.request_timeout(), async || {
            let response = cluster.broker(broker.node_id).await?.send(&request).await?;
            check(response.error_code, None)?;
            Ok(response)
        })
        .await;
        match answer {
            Ok(response) => {
                if let Some(unknown) = response.unknown_state_filters.first() {
                    bail!(
                        "broker {} does not know the state '{unknown}'",
                        broker.node_id
                    );
                }
                rows.extend(
                    response
                        .transaction_states
                        .iter()
                        .map(|t| ListedTransaction {
                            transactional_id: t.transactional_id.to_string(),
                            coordinator: broker.node_id,
                            producer_id: t.producer_id.0,
                            transaction_state: t.transaction_state.to_string(),
                        }),
                );
            }
            Err(e) => failures.push((broker, e)),
        }
    }
    rows.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
    // What the reachable brokers said is printed even if another one failed.
    if args.output.output == OutputFormat::Json {
        print_json(&rows)?;
    } else {
        let mut t = table([
            "TRANSACTIONAL-ID",
            "COORDINATOR",
            "PRODUCER-ID",
            "TRANSACTION-STATE",
        ]);
        for r in &rows {
            t.add_row([
                r.transactional_id.clone(),
                r.coordinator.to_string(),
                r.producer_id.to_string(),
                r.transaction_state.clone(),
            ]);
        }
        print_table(&t);
    }
    if let Some((broker, e)) = failures.into_iter().next() {
        let action = format!(
            "cannot list the transactions of broker {} ({})",
            broker.node_id, broker.addr
        );
        return Err(explain(conn, &action, e));
    }
    Ok(())
}

/// A partition as Kafka's tools print it and as JSON carries it.
#[derive(Serialize)]
struct TopicPartition {
    topic: String,
    partition: i32,
}

#[derive(Serialize)]
struct TransactionDescription {
    coordinator_id: i32,
    transactional_id: String,
    producer_id: i64,
    producer_epoch: i16,
    transaction_state: String,
    transaction_timeout_ms: i32,
    current_transaction_start_time_ms: Option<i64>,
    transaction_duration_ms: Option<i64>,
    topic_partitions: Vec<TopicPartition>,
}

async fn describe(args: DescribeArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let id = &args.transactional_id;
    let action = format!("cannot describe transactional id '{id}'");
    let mut cluster = connect(conn, settings).await?;
    let request = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(StrBytes::from_string(id.clone()))]);
    // A coordinator that moved or is loading answers NOT_COORDINATOR or
    // COORDINATOR_LOAD_IN_PROGRESS: look it up again until the request timeout.
    let found = retrying(conn.request_timeout(), async || {
        let coordinator = cluster
            .find_coordinator(CoordinatorType::Transaction, id)
            .await?;
        let response = cluster.broker(coordinator).await?.send(&request).await?;
        let state = response
            .transaction_states
            .into_iter()
            .find(|s| s.transactional_id.as_str() == id.as_str())
            .ok_or_else(|| WireError::Kafka {
                error: ResponseError::UnknownServerError,
                message: Some("the coordinator's answer does not mention it".to_string()),
            })?;
        check(state.error_code, None)?;
        Ok((coordinator, state))
    })
    .await;
    let (coordinator, state) = match found {
        Ok(found) => found,
        Err(e) if e.kafka() == Some(ResponseError::TransactionalIdNotFound) => {
            bail!("transactional id '{id}' does not exist (TransactionalIdNotFound)")
        }
        Err(e) => return Err(explain(conn, &action, e)),
    };
    let start = Some(state.transaction_start_time_ms).filter(|ms| *ms >= 0);
    let mut topic_partitions: Vec<TopicPartition> = state
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| TopicPartition {
                topic: t.topic.to_string(),
                partition: *p,
            })
        })
        .collect();
    topic_partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let description = TransactionDescription {
        coordinator_id: coordinator,
        transactional_id: id.clone(),
        producer_id: state.producer_id.0,
        producer_epoch: state.producer_epoch,
        transaction_state: state.transaction_state.to_string(),
        transaction_timeout_ms: state.transaction_timeout_ms,
        current_transaction_start_time_ms: start,
        transaction_duration_ms: start.map(|s| (unix_now_ms() - s).max(0)),
        topic_partitions,
    };
    if args.output.output == OutputFormat::Json {
        return print_json(&description);
    }
    let d = &description;
    let partitions: Vec<String> = d
        .topic_partitions
        .iter()
        .map(|tp| format!("{}-{}", tp.topic, tp.partition))
        .collect();
    let mut t = table([
        "COORDINATOR-ID",
        "TRANSACTIONAL-ID",
        "PRODUCER-ID",
        "PRODUCER-EPOCH",
        "TRANSACTION-STATE",
        "TRANSACTION-TIMEOUT-MS",
        "CURRENT-TRANSACTION-START-TIME-MS",
        "TRANSACTION-DURATION-MS",
        "TOPIC-PARTITIONS",
    ]);
    t.add_row([
        d.coordinator_id.to_string(),
        d.transactional_id.clone(),
        d.producer_id.to_string(),
        d.producer_epoch.to_string(),
        d.transaction_state.clone(),
        d.transaction_timeout_ms.to_string(),
        dash(&d.current_transaction_start_time_ms),
        dash(&d.transaction_duration_ms),
        if partitions.is_empty() {
            "-".to_string()
        } else {
            partitions.join(",")
        },
    ]);
    print_table(&t);
    Ok(())
}

/// One row of `transactions describe-producers`.
#[derive(Serialize)]
struct ActiveProducer {
    producer_id: i64,
    producer_epoch: i32,
    latest_coordinator_epoch: Option<i32>,
    last_sequence: i32,
    last_timestamp: i64,
    current_transaction_start_offset: Option<i64>,
}

impl From<&ProducerState> for ActiveProducer {
    fn from(p: &ProducerState) -> Self {
        ActiveProducer {
            producer_id: p.producer_id.0,
            producer_epoch: p.producer_epoch,
            // -1 is the protocol's "none" for both.
            latest_coordinator_epoch: Some(p.coordinator_epoch).filter(|e| *e >= 0),
            last_sequence: p.last_sequence,
            last_timestamp: p.last_timestamp,
            current_transaction_start_offset: Some(p.current_txn_start_offset).filter(|o| *o >= 0),
        }
    }
}

/// DescribeProducers for one partition, at its leader.
async fn active_producers(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
) -> Result<Vec<ActiveProducer>, WireError> {
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_indexes(vec![partition])]);
    cluster
        .send_to_leader(topic, partition, &request, |response| {
            let answer = response
                .topics
                .iter()
                .filter(|t| t.name.as_str() == topic)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == partition)
                .ok_or_else(|| WireError::Kafka {
                    error: ResponseError::UnknownServerError,
                    message: Some(format!(
                        "the leader's answer does not mention {topic}-{partition}"
                    )),
                })?;
            check(answer.error_code, answer.error_message.as_ref())?;
            Ok(answer
                .active_producers
                .iter()
                .map(ActiveProducer::from)
                .collect())
        })
        .await
}

async fn describe_producers(
    args: DescribeProducersArgs,
    settings: ClientSettings,
) -> anyhow::Result<()> {
    let conn = &args.conn;
    let (topic, partition) = (&args.topic, args.partition);
    let mut cluster = connect(conn, settings).await?;
    let mut producers = active_producers(&mut cluster, topic, partition)
        .await
        .map_err(|e| {
            explain(
                conn,
                &format!("cannot describe the producers of {topic}-{partition}"),
                e,
            )
        })?;
    producers.sort_by_key(|p| p.producer_id);
    if args.output.output == OutputFormat::Json {
        return print_json(&producers);
    }
    let mut t = table([
        "PRODUCER-ID",
        "PRODUCER-EPOCH",
        "LATEST-COORDINATOR-EPOCH",
        "LAST-SEQUENCE",
        "LAST-TIMESTAMP",
        "CURRENT-TRANSACTION-START-OFFSET",
    ]);
    for p in &producers {
        t.add_row([
            p.producer_id.to_string(),
            p.producer_epoch.to_string(),
            dash(&p.latest_coordinator_epoch),
            p.last_sequence.to_string(),
            p.last_timestamp.to_string(),
            dash(&p.current_transaction_start_offset),
        ]);
    }
    print_table(&t);
    Ok(())
}

/// What `abort` wrote.
#[derive(Serialize)]
struct AbortResult {
    topic: String,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    /// The first offset of the transaction aborted, when found by `--start-offset`.
    start_offset: Option<i64>,
    result: &'static str,
}

async fn abort(args: AbortArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let (topic, partition) = (&args.topic, args.partition);
    let mut cluster = connect(conn, settings).await?;
    let (producer_id, producer_epoch, coordinator_epoch) = match args.start_offset {
        Some(offset) => {
            // Kafka's tool: the producer whose open transaction starts at that offset.
            let producers = active_producers(&mut cluster, topic, partition)
                .await
                .map_err(|e| {
                    explain(
                        conn,
                        &format!("cannot describe the producers of {topic}-{partition}"),
                        e,
                    )
                })?;
            let Some(p) = producers
                .iter()
                .find(|p| p.current_transaction_start_offset == Some(offset))
            else {
                bail!("no open transaction starts at offset {offset} of {topic}-{partition}");
            };
            let epoch = i16::try_from(p.producer_epoch)
                .map_err(|_| anyhow!("producer epoch {} out of range", p.producer_epoch))?;
            (
                p.producer_id,
                epoch,
                p.latest_coordinator_epoch.unwrap_or(0),
            )
        }
        None => match (
            args.producer_id,
            args.producer_epoch,
            args.coordinator_epoch,
        ) {
            (Some(id), Some(epoch), Some(coordinator_epoch)) => (id, epoch, coordinator_epoch),
            // clap requires the three together.
            _ => bail!("--producer-id needs --producer-epoch and --coordinator-epoch"),
        },
    };
    // Admin.abortTransaction: an ABORT marker written by the partition leader, as if the
    // transaction coordinator had sent it.
    let request =
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(coordinator_epoch)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.clone())))
                .with_partition_indexes(vec![partition])])]);
    cluster
        .send_to_leader(topic, partition, &request, |response| {
            let answer = response
                .markers
                .iter()
                .filter(|m| m.producer_id.0 == producer_id)
                .flat_map(|m| &m.topics)
                .filter(|t| t.name.as_str() == topic.as_str())
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == partition)
                .ok_or_else(|| WireError::Kafka {
                    error: ResponseError::UnknownServerError,
                    message: Some(format!(
                        "the leader's answer does not mention {topic}-{partition}"
                    )),
                })?;
            check(answer.error_code, None)
        })
        .await
        .map_err(|e| {
            let hint = match e.kafka() {
                Some(ResponseError::InvalidProducerEpoch | ResponseError::ProducerFenced) => {
                    " (the producer has a newer epoch on this partition; see describe-producers)"
                }
                Some(ResponseError::TransactionCoordinatorFenced) => {
                    " (the partition has seen a newer coordinator epoch; see describe-producers)"
                }
                _ => "",
            };
            let action = format!(
                "cannot abort the transaction of producer {producer_id} (epoch {producer_epoch}) \
                 on {topic}-{partition}"
            );
            anyhow!("{:#}{hint}", explain(conn, &action, e))
        })?;
    let result = AbortResult {
        topic: topic.clone(),
        partition,
        producer_id,
        producer_epoch,
        coordinator_epoch,
        start_offset: args.start_offset,
        result: "aborted",
    };
    if args.output.output == OutputFormat::Json {
        return print_json(&result);
    }
    let producer = format!(
        "producer {producer_id} (epoch {producer_epoch}, coordinator epoch {coordinator_epoch})"
    );
    // With explicit ids, as with Kafka's tool, the marker is written whether or not the
    // producer has a transaction open there (it then changes nothing): say only what we know.
    match args.start_offset {
        Some(offset) => say!(
            "Aborted the transaction of {producer} that started at offset {offset} of \
             {topic}-{partition}."
        ),
        None => say!("Wrote an ABORT marker for {producer} to {topic}-{partition}."),
    }
    Ok(())
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_in_any_case() {
        assert_eq!(parse_state("ongoing").unwrap(), "Ongoing");
        assert_eq!(parse_state("PREPAREABORT").unwrap(), "PrepareAbort");
        assert!(parse_state("Running").unwrap_err().contains("Ongoing"));
    }
}
