//! DescribeAcls: the ACL bindings a filter matches, from this node's image (a Kafka broker
//! answers from its authorizer's copy of the metadata), grouped by resource pattern as
//! Kafka's `DescribeAclsResponse.aclsResources` groups them (here in resource order).
//!
//! In Kafka's order: a filter with an UNKNOWN (0) code fails the request's decoding (the
//! connection is closed); DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED; no
//! authorizer is SECURITY_DISABLED ("No Authorizer is configured on the broker"). A filter
//! is matched as Kafka's `AclBindingFilter.matches` (MATCH: the bindings that apply to the
//! name: literal, `*` and prefixes).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::MetadataImage;
use moldau_security::acl::{
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType, ResourceType,
};

use super::{authz, str_bytes};
use crate::api::RequestContext;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = DescribeAclsRequest::VERSIONS;

/// Kafka's SecurityDisabledException message for DescribeAcls.
const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

/// `Err`: the request does not decode in Kafka (an UNKNOWN code): close the connection.
pub fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: DescribeAclsRequest,
) -> Result<DescribeAclsResponse, String> {
    if [
        request.resource_type_filter,
        request.pattern_type_filter,
        request.operation,
        request.permission_type,
    ]
    .contains(&0)
    {
        return Err(format!(
            "DescribeAclsRequest contains UNKNOWN elements: {request:?}"
        ));
    }
    let refuse = |error: ResponseError, message: String| {
        DescribeAclsResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(message)))
    };
    if let Err(message) = authz::authorize_cluster(state, ctx, AclOperation::Describe) {
        return Ok(refuse(ResponseError::ClusterAuthorizationFailed, message));
    }
    if state.authorizer.is_none() {
        return Ok(refuse(
            ResponseError::SecurityDisabled,
            NO_AUTHORIZER.into(),
        ));
    }
    let filter = AclBindingFilter {
        resource_type: ResourceType::from_code(request.resource_type_filter),
        resource_name: request.resource_name_filter.as_ref().map(|s| s.to_string()),
        pattern_type: PatternType::from_code(request.pattern_type_filter),
        principal: request.principal_filter.as_ref().map(|s| s.to_string()),
        host: request.host_filter.as_ref().map(|s| s.to_string()),
        operation: AclOperation::from_code(request.operation),
        permission_type: AclPermissionType::from_code(request.permission_type),
    };
    Ok(DescribeAclsResponse::default().with_resources(resources(&state.image(), &filter)))
}

/// A resource pattern: type, name, pattern type (codes).
type Pattern = (i8, String, i8);
/// An entry: principal, host, operation, permission type (codes).
type Entry = (String, String, i8, i8);

/// The matching bindings, one entry per resource pattern.
fn resources(image: &MetadataImage, filter: &AclBindingFilter) -> Vec<DescribeAclsResource> {
    let mut by_pattern: BTreeMap<Pattern, BTreeSet<Entry>> = BTreeMap::new();
    for binding in image.acls().values().map(crate::authorizer::binding) {
        if !filter.matches(&binding) {
            continue;
        }
        let AclBinding {
            resource_type,
            resource_name,
            pattern_type,
            principal,
            host,
            operation,
            permission_type,
        } = binding;
        by_pattern
            .entry((resource_type.code(), resource_name, pattern_type.code()))
            .or_default()
            .insert((principal, host, operation.code(), permission_type.code()));
    }
    by_pattern
        .into_iter()
        .map(|((resource_type, name, pattern_type), entries)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(name))
                .with_pattern_type(pattern_type)
                .with_acls(
                    entries
                        .into_iter()
                        .map(|(principal, host, operation, permission_type)| {
                            AclDescription::default()
                                .with_principal(str_bytes(principal))
                                .with_host(str_bytes(host))
                                .with_operation(operation)
                                .with_permission_type(permission_type)
                        })
                        .collect(),
                )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use moldau_metadata::{AclEntry, MetadataDelta, MetadataRecord, Uuid};

    use super::*;

    fn image(entries: &[(i8, &str, i8, &str, i8)]) -> MetadataImage {
        let base = MetadataImage::empty();
        let mut delta = MetadataDelta::new(&base);
        for (i, (rt, name, pt, principal, op)) in entries.iter().enumerate() {
            let record = MetadataRecord::AccessControlEntry {
                id: Uuid::new_v4(),
                entry: AclEntry {
                    resource_type: *rt,
                    resource_name: name.to_string(),
                    pattern_type: *pt,
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

    fn names(resources: &[DescribeAclsResource]) -> Vec<String> {
        resources
            .iter()
            .map(|r| {
                format!(
                    "{}:{}:{} x{}",
                    r.resource_type,
                    r.resource_name.as_str(),
                    r.pattern_type,
                    r.acls.len()
                )
            })
            .collect()
    }

    #[test]
    fn bindings_are_grouped_by_resource_and_match_as_kafka() {
        let image = image(&[
            (2, "orders", 3, "User:alice", 3),
            (2, "orders", 3, "User:bob", 3),
            (2, "ord", 4, "User:alice", 4),
            (2, "*", 3, "User:carol", 8),
            (3, "orders", 3, "User:alice", 3),
        ]);
        let any = AclBindingFilter::ANY;
        assert_eq!(
            names(&resources(&image, &any)),
            vec!["2:*:3 x1", "2:ord:4 x1", "2:orders:3 x2", "3:orders:3 x1"]
        );
        let matching = AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some("orders".into()),
            pattern_type: PatternType::Match,
            ..AclBindingFilter::ANY
        };
        assert_eq!(
            names(&resources(&image, &matching)),
            vec!["2:*:3 x1", "2:ord:4 x1", "2:orders:3 x2"]
        );
        let literal_for_alice = AclBindingFilter {
            resource_type: ResourceType::Topic,
            resource_name: Some("orders".into()),
            pattern_type: PatternType::Literal,
            principal: Some("User:alice".into()),
            ..AclBindingFilter::ANY
        };
        assert_eq!(
            names(&resources(&image, &literal_for_alice)),
            vec!["2:orders:3 x1"]
        );
    }
}
