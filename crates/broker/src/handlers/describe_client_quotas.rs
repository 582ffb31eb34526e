//! DescribeClientQuotas: the client quotas of the entities a filter matches, from this
//! node's metadata image, as Kafka 4.1's brokers answer it (`ClientQuotasImage.describe`).
//!
//! DESCRIBE_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED. The filter is a list
//! of components, each an entity type (`user`, `client-id`, `ip`) with a match type: 0
//! exact (the name given), 1 default (the default entity), 2 any (the type is present).
//! An entity matches when it has every component; with `strict`, when it has nothing else
//! either. No component and not strict: every entity. Kafka's refusals, with its messages:
//! an empty type, a type named twice, a match string with match types 1 and 2 or none with
//! 0, an unknown match type, and `ip` together with `user` or `client-id` are
//! INVALID_REQUEST; an unknown type is UNSUPPORTED_VERSION. Entities come sorted, their
//! components by type and their quotas by key.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{ClientQuotaEntity, MetadataImage};
use moldau_security::acl::AclOperation;

use super::str_bytes;
use crate::api::RequestContext;
use crate::authorizer;
use crate::quota_manager::{CLIENT_ID, IP, USER};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeClientQuotasRequest::VERSIONS;

/// Kafka's match types (`DescribeClientQuotasRequest.MATCH_TYPE_*`).
const MATCH_TYPE_EXACT: i8 = 0;
const MATCH_TYPE_DEFAULT: i8 = 1;
const MATCH_TYPE_SPECIFIED: i8 = 2;

/// A refusal: the error and Kafka's message.
type Refusal = (ResponseError, String);

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    if !authorizer::allowed_cluster(state, ctx, AclOperation::DescribeConfigs) {
        // Kafka sends no message for a generic error.
        return error_response(ResponseError::ClusterAuthorizationFailed, None);
    }
    match describe(&state.image(), &request) {
        Ok(entries) => DescribeClientQuotasResponse::default()
            .with_error_message(None)
            .with_entries(Some(entries)),
        Err((error, message)) => error_response(error, Some(message)),
    }
}

/// Kafka's `getErrorResponse`: the error, no entries.
fn error_response(error: ResponseError, message: Option<String>) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_error_code(error.code())
        .with_error_message(message.map(str_bytes))
        .with_entries(None)
}

/// What a filter asks for: exact names (`None` the default entity) and types that must be
/// present.
struct Filter {
    exact: BTreeMap<String, Option<String>>,
    specified: BTreeSet<String>,
    strict: bool,
}

impl Filter {
    fn parse(request: &DescribeClientQuotasRequest) -> Result<Filter, Refusal> {
        let invalid = |message: String| (ResponseError::InvalidRequest, message);
        let mut filter = Filter {
            exact: BTreeMap::new(),
            specified: BTreeSet::new(),
            strict: request.strict,
        };
        for component in &request.components {
            let entity_type = component.entity_type.as_str();
            if entity_type.is_empty() {
                return Err(invalid("Invalid empty entity type.".into()));
            }
            if filter.exact.contains_key(entity_type) || filter.specified.contains(entity_type) {
                return Err(invalid(format!(
                    "Entity type {entity_type} cannot appear more than once in the filter."
                )));
            }
            if ![IP, USER, CLIENT_ID].contains(&entity_type) {
                return Err((
                    ResponseError::UnsupportedVersion,
                    format!("Unsupported entity type {entity_type}"),
                ));
            }
            let name = component._match.as_ref().map(|m| m.to_string());
            match component.match_type {
                MATCH_TYPE_EXACT => {
                    let Some(name) = name else {
                        return Err(invalid(
                            "Request specified MATCH_TYPE_EXACT, but set match string to null."
                                .into(),
                        ));
                    };
                    filter.exact.insert(entity_type.to_string(), Some(name));
                }
                MATCH_TYPE_DEFAULT => {
                    if name.is_some() {
                        return Err(invalid(
                            "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                                .into(),
                        ));
                    }
                    filter.exact.insert(entity_type.to_string(), None);
                }
                MATCH_TYPE_SPECIFIED => {
                    if name.is_some() {
                        return Err(invalid(
                            "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                                .into(),
                        ));
                    }
                    filter.specified.insert(entity_type.to_string());
                }
                other => return Err(invalid(format!("Unknown match type {other}"))),
            }
        }
        let has = |t: &str| filter.exact.contains_key(t) || filter.specified.contains(t);
        if has(IP) && (has(USER) || has(CLIENT_ID)) {
            return Err(invalid(
                "Invalid entity filter component combination. IP filter component should not \
                 be used with user or clientId filter component."
                    .into(),
            ));
        }
        Ok(filter)
    }

    /// Kafka's `ClientQuotasImage.matches`.
    fn matches(&self, entity: &ClientQuotaEntity) -> bool {
        if self.strict && entity.len() != self.exact.len() + self.specified.len() {
            return false;
        }
        self.exact
            .iter()
            .all(|(entity_type, name)| entity.get(entity_type) == Some(name))
            && self.specified.iter().all(|t| entity.contains_key(t))
    }
}

/// The entries of every entity the request's filter matches.
fn describe(
    image: &MetadataImage,
    request: &DescribeClientQuotasRequest,
) -> Result<Vec<EntryData>, Refusal> {
    let filter = Filter::parse(request)?;
    Ok(image
        .client_quotas()
        .iter()
        .filter(|(entity, _)| filter.matches(entity))
        .map(|(entity, quotas)| {
            EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|(entity_type, name)| {
                            EntityData::default()
                                .with_entity_type(str_bytes(entity_type.clone()))
                                .with_entity_name(name.clone().map(str_bytes))
                        })
                        .collect(),
                )
                .with_values(
                    quotas
                        .iter()
                        .map(|(key, value)| {
                            ValueData::default()
                                .with_key(str_bytes(key.clone()))
                                .with_value(*value)
                        })
                        .collect(),
                )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
    use moldau_metadata::{MetadataDelta, MetadataRecord, QuotaEntityComponent};

    use super::*;

    fn image() -> MetadataImage {
        let entities: &[&[(&str, Option<&str>)]] = &[
            &[("user", Some("alice"))],
            &[("user", Some("alice")), ("client-id", Some("app"))],
            &[("user", None)],
            &[("user", None), ("client-id", None)],
            &[("client-id", Some("app"))],
            &[("client-id", None)],
            &[("ip", Some("10.0.0.1"))],
            &[("ip", None)],
        ];
        let mut delta = MetadataDelta::new(&MetadataImage::empty());
        for (i, entity) in entities.iter().enumerate() {
            let record = MetadataRecord::ClientQuota {
                entity: entity
                    .iter()
                    .map(|(t, n)| QuotaEntityComponent {
                        entity_type: t.to_string(),
                        entity_name: n.map(str::to_string),
                    })
                    .collect(),
                key: "producer_byte_rate".into(),
                value: 1000.0 + i as f64,
                remove: false,
            };
            delta.replay(i as i64, &record).unwrap();
        }
        delta.apply()
    }

    fn component(entity_type: &str, match_type: i8, name: Option<&str>) -> ComponentData {
        ComponentData::default()
            .with_entity_type(str_bytes(entity_type))
            .with_match_type(match_type)
            .with_match(name.map(str_bytes))
    }

    /// Each matching entity as `type=name/...` (`<default>` for the default).
    fn run(components: Vec<ComponentData>, strict: bool) -> Result<Vec<String>, Refusal> {
        let request = DescribeClientQuotasRequest::default()
            .with_components(components)
            .with_strict(strict);
        let entries = describe(&image(), &request)?;
        Ok(entries
            .iter()
            .map(|e| {
                e.entity
                    .iter()
                    .map(|c| {
                        format!(
                            "{}={}",
                            c.entity_type.as_str(),
                            c.entity_name.as_deref().unwrap_or("<default>")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect())
    }

    #[test]
    fn filters_match_exact_default_and_any_names_strictly_or_not() {
        assert_eq!(run(vec![], false).unwrap().len(), 8);
        assert!(run(vec![], true).unwrap().is_empty());
        assert_eq!(
            run(vec![component("user", 0, Some("alice"))], false).unwrap(),
            vec!["client-id=app/user=alice", "user=alice"]
        );
        assert_eq!(
            run(vec![component("user", 0, Some("alice"))], true).unwrap(),
            vec!["user=alice"]
        );
        assert_eq!(
            run(vec![component("user", 1, None)], false).unwrap(),
            vec!["client-id=<default>/user=<default>", "user=<default>"]
        );
        assert_eq!(
            run(
                vec![component("user", 2, None), component("client-id", 2, None)],
                true
            )
            .unwrap(),
            vec![
                "client-id=<default>/user=<default>",
                "client-id=app/user=alice"
            ]
        );
        assert_eq!(
            run(vec![component("client-id", 0, Some("app"))], true).unwrap(),
            vec!["client-id=app"]
        );
        assert_eq!(
            run(vec![component("ip", 2, None)], false).unwrap(),
            vec!["ip=<default>", "ip=10.0.0.1"]
        );
        assert!(run(vec![component("user", 0, Some("bob"))], false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn bad_filters_get_kafkas_errors() {
        let invalid = |components, message: &str| {
            assert_eq!(
                run(components, false).unwrap_err(),
                (ResponseError::InvalidRequest, message.to_string())
            );
        };
        invalid(vec![component("", 2, None)], "Invalid empty entity type.");
        invalid(
            vec![component("user", 2, None), component("user", 0, Some("a"))],
            "Entity type user cannot appear more than once in the filter.",
        );
        invalid(
            vec![component("user", 0, None)],
            "Request specified MATCH_TYPE_EXACT, but set match string to null.",
        );
        invalid(
            vec![component("user", 1, Some("a"))],
            "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
        );
        invalid(
            vec![component("user", 2, Some("a"))],
            "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.",
        );
        invalid(vec![component("user", 3, None)], "Unknown match type 3");
        invalid(
            vec![component("ip", 2, None), component("client-id", 1, None)],
            "Invalid entity filter component combination. IP filter component should not be \
             used with user or clientId filter component.",
        );
        assert_eq!(
            run(vec![component("group", 2, None)], false).unwrap_err(),
            (
                ResponseError::UnsupportedVersion,
                "Unsupported entity type group".to_string()
            )
        );
    }
}
