//! `moldau log-dirs describe`, like `kafka-log-dirs --describe`: every broker's log
//! directories with their partitions' sizes (DescribeLogDirs, asked of each broker).

use anyhow::anyhow;
use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::DescribeLogDirsRequest;
use moldau_wire::check;
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::output::{print_json, print_table, table};
use crate::transactions::{connect, explain, run_wire};
use crate::Failure;

#[derive(Subcommand)]
pub enum LogDirsCommand {
    /// Show each broker's log directories and the partitions in them.
    Describe(DescribeArgs),
}

#[derive(Args)]
pub struct DescribeArgs {
    /// Only these brokers (comma separated ids; default: all).
    #[arg(long, value_delimiter = ',')]
    broker_list: Vec<i32>,
    /// Only these topics (comma separated; default: all).
    #[arg(long, value_delimiter = ',', value_parser = crate::args::parse_topic)]
    topic_list: Vec<String>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// The shape of kafka-log-dirs' JSON.
#[derive(Serialize)]
struct Report {
    version: i32,
    brokers: Vec<BrokerDirs>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BrokerDirs {
    broker: i32,
    log_dirs: Vec<LogDir>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogDir {
    log_dir: String,
    error: Option<String>,
    partitions: Vec<PartitionDir>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PartitionDir {
    partition: String,
    size: i64,
    offset_lag: i64,
    is_future: bool,
}

pub fn run(cmd: LogDirsCommand) -> Result<(), Failure> {
    let LogDirsCommand::Describe(args) = cmd;
    let conn = args.conn.clone();
    run_wire(&conn, |settings| describe(args, settings))
}

async fn describe(args: DescribeArgs, settings: moldau_wire::ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let mut cluster = connect(conn, settings).await?;
    let mut ids: Vec<i32> = cluster.brokers().map(|b| b.node_id).collect();
    if !args.broker_list.is_empty() {
        if let Some(unknown) = args.broker_list.iter().find(|id| !ids.contains(id)) {
            return Err(anyhow!("broker {unknown} is not in the cluster metadata"));
        }
        ids.retain(|id| args.broker_list.contains(id));
    }
    // Named topics with every partition the metadata knows (as kafka-log-dirs asks).
    let topics = if args.topic_list.is_empty() {
        None
    } else {
        let names: Vec<&str> = args.topic_list.iter().map(String::as_str).collect();
        let metadata = cluster
            .metadata(Some(&names))
            .await
            .map_err(|e| explain(conn, "cannot read the topics' metadata", e))?;
        Some(
            metadata
                .topics
                .iter()
                .filter_map(|t| {
                    Some(
                        DescribableLogDirTopic::default()
                            .with_topic(t.name.clone()?)
                            .with_partitions(
                                t.partitions.iter().map(|p| p.partition_index).collect(),
                            ),
                    )
                })
                .collect::<Vec<_>>(),
        )
    };
    let mut report = Report {
        version: 1,
        brokers: Vec::new(),
    };
    for id in ids {
        let request = DescribeLogDirsRequest::default().with_topics(topics.clone());
        let response = cluster
            .broker(id)
            .await
            .map_err(|e| explain(conn, &format!("cannot reach broker {id}"), e))?
            .send(&request)
            .await
            .map_err(|e| explain(conn, &format!("cannot describe broker {id}'s log dirs"), e))?;
        check(response.error_code, None)
            .map_err(|e| anyhow!("broker {id} refused to describe its log dirs: {e}"))?;
        let log_dirs = response
            .results
            .iter()
            .map(|dir| LogDir {
                log_dir: dir.log_dir.to_string(),
                error: check(dir.error_code, None).err().map(|e| e.to_string()),
                partitions: dir
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(move |p| PartitionDir {
                            partition: format!("{}-{}", t.name.as_str(), p.partition_index),
                            size: p.partition_size,
                            offset_lag: p.offset_lag,
                            is_future: p.is_future_key,
                        })
                    })
                    .collect(),
            })
            .collect();
        report.brokers.push(BrokerDirs {
            broker: id,
            log_dirs,
        });
    }
    if args.output.output == OutputFormat::Json {
        return print_json(&report);
    }
    let mut t = table([
        "BROKER",
        "LOG-DIR",
        "PARTITION",
        "SIZE",
        "OFFSET-LAG",
        "FUTURE",
    ]);
    for broker in &report.brokers {
        for dir in &broker.log_dirs {
            if let Some(error) = &dir.error {
                t.add_row([
                    broker.broker.to_string(),
                    dir.log_dir.clone(),
                    format!("error: {error}"),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            for p in &dir.partitions {
                t.add_row([
                    broker.broker.to_string(),
                    dir.log_dir.clone(),
                    p.partition.clone(),
                    p.size.to_string(),
                    p.offset_lag.to_string(),
                    p.is_future.to_string(),
                ]);
            }
        }
    }
    print_table(&t);
    Ok(())
}
