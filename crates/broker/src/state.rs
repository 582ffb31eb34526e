//! What every handler can reach: the config, the controller and the replica manager.

use std::sync::Arc;

use moldau_metadata::{MetadataImage, MetadataRecord, PRODUCER_ID_BLOCK_SIZE};
use parking_lot::Mutex;

use crate::config::{Endpoint, ServerConfig};
use crate::controller::Controller;
use crate::error::BrokerError;
use crate::group_coordinator::GroupCoordinator;
use crate::inter_broker::InterBrokerClient;
use crate::raft_transport::TcpControllerTransport;
use crate::replica_manager::ReplicaManager;
use crate::txn_coordinator::TxnCoordinator;

pub struct BrokerState {
    pub config: ServerConfig,
    pub node_id: i32,
    pub cluster_id: String,
    /// The advertised endpoint with the port actually bound (when configured as 0).
    pub advertised: Endpoint,
    pub controller: Controller,
    pub replica_manager: Arc<ReplicaManager>,
    pub group_coordinator: Arc<GroupCoordinator>,
    pub txn_coordinator: Arc<TxnCoordinator>,
    /// Raft RPCs in and out (the controller listener's private API).
    pub raft_transport: Arc<TcpControllerTransport>,
    /// Requests to other nodes (registration with the active controller).
    pub inter_broker: Arc<InterBrokerClient>,
    /// The producer-id block this broker hands ids out of: [next, end).
    producer_id_block: Mutex<(i64, i64)>,
}

impl BrokerState {
    pub fn new(
        config: ServerConfig,
        cluster_id: String,
        advertised: Endpoint,
        controller: Controller,
        replica_manager: Arc<ReplicaManager>,
        raft_transport: Arc<TcpControllerTransport>,
        inter_broker: Arc<InterBrokerClient>,
    ) -> Self {
        let group_coordinator = Arc::new(GroupCoordinator::new(&config, replica_manager.clone()));
        let txn_coordinator = Arc::new(TxnCoordinator::new(&config, replica_manager.clone()));
        BrokerState {
            node_id: config.node_id,
            config,
            cluster_id,
            advertised,
            controller,
            group_coordinator,
            txn_coordinator,
            replica_manager,
            raft_transport,
            inter_broker,
            producer_id_block: Mutex::new((0, 0)),
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.controller.image()
    }

    /// The controller id clients see (Metadata, DescribeCluster): the active controller,
    /// where metadata writes succeed, or -1 (Kafka's "none") when it is not known or not a
    /// registered broker.
    pub fn controller_id(&self, image: &MetadataImage) -> i32 {
        match self.controller.leader_id() {
            Some(id) if image.brokers.contains_key(&id) => id,
            _ => -1,
        }
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
        let node_id = self.node_id;
        let start = self
            .controller
            .write(|image| {
                let start = image.next_producer_id;
                let record = MetadataRecord::ProducerIds {
                    broker_id: node_id,
                    broker_epoch: image.brokers.get(&node_id).map_or(0, |b| b.broker_epoch),
                    next_producer_id: start + PRODUCER_ID_BLOCK_SIZE,
                };
                Ok::<_, BrokerError>((vec![record], start))
            })
            .await?;
        let mut block = self.producer_id_block.lock();
        *block = (start + 1, start + PRODUCER_ID_BLOCK_SIZE);
        Ok(start)
    }
}
