//! DeleteTopics: by name (v1-v6) or by topic id (v6); one RemoveTopic record per topic, all
//! committed together. The replica manager deletes the logs when the records are published.
//!
//! As in Kafka's KRaft controller, a topic named twice, named and given by id at once, or
//! named by neither is refused with INVALID_REQUEST; an unknown name is
//! UNKNOWN_TOPIC_OR_PARTITION and an unknown id UNKNOWN_TOPIC_ID. Kafka's internal topics
//! (`__consumer_offsets`, `__transaction_state`) can be deleted through this API as in Kafka,
//! where only ACLs guard them; the metadata log is not a topic and cannot be named here.
//!
//! Authorization (Kafka's `ControllerApis.deleteTopics`): DELETE on the cluster, else on
//! each topic; a topic the principal may not DESCRIBE is refused before it is looked up (an
//! unknown name is then TOPIC_AUTHORIZATION_FAILED too) and, given by id, without its name.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataRecord, Uuid};
use moldau_security::acl::{AclOperation, ResourceType};

use super::{authz, str_bytes, topic_name};
use crate::api::RequestContext;
use crate::authorizer::{self, CLUSTER_NAME};
use crate::error::BrokerError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DeleteTopicsRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    mut request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    // Kafka's controller authorizes the topics first (here, where the client's principal
    // is known), and deletes only those the principal may delete.
    let denied = authorize(state, ctx, &mut request);
    let mut response =
        if let Some(response) = super::forward_unless_controller(state, ctx, &request).await {
            response
        } else {
            // KIP-599: strict from v5, as Kafka's controller.
            let quota = state
                .quota_manager
                .controller_mutation(&state.image(), ctx, 5);
            delete_topics(state, &request, &quota).await
        };
    response.responses.extend(denied);
    response
}

/// Kafka's authorization of a DeleteTopics (`ControllerApis.deleteTopics`): DELETE on the
/// cluster (a quiet check) allows every topic; else each topic needs DELETE, and a topic
/// the principal may not DESCRIBE is never revealed: a name is refused before it is looked
/// up, and a topic given by id is refused without its name. Takes the refused topics out
/// of `request` and returns their results. Topics named twice, named and given by id at
/// once, or unknown here stay in the request, to be refused for that (as Kafka does before
/// it authorizes).
fn authorize(
    state: &BrokerState,
    ctx: &RequestContext,
    request: &mut DeleteTopicsRequest,
) -> Vec<DeletableTopicResult> {
    if !authz::must_check(state, ctx)
        || authorizer::allowed_quietly(
            state,
            ctx,
            AclOperation::Delete,
            ResourceType::Cluster,
            CLUSTER_NAME,
        )
    {
        return Vec::new();
    }
    let image = state.image();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeMap<Uuid, usize> = BTreeMap::new();
    for name in &request.topic_names {
        *names.entry(name.to_string()).or_default() += 1;
    }
    for topic in &request.topics {
        match (&topic.name, topic.topic_id.is_nil()) {
            (None, false) => *ids.entry(topic.topic_id).or_default() += 1,
            (Some(name), true) => *names.entry(name.to_string()).or_default() += 1,
            _ => {}
        }
    }
    let may = |operation: AclOperation, name: &str| {
        authorizer::allowed(state, ctx, operation, ResourceType::Topic, name)
    };
    let failed = |name: Option<&str>, id: Uuid| {
        let error = ResponseError::TopicAuthorizationFailed;
        DeletableTopicResult::default()
            .with_name(name.map(topic_name))
            .with_topic_id(id)
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(authz::default_message(error))))
    };
    // Whether a name given once is refused, and the refusal.
    let refuse_name = |name: &str| -> Option<DeletableTopicResult> {
        if names.get(name) != Some(&1) {
            return None;
        }
        let describable = may(AclOperation::Describe, name);
        let deletable = may(AclOperation::Delete, name);
        let known = image.topic_by_name(name).is_some();
        (!describable || (known && !deletable)).then(|| failed(Some(name), Uuid::nil()))
    };
    let refuse_id = |id: Uuid| -> Option<DeletableTopicResult> {
        if ids.get(&id) != Some(&1) {
            return None;
        }
        let topic = image.topic_by_id(&id)?;
        let describable = may(AclOperation::Describe, &topic.name);
        let deletable = may(AclOperation::Delete, &topic.name);
        (!deletable).then(|| failed(describable.then_some(topic.name.as_str()), id))
    };
    let mut denied = Vec::new();
    request.topic_names.retain(|name| match refuse_name(name) {
        Some(refusal) => {
            denied.push(refusal);
            false
        }
        None => true,
    });
    request.topics.retain(|topic| {
        let refusal = match (&topic.name, topic.topic_id.is_nil()) {
            (None, false) => refuse_id(topic.topic_id),
            (Some(name), true) => refuse_name(name),
            _ => None,
        };
        match refusal {
            Some(refusal) => {
                denied.push(refusal);
                false
            }
            None => true,
        }
    });
    denied
}

/// Deletes the topics of a request on the active controller.
async fn delete_topics(
    state: &BrokerState,
    request: &DeleteTopicsRequest,
    quota: &crate::quota_manager::ControllerMutationQuota<'_>,
) -> DeleteTopicsResponse {
    let mut responses = Vec::new();
    let mut respond =
        |name: Option<&str>, topic_id: Uuid, error: Option<(ResponseError, String)>| {
            let mut result = DeletableTopicResult::default()
                .with_name(name.map(topic_name))
                .with_topic_id(topic_id);
            if let Some((code, message)) = error {
                result.error_code = code.code();
                result.error_message = Some(str_bytes(message));
            }
            responses.push(result);
        };

    // Names and ids as given, each counted so duplicates can be refused.
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids: BTreeMap<Uuid, usize> = BTreeMap::new();
    for name in &request.topic_names {
        *names.entry(name.to_string()).or_default() += 1;
    }
    for topic in &request.topics {
        match (&topic.name, topic.topic_id.is_nil()) {
            (None, true) => respond(
                None,
                Uuid::nil(),
                Some(invalid("Neither topic name nor id were specified.")),
            ),
            (None, false) => *ids.entry(topic.topic_id).or_default() += 1,
            (Some(name), true) => *names.entry(name.to_string()).or_default() += 1,
            (Some(name), false) => respond(
                Some(name),
                topic.topic_id,
                Some(invalid("You may not specify both topic name and topic id.")),
            ),
        }
    }
    for (name, _) in names.iter().filter(|(_, n)| **n > 1) {
        respond(
            Some(name),
            Uuid::nil(),
            Some(invalid("Duplicate topic name.")),
        );
    }
    for (id, _) in ids.iter().filter(|(_, n)| **n > 1) {
        respond(None, *id, Some(invalid("Duplicate topic id.")));
    }

    // Resolve ids to names and names to ids against the current image.
    let image = state.image();
    let mut to_delete: BTreeMap<Uuid, String> = BTreeMap::new();
    for (id, _) in ids.iter().filter(|(_, n)| **n == 1) {
        match image.topic_by_id(id) {
            Some(topic) => {
                to_delete.insert(*id, topic.name.clone());
            }
            None => respond(None, *id, Some(kafka_error(ResponseError::UnknownTopicId))),
        }
    }
    let mut ids_named_twice: BTreeSet<Uuid> = ids
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| *id)
        .collect();
    for (name, _) in names.iter().filter(|(_, n)| **n == 1) {
        match image.topic_by_name(name) {
            None => respond(
                Some(name),
                Uuid::nil(),
                Some(kafka_error(ResponseError::UnknownTopicOrPartition)),
            ),
            Some(topic) => {
                if ids_named_twice.contains(&topic.topic_id)
                    || to_delete.insert(topic.topic_id, name.clone()).is_some()
                {
                    ids_named_twice.insert(topic.topic_id);
                    to_delete.remove(&topic.topic_id);
                    respond(
                        Some(name),
                        topic.topic_id,
                        Some(invalid(
                            "The provided topic name maps to an ID that was already supplied.",
                        )),
                    );
                }
            }
        }
    }

    if !to_delete.is_empty() {
        match delete(state, &to_delete, quota).await {
            Ok(outcomes) => {
                for (topic_id, name, error) in outcomes {
                    respond(Some(&name), topic_id, error);
                }
            }
            Err(e) => {
                tracing::error!("cannot delete topics: {e}");
                for (topic_id, name) in &to_delete {
                    respond(
                        Some(name),
                        *topic_id,
                        Some((e.response_error(), e.to_string())),
                    );
                }
            }
        }
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

type Outcome = (Uuid, String, Option<(ResponseError, String)>);

/// Commits one RemoveTopic per topic that still exists, in one metadata batch.
async fn delete(
    state: &BrokerState,
    to_delete: &BTreeMap<Uuid, String>,
    quota: &crate::quota_manager::ControllerMutationQuota<'_>,
) -> Result<Vec<Outcome>, BrokerError> {
    state
        .controller
        .write(|image| {
            let mut records = Vec::new();
            let mut outcomes = Vec::new();
            for (topic_id, name) in to_delete {
                if let Some(Err(refusal)) = image
                    .topic_by_id(topic_id)
                    .map(|topic| quota.apply(topic.partitions.len() as u32))
                {
                    outcomes.push((*topic_id, name.clone(), Some(refusal)));
                } else if image.topic_by_id(topic_id).is_some() {
                    records.push(MetadataRecord::RemoveTopic {
                        topic_id: *topic_id,
                    });
                    outcomes.push((*topic_id, name.clone(), None));
                } else {
                    // Deleted by a concurrent request since it was resolved.
                    let error = kafka_error(ResponseError::UnknownTopicId);
                    outcomes.push((*topic_id, name.clone(), Some(error)));
                }
            }
            Ok::<_, BrokerError>((records, outcomes))
        })
        .await
}

fn invalid(message: &str) -> (ResponseError, String) {
    (ResponseError::InvalidRequest, message.to_string())
}

/// An error with Kafka's default message for its code.
fn kafka_error(error: ResponseError) -> (ResponseError, String) {
    (error, error.to_string())
}
