//! CreateTopics: validate, place partitions, write Topic + Partition records.
//! Also serves auto-creation from Metadata (same validation and placement).
//!
//! Authorization (Kafka's `ControllerApis.createTopics`, made where the client's request
//! arrives, see `handlers::authz`): CREATE on the cluster, else on each topic
//! (TOPIC_AUTHORIZATION_FAILED "Authorization failed.", after the other results); a created
//! topic's configs, partition count and replication factor are returned only with
//! DESCRIBE_CONFIGS on it (else `topic_config_error_code` TOPIC_AUTHORIZATION_FAILED).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{ConfigResourceType, MetadataImage, MetadataRecord, Uuid};
use moldau_security::acl::{AclOperation, ResourceType};

use super::{authz, str_bytes, topic_name};
use crate::api::RequestContext;
use crate::authorizer::{self, CLUSTER_NAME};
use crate::controller::METADATA_TOPIC;
use crate::descriptors::DescriptorBudget;
use crate::error::BrokerError;
use crate::placement::{self, UsableBroker};
use crate::state::BrokerState;
use crate::topic_configs;

pub const VERSIONS: VersionRange = CreateTopicsRequest::VERSIONS;

/// Kafka's limit: a partition directory name must fit in 255 bytes.
const MAX_TOPIC_NAME_LENGTH: usize = 249;

/// Kafka's bound on the partitions one CreateTopics request may create, over all its
/// topics (checked before anything is planned, so a huge count allocates nothing).
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// Kafka's message when a request asks for more than [`MAX_PARTITIONS_PER_REQUEST`].
pub const TOO_MANY_PARTITIONS: &str = "Excessively large number of partitions per request.";

/// A topic to create, with Kafka's -1 meaning "the broker default".
pub struct NewTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// Explicit replica assignment: (partition index, broker ids).
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

/// A refused topic: the error code and Kafka's message.
pub type TopicError = (ResponseError, String);

pub struct PlannedTopic {
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub records: Vec<MetadataRecord>,
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    mut request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    // Kafka's controller authorizes first (here, where the client's principal is known)
    // and creates only the topics the principal may create.
    let access = Access::of(state, ctx, &request);
    request
        .topics
        .retain(|t| !access.unauthorized.iter().any(|u| u == t.name.as_str()));
    let mut response = if request.topics.is_empty() {
        CreateTopicsResponse::default()
    } else if let Some(response) = super::forward_unless_controller(state, ctx, &request).await {
        if !request.validate_only {
            await_created_topics(state, &response).await;
        }
        response
    } else {
        // KIP-599: strict from v6, as Kafka's controller.
        let quota = state
            .quota_manager
            .controller_mutation(&state.image(), ctx, 6);
        create(state, request, &quota).await
    };
    access.apply(&mut response);
    response
}

/// What the principal may do with the topics of a CreateTopics, as Kafka's
/// `ControllerApis.createTopics` decides it: CREATE on the cluster (a quiet check), else
/// CREATE on each topic; its configs are returned only with DESCRIBE_CONFIGS on the topic
/// (a quiet check). Topics named twice and the metadata topic are refused for what they
/// are, without a check.
struct Access {
    unauthorized: Vec<String>,
    undescribable: BTreeSet<String>,
}

impl Access {
    fn of(state: &BrokerState, ctx: &RequestContext, request: &CreateTopicsRequest) -> Access {
        let mut access = Access {
            unauthorized: Vec::new(),
            undescribable: BTreeSet::new(),
        };
        if !authz::must_check(state, ctx) {
            return access;
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for topic in &request.topics {
            *counts.entry(topic.name.as_str()).or_default() += 1;
        }
        let names: Vec<&str> = request
            .topics
            .iter()
            .map(|t| t.name.as_str())
            .filter(|name| counts[name] == 1 && *name != METADATA_TOPIC)
            .collect();
        let cluster_create = authorizer::allowed_quietly(
            state,
            ctx,
            AclOperation::Create,
            ResourceType::Cluster,
            CLUSTER_NAME,
        );
        for name in names {
            if !cluster_create
                && !authorizer::allowed(state, ctx, AclOperation::Create, ResourceType::Topic, name)
            {
                access.unauthorized.push(name.to_string());
            }
            if !authorizer::allowed_quietly(
                state,
                ctx,
                AclOperation::DescribeConfigs,
                ResourceType::Topic,
                name,
            ) {
                access.undescribable.insert(name.to_string());
            }
        }
        access
    }

    /// The refusals, after the other topics' results (as Kafka appends them), and no
    /// configs for the topics the principal may not describe.
    fn apply(self, response: &mut CreateTopicsResponse) {
        for result in &mut response.topics {
            if result.error_code == 0 && self.undescribable.contains(result.name.as_str()) {
                result.configs = Some(Vec::new());
                result.num_partitions = -1;
                result.replication_factor = -1;
                result.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
            }
        }
        response
            .topics
            .extend(self.unauthorized.into_iter().map(|name| {
                CreatableTopicResult::default()
                    .with_name(topic_name(&name))
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes("Authorization failed.")))
            }));
    }
}

/// Creates the topics of a request on the active controller.
async fn create(
    state: &BrokerState,
    request: CreateTopicsRequest,
    quota: &crate::quota_manager::ControllerMutationQuota<'_>,
) -> CreateTopicsResponse {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for topic in &request.topics {
        *counts.entry(topic.name.to_string()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(request.topics.len());
    // As Kafka: the whole request is refused when its topics ask for too many partitions
    // (-1 counts as num.partitions, explicit assignments by their length).
    let requested_partitions: i64 = request
        .topics
        .iter()
        .map(|t| match (t.assignments.is_empty(), t.num_partitions) {
            (false, _) => t.assignments.len() as i64,
            (true, -1) => i64::from(state.config.num_partitions),
            (true, n) => i64::from(n.max(0)),
        })
        .sum();
    let too_many = requested_partitions > MAX_PARTITIONS_PER_REQUEST;
    for topic in request.topics {
        let new_topic = NewTopic {
            name: topic.name.to_string(),
            num_partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignments: topic
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs: topic
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect(),
        };
        let mut result = CreatableTopicResult::default().with_name(topic_name(&new_topic.name));
        let outcome = if too_many {
            Err((ResponseError::PolicyViolation, TOO_MANY_PARTITIONS.into()))
        } else if counts[&new_topic.name] > 1 {
            Err((
                ResponseError::InvalidRequest,
                format!(
                    "Create topics request from client contains a duplicate topic {}",
                    new_topic.name
                ),
            ))
        } else if let Err(refusal) = quota.admit() {
            Err(refusal)
        } else {
            let created = create_topic(state, &new_topic, request.validate_only).await;
            if let Ok(planned) = &created {
                quota.record(planned.num_partitions.max(0) as u32);
            }
            created
        };
        match outcome {
            Ok(planned) => {
                result.topic_id = if request.validate_only {
                    Uuid::nil()
                } else {
                    planned.topic_id
                };
                result.num_partitions = planned.num_partitions;
                result.replication_factor = planned.replication_factor;
                result.configs = Some(describe_new_topic_configs(state, &new_topic));
            }
            Err((error, message)) => {
                result.error_code = error.code();
                result.error_message = Some(str_bytes(message));
                result.num_partitions = -1;
                result.replication_factor = -1;
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// Validates and (unless `validate_only`) commits one topic.
pub async fn create_topic(
    state: &BrokerState,
    topic: &NewTopic,
    validate_only: bool,
) -> Result<PlannedTopic, TopicError> {
    let result = state
        .controller
        .write(|image| {
            let planned = plan_topic(state, image, topic).map_err(TopicWriteError::Refused)?;
            let records = if validate_only {
                vec![]
            } else {
                planned.records.clone()
            };
            Ok::<_, TopicWriteError>((records, planned))
        })
        .await;
    match result {
        Ok(planned) => Ok(planned),
        Err(TopicWriteError::Refused(e)) => Err(e),
        Err(TopicWriteError::Broker(e)) => {
            if !e.is_client_refusal() {
                tracing::error!("cannot create topic {}: {e}", topic.name);
            }
            Err((e.response_error(), e.to_string()))
        }
    }
}

/// How long a node waits for the active controller to create a topic it needs (internal
/// topics, auto-creation) and for the topic to reach its own image.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates a topic wherever this node is: on the active controller directly, elsewhere by
/// sending CreateTopics to it (as Kafka's brokers forward auto-creation), then waits until
/// this node's image has the topic, so the caller can use it at once.
pub async fn create_topic_via_controller(
    state: &BrokerState,
    topic: &NewTopic,
) -> Result<(), TopicError> {
    let leader = state.controller.leader_id();
    if leader.is_none() || leader == Some(state.node_id) {
        return create_topic(state, topic, false).await.map(|_| ());
    }
    let unavailable = |why: String| (ResponseError::NotController, why);
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(FORWARD_TIMEOUT.as_millis() as i32)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(&topic.name))
            .with_num_partitions(topic.num_partitions)
            .with_replication_factor(topic.replication_factor)
            .with_configs(
                topic
                    .configs
                    .iter()
                    .map(|(name, value)| {
                        CreatableTopicConfig::default()
                            .with_name(str_bytes(name.clone()))
                            .with_value(value.clone().map(str_bytes))
                    })
                    .collect(),
            )]);
    let response = state
        .send_to_controller(&request, 5, FORWARD_TIMEOUT)
        .await
        .map_err(unavailable)?;
    let result = response
        .topics
        .first()
        .ok_or_else(|| unavailable("empty CreateTopics answer".into()))?;
    if let Some(error) = ResponseError::try_from_code(result.error_code) {
        let message = result.error_message.as_ref().map(|m| m.to_string());
        return Err((error, message.unwrap_or_else(|| error.to_string())));
    }
    let mut images = state.controller.quorum().subscribe();
    let name = topic.name.clone();
    let arrived = tokio::time::timeout(
        FORWARD_TIMEOUT,
        images.wait_for(|image| image.topic_by_name(&name).is_some()),
    )
    .await;
    match arrived {
        Ok(Ok(_)) => Ok(()),
        _ => Err((
            ResponseError::RequestTimedOut,
            format!("topic {name} created but not yet in this node's metadata"),
        )),
    }
}

/// After a forwarded CreateTopics: waits (bounded) until this node's image has the
/// topics the active controller created, so that the client's next Metadata here finds
/// them. A topic that has not arrived in time is still created; the client retries.
async fn await_created_topics(state: &BrokerState, response: &CreateTopicsResponse) {
    let created: Vec<String> = response
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .map(|t| t.name.to_string())
        .collect();
    if created.is_empty() {
        return;
    }
    let mut images = state.controller.quorum().subscribe();
    let _ = tokio::time::timeout(
        FORWARD_TIMEOUT,
        images.wait_for(|image| created.iter().all(|n| image.topic_by_name(n).is_some())),
    )
    .await;
}

enum TopicWriteError {
    Refused(TopicError),
    Broker(BrokerError),
}

impl From<BrokerError> for TopicWriteError {
    fn from(e: BrokerError) -> Self {
        TopicWriteError::Broker(e)
    }
}

/// Kafka's topic name rules.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    let invalid = |why: String| Err((ResponseError::InvalidTopicException, why));
    if name.is_empty() {
        return invalid("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return invalid("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_TOPIC_NAME_LENGTH {
        return invalid(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters, topic name: {name}"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return invalid(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

fn plan_topic(
    state: &BrokerState,
    image: &MetadataImage,
    topic: &NewTopic,
) -> Result<PlannedTopic, TopicError> {
    validate_topic_name(&topic.name)?;
    if topic.name == METADATA_TOPIC {
        return Err((
            ResponseError::InvalidRequest,
            format!("Creation of internal topic {METADATA_TOPIC} is prohibited."),
        ));
    }
    if image.topic_by_name(&topic.name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("Topic '{}' already exists.", topic.name),
        ));
    }
    // '.' and '_' collide in metric names, so Kafka refuses topics that differ only there.
    let collision_key = |s: &str| s.replace('.', "_");
    if let Some(existing) = image
        .topics()
        .into_iter()
        .find(|t| collision_key(&t.name) == collision_key(&topic.name))
    {
        return Err((
            ResponseError::InvalidTopicException,
            format!(
                "Topic '{}' collides with existing topic: {}",
                topic.name, existing.name
            ),
        ));
    }
    let topic_id = Uuid::new_v4();
    let assignments = place_replicas(state, image, topic, topic_id)?;
    let replication_factor = assignments[0].len() as i16;
    let configs = validate_configs(state, topic)?;
    let local = assignments
        .iter()
        .filter(|replicas| replicas.contains(&state.node_id))
        .count() as u64;
    if let Some(Err(why)) = DescriptorBudget::measure().map(|mut b| b.take(local)) {
        return Err((ResponseError::PolicyViolation, why));
    }

    let mut records = vec![MetadataRecord::Topic {
        name: topic.name.clone(),
        topic_id,
    }];
    for (name, value) in configs {
        records.push(MetadataRecord::Config {
            resource_type: ConfigResourceType::Topic,
            resource_name: topic.name.clone(),
            name,
            value: Some(value),
        });
    }
    for (partition_id, replicas) in assignments.iter().enumerate() {
        records.push(MetadataRecord::Partition {
            topic_id,
            partition_id: partition_id as i32,
            replicas: replicas.clone(),
            isr: replicas.clone(),
            leader: replicas[0],
            leader_epoch: 0,
            partition_epoch: 0,
            adding_replicas: vec![],
            removing_replicas: vec![],
            eligible_leader_replicas: Vec::new(),
            last_known_elr: Vec::new(),
        });
    }
    Ok(PlannedTopic {
        topic_id,
        num_partitions: assignments.len() as i32,
        replication_factor,
        records,
    })
}

/// Replica lists per partition: explicit assignments checked, or placed rack-aware over
/// the unfenced brokers by Kafka's striped placement ([`placement`]), seeded by the new
/// topic's (random) id.
fn place_replicas(
    state: &BrokerState,
    image: &MetadataImage,
    topic: &NewTopic,
    topic_id: Uuid,
) -> Result<Vec<Vec<i32>>, TopicError> {
    let registered: Vec<i32> = image.brokers.keys().copied().collect();
    if !topic.assignments.is_empty() {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err((
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        // Also bounded per topic, for callers other than the CreateTopics handler.
        if topic.assignments.len() as i64 > MAX_PARTITIONS_PER_REQUEST {
            return Err((ResponseError::PolicyViolation, TOO_MANY_PARTITIONS.into()));
        }
        let mut sorted = topic.assignments.clone();
        sorted.sort_by_key(|(p, _)| *p);
        let invalid = |why: String| Err((ResponseError::InvalidReplicaAssignment, why));
        for (expected, (partition, replicas)) in sorted.iter().enumerate() {
            if *partition != expected as i32 {
                return invalid(format!("partitions should be a consecutive 0-based integer sequence, got partition {partition}"));
            }
            if replicas.is_empty() {
                return invalid(format!("The manual partition assignment includes an empty replica list for partition {partition}."));
            }
            if replicas.len() != sorted[0].1.len() {
                return invalid("All partitions should have the same number of replicas".into());
            }
            let mut unique = replicas.clone();
            unique.sort();
            unique.dedup();
            if unique.len() != replicas.len() {
                return invalid(format!("The manual partition assignment includes duplicate replicas for partition {partition}."));
            }
            if let Some(b) = replicas.iter().find(|b| !registered.contains(b)) {
                return invalid(format!("The manual partition assignment includes broker {b}, but no such broker is registered."));
            }
        }
        return Ok(sorted.into_iter().map(|(_, r)| r).collect());
    }
    let num_partitions = match topic.num_partitions {
        -1 => state.config.num_partitions,
        n if n <= 0 => {
            return Err((
                ResponseError::InvalidPartitions,
                "Number of partitions was set to an invalid non-positive value.".into(),
            ))
        }
        n if i64::from(n) > MAX_PARTITIONS_PER_REQUEST => {
            return Err((ResponseError::PolicyViolation, TOO_MANY_PARTITIONS.into()))
        }
        n => n,
    };
    let replication_factor = match topic.replication_factor {
        -1 => state.config.default_replication_factor,
        n if n <= 0 => {
            return Err((
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ))
        }
        n => n,
    };
    // New replicas go to brokers that can serve them (Kafka's usable brokers).
    placement::place(
        &UsableBroker::unfenced(image),
        num_partitions as usize,
        replication_factor as usize,
        placement::seed_from(topic_id, 0),
    )
    .map_err(|e| (ResponseError::InvalidReplicationFactor, e.to_string()))
}

/// Topic configs must be known keys with valid values; returns them with values trimmed.
fn validate_configs(
    state: &BrokerState,
    topic: &NewTopic,
) -> Result<Vec<(String, String)>, TopicError> {
    let mut configs = BTreeMap::new();
    for (name, value) in &topic.configs {
        let Some(value) = value else {
            return Err((
                ResponseError::InvalidConfig,
                format!("Null value not supported for topic configs: {name}"),
            ));
        };
        configs.insert(name.clone(), value.trim().to_string());
    }
    topic_configs::validate_topic_overrides(state.replica_manager.log_defaults(), &configs)?;
    Ok(configs.into_iter().collect())
}

fn describe_new_topic_configs(state: &BrokerState, topic: &NewTopic) -> Vec<CreatableTopicConfigs> {
    let overrides: BTreeMap<String, String> = topic
        .configs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.trim().to_string())))
        .collect();
    topic_configs::effective(state, &overrides)
        .into_iter()
        .map(|entry| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(entry.name))
                .with_value(entry.value.map(str_bytes))
                .with_config_source(entry.source as i8)
                .with_read_only(false)
                .with_is_sensitive(false)
        })
        .collect()
}
