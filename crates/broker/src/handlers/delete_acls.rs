//! DeleteAcls: removes the ACL bindings each filter matches, as Kafka 4.1's
//! `AclApis.handleDeleteAcls` and the controller's `AclControlManager.deleteAcls` do, on
//! the active controller (other nodes forward it after authorizing it).
//!
//! In Kafka's order: a filter with an UNKNOWN (0) code fails the request's decoding (the
//! connection is closed); ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED for every
//! filter; no authorizer is SECURITY_DISABLED ("No Authorizer is configured."). Each filter
//! then gets its own result: INVALID_REQUEST for a filter with an UNKNOWN part (a code
//! Kafka does not know), else the bindings it matched, each removed by one
//! `RemoveAccessControlEntry` record (a binding two filters match is removed once and
//! listed by both). Every filter's records are committed together.

use std::collections::BTreeSet;

use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{MetadataImage, MetadataRecord, Uuid};
use moldau_security::acl::{
    AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
};

use super::create_acls::acl_write_refusal;
use super::str_bytes;
use crate::api::RequestContext;
use crate::controller::MAX_RECORDS_PER_USER_OP;
use crate::error::BrokerError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DeleteAclsRequest::VERSIONS;

/// `Err`: the request does not decode in Kafka (an UNKNOWN code): close the connection.
pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DeleteAclsRequest,
) -> Result<DeleteAclsResponse, String> {
    if request.filters.iter().any(|f| {
        [
            f.pattern_type_filter,
            f.resource_type_filter,
            f.operation,
            f.permission_type,
        ]
        .contains(&0)
    }) {
        return Err(format!(
            "Filters contain UNKNOWN elements, filters: {:?}",
            request.filters
        ));
    }
    if let Some((error, message)) = acl_write_refusal(state, ctx) {
        return Ok(error_response(&request, error, Some(message)));
    }
    if let Some(response) = super::forward_unless_controller(state, ctx, &request).await {
        return Ok(response);
    }
    let filters: Vec<AclBindingFilter> = request.filters.iter().map(filter).collect();
    let written = state
        .controller
        .write(|image| Ok::<_, BrokerError>(decide(image, &filters)))
        .await;
    Ok(match written {
        Ok(results) => DeleteAclsResponse::default().with_filter_results(results),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::error!("cannot delete ACLs: {e}");
            }
            error_response(&request, e.response_error(), Some(e.to_string()))
        }
    })
}

fn filter(f: &DeleteAclsFilter) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: ResourceType::from_code(f.resource_type_filter),
        resource_name: f.resource_name_filter.as_ref().map(|s| s.to_string()),
        pattern_type: PatternType::from_code(f.pattern_type_filter),
        principal: f.principal_filter.as_ref().map(|s| s.to_string()),
        host: f.host_filter.as_ref().map(|s| s.to_string()),
        operation: AclOperation::from_code(f.operation),
        permission_type: AclPermissionType::from_code(f.permission_type),
    }
}

/// Kafka's `getErrorResponse`: every filter gets the error.
fn error_response(
    request: &DeleteAclsRequest,
    error: ResponseError,
    message: Option<String>,
) -> DeleteAclsResponse {
    let result = DeleteAclsFilterResult::default()
        .with_error_code(error.code())
        .with_error_message(message.map(str_bytes));
    DeleteAclsResponse::default().with_filter_results(vec![result; request.filters.len()])
}

/// Kafka's `deleteAcls` against the controller's image: the removal records and every
/// filter's result, in request order.
fn decide(
    image: &MetadataImage,
    filters: &[AclBindingFilter],
) -> (Vec<MetadataRecord>, Vec<DeleteAclsFilterResult>) {
    let mut removed: BTreeSet<Uuid> = BTreeSet::new();
    let results = filters
        .iter()
        .map(|filter| {
            if let Err(e) = filter.validate_for_delete() {
                return DeleteAclsFilterResult::default()
                    .with_error_code(e.error_code())
                    .with_error_message(e.error_message().map(str_bytes));
            }
            let mut matched = Vec::new();
            let mut ids = Vec::new();
            for (id, entry) in image.acls().iter() {
                let binding = crate::authorizer::binding(entry);
                if filter.matches(&binding) {
                    ids.push(*id);
                    matched.push(
                        DeleteAclsMatchingAcl::default()
                            .with_error_message(None)
                            .with_resource_type(entry.resource_type)
                            .with_resource_name(str_bytes(entry.resource_name.clone()))
                            .with_pattern_type(entry.pattern_type)
                            .with_principal(str_bytes(entry.principal.clone()))
                            .with_host(str_bytes(entry.host.clone()))
                            .with_operation(entry.operation)
                            .with_permission_type(entry.permission_type),
                    );
                }
            }
            let new_ids = ids.iter().filter(|id| !removed.contains(id)).count();
            if removed.len() + new_ids > MAX_RECORDS_PER_USER_OP {
                // Kafka's BoundedListTooLongException: an UNKNOWN_SERVER_ERROR for the filter.
                return DeleteAclsFilterResult::default()
                    .with_error_code(ResponseError::UnknownServerError.code())
                    .with_error_message(None);
            }
            for id in ids {
                if removed.insert(id) {
                    tracing::info!(
                        "deleting ACL {id}: {}",
                        crate::authorizer::binding(&image.acls()[&id])
                    );
                }
            }
            DeleteAclsFilterResult::default()
                .with_error_message(None)
                .with_matching_acls(matched)
        })
        .collect();
    let records = removed
        .into_iter()
        .map(|id| MetadataRecord::RemoveAccessControlEntry { id })
        .collect();
    (records, results)
}

#[cfg(test)]
mod tests {
    use moldau_metadata::{AclEntry, MetadataDelta};

    use super::*;

    fn image(entries: &[(&str, &str, i8)]) -> MetadataImage {
        let base = MetadataImage::empty();
        let mut delta = MetadataDelta::new(&base);
        for (i, (name, principal, op)) in entries.iter().enumerate() {
            let record = MetadataRecord::AccessControlEntry {
                id: Uuid::new_v4(),
                entry: AclEntry {
                    resource_type: 2,
                    resource_name: name.to_string(),
                    pattern_type: 3,
                    principal: principal.to_string(),
                    host: "*".into(),
                    operation: *op,
                    permission_type: 3,
                },
            };
            delta.replay(i as i64, &record).unwrap();
        }
        delta.apply()
    }

    #[test]
    fn each_filter_lists_its_matches_and_a_binding_is_removed_once() {
        let image = image(&[
            ("a", "User:alice", 3),
            ("a", "User:bob", 3),
            ("b", "User:alice", 4),
        ]);
        let alice = AclBindingFilter {
            principal: Some("User:alice".into()),
            ..AclBindingFilter::ANY
        };
        let topic_a = AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some("a".into()),
            pattern_type: PatternType::Literal,
            ..AclBindingFilter::ANY
        };
        let unknown = AclBindingFilter {
            operation: AclOperation::Unknown,
            ..AclBindingFilter::ANY
        };
        let (records, results) = decide(&image, &[alice, topic_a, unknown]);
        let matched: Vec<usize> = results.iter().map(|r| r.matching_acls.len()).collect();
        assert_eq!(matched, vec![2, 2, 0]);
        assert_eq!(records.len(), 3, "a:alice is removed once");
        assert_eq!(results[2].error_code, 42);
        assert_eq!(
            results[2].error_message.as_deref(),
            Some("Unknown entryFilter.")
        );
        let mut delta = MetadataDelta::new(&image);
        for (i, record) in records.iter().enumerate() {
            delta.replay(100 + i as i64, record).unwrap();
        }
        assert!(delta.apply().acls().is_empty());
    }
}
