//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT (for list configs such as
//! `cleanup.policy`) on topic and broker configs; shares its engine with AlterConfigs.

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::{Message, VersionRange};

use super::alter_configs::{
    alter, forward_to_controller_if_needed, outcome_of, response_error, Ops, ResourceChange,
};
use super::forward_to_controller;
use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = IncrementalAlterConfigsRequest::VERSIONS;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let changes: Vec<ResourceChange> = request
        .resources
        .iter()
        .map(|r| ResourceChange {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            ops: Ops::Incremental(
                r.configs
                    .iter()
                    .map(|c| {
                        (
                            c.name.to_string(),
                            c.config_operation,
                            c.value.as_ref().map(|v| v.to_string()),
                        )
                    })
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
