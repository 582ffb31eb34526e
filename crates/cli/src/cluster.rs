//! `moldau cluster describe`: the cluster id, the active controller and every registered
//! broker with its endpoint and rack, from DescribeCluster (as the Java Admin's
//! `describeCluster` and `kafka-cluster`/`kafka-broker-api-versions` show them).

use anyhow::anyhow;
use clap::{Args, Subcommand};
use kafka_protocol::messages::DescribeClusterRequest;
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::output::{print_json, print_table, table};
use crate::transactions::{connect, explain, settings};
use crate::wire::check;
use crate::Failure;

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, the active controller and the brokers.
    Describe(DescribeArgs),
}

#[derive(Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Serialize)]
struct ClusterView {
    cluster_id: String,
    /// -1 when no active controller is known.
    controller_id: i32,
    brokers: Vec<BrokerView>,
}

#[derive(Serialize)]
struct BrokerView {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
    fenced: bool,
}

/// DescribeCluster's endpoint type for brokers.
const ENDPOINT_BROKER: i8 = 1;

pub fn run(cmd: ClusterCommand) -> Result<(), Failure> {
    let ClusterCommand::Describe(args) = cmd;
    let settings = settings(&args.conn).map_err(|error| Failure { code: 2, error })?;
    let runtime = crate::client::runtime()?;
    runtime
        .block_on(describe(args, settings))
        .map_err(Failure::from)
}

async fn describe(args: DescribeArgs, settings: crate::wire::ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    let mut cluster = connect(conn, settings).await?;
    let connection = cluster.bootstrap();
    let request = DescribeClusterRequest::default()
        .with_endpoint_type(ENDPOINT_BROKER)
        .with_include_fenced_brokers(true);
    let response = connection
        .send(&request)
        .await
        .map_err(|e| explain(conn, "cannot describe the cluster", e))?;
    check(response.error_code, response.error_message.as_ref())
        .map_err(|e| anyhow!("cannot describe the cluster: {e}"))?;
    let view = ClusterView {
        cluster_id: response.cluster_id.to_string(),
        controller_id: response.controller_id.0,
        brokers: response
            .brokers
            .iter()
            .map(|b| BrokerView {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(|r| r.to_string()),
                fenced: b.is_fenced,
            })
            .collect(),
    };
    if args.output.output == OutputFormat::Json {
        return print_json(&view);
    }
    println!("Cluster id: {}", view.cluster_id);
    match view.controller_id {
        -1 => println!("Active controller: none known"),
        id => println!("Active controller: {id}"),
    }
    let mut t = table(["BROKER", "ENDPOINT", "RACK", "FENCED"]);
    for b in &view.brokers {
        t.add_row([
            b.id.to_string(),
            format!("{}:{}", b.host, b.port),
            b.rack.clone().unwrap_or_else(|| "-".to_string()),
            b.fenced.to_string(),
        ]);
    }
    print_table(&t);
    Ok(())
}
