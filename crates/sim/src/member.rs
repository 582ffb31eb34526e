//! A consumer group member on the KIP-848 protocol: joins `sim-848` with
//! ConsumerGroupHeartbeat (subscribed to `sim-events`), heartbeats, takes the assignment
//! the coordinator computes, and commits ever larger offsets of its assigned partitions
//! under its member epoch (OffsetCommit v9), fetching the group's offsets back between
//! commits for the checker. Fenced (`FENCED_MEMBER_EPOCH`, `UNKNOWN_MEMBER_ID`), it rejoins
//! at epoch 0 as a consumer does.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::offsets::OffsetsSeen;
use crate::workload::{note, Admin, Shared, TOPIC};

const GROUP: &str = "sim-848";
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

struct Member {
    coordinator: Option<String>,
    member_id: StrBytes,
    member_epoch: i32,
    /// Owned partitions of `sim-events` (one topic: its id and partitions).
    owned: Vec<TopicPartitions>,
}

/// Runs for `steps` heartbeats `pace` apart, committing at each step.
pub(crate) async fn run(
    admin: &mut Admin,
    shared: &Shared,
    partitions: i32,
    steps: usize,
    pace: Duration,
) -> Vec<OffsetsSeen> {
    admin.create_topic(TOPIC, partitions, shared).await;
    let mut member = Member {
        coordinator: None,
        member_id: StrBytes::default(),
        member_epoch: 0,
        owned: Vec::new(),
    };
    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    let mut acknowledged: BTreeMap<i32, i64> = BTreeMap::new();
    let mut seen = Vec::new();
    let mut last_error = String::new();
    for _ in 0..steps {
        tokio::time::sleep(pace).await;
        if let Err(error) = heartbeat(admin, &mut member).await {
            if error != last_error {
                note(shared, format!("ConsumerGroupHeartbeat: {error}"));
                last_error = error;
            }
            continue;
        }
        let assigned: Vec<i32> = member
            .owned
            .iter()
            .flat_map(|t| t.partitions.clone())
            .collect();
        if assigned.is_empty() {
            continue;
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_generation_id_or_member_epoch(member.member_epoch)
            .with_member_id(member.member_id.clone())
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(
                    assigned
                        .iter()
                        .map(|p| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*next_offset.entry(*p).or_insert(1))
                                .with_committed_leader_epoch(-1)
                        })
                        .collect(),
                )]);
        let Some(coordinator) = member.coordinator.clone() else {
            continue;
        };
        match admin.send(&coordinator, &request, 9).await {
            Ok(r) => {
                for p in r.topics.iter().flat_map(|t| t.partitions.iter()) {
                    if p.error_code == 0 {
                        let offset = next_offset[&p.partition_index];
                        acknowledged.insert(p.partition_index, offset);
                        next_offset.insert(p.partition_index, offset + 1);
                    }
                }
            }
            Err(_) => member.coordinator = None,
        }
        if let Some(offsets) = fetch(admin, &mut member, partitions, &acknowledged).await {
            seen.push(offsets);
        }
    }
    // The last fetch after everything: it shows every acknowledged commit.
    loop {
        if member.coordinator.is_none() {
            member.coordinator = admin.find_coordinator(GROUP, 0).await;
        }
        if let Some(offsets) = fetch(admin, &mut member, partitions, &acknowledged).await {
            seen.push(offsets);
            return seen;
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
}

/// One heartbeat: joins at epoch 0 when not a member, else reports the owned partitions
/// and takes the new assignment and epoch. `Err` names what went wrong.
async fn heartbeat(admin: &mut Admin, member: &mut Member) -> Result<(), String> {
    if member.coordinator.is_none() {
        member.coordinator = admin.find_coordinator(GROUP, 0).await;
    }
    let Some(coordinator) = member.coordinator.clone() else {
        return Err("no coordinator".into());
    };
    let joining = member.member_epoch == 0;
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
        .with_member_id(member.member_id.clone())
        .with_member_epoch(member.member_epoch)
        .with_rebalance_timeout_ms(if joining { 30_000 } else { -1 })
        .with_subscribed_topic_names(
            joining.then(|| vec![TopicName(StrBytes::from_static_str(TOPIC))]),
        )
        .with_topic_partitions(Some(member.owned.clone()));
    let response = match admin.send(&coordinator, &request, 0).await {
        Ok(r) => r,
        Err(e) => {
            member.coordinator = None;
            return Err(e.to_string());
        }
    };
    match ResponseError::try_from_code(response.error_code) {
        None => {}
        Some(e @ (ResponseError::FencedMemberEpoch | ResponseError::UnknownMemberId)) => {
            // Fenced: give the partitions up and join again.
            member.member_epoch = 0;
            member.owned.clear();
            return Err(format!("{e:?}; rejoining"));
        }
        Some(e) => {
            member.coordinator = None;
            return Err(format!("{e:?}"));
        }
    }
    if let Some(id) = response.member_id {
        member.member_id = id;
    }
    member.member_epoch = response.member_epoch;
    if let Some(assignment) = response.assignment {
        member.owned = assignment
            .topic_partitions
            .into_iter()
            .map(|t| {
                TopicPartitions::default()
                    .with_topic_id(t.topic_id)
                    .with_partitions(t.partitions)
            })
            .collect();
    }
    Ok(())
}

async fn fetch(
    admin: &mut Admin,
    member: &mut Member,
    partitions: i32,
    acknowledged: &BTreeMap<i32, i64>,
) -> Option<OffsetsSeen> {
    let coordinator = member.coordinator.clone()?;
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_indexes((0..partitions).collect())]));
    let response = match admin.send(&coordinator, &request, 7).await {
        Ok(r) => r,
        Err(_) => {
            member.coordinator = None;
            return None;
        }
    };
    let errors = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .chain(std::iter::once(response.error_code));
    if errors.into_iter().any(|code| code != 0) {
        member.coordinator = None;
        return None;
    }
    Some(OffsetsSeen {
        group: GROUP.to_string(),
        fetched: response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p.committed_offset))
            .collect(),
        acknowledged_before: acknowledged.clone(),
        from: coordinator,
        at_ms: turmoil::sim_elapsed().unwrap_or_default().as_millis(),
    })
}
