//! AlterConfigs (legacy): replaces the whole set of a resource's dynamic configs; keys left
//! out are removed. Also holds the engine IncrementalAlterConfigs shares: Kafka's broker-side
//! checks (duplicates, nulls, broker id, which broker keys are dynamic), then one controller
//! write that checks each resource against the current image and commits `Config` records
//! for every resource that passed (none under `validate_only`).
//!
//! Topic configs are validated as a whole through `moldau_storage::LogConfig`
//! (INVALID_CONFIG naming the key). Broker configs live on the broker's id ("1") or on ""
//! (the cluster default) and may only set the `log.*` topic defaults (see
//! [`crate::topic_configs::validate_broker_configs`]).
//!
//! Authorization (Kafka's `ControllerApis.authorizeAlterResource`, after the broker-side
//! checks): ALTER_CONFIGS on the topic, the group, or the cluster for broker resources;
//! an IncrementalAlterConfigs BROKER_LOGGER change needs it on the cluster before anything
//! else (CLUSTER_AUTHORIZATION_FAILED without a message, as Kafka's preprocessing).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::{Message, StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{ConfigResource, ConfigResourceType, MetadataImage, MetadataRecord};
use moldau_security::acl::{AclOperation, ResourceType};

use super::create_topics::validate_topic_name;
use super::{authz, forward_to_controller, str_bytes};
use crate::api::RequestContext;
use crate::authorizer::{self, CLUSTER_NAME};
use crate::error::BrokerError;
use crate::state::BrokerState;
use crate::topic_configs::{
    self, ConfigRefusal, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_CLIENT_METRICS,
    RESOURCE_GROUP, RESOURCE_TOPIC,
};

pub const VERSIONS: VersionRange = AlterConfigsRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let changes: Vec<ResourceChange> = request
        .resources
        .iter()
        .map(|r| ResourceChange {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            ops: Ops::Replace(
                r.configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                    .collect(),
            ),
        })
        .collect();
    let forwarded = forward_to_controller_if_needed(state, ctx, &changes, |indexes| {
        let mut subset = request.clone();
        subset.resources = indexes
            .iter()
            .map(|i| request.resources[*i].clone())
            .collect();
        async move {
            let response = forward_to_controller(state, ctx.api_version, &subset).await?;
            Some(
                response
                    .responses
                    .iter()
                    .map(|r| outcome_of(r.error_code, r.error_message.as_ref()))
                    .collect(),
            )
        }
    })
    .await;
    let outcomes = match forwarded {
        Some(outcomes) => outcomes,
        None => alter(state, ctx, &changes, request.validate_only).await,
    };
    let responses = request
        .resources
        .iter()
        .zip(outcomes)
        .map(|(r, outcome)| {
            let (error_code, error_message) = response_error(outcome);
            AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_code(error_code)
                .with_error_message(error_message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// A resource's outcome from the code and message of a (forwarded) answer.
pub(super) fn outcome_of(code: i16, message: Option<&StrBytes>) -> Result<(), ConfigRefusal> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err((
            error,
            message.map_or_else(|| error.to_string(), |m| m.to_string()),
        )),
    }
}

/// Kafka's brokers check a config change themselves (`ConfigAdminManager.preprocess`,
/// with the broker id a broker resource must name) and forward the resources that passed
/// to the active controller, which applies them without that check (a broker's dynamic
/// configs are set through the broker itself, wherever the controller is). `None`: this
/// node decides (it is the active controller, or the request came over a controller
/// listener). Else every resource's outcome: the refusals made here, and for the rest the
/// controller's answers from `forward` (given their indexes; `None` when there is no
/// active controller to reach: NOT_CONTROLLER).
pub(super) async fn forward_to_controller_if_needed<F, Fut>(
    state: &BrokerState,
    ctx: &RequestContext,
    changes: &[ResourceChange],
    forward: F,
) -> Option<Vec<Result<(), ConfigRefusal>>>
where
    F: FnOnce(Vec<usize>) -> Fut,
    Fut: std::future::Future<Output = Option<Vec<Result<(), ConfigRefusal>>>>,
{
    if ctx.controller_listener || state.controller.quorum().is_leader() {
        return None;
    }
    let image = state.image();
    // Kafka's controller authorizes each resource after the broker's checks; here, where
    // the client's principal is known.
    // (A resource named twice is refused for that by the controller, unauthorized or not.)
    let mut seen: HashMap<(i8, &str), usize> = HashMap::new();
    for change in changes {
        *seen
            .entry((change.resource_type, &change.name))
            .or_default() += 1;
    }
    let mut outcomes: Vec<Option<Result<(), ConfigRefusal>>> = changes
        .iter()
        .map(|change| {
            preprocess(state, ctx, &image, change, true)
                .and_then(|_| {
                    if seen[&(change.resource_type, change.name.as_str())] > 1 {
                        return Ok(());
                    }
                    authorize_alter(state, ctx, change)
                })
                .err()
                .map(Err)
        })
        .collect();
    let passed: Vec<usize> = (0..changes.len())
        .filter(|i| outcomes[*i].is_none())
        .collect();
    if !passed.is_empty() {
        let answers = forward(passed.clone())
            .await
            .filter(|answers| answers.len() == passed.len());
        match answers {
            Some(answers) => {
                for (i, answer) in passed.into_iter().zip(answers) {
                    outcomes[i] = Some(answer);
                }
            }
            None => {
                for i in passed {
                    outcomes[i] = Some(Err((
                        ResponseError::NotController,
                        "no active controller could be reached".to_string(),
                    )));
                }
            }
        }
    }
    Some(outcomes.into_iter().map(|o| o.unwrap_or(Ok(()))).collect())
}

/// The error code and message of one resource's outcome.
pub(super) fn response_error(outcome: Result<(), ConfigRefusal>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        // An empty message is Kafka's null (e.g. an unauthorized BROKER_LOGGER change).
        Err((code, message)) if message.is_empty() => (code.code(), None),
        Err((code, message)) => (code.code(), Some(str_bytes(message))),
    }
}

/// IncrementalAlterConfigs operation ids.
pub(super) const OP_SET: i8 = 0;
pub(super) const OP_DELETE: i8 = 1;
pub(super) const OP_APPEND: i8 = 2;
pub(super) const OP_SUBTRACT: i8 = 3;

pub(super) enum Ops {
    /// Legacy AlterConfigs: the complete new set of (key, value).
    Replace(Vec<(String, Option<String>)>),
    /// IncrementalAlterConfigs: (key, operation, value).
    Incremental(Vec<(String, i8, Option<String>)>),
}

pub(super) struct ResourceChange {
    pub resource_type: i8,
    pub name: String,
    pub ops: Ops,
}

impl ResourceChange {
    fn keys(&self) -> Vec<&str> {
        match &self.ops {
            Ops::Replace(configs) => configs.iter().map(|(k, _)| k.as_str()).collect(),
            Ops::Incremental(configs) => configs.iter().map(|(k, _, _)| k.as_str()).collect(),
        }
    }

    fn null_values(&self) -> Vec<&str> {
        match &self.ops {
            Ops::Replace(configs) => configs
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(k, _)| k.as_str())
                .collect(),
            Ops::Incremental(configs) => configs
                .iter()
                .filter(|(_, op, v)| *op != OP_DELETE && v.is_none())
                .map(|(k, _, _)| k.as_str())
                .collect(),
        }
    }
}

/// A resource that passed the broker-side checks.
struct Accepted<'a> {
    index: usize,
    resource: ConfigResource,
    change: &'a ResourceChange,
}

/// Applies config changes as Kafka does; one outcome per resource, in request order. A
/// request that came over a controller listener (forwarded by the broker it names) may
/// name any broker.
pub(super) async fn alter(
    state: &BrokerState,
    ctx: &RequestContext,
    changes: &[ResourceChange],
    validate_only: bool,
) -> Vec<Result<(), ConfigRefusal>> {
    let mut outcomes: Vec<Option<Result<(), ConfigRefusal>>> = vec![None; changes.len()];
    let mut seen: HashMap<(i8, &str), usize> = HashMap::new();
    for change in changes {
        *seen
            .entry((change.resource_type, &change.name))
            .or_default() += 1;
    }
    let image = state.image();
    let mut accepted = Vec::new();
    for (index, change) in changes.iter().enumerate() {
        if seen[&(change.resource_type, change.name.as_str())] > 1 {
            outcomes[index] = Some(Err(invalid("Each resource must appear at most once.")));
            continue;
        }
        let checked =
            preprocess(state, ctx, &image, change, !ctx.controller_listener).and_then(|resource| {
                if authz::must_check(state, ctx) {
                    authorize_alter(state, ctx, change)?;
                }
                Ok(resource)
            });
        match checked {
            Ok(resource) => accepted.push(Accepted {
                index,
                resource,
                change,
            }),
            Err(refusal) => outcomes[index] = Some(Err(refusal)),
        }
    }
    if !accepted.is_empty() {
        let written = state
            .controller
            .write(|image| {
                let mut records = Vec::new();
                let mut results = Vec::new();
                for a in &accepted {
                    match plan(state, image, &a.resource, a.change) {
                        Ok(new_records) => {
                            if !validate_only {
                                records.extend(new_records);
                            }
                            results.push((a.index, Ok(())));
                        }
                        Err(refusal) => results.push((a.index, Err(refusal))),
                    }
                }
                Ok::<_, BrokerError>((records, results))
            })
            .await;
        match written {
            Ok(results) => {
                for (index, result) in results {
                    outcomes[index] = Some(result);
                }
            }
            Err(e) => {
                tracing::error!("cannot alter configs: {e}");
                for a in &accepted {
                    outcomes[a.index] = Some(Err((e.response_error(), e.to_string())));
                }
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err((ResponseError::UnknownServerError, String::new()))))
        .collect()
}

fn invalid(message: &str) -> ConfigRefusal {
    (ResponseError::InvalidRequest, message.to_string())
}

/// Kafka's `authorizeAlterResource`: ALTER_CONFIGS on the resource (the cluster for broker
/// resources), else the matching authorization error with its default message. Types
/// Kafka does not authorize are refused for what they are.
fn authorize_alter(
    state: &BrokerState,
    ctx: &RequestContext,
    change: &ResourceChange,
) -> Result<(), ConfigRefusal> {
    let (resource, name, error) = match change.resource_type {
        RESOURCE_BROKER | RESOURCE_CLIENT_METRICS => (
            ResourceType::Cluster,
            CLUSTER_NAME,
            ResponseError::ClusterAuthorizationFailed,
        ),
        RESOURCE_TOPIC => (
            ResourceType::Topic,
            change.name.as_str(),
            ResponseError::TopicAuthorizationFailed,
        ),
        RESOURCE_GROUP => (
            ResourceType::Group,
            change.name.as_str(),
            ResponseError::GroupAuthorizationFailed,
        ),
        _ => return Ok(()),
    };
    if authorizer::allowed(state, ctx, AclOperation::AlterConfigs, resource, name) {
        Ok(())
    } else {
        Err((error, authz::default_message(error)))
    }
}

/// Kafka's broker-side checks (`ConfigAdminManager.preprocess`); `check_broker_id`: a
/// broker resource must name this broker (or "", every broker).
fn preprocess(
    state: &BrokerState,
    ctx: &RequestContext,
    image: &MetadataImage,
    change: &ResourceChange,
    check_broker_id: bool,
) -> Result<ConfigResource, ConfigRefusal> {
    let mut keys = change.keys();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid("Error due to duplicate config keys"));
    }
    let nulls = change.null_values();
    if !nulls.is_empty() {
        return Err(invalid(&format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    if let Ops::Incremental(configs) = &change.ops {
        if let Some((_, op, _)) = configs
            .iter()
            .find(|(_, op, _)| ![OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT].contains(op))
        {
            return Err(invalid(&format!("Unknown operations type {op}")));
        }
    }
    let incremental = matches!(change.ops, Ops::Incremental(_));
    match change.resource_type {
        RESOURCE_TOPIC => Ok(ConfigResource {
            resource_type: ConfigResourceType::Topic,
            name: change.name.clone(),
        }),
        RESOURCE_BROKER => {
            if !change.name.is_empty() {
                let id: i32 = change.name.parse().map_err(|_| {
                    invalid(&format!(
                        "Node id must be an integer, but it is: {}",
                        change.name
                    ))
                })?;
                if check_broker_id && id != state.node_id {
                    return Err(invalid(&format!(
                        "Unexpected broker id, expected {}, but received {}",
                        state.node_id, change.name
                    )));
                }
            }
            let resource = ConfigResource {
                resource_type: ConfigResourceType::Broker,
                name: change.name.clone(),
            };
            // The legacy API checks the request's configs, the incremental one the result.
            let to_check: BTreeMap<String, String> = if incremental {
                let current = image.configs(&resource);
                let mut next = current.cloned().unwrap_or_default();
                for (key, value) in new_values(&resource, current, change)? {
                    match value {
                        Some(value) => next.insert(key, value),
                        None => next.remove(&key),
                    };
                }
                next
            } else {
                match &change.ops {
                    Ops::Replace(configs) => configs
                        .iter()
                        .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
                        .collect(),
                    Ops::Incremental(_) => BTreeMap::new(),
                }
            };
            crate::dynamic_tls::validate(state, &state.tls_listeners, &change.name, &to_check)?;
            topic_configs::validate_broker_configs(&to_check)?;
            Ok(resource)
        }
        // Kafka authorizes a log level change here, before anything else about it
        // (CLUSTER_AUTHORIZATION_FAILED without a message).
        RESOURCE_BROKER_LOGGER
            if incremental
                && authz::must_check(state, ctx)
                && !authorizer::allowed(
                    state,
                    ctx,
                    AclOperation::AlterConfigs,
                    ResourceType::Cluster,
                    CLUSTER_NAME,
                ) =>
        {
            Err((ResponseError::ClusterAuthorizationFailed, String::new()))
        }
        RESOURCE_BROKER_LOGGER if incremental => Err(invalid(
            "Changing BROKER_LOGGER configs is not supported: set log levels with RUST_LOG",
        )),
        RESOURCE_CLIENT_METRICS | RESOURCE_GROUP => Err(invalid(&format!(
            "Resource type {} is not supported by this broker",
            change.resource_type
        ))),
        other => Err(invalid(&format!("Unknown resource type {other}"))),
    }
}

/// The (key, new value) pairs a change writes (None removes the key), given the
/// resource's current dynamic configs. Legacy AlterConfigs also removes every current key
/// the request leaves out.
fn new_values(
    resource: &ConfigResource,
    current: Option<&BTreeMap<String, String>>,
    change: &ResourceChange,
) -> Result<Vec<(String, Option<String>)>, ConfigRefusal> {
    let empty = BTreeMap::new();
    let current = current.unwrap_or(&empty);
    let mut values = Vec::new();
    match &change.ops {
        Ops::Replace(configs) => {
            for (key, value) in configs {
                values.push((key.clone(), value.clone()));
            }
            for key in current.keys() {
                if !configs.iter().any(|(k, _)| k == key) {
                    values.push((key.clone(), None));
                }
            }
        }
        Ops::Incremental(configs) => {
            for (key, op, value) in configs {
                let new_value = match *op {
                    OP_SET => value.clone(),
                    OP_DELETE => None,
                    _ => Some(apply_list_op(resource, current.get(key), key, *op, value)?),
                };
                values.push((key.clone(), new_value));
            }
        }
    }
    Ok(values)
}

/// APPEND adds the items not yet in the list, SUBTRACT removes the given items; an unset
/// key starts from its default.
fn apply_list_op(
    resource: &ConfigResource,
    current: Option<&String>,
    key: &str,
    op: i8,
    value: &Option<String>,
) -> Result<String, ConfigRefusal> {
    let op_name = if op == OP_APPEND {
        "APPEND"
    } else {
        "SUBTRACT"
    };
    if !topic_configs::is_list_config(resource.resource_type, key) {
        let message = match resource.resource_type {
            ConfigResourceType::Topic => {
                format!("Can't {op_name} to key {key} because its type is not LIST.")
            }
            ConfigResourceType::Broker if !topic_configs::is_known_broker_key(key) => {
                format!("Unknown config name: {key}")
            }
            ConfigResourceType::Broker => format!(
                "Config value {} is not allowed for config key: {key}",
                op_name.to_lowercase()
            ),
        };
        return Err((ResponseError::InvalidConfig, message));
    }
    let base = current
        .cloned()
        .or_else(|| topic_configs::default_value(resource.resource_type, key))
        .unwrap_or_default();
    let mut items: Vec<String> = base
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for item in value.as_deref().unwrap_or_default().split(',') {
        if op == OP_APPEND {
            if !items.iter().any(|i| i == item) {
                items.push(item.to_string());
            }
        } else if let Some(at) = items.iter().position(|i| i == item) {
            items.remove(at);
        }
    }
    Ok(items.join(","))
}

/// The controller's checks against the current image, then the records to write.
fn plan(
    state: &BrokerState,
    image: &MetadataImage,
    resource: &ConfigResource,
    change: &ResourceChange,
) -> Result<Vec<MetadataRecord>, ConfigRefusal> {
    let current = image.configs(resource);
    let values = new_values(resource, current, change)?;
    let mut next = current.cloned().unwrap_or_default();
    let mut records = Vec::new();
    for (key, value) in values {
        // Kafka rewrites broker configs even when unchanged, so brokers reload them.
        let changed = next.get(&key) != value.as_ref();
        if changed || resource.resource_type == ConfigResourceType::Broker {
            records.push(MetadataRecord::Config {
                resource_type: resource.resource_type,
                resource_name: resource.name.clone(),
                name: key.clone(),
                value: value.clone(),
            });
        }
        match value {
            Some(value) => next.insert(key, value),
            None => next.remove(&key),
        };
    }
    match resource.resource_type {
        ConfigResourceType::Topic => {
            if resource.name.is_empty() {
                return Err(invalid("Default topic resources are not allowed."));
            }
            validate_topic_name(&resource.name)?;
            topic_configs::validate_topic_overrides(
                &state.replica_manager.effective_log_defaults(),
                &next,
            )?;
            if image.topic_by_name(&resource.name).is_none() {
                return Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("The topic '{}' does not exist.", resource.name),
                ));
            }
        }
        ConfigResourceType::Broker => {
            if let Ok(id) = resource.name.parse::<i32>() {
                if !image.brokers.contains_key(&id) {
                    return Err((
                        ResponseError::BrokerIdNotRegistered,
                        format!("No node with id {id} found."),
                    ));
                }
            }
        }
    }
    Ok(records)
}
