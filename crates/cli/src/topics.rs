//! `moldau topics create|list|describe|alter|delete`, like kafka-topics.

use anyhow::bail;
use clap::{Args, Subcommand};
use rdkafka::admin::{NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use serde::Serialize;

use crate::args::{parse_key_value, parse_topic, ConnectArgs, KeyValue, OutputArgs, OutputFormat};
use crate::client::{
    admin_client, admin_error, admin_options, describe_kafka_error, plain_consumer, runtime,
    topic_info, topic_infos, TopicInfo,
};
use crate::configs;
use crate::output::{id_list, print_json, print_table, table};

#[derive(Subcommand)]
pub enum TopicsCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topics with their partition count and replication factor.
    List(ListArgs),
    /// Show partitions (leader, replicas, ISR) and config overrides of topics.
    Describe(DescribeArgs),
    /// Add partitions to a topic or change its configs.
    Alter(AlterArgs),
    /// Delete topics.
    Delete(DeleteArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Name of the topic.
    #[arg(long, short = 't', value_parser = parse_topic)]
    topic: String,
    /// Number of partitions (default: the broker's num.partitions).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1_000_000))]
    partitions: Option<i32>,
    /// Replication factor (default: the broker's default.replication.factor).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=i16::MAX as i64))]
    replication_factor: Option<i32>,
    /// Topic config override (repeatable), e.g. --config retention.ms=3600000.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<KeyValue>,
    /// Succeed without changes if the topic already exists.
    #[arg(long)]
    if_not_exists: bool,
    /// Ask the broker to validate the request without creating the topic.
    #[arg(long)]
    validate_only: bool,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct ListArgs {
    /// Leave out internal topics (names starting with "__").
    #[arg(long)]
    exclude_internal: bool,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("filter").multiple(false).args([
    "under_replicated_partitions",
    "unavailable_partitions",
    "at_min_isr_partitions",
    "under_min_isr_partitions",
])))]
pub struct DescribeArgs {
    /// Topic to describe (default: all topics).
    #[arg(long, short = 't', value_parser = parse_topic)]
    topic: Option<String>,
    /// Only partitions whose in-sync replicas are fewer than their replicas.
    #[arg(long)]
    under_replicated_partitions: bool,
    /// Only partitions without an available leader.
    #[arg(long)]
    unavailable_partitions: bool,
    /// Only partitions whose in-sync replicas number exactly min.insync.replicas.
    #[arg(long)]
    at_min_isr_partitions: bool,
    /// Only partitions whose in-sync replicas are fewer than min.insync.replicas.
    #[arg(long)]
    under_min_isr_partitions: bool,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

impl DescribeArgs {
    /// Whether partition `p` passes the kafka-topics filter given (all do without one).
    fn keeps(&self, p: &crate::client::PartitionInfo, min_isr: usize) -> bool {
        if self.under_replicated_partitions {
            p.isr.len() < p.replicas.len()
        } else if self.unavailable_partitions {
            p.leader < 0
        } else if self.at_min_isr_partitions {
            p.isr.len() == min_isr
        } else if self.under_min_isr_partitions {
            p.isr.len() < min_isr
        } else {
            true
        }
    }

    fn filters(&self) -> bool {
        self.under_replicated_partitions
            || self.unavailable_partitions
            || self.at_min_isr_partitions
            || self.under_min_isr_partitions
    }
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
    .args(["partitions", "config", "delete_config"])))]
pub struct AlterArgs {
    /// Name of the topic.
    #[arg(long, short = 't', value_parser = parse_topic)]
    topic: String,
    /// New total number of partitions (can only grow).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    partitions: Option<u32>,
    /// Set a topic config (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<KeyValue>,
    /// Remove a topic config override, back to the broker default (repeatable).
    #[arg(long, value_name = "KEY")]
    delete_config: Vec<String>,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// Topic to delete (repeatable).
    #[arg(long, short = 't', required = true, value_parser = parse_topic)]
    topic: Vec<String>,
    /// Succeed for topics that do not exist.
    #[arg(long)]
    if_exists: bool,
    #[command(flatten)]
    conn: ConnectArgs,
}

pub fn run(cmd: TopicsCommand) -> anyhow::Result<()> {
    match cmd {
        TopicsCommand::Create(args) => create(args),
        TopicsCommand::List(args) => list(args),
        TopicsCommand::Describe(args) => describe(args),
        TopicsCommand::Alter(args) => alter(args),
        TopicsCommand::Delete(args) => delete(args),
    }
}

#[derive(Serialize)]
struct TopicChange<'a> {
    topic: &'a str,
    result: &'a str,
}

fn create(args: CreateArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let admin = admin_client(conn)?;
    let mut new_topic = NewTopic::new(
        &args.topic,
        args.partitions.unwrap_or(-1),
        TopicReplication::Fixed(args.replication_factor.unwrap_or(-1)),
    );
    for kv in &args.config {
        new_topic = new_topic.set(&kv.key, &kv.value);
    }
    let opts = admin_options(conn).validate_only(args.validate_only);
    let results = runtime()?
        .block_on(admin.create_topics([&new_topic], &opts))
        .map_err(|e| {
            anyhow::anyhow!(
                "create topic '{}' failed: {}",
                args.topic,
                describe_kafka_error(&e, conn)
            )
        })?;
    let mut outcome = if args.validate_only {
        "valid"
    } else {
        "created"
    };
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if args.if_not_exists => {
                outcome = "exists";
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                bail!("topic '{name}' already exists")
            }
            Err((name, code)) => {
                return Err(admin_error(
                    "create topic",
                    &format!("'{name}'"),
                    code,
                    conn,
                ))
            }
        }
    }
    match args.output.output {
        OutputFormat::Json => print_json(&TopicChange {
            topic: &args.topic,
            result: outcome,
        })?,
        OutputFormat::Table => match outcome {
            "created" => say!("Created topic {}.", args.topic),
            "valid" => say!("Topic {} would be created (validate only).", args.topic),
            _ => say!("Topic {} already exists.", args.topic),
        },
    }
    Ok(())
}

#[derive(Serialize)]
struct TopicSummary<'a> {
    topic: &'a str,
    partition_count: usize,
    replication_factor: usize,
}

fn list(args: ListArgs) -> anyhow::Result<()> {
    let consumer = plain_consumer(&args.conn, &[])?;
    let mut topics = topic_infos(consumer.client(), &args.conn, None)?;
    if args.exclude_internal {
        topics.retain(|t| !t.topic.starts_with("__"));
    }
    let summaries: Vec<TopicSummary> = topics
        .iter()
        .map(|t| TopicSummary {
            topic: &t.topic,
            partition_count: t.partition_count,
            replication_factor: t.replication_factor,
        })
        .collect();
    match args.output.output {
        OutputFormat::Json => print_json(&summaries)?,
        OutputFormat::Table => {
            let mut t = table(["TOPIC", "PARTITIONS", "REPLICATION-FACTOR"]);
            for s in &summaries {
                t.add_row(vec![
                    s.topic.to_string(),
                    s.partition_count.to_string(),
                    s.replication_factor.to_string(),
                ]);
            }
            print_table(&t);
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct TopicDescription {
    #[serde(flatten)]
    info: TopicInfo,
    /// Topic-level overrides (dynamic topic configs).
    configs: std::collections::BTreeMap<String, Option<String>>,
}

fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let consumer = plain_consumer(conn, &[])?;
    let infos = match &args.topic {
        Some(topic) => vec![topic_info(consumer.client(), conn, topic)?],
        None => topic_infos(consumer.client(), conn, None)?,
    };
    let admin = admin_client(conn)?;
    let rt = runtime()?;
    let mut descriptions = Vec::with_capacity(infos.len());
    for mut info in infos {
        let entries = rt.block_on(configs::describe(
            &admin,
            conn,
            ResourceSpecifier::Topic(&info.topic),
        ))?;
        let min_isr = entries
            .iter()
            .find(|e| e.name == "min.insync.replicas")
            .and_then(|e| e.value.as_deref()?.parse().ok())
            .unwrap_or(1);
        info.partitions.retain(|p| args.keeps(p, min_isr));
        if args.filters() && info.partitions.is_empty() {
            // As kafka-topics: with a filter, only topics with matching partitions.
            continue;
        }
        let configs = entries
            .into_iter()
            .filter(|e| configs::is_override(&e.source))
            .map(|e| (e.name, e.value))
            .collect();
        descriptions.push(TopicDescription { info, configs });
    }
    match args.output.output {
        OutputFormat::Json => print_json(&descriptions)?,
        OutputFormat::Table => {
            for (i, d) in descriptions.iter().enumerate() {
                if i > 0 {
                    say!();
                }
                print_description(d);
            }
        }
    }
    Ok(())
}

fn print_description(d: &TopicDescription) {
    let configs: Vec<String> = d
        .configs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("")))
        .collect();
    say!(
        "Topic: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
        d.info.topic,
        d.info.partition_count,
        d.info.replication_factor,
        configs.join(",")
    );
    let mut t = table(["PARTITION", "LEADER", "REPLICAS", "ISR"]);
    for p in &d.info.partitions {
        let mut row = vec![
            p.partition.to_string(),
            p.leader.to_string(),
            id_list(&p.replicas),
            id_list(&p.isr),
        ];
        if let Some(err) = &p.error {
            row.push(err.clone());
        }
        t.add_row(row);
    }
    print_table(&t);
}

fn alter(args: AlterArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let admin = admin_client(conn)?;
    let rt = runtime()?;
    if let Some(partitions) = args.partitions {
        let new_partitions = NewPartitions::new(&args.topic, partitions as usize);
        let results = rt
            .block_on(admin.create_partitions([&new_partitions], &admin_options(conn)))
            .map_err(|e| {
                anyhow::anyhow!(
                    "alter partitions of topic '{}' failed: {}",
                    args.topic,
                    describe_kafka_error(&e, conn)
                )
            })?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(admin_error(
                    "alter partitions of topic",
                    &format!("'{name}'"),
                    code,
                    conn,
                ));
            }
        }
        say!("Topic {} now has {} partitions.", args.topic, partitions);
    }
    if !args.config.is_empty() || !args.delete_config.is_empty() {
        configs::alter_incremental(
            &admin,
            conn,
            &rt,
            ResourceSpecifier::Topic(&args.topic),
            &args.config,
            &args.delete_config,
        )?;
        say!("Updated configs of topic {}.", args.topic);
    }
    Ok(())
}

fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let admin = admin_client(conn)?;
    let names: Vec<&str> = args.topic.iter().map(String::as_str).collect();
    let results = runtime()?
        .block_on(admin.delete_topics(&names, &admin_options(conn)))
        .map_err(|e| anyhow::anyhow!("delete topics failed: {}", describe_kafka_error(&e, conn)))?;
    let mut failure = None;
    for result in results {
        match result {
            Ok(name) => say!("Deleted topic {name}."),
            Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) if args.if_exists => {}
            Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                failure.get_or_insert_with(|| anyhow::anyhow!("topic '{name}' does not exist"));
            }
            Err((name, code)) => {
                failure.get_or_insert_with(|| {
                    admin_error("delete topic", &format!("'{name}'"), code, conn)
                });
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
