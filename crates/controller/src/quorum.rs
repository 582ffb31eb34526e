//! `MetadataQuorum`: one controller's handle on the metadata quorum.

use std::collections::BTreeMap;
use std::sync::Arc;

use moldau_metadata::{MetadataImage, MetadataRecord};
use moldau_storage::{CleanupPolicy, Log};
use openraft::error::{
    ChangeMembershipError, CheckIsLeaderError, ClientWriteError, InitializeError, RaftError,
};
use openraft::{ChangeMembers, Config, RaftMetrics, SnapshotPolicy};
use tokio::sync::watch;

use crate::network::{ControllerTransport, NetworkFactory};
use crate::raft_files::LogStoreError;
use crate::state_machine::{MetadataPublisher, MetadataStateMachine};
use crate::storage_log_store::StorageLogStore;
use crate::types::{Node, NodeId, Raft};

/// Timing and retention of the quorum, named after Kafka's KRaft settings.
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    /// `controller.quorum.election.timeout.ms` (Kafka default 1000): the longest an election
    /// round lasts before a candidate tries again.
    pub controller_quorum_election_timeout_ms: u64,
    /// `controller.quorum.fetch.timeout.ms` (Kafka default 2000): a follower that hears
    /// nothing from the leader for about this long (between ¾ and all of it) stands for
    /// election, as a Kafka voter whose fetches go unanswered.
    pub controller_quorum_fetch_timeout_ms: u64,
    /// `metadata.log.max.record.bytes.between.snapshots` (Kafka default 20 MiB): a snapshot
    /// is taken once this many bytes of records have been applied since the last one.
    pub metadata_log_max_record_bytes_between_snapshots: u64,
    /// `metadata.log.max.snapshot.interval.ms` (Kafka default one hour; 0 turns it off): a
    /// snapshot is taken once this long has passed since the last one if any record was
    /// applied meanwhile.
    pub metadata_log_max_snapshot_interval_ms: u64,
    /// Entries kept in the log behind a snapshot, so a slightly lagging follower catches up
    /// from the log rather than by a snapshot.
    pub metadata_log_entries_kept_after_snapshot: u64,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        QuorumConfig {
            controller_quorum_election_timeout_ms: 1000,
            controller_quorum_fetch_timeout_ms: 2000,
            metadata_log_max_record_bytes_between_snapshots: 20 * 1024 * 1024,
            metadata_log_max_snapshot_interval_ms: 3_600_000,
            metadata_log_entries_kept_after_snapshot: 1000,
        }
    }
}

impl QuorumConfig {
    fn raft_config(&self) -> Result<Config, QuorumError> {
        // openraft's follower waits out the leader's lease (its `election_timeout_max`) and
        // then a random election timeout in [min, max) before standing: with max = half the
        // fetch timeout that is ¾ to all of `controller.quorum.fetch.timeout.ms`. A round
        // never lasts longer than `controller.quorum.election.timeout.ms`. Heartbeats fit
        // several times into the shortest timeout.
        let election_timeout_max = self
            .controller_quorum_election_timeout_ms
            .min(self.controller_quorum_fetch_timeout_ms / 2)
            .max(6);
        let election_timeout_min = election_timeout_max / 2;
        let config = Config {
            cluster_name: "moldau-metadata".to_string(),
            election_timeout_min,
            election_timeout_max,
            heartbeat_interval: (election_timeout_min / 3).max(1),
            // Kafka's rules count bytes and time, which openraft's policy cannot: the
            // quorum's snapshot task triggers snapshots (`snapshot_when_due`).
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: self.metadata_log_entries_kept_after_snapshot,
            // An entry holds up to 10,000 records (MAX_RECORDS_PER_USER_OP): a few per
            // AppendEntries keep a frame well under socket.request.max.bytes.
            max_payload_entries: 16,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| QuorumError::Config(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// Only the active controller (the Raft leader) accepts writes (Kafka's
    /// NOT_CONTROLLER); `leader_id` is the leader this node knows of, if any.
    #[error("not the active controller (leader: {leader_id:?})")]
    NotController { leader_id: Option<NodeId> },
    #[error("invalid quorum config: {0}")]
    Config(String),
    #[error("node {node_id} is not among the voters {voters:?}")]
    NotAVoter {
        node_id: NodeId,
        voters: Vec<NodeId>,
    },
    /// An observer (a broker-only node) must not be a voter, and a voter cannot be added
    /// as an observer.
    #[error("node {node_id} is a voter ({voters:?}), not an observer")]
    IsAVoter {
        node_id: NodeId,
        voters: Vec<NodeId>,
    },
    #[error(transparent)]
    LogStore(#[from] LogStoreError),
    #[error("metadata state machine: {0}")]
    StateMachine(#[from] std::io::Error),
    /// The Raft core stopped (storage failure or shutdown): this node writes nothing more.
    #[error("metadata quorum stopped: {0}")]
    Stopped(String),
    /// AddRaftVoter of a voter (Kafka's DUPLICATE_VOTER).
    #[error("node {node_id} is already a voter")]
    DuplicateVoter { node_id: NodeId },
    /// RemoveRaftVoter of a node that is no voter (Kafka's VOTER_NOT_FOUND).
    #[error("node {node_id} is not a voter (with that directory id)")]
    VoterNotFound { node_id: NodeId },
    /// RemoveRaftVoter of the only voter (Kafka's INVALID_REQUEST).
    #[error("cannot remove node {node_id}, the only voter of the metadata quorum")]
    LastVoter { node_id: NodeId },
    #[error("{0}")]
    Timeout(String),
    #[error("metadata quorum: {0}")]
    Raft(String),
}

/// The log store and state machine on `metadata_log`, after its checks and the migration
/// of a log from before the quorum.
fn open_log(
    node_id: NodeId,
    voters: &BTreeMap<NodeId, Node>,
    metadata_log: Arc<Log>,
    publisher: Arc<dyn MetadataPublisher>,
) -> Result<(StorageLogStore, MetadataStateMachine), QuorumError> {
    // Only Raft may remove entries: retention or compaction would cut the log under it.
    let log_config = metadata_log.config();
    if log_config.retention_ms != -1
        || log_config.retention_bytes != -1
        || !matches!(log_config.cleanup_policy, CleanupPolicy::Delete)
    {
        return Err(QuorumError::Config(
            "the metadata log needs retention.ms = retention.bytes = -1 and cleanup.policy = delete".into(),
        ));
    }
    crate::storage_log_store::migrate_legacy_log(&metadata_log, node_id, voters)?;
    let state_machine = MetadataStateMachine::open_in(metadata_log.dir(), publisher)?;
    let log_store = StorageLogStore::open(metadata_log)?.with_state_machine(state_machine.clone());
    Ok((log_store, state_machine))
}

/// Voter `node_id`'s membership entry, if it is a voter of `directory_id` (an entry without
/// a directory id, a static voter's, matches any); else `VoterNotFound`, as Kafka answers a
/// voter key (id and directory id) it does not know.
fn voter_of_directory<'a>(
    membership: &'a openraft::Membership<NodeId, Node>,
    node_id: NodeId,
    directory_id: Option<&str>,
) -> Result<&'a Node, QuorumError> {
    membership
        .voter_ids()
        .any(|id| id == node_id)
        .then(|| membership.get_node(&node_id))
        .flatten()
        .filter(|node| match (directory_id, node.directory_id.as_deref()) {
            (Some(wanted), Some(dir)) => wanted == dir,
            _ => true,
        })
        .ok_or(QuorumError::VoterNotFound { node_id })
}

fn check_voter(node_id: NodeId, voters: &BTreeMap<NodeId, Node>) -> Result<(), QuorumError> {
    if voters.contains_key(&node_id) {
        return Ok(());
    }
    Err(QuorumError::NotAVoter {
        node_id,
        voters: voters.keys().copied().collect(),
    })
}

/// A voter's or observer's replication state as the leader sees it (Kafka's
/// DescribeQuorum ReplicaState).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterState {
    pub node_id: NodeId,
    /// The metadata-log offset after the last entry the leader knows the voter holds; -1
    /// when unknown.
    pub log_end_offset: i64,
    /// A dynamic quorum's voter: its metadata log directory's id (KIP-853).
    pub directory_id: Option<String>,
}

/// The quorum as its leader sees it (DescribeQuorum).
#[derive(Clone, Debug)]
pub struct QuorumState {
    pub leader_id: NodeId,
    /// The Raft term: Kafka's leader epoch of the metadata partition.
    pub leader_epoch: u64,
    /// The offset after the last applied committed entry.
    pub high_watermark: i64,
    pub voters: Vec<VoterState>,
    /// The observers (openraft learners: broker-only nodes) the leader replicates to.
    pub observers: Vec<VoterState>,
}

/// How long a membership change (adding or removing an observer) may wait for an earlier
/// one to commit and for its own commit.
const MEMBERSHIP_CHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const MEMBERSHIP_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// One controller: its Raft, log store and state machine. Cheap to share behind an `Arc`.
pub struct MetadataQuorum {
    node_id: NodeId,
    /// A broker-only node: an openraft learner that follows the committed log and never
    /// stands for election (Kafka's observer).
    observer: bool,
    raft: Raft,
    /// The Raft log on `__cluster_metadata-0`, for offsets.
    log_store: StorageLogStore,
    state_machine: MetadataStateMachine,
    transport: Arc<dyn ControllerTransport>,
    /// openraft accepts one membership change at a time (`InProgress` otherwise).
    membership_lock: tokio::sync::Mutex<()>,
    /// `snapshot_when_due`, stopped at shutdown.
    snapshot_task: tokio::task::AbortHandle,
}

/// How often the snapshot rules are checked: a check is one lock and two comparisons.
const SNAPSHOT_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Asks openraft for a snapshot whenever Kafka's rules say one is due (every node snapshots
/// its own state machine, as every Kafka controller and broker does). openraft ignores a
/// request while a snapshot is being built, and purges the log behind a new snapshot
/// (keeping `max_in_snapshot_log_to_keep` entries). Ends when the Raft core stops.
async fn snapshot_when_due(raft: Raft, state_machine: MetadataStateMachine, config: QuorumConfig) {
    let max_interval = (config.metadata_log_max_snapshot_interval_ms > 0)
        .then(|| std::time::Duration::from_millis(config.metadata_log_max_snapshot_interval_ms));
    loop {
        tokio::time::sleep(SNAPSHOT_CHECK_INTERVAL).await;
        if state_machine.snapshot_due(
            config.metadata_log_max_record_bytes_between_snapshots,
            max_interval,
        ) && raft.trigger().snapshot().await.is_err()
        {
            return;
        }
    }
}

impl MetadataQuorum {
    /// Starts this controller's Raft on `metadata_log`, the storage `Log` of
    /// `__cluster_metadata-0` (Kafka's layout: see `storage_log_store`). The log must have
    /// retention off; the vote, purge point and snapshot live in its directory. `voters` is
    /// the static voter set (Kafka's `controller.quorum.voters`). On a fresh cluster the
    /// voter with the lowest id initializes it (writes the first membership entry); the
    /// others wait to hear from it. One initializer avoids racing initial logs; openraft
    /// would accept identical ones, but one is simpler to reason about. Until the lowest
    /// voter has started once, no leader can be elected. A node that has a log (a restart)
    /// never initializes again.
    ///
    /// `publisher` sees every committed change before readers do (see `state_machine`). A
    /// log written by the quorum-of-one controller of earlier versions is migrated first
    /// (`storage_log_store::migrate_legacy_log`).
    pub async fn start_on_log(
        node_id: NodeId,
        voters: BTreeMap<NodeId, Node>,
        metadata_log: Arc<Log>,
        publisher: Arc<dyn MetadataPublisher>,
        transport: Arc<dyn ControllerTransport>,
        config: &QuorumConfig,
    ) -> Result<MetadataQuorum, QuorumError> {
        check_voter(node_id, &voters)?;
        let (log_store, state_machine) = open_log(node_id, &voters, metadata_log, publisher)?;
        Self::start_with(
            node_id,
            voters,
            false,
            log_store,
            state_machine,
            transport,
            config,
        )
        .await
    }

    /// Starts this controller in a dynamic quorum (KIP-853, `controller.quorum.bootstrap.
    /// servers`): `initial_voters` are the voters `storage format` wrote (`--standalone` or
    /// `--initial-controllers`; the lowest of them initializes a fresh quorum), or none
    /// (`--no-initial-controllers`): the node then waits, uninitialized, until the active
    /// controller adds it (AddRaftVoter). After the first start the log's membership says
    /// who the voters are.
    pub async fn start_dynamic_on_log(
        node_id: NodeId,
        initial_voters: BTreeMap<NodeId, Node>,
        metadata_log: Arc<Log>,
        publisher: Arc<dyn MetadataPublisher>,
        transport: Arc<dyn ControllerTransport>,
        config: &QuorumConfig,
    ) -> Result<MetadataQuorum, QuorumError> {
        let (log_store, state_machine) =
            open_log(node_id, &initial_voters, metadata_log, publisher)?;
        Self::start_with(
            node_id,
            initial_voters,
            false,
            log_store,
            state_machine,
            transport,
            config,
        )
        .await
    }

    /// Starts this node as an observer of the quorum (Kafka's broker-only node): an
    /// openraft learner on `metadata_log` that never votes nor stands for election. It
    /// receives the committed log once the active controller adds it
    /// ([`MetadataQuorum::add_observer`], done when it registers as a broker) and applies it
    /// like a voter does. `voters` are the controllers; this node must not be one of them.
    pub async fn start_observer_on_log(
        node_id: NodeId,
        voters: BTreeMap<NodeId, Node>,
        metadata_log: Arc<Log>,
        publisher: Arc<dyn MetadataPublisher>,
        transport: Arc<dyn ControllerTransport>,
        config: &QuorumConfig,
    ) -> Result<MetadataQuorum, QuorumError> {
        if voters.contains_key(&node_id) {
            return Err(QuorumError::IsAVoter {
                node_id,
                voters: voters.keys().copied().collect(),
            });
        }
        let (log_store, state_machine) = open_log(node_id, &voters, metadata_log, publisher)?;
        Self::start_with(
            node_id,
            voters,
            true,
            log_store,
            state_machine,
            transport,
            config,
        )
        .await
    }

    async fn start_with(
        node_id: NodeId,
        voters: BTreeMap<NodeId, Node>,
        observer: bool,
        log_store: StorageLogStore,
        state_machine: MetadataStateMachine,
        transport: Arc<dyn ControllerTransport>,
        config: &QuorumConfig,
    ) -> Result<MetadataQuorum, QuorumError> {
        let raft_config = Arc::new(config.raft_config()?);
        if observer {
            // The voter set is fixed when the quorum forms: a node that was a voter (say,
            // combined before) stays one in the log's membership, whatever its config says.
            let (mut log_store, mut state_machine) = (log_store.clone(), state_machine.clone());
            let membership = openraft::StorageHelper::new(&mut log_store, &mut state_machine)
                .get_membership()
                .await
                .map_err(|e| QuorumError::Stopped(e.to_string()))?;
            let membership = membership.effective().membership();
            if membership.voter_ids().any(|id| id == node_id) {
                return Err(QuorumError::IsAVoter {
                    node_id,
                    voters: membership.voter_ids().collect(),
                });
            }
        }
        let raft = Raft::new(
            node_id,
            raft_config,
            NetworkFactory::new(transport.clone()),
            log_store.clone(),
            state_machine.clone(),
        )
        .await
        .map_err(|e| QuorumError::Stopped(e.to_string()))?;
        if observer {
            // A learner never stands anyway; this also holds should a membership entry
            // ever name it a voter: a broker-only node never becomes the active controller.
            raft.runtime_config().elect(false);
        }
        transport.serve(node_id, raft.clone());

        let lowest = voters.keys().next().copied();
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| QuorumError::Stopped(e.to_string()))?;
        let alone = voters.len() == 1 && !observer;
        if lowest == Some(node_id) && !initialized && !observer {
            match raft.initialize(voters).await {
                Ok(()) => tracing::info!(node_id, "initialized the metadata quorum"),
                // Another path (a vote or entries received meanwhile) got there first.
                Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                    tracing::info!(node_id, %e, "metadata quorum already initialized")
                }
                Err(e) => return Err(QuorumError::Raft(e.to_string())),
            }
        }
        if alone {
            // The only voter need not wait an election timeout to lead (a restart of a
            // single node is then as quick as before the quorum).
            raft.trigger()
                .elect()
                .await
                .map_err(|e| QuorumError::Stopped(e.to_string()))?;
        }
        let snapshot_task = tokio::spawn(snapshot_when_due(
            raft.clone(),
            state_machine.clone(),
            config.clone(),
        ))
        .abort_handle();
        Ok(MetadataQuorum {
            node_id,
            observer,
            raft,
            log_store,
            state_machine,
            transport,
            membership_lock: tokio::sync::Mutex::new(()),
            snapshot_task,
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Whether this node only observes the quorum (broker-only: a learner, no vote).
    pub fn is_observer(&self) -> bool {
        self.observer
    }

    /// Makes `node_id` an observer that the leader replicates the log to (openraft's
    /// `add_learner`, not waiting for it to catch up); `node` is where it is reached. Done
    /// on the active controller when a broker that is not a voter registers. Nothing to do
    /// when it already is one at that address. `NotController` on a follower; `IsAVoter`
    /// for a voter.
    pub async fn add_observer(&self, node_id: NodeId, node: Node) -> Result<(), QuorumError> {
        self.change_membership(node_id, |membership| {
            if membership.voter_ids().any(|id| id == node_id) {
                return Err(QuorumError::IsAVoter {
                    node_id,
                    voters: membership.voter_ids().collect(),
                });
            }
            Ok(match membership.get_node(&node_id) {
                Some(known) if *known == node => None,
                // A controller about to vote (a combined node of a dynamic quorum) is
                // replicated to at its controller listener, not where it registered.
                Some(known) if known.controller => None,
                // A restarted broker may be elsewhere: replace a learner's address.
                Some(_) => Some(ChangeMembers::SetNodes([(node_id, node.clone())].into())),
                None => Some(ChangeMembers::AddNodes([(node_id, node.clone())].into())),
            })
        })
        .await
    }

    /// KIP-853 AddRaftVoter: makes `node_id`, reached at `node` (its controller listener),
    /// a voter: first a learner that catches up with the log (within `timeout`), then a
    /// voter in a joint change. `DuplicateVoter` if it is one already.
    pub async fn add_voter(
        &self,
        node_id: NodeId,
        node: Node,
        timeout: std::time::Duration,
    ) -> Result<(), QuorumError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // A learner elsewhere (a combined node observing on its broker listener) is
        // reached at its controller listener from now on.
        self.change_membership(node_id, |membership| {
            if membership.voter_ids().any(|id| id == node_id) {
                return Err(QuorumError::DuplicateVoter { node_id });
            }
            Ok(match membership.get_node(&node_id) {
                Some(known) if *known == node => None,
                Some(_) => Some(ChangeMembers::SetNodes([(node_id, node.clone())].into())),
                None => Some(ChangeMembers::AddNodes([(node_id, node.clone())].into())),
            })
        })
        .await?;
        self.wait_caught_up(node_id, deadline).await?;
        self.change_membership(node_id, |membership| {
            Ok((!membership.voter_ids().any(|id| id == node_id))
                .then(|| ChangeMembers::AddVoterIds([node_id].into())))
        })
        .await
    }

    /// KIP-853 UpdateRaftVoter: voter `node_id` (of `directory_id`) is now reached at
    /// `node` (it restarted with another controller endpoint). `VoterNotFound` if it is no
    /// voter of that directory.
    pub async fn update_voter(
        &self,
        node_id: NodeId,
        directory_id: Option<&str>,
        node: Node,
    ) -> Result<(), QuorumError> {
        self.change_membership(node_id, |membership| {
            let known = voter_of_directory(membership, node_id, directory_id)?;
            Ok((*known != node).then(|| ChangeMembers::SetNodes([(node_id, node.clone())].into())))
        })
        .await
    }

    /// KIP-853 RemoveRaftVoter: `node_id` stops being a voter; it stays a learner when
    /// `keep_as_observer` (a combined node goes on as a broker). `VoterNotFound` if it is
    /// no voter (or one of another directory), `LastVoter` if it is the only one.
    pub async fn remove_voter(
        &self,
        node_id: NodeId,
        directory_id: Option<&str>,
        keep_as_observer: bool,
    ) -> Result<(), QuorumError> {
        self.change_membership(node_id, |membership| {
            voter_of_directory(membership, node_id, directory_id)?;
            if membership.voter_ids().count() == 1 {
                return Err(QuorumError::LastVoter { node_id });
            }
            Ok(Some(ChangeMembers::RemoveVoters([node_id].into())))
        })
        .await?;
        if !keep_as_observer {
            self.remove_observer(node_id).await?;
        }
        Ok(())
    }

    /// Waits until learner `node_id` holds everything committed when the wait began.
    async fn wait_caught_up(
        &self,
        node_id: NodeId,
        deadline: tokio::time::Instant,
    ) -> Result<(), QuorumError> {
        let mut metrics = self.raft.metrics();
        let target = metrics.borrow().last_applied.map(|l| l.index);
        loop {
            let caught_up = {
                let m = metrics.borrow_and_update();
                if m.current_leader != Some(self.node_id) {
                    return Err(QuorumError::NotController {
                        leader_id: m.current_leader,
                    });
                }
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&node_id))
                    .is_some_and(|matched| matched.map(|l| l.index) >= target)
            };
            if caught_up {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return Err(QuorumError::Timeout(format!(
                    "node {node_id} did not catch up with the metadata log in time"
                )));
            }
        }
    }

    /// Stops replicating to observer `node_id` and drops it from the membership (the
    /// voters stay as they are). Nothing to do when it is not an observer; voters are
    /// never removed here. `NotController` on a follower.
    pub async fn remove_observer(&self, node_id: NodeId) -> Result<(), QuorumError> {
        self.change_membership(node_id, |membership| {
            let learner = membership.learner_ids().any(|id| id == node_id);
            Ok(learner.then(|| ChangeMembers::RemoveNodes([node_id].into())))
        })
        .await
    }

    /// One membership change decided against the current membership (`None`: nothing to
    /// change), retried while an earlier change is still committing, bounded by
    /// [`MEMBERSHIP_CHANGE_TIMEOUT`].
    async fn change_membership(
        &self,
        node_id: NodeId,
        decide: impl Fn(
            &openraft::Membership<NodeId, Node>,
        ) -> Result<Option<ChangeMembers<NodeId, Node>>, QuorumError>,
    ) -> Result<(), QuorumError> {
        let deadline = tokio::time::Instant::now() + MEMBERSHIP_CHANGE_TIMEOUT;
        let _serialized = tokio::time::timeout_at(deadline, self.membership_lock.lock())
            .await
            .map_err(|_| QuorumError::Raft("membership change timed out".into()))?;
        loop {
            let metrics = self.raft.metrics().borrow().clone();
            if metrics.current_leader != Some(self.node_id) {
                return Err(QuorumError::NotController {
                    leader_id: metrics.current_leader,
                });
            }
            let Some(change) = decide(metrics.membership_config.membership())? else {
                return Ok(());
            };
            tracing::info!(
                node_id,
                ?change,
                "changing the metadata quorum's membership"
            );
            let outcome =
                tokio::time::timeout_at(deadline, self.raft.change_membership(change, true))
                    .await
                    .map_err(|_| QuorumError::Raft("membership change timed out".into()))?;
            match outcome {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    return Err(QuorumError::NotController {
                        leader_id: forward.leader_id,
                    })
                }
                // An earlier change (perhaps a previous leader's) is not committed yet.
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(MEMBERSHIP_RETRY).await;
                }
                Err(RaftError::Fatal(fatal)) => {
                    return Err(QuorumError::Stopped(fatal.to_string()))
                }
                Err(e) => return Err(QuorumError::Raft(e.to_string())),
            }
        }
    }

    /// Commits `records` as one batch and returns the offset of its first record, once it
    /// is committed and applied to this node's image. Only the leader accepts; a follower
    /// answers `NotController` with the leader it knows. The outcome of a call that is
    /// dropped (timeout) is unknown: the batch may still commit.
    pub async fn propose(&self, records: Vec<MetadataRecord>) -> Result<i64, QuorumError> {
        match self.raft.client_write(records).await {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(QuorumError::NotController {
                    leader_id: forward.leader_id,
                })
            }
            Err(RaftError::Fatal(fatal)) => Err(QuorumError::Stopped(fatal.to_string())),
            Err(e) => Err(QuorumError::Raft(e.to_string())),
        }
    }

    /// The image with every entry committed before this call applied, read on the leader
    /// (openraft's read index: the leader confirms it still leads): what a controller
    /// decides a write against. `NotController` on a follower.
    pub async fn leader_image(&self) -> Result<Arc<MetadataImage>, QuorumError> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(self.image()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                Err(QuorumError::NotController {
                    leader_id: forward.leader_id,
                })
            }
            // A leader cut off from its quorum cannot tell whether it still leads.
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(QuorumError::NotController { leader_id: None })
            }
            Err(RaftError::Fatal(fatal)) => Err(QuorumError::Stopped(fatal.to_string())),
        }
    }

    /// The quorum's replication state; only the leader knows it (`NotController` elsewhere).
    pub fn quorum_state(&self) -> Result<QuorumState, QuorumError> {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.current_leader != Some(self.node_id) {
            return Err(QuorumError::NotController {
                leader_id: metrics.current_leader,
            });
        }
        let offset_after = |index: Option<u64>| {
            index
                .and_then(|i| self.log_store.offset_after(i))
                .unwrap_or(-1)
        };
        let replication = metrics.replication.clone().unwrap_or_default();
        let state_of = |node_id: NodeId| {
            let matched = if node_id == self.node_id {
                metrics.last_log_index
            } else {
                replication
                    .get(&node_id)
                    .and_then(|m| m.as_ref())
                    .map(|log_id| log_id.index)
            };
            VoterState {
                node_id,
                log_end_offset: offset_after(matched),
                directory_id: metrics
                    .membership_config
                    .membership()
                    .get_node(&node_id)
                    .and_then(|node| node.directory_id.clone()),
            }
        };
        let membership = metrics.membership_config.membership();
        Ok(QuorumState {
            leader_id: self.node_id,
            leader_epoch: metrics.current_term,
            high_watermark: offset_after(metrics.last_applied.map(|l| l.index)),
            voters: membership.voter_ids().map(state_of).collect(),
            observers: membership.learner_ids().map(state_of).collect(),
        })
    }

    /// The image of everything this node has applied (committed, never more).
    pub fn image(&self) -> Arc<MetadataImage> {
        self.state_machine.image()
    }

    /// Follows the image as committed batches are applied.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.state_machine.subscribe()
    }

    /// The leader this node currently knows of (itself when it leads).
    pub fn leader_id(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        self.leader_id() == Some(self.node_id)
    }

    pub fn metrics(&self) -> watch::Receiver<RaftMetrics<NodeId, Node>> {
        self.raft.metrics()
    }

    /// Waits until this node knows a leader (itself or another), up to `timeout`.
    pub async fn wait_for_leader(
        &self,
        timeout: std::time::Duration,
    ) -> Result<NodeId, QuorumError> {
        let metrics = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a known leader")
            .await
            .map_err(|e| QuorumError::Raft(e.to_string()))?;
        Ok(metrics.current_leader.unwrap_or(self.node_id))
    }

    /// Stops serving and stops the Raft core; the log and vote stay on disk for a restart.
    pub async fn shutdown(&self) -> Result<(), QuorumError> {
        self.snapshot_task.abort();
        self.transport.stop_serving(self.node_id);
        self.raft
            .shutdown()
            .await
            .map_err(|e| QuorumError::Stopped(e.to_string()))
    }
}
