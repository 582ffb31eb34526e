//! Broker lifecycle: open the logs, replay metadata, register, listen; shut down cleanly.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use moldau_metadata::MetadataRecord;
use moldau_storage::{LogConfig, LogManager, LogManagerConfig, TopicPartition, Uuid};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Endpoint, ServerConfig};
use crate::controller::{Controller, METADATA_TOPIC};
use crate::error::BrokerError;
use crate::replica_manager::ReplicaManager;
use crate::state::BrokerState;

pub struct Broker {
    state: Arc<BrokerState>,
    bound_addr: SocketAddr,
    metadata_log_manager: Option<Arc<LogManager>>,
    shutdown_tx: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
}

impl Broker {
    /// Opens (recovering if needed) the logs, replays the metadata log, registers this
    /// broker, and starts accepting connections.
    pub async fn start(config: ServerConfig) -> Result<Broker, BrokerError> {
        std::fs::create_dir_all(&config.log_dir)?;
        std::fs::create_dir_all(&config.metadata_log_dir)?;
        // The log manager locks the dir first: a second broker on it must not format it.
        let log_manager = open_log_manager(&config, &config.log_dir).await?;
        let cluster_id = read_or_create_meta_properties(&config.log_dir, config.node_id)?;
        let separate_metadata_dir = config.metadata_log_dir != config.log_dir;
        let metadata_log_manager = if separate_metadata_dir {
            open_log_manager(&config, &config.metadata_log_dir).await?
        } else {
            log_manager.clone()
        };
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
        ));
        let controller = Controller::open(metadata_log, replica_manager.clone())?;

        let listen = &config.listeners[0];
        let listen_addr = format!("{}:{}", listen.host, listen.port);
        let listener =
            TcpListener::bind(&listen_addr)
                .await
                .map_err(|source| BrokerError::Bind {
                    addr: listen_addr.clone(),
                    source,
                })?;
        let bound_addr = listener.local_addr()?;
        let mut advertised = config.advertised().clone();
        if advertised.port == 0 {
            advertised.port = bound_addr.port();
        }
        if advertised.host.is_empty() || advertised.host == "0.0.0.0" {
            advertised.host = bound_addr.ip().to_string();
        }

        let state = Arc::new(BrokerState::new(
            config,
            cluster_id,
            advertised,
            controller,
            replica_manager,
        ));
        register_broker(&state).await?;
        state.group_coordinator.start().await?;
        crate::txn_coordinator::TxnCoordinator::start(&state).await?;
        log_manager.start_background_tasks();
        if separate_metadata_dir {
            metadata_log_manager.start_background_tasks();
        }

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let accept_task = tokio::spawn(crate::network::accept_loop(
            state.clone(),
            listener,
            shutdown_rx,
        ));
        tracing::info!(
            node_id = state.node_id,
            cluster_id = %state.cluster_id,
            "listening on {bound_addr}, advertised as {}:{}",
            state.advertised.host,
            state.advertised.port
        );
        Ok(Broker {
            state,
            bound_addr,
            metadata_log_manager: separate_metadata_dir.then_some(metadata_log_manager),
            shutdown_tx,
            accept_task,
        })
    }

    pub fn bound_addr(&self) -> SocketAddr {
        self.bound_addr
    }

    /// The log of a partition this node hosts (for tests and tools that inspect it).
    pub fn partition_log(&self, tp: &TopicPartition) -> Option<Arc<moldau_storage::Log>> {
        let partition = self.state.replica_manager.partition(tp)?;
        Some(partition.log.clone())
    }

    /// Stops accepting, closes connections, then flushes and checkpoints every log and
    /// writes the clean-shutdown marker.
    pub async fn shutdown(self) -> Result<(), BrokerError> {
        let _ = self.shutdown_tx.send(true);
        let _ = self.accept_task.await;
        self.state.group_coordinator.shutdown();
        self.state.txn_coordinator.shutdown();
        let log_manager = self.state.replica_manager.log_manager().clone();
        let metadata_log_manager = self.metadata_log_manager;
        tokio::task::spawn_blocking(move || {
            log_manager.shutdown()?;
            if let Some(m) = metadata_log_manager {
                m.shutdown()?;
            }
            Ok::<_, BrokerError>(())
        })
        .await
        .map_err(|e| BrokerError::MetadataLog(format!("shutdown task failed: {e}")))??;
        tracing::info!("shut down cleanly");
        Ok(())
    }
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
    tokio::task::spawn_blocking(move || LogManager::open(manager_config, defaults))
        .await
        .map_err(|e| BrokerError::MetadataLog(format!("log recovery task failed: {e}")))?
        .map_err(BrokerError::from)
}

/// The metadata log is never deleted by retention: it is the cluster's source of truth
/// until snapshots bound it.
fn metadata_log_config() -> LogConfig {
    LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

/// Registers this broker (again) when its advertised endpoint is new or changed.
async fn register_broker(state: &BrokerState) -> Result<(), BrokerError> {
    let node_id = state.node_id;
    let advertised: Endpoint = state.advertised.clone();
    state
        .controller
        .write(|image| {
            let current = image.brokers.get(&node_id);
            let unchanged =
                current.is_some_and(|b| b.host == advertised.host && b.port == advertised.port);
            if unchanged {
                return Ok::<_, BrokerError>((vec![], ()));
            }
            let record = MetadataRecord::RegisterBroker {
                broker_id: node_id,
                broker_epoch: image.offset + 1,
                host: advertised.host.clone(),
                port: advertised.port,
                rack: None,
            };
            Ok((vec![record], ()))
        })
        .await
}

/// `meta.properties` holds the cluster id; a new log dir is formatted on first start
/// (Kafka needs `kafka-storage format`; a zero-config single node should not).
fn read_or_create_meta_properties(log_dir: &Path, node_id: i32) -> Result<String, BrokerError> {
    let path = log_dir.join("meta.properties");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut cluster_id = None;
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("cluster.id=") {
                cluster_id = Some(v.trim().to_string());
            }
            if let Some(v) = line.strip_prefix("node.id=") {
                if v.trim() != node_id.to_string() {
                    return Err(BrokerError::MetadataLog(format!(
                        "{} belongs to node.id {} but this broker is node.id {node_id}",
                        path.display(),
                        v.trim()
                    )));
                }
            }
        }
        return cluster_id.ok_or_else(|| {
            BrokerError::MetadataLog(format!("{} has no cluster.id", path.display()))
        });
    }
    let cluster_id = base64_url_uuid(Uuid::new_v4());
    let text = format!("#\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\n");
    let tmp = log_dir.join("meta.properties.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(cluster_id)
}

/// Kafka renders UUIDs (cluster and topic ids) as URL-safe base64 without padding.
pub fn base64_url_uuid(id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}
