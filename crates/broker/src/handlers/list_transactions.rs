//! ListTransactions: the transactional ids this node coordinates, filtered by state,
//! producer id, (v1+) how long the current transaction has run and (v2+) a transactional
//! id pattern.
//! Only the ids the principal may DESCRIBE are listed.

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, TransactionalId,
};
use kafka_protocol::protocol::{Message, VersionRange};
use moldau_coordinator::txn::{transactional_id_pattern, TxnState};
use moldau_security::acl::{AclOperation, ResourceType};

use super::str_bytes;
use crate::api::RequestContext;
use crate::authorizer;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = ListTransactionsRequest::VERSIONS;

const STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut wanted_states = Vec::new();
    let mut unknown_state_filters = Vec::new();
    for filter in &request.state_filters {
        match STATES.iter().find(|s| s.name() == filter.as_str()) {
            Some(s) => wanted_states.push(*s),
            None => unknown_state_filters.push(filter.clone()),
        }
    }
    // Kafka: when every state filter is unknown, nothing matches.
    if !request.state_filters.is_empty() && wanted_states.is_empty() {
        return ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown_state_filters);
    }
    // A null or empty pattern filters nothing.
    let pattern = match request.transactional_id_pattern.as_deref() {
        Some(p) if !p.is_empty() => match transactional_id_pattern(p) {
            Ok(regex) => Some(regex),
            Err(e) => return ListTransactionsResponse::default().with_error_code(e.code()),
        },
        _ => None,
    };
    let now_ms = crate::now_ms();
    let states = state
        .txn_coordinator
        .transactions()
        .into_iter()
        .filter(|(_, m)| wanted_states.is_empty() || wanted_states.contains(&m.state))
        .filter(|(_, m)| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .iter()
                    .any(|p| p.0 == m.producer_id)
        })
        // "Running longer than" the filter, as the protocol describes it: open transactions
        // only (Kafka 3.9's code also lists completed and Empty ids here, which looks
        // unintended), strictly longer as in Kafka.
        .filter(|(_, m)| {
            request.duration_filter < 0
                || (m.state == TxnState::Ongoing && now_ms - m.start_ms > request.duration_filter)
        })
        .filter(|(id, _)| pattern.as_ref().is_none_or(|p| p.is_match(id)))
        // Only the ids the principal may DESCRIBE, as Kafka.
        .filter(|(id, _)| {
            authorizer::allowed(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::TransactionalId,
                id,
            )
        })
        .map(|(id, m)| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(str_bytes(id)))
                .with_producer_id(m.producer_id.into())
                .with_transaction_state(str_bytes(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown_state_filters)
        .with_transaction_states(states)
}
