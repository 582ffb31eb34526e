//! DescribeConfigs: a topic's configs (overrides, then broker-level synonyms), this broker's
//! configs (by its id) or the dynamic cluster defaults (by ""), with sources, synonyms,
//! types and documentation as Kafka reports them. See [`crate::topic_configs`].
//! Authorization (Kafka's `ConfigHelper`): DESCRIBE_CONFIGS on the topic, the group, or the
//! cluster for broker, broker-logger and client-metrics resources; the refused resources
//! come last with TOPIC_ / GROUP_ / CLUSTER_AUTHORIZATION_FAILED and Kafka's message.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::{Message, StrBytes, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{ConfigResource, ConfigResourceType, MetadataImage};
use moldau_security::acl::{AclOperation, ResourceType};

use super::create_topics::validate_topic_name;
use super::{authz, str_bytes};
use crate::api::RequestContext;
use crate::authorizer::{self, CLUSTER_NAME};
use crate::state::BrokerState;
use crate::topic_configs::{
    self, BrokerConfigs, ConfigEntry, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER,
    RESOURCE_CLIENT_METRICS, RESOURCE_GROUP, RESOURCE_TOPIC,
};

pub const VERSIONS: VersionRange = DescribeConfigsRequest::VERSIONS;

type Refusal = (ResponseError, Option<String>);

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let image = state.image();
    let include_documentation = request.include_documentation && ctx.api_version >= 3;
    // Kafka's `ConfigHelper`: DESCRIBE_CONFIGS on the resource (the cluster for broker
    // resources); the refused resources come after the others, without configs.
    let (authorized, refused): (Vec<_>, Vec<_>) = request
        .resources
        .iter()
        .map(|resource| {
            (
                resource,
                authorize(state, ctx, resource.resource_type, &resource.resource_name),
            )
        })
        .partition(|(_, refusal)| refusal.is_none());
    let refused = refused.into_iter().filter_map(|(resource, refusal)| {
        let error = refusal?;
        Some(
            DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(authz::default_message(error)))),
        )
    });
    let results = authorized
        .into_iter()
        .map(|(resource, _)| resource)
        .map(|resource| {
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let name = resource.resource_name.as_str();
            match describe(state, &image, resource.resource_type, name) {
                Ok(entries) => {
                    let wanted = resource
                        .configuration_keys
                        .as_ref()
                        .filter(|k| !k.is_empty());
                    result.configs = entries
                        .into_iter()
                        .filter(|e| {
                            wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name))
                        })
                        .map(|e| config_result(e, request.include_synonyms, include_documentation))
                        .collect();
                }
                Err((code, message)) => {
                    result.error_code = code.code();
                    result.error_message = message.map(str_bytes);
                }
            }
            result
        })
        .chain(refused)
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// The error of a resource the principal may not describe (`None`: it may, or the type is
/// not one Kafka authorizes, which is refused for that).
fn authorize(
    state: &BrokerState,
    ctx: &RequestContext,
    resource_type: i8,
    name: &str,
) -> Option<ResponseError> {
    let (resource, name, error) = match resource_type {
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER | RESOURCE_CLIENT_METRICS => (
            ResourceType::Cluster,
            CLUSTER_NAME,
            ResponseError::ClusterAuthorizationFailed,
        ),
        RESOURCE_TOPIC => (
            ResourceType::Topic,
            name,
            ResponseError::TopicAuthorizationFailed,
        ),
        RESOURCE_GROUP => (
            ResourceType::Group,
            name,
            ResponseError::GroupAuthorizationFailed,
        ),
        _ => return None,
    };
    (!authorizer::allowed(state, ctx, AclOperation::DescribeConfigs, resource, name))
        .then_some(error)
}

fn describe(
    state: &BrokerState,
    image: &MetadataImage,
    resource_type: i8,
    name: &str,
) -> Result<Vec<ConfigEntry>, Refusal> {
    match resource_type {
        RESOURCE_TOPIC => {
            validate_topic_name(name).map_err(|(code, message)| (code, Some(message)))?;
            if image.topic_by_name(name).is_none() {
                // Kafka answers an unknown topic with the code alone.
                return Err((ResponseError::UnknownTopicOrPartition, None));
            }
            let resource = ConfigResource {
                resource_type: ConfigResourceType::Topic,
                name: name.to_string(),
            };
            let empty = BTreeMap::new();
            let overrides = image.configs(&resource).unwrap_or(&empty);
            Ok(topic_configs::describe_topic(state, image, overrides))
        }
        RESOURCE_BROKER => {
            let layers = BrokerConfigs::new(state, image);
            if name.is_empty() {
                return Ok(layers.describe_broker(false));
            }
            if broker_id(name)? != state.node_id {
                return Err(invalid(format!(
                    "Unexpected broker id, expected {} or empty string, but received {name}",
                    state.node_id
                )));
            }
            Ok(layers.describe_broker(true))
        }
        RESOURCE_BROKER_LOGGER => {
            if name.is_empty() {
                return Err(invalid("Broker id must not be empty".into()));
            }
            if broker_id(name)? != state.node_id {
                return Err(invalid(format!(
                    "Unexpected broker id, expected {} but received {name}",
                    state.node_id
                )));
            }
            // Log levels are set through RUST_LOG, not at runtime: no loggers to list.
            Ok(Vec::new())
        }
        other => Err(invalid(format!("Unsupported resource type: {other}"))),
    }
}

fn broker_id(name: &str) -> Result<i32, Refusal> {
    name.parse()
        .map_err(|_| invalid(format!("Broker id must be an integer, but it is: {name}")))
}

fn invalid(message: String) -> Refusal {
    (ResponseError::InvalidRequest, Some(message))
}

fn config_result(
    entry: ConfigEntry,
    include_synonyms: bool,
    include_documentation: bool,
) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        entry
            .synonyms
            .into_iter()
            .map(|s| {
                let hidden = crate::config::is_sensitive_key(&s.name);
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(s.name))
                    .with_value(s.value.filter(|_| !hidden).map(str_bytes))
                    .with_source(s.source as i8)
            })
            .collect()
    } else {
        Vec::new()
    };
    // Secrets (passwords, inline keys, JAAS configs) are never sent: null and sensitive.
    let sensitive = crate::config::is_sensitive_key(&entry.name);
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(entry.name))
        .with_value(entry.value.filter(|_| !sensitive).map(str_bytes))
        .with_read_only(entry.read_only)
        .with_config_source(entry.source as i8)
        .with_is_sensitive(sensitive)
        .with_synonyms(synonyms)
        .with_config_type(entry.config_type)
        .with_documentation(
            entry
                .documentation
                .filter(|_| include_documentation)
                .map(StrBytes::from_static_str),
        )
}
