//! `moldau metadata-quorum describe --status|--replication`, like kafka-metadata-quorum:
//! the metadata quorum's leader, epoch, high watermark and lags (DescribeQuorum, which a
//! broker forwards to the active controller).

use anyhow::anyhow;
use clap::{ArgGroup, Args, Subcommand};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::ReplicaState;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use moldau_wire::{check, ClientSettings, Connection};
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::output::{print_json, print_table, table};
use crate::transactions::{connect, explain, run_wire};
use crate::Failure;

#[derive(Subcommand)]
pub enum MetadataQuorumCommand {
    /// Show the quorum's status (--status) or each voter's replication (--replication).
    Describe(DescribeArgs),
    /// Make a controller a voter of a dynamic quorum (AddRaftVoter, KIP-853): the one the
    /// config file describes (node.id, controller listener, metadata log dir's directory.id).
    AddController(AddControllerArgs),
    /// Remove a voter from a dynamic quorum (RemoveRaftVoter, KIP-853).
    RemoveController(RemoveControllerArgs),
}

/// The controller to add is described by `--command-config` (the shared connection
/// flag): as with kafka-metadata-quorum, the controller's own server config, which also
/// serves as the client config of the request.
#[derive(Args)]
pub struct AddControllerArgs {
    /// Ask the controllers directly (their controller listeners, comma separated).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_controller: Option<String>,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct RemoveControllerArgs {
    /// The voter's node id.
    #[arg(long)]
    controller_id: i32,
    /// The voter's metadata log directory id (its meta.properties directory.id).
    #[arg(long, value_name = "ID")]
    controller_directory_id: String,
    /// Ask the controllers directly (their controller listeners, comma separated).
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_controller: Option<String>,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["status", "replication"])))]
pub struct DescribeArgs {
    /// Leader, epoch, high watermark, maximum follower lag, voters.
    #[arg(long)]
    status: bool,
    /// Every voter's log end offset, lag and last fetch.
    #[arg(long)]
    replication: bool,
    /// Ask the controllers directly (their controller listeners, comma separated) instead
    /// of a broker, as kafka-metadata-quorum --bootstrap-controller.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_controller: Option<String>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Serialize)]
struct Status {
    cluster_id: String,
    leader_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
    max_follower_lag: i64,
    max_follower_lag_time_ms: i64,
    current_voters: Vec<i32>,
    current_observers: Vec<i32>,
}

#[derive(Serialize)]
struct Replica {
    node_id: i32,
    /// Kafka's text form (22 characters); all `A`s (the zero id) for a static quorum.
    directory_id: String,
    log_end_offset: i64,
    lag: i64,
    last_fetch_timestamp: i64,
    last_caught_up_timestamp: i64,
    status: &'static str,
}

pub fn run(cmd: MetadataQuorumCommand) -> Result<(), Failure> {
    match cmd {
        MetadataQuorumCommand::Describe(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| describe(args, settings))
        }
        MetadataQuorumCommand::AddController(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| add_controller(args, settings))
        }
        MetadataQuorumCommand::RemoveController(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| remove_controller(args, settings))
        }
    }
}

/// A connection that reaches the active controller: a broker (which forwards), or with
/// `--bootstrap-controller` the active controller itself, found through DescribeCluster's
/// CONTROLLER endpoints.
async fn to_active_controller(
    conn: &ConnectArgs,
    bootstrap_controller: Option<&str>,
    settings: ClientSettings,
) -> anyhow::Result<Connection> {
    let Some(controllers) = bootstrap_controller else {
        let mut cluster = connect(conn, settings.clone()).await?;
        let addr = cluster.bootstrap().addr().to_string();
        return Ok(Connection::open(&addr, &settings).await?);
    };
    let mut any = open_first(controllers, &settings).await?;
    let cluster = any
        .send(&DescribeClusterRequest::default().with_endpoint_type(2))
        .await
        .map_err(|e| anyhow!("cannot describe the controllers: {e}"))?;
    check(cluster.error_code, cluster.error_message.as_ref())
        .map_err(|e| anyhow!("cannot describe the controllers: {e}"))?;
    let leader = cluster
        .brokers
        .iter()
        .find(|b| b.broker_id == cluster.controller_id)
        .ok_or_else(|| anyhow!("the controllers know of no active controller yet"))?;
    Ok(Connection::open(&format!("{}:{}", leader.host, leader.port), &settings).await?)
}

async fn add_controller(args: AddControllerArgs, settings: ClientSettings) -> anyhow::Result<()> {
    use kafka_protocol::messages::add_raft_voter_request::Listener;
    use kafka_protocol::messages::AddRaftVoterRequest;
    let Some(command_config) = args.conn.command_config.clone() else {
        return Err(anyhow!(
            "add-controller needs --command-config: the server config of the controller to add"
        ));
    };
    let (config, _) = moldau_broker::ServerConfig::load(Some(&command_config), &[])
        .map_err(|e| anyhow!("{}: {e}", command_config.display()))?;
    if !config.is_controller() {
        return Err(anyhow!(
            "{}: process.roles has no controller role",
            command_config.display()
        ));
    }
    let listener = config
        .controller_endpoint()
        .filter(|l| !l.host.is_empty() && l.port != 0)
        .ok_or_else(|| {
            anyhow!("no controller listener (controller.listener.names) with a host and a port")
        })?;
    let name = &listener.listener_name;
    let meta = moldau_broker::meta_properties::MetaProperties::read(&config.metadata_log_dir)
        .map_err(|e| anyhow!(e))?
        .ok_or_else(|| {
            anyhow!(
                "{} is not formatted (moldau storage format --no-initial-controllers)",
                config.metadata_log_dir.display()
            )
        })?;
    let directory_id = meta
        .directory_id
        .ok_or_else(|| anyhow!("meta.properties has no directory.id"))?;
    let request = AddRaftVoterRequest::default()
        .with_cluster_id(Some(StrBytes::from_string(meta.cluster_id.clone())))
        .with_timeout_ms(args.conn.request_timeout_ms.min(i32::MAX as u64) as i32)
        .with_voter_id(config.node_id)
        .with_voter_directory_id(parse_directory_id(&directory_id)?)
        .with_listeners(vec![Listener::default()
            .with_name(StrBytes::from_string(name.clone()))
            .with_host(StrBytes::from_string(listener.host.clone()))
            .with_port(listener.port)]);
    let mut connection =
        to_active_controller(&args.conn, args.bootstrap_controller.as_deref(), settings).await?;
    let response = connection
        .send(&request)
        .await
        .map_err(|e| explain(&args.conn, "cannot add the controller", e))?;
    check(response.error_code, response.error_message.as_ref())
        .map_err(|e| anyhow!("cannot add controller {}: {e}", config.node_id))?;
    println!(
        "Added controller {} with directory id {directory_id} and endpoints: {name}://{}:{}",
        config.node_id, listener.host, listener.port
    );
    Ok(())
}

async fn remove_controller(
    args: RemoveControllerArgs,
    settings: ClientSettings,
) -> anyhow::Result<()> {
    use kafka_protocol::messages::RemoveRaftVoterRequest;
    let request = RemoveRaftVoterRequest::default()
        .with_voter_id(args.controller_id)
        .with_voter_directory_id(parse_directory_id(&args.controller_directory_id)?);
    let mut connection =
        to_active_controller(&args.conn, args.bootstrap_controller.as_deref(), settings).await?;
    let response = connection
        .send(&request)
        .await
        .map_err(|e| explain(&args.conn, "cannot remove the controller", e))?;
    check(response.error_code, response.error_message.as_ref())
        .map_err(|e| anyhow!("cannot remove controller {}: {e}", args.controller_id))?;
    println!(
        "Removed KRaft controller {} with directory id {}",
        args.controller_id, args.controller_directory_id
    );
    Ok(())
}

/// A directory id as meta.properties writes it (22 characters of URL-safe base64).
fn parse_directory_id(id: &str) -> anyhow::Result<moldau_broker::meta_properties::Uuid> {
    moldau_broker::meta_properties::parse_base64_uuid(id).ok_or_else(|| {
        anyhow!("invalid directory id {id:?}: expected 22 characters of URL-safe base64")
    })
}

async fn describe(args: DescribeArgs, settings: ClientSettings) -> anyhow::Result<()> {
    let conn = &args.conn;
    // A controller answers for the controllers (KIP-919 endpoint type CONTROLLER), a broker
    // for the brokers; either forwards DescribeQuorum to the active controller.
    let (mut cluster, mut direct, endpoint_type) = match &args.bootstrap_controller {
        Some(controllers) => (None, Some(open_first(controllers, &settings).await?), 2),
        None => (Some(connect(conn, settings).await?), None, 1),
    };
    let connection = match (&mut cluster, &mut direct) {
        (Some(cluster), _) => cluster.bootstrap(),
        (None, Some(direct)) => direct,
        (None, None) => unreachable!("one of the two is open"),
    };
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let response = connection
        .send(&request)
        .await
        .map_err(|e| explain(conn, "cannot describe the metadata quorum", e))?;
    check(response.error_code, response.error_message.as_ref())
        .map_err(|e| anyhow!("cannot describe the metadata quorum: {e}"))?;
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| anyhow!("the answer holds no metadata partition"))?;
    check(partition.error_code, partition.error_message.as_ref())
        .map_err(|e| anyhow!("cannot describe the metadata quorum: {e}"))?;
    let leader_id = partition.leader_id.0;
    let leader_end = partition
        .current_voters
        .iter()
        .find(|v| v.replica_id.0 == leader_id)
        .map_or(partition.high_watermark, |v| v.log_end_offset);
    let leader_caught_up = partition
        .current_voters
        .iter()
        .find(|v| v.replica_id.0 == leader_id)
        .map_or_else(
            || chrono::Utc::now().timestamp_millis(),
            |v| v.last_caught_up_timestamp,
        );
    let lag = |r: &ReplicaState| (leader_end - r.log_end_offset).max(0);
    if args.status {
        let cluster_response = connection
            .send(&DescribeClusterRequest::default().with_endpoint_type(endpoint_type))
            .await
            .map_err(|e| explain(conn, "cannot describe the cluster", e))?;
        let followers = || {
            partition
                .current_voters
                .iter()
                .filter(|v| v.replica_id.0 != leader_id)
        };
        let status = Status {
            cluster_id: cluster_response.cluster_id.to_string(),
            leader_id,
            leader_epoch: partition.leader_epoch,
            high_watermark: partition.high_watermark,
            max_follower_lag: followers().map(lag).max().unwrap_or(0),
            // As kafka-metadata-quorum: how far the least recently caught-up follower is
            // behind the leader's own catch-up time.
            max_follower_lag_time_ms: followers()
                .map(|v| match v.last_caught_up_timestamp {
                    -1 => -1,
                    at => (leader_caught_up - at).max(0),
                })
                .max()
                .unwrap_or(0),
            current_voters: partition
                .current_voters
                .iter()
                .map(|v| v.replica_id.0)
                .collect(),
            current_observers: partition.observers.iter().map(|v| v.replica_id.0).collect(),
        };
        if args.output.output == OutputFormat::Json {
            return print_json(&status);
        }
        println!("ClusterId:              {}", status.cluster_id);
        println!("LeaderId:               {}", status.leader_id);
        println!("LeaderEpoch:            {}", status.leader_epoch);
        println!("HighWatermark:          {}", status.high_watermark);
        println!("MaxFollowerLag:         {}", status.max_follower_lag);
        println!(
            "MaxFollowerLagTimeMs:   {}",
            status.max_follower_lag_time_ms
        );
        println!("CurrentVoters:          {:?}", status.current_voters);
        println!("CurrentObservers:       {:?}", status.current_observers);
        return Ok(());
    }
    let replicas: Vec<Replica> = partition
        .current_voters
        .iter()
        .map(|v| (v, "Follower"))
        .chain(partition.observers.iter().map(|v| (v, "Observer")))
        .map(|(v, role)| Replica {
            node_id: v.replica_id.0,
            directory_id: moldau_broker::meta_properties::base64_uuid(v.replica_directory_id),
            log_end_offset: v.log_end_offset,
            lag: lag(v),
            last_fetch_timestamp: v.last_fetch_timestamp,
            last_caught_up_timestamp: v.last_caught_up_timestamp,
            status: if v.replica_id.0 == leader_id {
                "Leader"
            } else {
                role
            },
        })
        .collect();
    if args.output.output == OutputFormat::Json {
        return print_json(&replicas);
    }
    let mut t = table([
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ]);
    for r in &replicas {
        t.add_row([
            r.node_id.to_string(),
            r.directory_id.clone(),
            r.log_end_offset.to_string(),
            r.lag.to_string(),
            r.last_fetch_timestamp.to_string(),
            r.last_caught_up_timestamp.to_string(),
            r.status.to_string(),
        ]);
    }
    print_table(&t);
    Ok(())
}

/// A connection to the first of `addrs` (comma separated) that accepts one.
async fn open_first(addrs: &str, settings: &ClientSettings) -> anyhow::Result<Connection> {
    let mut last_error = None;
    for addr in addrs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match Connection::open(addr, settings).await {
            Ok(connection) => return Ok(connection),
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) => anyhow!("cannot reach the controllers at {addrs}: {e}"),
        None => anyhow!("--bootstrap-controller names no address"),
    })
}
