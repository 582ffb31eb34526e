//! Metadata: brokers, controller, topics and partitions; auto-creates topics when allowed.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataImage, TopicImage, Uuid};

use super::create_topics::{self, NewTopic};
use super::{client_listener, str_bytes, topic_name};
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer::{self, CLUSTER_NAME};
use crate::state::BrokerState;
use moldau_coordinator::OFFSETS_TOPIC;

pub const VERSIONS: VersionRange = MetadataRequest::VERSIONS;

/// Kafka's "authorized operations not requested" marker.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    // v0 has no "all topics" null; an empty list means all topics there.
    let all_topics = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.api_version == 0,
    };
    // Auto-creation is implied before v4.
    let allow_auto_create = state.config.auto_create_topics_enable
        && (ctx.api_version < 4 || request.allow_auto_topic_creation);

    let listener = client_listener(state, ctx);
    let mut image = state.image();
    let mut topics = Vec::new();
    let describe = |name: &str, log: bool| {
        authorizer::allowed_logging_if(
            log,
            state,
            ctx,
            AclOperation::Describe,
            ResourceType::Topic,
            name,
        )
    };
    let topic_ops = |name: &str| {
        if request.include_topic_authorized_operations {
            authorizer::authorized_operations(state, ctx, ResourceType::Topic, name)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        }
    };
    if all_topics {
        // Topics the principal may not describe are left out, as if they did not exist.
        topics = image
            .topics()
            .iter()
            .filter(|t| describe(&t.name, false))
            .map(|t| topic_response(&image, listener, ctx.api_version, t, topic_ops(&t.name)))
            .collect();
    } else {
        for requested in request.topics.iter().flatten() {
            if let Some(name) = &requested.name {
                let name = name.to_string();
                // Existence is not disclosed to a principal that may not describe it.
                if !describe(&name, true) {
                    topics.push(error_topic(
                        Some(&name),
                        Uuid::nil(),
                        ResponseError::TopicAuthorizationFailed,
                    ));
                    continue;
                }
                if image.topic_by_name(&name).is_none()
                    && allow_auto_create
                    && !may_create(state, ctx, &name)
                {
                    topics.push(error_topic(
                        Some(&name),
                        Uuid::nil(),
                        ResponseError::TopicAuthorizationFailed,
                    ));
                    continue;
                }
                if image.topic_by_name(&name).is_none() && allow_auto_create {
                    if let Some(error) = auto_create(state, &name).await {
                        topics.push(error_topic(Some(&name), Uuid::nil(), error));
                        continue;
                    }
                    image = state.image();
                }
                topics.push(match image.topic_by_name(&name) {
                    Some(topic) => topic_response(
                        &image,
                        listener,
                        ctx.api_version,
                        topic,
                        topic_ops(&topic.name),
                    ),
                    None => error_topic(
                        Some(&name),
                        Uuid::nil(),
                        match create_topics::validate_topic_name(&name) {
                            Ok(()) => ResponseError::UnknownTopicOrPartition,
                            Err((error, _)) => error,
                        },
                    ),
                });
            } else {
                topics.push(match image.topic_by_id(&requested.topic_id) {
                    // Ids are not secret: an id the principal may not describe is
                    // TOPIC_AUTHORIZATION_FAILED, without its name.
                    Some(topic) if !describe(&topic.name, true) => error_topic(
                        None,
                        requested.topic_id,
                        ResponseError::TopicAuthorizationFailed,
                    ),
                    Some(topic) => topic_response(
                        &image,
                        listener,
                        ctx.api_version,
                        topic,
                        topic_ops(&topic.name),
                    ),
                    None => error_topic(None, requested.topic_id, ResponseError::UnknownTopicId),
                });
            }
        }
    }
    let mut response = MetadataResponse::default()
        .with_brokers(brokers(&image, listener))
        .with_cluster_id(Some(str_bytes(state.cluster_id.clone())))
        .with_controller_id(BrokerId(state.controller_id(&image)))
        .with_topics(topics);
    // v8-v10 carry the cluster's operations (later versions: DescribeCluster).
    response.cluster_authorized_operations =
        if request.include_cluster_authorized_operations && (8..=10).contains(&ctx.api_version) {
            if authorizer::allowed_cluster(state, ctx, AclOperation::Describe) {
                authorizer::authorized_operations(state, ctx, ResourceType::Cluster, CLUSTER_NAME)
            } else {
                0
            }
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
    response
}

/// Auto-creation needs CREATE on the cluster or on the topic.
fn may_create(state: &BrokerState, ctx: &RequestContext, name: &str) -> bool {
    authorizer::allowed_quietly(
        state,
        ctx,
        AclOperation::Create,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) || authorizer::allowed(state, ctx, AclOperation::Create, ResourceType::Topic, name)
}

async fn auto_create(state: &BrokerState, name: &str) -> Option<ResponseError> {
    if name == OFFSETS_TOPIC {
        // Internal topics are created by their coordinator, with its partition count and
        // compaction, never with the auto-create defaults.
        return state
            .group_coordinator
            .ensure_offsets_topic(state)
            .await
            .err();
    }
    let new_topic = NewTopic {
        name: name.to_string(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: vec![],
        configs: vec![],
    };
    match create_topics::create_topic_via_controller(state, &new_topic).await {
        Ok(()) => None,
        // Another request created it first: fine.
        Err((ResponseError::TopicAlreadyExists, _)) => None,
        Err((error, message)) => {
            tracing::debug!("auto-creation of {name} refused: {message}");
            Some(error)
        }
    }
}

/// The brokers clients may use: registered and unfenced, as Kafka's alive brokers, with
/// their endpoints on the client's listener (a broker without it is left out).
fn brokers(image: &MetadataImage, listener: &str) -> Vec<MetadataResponseBroker> {
    image
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let (host, port) = b.endpoint(listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.broker_id))
                    .with_host(str_bytes(host))
                    .with_port(i32::from(port))
                    .with_rack(b.rack.clone().map(str_bytes)),
            )
        })
        .collect()
}

fn topic_response(
    image: &MetadataImage,
    listener: &str,
    api_version: i16,
    topic: &TopicImage,
    authorized_operations: i32,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(index, p)| {
            // No leader (its only in-sync replica is fenced): Kafka's LEADER_NOT_AVAILABLE.
            // A leader the client cannot reach on its listener: LISTENER_NOT_FOUND from v6
            // (LEADER_NOT_AVAILABLE before), and no leader id, as Kafka answers.
            let (leader, error) = if p.leader < 0 {
                (p.leader, ResponseError::LeaderNotAvailable.code())
            } else if image
                .brokers
                .get(&p.leader)
                .is_some_and(|b| b.endpoint(listener).is_none())
            {
                let error = if api_version >= 6 {
                    ResponseError::ListenerNotFound
                } else {
                    ResponseError::LeaderNotAvailable
                };
                (-1, error.code())
            } else {
                (p.leader, 0)
            };
            MetadataResponsePartition::default()
                .with_error_code(error)
                .with_partition_index(*index)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.topic_id)
        .with_is_internal(is_internal(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(authorized_operations)
}

fn error_topic(name: Option<&str>, topic_id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name.map(topic_name))
        .with_topic_id(topic_id)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

/// Kafka's internal topics.
pub fn is_internal(topic: &str) -> bool {
    topic == "__consumer_offsets" || topic == "__transaction_state"
}
