//! What every handler can reach: the config, the controller and the replica manager.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::time::Duration;
use tokio::time::Instant;

use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataImage, PRODUCER_ID_BLOCK_SIZE};
use parking_lot::Mutex;

use crate::broker_lifecycle::BrokerHeartbeats;
use crate::config::{Endpoint, ServerConfig};
use crate::controller::Controller;
use crate::error::BrokerError;
use crate::group_coordinator::GroupCoordinator;
use crate::handlers::allocate_producer_ids;
use crate::inter_broker::InterBrokerClient;
use crate::raft_transport::TcpControllerTransport;
use crate::replica_manager::ReplicaManager;
use crate::txn_coordinator::TxnCoordinator;

/// How long a broker keeps asking the active controller for something it needs to answer
/// a client (a producer id block) before the client gets a retriable error.
const CONTROLLER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONTROLLER_RETRY_BACKOFF: Duration = Duration::from_millis(100);

pub struct BrokerState {
    pub config: ServerConfig,
    pub node_id: i32,
    pub cluster_id: String,
    /// Every advertised listener, with the port actually bound (when configured as 0) and
    /// the host name filled in (when configured empty): what this broker registers.
    pub advertised_listeners: Vec<Endpoint>,
    pub controller: Controller,
    pub replica_manager: Arc<ReplicaManager>,
    pub group_coordinator: Arc<GroupCoordinator>,
    pub txn_coordinator: Arc<TxnCoordinator>,
    /// Raft RPCs in and out (the controller listener's private API).
    pub raft_transport: Arc<TcpControllerTransport>,
    /// Requests to other brokers, on their inter-broker listener.
    pub inter_broker: Arc<InterBrokerClient>,
    /// Requests to controllers (registration, heartbeats, forwarded writes), on their
    /// controller listener.
    pub controller_client: Arc<InterBrokerClient>,
    /// The TLS of each listener this node serves with TLS, by upper-case name (dynamic SSL
    /// updates are checked against and applied to it).
    pub tls_listeners: BTreeMap<String, Arc<crate::network::ListenerTls>>,
    /// The StandardAuthorizer, when `authorizer.class.name` sets it.
    pub authorizer: Option<crate::authorizer::Authorizer>,
    /// Broker liveness as the active controller tracks it.
    pub broker_heartbeats: BrokerHeartbeats,
    /// Client quotas' sensors (produce, fetch, request time, controller mutations).
    pub quota_manager: crate::quota_manager::QuotaManager,
    /// The producer-id block this broker hands ids out of: [next, end).
    producer_id_block: Mutex<(i64, i64)>,
    /// Client requests are served (the node has started). Until then a broker listener
    /// carries only the metadata log's replication to an observer.
    clients_enabled: AtomicBool,
}

/// How this node reaches the others: Raft RPCs, brokers, controllers.
pub struct NodeClients {
    pub raft_transport: Arc<TcpControllerTransport>,
    pub inter_broker: Arc<InterBrokerClient>,
    pub controller_client: Arc<InterBrokerClient>,
}

impl BrokerState {
    pub fn new(
        config: ServerConfig,
        cluster_id: String,
        advertised_listeners: Vec<Endpoint>,
        controller: Controller,
        replica_manager: Arc<ReplicaManager>,
        clients: NodeClients,
        tls_listeners: BTreeMap<String, Arc<crate::network::ListenerTls>>,
    ) -> Self {
        let NodeClients {
            raft_transport,
            inter_broker,
            controller_client,
        } = clients;
        let group_coordinator = Arc::new(GroupCoordinator::new(&config, replica_manager.clone()));
        let txn_coordinator = Arc::new(TxnCoordinator::new(&config, replica_manager.clone()));
        let authorizer = config
            .authorizer
            .clone()
            .map(crate::authorizer::Authorizer::new);
        let quota_manager = crate::quota_manager::QuotaManager::new(&config);
        BrokerState {
            node_id: config.node_id,
            config,
            cluster_id,
            advertised_listeners,
            controller,
            group_coordinator,
            txn_coordinator,
            replica_manager,
            raft_transport,
            inter_broker,
            controller_client,
            tls_listeners,
            authorizer,
            broker_heartbeats: BrokerHeartbeats::default(),
            quota_manager,
            producer_id_block: Mutex::new((0, 0)),
            clients_enabled: AtomicBool::new(false),
        }
    }

    /// Whether client requests on broker listeners are served yet.
    pub fn serving_clients(&self) -> bool {
        self.clients_enabled.load(Ordering::Acquire)
    }

    /// From now on client requests on broker listeners are served.
    pub fn enable_clients(&self) {
        self.clients_enabled.store(true, Ordering::Release);
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.controller.image()
    }

    /// Where another broker is reached: its registered endpoint on
    /// `inter.broker.listener.name`, from the image.
    pub fn broker_addr(&self, node_id: i32) -> Option<String> {
        let image = self.image();
        let (host, port) = image
            .brokers
            .get(&node_id)?
            .endpoint(&self.config.inter_broker_listener_name)?;
        Some(format!("{host}:{port}"))
    }

    /// The controller id clients see (Metadata, DescribeCluster). Kafka's KRaft brokers
    /// answer a random unfenced broker (`getRandomAliveBrokerId`), which forwards what
    /// only the active controller does. Moldau names the active controller itself when it
    /// is a registered broker (combined mode: one of Kafka's candidates, and admin
    /// requests then skip a forward), a random unfenced broker when it is a dedicated
    /// controller (no broker, so clients could not reach it), and -1 (none) while no
    /// active controller is known (nobody could carry the request out yet).
    pub fn controller_id(&self, image: &MetadataImage) -> i32 {
        let Some(leader) = self.controller.leader_id() else {
            return -1;
        };
        if image.brokers.contains_key(&leader) {
            return leader;
        }
        let alive: Vec<i32> = image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.broker_id)
            .collect();
        if alive.is_empty() {
            return -1;
        }
        let pick = (moldau_metadata::Uuid::new_v4().as_u128() % alive.len() as u128) as usize;
        alive[pick]
    }

    /// The next producer id, taking a new block through the metadata log when the current
    /// one is used up, so that ids are never handed out twice, even across restarts.
    pub async fn next_producer_id(&self) -> Result<i64, BrokerError> {
        {
            let mut block = self.producer_id_block.lock();
            if block.0 < block.1 {
                block.0 += 1;
                return Ok(block.0 - 1);
            }
        }
        let start = self.allocate_producer_ids().await?;
        let mut block = self.producer_id_block.lock();
        *block = (start + 1, start + PRODUCER_ID_BLOCK_SIZE);
        Ok(start)
    }

    /// Sends `request` to the active controller when that is another node, over its
    /// controller listener. `Err` says why it was not answered: no active controller
    /// known, this node is it, not a configured voter, or not reached in `timeout`.
    pub async fn send_to_controller<R>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, String>
    where
        R: kafka_protocol::protocol::Request + kafka_protocol::protocol::Encodable,
        R::Response: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
    {
        let leader = match self.controller.leader_id() {
            None => return Err("no active controller yet".to_string()),
            Some(leader) if leader == self.node_id => {
                return Err("this node is the active controller".to_string())
            }
            Some(leader) => leader,
        };
        self.send_to_voter(leader, request, version, timeout).await
    }

    /// Sends `request` to voter `voter` over its controller listener (as configured in
    /// `controller.quorum.voters`).
    pub async fn send_to_voter<R>(
        &self,
        voter: i32,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, String>
    where
        R: kafka_protocol::protocol::Request + kafka_protocol::protocol::Encodable,
        R::Response: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
    {
        let addr = self
            .raft_transport
            .voter_addr(voter as u64)
            .ok_or_else(|| format!("controller {voter} is not a configured voter"))?;
        self.controller_client
            .send(&addr, request, version, timeout)
            .await
            .map_err(|e| e.to_string())
    }

    /// A block of producer ids from the active controller: committed here when this node
    /// is it, else asked for with AllocateProducerIds; retried while leadership is unknown
    /// or moving, for up to [`CONTROLLER_REQUEST_TIMEOUT`].
    async fn allocate_producer_ids(&self) -> Result<i64, BrokerError> {
        use kafka_protocol::messages::{AllocateProducerIdsRequest, BrokerId};
        let deadline = Instant::now() + CONTROLLER_REQUEST_TIMEOUT;
        loop {
            let retry_reason = match self.controller.leader_id() {
                Some(leader) if leader == self.node_id => {
                    match allocate_producer_ids::allocate(self, self.node_id, None).await {
                        Err(BrokerError::NotController { .. }) => "leadership moved".to_string(),
                        done => return done,
                    }
                }
                _ => {
                    let broker_epoch = self
                        .image()
                        .brokers
                        .get(&self.node_id)
                        .map_or(-1, |b| b.broker_epoch);
                    let request = AllocateProducerIdsRequest::default()
                        .with_broker_id(BrokerId(self.node_id))
                        .with_broker_epoch(broker_epoch);
                    let sent = self
                        .send_to_controller(&request, 0, CONTROLLER_REQUEST_TIMEOUT)
                        .await;
                    match sent {
                        Ok(r) => match ResponseError::try_from_code(r.error_code) {
                            None => return Ok(r.producer_id_start.0),
                            Some(ResponseError::NotController) => "leadership moved".to_string(),
                            Some(error) => return Err(BrokerError::Refused(error)),
                        },
                        Err(reason) => reason,
                    }
                }
            };
            if Instant::now() >= deadline {
                tracing::warn!("no producer id block from the active controller: {retry_reason}");
                return Err(BrokerError::MetadataWriteTimeout);
            }
            tokio::time::sleep(CONTROLLER_RETRY_BACKOFF).await;
        }
    }
}
