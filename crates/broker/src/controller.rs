//! The controller: metadata writes through the Raft quorum (`moldau-controller`).
//!
//! Every metadata change is a batch of [`MetadataRecord`]s that `decide` makes from the
//! image, proposed to the quorum as one Raft entry. Only the active controller (the Raft
//! leader) writes: it decides against an image with everything committed before applied
//! (openraft's read index), and writes on this node are serialized by one lock, so a check
//! made inside [`Controller::write`] cannot be raced by another write. Elsewhere a write is
//! refused with NOT_CONTROLLER naming the leader.
//!
//! Contract: every check a record implies is made by `decide` before the proposal. Once
//! committed, a record applies on every node, in log order: the state machine replays it
//! or skips it with a logged error (never stops), hands the delta to the
//! [`MetadataPublisher`] (the replica manager, which reconciles its own failures) and then
//! publishes the new image. A storage failure of the Raft log stops the quorum on this
//! node (openraft Fatal): writes fail from then on and the node restarts on what its log
//! holds.
//!
//! Bootstrap records (`storage format --add-scram`, in the metadata log directory's
//! `meta_properties::BOOTSTRAP_RECORDS_FILE`) are committed once, by the first write of
//! the first active controller, as the first records of the log (Kafka's bootstrap
//! metadata): a write whose leader image holds no record at all commits them before it
//! decides. The image is exact there (openraft's read index covers every entry of earlier
//! terms), except for this node's own bootstrap proposal of the current term whose outcome
//! it does not know (a timeout): then an empty entry is committed first, which settles
//! whether the proposal is in the log. So they are never committed twice, and a restarted
//! node, whose log holds them, never commits them again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use moldau_controller::{
    ControllerTransport, MetadataQuorum, Node, NodeId, QuorumConfig, QuorumError,
};
use moldau_metadata::{MetadataImage, MetadataRecord};
use moldau_storage::Log;

pub use moldau_controller::MetadataPublisher;

use crate::error::BrokerError;

/// The metadata topic partition, as Kafka names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Kafka's bound on the records one client operation may commit (`MAX_RECORDS_PER_USER_OP`);
/// past it the operation is refused with POLICY_VIOLATION and nothing is written.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;

/// How long a write waits for its commit (a quorum that lost its majority answers
/// REQUEST_TIMED_OUT rather than keeping the request forever). The outcome of a write that
/// timed out is unknown: it may still commit.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How this node takes part in the metadata quorum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuorumRole {
    /// A controller of a static quorum (`controller.quorum.voters`, or alone).
    Voter,
    /// A broker-only node: an openraft learner that never votes.
    Observer,
    /// A controller of a dynamic quorum (KIP-853): `voters` are the initial voters
    /// `storage format` wrote, or none when it joins an existing quorum.
    DynamicController,
}

pub struct Controller {
    quorum: MetadataQuorum,
    /// Serializes this node's writes, and guards what they know of the bootstrap records.
    write_lock: tokio::sync::Mutex<WriteState>,
    /// The records `storage format` left for the log's start (empty: none).
    bootstrap: Vec<MetadataRecord>,
}

#[derive(Default)]
struct WriteState {
    /// This node proposed the bootstrap records and does not know whether they are in the
    /// log (the proposal failed or timed out).
    bootstrap_unsettled: bool,
}

impl Controller {
    /// Starts this node's member of the metadata quorum on `metadata_log`; the image it
    /// recovers (snapshot, then committed entries) is published as it is applied. An
    /// `observer` (a broker-only node) is an openraft learner that applies the committed
    /// log once the active controller adds it and never becomes the active controller
    /// (its writes all answer NOT_CONTROLLER).
    pub async fn start(
        node_id: i32,
        role: QuorumRole,
        voters: BTreeMap<NodeId, Node>,
        metadata_log: Arc<Log>,
        publisher: Arc<dyn MetadataPublisher>,
        transport: Arc<dyn ControllerTransport>,
        config: &QuorumConfig,
    ) -> Result<Controller, BrokerError> {
        let node_id = node_id as NodeId;
        // The metadata log lives in `<metadata.log.dir>/__cluster_metadata-0`.
        let bootstrap = match metadata_log.dir().parent() {
            Some(dir) => crate::meta_properties::read_bootstrap_records(dir)?,
            None => Vec::new(),
        };
        let quorum = match role {
            QuorumRole::Observer => {
                MetadataQuorum::start_observer_on_log(
                    node_id,
                    voters,
                    metadata_log,
                    publisher,
                    transport,
                    config,
                )
                .await
            }
            QuorumRole::Voter => {
                MetadataQuorum::start_on_log(
                    node_id,
                    voters,
                    metadata_log,
                    publisher,
                    transport,
                    config,
                )
                .await
            }
            QuorumRole::DynamicController => {
                MetadataQuorum::start_dynamic_on_log(
                    node_id,
                    voters,
                    metadata_log,
                    publisher,
                    transport,
                    config,
                )
                .await
            }
        }
        .map_err(BrokerError::from)?;
        Ok(Controller {
            quorum,
            write_lock: tokio::sync::Mutex::new(WriteState::default()),
            bootstrap,
        })
    }

    /// On the active controller: replicate the metadata log to broker `broker_id` (not a
    /// voter), reached at `host:port`.
    pub async fn add_observer(
        &self,
        broker_id: i32,
        host: &str,
        port: u16,
    ) -> Result<(), BrokerError> {
        self.quorum
            .add_observer(broker_id as NodeId, Node::new(host, port))
            .await
            .map_err(BrokerError::from)
    }

    /// On the active controller (KIP-853 AddRaftVoter): make controller `node_id`, reached
    /// at `node`, a voter once it has caught up, within `timeout`.
    pub async fn add_voter(
        &self,
        node_id: i32,
        node: Node,
        timeout: Duration,
    ) -> Result<(), BrokerError> {
        self.quorum
            .add_voter(node_id as NodeId, node, timeout)
            .await
            .map_err(BrokerError::from)
    }

    /// On the active controller (KIP-853 UpdateRaftVoter): voter `node_id` is reached at
    /// `node` from now on.
    pub async fn update_voter(
        &self,
        node_id: i32,
        directory_id: Option<&str>,
        node: Node,
    ) -> Result<(), BrokerError> {
        self.quorum
            .update_voter(node_id as NodeId, directory_id, node)
            .await
            .map_err(BrokerError::from)
    }

    /// On the active controller (KIP-853 RemoveRaftVoter): `node_id` stops voting; a node
    /// that is also a registered broker goes on as an observer.
    pub async fn remove_voter(
        &self,
        node_id: i32,
        directory_id: Option<&str>,
        keep_as_observer: bool,
    ) -> Result<(), BrokerError> {
        self.quorum
            .remove_voter(node_id as NodeId, directory_id, keep_as_observer)
            .await
            .map_err(BrokerError::from)
    }

    /// On the active controller: stop replicating to broker `broker_id` (nothing when it is
    /// no observer).
    pub async fn remove_observer(&self, broker_id: i32) -> Result<(), BrokerError> {
        self.quorum
            .remove_observer(broker_id as NodeId)
            .await
            .map_err(BrokerError::from)
    }

    /// The latest image applied on this node. Cheap: readers share it and never lock
    /// while using it.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// The active controller as this node knows it.
    pub fn leader_id(&self) -> Option<i32> {
        self.quorum.leader_id().map(|id| id as i32)
    }

    pub fn quorum(&self) -> &MetadataQuorum {
        &self.quorum
    }

    /// Decides the records to write from the current image (`decide` may refuse with an
    /// error), commits them, and returns what `decide` returned alongside them.
    pub async fn write<T, E>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> Result<(Vec<MetadataRecord>, T), E>,
    ) -> Result<T, E>
    where
        E: From<BrokerError>,
    {
        let mut serialized = self.write_lock.lock().await;
        let mut image = self
            .quorum
            .leader_image()
            .await
            .map_err(BrokerError::from)?;
        if image.offset < 0 && !self.bootstrap.is_empty() {
            image = self.commit_bootstrap(&mut serialized).await?;
        }
        let (records, out) = decide(&image)?;
        if records.len() > MAX_RECORDS_PER_USER_OP {
            return Err(BrokerError::TooManyRecords(records.len()).into());
        }
        if !records.is_empty() {
            self.propose(records).await?;
        }
        Ok(out)
    }

    /// Commits the bootstrap records onto a log that holds no record yet (see the module
    /// docs), and returns the image with them (or with whatever else made the log
    /// non-empty).
    async fn commit_bootstrap(
        &self,
        state: &mut WriteState,
    ) -> Result<Arc<MetadataImage>, BrokerError> {
        if state.bootstrap_unsettled {
            // An entry of this term, committed: every entry before it in this leader's log,
            // the unsettled proposal among them if it is there at all, is committed and
            // applied with it.
            self.propose(Vec::new()).await?;
            state.bootstrap_unsettled = false;
            let image = self.quorum.image();
            if image.offset >= 0 {
                return Ok(image);
            }
        }
        state.bootstrap_unsettled = true;
        let offset = self.propose(self.bootstrap.clone()).await?;
        state.bootstrap_unsettled = false;
        tracing::info!(
            offset,
            records = self.bootstrap.len(),
            "committed the bootstrap records storage format left"
        );
        Ok(self.quorum.image())
    }

    /// Proposes one batch and waits (bounded) until it is committed and applied here.
    async fn propose(&self, records: Vec<MetadataRecord>) -> Result<i64, BrokerError> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.quorum.propose(records)).await {
            Ok(result) => result.map_err(BrokerError::from),
            Err(_) => Err(BrokerError::MetadataWriteTimeout),
        }
    }

    /// Stops this node's quorum member; the log stays for a restart.
    pub async fn shutdown(&self) -> Result<(), BrokerError> {
        self.quorum.shutdown().await.map_err(BrokerError::from)
    }
}

impl From<QuorumError> for BrokerError {
    fn from(e: QuorumError) -> Self {
        match e {
            QuorumError::NotController { leader_id } => BrokerError::NotController {
                leader_id: leader_id.map(|id| id as i32),
            },
            QuorumError::DuplicateVoter { .. } => {
                BrokerError::Refused(kafka_protocol::ResponseError::DuplicateVoter)
            }
            QuorumError::VoterNotFound { .. } => {
                BrokerError::Refused(kafka_protocol::ResponseError::VoterNotFound)
            }
            QuorumError::LastVoter { .. } => {
                BrokerError::Refused(kafka_protocol::ResponseError::InvalidRequest)
            }
            QuorumError::Timeout(_) => BrokerError::MetadataWriteTimeout,
            other => BrokerError::MetadataLog(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use moldau_metadata::Uuid;
    use moldau_storage::{LogConfig, LogManager, LogManagerConfig, TopicPartition};

    use super::*;
    use crate::replica_manager::ReplicaManager;

    const NODE_ID: i32 = 1;

    struct TestNode {
        log_manager: Arc<LogManager>,
        replica_manager: Arc<ReplicaManager>,
        controller: Controller,
    }

    async fn open(dir: &std::path::Path) -> TestNode {
        let log_manager =
            LogManager::open(LogManagerConfig::new(dir), LogConfig::default()).expect("open logs");
        let metadata_log = log_manager
            .get_or_create_log(
                &TopicPartition::new(METADATA_TOPIC, 0),
                Uuid::nil(),
                crate::server::metadata_log_config(),
            )
            .expect("metadata log");
        metadata_log.update_config(crate::server::metadata_log_config());
        let replica_manager = Arc::new(ReplicaManager::new(
            NODE_ID,
            log_manager.clone(),
            LogConfig::default(),
            crate::config::ReplicationConfig::default(),
        ));
        let voters = [(NODE_ID as NodeId, Node::new("127.0.0.1", 1))].into();
        let network = moldau_controller::InProcessNetwork::new();
        let controller = Controller::start(
            NODE_ID,
            QuorumRole::Voter,
            voters,
            metadata_log,
            replica_manager.clone(),
            network.endpoint(NODE_ID as NodeId),
            &QuorumConfig::default(),
        )
        .await
        .expect("controller starts");
        controller
            .quorum()
            .wait_for_leader(Duration::from_secs(10))
            .await
            .expect("a single voter leads");
        TestNode {
            log_manager,
            replica_manager,
            controller,
        }
    }

    impl TestNode {
        async fn close(self) {
            self.controller.shutdown().await.expect("quorum stops");
            self.log_manager.shutdown().expect("shutdown");
        }

        /// Commits records as given, without the checks a handler's `decide` makes: this is
        /// how logs written by earlier versions came to hold duplicates.
        async fn commit_unchecked(&self, records: Vec<MetadataRecord>) {
            self.controller
                .write(|_| Ok::<_, BrokerError>((records, ())))
                .await
                .expect("commit");
        }

        fn hosts(&self, topic: &str, partition: i32) -> bool {
            let tp = TopicPartition::new(topic, partition);
            self.replica_manager.partition(&tp).is_some()
        }
    }

    fn topic(name: &str, topic_id: Uuid, partitions: i32) -> Vec<MetadataRecord> {
        let mut records = vec![MetadataRecord::Topic {
            name: name.into(),
            topic_id,
        }];
        records.extend(
            (0..partitions).map(|partition_id| MetadataRecord::Partition {
                topic_id,
                partition_id,
                replicas: vec![NODE_ID],
                isr: vec![NODE_ID],
                leader: NODE_ID,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: vec![],
                removing_replicas: vec![],
                eligible_leader_replicas: Vec::new(),
                last_known_elr: Vec::new(),
            }),
        );
        records
    }

    #[tokio::test]
    async fn a_log_with_duplicate_remove_topic_and_topic_names_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let (removed, first_b, second_b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let node = open(dir.path()).await;
        node.commit_unchecked(topic("a", removed, 1)).await;
        node.commit_unchecked(vec![MetadataRecord::RemoveTopic { topic_id: removed }])
            .await;
        node.commit_unchecked(vec![MetadataRecord::RemoveTopic { topic_id: removed }])
            .await;
        node.commit_unchecked(topic("b", first_b, 1)).await;
        node.commit_unchecked(topic("b", second_b, 2)).await;
        assert!(node.hosts("b", 1) && !node.hosts("a", 0));
        node.close().await;

        let node = open(dir.path()).await;
        let image = node.controller.image();
        assert!(image.topic_by_name("a").is_none());
        assert_eq!(image.topics().len(), 1);
        let b = image.topic_by_name("b").unwrap();
        assert_eq!((b.topic_id, b.partitions.len()), (second_b, 2));
        assert!(node.hosts("b", 0) && node.hosts("b", 1) && !node.hosts("a", 0));
        assert!(!dir.path().join("a-0").exists());
        // The superseded id is gone for good: deleting the live topic leaves nothing.
        node.commit_unchecked(vec![MetadataRecord::RemoveTopic { topic_id: second_b }])
            .await;
        assert!(node.controller.image().topics().is_empty());
        node.close().await;
        let node = open(dir.path()).await;
        assert!(node.controller.image().topics().is_empty());
        node.close().await;
    }

    #[tokio::test]
    async fn a_partition_whose_log_cannot_be_created_is_offline_until_reconciled() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where the partition's dir must go: creating the log fails.
        let obstacle = dir.path().join("c-0");
        std::fs::write(&obstacle, b"in the way").unwrap();
        let node = open(dir.path()).await;
        node.commit_unchecked(topic("c", Uuid::new_v4(), 2)).await;
        // Committed, hence in the image, whatever the disk did.
        assert!(node.controller.image().topic_by_name("c").is_some());
        assert!(!node.hosts("c", 0) && node.hosts("c", 1));
        let tp = TopicPartition::new("c", 0);
        let refused = node.replica_manager.append_records(
            &tp,
            &mut [],
            1,
            moldau_storage::AppendOrigin::Client,
            None,
        );
        assert!(matches!(
            refused,
            Err(crate::replica_manager::AppendError::Kafka(
                kafka_protocol::ResponseError::KafkaStorageError
            ))
        ));
        node.replica_manager.reconcile();
        assert!(!node.hosts("c", 0));
        node.close().await;

        // The node starts with the obstacle still there, and heals once it is gone.
        let node = open(dir.path()).await;
        assert!(!node.hosts("c", 0) && node.hosts("c", 1));
        assert!(node.replica_manager.has_pending_effects());
        std::fs::remove_file(&obstacle).unwrap();
        node.replica_manager.reconcile();
        assert!(node.hosts("c", 0));
        assert!(!node.replica_manager.has_pending_effects());
        node.close().await;
    }

    fn credential(name: &str, mechanism: i8) -> MetadataRecord {
        MetadataRecord::UserScramCredential {
            name: name.into(),
            mechanism,
            salt: b"salt".to_vec().into(),
            stored_key: vec![1; 32].into(),
            server_key: vec![2; 32].into(),
            iterations: 4096,
        }
    }

    fn leave_bootstrap_records(dir: &std::path::Path, records: &[MetadataRecord]) {
        let path = dir.join(crate::meta_properties::BOOTSTRAP_RECORDS_FILE);
        std::fs::write(path, serde_json::to_vec(records).unwrap()).unwrap();
    }

    #[tokio::test]
    async fn bootstrap_records_are_committed_once_before_the_first_write() {
        let dir = tempfile::tempdir().unwrap();
        leave_bootstrap_records(dir.path(), &[credential("alice", 1), credential("bob", 2)]);
        let node = open(dir.path()).await;
        assert!(node.controller.image().scram_users().next().is_none());
        // The first write decides against an image that has them.
        let seen = node
            .controller
            .write(|image| {
                let seen = image.scram_credential("alice", 1).is_some()
                    && image.scram_credential("bob", 2).is_some();
                Ok::<_, BrokerError>((topic("t", Uuid::new_v4(), 1), seen))
            })
            .await
            .unwrap();
        assert!(seen);
        let first_offset = node.controller.image().offset;
        // A removal sticks: the records are never committed again, not by a later write
        // and not after a restart.
        node.commit_unchecked(vec![MetadataRecord::RemoveUserScramCredential {
            name: "alice".into(),
            mechanism: 1,
        }])
        .await;
        node.commit_unchecked(topic("u", Uuid::new_v4(), 1)).await;
        node.close().await;
        let node = open(dir.path()).await;
        node.commit_unchecked(topic("v", Uuid::new_v4(), 1)).await;
        let image = node.controller.image();
        assert!(image.scram_credential("alice", 1).is_none());
        assert!(image.scram_credential("bob", 2).is_some());
        assert!(image.offset > first_offset);
        node.close().await;
    }

    #[tokio::test]
    async fn bootstrap_records_found_on_a_log_that_holds_records_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let node = open(dir.path()).await;
        node.commit_unchecked(topic("t", Uuid::new_v4(), 1)).await;
        node.close().await;
        leave_bootstrap_records(dir.path(), &[credential("alice", 1)]);
        let node = open(dir.path()).await;
        node.commit_unchecked(topic("u", Uuid::new_v4(), 1)).await;
        assert!(node.controller.image().scram_users().next().is_none());
        node.close().await;
    }
}
