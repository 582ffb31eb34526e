//! The admin's reassignment: with more brokers than replicas, moves one replica of every
//! `sim-events` partition to a broker that has none (AlterPartitionReassignments, as
//! `kafka-reassign-partitions --execute` does) while the producers write, then waits until
//! ListPartitionReassignments shows nothing in progress.

use std::time::Duration;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest,
    MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::workload::{note, Admin, Shared, TOPIC};

const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Starts at simulated time `start` (after the topic exists), gives up after `timeout`.
pub(crate) async fn run(admin: &mut Admin, shared: &Shared, start: Duration, timeout: Duration) {
    tokio::time::sleep(start).await;
    let give_up = tokio::time::Instant::now() + timeout;
    let Some(targets) = targets(admin, give_up).await else {
        note(
            shared,
            "reassignment: no broker to move a replica to".into(),
        );
        return;
    };
    let topic = ReassignableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
        .with_partitions(
            targets
                .iter()
                .map(|(partition, replicas)| {
                    ReassignablePartition::default()
                        .with_partition_index(*partition)
                        .with_replicas(Some(replicas.iter().map(|id| BrokerId(*id)).collect()))
                })
                .collect(),
        );
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![topic]);
    let mut last_error = String::new();
    loop {
        if tokio::time::Instant::now() >= give_up {
            note(shared, "reassignment: not accepted in time".into());
            return;
        }
        let addr = admin.any_node();
        let error = match admin.send(&addr, &request, 0).await {
            Ok(r) => {
                let codes = r
                    .responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                    .chain(std::iter::once(r.error_code));
                match codes.filter_map(ResponseError::try_from_code).next() {
                    None => break,
                    Some(e) => format!("{e:?}"),
                }
            }
            Err(e) => e.to_string(),
        };
        if error != last_error {
            note(
                shared,
                format!("AlterPartitionReassignments via {addr}: {error}"),
            );
            last_error = error;
        }
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
    note(shared, format!("reassignment started: {targets:?}"));
    let list = ListPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(None);
    while tokio::time::Instant::now() < give_up {
        let addr = admin.any_node();
        if let Ok(r) = admin.send(&addr, &list, 0).await {
            if r.error_code == 0 && r.topics.iter().all(|t| t.partitions.is_empty()) {
                note(shared, "reassignment complete".into());
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    note(
        shared,
        "reassignment: still in progress at its time limit".into(),
    );
}

/// For each partition, its replicas with the last one replaced by the first broker that
/// holds none of them; `None` when no broker is free (as many brokers as replicas).
async fn targets(admin: &mut Admin, give_up: tokio::time::Instant) -> Option<Vec<(i32, Vec<i32>)>> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(TOPIC))))]));
    while tokio::time::Instant::now() < give_up {
        let addr = admin.any_node();
        let Ok(response) = admin.send(&addr, &request, 9).await else {
            tokio::time::sleep(RETRY_BACKOFF).await;
            continue;
        };
        let brokers: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
        let Some(topic) = response.topics.first().filter(|t| t.error_code == 0) else {
            tokio::time::sleep(RETRY_BACKOFF).await;
            continue;
        };
        let mut targets = Vec::new();
        for p in &topic.partitions {
            let mut replicas: Vec<i32> = p.replica_nodes.iter().map(|id| id.0).collect();
            let free = brokers.iter().copied().find(|id| !replicas.contains(id))?;
            replicas.pop();
            replicas.push(free);
            targets.push((p.partition_index, replicas));
        }
        targets.sort();
        return Some(targets);
    }
    None
}
