//! Broker lifecycle, Kafka's KRaft model: heartbeats, fencing, unfencing, controlled
//! shutdown.
//!
//! On the active controller ([`BrokerHeartbeats`]): a broker is registered fenced; its
//! heartbeat unfences it once its metadata has caught up with its registration; a broker
//! that sends no heartbeat for `broker.session.timeout.ms` is fenced. Fencing (or
//! unregistering) takes the broker out of every ISR, unless it is the ISR's last member
//! (KRaft keeps that one: without KIP-966's ELR it is the replica to wait for), and moves
//! its leadership to another in-sync, unfenced replica, else to none (leader -1), or, with
//! `unclean.leader.election.enable`, to any unfenced replica; unfencing gives leaderless
//! partitions a leader again. A new active controller gives every broker a whole session
//! from the moment it took over, so a failover fences nobody by itself.
//!
//! On every broker ([`heartbeat_once`], [`spawn_heartbeats`]): a heartbeat every
//! `broker.heartbeat.interval.ms` to the active controller (itself, or BrokerHeartbeat over
//! the controller listener), and at shutdown a controlled shutdown (`want_shut_down`) that
//! returns once the controller has moved this broker's leadership away.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use kafka_protocol::ResponseError;
use moldau_metadata::{ConfigResource, ConfigResourceType, MetadataImage, MetadataRecord, Uuid};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::controller::MAX_RECORDS_PER_USER_OP;
use crate::error::BrokerError;
use crate::handlers::alter_partition_reassignments::{ChangeBuilder, Election};
use crate::state::BrokerState;

const HEARTBEAT_RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// What the active controller answers a heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatOutcome {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub should_shut_down: bool,
}

/// What a broker says in a heartbeat.
#[derive(Clone, Copy, Debug)]
pub struct Heartbeat {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub current_metadata_offset: i64,
    pub want_fence: bool,
    pub want_shut_down: bool,
}

/// The active controller's view of broker liveness (in memory: a new controller starts
/// every session afresh).
#[derive(Default)]
pub struct BrokerHeartbeats {
    /// Each broker's last contact (registration or heartbeat) and the term it came in.
    last_heartbeat: Mutex<HashMap<i32, (Instant, u64)>>,
    /// The incarnation (process) that registered each broker id, and in which term.
    incarnations: Mutex<HashMap<i32, (Uuid, u64)>>,
    /// The Raft term this node leads in, and since when: sessions count from then.
    leading_since: Mutex<Option<(u64, Instant)>>,
}

impl BrokerHeartbeats {
    /// Ends a broker's session (it was fenced): a new process may take its id at once.
    fn forget(&self, broker_id: i32) {
        self.last_heartbeat.lock().remove(&broker_id);
    }

    /// A heartbeat of `broker_id` that arrived at `received`.
    fn record(&self, broker_id: i32, term: u64, received: Instant) {
        self.last_heartbeat
            .lock()
            .insert(broker_id, (received, term));
    }

    /// Whether `broker_id` has been heard from within `session` in this leadership (Kafka's
    /// `hasValidSession`; a new active controller knows no sessions).
    fn has_valid_session(&self, broker_id: i32, term: u64, session: Duration) -> bool {
        self.last_heartbeat
            .lock()
            .get(&broker_id)
            .is_some_and(|(at, t)| *t == term && at.elapsed() <= session)
    }

    /// A registration of `broker_id` by process `incarnation_id`: refused with
    /// DUPLICATE_BROKER_REGISTRATION while another process holds that id with a live
    /// session (two live brokers with one node id); else it becomes the id's incarnation.
    pub fn register(
        &self,
        broker_id: i32,
        incarnation_id: Uuid,
        term: u64,
        session: Duration,
    ) -> Result<(), ResponseError> {
        let mut incarnations = self.incarnations.lock();
        let other_live = incarnations.get(&broker_id).is_some_and(|(holder, t)| {
            *holder != incarnation_id
                && *t == term
                && self.has_valid_session(broker_id, term, session)
        });
        if other_live {
            return Err(ResponseError::DuplicateBrokerRegistration);
        }
        incarnations.insert(broker_id, (incarnation_id, term));
        drop(incarnations);
        self.record(broker_id, term, Instant::now());
        Ok(())
    }

    /// The start of this node's current leadership (`term`), noting a new one.
    fn leadership_start(&self, term: u64) -> Instant {
        let mut since = self.leading_since.lock();
        match *since {
            Some((t, at)) if t == term => at,
            _ => {
                let now = Instant::now();
                *since = Some((term, now));
                now
            }
        }
    }

    /// Unfenced brokers whose session expired: no heartbeat since `session` before now,
    /// counting from the start of this leadership at the earliest.
    fn expired(&self, image: &MetadataImage, term: u64, session: Duration) -> Vec<(i32, i64)> {
        let since = self.leadership_start(term);
        let last = self.last_heartbeat.lock();
        image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter(|b| {
                let seen = last
                    .get(&b.broker_id)
                    .map_or(since, |(at, _)| *at)
                    .max(since);
                seen.elapsed() > session
            })
            .map(|b| (b.broker_id, b.broker_epoch))
            .collect()
    }
}

/// The active controller's answer to a heartbeat: records it, then fences, unfences or
/// shuts the broker down as it asks and as its metadata allows.
pub async fn handle_heartbeat(
    state: &BrokerState,
    heartbeat: Heartbeat,
) -> Result<HeartbeatOutcome, BrokerError> {
    // The session counts from the heartbeat's arrival, not from when the leader's image
    // was confirmed (which waits for a quorum round).
    let received = Instant::now();
    let image = state.controller.quorum().leader_image().await?;
    let registered = image
        .brokers
        .get(&heartbeat.broker_id)
        .filter(|b| b.broker_epoch == heartbeat.broker_epoch)
        .ok_or(BrokerError::Refused(ResponseError::StaleBrokerEpoch))?;
    // Caught up: the broker has applied its own registration.
    let is_caught_up = heartbeat.current_metadata_offset >= heartbeat.broker_epoch;
    let fence = heartbeat.want_fence || heartbeat.want_shut_down;
    if !fence {
        // A broker on its way out keeps no session (its restart is no duplicate).
        let term = state.controller.quorum().metrics().borrow().current_term;
        state
            .broker_heartbeats
            .record(heartbeat.broker_id, term, received);
    }
    if fence && !registered.fenced {
        set_fenced(state, heartbeat.broker_id, heartbeat.broker_epoch, true).await?;
    } else if !fence && registered.fenced && is_caught_up {
        set_fenced(state, heartbeat.broker_id, heartbeat.broker_epoch, false).await?;
    }
    // Leadership and ISRs follow the fencing (also when an earlier move was cut short).
    let unclean = ElectionConfig::of(state);
    if !leader_changes(&state.image(), heartbeat.broker_id, 1, unclean).is_empty() {
        move_leadership(state, heartbeat.broker_id).await?;
    }
    let image = state.image();
    let is_fenced = image
        .brokers
        .get(&heartbeat.broker_id)
        .is_none_or(|b| b.fenced);
    let leads_nothing = !leads_any(&image, heartbeat.broker_id);
    Ok(HeartbeatOutcome {
        is_caught_up,
        is_fenced,
        should_shut_down: heartbeat.want_shut_down && is_fenced && leads_nothing,
    })
}

fn leads_any(image: &MetadataImage, broker_id: i32) -> bool {
    image
        .topics()
        .iter()
        .any(|t| t.partitions.values().any(|p| p.leader == broker_id))
}

/// Commits a broker's fenced flag (nothing if its registration changed meanwhile).
async fn set_fenced(
    state: &BrokerState,
    broker_id: i32,
    broker_epoch: i64,
    fenced: bool,
) -> Result<(), BrokerError> {
    state
        .controller
        .write(|image| {
            let current = image
                .brokers
                .get(&broker_id)
                .filter(|b| b.broker_epoch == broker_epoch && b.fenced != fenced);
            let records = match current {
                Some(_) => vec![MetadataRecord::BrokerRegistrationChange {
                    broker_id,
                    broker_epoch,
                    fenced,
                }],
                None => vec![],
            };
            Ok::<_, BrokerError>((records, ()))
        })
        .await?;
    if fenced {
        state.broker_heartbeats.forget(broker_id);
    }
    tracing::info!(
        broker_id,
        broker_epoch,
        "broker {}",
        if fenced { "fenced" } else { "unfenced" }
    );
    Ok(())
}

/// Brings partition leadership and ISRs in line with `broker_id`'s fencing (see
/// [`leader_changes`]), in writes of at most `MAX_RECORDS_PER_USER_OP` records, each
/// decided against the image of its moment.
pub(crate) async fn move_leadership(
    state: &BrokerState,
    broker_id: i32,
) -> Result<(), BrokerError> {
    let unclean = ElectionConfig::of(state);
    loop {
        let written = state
            .controller
            .write(|image| {
                let records = leader_changes(image, broker_id, MAX_RECORDS_PER_USER_OP, unclean);
                let count = records.len();
                Ok::<_, BrokerError>((records, count))
            })
            .await?;
        if written < MAX_RECORDS_PER_USER_OP {
            return Ok(());
        }
    }
}

/// The topic configs the active controller's elections read, each as Kafka's controller
/// finds it (`uncleanLeaderElectionEnabledForTopic`, `getTopicEffectiveMinIsr`): the
/// topic's config, else this controller's dynamic broker config, else the dynamic
/// cluster default, else `server.properties`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ElectionConfig {
    pub node_id: i32,
    /// `unclean.leader.election.enable` in `server.properties` (Kafka's default: false).
    pub unclean_default: bool,
    /// `min.insync.replicas` in `server.properties` (Kafka's default: 1).
    pub min_isr_default: i32,
}

impl ElectionConfig {
    pub fn of(state: &BrokerState) -> Self {
        ElectionConfig {
            node_id: state.node_id,
            unclean_default: state.config.unclean_leader_election_enable,
            min_isr_default: state.config.log_defaults.min_insync_replicas,
        }
    }

    fn layered<'a>(&self, image: &'a MetadataImage, topic: &str, key: &str) -> Option<&'a str> {
        let layers = [
            (ConfigResourceType::Topic, topic.to_string()),
            (ConfigResourceType::Broker, self.node_id.to_string()),
            (ConfigResourceType::Broker, String::new()),
        ];
        layers.into_iter().find_map(|(resource_type, name)| {
            image
                .configs(&ConfigResource {
                    resource_type,
                    name,
                })
                .and_then(|configs| configs.get(key))
                .map(String::as_str)
        })
    }

    pub fn unclean_enabled(&self, image: &MetadataImage, topic: &str) -> bool {
        self.layered(image, topic, "unclean.leader.election.enable")
            // Java's Boolean.parseBoolean: "true" in any case, anything else false.
            .map(|value| value.trim().eq_ignore_ascii_case("true"))
            .unwrap_or(self.unclean_default)
    }

    /// The topic's effective `min.insync.replicas` (validated when it was set: at least 1).
    pub fn min_isr(&self, image: &MetadataImage, topic: &str) -> usize {
        self.layered(image, topic, "min.insync.replicas")
            .and_then(|value| value.trim().parse::<i32>().ok())
            .unwrap_or(self.min_isr_default)
            .max(1) as usize
    }
}

/// The partition changes fencing, unfencing or unregistering `broker_id` calls for, at
/// most `limit`, one `PartitionChange` per partition (new leader, ISR and eligible leader
/// replicas together), as Kafka's controller makes them (`generateLeaderAndIsrUpdates`
/// with ELR on, Kafka 4.1's default). A broker that is fenced or no longer registered
/// leaves the ISR of every partition that has it, even as its last member (below
/// `min.insync.replicas` it becomes an eligible leader replica), and leads nothing. On
/// unfencing, every leaderless partition gets a leader if it now can (from the ISR, else,
/// when the ISR is empty, from the eligible leader replicas).
fn leader_changes(
    image: &MetadataImage,
    broker_id: i32,
    limit: usize,
    config: ElectionConfig,
) -> Vec<MetadataRecord> {
    let leaving = image.brokers.get(&broker_id).is_none_or(|b| b.fenced);
    let departure = leaving.then_some(Departure::Fenced);
    partition_changes(image, broker_id, departure, limit, config)
}

/// How a broker leaves the ISRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Departure {
    /// Fenced or unregistered: its log is intact, it may be an eligible leader replica.
    Fenced,
    /// Restarted without a clean shutdown (a new incarnation registering): it may have
    /// lost records below the high watermark, so it leaves the eligible leader replicas
    /// too (Kafka's `handleBrokerUncleanShutdown`).
    UncleanShutdown,
}

/// [`leader_changes`] with the broker's departure given (`None`: it is usable).
pub(crate) fn partition_changes(
    image: &MetadataImage,
    broker_id: i32,
    departure: Option<Departure>,
    limit: usize,
    config: ElectionConfig,
) -> Vec<MetadataRecord> {
    let usable = |id: i32| {
        (departure.is_none() || id != broker_id)
            && image.brokers.get(&id).is_some_and(|b| !b.fenced)
    };
    let mut records = Vec::new();
    for topic in image.topics() {
        let mut topic_config = None;
        for (partition_id, p) in &topic.partitions {
            let concerned = match departure {
                Some(Departure::Fenced) => p.leader == broker_id || p.isr.contains(&broker_id),
                Some(Departure::UncleanShutdown) => {
                    p.leader == broker_id
                        || p.isr.contains(&broker_id)
                        || p.eligible_leader_replicas.contains(&broker_id)
                }
                None => p.leader == -1,
            };
            if !concerned {
                continue;
            }
            let (unclean_enabled, min_isr) = *topic_config.get_or_insert_with(|| {
                (
                    config.unclean_enabled(image, &topic.name),
                    config.min_isr(image, &topic.name),
                )
            });
            let mut builder = ChangeBuilder::new(p, min_isr);
            if departure.is_some() {
                builder.target_isr.retain(|id| *id != broker_id);
            }
            if departure == Some(Departure::UncleanShutdown) {
                builder.unclean_shutdown = Some(broker_id);
            }
            if unclean_enabled {
                builder.election = Election::Unclean;
            }
            let Some(change) = builder.build(usable) else {
                continue;
            };
            if let Some(leader) = change.leader.filter(|l| {
                *l != -1 && !p.isr.contains(l) && !p.eligible_leader_replicas.contains(l)
            }) {
                tracing::warn!(
                    topic = %topic.name,
                    partition = partition_id,
                    leader,
                    "unclean leader election: no in-sync or eligible replica is available; \
                     records the old ISR had and this replica lacks are lost"
                );
            }
            records.push(change.record(topic.topic_id, *partition_id));
            if records.len() == limit {
                return records;
            }
        }
    }
    records
}

/// UnregisterBroker on the active controller: removes the broker's registration (Kafka's
/// UnregisterBrokerRecord), stops replicating the metadata log to it when it is an
/// observer (broker-only), then takes it out of the ISRs and moves its leadership away,
/// as fencing does.
/// BROKER_ID_NOT_REGISTERED for an id with no registration.
pub async fn unregister(state: &BrokerState, broker_id: i32) -> Result<(), BrokerError> {
    state
        .controller
        .write(|image| {
            let broker = image
                .brokers
                .get(&broker_id)
                .ok_or(BrokerError::Refused(ResponseError::BrokerIdNotRegistered))?;
            let record = MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch: broker.broker_epoch,
            };
            Ok::<_, BrokerError>((vec![record], ()))
        })
        .await?;
    state.broker_heartbeats.forget(broker_id);
    tracing::info!(broker_id, "broker unregistered");
    move_leadership(state, broker_id).await?;
    // Voters stay voters (a combined node is a broker and a voter).
    if !state.raft_transport.is_voter(broker_id as u64) {
        state.controller.remove_observer(broker_id).await?;
    }
    Ok(())
}

/// Fences every broker whose session expired, when this node is the active controller.
pub async fn fence_expired(state: &BrokerState) {
    if !state.controller.quorum().is_leader() {
        return;
    }
    let term = state.controller.quorum().metrics().borrow().current_term;
    let session = Duration::from_millis(state.config.broker_session_timeout_ms);
    let expired = state
        .broker_heartbeats
        .expired(&state.image(), term, session);
    for (broker_id, broker_epoch) in expired {
        tracing::warn!(
            broker_id,
            "no heartbeat for {} ms (broker.session.timeout.ms): fencing",
            session.as_millis()
        );
        let fenced = async {
            set_fenced(state, broker_id, broker_epoch, true).await?;
            move_leadership(state, broker_id).await
        };
        if let Err(e) = fenced.await {
            tracing::warn!(broker_id, %e, "cannot fence broker");
        }
    }
}

/// One heartbeat from this broker to the active controller.
pub async fn heartbeat_once(
    state: &BrokerState,
    want_shut_down: bool,
) -> Result<HeartbeatOutcome, String> {
    let image = state.image();
    let broker_epoch = image
        .brokers
        .get(&state.node_id)
        .map(|b| b.broker_epoch)
        .ok_or("not registered")?;
    let heartbeat = Heartbeat {
        broker_id: state.node_id,
        broker_epoch,
        current_metadata_offset: image.offset,
        want_fence: false,
        want_shut_down,
    };
    match state.controller.leader_id() {
        None => Err("no active controller".into()),
        Some(leader) if leader == state.node_id => handle_heartbeat(state, heartbeat)
            .await
            .map_err(|e| e.to_string()),
        Some(_) => {
            use kafka_protocol::messages::{BrokerHeartbeatRequest, BrokerId};
            let request = BrokerHeartbeatRequest::default()
                .with_broker_id(BrokerId(heartbeat.broker_id))
                .with_broker_epoch(heartbeat.broker_epoch)
                .with_current_metadata_offset(heartbeat.current_metadata_offset)
                .with_want_shut_down(want_shut_down);
            let response = state
                .send_to_controller(&request, 1, HEARTBEAT_RPC_TIMEOUT)
                .await?;
            if let Some(error) = ResponseError::try_from_code(response.error_code) {
                return Err(format!("the active controller answered {error:?}"));
            }
            Ok(HeartbeatOutcome {
                is_caught_up: response.is_caught_up,
                is_fenced: response.is_fenced,
                should_shut_down: response.should_shut_down,
            })
        }
    }
}

/// Heartbeats until this broker is unfenced (at start, after registering).
pub async fn wait_until_unfenced(state: &BrokerState) {
    let started = Instant::now();
    let mut last_report = started;
    loop {
        match heartbeat_once(state, false).await {
            Ok(outcome) if !outcome.is_fenced => return,
            Ok(_) => {}
            Err(reason) if last_report.elapsed() >= Duration::from_secs(5) => {
                last_report = Instant::now();
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "waiting to be unfenced by the active controller: {reason}"
                );
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Controlled shutdown: asks the active controller to fence this broker and move its
/// leadership away, and waits for it, up to `timeout` (then the broker stops anyway, as
/// after a crash: its session expires on the controller).
pub async fn controlled_shutdown(state: &BrokerState, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match heartbeat_once(state, true).await {
            Ok(outcome) if outcome.should_shut_down => {
                tracing::info!("controlled shutdown: leadership moved away");
                return;
            }
            Ok(_) => {}
            Err(reason) => tracing::debug!("controlled shutdown: {reason}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("controlled shutdown not confirmed within {timeout:?}; stopping anyway");
}

/// The broker's heartbeats (a broker), and on the active controller the session checks
/// (a controller).
pub fn spawn_heartbeats(state: Arc<BrokerState>) -> JoinHandle<()> {
    crate::supervisor::spawn_supervised("broker heartbeats", move || {
        let state = state.clone();
        async move {
            let interval = Duration::from_millis(state.config.broker_heartbeat_interval_ms);
            // Sessions are checked often, so a broker is fenced close to its expiry (Kafka
            // schedules the check for the next expiry); a check is a map scan.
            let check =
                Duration::from_millis((state.config.broker_session_timeout_ms / 20).clamp(10, 100));
            let mut next_heartbeat = Instant::now();
            // A controller-only node is no broker: it only checks the sessions.
            let is_broker = state.config.is_broker();
            loop {
                if is_broker && Instant::now() >= next_heartbeat {
                    if let Err(reason) = heartbeat_once(&state, false).await {
                        tracing::debug!("heartbeat not answered: {reason}");
                    }
                    next_heartbeat = Instant::now() + interval;
                }
                fence_expired(&state).await;
                let pause = if is_broker {
                    check.min(next_heartbeat.saturating_duration_since(Instant::now()))
                } else {
                    check
                };
                tokio::time::sleep(pause.max(Duration::from_millis(1))).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use moldau_metadata::{MetadataDelta, PartitionImage, Uuid};

    use super::*;

    /// A partition: id, replicas, ISR, leader.
    type Spec<'a> = (i32, &'a [i32], &'a [i32], i32);

    /// Brokers 1-3 (`fenced` ones fenced), topic "t" with `partitions`, and `configs`:
    /// (resource type, resource name, value of `unclean.leader.election.enable`).
    fn image_with(
        fenced: &[i32],
        partitions: &[Spec],
        configs: &[(ConfigResourceType, &str, &str)],
    ) -> MetadataImage {
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        let mut offset = 0;
        let mut replay = |record: MetadataRecord| {
            delta.replay(offset, &record).unwrap();
            offset += 1;
        };
        for id in 1..=3 {
            replay(MetadataRecord::RegisterBroker {
                broker_id: id,
                broker_epoch: id as i64,
                host: "h".into(),
                port: 1,
                rack: None,
                fenced: fenced.contains(&id),
                incarnation_id: None,
                listeners: vec![],
            });
        }
        replay(MetadataRecord::Topic {
            name: "t".into(),
            topic_id: TOPIC,
        });
        for (partition_id, replicas, isr, leader) in partitions {
            replay(MetadataRecord::Partition {
                topic_id: TOPIC,
                partition_id: *partition_id,
                replicas: replicas.to_vec(),
                isr: isr.to_vec(),
                leader: *leader,
                leader_epoch: 0,
                partition_epoch: 0,
                adding_replicas: vec![],
                removing_replicas: vec![],
                eligible_leader_replicas: Vec::new(),
                last_known_elr: Vec::new(),
            });
        }
        for (resource_type, resource_name, value) in configs {
            replay(MetadataRecord::Config {
                resource_type: *resource_type,
                resource_name: resource_name.to_string(),
                name: "unclean.leader.election.enable".into(),
                value: Some(value.to_string()),
            });
        }
        delta.apply()
    }

    const TOPIC: Uuid = Uuid::from_u128(7);

    /// p0: only on 1; p1: 1 then 2, both in sync, led by 1; p2: leaderless, 1 in sync;
    /// p3: 2 then 1, both in sync, led by 2.
    const PARTITIONS: &[Spec] = &[
        (0, &[1], &[1], 1),
        (1, &[1, 2], &[1, 2], 1),
        (2, &[1], &[1], -1),
        (3, &[2, 1], &[2, 1], 2),
    ];

    fn image(fenced: &[i32]) -> MetadataImage {
        image_with(fenced, PARTITIONS, &[])
    }

    const CLEAN: ElectionConfig = ElectionConfig {
        node_id: 1,
        unclean_default: false,
        min_isr_default: 1,
    };

    /// Each change: (partition, new leader if it changes, new ISR if it changes).
    fn changes(records: &[MetadataRecord]) -> Vec<(i32, Option<i32>, Option<Vec<i32>>)> {
        records
            .iter()
            .map(|r| match r {
                MetadataRecord::PartitionChange {
                    topic_id,
                    partition_id,
                    leader,
                    isr,
                    ..
                } if *topic_id == TOPIC => (*partition_id, *leader, isr.clone()),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_fenced_broker_leaves_every_isr_and_hands_its_partitions_to_in_sync_replicas() {
        // p0: 1 was the last member: the ISR empties (1 becomes an eligible leader
        // replica), nobody leads. p1: 2 takes over, alone in sync. p2: leaderless with 1
        // its last member: the ISR empties too. p3: 1 was a follower: it only leaves.
        assert_eq!(
            changes(&leader_changes(&image(&[1]), 1, 100, CLEAN)),
            vec![
                (0, Some(-1), Some(vec![])),
                (1, Some(2), Some(vec![2])),
                (2, None, Some(vec![])),
                (3, None, Some(vec![2])),
            ]
        );
        // Broker 2 fenced too: nobody can take partition 1 (2 is its last member), and
        // partition 3's leader 2 is no longer usable either.
        assert_eq!(
            changes(&leader_changes(&image(&[1, 2]), 1, 100, CLEAN)),
            vec![
                (0, Some(-1), Some(vec![])),
                (1, Some(-1), Some(vec![2])),
                (2, None, Some(vec![])),
                (3, Some(-1), Some(vec![2])),
            ]
        );
        // Applied, the changes leave nothing more to do (the heartbeat's check).
        let image = apply(&image(&[1]), &leader_changes(&image(&[1]), 1, 100, CLEAN));
        assert!(leader_changes(&image, 1, 100, CLEAN).is_empty());
        let p3 = &image.topic_by_id(&TOPIC).unwrap().partitions[&3];
        assert_eq!((p3.leader, p3.leader_epoch, p3.partition_epoch), (2, 0, 1));
    }

    #[test]
    fn the_new_leader_is_the_first_in_sync_usable_replica_in_replica_order() {
        // ISR [3, 2] in that order, replicas [1, 2, 3]: 2 comes first as a replica.
        let image = image_with(&[1], &[(0, &[1, 2, 3], &[1, 3, 2], 1)], &[]);
        assert_eq!(
            changes(&leader_changes(&image, 1, 100, CLEAN)),
            vec![(0, Some(2), Some(vec![3, 2]))]
        );
        // 2 fenced as well: 3.
        let image = image_with(&[1, 2], &[(0, &[1, 2, 3], &[1, 3, 2], 1)], &[]);
        assert_eq!(
            changes(&leader_changes(&image, 1, 100, CLEAN)),
            vec![(0, Some(3), Some(vec![3, 2]))]
        );
    }

    #[test]
    fn an_unregistered_broker_leaves_every_isr_as_a_fenced_one() {
        let registered = image(&[]);
        let mut delta = MetadataDelta::new(&registered);
        delta
            .replay(
                registered.offset + 1,
                &MetadataRecord::UnregisterBroker {
                    broker_id: 1,
                    broker_epoch: 1,
                },
            )
            .unwrap();
        let unregistered = delta.apply();
        assert_eq!(
            changes(&leader_changes(&unregistered, 1, 100, CLEAN)),
            changes(&leader_changes(&image(&[1]), 1, 100, CLEAN))
        );
    }

    /// The partition after `records` (one partition, topic `t`).
    fn partition_after(image: &MetadataImage, records: &[MetadataRecord]) -> PartitionImage {
        apply(image, records)
            .topic_by_id(&TOPIC)
            .unwrap()
            .partitions[&0]
            .clone()
    }

    /// `image` with `broker_id`'s fenced flag set.
    fn with_fenced(image: &MetadataImage, broker_id: i32, fenced: bool) -> MetadataImage {
        let record = MetadataRecord::BrokerRegistrationChange {
            broker_id,
            broker_epoch: image.brokers[&broker_id].broker_epoch,
            fenced,
        };
        apply(image, &[record])
    }

    #[test]
    fn below_min_isr_replicas_leaving_the_isr_become_eligible_leaders() {
        let min_isr_2 = ElectionConfig {
            min_isr_default: 2,
            ..CLEAN
        };
        // Replicas 1, 2, 3 in sync, 1 leads. 3 is fenced: the ISR keeps 2 members, 3 is
        // not eligible (the high watermark moves on without it).
        let image = image_with(&[3], &[(0, &[1, 2, 3], &[1, 2, 3], 1)], &[]);
        let records = leader_changes(&image, 3, 100, min_isr_2);
        let p = partition_after(&image, &records);
        assert_eq!(
            (p.isr.clone(), p.eligible_leader_replicas.clone()),
            (vec![1, 2], vec![])
        );
        // 2 is fenced next: below min ISR, it becomes an eligible leader replica.
        let image = with_fenced(&apply(&image, &records), 2, true);
        let records = leader_changes(&image, 2, 100, min_isr_2);
        let p = partition_after(&image, &records);
        assert_eq!(
            (p.isr.clone(), p.eligible_leader_replicas.clone()),
            (vec![1], vec![2])
        );
        // 1, the last member, restarts uncleanly (it may have lost what it had): it leaves
        // the ISR, is not eligible, and 2 would lead once unfenced.
        let image = apply(&image, &records);
        let unclean =
            partition_changes(&image, 1, Some(Departure::UncleanShutdown), 100, min_isr_2);
        let p = partition_after(&image, &unclean);
        assert_eq!(
            (p.leader, p.isr.clone(), p.eligible_leader_replicas.clone()),
            (-1, vec![], vec![2])
        );
        let image = with_fenced(&apply(&image, &unclean), 2, false);
        let p = partition_after(&image, &leader_changes(&image, 2, 100, min_isr_2));
        assert_eq!(
            (p.leader, p.isr.clone(), p.eligible_leader_replicas.clone()),
            (2, vec![2], vec![])
        );
    }

    #[test]
    fn the_last_known_leader_leads_again_when_no_replica_is_eligible() {
        // A single replica whose broker restarts uncleanly: no ISR, no ELR; once it is
        // unfenced it leads again (as before ELR: it is all there is).
        let image = image_with(&[], &[(0, &[1], &[1], 1)], &[]);
        let unclean = partition_changes(&image, 1, Some(Departure::UncleanShutdown), 100, CLEAN);
        let p = partition_after(&image, &unclean);
        assert_eq!(
            (p.leader, p.isr.clone(), p.last_known_elr.clone()),
            (-1, vec![], vec![1])
        );
        // Registered anew, it is fenced until caught up: nothing more to do meanwhile.
        let image = with_fenced(&apply(&image, &unclean), 1, true);
        assert!(leader_changes(&image, 1, 100, CLEAN).is_empty());
        let image = with_fenced(&image, 1, false);
        let p = partition_after(&image, &leader_changes(&image, 1, 100, CLEAN));
        assert_eq!(
            (p.leader, p.isr.clone(), p.last_known_elr.clone()),
            (1, vec![1], vec![])
        );
    }

    #[test]
    fn unclean_election_gives_a_partition_without_in_sync_replicas_to_any_usable_one() {
        // p0: 1 in sync, 3 out of sync; p1: only on 1.
        let partitions: &[Spec] = &[(0, &[1, 3], &[1], 1), (1, &[1], &[1], 1)];
        let clean = image_with(&[1], partitions, &[]);
        assert_eq!(
            changes(&leader_changes(&clean, 1, 100, CLEAN)),
            vec![(0, Some(-1), Some(vec![])), (1, Some(-1), Some(vec![]))]
        );
        let unclean_changes = vec![(0, Some(3), Some(vec![3])), (1, Some(-1), Some(vec![]))];
        let topic = image_with(
            &[1],
            partitions,
            &[(ConfigResourceType::Topic, "t", "true")],
        );
        assert_eq!(
            changes(&leader_changes(&topic, 1, 100, CLEAN)),
            unclean_changes
        );
        // The broker default: server.properties, the dynamic cluster default, this
        // controller's own; a topic's "false" wins over all of them.
        let everywhere = ElectionConfig {
            node_id: 1,
            unclean_default: true,
            min_isr_default: 1,
        };
        assert_eq!(
            changes(&leader_changes(&clean, 1, 100, everywhere)),
            unclean_changes
        );
        for resource in ["", "1"] {
            let dynamic = image_with(
                &[1],
                partitions,
                &[(ConfigResourceType::Broker, resource, "TRUE")],
            );
            assert_eq!(
                changes(&leader_changes(&dynamic, 1, 100, CLEAN)),
                unclean_changes
            );
        }
        let other_node = image_with(
            &[1],
            partitions,
            &[(ConfigResourceType::Broker, "2", "true")],
        );
        assert_eq!(
            changes(&leader_changes(&other_node, 1, 100, CLEAN)),
            changes(&leader_changes(&clean, 1, 100, CLEAN))
        );
        let topic_off = image_with(
            &[1],
            partitions,
            &[(ConfigResourceType::Topic, "t", "false")],
        );
        assert_eq!(
            changes(&leader_changes(&topic_off, 1, 100, everywhere)),
            changes(&leader_changes(&clean, 1, 100, CLEAN))
        );
        // A leaderless partition whose in-sync replica is gone is taken by a replica that
        // comes back (unfencing), when unclean election is on.
        let waiting = image_with(&[1], &[(0, &[1, 3], &[1], -1)], &[]);
        assert!(leader_changes(&waiting, 3, 100, CLEAN).is_empty());
        assert_eq!(
            changes(&leader_changes(&waiting, 3, 100, everywhere)),
            vec![(0, Some(3), Some(vec![3]))]
        );
    }

    #[test]
    fn an_unfenced_broker_takes_back_the_leaderless_partitions_it_is_in_sync_for() {
        let unfenced = image(&[]);
        assert_eq!(
            changes(&leader_changes(&unfenced, 1, 100, CLEAN)),
            vec![(2, Some(1), None)]
        );
        // Any unfencing gives a leaderless partition a leader it now can have.
        assert_eq!(
            changes(&leader_changes(&unfenced, 2, 100, CLEAN)),
            vec![(2, Some(1), None)]
        );
        // Nothing while its in-sync replica is still fenced.
        assert!(leader_changes(&image(&[1]), 2, 100, CLEAN).is_empty());
        assert_eq!(
            leader_changes(&image(&[1]), 1, 1, CLEAN).len(),
            1,
            "bounded"
        );
    }

    fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            delta.replay(image.offset + 1 + i as i64, record).unwrap();
        }
        delta.apply()
    }

    #[test]
    fn sessions_count_from_the_last_heartbeat_or_the_leadership_start() {
        let heartbeats = BrokerHeartbeats::default();
        let image = image(&[3]);
        let session = Duration::from_millis(50);
        assert!(heartbeats.expired(&image, 1, session).is_empty());
        std::thread::sleep(Duration::from_millis(80));
        heartbeats.record(1, 1, Instant::now());
        // 2 is past its session; 1 just beat; 3 is fenced already.
        assert_eq!(heartbeats.expired(&image, 1, session), vec![(2, 2)]);
        // A new term (a new leadership) starts every session afresh.
        assert!(heartbeats.expired(&image, 2, session).is_empty());
    }

    #[test]
    fn a_second_live_process_with_one_node_id_is_a_duplicate_registration() {
        let heartbeats = BrokerHeartbeats::default();
        let (first, second) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let session = Duration::from_millis(50);
        heartbeats.register(1, first, 1, session).unwrap();
        // The same process registering again is fine; another one is not, while the
        // first one's session lives.
        heartbeats.register(1, first, 1, session).unwrap();
        assert_eq!(
            heartbeats.register(1, second, 1, session),
            Err(ResponseError::DuplicateBrokerRegistration)
        );
        // A new leadership knows no sessions: the newcomer wins.
        heartbeats.register(1, second, 2, session).unwrap();
        // Once the holder's session expired (it crashed), a restart takes over.
        std::thread::sleep(Duration::from_millis(80));
        heartbeats.register(1, first, 2, session).unwrap();
        // A fenced broker (a controlled shutdown) keeps no session: its restart is at once.
        heartbeats.forget(1);
        heartbeats
            .register(1, second, 2, Duration::from_secs(60))
            .unwrap();
    }
}
