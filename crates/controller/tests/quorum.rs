//! Three controllers over the in-process transport: election, replication, failover,
//! restart and partitions. Every wait is bounded.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use moldau_controller::{
    InProcessNetwork, MetadataQuorum, NoPublisher, Node, NodeId, QuorumConfig, QuorumError,
    QUORUM_STATE_FILE,
};
use moldau_metadata::{MetadataImage, MetadataRecord, Uuid};
use moldau_storage::{Log, LogConfig, LogManager, LogManagerConfig, TopicPartition};
use std::sync::Arc;
use tempfile::TempDir;
use tokio::time::{sleep, timeout};

const ELECTION_MS: u64 = 200;

/// Bound for anything that needs an election: several election timeouts.
const ELECTION_BOUND: Duration = Duration::from_millis(ELECTION_MS * 2 * 8);

fn config() -> QuorumConfig {
    QuorumConfig {
        controller_quorum_election_timeout_ms: ELECTION_MS,
        // Followers stand after 150 to 200 ms without the leader; heartbeats every 33 ms.
        controller_quorum_fetch_timeout_ms: 2 * ELECTION_MS,
        ..QuorumConfig::default()
    }
}

struct Cluster {
    managers: BTreeMap<NodeId, Arc<LogManager>>,
    net: InProcessNetwork,
    voters: BTreeMap<NodeId, Node>,
    dirs: BTreeMap<NodeId, TempDir>,
    nodes: BTreeMap<NodeId, MetadataQuorum>,
    config: QuorumConfig,
}

impl Cluster {
    async fn start(config: QuorumConfig) -> Cluster {
        Self::start_n(config, 3).await
    }

    async fn start_n(config: QuorumConfig, n: u64) -> Cluster {
        let voters: BTreeMap<NodeId, Node> = (1..=n)
            .map(|id| (id, Node::new("localhost", 9093 + id as u16)))
            .collect();
        let mut cluster = Cluster {
            managers: BTreeMap::new(),
            net: InProcessNetwork::new(),
            dirs: voters
                .keys()
                .map(|id| (*id, tempfile::tempdir().unwrap()))
                .collect(),
            voters,
            nodes: BTreeMap::new(),
            config,
        };
        for id in 1..=n {
            cluster.start_node(id).await;
        }
        cluster
    }

    async fn start_node(&mut self, id: NodeId) {
        let dir = self.dirs[&id].path();
        let transport = self.net.endpoint(id);
        let voters = self.voters.clone();
        let manager = LogManager::open(LogManagerConfig::new(dir), metadata_log_config()).unwrap();
        let log = manager
            .get_or_create_log(&metadata_tp(), Uuid::nil(), metadata_log_config())
            .unwrap();
        self.managers.insert(id, manager);
        let quorum = MetadataQuorum::start_on_log(
            id,
            voters,
            log,
            Arc::new(NoPublisher),
            transport,
            &self.config,
        )
        .await
        .expect("start");
        self.nodes.insert(id, quorum);
    }

    fn log(&self, id: NodeId) -> Option<Arc<Log>> {
        self.managers.get(&id)?.get_log(&metadata_tp())
    }

    async fn stop_node(&mut self, id: NodeId) {
        self.nodes.remove(&id).unwrap().shutdown().await.unwrap();
        if let Some(manager) = self.managers.remove(&id) {
            manager.shutdown().unwrap();
        }
    }

    fn node(&self, id: NodeId) -> &MetadataQuorum {
        &self.nodes[&id]
    }

    /// The leader that every node in `among` agrees on, once there is one.
    async fn leader_among(&self, among: &[NodeId]) -> NodeId {
        bounded(ELECTION_BOUND, "a leader", async {
            loop {
                let seen: Vec<_> = among.iter().map(|id| self.node(*id).leader_id()).collect();
                if let Some(Some(leader)) = seen.first() {
                    if among.contains(leader)
                        && seen.iter().all(|l| *l == Some(*leader))
                        && self.node(*leader).is_leader()
                    {
                        return *leader;
                    }
                }
                sleep(Duration::from_millis(10)).await;
            }
        })
        .await
    }

    async fn leader(&self) -> NodeId {
        let ids: Vec<_> = self.nodes.keys().copied().collect();
        self.leader_among(&ids).await
    }

    /// Waits until `id`'s image satisfies `check`.
    async fn wait_image(&self, id: NodeId, what: &str, check: impl Fn(&MetadataImage) -> bool) {
        let mut images = self.node(id).subscribe();
        bounded(ELECTION_BOUND, what, async {
            loop {
                if check(&images.borrow_and_update()) {
                    return;
                }
                let _ = timeout(Duration::from_millis(50), images.changed()).await;
            }
        })
        .await
    }

    fn followers(&self, leader: NodeId) -> Vec<NodeId> {
        self.nodes
            .keys()
            .copied()
            .filter(|id| *id != leader)
            .collect()
    }
}

/// The metadata log's config (as the broker's `metadata_log_config`): also the manager's
/// default, since a restart reopens existing logs with the default, not the create config.
fn metadata_log_config() -> LogConfig {
    LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

fn metadata_tp() -> TopicPartition {
    TopicPartition::new(moldau_controller::METADATA_TOPIC, 0)
}

async fn bounded<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn topic(name: &str) -> Vec<MetadataRecord> {
    vec![MetadataRecord::Topic {
        name: name.to_string(),
        topic_id: Uuid::new_v4(),
    }]
}

fn has(name: &str) -> impl Fn(&MetadataImage) -> bool + '_ {
    move |image| image.topic_by_name(name).is_some()
}

#[tokio::test]
async fn three_nodes_elect_one_leader() {
    let cluster = Cluster::start(config()).await;
    let leader = cluster.leader().await;
    let leaders: Vec<_> = cluster
        .nodes
        .values()
        .filter(|q| q.is_leader())
        .map(|q| q.node_id())
        .collect();
    assert_eq!(leaders, vec![leader]);
}

#[tokio::test]
async fn a_proposal_on_the_leader_is_applied_on_all_three() {
    let cluster = Cluster::start(config()).await;
    let leader = cluster.leader().await;
    let first = bounded(
        ELECTION_BOUND,
        "commit",
        cluster.node(leader).propose(topic("orders")),
    )
    .await
    .unwrap();
    // The leader's own image already holds it when propose returns.
    assert!(cluster
        .node(leader)
        .image()
        .topic_by_name("orders")
        .is_some());
    for id in 1..=3 {
        cluster
            .wait_image(id, "orders everywhere", has("orders"))
            .await;
        assert_eq!(
            cluster.node(id).image().offset,
            first,
            "same offsets on node {id}"
        );
        if let Some(log) = cluster.log(id) {
            // Kafka's layout: the record's offset in __cluster_metadata-0 is the image's
            // offset, and the batch's leader epoch is the Raft term.
            assert_eq!(log.log_end_offset(), first + 1);
            let term = cluster.node(leader).metrics().borrow().current_term;
            assert_eq!(log.latest_epoch(), Some(term as i32));
        }
    }
}

#[tokio::test]
async fn a_proposal_on_a_follower_is_refused_with_the_leader_id() {
    let cluster = Cluster::start(config()).await;
    let leader = cluster.leader().await;
    for follower in cluster.followers(leader) {
        let err = cluster
            .node(follower)
            .propose(topic("nope"))
            .await
            .unwrap_err();
        match err {
            QuorumError::NotController { leader_id } => assert_eq!(leader_id, Some(leader)),
            other => panic!("expected NotController, got {other}"),
        }
    }
    assert!(cluster.node(leader).image().topic_by_name("nope").is_none());
}

#[tokio::test]
async fn killing_the_leader_elects_another_and_loses_nothing_committed() {
    let mut cluster = Cluster::start(config()).await;
    let old = cluster.leader().await;
    cluster.node(old).propose(topic("before")).await.unwrap();
    cluster.stop_node(old).await;

    let survivors: Vec<_> = cluster.nodes.keys().copied().collect();
    let new = cluster.leader_among(&survivors).await;
    assert_ne!(new, old);
    bounded(
        ELECTION_BOUND,
        "commit on the new leader",
        cluster.node(new).propose(topic("after")),
    )
    .await
    .unwrap();
    for id in survivors {
        cluster.wait_image(id, "before", has("before")).await;
        cluster.wait_image(id, "after", has("after")).await;
    }
}

#[tokio::test]
async fn a_restarted_node_recovers_its_log_and_vote_and_catches_up() {
    let mut cluster = Cluster::start(config()).await;
    let leader = cluster.leader().await;
    cluster.node(leader).propose(topic("one")).await.unwrap();
    let follower = cluster.followers(leader)[0];
    cluster.wait_image(follower, "one", has("one")).await;
    let term = cluster.node(follower).metrics().borrow().current_term;
    cluster.stop_node(follower).await;
    assert!(cluster.dirs[&follower]
        .path()
        .join("__cluster_metadata-0")
        .join(QUORUM_STATE_FILE)
        .exists());

    // Two of three still commit.
    cluster.node(leader).propose(topic("two")).await.unwrap();

    // Cut off at restart, it still has what it knew committed: re-applied from its own log.
    cluster.net.isolate(follower);
    cluster.start_node(follower).await;
    assert!(cluster
        .node(follower)
        .image()
        .topic_by_name("one")
        .is_some());
    cluster.net.heal(follower);
    let restarted = cluster.node(follower).metrics().borrow().clone();
    assert!(
        restarted.current_term >= term,
        "vote recovered from quorum-state"
    );
    assert!(
        restarted.last_log_index.unwrap_or(0) >= 2,
        "log recovered from disk: {:?}",
        restarted.last_log_index
    );
    cluster.wait_image(follower, "one", has("one")).await;
    cluster.wait_image(follower, "two", has("two")).await;
    assert_eq!(
        cluster.node(follower).image().to_records(),
        cluster.node(leader).image().to_records()
    );
}

#[tokio::test]
async fn a_partitioned_minority_cannot_commit() {
    let cluster = Cluster::start(config()).await;
    let old = cluster.leader().await;
    cluster.node(old).propose(topic("shared")).await.unwrap();
    for id in 1..=3 {
        cluster.wait_image(id, "shared", has("shared")).await;
    }

    cluster.net.isolate(old);
    // The cut-off leader cannot reach a majority: its proposal never commits.
    let minority = timeout(
        Duration::from_millis(ELECTION_MS * 4),
        cluster.node(old).propose(topic("minority")),
    )
    .await;
    assert!(
        !matches!(minority, Ok(Ok(_))),
        "minority committed: {minority:?}"
    );
    assert!(cluster
        .node(old)
        .image()
        .topic_by_name("minority")
        .is_none());

    // The majority elects a leader and goes on.
    let majority = cluster.followers(old);
    let new = cluster.leader_among(&majority).await;
    bounded(
        ELECTION_BOUND,
        "majority commit",
        cluster.node(new).propose(topic("majority")),
    )
    .await
    .unwrap();

    // Healed, the old leader drops its uncommitted entry and follows.
    cluster.net.heal(old);
    cluster.wait_image(old, "majority", has("majority")).await;
    for id in 1..=3 {
        assert!(cluster.node(id).image().topic_by_name("minority").is_none());
    }
    assert_eq!(cluster.leader().await, new);
}

#[tokio::test]
async fn every_node_snapshots_by_time_once_records_were_applied() {
    let cluster = Cluster::start(QuorumConfig {
        metadata_log_max_record_bytes_between_snapshots: u64::MAX,
        metadata_log_max_snapshot_interval_ms: 300,
        ..config()
    })
    .await;
    let leader = cluster.leader().await;
    cluster.node(leader).propose(topic("t")).await.unwrap();
    for id in 1..=3 {
        cluster.wait_image(id, "t", has("t")).await;
        let applied = cluster.node(id).metrics().borrow().last_applied;
        let mut metrics = cluster.node(id).metrics();
        bounded(ELECTION_BOUND, "a snapshot by time", async {
            loop {
                let snapshot = metrics.borrow_and_update().snapshot;
                if snapshot >= applied {
                    return;
                }
                let _ = metrics.changed().await;
            }
        })
        .await;
    }
}

#[tokio::test]
async fn a_node_behind_a_purged_log_catches_up_by_snapshot() {
    let mut cluster = Cluster::start(QuorumConfig {
        // A few topic records.
        metadata_log_max_record_bytes_between_snapshots: 200,
        metadata_log_entries_kept_after_snapshot: 0,
        ..config()
    })
    .await;
    let leader = cluster.leader().await;
    let follower = cluster.followers(leader)[0];
    let stopped_at = cluster.node(follower).metrics().borrow().last_log_index;
    cluster.stop_node(follower).await;
    for i in 0..20 {
        cluster
            .node(leader)
            .propose(topic(&format!("t{i}")))
            .await
            .unwrap();
    }
    // The leader no longer has the entries the follower misses: only a snapshot helps.
    let mut metrics = cluster.node(leader).metrics();
    bounded(ELECTION_BOUND, "a purge past the follower", async {
        loop {
            let purged = metrics.borrow_and_update().purged.map(|p| p.index);
            if purged > stopped_at {
                return;
            }
            let _ = metrics.changed().await;
        }
    })
    .await;
    cluster.start_node(follower).await;
    cluster.wait_image(follower, "t19", has("t19")).await;
    let snapshot = cluster.node(follower).metrics().borrow().snapshot;
    assert!(
        snapshot.map(|s| s.index) > stopped_at,
        "installed a snapshot: {snapshot:?}"
    );
    assert_eq!(
        cluster.node(follower).image().to_records(),
        cluster.node(leader).image().to_records()
    );
    assert_eq!(
        cluster.node(follower).image().offset,
        cluster.node(leader).image().offset
    );
    if let Some(theirs) = cluster.log(follower) {
        // The follower's log went on at the snapshot's offset: offsets stay aligned. (The
        // leader may have changed meanwhile on a slow machine: ask the current one.)
        let leader = cluster.leader().await;
        cluster.node(leader).propose(topic("after")).await.unwrap();
        cluster.wait_image(follower, "after", has("after")).await;
        let ours = cluster.log(leader).unwrap();
        assert_eq!(theirs.log_end_offset(), ours.log_end_offset());
        assert_eq!(
            theirs.log_end_offset(),
            cluster.node(follower).image().offset + 1
        );
    }
}

#[tokio::test]
async fn a_quorum_of_one_commits_alone_and_restarts_with_its_image() {
    let mut cluster = Cluster::start_n(config(), 1).await;
    let quorum = cluster.node(1);
    let offset = bounded(ELECTION_BOUND, "commit", async {
        loop {
            match quorum.propose(topic("solo")).await {
                Ok(offset) => return offset,
                // Not leader yet: the single voter elects itself after one timeout.
                Err(QuorumError::NotController { .. }) => sleep(Duration::from_millis(10)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    cluster.stop_node(1).await;

    cluster.start_node(1).await;
    let image = cluster.node(1).image();
    assert!(image.topic_by_name("solo").is_some());
    assert_eq!(image.offset, offset);
    cluster.stop_node(1).await;
}
