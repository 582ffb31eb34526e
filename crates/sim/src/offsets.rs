//! The group-offsets client: commits ever larger offsets of `sim-events` for the group
//! `sim-group` (a group without members, as a standalone consumer commits: generation
//! -1) and fetches them back between commits, recording what each fetch saw and which
//! commits had been acknowledged before it was sent.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::workload::{note, Admin, Shared, TOPIC};

const GROUP: &str = "sim-group";
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// One OffsetFetch answer: the offsets it showed, and the largest acknowledged commit of
/// each partition when it was sent (it may show no less).
#[derive(Clone, Debug, Hash)]
pub struct OffsetsSeen {
    pub group: String,
    pub fetched: BTreeMap<i32, i64>,
    pub acknowledged_before: BTreeMap<i32, i64>,
    /// The coordinator that answered, and when (simulated ms).
    pub from: String,
    pub at_ms: u128,
}

/// Commits `commits` offsets (partition `i % partitions`, offset growing per partition),
/// fetching the group's offsets after each.
pub(crate) async fn run(
    admin: &mut Admin,
    shared: &Shared,
    partitions: i32,
    commits: usize,
    pace: Duration,
) -> Vec<OffsetsSeen> {
    let mut coordinator: Option<String> = None;
    let mut acknowledged: BTreeMap<i32, i64> = BTreeMap::new();
    let mut seen = Vec::new();
    admin.create_topic(TOPIC, partitions, shared).await;
    for i in 0..commits {
        tokio::time::sleep(pace).await;
        let partition = (i as i32) % partitions;
        let offset = (i as i64) / partitions as i64 + 1;
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(partition)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1)])]);
        let committed = with_coordinator(
            admin,
            GROUP,
            &mut coordinator,
            shared,
            "OffsetCommit",
            |r| {
                let codes = r
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code));
                first_error(codes)
            },
            &request,
            8,
        )
        .await;
        if committed.is_ok() {
            acknowledged.insert(partition, offset);
            let by = coordinator.clone().unwrap_or_default();
            note(
                shared,
                format!("offset commit p{partition}={offset} acknowledged by {by}"),
            );
        }
        if let Some(offsets) =
            fetch(admin, &mut coordinator, shared, partitions, &acknowledged).await
        {
            seen.push(offsets);
        }
    }
    // Once more at the end: the last fetch shows every acknowledged commit.
    let mut final_fetch = None;
    while final_fetch.is_none() {
        final_fetch = fetch(admin, &mut coordinator, shared, partitions, &acknowledged).await;
    }
    seen.extend(final_fetch);
    seen
}

/// One OffsetFetch of every partition of the group, with what had been acknowledged.
async fn fetch(
    admin: &mut Admin,
    coordinator: &mut Option<String>,
    shared: &Shared,
    partitions: i32,
    acknowledged: &BTreeMap<i32, i64>,
) -> Option<OffsetsSeen> {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_indexes((0..partitions).collect())]));
    let errors = |r: &kafka_protocol::messages::OffsetFetchResponse| {
        let codes = r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .chain(std::iter::once(r.error_code));
        first_error(codes)
    };
    let response = with_coordinator(
        admin,
        GROUP,
        coordinator,
        shared,
        "OffsetFetch",
        errors,
        &request,
        7,
    )
    .await
    .ok()?;
    let fetched = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    Some(OffsetsSeen {
        group: GROUP.to_string(),
        fetched,
        acknowledged_before: acknowledged.clone(),
        from: coordinator.clone().unwrap_or_default(),
        at_ms: turmoil::sim_elapsed().unwrap_or_default().as_millis(),
    })
}

pub(crate) fn first_error(codes: impl Iterator<Item = i16>) -> Option<ResponseError> {
    codes.filter_map(ResponseError::try_from_code).next()
}

/// Sends `request` to the coordinator of `group` until it is answered without error
/// (`errors` names the first one of an answer), finding the coordinator again after
/// retriable errors; `Err` past the step's time limit (`None`) or with another error.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn with_coordinator<R: kafka_protocol::protocol::Request>(
    admin: &mut Admin,
    group: &str,
    coordinator: &mut Option<String>,
    shared: &Shared,
    what: &str,
    errors: impl Fn(&R::Response) -> Option<ResponseError>,
    request: &R,
    version: i16,
) -> Result<R::Response, Option<ResponseError>> {
    let give_up = tokio::time::Instant::now() + STEP_TIMEOUT;
    let mut last_error = String::new();
    while tokio::time::Instant::now() < give_up {
        let addr = match coordinator.clone() {
            Some(addr) => addr,
            None => match admin.find_coordinator(group, 0).await {
                Some(addr) => {
                    *coordinator = Some(addr.clone());
                    addr
                }
                None => {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                    continue;
                }
            },
        };
        let error = match admin.send(&addr, request, version).await {
            Ok(response) => match errors(&response) {
                None => return Ok(response),
                Some(e) => {
                    let retriable = matches!(
                        e,
                        ResponseError::NotCoordinator
                            | ResponseError::CoordinatorNotAvailable
                            | ResponseError::CoordinatorLoadInProgress
                            | ResponseError::RequestTimedOut
                            | ResponseError::UnknownTopicOrPartition
                            // A require_stable fetch while a transaction holds a commit.
                            | ResponseError::UnstableOffsetCommit
                            | ResponseError::ConcurrentTransactions
                    );
                    if !retriable {
                        note(shared, format!("{what}: {e:?}"));
                        return Err(Some(e));
                    }
                    format!("{e:?}")
                }
            },
            Err(e) => e.to_string(),
        };
        if error != last_error {
            note(shared, format!("{what} via {addr}: {error}"));
            last_error = error;
        }
        *coordinator = None;
        tokio::time::sleep(RETRY_BACKOFF).await;
    }
    Err(None)
}
