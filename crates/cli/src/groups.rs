//! `moldau groups list|describe|delete|reset-offsets|delete-offsets|lag`, like
//! kafka-consumer-groups, for classic and KIP-848 (`consumer`) groups.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::{ArgGroup, Args, Subcommand};
use moldau_coordinator::lag::{evaluate_partition, worst, LagObservation, LagRules, LagStatus};
use rdkafka::admin::AdminClient;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::client::{
    admin_client, admin_options, base_config, creation_error, describe_kafka_error, plain_consumer,
    runtime, topic_info, QuietContext,
};
use crate::group_admin::{self, GroupDescription, PartitionOffset};
use crate::output::{print_json, print_table, table};

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// List groups with their type (classic or consumer) and state.
    List(ListArgs),
    /// Show a group's state, protocol, members and per-partition offsets and lag.
    Describe(DescribeArgs),
    /// Delete groups that have no members (and their committed offsets).
    Delete(DeleteArgs),
    /// Move a group's committed offsets (preview unless --execute); the group must be empty.
    ResetOffsets(ResetArgs),
    /// Delete a group's committed offsets for some topics or partitions.
    DeleteOffsets(DeleteOffsetsArgs),
    /// Sample commits over time and rate each partition OK/WARNING/STALL/STOP/ERROR.
    Lag(LagArgs),
}

/// A group id as given on the command line.
fn parse_group(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("group id is empty".to_string());
    }
    Ok(s.to_string())
}

#[derive(Args)]
pub struct ListArgs {
    /// Only groups of this type (repeatable): classic or consumer.
    #[arg(long = "type", value_name = "TYPE", value_parser = ["classic", "consumer"])]
    types: Vec<String>,
    /// Only groups in this state (case-insensitive), e.g. Stable or Empty.
    #[arg(long)]
    state: Option<String>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct DescribeArgs {
    /// The group id.
    #[arg(long, short = 'g', value_parser = parse_group)]
    group: String,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// Group id to delete (repeatable).
    #[arg(long, short = 'g', required = true, value_parser = parse_group)]
    group: Vec<String>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// `topic` or `topic:0,1,2` (kafka-consumer-groups' syntax).
#[derive(Clone, Debug)]
pub struct TopicSpec {
    topic: String,
    partitions: Option<Vec<i32>>,
}

fn parse_topic_spec(s: &str) -> Result<TopicSpec, String> {
    let (topic, parts) = match s.split_once(':') {
        Some((t, p)) => (t, Some(p)),
        None => (s, None),
    };
    let topic = crate::args::parse_topic(topic)?;
    let partitions = parts
        .map(|p| {
            p.split(',')
                .map(|n| {
                    n.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| format!("invalid partition '{n}' in '{s}'"))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(TopicSpec { topic, partitions })
}

#[derive(Args)]
#[command(group(ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
#[command(group(ArgGroup::new("spec").required(true)
    .args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime", "by_duration"])))]
pub struct ResetArgs {
    /// The group id.
    #[arg(long, short = 'g', value_parser = parse_group)]
    group: String,
    /// Topic to reset, optionally with partitions: `orders` or `orders:0,2` (repeatable).
    #[arg(long, short = 't', value_name = "TOPIC[:P,..]", value_parser = parse_topic_spec)]
    topic: Vec<TopicSpec>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// To the log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// To the log end offset.
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped to the partition's log start and end).
    #[arg(long, value_name = "OFFSET", value_parser = clap::value_parser!(i64).range(0..))]
    to_offset: Option<i64>,
    /// Move the committed offset by N (negative: back), clamped to the log.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// To the first offset at or after this time: RFC 3339 or `YYYY-MM-DDTHH:MM:SS[.mmm]` (UTC).
    #[arg(long, value_name = "DATETIME", value_parser = parse_datetime_ms)]
    to_datetime: Option<i64>,
    /// To the first offset at or after now minus this ISO-8601 duration, e.g. PT1H30M or P1D.
    #[arg(long, value_name = "DURATION", value_parser = parse_iso_duration_ms)]
    by_duration: Option<i64>,
    /// Apply the change; without it, only the preview is printed.
    #[arg(long)]
    execute: bool,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct DeleteOffsetsArgs {
    /// The group id.
    #[arg(long, short = 'g', value_parser = parse_group)]
    group: String,
    /// Topic whose offsets to delete, optionally with partitions: `orders:0,2` (repeatable).
    #[arg(long, short = 't', required = true, value_name = "TOPIC[:P,..]", value_parser = parse_topic_spec)]
    topic: Vec<TopicSpec>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct LagArgs {
    /// Only this group (repeatable); default: every group.
    #[arg(long, short = 'g', value_parser = parse_group)]
    group: Vec<String>,
    /// Time between two samples of the committed offsets.
    #[arg(long, default_value_t = 1_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    interval_ms: u64,
    /// Number of samples in the window.
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000))]
    samples: u64,
    /// A lagging partition whose committed offset has not moved for longer than this is STOP.
    #[arg(long, default_value_t = 60_000, value_name = "MS",
          value_parser = clap::value_parser!(i64).range(0..))]
    stop_after_ms: i64,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(cmd: GroupsCommand) -> anyhow::Result<()> {
    match cmd {
        GroupsCommand::List(args) => list(args),
        GroupsCommand::Describe(args) => describe(args),
        GroupsCommand::Delete(args) => delete(args),
        GroupsCommand::ResetOffsets(args) => reset_offsets(args),
        GroupsCommand::DeleteOffsets(args) => delete_offsets(args),
        GroupsCommand::Lag(args) => lag(args),
    }
}

/// Adds what happened and a hint about the cluster to an error from librdkafka.
fn context(conn: &ConnectArgs, action: String) -> impl FnOnce(anyhow::Error) -> anyhow::Error + '_ {
    move |e| {
        let text = format!("{e:#}");
        let hint = if text.contains("TimedOut") || text.contains("timed out") {
            format!(" (is a broker running at {}?)", conn.bootstrap_server)
        } else {
            String::new()
        };
        anyhow!("{action}: {text}{hint}")
    }
}

fn list(args: ListArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let admin = admin_client(conn)?;
    let types: Vec<&str> = args.types.iter().map(String::as_str).collect();
    let mut groups = group_admin::list_groups(&admin, &types, conn.request_timeout())
        .map_err(context(conn, "cannot list groups".into()))?;
    if let Some(state) = &args.state {
        groups.retain(|g| g.state.eq_ignore_ascii_case(state));
    }
    if args.output.output == OutputFormat::Json {
        return print_json(&groups);
    }
    let mut t = table(["GROUP", "TYPE", "STATE"]);
    for g in &groups {
        t.add_row([g.group.as_str(), g.group_type.as_str(), g.state.as_str()]);
    }
    print_table(&t);
    Ok(())
}

/// The group's description; a group that does not exist is an error.
fn existing_group(
    admin: &AdminClient<QuietContext>,
    conn: &ConnectArgs,
    group: &str,
    committed: &[PartitionOffset],
) -> anyhow::Result<GroupDescription> {
    let desc = group_admin::describe_group(admin, group, conn.request_timeout());
    let missing = |d: &GroupDescription| d.state == "Dead" && d.members.is_empty();
    match desc {
        Ok(d) if missing(&d) && committed.is_empty() => bail!("group '{group}' does not exist"),
        Ok(d) => Ok(d),
        Err(e) if format!("{e}").contains("GroupIdNotFound") && committed.is_empty() => {
            bail!("group '{group}' does not exist")
        }
        Err(e) => Err(context(conn, format!("cannot describe group '{group}'"))(e)),
    }
}

fn committed(
    admin: &AdminClient<QuietContext>,
    conn: &ConnectArgs,
    group: &str,
) -> anyhow::Result<Vec<PartitionOffset>> {
    group_admin::committed_offsets(admin, group, conn.request_timeout()).map_err(context(
        conn,
        format!("cannot fetch the offsets of group '{group}'"),
    ))
}

/// (low, high) watermarks of partitions; `None` where the partition cannot be read.
fn watermarks(
    consumer: &BaseConsumer<QuietContext>,
    conn: &ConnectArgs,
    parts: impl IntoIterator<Item = (String, i32)>,
) -> BTreeMap<(String, i32), Option<(i64, i64)>> {
    parts
        .into_iter()
        .map(|(topic, partition)| {
            let marks = consumer
                .fetch_watermarks(&topic, partition, conn.request_timeout())
                .ok();
            ((topic, partition), marks)
        })
        .collect()
}

/// One row of `groups describe`.
#[derive(Serialize)]
struct PartitionRow {
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    consumer_id: Option<String>,
    host: Option<String>,
    client_id: Option<String>,
}

#[derive(Serialize)]
struct DescribeOutput {
    #[serde(flatten)]
    group: GroupDescription,
    partitions: Vec<PartitionRow>,
}

fn dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".to_string(), T::to_string)
}

fn describe(args: DescribeArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let admin = admin_client(conn)?;
    let committed = committed(&admin, conn, &args.group)?;
    let desc = existing_group(&admin, conn, &args.group, &committed)?;

    let mut owner: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for (i, m) in desc.members.iter().enumerate() {
        for p in &m.assignment {
            owner.insert((p.topic.clone(), p.partition), i);
        }
    }
    let current: BTreeMap<(String, i32), i64> = committed
        .iter()
        .map(|p| ((p.topic.clone(), p.partition), p.offset))
        .collect();
    let keys: BTreeSet<(String, i32)> = owner.keys().chain(current.keys()).cloned().collect();
    let consumer = plain_consumer(conn, &[])?;
    let marks = watermarks(&consumer, conn, keys.iter().cloned());
    let rows: Vec<PartitionRow> = keys
        .iter()
        .map(|key| {
            let member = owner.get(key).map(|i| &desc.members[*i]);
            let end = marks.get(key).copied().flatten().map(|(_, high)| high);
            let cur = current.get(key).copied();
            PartitionRow {
                topic: key.0.clone(),
                partition: key.1,
                current_offset: cur,
                log_end_offset: end,
                lag: cur.zip(end).map(|(c, e)| e - c),
                consumer_id: member.map(|m| m.consumer_id.clone()),
                host: member.map(|m| m.host.clone()),
                client_id: member.map(|m| m.client_id.clone()),
            }
        })
        .collect();

    if args.output.output == OutputFormat::Json {
        return print_json(&DescribeOutput {
            group: desc,
            partitions: rows,
        });
    }
    let assignor = if desc.assignor.is_empty() {
        String::new()
    } else {
        format!(", assignor {}", desc.assignor)
    };
    say!(
        "Group '{}': state {}, protocol {}{}, {} member(s)",
        desc.group,
        desc.state,
        desc.group_type,
        assignor,
        desc.members.len()
    );
    say!();
    let mut t = table([
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    for r in &rows {
        t.add_row([
            r.topic.clone(),
            r.partition.to_string(),
            dash(&r.current_offset),
            dash(&r.log_end_offset),
            dash(&r.lag),
            dash(&r.consumer_id),
            dash(&r.host),
            dash(&r.client_id),
        ]);
    }
    // Members without partitions, as kafka-consumer-groups shows them.
    for m in desc.members.iter().filter(|m| m.assignment.is_empty()) {
        t.add_row([
            "-".to_string(),
            "-".to_string(),
            "-".to_string(),
            "-".to_string(),
            "-".to_string(),
            m.consumer_id.clone(),
            m.host.clone(),
            m.client_id.clone(),
        ]);
    }
    print_table(&t);
    Ok(())
}

#[derive(Serialize)]
struct DeleteResult {
    group: String,
    error: Option<String>,
}

fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let admin = admin_client(conn)?;
    let groups: Vec<&str> = args.group.iter().map(String::as_str).collect();
    let results = runtime()?
        .block_on(admin.delete_groups(&groups, &admin_options(conn)))
        .map_err(|e| anyhow!("cannot delete groups: {}", describe_kafka_error(&e, conn)))?;
    let results: Vec<DeleteResult> = results
        .into_iter()
        .map(|r| match r {
            Ok(group) => DeleteResult { group, error: None },
            Err((group, code)) => {
                let error = match code {
                    RDKafkaErrorCode::NonEmptyGroup => {
                        "the group still has members; stop its consumers first".to_string()
                    }
                    RDKafkaErrorCode::GroupIdNotFound => "the group does not exist".to_string(),
                    code => code.to_string(),
                };
                DeleteResult {
                    group,
                    error: Some(error),
                }
            }
        })
        .collect();
    let failed: Vec<&DeleteResult> = results.iter().filter(|r| r.error.is_some()).collect();
    if args.output.output == OutputFormat::Json {
        print_json(&results)?;
    } else {
        for r in results.iter().filter(|r| r.error.is_none()) {
            say!("Deleted group '{}'", r.group);
        }
    }
    match failed.as_slice() {
        [] => Ok(()),
        [one] => bail!(
            "cannot delete group '{}': {}",
            one.group,
            one.error.as_deref().unwrap_or_default()
        ),
        many => bail!(
            "cannot delete {} groups: {}",
            many.len(),
            many.iter()
                .map(|r| format!("'{}': {}", r.group, r.error.as_deref().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Partitions named by `--topic` specs (all of a topic's partitions when none are given).
fn spec_partitions(
    consumer: &BaseConsumer<QuietContext>,
    conn: &ConnectArgs,
    specs: &[TopicSpec],
) -> anyhow::Result<Vec<(String, i32)>> {
    let mut parts = BTreeSet::new();
    for spec in specs {
        let info = topic_info(consumer.client(), conn, &spec.topic)?;
        match &spec.partitions {
            None => parts.extend(
                info.partitions
                    .iter()
                    .map(|p| (spec.topic.clone(), p.partition)),
            ),
            Some(list) => {
                for p in list {
                    if !info.partitions.iter().any(|i| i.partition == *p) {
                        bail!("topic '{}' has no partition {p}", spec.topic);
                    }
                    parts.insert((spec.topic.clone(), *p));
                }
            }
        }
    }
    Ok(parts.into_iter().collect())
}

#[derive(Serialize)]
struct ResetRow {
    group: String,
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    new_offset: i64,
}

fn reset_offsets(args: ResetArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let group = &args.group;
    let admin = admin_client(conn)?;
    let committed = committed(&admin, conn, group)?;
    // An unknown group may get offsets (Kafka allows it): only members block a reset.
    let desc = group_admin::describe_group(&admin, group, conn.request_timeout()).ok();
    if let Some(d) = &desc {
        if !d.members.is_empty() || !matches!(d.state.as_str(), "Empty" | "Dead" | "Unknown") {
            bail!(
                "group '{group}' is active (state {}, {} member(s)): offsets can only be reset \
                 while it has no members; stop its consumers first",
                d.state,
                d.members.len()
            );
        }
    }
    let consumer = plain_consumer(conn, &[])?;
    let parts: Vec<(String, i32)> = if args.all_topics {
        committed
            .iter()
            .map(|p| (p.topic.clone(), p.partition))
            .collect()
    } else {
        spec_partitions(&consumer, conn, &args.topic)?
    };
    if parts.is_empty() {
        bail!("group '{group}' has no committed offsets to reset");
    }
    let current: BTreeMap<(String, i32), i64> = committed
        .iter()
        .map(|p| ((p.topic.clone(), p.partition), p.offset))
        .collect();
    let marks = watermarks(&consumer, conn, parts.iter().cloned());
    let by_time = args
        .to_datetime
        .or_else(|| args.by_duration.map(|d| unix_now_ms().saturating_sub(d)));
    let times = match by_time {
        Some(ts) => Some(offsets_for_time(&consumer, conn, &parts, ts)?),
        None => None,
    };

    let mut rows = Vec::new();
    for key in &parts {
        let (low, high) = marks
            .get(key)
            .copied()
            .flatten()
            .ok_or_else(|| anyhow!("cannot read the offsets of {}-{}", key.0, key.1))?;
        let cur = current.get(key).copied();
        let target = if args.to_earliest {
            low
        } else if args.to_latest {
            high
        } else if let Some(offset) = args.to_offset {
            offset
        } else if let Some(n) = args.shift_by {
            let cur = cur.ok_or_else(|| {
                anyhow!(
                    "partition {}-{} has no committed offset to shift",
                    key.0,
                    key.1
                )
            })?;
            cur.saturating_add(n)
        } else {
            times
                .as_ref()
                .and_then(|t| t.get(key).copied())
                .unwrap_or(high)
        };
        rows.push(ResetRow {
            group: group.clone(),
            topic: key.0.clone(),
            partition: key.1,
            current_offset: cur,
            new_offset: target.clamp(low, high),
        });
    }

    if args.execute {
        commit(conn, group, &rows)?;
    }
    if args.output.output == OutputFormat::Json {
        print_json(&rows)?;
    } else {
        let mut t = table([
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "NEW-OFFSET",
        ]);
        for r in &rows {
            t.add_row([
                r.group.clone(),
                r.topic.clone(),
                r.partition.to_string(),
                dash(&r.current_offset),
                r.new_offset.to_string(),
            ]);
        }
        print_table(&t);
    }
    if !args.execute {
        note!("Preview only: add --execute to commit these offsets.");
    }
    Ok(())
}

/// The first offset at or after `ts_ms` per partition (-1 → none: the caller uses the end).
fn offsets_for_time(
    consumer: &BaseConsumer<QuietContext>,
    conn: &ConnectArgs,
    parts: &[(String, i32)],
    ts_ms: i64,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in parts {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(ts_ms))
            .map_err(|e| anyhow!("{e}"))?;
    }
    let found = consumer
        .offsets_for_times(tpl, conn.request_timeout())
        .map_err(|e| {
            anyhow!(
                "cannot look up offsets by time: {}",
                describe_kafka_error(&e, conn)
            )
        })?;
    Ok(found
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

/// Commits the new offsets as a consumer outside the group (generation -1, no member id),
/// which the coordinator accepts only while the group has no members; then reads them back.
fn commit(conn: &ConnectArgs, group: &str, rows: &[ResetRow]) -> anyhow::Result<()> {
    let mut config = base_config(conn)?;
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false");
    let consumer: BaseConsumer<QuietContext> =
        BaseConsumer::from_config_and_context(&config, QuietContext)
            .map_err(|e| creation_error("consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for r in rows {
        tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.new_offset))
            .map_err(|e| anyhow!("{e}"))?;
    }
    consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
        anyhow!(
            "cannot commit the offsets of group '{group}': {}",
            describe_kafka_error(&e, conn)
        )
    })?;
    let admin = admin_client(conn)?;
    let now: BTreeMap<(String, i32), i64> = committed(&admin, conn, group)?
        .into_iter()
        .map(|p| ((p.topic, p.partition), p.offset))
        .collect();
    for r in rows {
        let got = now.get(&(r.topic.clone(), r.partition)).copied();
        if got != Some(r.new_offset) {
            bail!(
                "the coordinator did not take the new offset of {}-{} (committed: {}); \
                 did a consumer join the group?",
                r.topic,
                r.partition,
                dash(&got)
            );
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct DeleteOffsetRow {
    topic: String,
    partition: i32,
    error: Option<String>,
}

fn delete_offsets(args: DeleteOffsetsArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let group = &args.group;
    let consumer = plain_consumer(conn, &[])?;
    let parts = spec_partitions(&consumer, conn, &args.topic)?;
    let admin = admin_client(conn)?;
    let results = group_admin::delete_offsets(&admin, group, &parts, conn.request_timeout())
        .map_err(|e| {
            let text = format!("{e:#}");
            if text.contains("GroupIdNotFound") {
                anyhow!("group '{group}' does not exist")
            } else {
                context(conn, format!("cannot delete offsets of group '{group}'"))(e)
            }
        })?;
    let rows: Vec<DeleteOffsetRow> = results
        .into_iter()
        .map(|p| DeleteOffsetRow {
            topic: p.topic,
            partition: p.partition,
            error: p.error.map(|e| {
                if e.contains("GroupSubscribedToTopic") {
                    "the group is subscribed to the topic; stop its consumers first".to_string()
                } else {
                    e
                }
            }),
        })
        .collect();
    if args.output.output == OutputFormat::Json {
        print_json(&rows)?;
    } else {
        let mut t = table(["TOPIC", "PARTITION", "STATUS"]);
        for r in &rows {
            t.add_row([
                r.topic.clone(),
                r.partition.to_string(),
                r.error.clone().unwrap_or_else(|| "Successful".to_string()),
            ]);
        }
        print_table(&t);
    }
    let failed: Vec<&DeleteOffsetRow> = rows.iter().filter(|r| r.error.is_some()).collect();
    if let Some(first) = failed.first() {
        bail!(
            "cannot delete {} of {} offsets of group '{group}': {}",
            failed.len(),
            rows.len(),
            first.error.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct LagPartition {
    group: String,
    topic: String,
    partition: i32,
    current_offset: i64,
    log_end_offset: i64,
    lag: i64,
    status: String,
    #[serde(skip)]
    rating: LagStatus,
}

#[derive(Serialize)]
struct LagGroup {
    group: String,
    status: String,
    total_lag: i64,
    partitions: Vec<LagPartition>,
}

fn lag(args: LagArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let admin = admin_client(conn)?;
    let groups: Vec<String> = if args.group.is_empty() {
        group_admin::list_groups(&admin, &[], conn.request_timeout())
            .map_err(context(conn, "cannot list groups".into()))?
            .into_iter()
            .map(|g| g.group)
            .collect()
    } else {
        args.group.clone()
    };
    let consumer = plain_consumer(conn, &[])?;
    let start = Instant::now();
    let interval = Duration::from_millis(args.interval_ms);
    // Sampled offsets carry the time they were first seen at their value: the
    // sampler sees committed offsets, not the commits themselves.
    let mut windows: BTreeMap<(String, String, i32), Vec<LagObservation>> = BTreeMap::new();
    let mut now_ms = 0;
    for sample in 0..args.samples {
        if sample > 0 {
            std::thread::sleep(interval);
        }
        now_ms = i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX);
        for group in &groups {
            let offsets = committed(&admin, conn, group)?;
            let marks = watermarks(
                &consumer,
                conn,
                offsets.iter().map(|p| (p.topic.clone(), p.partition)),
            );
            for p in offsets {
                let key = (p.topic.clone(), p.partition);
                let Some((_, high)) = marks.get(&key).copied().flatten() else {
                    continue;
                };
                let window = windows
                    .entry((group.clone(), p.topic, p.partition))
                    .or_default();
                let timestamp_ms = match window.last() {
                    Some(prev) if prev.committed_offset == p.offset => prev.timestamp_ms,
                    _ => now_ms,
                };
                window.push(LagObservation {
                    committed_offset: p.offset,
                    log_end_offset: high,
                    timestamp_ms,
                });
            }
        }
    }
    let rules = LagRules {
        stop_after_ms: args.stop_after_ms,
    };
    let mut report: Vec<LagGroup> = groups
        .iter()
        .map(|g| LagGroup {
            group: g.clone(),
            status: LagStatus::Ok.to_string(),
            total_lag: 0,
            partitions: Vec::new(),
        })
        .collect();
    for ((group, topic, partition), window) in &windows {
        let newest = window.last().context("empty window")?;
        let status = evaluate_partition(window, now_ms, rules);
        if let Some(g) = report.iter_mut().find(|g| &g.group == group) {
            g.partitions.push(LagPartition {
                group: group.clone(),
                topic: topic.clone(),
                partition: *partition,
                current_offset: newest.committed_offset,
                log_end_offset: newest.log_end_offset,
                lag: newest.lag(),
                status: status.to_string(),
                rating: status,
            });
        }
    }
    for g in &mut report {
        g.total_lag = g.partitions.iter().map(|p| p.lag.max(0)).sum();
        g.status = worst(g.partitions.iter().map(|p| p.rating)).to_string();
    }
    if args.output.output == OutputFormat::Json {
        return print_json(&report);
    }
    let mut t = table(["GROUP", "STATUS", "PARTITIONS", "TOTAL-LAG"]);
    for g in &report {
        t.add_row([
            g.group.clone(),
            g.status.clone(),
            g.partitions.len().to_string(),
            g.total_lag.to_string(),
        ]);
    }
    print_table(&t);
    say!();
    let mut t = table([
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "STATUS",
    ]);
    for p in report.iter().flat_map(|g| &g.partitions) {
        t.add_row([
            p.group.clone(),
            p.topic.clone(),
            p.partition.to_string(),
            p.current_offset.to_string(),
            p.log_end_offset.to_string(),
            p.lag.to_string(),
            p.status.clone(),
        ]);
    }
    print_table(&t);
    Ok(())
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `2024-05-01T12:00:00Z`, `2024-05-01T12:00:00.000+02:00`, or without a zone (UTC).
fn parse_datetime_ms(s: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(format!(
        "expected a date-time like 2024-05-01T12:00:00Z or 2024-05-01T12:00:00.000, got '{s}'"
    ))
}

/// ISO-8601 durations as Kafka's tool takes them: `PnDTnHnMn.nS` (days, hours,
/// minutes, seconds), e.g. `PT15M`, `P1DT2H`, `PT0.5S`.
fn parse_iso_duration_ms(s: &str) -> Result<i64, String> {
    let err = || format!("expected an ISO-8601 duration like PT1H30M or P1D, got '{s}'");
    let rest = s.strip_prefix(['P', 'p']).ok_or_else(err)?;
    let (date, time) = match rest.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total_ms: f64 = 0.0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Result<(), String> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let unit = units
                .iter()
                .find(|(u, _)| u.eq_ignore_ascii_case(&c))
                .ok_or_else(err)?;
            let value: f64 = number.parse().map_err(|_| err())?;
            total_ms += value * unit.1;
            number.clear();
            any = true;
        }
        if number.is_empty() {
            Ok(())
        } else {
            Err(err())
        }
    };
    take(date, &[('D', 86_400_000.0)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return Err(err());
        }
        take(time, &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1_000.0)])?;
    }
    if !any || !total_ms.is_finite() || total_ms > 1e15 {
        return Err(err());
    }
    Ok(total_ms.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations() {
        assert_eq!(parse_iso_duration_ms("PT15M"), Ok(900_000));
        assert_eq!(parse_iso_duration_ms("P1DT2H"), Ok(93_600_000));
        assert_eq!(parse_iso_duration_ms("PT0.5S"), Ok(500));
        assert!(parse_iso_duration_ms("15m").is_err());
        assert!(parse_iso_duration_ms("P").is_err());
        assert!(parse_iso_duration_ms("PT").is_err());
        assert!(parse_iso_duration_ms("PT5").is_err());
        assert!(parse_iso_duration_ms("P1H").is_err());
    }

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01Z"), Ok(1_000));
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:01.250"), Ok(1_250));
        assert_eq!(parse_datetime_ms("1970-01-01T01:00:00+01:00"), Ok(0));
        assert!(parse_datetime_ms("yesterday").is_err());
    }

    #[test]
    fn topic_specs() {
        let spec = parse_topic_spec("orders:0,2").unwrap();
        assert_eq!(spec.topic, "orders");
        assert_eq!(spec.partitions, Some(vec![0, 2]));
        assert!(parse_topic_spec("orders").unwrap().partitions.is_none());
        assert!(parse_topic_spec("orders:x").is_err());
        assert!(parse_topic_spec("orders:-1").is_err());
        assert!(parse_topic_spec(":1").is_err());
    }
}
