//! Observers (Kafka's broker-only nodes) over the in-process transport: openraft learners
//! added by the leader, applying the committed log, never electing, shown by
//! `quorum_state`, dropped again with the voters untouched. Every wait is bounded.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use moldau_controller::{
    InProcessNetwork, MetadataQuorum, NoPublisher, Node, NodeId, QuorumConfig, QuorumError,
};
use moldau_metadata::{MetadataImage, MetadataRecord, Uuid};
use moldau_storage::{LogConfig, LogManager, LogManagerConfig, TopicPartition};
use tempfile::TempDir;
use tokio::time::{sleep, timeout};

const ELECTION_MS: u64 = 200;
const BOUND: Duration = Duration::from_millis(ELECTION_MS * 2 * 8);
const OBSERVER: NodeId = 4;

fn config() -> QuorumConfig {
    QuorumConfig {
        controller_quorum_election_timeout_ms: ELECTION_MS,
        controller_quorum_fetch_timeout_ms: 2 * ELECTION_MS,
        ..QuorumConfig::default()
    }
}

fn metadata_log_config() -> LogConfig {
    LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    timeout(BOUND, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

struct Node4 {
    quorum: MetadataQuorum,
    manager: Arc<LogManager>,
}

/// Starts node `id` on `dir`: a voter when it is among `voters`, else an observer.
async fn start(
    id: NodeId,
    dir: &TempDir,
    voters: &BTreeMap<NodeId, Node>,
    net: &InProcessNetwork,
) -> Node4 {
    let manager =
        LogManager::open(LogManagerConfig::new(dir.path()), metadata_log_config()).unwrap();
    let tp = TopicPartition::new(moldau_controller::METADATA_TOPIC, 0);
    let log = manager
        .get_or_create_log(&tp, Uuid::nil(), metadata_log_config())
        .unwrap();
    let (voters, transport) = (voters.clone(), net.endpoint(id));
    let quorum = if voters.contains_key(&id) {
        MetadataQuorum::start_on_log(id, voters, log, Arc::new(NoPublisher), transport, &config())
            .await
    } else {
        MetadataQuorum::start_observer_on_log(
            id,
            voters,
            log,
            Arc::new(NoPublisher),
            transport,
            &config(),
        )
        .await
    }
    .expect("start");
    Node4 { quorum, manager }
}

async fn stop(node: Node4) {
    node.quorum.shutdown().await.unwrap();
    node.manager.shutdown().unwrap();
}

async fn leader_of(nodes: &BTreeMap<NodeId, Node4>, voters: &[NodeId]) -> NodeId {
    bounded("a leader", async {
        loop {
            if let Some(id) = voters
                .iter()
                .copied()
                .find(|id| nodes.get(id).is_some_and(|n| n.quorum.is_leader()))
            {
                return id;
            }
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

async fn wait_image(quorum: &MetadataQuorum, what: &str, check: impl Fn(&MetadataImage) -> bool) {
    let mut images = quorum.subscribe();
    bounded(what, async {
        loop {
            if check(&images.borrow_and_update()) {
                return;
            }
            let _ = timeout(Duration::from_millis(50), images.changed()).await;
        }
    })
    .await
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
async fn an_observer_follows_the_committed_log_and_never_leads() {
    let voters: BTreeMap<NodeId, Node> = (1..=3)
        .map(|id| (id, Node::new("localhost", 9093 + id as u16)))
        .collect();
    let net = InProcessNetwork::new();
    let dirs: BTreeMap<NodeId, TempDir> = (1..=4)
        .map(|id| (id, tempfile::tempdir().unwrap()))
        .collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=4 {
        nodes.insert(id, start(id, &dirs[&id], &voters, &net).await);
    }
    // An observer is refused as a voter, and a voter as an observer.
    let leader = leader_of(&nodes, &[1, 2, 3]).await;
    let refused = nodes[&leader]
        .quorum
        .add_observer(1, Node::new("localhost", 1))
        .await;
    assert!(
        matches!(refused, Err(QuorumError::IsAVoter { .. })),
        "{refused:?}"
    );
    assert!(nodes[&OBSERVER].quorum.is_observer());

    // Before it is added, nothing reaches it; a follower cannot add it.
    bounded("commit", nodes[&leader].quorum.propose(topic("before")))
        .await
        .unwrap();
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let not_leader = nodes[&follower]
        .quorum
        .add_observer(OBSERVER, Node::new("localhost", 9100))
        .await;
    assert!(
        matches!(not_leader, Err(QuorumError::NotController { .. })),
        "{not_leader:?}"
    );
    nodes[&leader]
        .quorum
        .add_observer(OBSERVER, Node::new("localhost", 9100))
        .await
        .unwrap();
    // Adding it again is a no-op.
    nodes[&leader]
        .quorum
        .add_observer(OBSERVER, Node::new("localhost", 9100))
        .await
        .unwrap();
    wait_image(&nodes[&OBSERVER].quorum, "the log so far", has("before")).await;
    bounded("commit", nodes[&leader].quorum.propose(topic("after")))
        .await
        .unwrap();
    wait_image(&nodes[&OBSERVER].quorum, "a new entry", has("after")).await;
    assert_eq!(
        nodes[&OBSERVER].quorum.image().offset,
        nodes[&leader].quorum.image().offset,
        "same offsets on the observer"
    );
    // It learns the leader from the replication, and writes nothing itself.
    assert_eq!(nodes[&OBSERVER].quorum.leader_id(), Some(leader));
    let refused = nodes[&OBSERVER].quorum.propose(topic("mine")).await;
    assert!(
        matches!(refused, Err(QuorumError::NotController { .. })),
        "{refused:?}"
    );

    // The leader reports it as an observer once it has replicated to it.
    let state = bounded("the observer's progress", async {
        loop {
            let state = nodes[&leader].quorum.quorum_state().unwrap();
            if state.observers.iter().any(|o| o.log_end_offset >= 0) {
                return state;
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let voter_ids: Vec<NodeId> = state.voters.iter().map(|v| v.node_id).collect();
    assert_eq!(voter_ids, vec![1, 2, 3]);
    let observer_ids: Vec<NodeId> = state.observers.iter().map(|o| o.node_id).collect();
    assert_eq!(observer_ids, vec![OBSERVER]);

    // The leader dies: a voter takes over, never the observer, which follows the new one.
    stop(nodes.remove(&leader).unwrap()).await;
    let remaining: Vec<NodeId> = (1..=3).filter(|id| *id != leader).collect();
    let new_leader = leader_of(&nodes, &remaining).await;
    bounded(
        "commit",
        nodes[&new_leader].quorum.propose(topic("failover")),
    )
    .await
    .unwrap();
    wait_image(
        &nodes[&OBSERVER].quorum,
        "the new leader's entry",
        has("failover"),
    )
    .await;
    assert!(!nodes[&OBSERVER].quorum.is_leader());
    assert_eq!(nodes[&OBSERVER].quorum.leader_id(), Some(new_leader));

    // The observer restarts on its log and catches up with what it missed.
    stop(nodes.remove(&OBSERVER).unwrap()).await;
    bounded(
        "commit",
        nodes[&new_leader].quorum.propose(topic("while-down")),
    )
    .await
    .unwrap();
    nodes.insert(
        OBSERVER,
        start(OBSERVER, &dirs[&OBSERVER], &voters, &net).await,
    );
    wait_image(
        &nodes[&OBSERVER].quorum,
        "what it missed",
        has("while-down"),
    )
    .await;

    // Removed, it gets nothing more; the voters are as they were.
    nodes[&new_leader]
        .quorum
        .remove_observer(OBSERVER)
        .await
        .unwrap();
    nodes[&new_leader]
        .quorum
        .remove_observer(OBSERVER)
        .await
        .unwrap();
    let state = nodes[&new_leader].quorum.quorum_state().unwrap();
    assert!(state.observers.is_empty(), "{state:?}");
    assert_eq!(state.voters.len(), 3);
    bounded(
        "commit",
        nodes[&new_leader].quorum.propose(topic("removed")),
    )
    .await
    .unwrap();
    sleep(Duration::from_millis(ELECTION_MS * 2)).await;
    assert!(nodes[&OBSERVER]
        .quorum
        .image()
        .topic_by_name("removed")
        .is_none());

    for (_, node) in nodes {
        stop(node).await;
    }
}

#[tokio::test]
async fn an_observer_must_not_be_a_voter() {
    let voters: BTreeMap<NodeId, Node> = [(1, Node::new("localhost", 9094))].into();
    let net = InProcessNetwork::new();
    let dir = tempfile::tempdir().unwrap();
    let refused = start_observer_1(&dir, voters, &net).await;
    assert!(matches!(refused, Some(QuorumError::IsAVoter { .. })));
}

#[tokio::test]
async fn a_former_voter_cannot_come_back_as_an_observer() {
    // Node 1 forms a quorum alone, then is restarted as an observer of node 2: the log's
    // membership still counts it among the voters.
    let net = InProcessNetwork::new();
    let dir = tempfile::tempdir().unwrap();
    let alone: BTreeMap<NodeId, Node> = [(1, Node::new("localhost", 9094))].into();
    let node = start(1, &dir, &alone, &net).await;
    bounded("a leader", async {
        while !node.quorum.is_leader() {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    bounded("commit", node.quorum.propose(topic("mine")))
        .await
        .unwrap();
    stop(node).await;
    let elsewhere: BTreeMap<NodeId, Node> = [(2, Node::new("localhost", 9095))].into();
    let refused = start_observer_1(&dir, elsewhere, &net).await;
    assert!(
        matches!(refused, Some(QuorumError::IsAVoter { ref voters, .. }) if *voters == vec![1]),
        "{refused:?}"
    );
}

/// Starts node 1 as an observer of `voters` on the metadata log in `dir`; the error, if
/// refused (a started one is shut down again).
async fn start_observer_1(
    dir: &tempfile::TempDir,
    voters: BTreeMap<NodeId, Node>,
    net: &InProcessNetwork,
) -> Option<QuorumError> {
    let manager =
        LogManager::open(LogManagerConfig::new(dir.path()), metadata_log_config()).unwrap();
    let tp = TopicPartition::new(moldau_controller::METADATA_TOPIC, 0);
    let log = manager
        .get_or_create_log(&tp, Uuid::nil(), metadata_log_config())
        .unwrap();
    let started = MetadataQuorum::start_observer_on_log(
        1,
        voters,
        log,
        Arc::new(NoPublisher),
        net.endpoint(1),
        &config(),
    )
    .await;
    let refused = match started {
        Ok(quorum) => {
            quorum.shutdown().await.unwrap();
            None
        }
        Err(e) => Some(e),
    };
    manager.shutdown().unwrap();
    refused
}
