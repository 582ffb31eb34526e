//! `moldau cluster describe`: the cluster id, the active controller and every registered
//! broker with its endpoint and rack, from DescribeCluster (as the Java Admin's
//! `describeCluster` and `kafka-cluster`/`kafka-broker-api-versions` show them).
//!
//! `moldau cluster local --nodes N`: N `moldau server` processes on 127.0.0.1, one Raft
//! quorum, data under one directory, for trying a cluster on one machine. The ports are
//! chosen free at the first start and kept in `<dir>/cluster.properties`, so a restart
//! finds the same voters. Ctrl-C (or SIGTERM) stops every node cleanly.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use kafka_protocol::messages::DescribeClusterRequest;
use moldau_wire::check;
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::output::{print_json, print_table, table};
use crate::transactions::{connect, explain, run_wire};
use crate::Failure;

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, the active controller and the brokers.
    Describe(DescribeArgs),
    /// Run an N-node cluster on this machine until Ctrl-C.
    Local(LocalArgs),
    /// Remove a decommissioned broker's registration, like `kafka-cluster unregister`.
    Unregister(UnregisterArgs),
}

#[derive(Args)]
pub struct UnregisterArgs {
    /// The broker's node id.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
    id: i32,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct LocalArgs {
    /// How many nodes (every one a voter of the metadata quorum).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    nodes: u16,
    /// Where the nodes keep their data (one subdirectory per node) and logs.
    #[arg(long, default_value = "./moldau-cluster", value_name = "DIR")]
    dir: std::path::PathBuf,
    /// Extra server config for every node (repeatable), e.g. --override num.partitions=3.
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = crate::args::parse_key_value)]
    overrides: Vec<crate::args::KeyValue>,
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
    let args = match cmd {
        ClusterCommand::Describe(args) => args,
        ClusterCommand::Local(args) => return local(args).map_err(Failure::from),
        ClusterCommand::Unregister(args) => {
            let conn = args.conn.clone();
            return run_wire(&conn, |settings| unregister(args, settings));
        }
    };
    let conn = args.conn.clone();
    run_wire(&conn, |settings| describe(args, settings))
}

async fn describe(args: DescribeArgs, settings: moldau_wire::ClientSettings) -> anyhow::Result<()> {
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

async fn unregister(
    args: UnregisterArgs,
    settings: moldau_wire::ClientSettings,
) -> anyhow::Result<()> {
    use kafka_protocol::messages::{BrokerId, UnregisterBrokerRequest};
    let conn = &args.conn;
    let mut cluster = connect(conn, settings).await?;
    let request = UnregisterBrokerRequest::default().with_broker_id(BrokerId(args.id));
    let response = cluster
        .bootstrap()
        .send(&request)
        .await
        .map_err(|e| explain(conn, "cannot unregister the broker", e))?;
    check(response.error_code, response.error_message.as_ref())
        .map_err(|e| anyhow!("cannot unregister broker {}: {e}", args.id))?;
    println!("Broker {} is no longer registered.", args.id);
    Ok(())
}

/// One node of a local cluster: its id and ports.
struct LocalNode {
    id: u16,
    client_port: u16,
    controller_port: u16,
}

/// The nodes' ports: as recorded in `<dir>/cluster.properties`, or chosen free and recorded.
fn local_nodes(dir: &std::path::Path, count: u16) -> anyhow::Result<Vec<LocalNode>> {
    let file = dir.join("cluster.properties");
    let mut ports = std::collections::BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&file) {
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if let Some((key, value)) = line.split_once('=') {
                let port: u16 = value
                    .trim()
                    .parse()
                    .map_err(|_| anyhow!("{}: bad port in '{line}'", file.display()))?;
                ports.insert(key.trim().to_string(), port);
            }
        }
        let recorded = ports.len() / 2;
        if recorded != count as usize {
            anyhow::bail!(
                "{} holds a {recorded}-node cluster; use --nodes {recorded} or another --dir",
                file.display()
            );
        }
    }
    let mut nodes = Vec::new();
    let mut text =
        String::from("# Ports of this local cluster, kept so a restart finds the same voters.\n");
    for id in 1..=count {
        let mut port = |kind: &str| -> anyhow::Result<u16> {
            let key = format!("node.{id}.{kind}");
            let port = match ports.get(&key) {
                Some(port) => *port,
                None => std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port(),
            };
            text.push_str(&format!("{key}={port}\n"));
            Ok(port)
        };
        let client_port = port("client")?;
        let controller_port = port("controller")?;
        nodes.push(LocalNode {
            id,
            client_port,
            controller_port,
        });
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&file, text)?;
    Ok(nodes)
}

fn local(args: LocalArgs) -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    let nodes = local_nodes(&args.dir, args.nodes)?;
    let voters = nodes
        .iter()
        .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
        .collect::<Vec<_>>()
        .join(",");
    let exe = std::env::current_exe()?;
    let runtime = crate::client::runtime()?;
    runtime.block_on(async {
        let mut signals = crate::client::ShutdownSignals::new()?;
        let mut children = Vec::new();
        for node in &nodes {
            let node_dir = args.dir.join(format!("node-{}", node.id));
            std::fs::create_dir_all(&node_dir)?;
            let log = std::fs::File::create(node_dir.join("server.log"))?;
            let mut cmd = tokio::process::Command::from(Command::new(&exe));
            cmd.arg("server");
            let settings = [
                format!("node.id={}", node.id),
                format!(
                    "listeners=PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                    node.client_port, node.controller_port
                ),
                "controller.listener.names=CONTROLLER".to_string(),
                format!("controller.quorum.voters={voters}"),
                format!("log.dirs={}", node_dir.join("data").display()),
            ];
            for setting in settings.iter().cloned().chain(
                args.overrides
                    .iter()
                    .map(|kv| format!("{}={}", kv.key, kv.value)),
            ) {
                cmd.arg("--override").arg(setting);
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()?;
            children.push(child);
        }
        let bootstrap = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",");
        // Ready once every node accepts clients (a node serves once the quorum has a leader).
        // Ready once every node answers ApiVersions: a node's port accepts connections
        // before it serves (it waits for the quorum and its registration first).
        let ready = async {
            let probe = moldau_wire::ClientSettings {
                client_id: "moldau-cluster-local".to_string(),
                timeout: std::time::Duration::from_millis(500),
                security: moldau_wire::WireSecurity::default(),
            };
            for node in &nodes {
                let addr = format!("127.0.0.1:{}", node.client_port);
                while moldau_wire::Connection::open(&addr, &probe).await.is_err() {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        };
        let mut exited = None;
        tokio::select! {
            _ = ready => {
                println!("{} nodes up; bootstrap servers: {bootstrap}", nodes.len());
                println!("data and logs under {}; Ctrl-C stops the cluster", args.dir.display());
                tokio::select! {
                    _ = signals.recv() => {}
                    status = wait_any(&mut children) => exited = Some(status),
                }
            }
            _ = signals.recv() => {}
            status = wait_any(&mut children) => exited = Some(status),
        }
        for child in &children {
            if let Some(pid) = child.id() {
                // SIGTERM: each node shuts down cleanly (controlled shutdown first).
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
        }
        for child in &mut children {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await;
        }
        match exited {
            Some((index, status)) => Err(anyhow!(
                "node {} exited ({status}); see {}",
                index + 1,
                args.dir
                    .join(format!("node-{}", index + 1))
                    .join("server.log")
                    .display()
            )),
            None => {
                println!("cluster stopped");
                Ok(())
            }
        }
    })
}

/// Resolves when any child exits: its index and status.
async fn wait_any(children: &mut [tokio::process::Child]) -> (usize, std::process::ExitStatus) {
    loop {
        for (index, child) in children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                return (index, status);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
