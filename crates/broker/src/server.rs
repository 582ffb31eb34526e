//! Broker lifecycle: open the logs, replay metadata, register, listen; shut down cleanly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use moldau_controller::{Node, NodeId, QuorumConfig};
use moldau_metadata::{BrokerEndpoint, MetadataImage};
use moldau_storage::{LogConfig, LogManager, LogManagerConfig, TopicPartition, Uuid};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Endpoint, ServerConfig};
use crate::controller::{Controller, QuorumRole, METADATA_TOPIC};
use crate::error::BrokerError;
use crate::handlers::broker_registration::BrokerRegistration;
use crate::inter_broker::{InterBrokerClient, PeerSecurity};
use crate::meta_properties::InitialVoter;
use crate::network::NetworkLimits;
use crate::raft_transport::TcpControllerTransport;
use crate::replica_manager::ReplicaManager;
use crate::state::BrokerState;

pub struct Broker {
    state: Arc<BrokerState>,
    bound_addr: SocketAddr,
    metadata_log_manager: Option<Arc<LogManager>>,
    shutdown_tx: watch::Sender<bool>,
    accept_tasks: Vec<JoinHandle<()>>,
    reconcile_task: JoinHandle<()>,
    coordinator_loader_task: JoinHandle<()>,
    heartbeat_task: JoinHandle<()>,
    /// Follower fetchers, ISR expiration and the AlterPartition sender.
    replication_tasks: Vec<JoinHandle<()>>,
    /// The active controller's leader balancing (auto rebalance, unclean elections).
    leader_balancer_task: JoinHandle<()>,
}

/// How long a stopping broker waits for the active controller to move its leadership away.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How often failed side effects of committed metadata (logs not created or not deleted)
/// are retried.
const RECONCILE_INTERVAL_MS: u64 = 2_000;

impl Broker {
    /// Opens (recovering if needed) the logs, replays the metadata log, registers this
    /// broker, and starts accepting connections. By `process.roles`: a controller (alone
    /// or combined) is a voter of the metadata quorum and serves its controller
    /// listeners; a broker (alone or combined) registers, hosts replicas and serves
    /// clients; a broker-only node follows the quorum as an observer, and a
    /// controller-only node never registers as a broker.
    pub async fn start(config: ServerConfig) -> Result<Broker, BrokerError> {
        let is_broker = config.is_broker();
        let is_controller = config.is_controller();
        std::fs::create_dir_all(&config.log_dir)?;
        std::fs::create_dir_all(&config.metadata_log_dir)?;
        // The log manager locks the dir first: a second broker on it must not format it.
        let log_manager = open_log_manager(&config, &config.log_dir).await?;
        let separate_metadata_dir = config.metadata_log_dir != config.log_dir;
        let metadata_log_manager = if separate_metadata_dir {
            open_log_manager(&config, &config.metadata_log_dir).await?
        } else {
            log_manager.clone()
        };
        let cluster_id = crate::meta_properties::ensure_formatted(&config)?;
        let metadata_log = metadata_log_manager.get_or_create_log(
            &TopicPartition::new(METADATA_TOPIC, 0),
            Uuid::nil(),
            metadata_log_config(),
        )?;
        metadata_log.update_config(metadata_log_config());

        let replica_manager = Arc::new(ReplicaManager::new(
            config.node_id,
            log_manager.clone(),
            config.log_defaults.clone(),
            config.replication.clone(),
        ));

        // Bound before the quorum starts: peers reach this node's Raft through them.
        let listeners = bind_listeners(&config.listeners).await?;
        let controller_listener_names = config.controller_listener_names.clone();
        let is_controller_listener = move |endpoint: &Endpoint| {
            controller_listener_names.contains(&endpoint.listener_name.to_ascii_uppercase())
        };
        let bound_addr = listeners
            .iter()
            .find(|(endpoint, _, _)| !is_controller_listener(endpoint))
            .map_or(listeners[0].1, |(_, addr, _)| *addr);
        let advertised_listeners: Vec<Endpoint> = config
            .advertised_listeners
            .iter()
            .map(|endpoint| {
                let mut advertised = endpoint.clone();
                if advertised.port == 0 {
                    // The port picked for the listener of the same name (tests bind port 0).
                    advertised.port = listeners
                        .iter()
                        .find(|(bound, _, _)| bound.listener_name == advertised.listener_name)
                        .map_or(bound_addr, |(_, addr, _)| *addr)
                        .port();
                }
                if advertised.host.is_empty() {
                    // As Kafka: a listener with no host binds every interface and is
                    // advertised by this machine's host name.
                    advertised.host =
                        local_host_name().unwrap_or_else(|| bound_addr.ip().to_string());
                }
                advertised
            })
            .collect();

        let voters = quorum_voters(&config, &listeners, &is_controller_listener)?;
        let inter_broker = Arc::new(InterBrokerClient::new(
            config.node_id,
            config.socket_request_max_bytes as usize,
            peer_security(&config, Some(&config.inter_broker_listener_name)),
        ));
        let controller_client = Arc::new(InterBrokerClient::new(
            config.node_id,
            config.socket_request_max_bytes as usize,
            peer_security(&config, config.controller_listener_names.first()),
        ));
        let listener_tls = listener_tls(&config)?;
        let raft_transport = Arc::new(TcpControllerTransport::new(
            controller_client.clone(),
            inter_broker.clone(),
            config.node_id as NodeId,
            cluster_id.clone(),
            voters.clone(),
            config.inter_broker_listener_name.clone(),
            config.socket_request_max_bytes as usize,
        ));
        let quorum_config = QuorumConfig {
            controller_quorum_election_timeout_ms: config.controller_quorum_election_timeout_ms,
            controller_quorum_fetch_timeout_ms: config.controller_quorum_fetch_timeout_ms,
            metadata_log_max_record_bytes_between_snapshots: config
                .metadata_log_max_record_bytes_between_snapshots,
            metadata_log_max_snapshot_interval_ms: config.metadata_log_max_snapshot_interval_ms,
            ..QuorumConfig::default()
        };
        let role = if !is_controller {
            QuorumRole::Observer
        } else if config.is_dynamic_quorum() {
            QuorumRole::DynamicController
        } else {
            QuorumRole::Voter
        };
        let controller = Controller::start(
            config.node_id,
            role,
            voters.clone(),
            metadata_log,
            replica_manager.clone(),
            raft_transport.clone(),
            &quorum_config,
        )
        .await?;
        // As the active controller, this node reaches observers where they registered.
        raft_transport.follow_image(controller.quorum().subscribe());

        let state = Arc::new(BrokerState::new(
            config,
            cluster_id,
            advertised_listeners,
            controller,
            replica_manager,
            crate::state::NodeClients {
                raft_transport,
                inter_broker,
                controller_client,
            },
            listener_tls.clone(),
        ));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let limits = NetworkLimits::new(state.config.connections.clone());
        let mut accept_tasks = Vec::with_capacity(listeners.len());
        let (controller_listeners, client_listeners): (Vec<_>, Vec<_>) = listeners
            .into_iter()
            .partition(|(endpoint, _, _)| is_controller_listener(endpoint));
        let mut serve = |listeners: Vec<(Endpoint, SocketAddr, Box<dyn crate::net::Listener>)>,
                         controller| {
            for (endpoint, addr, listener) in listeners {
                tracing::info!("listener {} bound to {addr}", endpoint.listener_name);
                accept_tasks.push(tokio::spawn(crate::network::accept_loop(
                    state.clone(),
                    limits.clone(),
                    listener,
                    crate::network::ListenerKind {
                        name: endpoint.listener_name.to_ascii_uppercase().into(),
                        controller,
                        tls: listener_tls
                            .get(&endpoint.listener_name.to_ascii_uppercase())
                            .cloned(),
                        sasl: state
                            .config
                            .listener_security
                            .get(&endpoint.listener_name.to_ascii_uppercase())
                            .and_then(|s| s.sasl.clone()),
                    },
                    shutdown_rx.clone(),
                )));
            }
        };
        // The quorum first: electing, replicating and registering go through it.
        serve(controller_listeners, true);
        let mut client_listeners = Some(client_listeners);
        if !is_controller {
            // An observer catches up through its broker listener (the active controller
            // replicates to where it registers); clients wait for `enable_clients`.
            serve(client_listeners.take().unwrap_or_default(), false);
        }
        if role == QuorumRole::DynamicController {
            // Not awaited: it ends once the active controller replicates to this node.
            tokio::spawn(register_controller(state.clone()));
        }
        if is_broker {
            register_broker(&state).await?;
            crate::broker_lifecycle::wait_until_unfenced(&state).await;
        }
        // Heartbeats on a broker; on a controller the session checks of the active one.
        let heartbeat_task = crate::broker_lifecycle::spawn_heartbeats(state.clone());
        let replication_tasks = if is_broker {
            vec![
                crate::alter_partition_manager::spawn_alter_partition_sender(state.clone()),
                crate::alter_partition_manager::spawn_isr_expiration(state.clone()),
                crate::replica_fetcher::spawn_replica_fetchers(state.clone()),
            ]
        } else {
            Vec::new()
        };
        // Acts only on the active controller: a broker-only node never is one.
        let leader_balancer_task =
            crate::handlers::elect_leaders::spawn_leader_balancer(state.clone());
        if is_broker {
            state.group_coordinator.start().await?;
            crate::txn_coordinator::TxnCoordinator::start(&state).await?;
        }
        log_manager.start_background_tasks();
        let reconcile_task = spawn_reconciler(state.clone());
        // Not kept: it ends when the image's sender does, at shutdown.
        drop(crate::dynamic_tls::spawn_watcher(
            state.clone(),
            listener_tls.clone(),
        ));
        let coordinator_loader_task = spawn_coordinator_loader(state.clone());
        if separate_metadata_dir {
            metadata_log_manager.start_background_tasks();
        }
        state.enable_clients();
        if let Some(client_listeners) = client_listeners {
            serve(client_listeners, false);
        }
        tracing::info!(
            node_id = state.node_id,
            cluster_id = %state.cluster_id,
            "listening on {bound_addr}, advertised as {}",
            state
                .advertised_listeners
                .iter()
                .map(|e| format!("{}://{}:{}", e.listener_name, e.host, e.port))
                .collect::<Vec<_>>()
                .join(",")
        );
        Ok(Broker {
            state,
            bound_addr,
            metadata_log_manager: separate_metadata_dir.then_some(metadata_log_manager),
            shutdown_tx,
            accept_tasks,
            reconcile_task,
            coordinator_loader_task,
            heartbeat_task,
            replication_tasks,
            leader_balancer_task,
        })
    }

    pub fn bound_addr(&self) -> SocketAddr {
        self.bound_addr
    }

    /// This node's metadata image (for tests and tools that compare nodes).
    pub fn metadata_image(&self) -> Arc<moldau_metadata::MetadataImage> {
        self.state.image()
    }

    /// This node's `node.id`.
    pub fn node_id(&self) -> i32 {
        self.state.node_id
    }

    /// The metadata quorum's leader (the active controller) as this node knows it.
    pub fn active_controller_id(&self) -> Option<i32> {
        self.state.controller.leader_id()
    }

    /// Every log this node holds, partitions and the metadata log (for tools that inspect
    /// them, and for the simulation's power loss, which cuts them at their recovery point).
    pub fn logs(&self) -> Vec<Arc<moldau_storage::Log>> {
        let mut logs = self.state.replica_manager.log_manager().all_logs();
        if let Some(metadata) = &self.metadata_log_manager {
            logs.extend(metadata.all_logs());
        }
        logs
    }

    /// The log of a partition this node hosts (for tests and tools that inspect it).
    pub fn partition_log(&self, tp: &TopicPartition) -> Option<Arc<moldau_storage::Log>> {
        let partition = self.state.replica_manager.partition(tp)?;
        Some(partition.log.clone())
    }

    /// Controlled shutdown (the active controller fences this broker and moves its
    /// leadership away), then stops accepting, closes connections (in-flight requests get
    /// [`crate::network::SHUTDOWN_GRACE`], parked ones are then dropped), stops the quorum
    /// member, flushes and checkpoints every log and writes the clean-shutdown marker.
    pub async fn shutdown(self) -> Result<(), BrokerError> {
        // Leadership leaves first, while clients can still be told where it went. A
        // controller-only node leads no partition.
        if self.state.config.is_broker() {
            crate::broker_lifecycle::controlled_shutdown(&self.state, CONTROLLED_SHUTDOWN_TIMEOUT)
                .await;
        }
        self.heartbeat_task.abort();
        let _ = self.shutdown_tx.send(true);
        for task in self.accept_tasks {
            let _ = task.await;
        }
        self.reconcile_task.abort();
        self.coordinator_loader_task.abort();
        for task in &self.replication_tasks {
            task.abort();
        }
        self.leader_balancer_task.abort();
        self.state.group_coordinator.shutdown();
        self.state.txn_coordinator.shutdown();
        // No more committed metadata is applied (and published into the logs) from here.
        if let Err(e) = self.state.controller.shutdown().await {
            tracing::warn!(%e, "metadata quorum did not stop cleanly");
        }
        let log_manager = self.state.replica_manager.log_manager().clone();
        let metadata_log_manager = self.metadata_log_manager;
        crate::spawn_blocking(move || {
            // Both, whatever the first did: each releases its dir's lock.
            let logs = log_manager.shutdown();
            let metadata = metadata_log_manager.map_or(Ok(()), |m| m.shutdown());
            logs.and(metadata).map_err(BrokerError::from)
        })
        .await
        .map_err(|e| BrokerError::MetadataLog(format!("shutdown task failed: {e}")))??;
        tracing::info!("shut down cleanly");
        Ok(())
    }
}

/// Retries, against the latest image, the local side effects of committed metadata that
/// failed (see `ReplicaManager::reconcile`).
fn spawn_reconciler(state: Arc<BrokerState>) -> JoinHandle<()> {
    crate::supervisor::spawn_supervised("metadata reconciler", move || {
        let state = state.clone();
        async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(RECONCILE_INTERVAL_MS)).await;
                if !state.replica_manager.has_pending_effects() {
                    continue;
                }
                let state = state.clone();
                let reconcile = crate::spawn_blocking(move || state.replica_manager.reconcile());
                if let Err(e) = reconcile.await {
                    tracing::error!(error = %e, "metadata reconcile pass failed");
                }
            }
        }
    })
}

/// Loads coordinator shards (`__consumer_offsets`, `__transaction_state`) for partitions
/// this node comes to lead, as the metadata changes: the coordinator moves with the
/// partition's leadership (created on another node, or led here after a change).
fn spawn_coordinator_loader(state: Arc<BrokerState>) -> JoinHandle<()> {
    crate::supervisor::spawn_supervised("coordinator loader", move || {
        let state = state.clone();
        async move {
            let mut images = state.controller.quorum().subscribe();
            loop {
                let image = state.image();
                state.group_coordinator.unload_unled_partitions(&image);
                state.txn_coordinator.unload_unled_partitions(&image);
                state.group_coordinator.load_led_partitions(&state).await;
                state.txn_coordinator.load_led_partitions(&state).await;
                if images.changed().await.is_err() {
                    return;
                }
            }
        }
    })
}

/// Binds every listener, or fails naming the one that could not be bound. An empty host
/// (`PLAINTEXT://:9092`) binds every interface, as Kafka.
async fn bind_listeners(
    endpoints: &[Endpoint],
) -> Result<Vec<(Endpoint, SocketAddr, Box<dyn crate::net::Listener>)>, BrokerError> {
    let mut bound = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let host = if endpoint.host.is_empty() {
            "0.0.0.0"
        } else {
            endpoint.host.as_str()
        };
        let bind_error = |source| BrokerError::Bind {
            addr: format!(
                "{}://{}:{}",
                endpoint.listener_name, endpoint.host, endpoint.port
            ),
            source,
        };
        let listener = crate::net::network()
            .bind(host, endpoint.port)
            .await
            .map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        bound.push((endpoint.clone(), addr, listener));
    }
    Ok(bound)
}

async fn open_log_manager(
    config: &ServerConfig,
    dir: &Path,
) -> Result<Arc<LogManager>, BrokerError> {
    let mut manager_config = LogManagerConfig::new(dir);
    manager_config.retention_check_interval_ms = config.log_retention_check_interval_ms;
    manager_config.flush_check_interval_ms = config.log_flush_scheduler_interval_ms;
    manager_config.cleaner_enabled = config.log_cleaner_enable;
    manager_config.cleaner_backoff_ms = config.log_cleaner_backoff_ms;
    manager_config.cleaner_dedupe_buffer_bytes =
        usize::try_from(config.log_cleaner_dedupe_buffer_size).unwrap_or(usize::MAX);
    manager_config.recovery_threads = config.num_recovery_threads_per_data_dir as usize;
    let defaults = config.log_defaults.clone();
    // Recovery reads whole segments: keep it off the async workers.
    crate::spawn_blocking(move || LogManager::open(manager_config, defaults))
        .await
        .map_err(|e| BrokerError::MetadataLog(format!("log recovery task failed: {e}")))?
        .map_err(BrokerError::from)
}

/// The metadata log is never deleted by retention: it is the cluster's source of truth
/// until snapshots bound it.
pub(crate) fn metadata_log_config() -> LogConfig {
    LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

/// The voters as the quorum knows them: `controller.quorum.voters`, or this node alone at
/// its first listener when none are configured.
fn quorum_voters(
    config: &ServerConfig,
    listeners: &[(Endpoint, SocketAddr, Box<dyn crate::net::Listener>)],
    is_controller_listener: &dyn Fn(&Endpoint) -> bool,
) -> Result<BTreeMap<NodeId, Node>, BrokerError> {
    if config.is_dynamic_quorum() {
        // KIP-853: the initial voters `storage format` wrote (none on a joining node or a
        // broker-only one); after the first start the log's membership rules.
        let voters = InitialVoter::read(&config.metadata_log_dir)?;
        return Ok(voters
            .into_iter()
            .map(|v| {
                let node = Node::controller(v.host, v.port, Some(v.directory_id));
                (v.node_id as NodeId, node)
            })
            .collect());
    }
    if config.controller_quorum_voters.is_empty() {
        let addr = listeners
            .iter()
            .find(|(endpoint, _, _)| is_controller_listener(endpoint))
            .unwrap_or(&listeners[0])
            .1;
        let node = Node::new(addr.ip().to_string(), addr.port());
        return Ok([(config.node_id as NodeId, node)].into());
    }
    Ok(config
        .controller_quorum_voters
        .iter()
        .map(|v| (v.node_id as NodeId, Node::new(v.host.clone(), v.port)))
        .collect())
}

/// How long a node waits between two tries to register with the active controller.
const REGISTRATION_RETRY: Duration = Duration::from_millis(200);
const REGISTRATION_RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a registered broker waits for its registration to reach its own image before
/// it registers again (which also has the active controller add it as an observer again).
const REGISTRATION_APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Registers this broker with the active controller (itself, or another voter through its
/// controller listener), waiting for a leader as long as it takes, then waits until its
/// own image holds the registration, so that what it serves next knows of itself. A
/// broker-only node finds the active controller through `controller.quorum.voters`: it
/// learns the leader from the quorum only once it is replicated to, so until then (and
/// while the leader it knew is gone) it asks the voters in turn.
async fn register_broker(state: &BrokerState) -> Result<(), BrokerError> {
    let registration = BrokerRegistration {
        broker_id: state.node_id,
        incarnation_id: Uuid::new_v4(),
        listeners: state
            .advertised_listeners
            .iter()
            .map(|e| BrokerEndpoint {
                name: e.listener_name.to_ascii_uppercase(),
                host: e.host.clone(),
                port: e.port,
            })
            .collect(),
        rack: state.config.broker_rack.clone(),
    };
    let observer = state.controller.quorum().is_observer();
    let controllers = controller_addresses(state);
    let started = Instant::now();
    let mut last_report = started;
    let mut attempt = 0usize;
    // Refusals are mutual: a voter of another cluster refuses us as we refuse it. The node
    // that is wrong is the one that finds no leader: give up only after several election
    // timeouts without one.
    let give_up_after =
        Duration::from_millis(state.config.controller_quorum_election_timeout_ms * 6);
    loop {
        if let Some((voter, theirs)) = state.raft_transport.inconsistent_cluster() {
            if state.controller.leader_id().is_none() && started.elapsed() > give_up_after {
                return Err(BrokerError::InconsistentClusterId {
                    ours: state.cluster_id.clone(),
                    controller: format!("voter {voter} (cluster {theirs})"),
                });
            }
        }
        let outcome = match state.controller.leader_id() {
            Some(leader) if leader == state.node_id => {
                match crate::handlers::broker_registration::register(state, &registration).await {
                    Ok(_) => Ok(()),
                    Err(BrokerError::NotController { .. }) => Err("leadership moved".to_string()),
                    Err(e) => return Err(e),
                }
            }
            Some(leader) if !observer || attempt.is_multiple_of(2) => {
                match state.raft_transport.voter_addr(leader as NodeId) {
                    Some(addr) => register_remotely(state, &registration, &addr).await?,
                    None => Err(format!("no address for the active controller {leader}")),
                }
            }
            _ if observer && !controllers.is_empty() => {
                let addr = &controllers[attempt % controllers.len()];
                register_remotely(state, &registration, addr).await?
            }
            _ => Err("no active controller yet".to_string()),
        };
        attempt = attempt.wrapping_add(1);
        let reason = match outcome {
            Ok(()) => match wait_until_registered(state, &registration).await {
                true => return Ok(()),
                false => "the registration did not reach this node's metadata".to_string(),
            },
            Err(reason) => reason,
        };
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            tracing::info!(
                waited_ms = started.elapsed().as_millis() as u64,
                "waiting to register with the active controller: {reason}"
            );
        }
        tokio::time::sleep(REGISTRATION_RETRY).await;
    }
}

/// Waits (up to [`REGISTRATION_APPLY_TIMEOUT`]) until this node's image holds
/// `registration`.
async fn wait_until_registered(state: &BrokerState, registration: &BrokerRegistration) -> bool {
    let mut images = state.controller.quorum().subscribe();
    let registered = |image: &MetadataImage| {
        image
            .brokers
            .get(&state.node_id)
            .is_some_and(|b| b.listeners == registration.listeners && b.rack == registration.rack)
    };
    let waited = tokio::time::timeout(
        REGISTRATION_APPLY_TIMEOUT,
        images.wait_for(|image| registered(image)),
    )
    .await;
    matches!(waited, Ok(Ok(_)))
}

/// One BrokerRegistration to the controller at `addr` (the active controller, or one that
/// may be). `Ok(Err(reason))`: try again; `Err`: this node must not start (another cluster).
async fn register_remotely(
    state: &BrokerState,
    registration: &BrokerRegistration,
    addr: &str,
) -> Result<Result<(), String>, BrokerError> {
    use kafka_protocol::messages::broker_registration_request::Listener;
    use kafka_protocol::messages::{BrokerId, BrokerRegistrationRequest};
    use kafka_protocol::protocol::StrBytes;
    let request = BrokerRegistrationRequest::default()
        .with_broker_id(BrokerId(registration.broker_id))
        .with_cluster_id(StrBytes::from_string(state.cluster_id.clone()))
        .with_incarnation_id(registration.incarnation_id)
        .with_rack(registration.rack.clone().map(StrBytes::from_string))
        .with_listeners(
            registration
                .listeners
                .iter()
                .map(|l| {
                    Listener::default()
                        .with_name(StrBytes::from_string(l.name.clone()))
                        .with_host(StrBytes::from_string(l.host.clone()))
                        .with_port(l.port)
                        .with_security_protocol(state.config.security_protocol(&l.name).id())
                })
                .collect(),
        );
    let response = match state
        .controller_client
        .send(addr, &request, 1, REGISTRATION_RPC_TIMEOUT)
        .await
    {
        Ok(response) => response,
        Err(e) => return Ok(Err(e.to_string())),
    };
    match kafka_protocol::ResponseError::try_from_code(response.error_code) {
        None => Ok(Ok(())),
        Some(kafka_protocol::ResponseError::InconsistentClusterId) => {
            Err(BrokerError::InconsistentClusterId {
                ours: state.cluster_id.clone(),
                controller: format!("the controller at {addr}"),
            })
        }
        Some(error) => Ok(Err(format!("the controller at {addr} answered {error:?}"))),
    }
}

/// Where the controllers may be reached: the voters this node knows of, and the bootstrap
/// servers of a dynamic quorum (which name no ids).
fn controller_addresses(state: &BrokerState) -> Vec<String> {
    let transport = &state.raft_transport;
    let mut addrs: Vec<String> = transport
        .voter_ids()
        .into_iter()
        .filter_map(|id| transport.voter_addr(id))
        .collect();
    for (host, port) in &state.config.controller_quorum_bootstrap_servers {
        let addr = format!("{host}:{port}");
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    addrs
}

/// A controller of a dynamic quorum makes sure the quorum can reach it (KIP-853): one that
/// is not a voter yet (formatted to join) registers with the active controller
/// (ControllerRegistration), which then replicates the metadata log to it until
/// AddRaftVoter makes it a voter; a voter whose recorded controller endpoint is not its own
/// (it restarted elsewhere) sends UpdateRaftVoter. Requests go to the known voters and the
/// bootstrap servers in turn; the active controller accepts, the others refuse. Ends once
/// registered, or once the membership holds this node's endpoint.
async fn register_controller(state: Arc<BrokerState>) {
    use kafka_protocol::messages::{
        controller_registration_request, update_raft_voter_request, ControllerRegistrationRequest,
        UpdateRaftVoterRequest,
    };
    use kafka_protocol::protocol::StrBytes;
    let Some(listener) = state.config.controller_endpoint().cloned() else {
        return;
    };
    let name = StrBytes::from_string(listener.listener_name.to_ascii_uppercase());
    let host = StrBytes::from_string(listener.host.clone());
    let directory_id = crate::meta_properties::MetaProperties::read(&state.config.metadata_log_dir)
        .ok()
        .flatten()
        .and_then(|meta| meta.directory_id);
    let registration = ControllerRegistrationRequest::default()
        .with_controller_id(state.node_id)
        .with_incarnation_id(Uuid::new_v4())
        .with_listeners(vec![controller_registration_request::Listener::default()
            .with_name(name.clone())
            .with_host(host.clone())
            .with_port(listener.port)
            .with_security_protocol(
                state.config.security_protocol(&listener.listener_name).id(),
            )]);
    let update = UpdateRaftVoterRequest::default()
        .with_cluster_id(Some(StrBytes::from_string(state.cluster_id.clone())))
        .with_voter_id(state.node_id)
        .with_voter_directory_id(
            directory_id
                .as_deref()
                .and_then(crate::meta_properties::parse_base64_uuid)
                .unwrap_or_default(),
        )
        .with_listeners(vec![update_raft_voter_request::Listener::default()
            .with_name(name)
            .with_host(host)
            .with_port(listener.port)]);
    let me = state.node_id as NodeId;
    let mut attempt = 0usize;
    loop {
        let recorded = state.raft_transport.membership_voter(me);
        let stale = recorded
            .as_ref()
            .is_some_and(|node| node.host != listener.host || node.port != listener.port);
        if stale && state.controller.quorum().is_leader() {
            // The active controller itself: no one to ask.
            let node = Node::controller(listener.host.clone(), listener.port, directory_id.clone());
            match state
                .controller
                .update_voter(state.node_id, directory_id.as_deref(), node)
                .await
            {
                Ok(()) => tracing::info!("updated this voter's controller endpoint"),
                Err(e) => tracing::debug!(%e, "cannot update this voter's controller endpoint"),
            }
            tokio::time::sleep(REGISTRATION_RETRY).await;
            continue;
        }
        let addrs = controller_addresses(&state);
        if !addrs.is_empty() {
            let addr = &addrs[attempt % addrs.len()];
            attempt = attempt.wrapping_add(1);
            let outcome = match &recorded {
                Some(node) if node.host == listener.host && node.port == listener.port => return,
                Some(_) => state
                    .controller_client
                    .send(addr, &update, 0, REGISTRATION_RPC_TIMEOUT)
                    .await
                    .map(|r| r.error_code),
                None => state
                    .controller_client
                    .send(addr, &registration, 0, REGISTRATION_RPC_TIMEOUT)
                    .await
                    .map(|r| r.error_code),
            };
            match outcome {
                Ok(0) if recorded.is_none() => {
                    tracing::info!(%addr, "registered as a controller with the active controller");
                    return;
                }
                Ok(0) => tracing::info!(%addr, "updated this voter's controller endpoint"),
                Ok(code) => tracing::debug!(%addr, code, "controller registration refused"),
                Err(e) => tracing::debug!(%addr, %e, "controller registration not answered"),
            }
        }
        tokio::time::sleep(REGISTRATION_RETRY).await;
    }
}

/// Kafka renders UUIDs (cluster and topic ids) as URL-safe base64 without padding.
pub fn base64_url_uuid(id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// This machine's host name (what Kafka advertises for a listener without a host).
fn local_host_name() -> Option<String> {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_str().ok()?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// How this node's connections to `listener` (by name) are secured: TLS with the
/// listener's trust store for SSL and SASL_SSL listeners, SASL with the listener's client
/// mechanism and this node's credentials from its JAAS entry for SASL ones.
fn peer_security(config: &ServerConfig, listener: Option<&String>) -> PeerSecurity {
    let name = listener.map_or("", String::as_str);
    let Some(security) = listener.and_then(|name| config.listener_security.get(name)) else {
        return PeerSecurity::default();
    };
    let mut peer = PeerSecurity::default();
    let unusable = |reason: String| peer_unusable(name, security.protocol.name(), reason);
    if let Some(ssl) = &security.ssl {
        match ssl.client_config() {
            Ok(config) => peer.tls = Some(config),
            Err(e) => {
                peer.unusable = Some(unusable(e.to_string()));
                return peer;
            }
        }
    }
    if let Some(sasl) = &security.sasl {
        let Some(mechanism) = security.client_mechanism else {
            peer.unusable = Some(unusable("no client mechanism for it".into()));
            return peer;
        };
        match sasl.client_credentials(mechanism) {
            Ok(credentials) => peer.sasl = Some((mechanism, credentials)),
            Err(e) => peer.unusable = Some(unusable(e)),
        }
    }
    peer
}

fn peer_unusable(listener: &str, protocol: &str, reason: String) -> String {
    format!("listener {listener} uses {protocol}, and this node cannot connect to it: {reason}")
}

/// The TLS side of each listener this node binds that uses TLS.
fn listener_tls(
    config: &ServerConfig,
) -> Result<BTreeMap<String, Arc<crate::network::ListenerTls>>, BrokerError> {
    let mut out = BTreeMap::new();
    for (name, security) in &config.listener_security {
        let Some(ssl) = &security.ssl else { continue };
        if ssl.key_store.is_none() {
            // Connected to, never bound here: only the client side is needed.
            continue;
        }
        let tls = crate::network::ListenerTls::new(ssl).map_err(|e| {
            BrokerError::Config(crate::config::ConfigError::InvalidValue {
                key: e.key,
                value: String::new(),
                reason: format!("listener {name}: {}", e.message),
            })
        })?;
        out.insert(name.clone(), Arc::new(tls));
    }
    Ok(out)
}
