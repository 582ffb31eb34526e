//! ListPartitionReassignments: the partitions with a reassignment in progress, each with
//! its replicas and the replicas being added and removed (`kafka-reassign-partitions
//! --list|--verify`, the Java Admin's `listPartitionReassignments`), as Kafka's KRaft
//! controller answers (`ReplicationControlManager.listPartitionReassignments`). Served by
//! the active controller from the image with everything committed applied; any other node
//! forwards the request to it, as Kafka's brokers do.
//!
//! `topics` null lists every reassigning partition; otherwise the named partitions of the
//! named topics that are reassigning (a topic or partition that does not exist is left
//! out, as in Kafka).

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataImage, TopicImage};
use moldau_security::acl::AclOperation;

use super::{authz, forward_to_controller, str_bytes, topic_name};
use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ListPartitionReassignmentsRequest::VERSIONS;

/// One reassigning partition: (partition, replicas, adding, removing).
pub(crate) type Ongoing = (i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// The reassigning partitions of `topics` (`None`: of every topic), by topic name.
pub(crate) fn ongoing(
    image: &MetadataImage,
    topics: Option<&[(String, Vec<i32>)]>,
) -> Vec<(String, Vec<Ongoing>)> {
    let of_topic = |topic: &TopicImage, partitions: Option<&[i32]>| -> Vec<Ongoing> {
        let mut found = Vec::new();
        let mut visit = |id: i32| {
            if let Some(p) = topic.partitions.get(&id).filter(|p| p.is_reassigning()) {
                found.push((
                    id,
                    p.replicas.clone(),
                    p.adding_replicas.clone(),
                    p.removing_replicas.clone(),
                ));
            }
        };
        match partitions {
            Some(ids) => ids.iter().for_each(|id| visit(*id)),
            None => topic.partitions.keys().for_each(|id| visit(*id)),
        }
        found
    };
    let listed: Vec<(String, Vec<Ongoing>)> = match topics {
        None => image
            .topics()
            .into_iter()
            .map(|t| (t.name.clone(), of_topic(t, None)))
            .collect(),
        Some(named) => named
            .iter()
            .filter_map(|(name, ids)| {
                let topic = image.topic_by_name(name)?;
                Some((name.clone(), of_topic(topic, Some(ids))))
            })
            .collect(),
    };
    listed
        .into_iter()
        .filter(|(_, partitions)| !partitions.is_empty())
        .collect()
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    // Kafka's controller asks DESCRIBE on the cluster first; its error answer echoes the
    // partitions asked for.
    if let Err(message) =
        authz::authorize_cluster_unless_forwarded(state, ctx, AclOperation::Describe)
    {
        let topics = request.topics.iter().flatten().map(|t| {
            OngoingTopicReassignment::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|p| OngoingPartitionReassignment::default().with_partition_index(*p))
                        .collect(),
                )
        });
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(str_bytes(message)))
            .with_topics(topics.collect());
    }
    let quorum = state.controller.quorum();
    if !quorum.is_leader() {
        if let Some(response) = forward_to_controller(state, ctx.api_version, &request).await {
            return response;
        }
        return error(ResponseError::NotController);
    }
    // Everything committed before this request, as the controller decides writes.
    let image = match quorum.leader_image().await {
        Ok(image) => image,
        Err(_) => return error(ResponseError::NotController),
    };
    let topics: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let ids = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect::<Vec<_>>();
    ListPartitionReassignmentsResponse::default().with_topics(
        ongoing(&image, topics.as_deref())
            .into_iter()
            .map(|(name, partitions)| {
                OngoingTopicReassignment::default()
                    .with_name(topic_name(&name))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(partition, replicas, adding, removing)| {
                                OngoingPartitionReassignment::default()
                                    .with_partition_index(partition)
                                    .with_replicas(ids(replicas))
                                    .with_adding_replicas(ids(adding))
                                    .with_removing_replicas(ids(removing))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn error(error: ResponseError) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
        .with_error_code(error.code())
        .with_error_message(Some(str_bytes(error.to_string())))
}

#[cfg(test)]
mod tests {
    use moldau_metadata::{MetadataDelta, MetadataRecord, Uuid};

    use super::*;

    #[test]
    fn lists_reassigning_partitions_only() {
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        let mut offset = 0;
        let mut replay = |record: MetadataRecord| {
            delta.replay(offset, &record).unwrap();
            offset += 1;
        };
        for (name, id) in [("a", 1u128), ("b", 2)] {
            let topic_id = Uuid::from_u128(id);
            replay(MetadataRecord::Topic {
                name: name.into(),
                topic_id,
            });
            for partition_id in 0..3 {
                let moving = name == "b" && partition_id == 1;
                replay(MetadataRecord::Partition {
                    topic_id,
                    partition_id,
                    replicas: if moving { vec![2, 1] } else { vec![1] },
                    isr: vec![1],
                    adding_replicas: if moving { vec![2] } else { vec![] },
                    removing_replicas: if moving { vec![1] } else { vec![] },
                    leader: 1,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    eligible_leader_replicas: Vec::new(),
                    last_known_elr: Vec::new(),
                });
            }
        }
        let image = delta.apply();
        let moving = vec![("b".to_string(), vec![(1, vec![2, 1], vec![2], vec![1])])];
        assert_eq!(ongoing(&image, None), moving);
        let asked = [
            ("a".to_string(), vec![0, 1]),
            ("b".to_string(), vec![0, 1, 9]),
            ("nope".to_string(), vec![0]),
        ];
        assert_eq!(ongoing(&image, Some(&asked)), moving);
        assert!(ongoing(&image, Some(&[("b".to_string(), vec![2])])).is_empty());
    }
}
