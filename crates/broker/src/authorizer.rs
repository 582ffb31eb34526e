//! Kafka's StandardAuthorizer on this broker: `authorizer.class.name` set to
//! `org.apache.kafka.metadata.authorizer.StandardAuthorizer` turns it on, with
//! `super.users` and `allow.everyone.if.no.acl.found`. The ACLs are the metadata image's
//! (AccessControlEntry records), so they reach every node and survive restarts; the
//! decision rules are `moldau_security::acl::AclAuthorizer`'s.
//!
//! Handlers ask [`allowed`] (one resource), [`allowed_cluster`], [`allowed_any`] (Kafka's
//! `authorizeByResourceType`) or [`authorized_operations`] before they act, with the
//! operation and resource Kafka checks for that API. Without an authorizer everything is
//! allowed. Denials are logged at INFO on the target `kafka.authorizer.logger` (as
//! Kafka's log4j logger), allowed operations at DEBUG.

use std::collections::BTreeMap;
use std::sync::Arc;

use moldau_metadata::{AclEntry, MetadataImage, Uuid};
use moldau_security::acl::{
    java_host_address, AclAuthorizer, AclBinding, AclOperation, AclPermissionType,
    AuthorizerSettings, PatternType, ResourceType,
};
use parking_lot::RwLock;

use crate::api::RequestContext;
use crate::state::BrokerState;

/// The one authorizer Moldau has, by Kafka's class name.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The name of the cluster resource (Kafka's `kafka-cluster`).
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The authorizer of a node: its settings and the ACL index of the last image seen.
pub struct Authorizer {
    settings: AuthorizerSettings,
    index: RwLock<Built>,
}

/// An index and the image's ACL map it was built from (compared by pointer).
struct Built {
    acls: Arc<BTreeMap<Uuid, AclEntry>>,
    index: Arc<AclAuthorizer>,
}

impl Authorizer {
    pub fn new(settings: AuthorizerSettings) -> Authorizer {
        let index = Arc::new(AclAuthorizer::new(Vec::new(), settings.clone()));
        Authorizer {
            settings,
            index: RwLock::new(Built {
                acls: Arc::new(BTreeMap::new()),
                index,
            }),
        }
    }

    /// The index for `image`'s ACLs, rebuilt when they changed.
    fn index(&self, image: &MetadataImage) -> Arc<AclAuthorizer> {
        {
            // Images share the ACL map until an ACL record changes it: one pointer
            // comparison per check, one rebuild per change.
            let current = self.index.read();
            if Arc::ptr_eq(&current.acls, image.acls()) {
                return current.index.clone();
            }
        }
        let bindings: Vec<AclBinding> = image.acls().values().map(binding).collect();
        let index = Arc::new(AclAuthorizer::new(bindings, self.settings.clone()));
        *self.index.write() = Built {
            acls: image.acls().clone(),
            index: index.clone(),
        };
        index
    }
}

/// A stored ACL as the decision rules take it.
pub fn binding(entry: &AclEntry) -> AclBinding {
    AclBinding::new(
        ResourceType::from_code(entry.resource_type),
        entry.resource_name.clone(),
        PatternType::from_code(entry.pattern_type),
        entry.principal.clone(),
        entry.host.clone(),
        AclOperation::from_code(entry.operation),
        AclPermissionType::from_code(entry.permission_type),
    )
}

/// Whether the request's principal may do `operation` on the resource.
pub fn allowed(
    state: &BrokerState,
    ctx: &RequestContext,
    operation: AclOperation,
    resource_type: ResourceType,
    resource_name: &str,
) -> bool {
    let Some(authorizer) = &state.authorizer else {
        return true;
    };
    let host = java_host_address(ctx.peer.ip());
    let index = authorizer.index(&state.image());
    let allowed = index.authorize(
        &ctx.principal,
        &host,
        operation,
        resource_type,
        resource_name,
    );
    log_decision(ctx, &host, operation, resource_type, resource_name, allowed);
    allowed
}

/// As [`allowed`], with a denial logged at DEBUG only (Kafka's `logIfDenied = false`: a
/// listing that leaves out what the principal may not see, a fallback check).
pub fn allowed_quietly(
    state: &BrokerState,
    ctx: &RequestContext,
    operation: AclOperation,
    resource_type: ResourceType,
    resource_name: &str,
) -> bool {
    let Some(authorizer) = &state.authorizer else {
        return true;
    };
    let host = java_host_address(ctx.peer.ip());
    let allowed = authorizer.index(&state.image()).authorize(
        &ctx.principal,
        &host,
        operation,
        resource_type,
        resource_name,
    );
    tracing::debug!(target: "kafka.authorizer.logger", "Principal = {} is {} operation = {} from host = {host} on resource = {}:LITERAL:{resource_name}", ctx.principal, if allowed { "Allowed" } else { "Denied" }, operation.pascal_name(), resource_type.pascal_name());
    allowed
}

/// [`allowed`] when `log_denial`, else [`allowed_quietly`]: a resource the client named is
/// logged when refused, one a listing leaves out is not.
pub fn allowed_logging_if(
    log_denial: bool,
    state: &BrokerState,
    ctx: &RequestContext,
    operation: AclOperation,
    resource_type: ResourceType,
    resource_name: &str,
) -> bool {
    if log_denial {
        allowed(state, ctx, operation, resource_type, resource_name)
    } else {
        allowed_quietly(state, ctx, operation, resource_type, resource_name)
    }
}

/// `operation` on the cluster resource.
pub fn allowed_cluster(state: &BrokerState, ctx: &RequestContext, operation: AclOperation) -> bool {
    allowed(state, ctx, operation, ResourceType::Cluster, CLUSTER_NAME)
}

/// Kafka's `authorizeByResourceType`: whether some ACL lets the principal do `operation`
/// on some resource of the type (e.g. WRITE on any topic for an idempotent producer).
pub fn allowed_any(
    state: &BrokerState,
    ctx: &RequestContext,
    operation: AclOperation,
    resource_type: ResourceType,
) -> bool {
    let Some(authorizer) = &state.authorizer else {
        return true;
    };
    let host = java_host_address(ctx.peer.ip());
    let index = authorizer.index(&state.image());
    let allowed = index.authorize_by_resource_type(&ctx.principal, &host, operation, resource_type);
    log_decision(ctx, &host, operation, resource_type, "*", allowed);
    allowed
}

/// Kafka's `authorized_operations` bit field: bit `code` set for each operation Kafka
/// supports on the resource type that the principal may do on the resource. Checks are
/// not logged, as Kafka's `logIfDenied=false` here.
pub fn authorized_operations(
    state: &BrokerState,
    ctx: &RequestContext,
    resource_type: ResourceType,
    resource_name: &str,
) -> i32 {
    let operations = resource_type.supported_operations();
    let host = java_host_address(ctx.peer.ip());
    let index = state.authorizer.as_ref().map(|a| a.index(&state.image()));
    operations
        .iter()
        .filter(|op| {
            index.as_ref().is_none_or(|index| {
                index.authorize(&ctx.principal, &host, **op, resource_type, resource_name)
            })
        })
        .fold(0i32, |bits, op| bits | (1 << op.code()))
}

fn log_decision(
    ctx: &RequestContext,
    host: &str,
    operation: AclOperation,
    resource_type: ResourceType,
    resource_name: &str,
    allowed: bool,
) {
    // Checked first: the strings are built only for a line that is written.
    let enabled = if allowed {
        tracing::enabled!(target: "kafka.authorizer.logger", tracing::Level::DEBUG)
    } else {
        tracing::enabled!(target: "kafka.authorizer.logger", tracing::Level::INFO)
    };
    if !enabled {
        return;
    }
    let api = kafka_protocol::messages::ApiKey::try_from(ctx.header.request_api_key)
        .map(|k| format!("{k:?}"))
        .unwrap_or_else(|_| ctx.header.request_api_key.to_string());
    let resource = format!("{}:LITERAL:{resource_name}", resource_type.pascal_name());
    if allowed {
        tracing::debug!(target: "kafka.authorizer.logger", "Principal = {} is Allowed operation = {} from host = {host} on resource = {resource} for request = {api}", ctx.principal, operation.pascal_name());
    } else {
        tracing::info!(target: "kafka.authorizer.logger", "Principal = {} is Denied operation = {} from host = {host} on resource = {resource} for request = {api}", ctx.principal, operation.pascal_name());
    }
}
