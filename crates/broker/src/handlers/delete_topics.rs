//! DeleteTopics: by name (v1-v6) or by topic id (v6); one RemoveTopic record per topic, all
//! committed together. The replica manager deletes the logs when the records are published.
//!
//! As in Kafka's KRaft controller, a topic named twice, named and given by id at once, or
//! named by neither is refused with INVALID_REQUEST; an unknown name is
//! UNKNOWN_TOPIC_OR_PARTITION and an unknown id UNKNOWN_TOPIC_ID. Kafka's internal topics
//! (`__consumer_offsets`, `__transaction_state`) can be deleted through this API as in Kafka,
//! where only ACLs guard them; the metadata log is not a topic and cannot be named here.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataRecord, Uuid};

use super::{str_bytes, topic_name};
use crate::api::RequestContext;
use crate::error::BrokerError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DeleteTopicsRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    if let Some(response) = super::forward_unless_controller(state, ctx, &request).await {
        return response;
    }
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
        match delete(state, &to_delete).await {
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
) -> Result<Vec<Outcome>, BrokerError> {
    state
        .controller
        .write(|image| {
            let mut records = Vec::new();
            let mut outcomes = Vec::new();
            for (topic_id, name) in to_delete {
                if image.topic_by_id(topic_id).is_some() {
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
