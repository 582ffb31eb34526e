//! AlterClientQuotas: set and remove client quotas, on the active controller (other nodes
//! forward it), as Kafka 4.1's `ClientQuotaControlManager.alterClientQuotas`.
//!
//! ALTER_CONFIGS on the cluster, else CLUSTER_AUTHORIZATION_FAILED for every entry. Each
//! entry names an entity (components of type `user`, `client-id` or `ip`, a null name
//! being the type's default entity; a type given twice keeps its last name, as Kafka's
//! map does) and operations (set a key to a value, or remove it). Per entity, with Kafka's
//! INVALID_REQUEST messages: no component, an unknown type, an empty name, `ip` with
//! `user` or `client-id`, an `ip` name that is no IP address nor a resolvable host; per
//! key set: a key the entity type does not have (`producer_byte_rate`,
//! `consumer_byte_rate`, `request_percentage`, `controller_mutation_rate` for users and
//! client ids, `connection_creation_rate` for IPs), a value of 0 or less, a fraction or
//! too large a number for an integral key. A key given twice, or an entity given twice,
//! fails the (later) entry with "Ignoring duplicate entity ..." (Kafka's bookkeeping: the
//! message it leaves). Removing a key the entity lacks is a success that writes nothing,
//! as is setting a key to its value. Moldau also refuses NaN and infinite values (JSON
//! records cannot hold them; Kafka would store some). The records of the entries that
//! passed are committed together, unless `validate_only`. Results come in request order,
//! one per entity.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use kafka_protocol::messages::alter_client_quotas_request::EntryData;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData as ResultData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{ClientQuotaEntity, MetadataImage, MetadataRecord, QuotaEntityComponent};
use moldau_security::acl::AclOperation;

use super::{authz, str_bytes};
use crate::api::RequestContext;
use crate::error::BrokerError;
use crate::quota_manager::{
    CLIENT_ID, CONSUMER_BYTE_RATE, CONTROLLER_MUTATION_RATE, IP, IP_CONNECTION_RATE,
    PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE, USER,
};
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = AlterClientQuotasRequest::VERSIONS;

/// How long an `ip` entity's host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A refusal: the error and Kafka's message.
type Refusal = (ResponseError, String);

/// The type of a quota key's values (Kafka's `QuotaConfig` definitions).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ValueType {
    Long,
    Int,
    Double,
}

/// The keys an entity of users and client ids may set.
const USER_AND_CLIENT_KEYS: &[(&str, ValueType)] = &[
    (PRODUCER_BYTE_RATE, ValueType::Long),
    (CONSUMER_BYTE_RATE, ValueType::Long),
    (REQUEST_PERCENTAGE, ValueType::Double),
    (CONTROLLER_MUTATION_RATE, ValueType::Double),
];

/// The keys an IP entity may set.
const IP_KEYS: &[(&str, ValueType)] = &[(IP_CONNECTION_RATE, ValueType::Int)];

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    // Kafka's controller authorizes ALTER_CONFIGS on the cluster
    // (`ControllerApis.handleAlterClientQuotas`); here, where the client's principal is
    // known, before forwarding.
    if authz::authorize_cluster(state, ctx, AclOperation::AlterConfigs).is_err() {
        return error_response(&request, ResponseError::ClusterAuthorizationFailed);
    }
    if request.entries.is_empty() {
        return AlterClientQuotasResponse::default();
    }
    if let Some(response) = super::forward_unless_controller(state, ctx, &request).await {
        return response;
    }
    let resolvable = resolvable_hosts(&request).await;
    let outcome = state
        .controller
        .write(|image| {
            let (records, results) = decide(image, &request, &resolvable);
            let records = if request.validate_only {
                Vec::new()
            } else {
                records
            };
            Ok::<_, BrokerError>((records, results))
        })
        .await;
    match outcome {
        Ok(results) => AlterClientQuotasResponse::default().with_entries(results),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::error!("cannot alter client quotas: {e}");
            }
            error_response(&request, e.response_error())
        }
    }
}

/// Kafka's `getErrorResponse`: every entry, as given, with the error and its generic
/// message.
fn error_response(
    request: &AlterClientQuotasRequest,
    error: ResponseError,
) -> AlterClientQuotasResponse {
    let entries = request
        .entries
        .iter()
        .map(|entry| {
            ResultData::default()
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(kafka_message(error))))
                .with_entity(
                    entry
                        .entity
                        .iter()
                        .map(|e| {
                            EntityData::default()
                                .with_entity_type(e.entity_type.clone())
                                .with_entity_name(e.entity_name.clone())
                        })
                        .collect(),
                )
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// Kafka's default message of the errors a whole request fails with (`Errors.message()`).
fn kafka_message(error: ResponseError) -> String {
    match error {
        ResponseError::ClusterAuthorizationFailed => "Cluster authorization failed.",
        ResponseError::NotController => "This is not the correct controller for this cluster.",
        ResponseError::RequestTimedOut => "The request timed out.",
        ResponseError::UnknownServerError => {
            "The server experienced an unexpected error when processing the request."
        }
        _ => return error.to_string(),
    }
    .to_string()
}

/// The `ip` names of the request that are host names (not IP addresses) and resolve
/// (Kafka's `InetAddress.getByName` check), looked up before the controller decides.
async fn resolvable_hosts(request: &AlterClientQuotasRequest) -> BTreeSet<String> {
    let hosts: BTreeSet<String> = request
        .entries
        .iter()
        .flat_map(|e| &e.entity)
        .filter(|c| c.entity_type.as_str() == IP)
        .filter_map(|c| c.entity_name.as_ref().map(|n| n.to_string()))
        .filter(|name| !name.is_empty() && name.parse::<IpAddr>().is_err())
        .collect();
    let mut resolvable = BTreeSet::new();
    for host in hosts {
        let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((&*host, 0)));
        let resolves = lookup
            .await
            .is_ok_and(|addrs| addrs.is_ok_and(|mut a| a.next().is_some()));
        if resolves {
            resolvable.insert(host);
        }
    }
    resolvable
}

/// The entity of an entry as Kafka builds it (a map: a type named twice keeps the last).
fn entity_of(entry: &EntryData) -> ClientQuotaEntity {
    entry
        .entity
        .iter()
        .map(|c| {
            (
                c.entity_type.to_string(),
                c.entity_name.as_ref().map(|n| n.to_string()),
            )
        })
        .collect()
}

/// Java's `ClientQuotaEntity.toString` (entries in type order here).
fn describe_entity(entity: &ClientQuotaEntity) -> String {
    let entries: Vec<String> = entity
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("null")))
        .collect();
    format!("ClientQuotaEntity(entries={{{}}})", entries.join(", "))
}

/// Kafka's `alterClientQuotas` against the controller's image: the records to commit and
/// one result per entity, in the order entities are first named.
fn decide(
    image: &MetadataImage,
    request: &AlterClientQuotasRequest,
    resolvable: &BTreeSet<String>,
) -> (Vec<MetadataRecord>, Vec<ResultData>) {
    let mut records = Vec::new();
    let mut results: Vec<(ClientQuotaEntity, Result<(), Refusal>)> = Vec::new();
    for entry in &request.entries {
        let entity = entity_of(entry);
        // The key's new value, `None` to remove it, in the order first given.
        let mut alterations: Vec<(String, Option<f64>)> = Vec::new();
        let mut duplicate_key = false;
        for op in &entry.ops {
            if alterations.iter().any(|(key, _)| key == op.key.as_str()) {
                duplicate_key = true;
            } else {
                alterations.push((op.key.to_string(), (!op.remove).then_some(op.value)));
            }
        }
        let seen = results.iter().position(|(e, _)| *e == entity);
        if duplicate_key || seen.is_some() {
            // Kafka records the duplicate key first, then finds the entity among the
            // results and says this instead.
            let refusal = Err((
                ResponseError::InvalidRequest,
                format!("Ignoring duplicate entity {}", describe_entity(&entity)),
            ));
            match seen {
                Some(i) => results[i].1 = refusal,
                None => results.push((entity, refusal)),
            }
            continue;
        }
        let outcome = alter_entity(image, &entity, &alterations, resolvable);
        let outcome = outcome.map(|new_records| records.extend(new_records));
        results.push((entity, outcome));
    }
    let results = results
        .into_iter()
        .map(|(entity, outcome)| {
            let (code, message) = match outcome {
                Ok(()) => (0, None),
                Err((error, message)) => (error.code(), Some(str_bytes(message))),
            };
            ResultData::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_entity(
                    entity
                        .into_iter()
                        .map(|(entity_type, name)| {
                            EntityData::default()
                                .with_entity_type(str_bytes(entity_type))
                                .with_entity_name(name.map(str_bytes))
                        })
                        .collect(),
                )
        })
        .collect();
    (records, results)
}

/// Kafka's `alterClientQuotaEntity`: the entity's checks, then each key's; the records of
/// what changes.
fn alter_entity(
    image: &MetadataImage,
    entity: &ClientQuotaEntity,
    alterations: &[(String, Option<f64>)],
    resolvable: &BTreeSet<String>,
) -> Result<Vec<MetadataRecord>, Refusal> {
    let keys = validate_entity(entity, resolvable)?;
    let components: Vec<QuotaEntityComponent> = entity
        .iter()
        .map(|(entity_type, entity_name)| QuotaEntityComponent {
            entity_type: entity_type.clone(),
            entity_name: entity_name.clone(),
        })
        .collect();
    let current = image.client_quotas_of(entity);
    let mut records = Vec::new();
    for (key, value) in alterations {
        let current_value = current.and_then(|quotas| quotas.get(key));
        match value {
            None => {
                if current_value.is_some() {
                    records.push(MetadataRecord::ClientQuota {
                        entity: components.clone(),
                        key: key.clone(),
                        value: 0.0,
                        remove: true,
                    });
                }
            }
            Some(value) => {
                validate_value(keys, key, *value)?;
                if current_value != Some(value) {
                    records.push(MetadataRecord::ClientQuota {
                        entity: components.clone(),
                        key: key.clone(),
                        value: *value,
                        remove: false,
                    });
                }
            }
        }
    }
    Ok(records)
}

/// Kafka's `validateEntity` and `configKeysForEntityType`: the keys the entity may set.
fn validate_entity(
    entity: &ClientQuotaEntity,
    resolvable: &BTreeSet<String>,
) -> Result<&'static [(&'static str, ValueType)], Refusal> {
    let invalid = |message: String| Err((ResponseError::InvalidRequest, message));
    if entity.is_empty() {
        return invalid("Invalid empty client quota entity".into());
    }
    for (entity_type, name) in entity {
        if ![USER, CLIENT_ID, IP].contains(&entity_type.as_str()) {
            return invalid(format!("Unhandled client quota entity type: {entity_type}"));
        }
        if name.as_deref() == Some("") {
            return invalid(format!("Empty {entity_type} not supported"));
        }
    }
    match entity.get(IP) {
        Some(_) if entity.contains_key(USER) || entity.contains_key(CLIENT_ID) => invalid(
            // Kafka's message, without the space it lacks.
            "Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId"
                .into(),
        ),
        Some(Some(ip)) if ip.parse::<IpAddr>().is_err() && !resolvable.contains(ip) => {
            invalid(format!("{ip} is not a valid IP or resolvable host."))
        }
        Some(_) => Ok(IP_KEYS),
        None => Ok(USER_AND_CLIENT_KEYS),
    }
}

/// Kafka's `validateQuotaKeyValue`, and a finite value.
fn validate_value(keys: &[(&str, ValueType)], key: &str, value: f64) -> Result<(), Refusal> {
    let invalid = |message: String| Err((ResponseError::InvalidRequest, message));
    let Some((_, value_type)) = keys.iter().find(|(k, _)| *k == key) else {
        return invalid(format!("Invalid configuration key {key}"));
    };
    if value <= 0.0 {
        return invalid(format!("Quota {key} must be greater than 0"));
    }
    match value_type {
        ValueType::Long if value > i64::MAX as f64 => {
            return invalid(format!("Proposed value for {key} is too large for a LONG."))
        }
        ValueType::Int if value > i32::MAX as f64 => {
            return invalid(format!("Proposed value for {key} is too large for an INT."))
        }
        ValueType::Long | ValueType::Int if (value % 1.0).abs() > 1e-6 => {
            return invalid(format!("{key} cannot be a fractional value."))
        }
        _ => {}
    }
    if !value.is_finite() {
        return invalid(format!("Proposed value for {key} is not a finite number."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::alter_client_quotas_request::{
        EntityData as RequestEntity, OpData,
    };
    use std::collections::BTreeMap;

    use moldau_metadata::MetadataDelta;

    use super::*;

    fn entry(entity: &[(&str, Option<&str>)], ops: &[(&str, Option<f64>)]) -> EntryData {
        EntryData::default()
            .with_entity(
                entity
                    .iter()
                    .map(|(t, n)| {
                        RequestEntity::default()
                            .with_entity_type(str_bytes(*t))
                            .with_entity_name(n.map(str_bytes))
                    })
                    .collect(),
            )
            .with_ops(
                ops.iter()
                    .map(|(key, value)| {
                        OpData::default()
                            .with_key(str_bytes(*key))
                            .with_value(value.unwrap_or(0.0))
                            .with_remove(value.is_none())
                    })
                    .collect(),
            )
    }

    /// Applies the request's records; each result as "entity code message".
    fn run(image: &MetadataImage, entries: Vec<EntryData>) -> (MetadataImage, Vec<String>) {
        let request = AlterClientQuotasRequest::default().with_entries(entries);
        let resolvable = BTreeSet::from(["localhost".to_string()]);
        let (records, results) = decide(image, &request, &resolvable);
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            delta.replay(image.offset + 1 + i as i64, record).unwrap();
        }
        let results = results
            .iter()
            .map(|r| {
                let entity: Vec<String> = r
                    .entity
                    .iter()
                    .map(|e| {
                        format!(
                            "{}={}",
                            e.entity_type.as_str(),
                            e.entity_name.as_deref().unwrap_or("<default>")
                        )
                    })
                    .collect();
                format!(
                    "{} {} {}",
                    entity.join("/"),
                    r.error_code,
                    r.error_message.as_deref().unwrap_or("-")
                )
            })
            .collect();
        (delta.apply(), results)
    }

    fn entity(components: &[(&str, Option<&str>)]) -> ClientQuotaEntity {
        components
            .iter()
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect()
    }

    #[test]
    fn quotas_are_set_changed_and_removed() {
        let alice = [("user", Some("alice"))];
        let (image, results) = run(
            &MetadataImage::empty(),
            vec![
                entry(
                    &alice,
                    &[
                        ("producer_byte_rate", Some(1024.0)),
                        ("request_percentage", Some(12.5)),
                    ],
                ),
                entry(
                    &[("client-id", None)],
                    &[("consumer_byte_rate", Some(2048.0))],
                ),
                entry(
                    &[("ip", Some("10.0.0.1"))],
                    &[("connection_creation_rate", Some(5.0))],
                ),
                entry(
                    &[("ip", Some("localhost"))],
                    &[("connection_creation_rate", Some(7.0))],
                ),
            ],
        );
        assert_eq!(
            results,
            vec![
                "user=alice 0 -",
                "client-id=<default> 0 -",
                "ip=10.0.0.1 0 -",
                "ip=localhost 0 -",
            ]
        );
        let quotas = image.client_quotas_of(&entity(&alice)).unwrap();
        assert_eq!(quotas.get("producer_byte_rate"), Some(&1024.0));
        assert_eq!(quotas.get("request_percentage"), Some(&12.5));
        assert_eq!(image.client_quotas().len(), 4);

        // Setting the same value and removing a missing key write nothing.
        let request = AlterClientQuotasRequest::default().with_entries(vec![entry(
            &alice,
            &[
                ("producer_byte_rate", Some(1024.0)),
                ("consumer_byte_rate", None),
            ],
        )]);
        let (records, _) = decide(&image, &request, &BTreeSet::new());
        assert!(records.is_empty());

        let (image, results) = run(
            &image,
            vec![entry(
                &alice,
                &[
                    ("producer_byte_rate", None),
                    ("request_percentage", Some(50.0)),
                ],
            )],
        );
        assert_eq!(results, vec!["user=alice 0 -"]);
        assert_eq!(
            image.client_quotas_of(&entity(&alice)),
            Some(&BTreeMap::from([("request_percentage".to_string(), 50.0)]))
        );
    }

    #[test]
    fn refusals_carry_kafkas_messages_and_leave_the_entity_untouched() {
        let (image, results) = run(
            &MetadataImage::empty(),
            vec![
                entry(&[], &[("producer_byte_rate", Some(1.0))]),
                entry(
                    &[("group", Some("g"))],
                    &[("producer_byte_rate", Some(1.0))],
                ),
                entry(&[("user", Some(""))], &[("producer_byte_rate", Some(1.0))]),
                entry(
                    &[("ip", Some("10.0.0.1")), ("user", Some("a"))],
                    &[("connection_creation_rate", Some(1.0))],
                ),
                entry(
                    &[("ip", Some("no such host!"))],
                    &[("connection_creation_rate", Some(1.0))],
                ),
                entry(
                    &[("user", Some("b"))],
                    &[("connection_creation_rate", Some(1.0))],
                ),
                entry(&[("ip", None)], &[("producer_byte_rate", Some(1.0))]),
                entry(&[("user", Some("c"))], &[("producer_byte_rate", Some(0.0))]),
                entry(&[("user", Some("d"))], &[("producer_byte_rate", Some(1.5))]),
                entry(
                    &[("user", Some("e"))],
                    &[("consumer_byte_rate", Some(1e19))],
                ),
                entry(
                    &[("ip", Some("::1"))],
                    &[("connection_creation_rate", Some(3e9))],
                ),
                entry(
                    &[("user", Some("f"))],
                    &[("request_percentage", Some(f64::NAN))],
                ),
                // A failing key fails the entity: its good key is not set either.
                entry(
                    &[("user", Some("g"))],
                    &[
                        ("request_percentage", Some(5.0)),
                        ("producer_byte_rate", Some(-1.0)),
                    ],
                ),
            ],
        );
        assert_eq!(
            results,
            vec![
                " 42 Invalid empty client quota entity",
                "group=g 42 Unhandled client quota entity type: group",
                "user= 42 Empty user not supported",
                "ip=10.0.0.1/user=a 42 Invalid quota entity combination, IP entity shouldnot be combined with User or ClientId",
                "ip=no such host! 42 no such host! is not a valid IP or resolvable host.",
                "user=b 42 Invalid configuration key connection_creation_rate",
                "ip=<default> 42 Invalid configuration key producer_byte_rate",
                "user=c 42 Quota producer_byte_rate must be greater than 0",
                "user=d 42 producer_byte_rate cannot be a fractional value.",
                "user=e 42 Proposed value for consumer_byte_rate is too large for a LONG.",
                "ip=::1 42 Proposed value for connection_creation_rate is too large for an INT.",
                "user=f 42 Proposed value for request_percentage is not a finite number.",
                "user=g 42 Quota producer_byte_rate must be greater than 0",
            ]
        );
        assert!(image.client_quotas().is_empty());
    }

    #[test]
    fn duplicates_follow_kafkas_bookkeeping() {
        let (image, results) = run(
            &MetadataImage::empty(),
            vec![
                // A key given twice.
                entry(
                    &[("user", Some("a"))],
                    &[
                        ("producer_byte_rate", Some(1.0)),
                        ("producer_byte_rate", Some(2.0)),
                    ],
                ),
                // An entity given twice: the second fails it, though the first's records stay.
                entry(
                    &[("client-id", Some("c"))],
                    &[("producer_byte_rate", Some(3.0))],
                ),
                entry(
                    &[("client-id", Some("c"))],
                    &[("consumer_byte_rate", Some(4.0))],
                ),
                // A type given twice keeps its last name.
                entry(
                    &[("user", Some("x")), ("user", Some("y"))],
                    &[("producer_byte_rate", Some(5.0))],
                ),
            ],
        );
        assert_eq!(
            results,
            vec![
                "user=a 42 Ignoring duplicate entity ClientQuotaEntity(entries={user=a})",
                "client-id=c 42 Ignoring duplicate entity ClientQuotaEntity(entries={client-id=c})",
                "user=y 0 -",
            ]
        );
        assert!(image
            .client_quotas_of(&entity(&[("user", Some("a"))]))
            .is_none());
        assert_eq!(
            image.client_quotas_of(&entity(&[("client-id", Some("c"))])),
            Some(&BTreeMap::from([("producer_byte_rate".to_string(), 3.0)]))
        );
        assert!(image
            .client_quotas_of(&entity(&[("user", Some("y"))]))
            .is_some());
    }

    #[test]
    fn a_failed_write_answers_every_entry_with_the_error() {
        let request = AlterClientQuotasRequest::default().with_entries(vec![
            entry(&[("user", Some("a"))], &[("producer_byte_rate", Some(1.0))]),
            entry(&[("user", Some("a"))], &[]),
        ]);
        let response = error_response(&request, ResponseError::NotController);
        let codes: Vec<(i16, Option<&str>)> = response
            .entries
            .iter()
            .map(|e| (e.error_code, e.error_message.as_deref()))
            .collect();
        let message = "This is not the correct controller for this cluster.";
        assert_eq!(codes, vec![(41, Some(message)), (41, Some(message))]);
    }
}
