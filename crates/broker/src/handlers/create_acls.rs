//! CreateAcls: adds ACL bindings, as Kafka 4.1's `AclApis.handleCreateAcls` and the
//! controller's `AclControlManager.createAcls` do, on the active controller (other nodes
//! forward it after authorizing it).
//!
//! In Kafka's order: a creation with an UNKNOWN (0) code fails the request's decoding (the
//! connection is closed); ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED for every
//! creation; no authorizer is SECURITY_DISABLED ("No Authorizer is configured."); a
//! creation with a filter value (ANY, MATCH) fails every creation with
//! UNKNOWN_SERVER_ERROR and no message (Kafka throws while building the bindings). Then per
//! creation, with Kafka's messages, INVALID_REQUEST for a CLUSTER resource not named
//! `kafka-cluster`, an empty name, an UNKNOWN or ANY type, pattern, operation or permission
//! and a principal without a colon ([`validate_for_create`]). The others are one
//! `AccessControlEntry` record each, committed together; a binding that exists already (or
//! comes twice) is a success that writes nothing, as Kafka.

use std::collections::HashSet;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;
use moldau_metadata::{AclEntry, MetadataImage, MetadataRecord, Uuid};
use moldau_security::acl::{
    validate_create_codes, validate_for_create, AclBinding, AclError, AclOperation,
    AclPermissionType, PatternType, ResourceType,
};

use super::{authz, str_bytes};
use crate::api::RequestContext;
use crate::error::BrokerError;
use crate::state::BrokerState;

pub const VERSIONS: VersionRange = CreateAclsRequest::VERSIONS;

/// Kafka's SecurityDisabledException message for CreateAcls and DeleteAcls.
const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// CreateAcls and DeleteAcls alike: ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED),
/// then an authorizer to write for (SECURITY_DISABLED), as Kafka checks them.
pub(crate) fn acl_write_refusal(
    state: &BrokerState,
    ctx: &RequestContext,
) -> Option<(ResponseError, String)> {
    if let Err(message) = authz::authorize_cluster_unless_forwarded(state, ctx, AclOperation::Alter)
    {
        return Some((ResponseError::ClusterAuthorizationFailed, message));
    }
    if state.authorizer.is_none() {
        return Some((ResponseError::SecurityDisabled, NO_AUTHORIZER.into()));
    }
    None
}

/// `Err`: the request does not decode in Kafka (a creation with an UNKNOWN code): close
/// the connection.
pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext,
    request: CreateAclsRequest,
) -> Result<CreateAclsResponse, String> {
    for c in &request.creations {
        validate_create_codes(
            c.resource_type,
            c.resource_pattern_type,
            c.operation,
            c.permission_type,
        )
        .map_err(|e| e.to_string())?;
    }
    if let Some((error, message)) = acl_write_refusal(state, ctx) {
        return Ok(error_response(&request, error, Some(message)));
    }
    if let Some(response) = super::forward_unless_controller(state, ctx, &request).await {
        return Ok(response);
    }
    let bindings: Vec<AclBinding> = request.creations.iter().map(binding).collect();
    if let Some(e) = bindings
        .iter()
        .filter_map(|b| validate_for_create(b).err())
        .find(|e| matches!(e, AclError::NotSpecific(_)))
    {
        tracing::debug!("refusing CreateAcls: {e}");
        return Ok(error_response(
            &request,
            ResponseError::UnknownServerError,
            None,
        ));
    }
    let written = state
        .controller
        .write(|image| Ok::<_, BrokerError>(decide(image, &bindings)))
        .await;
    Ok(match written {
        Ok(results) => CreateAclsResponse::default().with_results(results),
        Err(e) => {
            if !e.is_client_refusal() {
                tracing::error!("cannot create ACLs: {e}");
            }
            error_response(&request, e.response_error(), Some(e.to_string()))
        }
    })
}

/// The binding a creation asks for (codes Kafka does not know are UNKNOWN).
fn binding(c: &AclCreation) -> AclBinding {
    AclBinding::new(
        ResourceType::from_code(c.resource_type),
        c.resource_name.to_string(),
        PatternType::from_code(c.resource_pattern_type),
        c.principal.to_string(),
        c.host.to_string(),
        AclOperation::from_code(c.operation),
        AclPermissionType::from_code(c.permission_type),
    )
}

/// A binding as the metadata log stores it.
pub(crate) fn entry(b: &AclBinding) -> AclEntry {
    AclEntry {
        resource_type: b.resource_type.code(),
        resource_name: b.resource_name.clone(),
        pattern_type: b.pattern_type.code(),
        principal: b.principal.clone(),
        host: b.host.clone(),
        operation: b.operation.code(),
        permission_type: b.permission_type.code(),
    }
}

/// Kafka's `getErrorResponse`: every creation gets the error.
fn error_response(
    request: &CreateAclsRequest,
    error: ResponseError,
    message: Option<String>,
) -> CreateAclsResponse {
    let result = AclCreationResult::default()
        .with_error_code(error.code())
        .with_error_message(message.map(str_bytes));
    CreateAclsResponse::default().with_results(vec![result; request.creations.len()])
}

/// Kafka's checks of each binding against the controller's image: the records of the new
/// bindings and every creation's result, in request order.
fn decide(
    image: &MetadataImage,
    bindings: &[AclBinding],
) -> (Vec<MetadataRecord>, Vec<AclCreationResult>) {
    let mut existing: HashSet<AclEntry> = image.acls().values().cloned().collect();
    let mut records = Vec::new();
    let results = bindings
        .iter()
        .map(|b| match validate_for_create(b) {
            Err(e) => {
                tracing::debug!("refusing ACL {b}: {e}");
                AclCreationResult::default()
                    .with_error_code(e.error_code())
                    .with_error_message(e.error_message().map(str_bytes))
            }
            Ok(()) => {
                let entry = entry(b);
                if existing.insert(entry.clone()) {
                    let id = new_id(image, &records);
                    tracing::info!("creating ACL {id}: {b}");
                    records.push(MetadataRecord::AccessControlEntry { id, entry });
                }
                AclCreationResult::default()
            }
        })
        .collect();
    (records, results)
}

/// A fresh ACL id, as Kafka's `newAclId`: random, and not one in use.
fn new_id(image: &MetadataImage, records: &[MetadataRecord]) -> Uuid {
    loop {
        let id = Uuid::new_v4();
        let taken = image.acls().contains_key(&id)
            || records
                .iter()
                .any(|r| matches!(r, MetadataRecord::AccessControlEntry { id: i, .. } if *i == id));
        if !id.is_nil() && !taken {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use moldau_metadata::MetadataDelta;

    use super::*;

    fn creation(rt: i8, name: &str, pt: i8, principal: &str, op: i8, perm: i8) -> AclBinding {
        binding(
            &AclCreation::default()
                .with_resource_type(rt)
                .with_resource_name(str_bytes(name))
                .with_resource_pattern_type(pt)
                .with_principal(str_bytes(principal))
                .with_host(str_bytes("*"))
                .with_operation(op)
                .with_permission_type(perm),
        )
    }

    fn apply(image: &MetadataImage, records: &[MetadataRecord]) -> MetadataImage {
        let mut delta = MetadataDelta::new(image);
        for (i, record) in records.iter().enumerate() {
            delta.replay(image.offset + 1 + i as i64, record).unwrap();
        }
        delta.apply()
    }

    fn summary(results: &[AclCreationResult]) -> Vec<String> {
        results
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.error_code,
                    r.error_message.as_deref().unwrap_or("null")
                )
            })
            .collect()
    }

    #[test]
    fn duplicates_are_successes_that_write_nothing() {
        let read = creation(2, "t", 3, "User:alice", 3, 3);
        let (records, results) = decide(&MetadataImage::empty(), &[read.clone(), read.clone()]);
        assert_eq!(records.len(), 1);
        assert_eq!(summary(&results), vec!["0 ", "0 "]);
        let image = apply(&MetadataImage::empty(), &records);
        let write = creation(2, "t", 3, "User:alice", 4, 3);
        let (records, results) = decide(&image, &[read, write]);
        assert_eq!(summary(&results), vec!["0 ", "0 "]);
        assert_eq!(records.len(), 1, "only the new binding is written");
        let image = apply(&image, &records);
        assert_eq!(image.acls().len(), 2);
    }

    #[test]
    fn invalid_bindings_get_kafkas_messages_and_the_rest_is_written() {
        let (records, results) = decide(
            &MetadataImage::empty(),
            &[
                creation(4, "other", 3, "User:alice", 7, 3),
                creation(2, "", 3, "User:alice", 3, 3),
                creation(2, "t", 3, "alice", 3, 3),
                creation(99, "t", 3, "User:alice", 3, 3),
                creation(2, "t", 3, "User:alice", 3, 3),
            ],
        );
        assert_eq!(
            summary(&results),
            vec![
                "42 The only valid name for the CLUSTER resource is kafka-cluster",
                "42 Invalid empty resource name",
                "42 Could not parse principal from `alice` (no colon is present separating the \
                 principal type from the principal name)",
                "42 Invalid resourceType UNKNOWN",
                "0 ",
            ]
        );
        assert_eq!(records.len(), 1);
    }
}
