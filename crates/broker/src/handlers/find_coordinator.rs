//! FindCoordinator: this node coordinates every group whose `__consumer_offsets` partition
//! it leads (all of them, on a single node). The first lookup of a group creates that topic.
//! Likewise for transactional ids and `__transaction_state`.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::{Message, StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use super::{client_listener, str_bytes};
use moldau_security::acl::{AclOperation, ResourceType};

use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = FindCoordinatorRequest::VERSIONS;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
/// Keys per request: bounds the work one batched request can ask for.
const MAX_KEYS: usize = 10_000;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    // v4+ batches keys; earlier versions ask for one.
    let keys: Vec<StrBytes> = if ctx.api_version >= 4 {
        request
            .coordinator_keys
            .into_iter()
            .take(MAX_KEYS)
            .collect()
    } else {
        vec![request.key]
    };
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        // DESCRIBE on the group or transactional id, as Kafka (checked before the
        // coordinator's topic may be created).
        let refusal = match request.key_type {
            KEY_TYPE_GROUP => (!authorizer::allowed(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::Group,
                &key,
            ))
            .then_some(ResponseError::GroupAuthorizationFailed),
            KEY_TYPE_TRANSACTION => (!authorizer::allowed(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::TransactionalId,
                &key,
            ))
            .then_some(ResponseError::TransactionalIdAuthorizationFailed),
            _ => None,
        };
        let found = match refusal {
            Some(error) => Err(error),
            None => find(state, request.key_type, &key).await,
        };
        let found = found.and_then(|node_id| {
            // The coordinator is the partition's leader, wherever it is, reached on
            // the client's listener.
            let image = state.image();
            let (host, port) = image
                .brokers
                .get(&node_id)
                .and_then(|b| b.endpoint(client_listener(state, ctx)))
                .ok_or(ResponseError::CoordinatorNotAvailable)?;
            Ok((node_id, host.to_string(), port))
        });
        let coordinator = match found {
            Ok((node_id, host, port)) => Coordinator::default()
                .with_node_id(BrokerId(node_id))
                .with_host(str_bytes(host))
                .with_port(i32::from(port)),
            Err(e) => Coordinator::default()
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(e.code())
                .with_error_message(Some(str_bytes(e.to_string()))),
        };
        coordinators.push(coordinator.with_key(key));
    }
    if ctx.api_version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = coordinators.pop().expect("one key");
    let response = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    if ctx.api_version >= 1 {
        // v0 has no error message; NONE answers carry null, as Kafka's do.
        return response.with_error_message(c.error_message);
    }
    response
}

/// The node id of the key's coordinator.
async fn find(state: &BrokerState, key_type: i8, key: &str) -> Result<i32, ResponseError> {
    match key_type {
        KEY_TYPE_GROUP if key.is_empty() => Err(ResponseError::InvalidRequest),
        KEY_TYPE_GROUP => state.group_coordinator.find_coordinator(state, key).await,
        KEY_TYPE_TRANSACTION if key.is_empty() => Err(ResponseError::InvalidRequest),
        KEY_TYPE_TRANSACTION => state.txn_coordinator.find_coordinator(state, key).await,
        _ => Err(ResponseError::InvalidRequest),
    }
}
