//! ACLs as Kafka's KRaft `StandardAuthorizer` decides them, with no I/O.
//!
//! - The ACL enums with Kafka's wire codes and names: [`ResourceType`], [`PatternType`],
//!   [`AclOperation`], [`AclPermissionType`].
//! - [`AclBinding`] and [`AclBindingFilter`] (DescribeAcls / DeleteAcls filters), with
//!   Kafka's matching rules.
//! - [`validate_create_codes`] and [`validate_for_create`], the CreateAcls checks, with Kafka's
//!   errors and error codes.
//! - [`AclAuthorizer`], with `authorize` (super users, DENY before ALLOW, literal, prefixed and
//!   `*` resources, `User:*`, host `*`, implied operations, `allow.everyone.if.no.acl.found`)
//!   and `authorize_by_resource_type`, over an index by resource so a request looks at the
//!   ACLs of its resource only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::principal::KafkaPrincipal;

/// The resource name of an ACL that applies to every resource of its type (with
/// [`PatternType::Literal`]), and the host of an ACL that applies to every host.
pub const WILDCARD: &str = "*";
/// The principal of an ACL that applies to every principal.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The only valid name of a [`ResourceType::Cluster`] resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// Kafka's error codes used here.
pub mod error_codes {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
}

/// CreateAcls / DeleteAcls validation and configuration errors. Messages are Kafka's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// A creation carries an UNKNOWN (0) code. Kafka refuses it while decoding the
    /// CreateAcls request (an `IllegalArgumentException` in `CreateAclsRequest`), so the
    /// whole request fails as an invalid request and the broker closes the connection.
    #[error("CreatableAcls contain unknown elements: {0}")]
    UnknownElements(String),
    /// A filter value (ANY, MATCH) where a binding needs a specific one. Kafka throws an
    /// `IllegalArgumentException` while building the binding, which fails every creation
    /// of the request with UNKNOWN_SERVER_ERROR and no message.
    #[error("{0}")]
    NotSpecific(&'static str),
    /// Rejected per binding (or per filter) with INVALID_REQUEST.
    #[error("{0}")]
    InvalidRequest(String),
    /// A `super.users` entry that is not `type:name`.
    #[error(
        "Invalid super.users entry `{0}`: expected a string in format principalType:principalName"
    )]
    InvalidSuperUser(String),
}

impl AclError {
    /// Kafka's error code for the error.
    pub fn error_code(&self) -> i16 {
        match self {
            AclError::UnknownElements(_) | AclError::InvalidRequest(_) => {
                error_codes::INVALID_REQUEST
            }
            AclError::NotSpecific(_) => error_codes::UNKNOWN_SERVER_ERROR,
            AclError::InvalidSuperUser(_) => error_codes::INVALID_CONFIG,
        }
    }

    /// The error message Kafka puts in the response (`ApiError.fromThrowable`): none for
    /// UNKNOWN_SERVER_ERROR, so nothing internal leaks.
    pub fn error_message(&self) -> Option<String> {
        match self {
            AclError::NotSpecific(_) => None,
            e => Some(e.to_string()),
        }
    }
}

/// Defines an ACL enum: variants with Kafka's wire codes and names, `from_code` (unknown
/// codes are UNKNOWN, as Kafka's `fromCode`), `code`, `name`, `Display`.
macro_rules! acl_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($variant:ident = $code:literal, $kafka:literal, $pascal:literal;)+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)+
        }

        impl $name {
            /// Every value, in code order.
            pub const VALUES: &'static [$name] = &[$($name::$variant,)+];

            /// Kafka's `fromCode`: an unknown code is UNKNOWN.
            pub fn from_code(code: i8) -> Self {
                match code {
                    $($code => $name::$variant,)+
                    _ => $name::Unknown,
                }
            }

            /// The wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)+
                }
            }

            /// Kafka's enum name (`TRANSACTIONAL_ID`), as `kafka-acls` prints it.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $kafka,)+
                }
            }

            /// Kafka's `SecurityUtils` name (`TransactionalId`), as the audit log and the
            /// old ACL JSON use it.
            pub fn pascal_name(self) -> &'static str {
                match self {
                    $($name::$variant => $pascal,)+
                }
            }

            pub fn is_unknown(self) -> bool {
                self == $name::Unknown
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// Case-insensitive names as Kafka's `fromString` (`valueOf(upper-cased)`) and
/// `SecurityUtils` (PascalCase, or its upper-casing) accept them; anything else is UNKNOWN.
macro_rules! lenient_from_name {
    ($name:ident) => {
        impl $name {
            /// Kafka's `fromString` / `SecurityUtils` lookup: `TRANSACTIONAL_ID`,
            /// `transactional_id`, `TransactionalId`, `TRANSACTIONALID`; else UNKNOWN.
            pub fn from_name(s: &str) -> Self {
                let upper = s.to_uppercase();
                $name::VALUES
                    .iter()
                    .copied()
                    .find(|v| {
                        v.name() == upper
                            || v.pascal_name() == s
                            || v.pascal_name().to_uppercase() == upper
                    })
                    .unwrap_or($name::Unknown)
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;
            /// Never fails: an unknown name is UNKNOWN, as in Kafka.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::from_name(s))
            }
        }
    };
}

acl_enum! {
    /// Kafka's `ResourceType`.
    ResourceType {
        Unknown = 0, "UNKNOWN", "Unknown";
        Any = 1, "ANY", "Any";
        Topic = 2, "TOPIC", "Topic";
        Group = 3, "GROUP", "Group";
        Cluster = 4, "CLUSTER", "Cluster";
        TransactionalId = 5, "TRANSACTIONAL_ID", "TransactionalId";
        DelegationToken = 6, "DELEGATION_TOKEN", "DelegationToken";
        User = 7, "USER", "User";
    }
}
lenient_from_name!(ResourceType);

acl_enum! {
    /// Kafka's `PatternType`.
    PatternType {
        Unknown = 0, "UNKNOWN", "Unknown";
        Any = 1, "ANY", "Any";
        Match = 2, "MATCH", "Match";
        Literal = 3, "LITERAL", "Literal";
        Prefixed = 4, "PREFIXED", "Prefixed";
    }
}

impl PatternType {
    /// Kafka's `PatternType.fromString`: the exact (case-sensitive) name, else UNKNOWN.
    pub fn from_name(s: &str) -> Self {
        PatternType::VALUES
            .iter()
            .copied()
            .find(|v| v.name() == s)
            .unwrap_or(PatternType::Unknown)
    }

    /// LITERAL or PREFIXED: a binding's pattern type, not a filter's.
    pub fn is_specific(self) -> bool {
        matches!(self, PatternType::Literal | PatternType::Prefixed)
    }
}

impl FromStr for PatternType {
    type Err = std::convert::Infallible;
    /// Never fails: an unknown name is UNKNOWN, as in Kafka.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::from_name(s))
    }
}

acl_enum! {
    /// Kafka's `AclOperation`.
    AclOperation {
        Unknown = 0, "UNKNOWN", "Unknown";
        Any = 1, "ANY", "Any";
        All = 2, "ALL", "All";
        Read = 3, "READ", "Read";
        Write = 4, "WRITE", "Write";
        Create = 5, "CREATE", "Create";
        Delete = 6, "DELETE", "Delete";
        Alter = 7, "ALTER", "Alter";
        Describe = 8, "DESCRIBE", "Describe";
        ClusterAction = 9, "CLUSTER_ACTION", "ClusterAction";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS", "DescribeConfigs";
        AlterConfigs = 11, "ALTER_CONFIGS", "AlterConfigs";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE", "IdempotentWrite";
        CreateTokens = 13, "CREATE_TOKENS", "CreateTokens";
        DescribeTokens = 14, "DESCRIBE_TOKENS", "DescribeTokens";
    }
}
lenient_from_name!(AclOperation);

acl_enum! {
    /// Kafka's `AclPermissionType`.
    AclPermissionType {
        Unknown = 0, "UNKNOWN", "Unknown";
        Any = 1, "ANY", "Any";
        Deny = 2, "DENY", "Deny";
        Allow = 3, "ALLOW", "Allow";
    }
}
lenient_from_name!(AclPermissionType);

impl ResourceType {
    /// Kafka's operations per resource type (`AclEntry.supportedOperations`): what
    /// `authorized_operations` fields report and what `kafka-acls` lists.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            _ => &[],
        }
    }
}

/// An ACL: a resource pattern and an access control entry. `principal` is the
/// `type:name` string as stored (Kafka keeps it unparsed too).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    pub principal: String,
    pub host: String,
    pub operation: AclOperation,
    pub permission_type: AclPermissionType,
}

impl AclBinding {
    pub fn new(
        resource_type: ResourceType,
        resource_name: impl Into<String>,
        pattern_type: PatternType,
        principal: impl Into<String>,
        host: impl Into<String>,
        operation: AclOperation,
        permission_type: AclPermissionType,
    ) -> Self {
        AclBinding {
            resource_type,
            resource_name: resource_name.into(),
            pattern_type,
            principal: principal.into(),
            host: host.into(),
            operation,
            permission_type,
        }
    }

    /// Kafka's `AclBinding.isUnknown`.
    pub fn is_unknown(&self) -> bool {
        self.resource_type.is_unknown()
            || self.pattern_type.is_unknown()
            || self.operation.is_unknown()
            || self.permission_type.is_unknown()
    }

    /// Kafka's `toFilter`: the filter matching exactly this binding.
    pub fn to_filter(&self) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: self.resource_type,
            resource_name: Some(self.resource_name.clone()),
            pattern_type: self.pattern_type,
            principal: Some(self.principal.clone()),
            host: Some(self.host.clone()),
            operation: self.operation,
            permission_type: self.permission_type,
        }
    }
}

impl fmt::Display for AclBinding {
    /// Kafka's `AclBinding.toString`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(pattern=ResourcePattern(resourceType={}, name={}, patternType={}), \
             entry=(principal={}, host={}, operation={}, permissionType={}))",
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.principal,
            self.host,
            self.operation,
            self.permission_type
        )
    }
}

/// A DescribeAcls / DeleteAcls filter (Kafka's `AclBindingFilter`): `None` strings and
/// ANY enums match anything; [`PatternType::Match`] matches the bindings that apply to the
/// filter's resource name (the literal name, the literal `*`, and prefixes of the name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclBindingFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission_type: AclPermissionType,
}

impl AclBindingFilter {
    /// Kafka's `AclBindingFilter.ANY`.
    pub const ANY: AclBindingFilter = AclBindingFilter {
        resource_type: ResourceType::Any,
        resource_name: None,
        pattern_type: PatternType::Any,
        principal: None,
        host: None,
        operation: AclOperation::Any,
        permission_type: AclPermissionType::Any,
    };

    /// Kafka's `AclBindingFilter.matches`.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    /// Kafka's `ResourcePatternFilter.matches`.
    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != b.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, PatternType::Any | PatternType::Match)
            && self.pattern_type != b.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == b.pattern_type {
            return *name == b.resource_name;
        }
        // MATCH against a specific binding.
        match b.pattern_type {
            PatternType::Literal => *name == b.resource_name || b.resource_name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&b.resource_name),
            // Kafka throws "Unsupported PatternType" here; such a binding matches nothing.
            _ => false,
        }
    }

    /// Kafka's `AccessControlEntryFilter.matches`.
    fn matches_entry(&self, b: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == AclOperation::Any || self.operation == b.operation)
            && (self.permission_type == AclPermissionType::Any
                || self.permission_type == b.permission_type)
    }

    /// Kafka's `AclBindingFilter.isUnknown`.
    pub fn is_unknown(&self) -> bool {
        self.pattern_filter_is_unknown() || self.entry_filter_is_unknown()
    }

    fn pattern_filter_is_unknown(&self) -> bool {
        self.resource_type.is_unknown() || self.pattern_type.is_unknown()
    }

    fn entry_filter_is_unknown(&self) -> bool {
        self.operation.is_unknown() || self.permission_type.is_unknown()
    }

    /// Kafka's `findIndefiniteField`: why the filter may match more than one binding.
    pub fn find_indefinite_field(&self) -> Option<&'static str> {
        Some(match () {
            _ if self.resource_type == ResourceType::Any => "Resource type is ANY.",
            _ if self.resource_type == ResourceType::Unknown => "Resource type is UNKNOWN.",
            _ if self.resource_name.is_none() => "Resource name is NULL.",
            _ if self.pattern_type == PatternType::Match => "Resource pattern type is MATCH.",
            _ if self.pattern_type == PatternType::Unknown => "Resource pattern type is UNKNOWN.",
            _ if self.principal.is_none() => "Principal is NULL",
            _ if self.host.is_none() => "Host is NULL",
            _ if self.operation == AclOperation::Any => "Operation is ANY",
            _ if self.operation == AclOperation::Unknown => "Operation is UNKNOWN",
            _ if self.permission_type == AclPermissionType::Any => "Permission type is ANY",
            _ if self.permission_type == AclPermissionType::Unknown => "Permission type is UNKNOWN",
            _ => return None,
        })
    }

    /// Kafka's `matchesAtMostOne`.
    pub fn matches_at_most_one(&self) -> bool {
        self.find_indefinite_field().is_none()
    }

    /// The controller's DeleteAcls check (`AclControlManager.validateFilter`).
    pub fn validate_for_delete(&self) -> Result<(), AclError> {
        if self.pattern_filter_is_unknown() {
            return Err(AclError::InvalidRequest(
                "Unknown patternFilter.".to_owned(),
            ));
        }
        if self.entry_filter_is_unknown() {
            return Err(AclError::InvalidRequest("Unknown entryFilter.".to_owned()));
        }
        Ok(())
    }
}

impl Default for AclBindingFilter {
    fn default() -> Self {
        Self::ANY
    }
}

impl From<&AclBinding> for AclBindingFilter {
    fn from(binding: &AclBinding) -> Self {
        binding.to_filter()
    }
}

/// The CreateAcls request decoder's check, on the raw codes of one creation: a code of
/// exactly 0 (UNKNOWN) fails the whole request in Kafka. (A code Kafka does not know,
/// such as 99, passes here and becomes UNKNOWN, which [`validate_for_create`] rejects.)
pub fn validate_create_codes(
    resource_type: i8,
    pattern_type: i8,
    operation: i8,
    permission_type: i8,
) -> Result<(), AclError> {
    if [resource_type, pattern_type, operation, permission_type].contains(&0) {
        return Err(AclError::UnknownElements(format!(
            "resourceType={resource_type}, patternType={pattern_type}, \
             operation={operation}, permissionType={permission_type}"
        )));
    }
    Ok(())
}

/// Kafka's CreateAcls checks of one binding, in Kafka's order: building the binding
/// (`ResourcePattern` / `AccessControlEntry` refuse ANY and MATCH), the request handler
/// (cluster resource name, empty name) and the controller (`validateNewAcl`: resource
/// type, pattern type LITERAL or PREFIXED, operation, permission, principal with a colon).
pub fn validate_for_create(binding: &AclBinding) -> Result<(), AclError> {
    if binding.resource_type == ResourceType::Any {
        return Err(AclError::NotSpecific("resourceType must not be ANY"));
    }
    match binding.pattern_type {
        PatternType::Match => return Err(AclError::NotSpecific("patternType must not be MATCH")),
        PatternType::Any => return Err(AclError::NotSpecific("patternType must not be ANY")),
        _ => {}
    }
    if binding.operation == AclOperation::Any {
        return Err(AclError::NotSpecific("operation must not be ANY"));
    }
    if binding.permission_type == AclPermissionType::Any {
        return Err(AclError::NotSpecific("permissionType must not be ANY"));
    }
    let invalid = |msg: String| Err(AclError::InvalidRequest(msg));
    if binding.resource_type == ResourceType::Cluster && binding.resource_name != CLUSTER_NAME {
        return invalid(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    if binding.resource_name.is_empty() {
        return invalid("Invalid empty resource name".to_owned());
    }
    if matches!(
        binding.resource_type,
        ResourceType::Unknown | ResourceType::Any
    ) {
        return invalid(format!("Invalid resourceType {}", binding.resource_type));
    }
    if !binding.pattern_type.is_specific() {
        return invalid(format!("Invalid patternType {}", binding.pattern_type));
    }
    if matches!(binding.operation, AclOperation::Unknown | AclOperation::Any) {
        return invalid(format!("Invalid operation {}", binding.operation));
    }
    if !matches!(
        binding.permission_type,
        AclPermissionType::Deny | AclPermissionType::Allow
    ) {
        return invalid(format!(
            "Invalid permissionType {}",
            binding.permission_type
        ));
    }
    if !binding.principal.contains(':') {
        // KAFKA-18051 (Kafka 4.0): principals must be `type:name`.
        return invalid(format!(
            "Could not parse principal from `{}` (no colon is present separating the \
             principal type from the principal name)",
            binding.principal
        ));
    }
    Ok(())
}

/// The client address as Java's `InetAddress.getHostAddress()` prints it, which is what
/// ACL hosts are compared with: dotted IPv4 (also for an IPv4-mapped IPv6 address, which
/// Java reports as an `Inet4Address`), and IPv6 as eight lowercase hex groups without
/// leading zeros and without `::` compression (`0:0:0:0:0:0:0:1`).
pub fn java_host_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6
                .segments()
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        },
    }
}

/// The authorizer's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// `super.users`, each `type:name` (`User:admin`).
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerSettings {
    /// From the broker configs, as `StandardAuthorizer.configure`: `super.users` is a
    /// `;`-separated list (entries trimmed, empty ones skipped, each must parse as a
    /// principal); `allow.everyone.if.no.acl.found` is true only for `true` in any case.
    pub fn from_configs(
        super_users: Option<&str>,
        allow_everyone_if_no_acl_found: Option<&str>,
    ) -> Result<Self, AclError> {
        Ok(AuthorizerSettings {
            super_users: match super_users {
                Some(value) => Self::parse_super_users(value)?,
                None => Vec::new(),
            },
            allow_everyone_if_no_acl_found: allow_everyone_if_no_acl_found
                .is_some_and(|v| java_trim(v).eq_ignore_ascii_case("true")),
        })
    }

    /// Kafka's `super.users` parsing.
    pub fn parse_super_users(value: &str) -> Result<Vec<String>, AclError> {
        let mut users = Vec::new();
        for entry in value.split(';') {
            let entry = java_trim(entry);
            if entry.is_empty() {
                continue;
            }
            KafkaPrincipal::parse(entry)
                .map_err(|_| AclError::InvalidSuperUser(entry.to_owned()))?;
            users.push(entry.to_owned());
        }
        Ok(users)
    }
}

/// Java's `String.trim()`.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// One ACL in the index, with its principal split once (Kafka's `StandardAcl.kafkaPrincipal`,
/// at the first colon). A principal without a colon makes Kafka's authorizer throw on
/// every request that reaches the ACL; here it matches no principal (but still counts as
/// an ACL of its resource).
#[derive(Debug, Clone)]
struct IndexedAcl {
    /// As stored, to find the ACL again on removal.
    principal_text: String,
    principal: Option<(String, String)>,
    host: String,
    operation: AclOperation,
    permission_type: AclPermissionType,
}

impl IndexedAcl {
    fn new(b: &AclBinding) -> Self {
        IndexedAcl {
            principal_text: b.principal.clone(),
            principal: b
                .principal
                .split_once(':')
                .map(|(t, n)| (t.to_owned(), n.to_owned())),
            host: b.host.clone(),
            operation: b.operation,
            permission_type: b.permission_type,
        }
    }

    fn same_entry(&self, b: &AclBinding) -> bool {
        self.principal_text == b.principal
            && self.host == b.host
            && self.operation == b.operation
            && self.permission_type == b.permission_type
    }
}

/// The ACLs of one resource type, by name: literal (including `*`) and prefixed.
#[derive(Debug, Clone, Default)]
struct TypeIndex {
    literal: HashMap<String, Vec<IndexedAcl>>,
    prefixed: HashMap<String, Vec<IndexedAcl>>,
    /// Byte lengths of the prefixed names, with how many names have each, so a lookup
    /// tries only lengths that exist.
    prefix_lengths: BTreeMap<usize, usize>,
}

/// Kafka's `StandardAuthorizer` decision logic over a set of ACLs.
///
/// ACLs are indexed by resource type and name: `authorize` looks up the literal name, the
/// literal `*` and each prefix length that some PREFIXED ACL of the type has, so its cost
/// does not grow with the number of unrelated ACLs. Bindings with an ANY or MATCH pattern
/// type (which Kafka never stores) are kept for listing but never match a request.
#[derive(Debug, Clone, Default)]
pub struct AclAuthorizer {
    bindings: BTreeSet<AclBinding>,
    by_type: HashMap<ResourceType, TypeIndex>,
    super_users: HashSet<String>,
    allow_everyone_if_no_acl_found: bool,
}

/// What the ACLs of a resource say about a request.
#[derive(Debug, Default)]
struct Verdict {
    allow: bool,
    deny: bool,
    /// Some ACL applies to the resource name, whatever its principal or operation.
    has_resource_acls: bool,
}

impl AclAuthorizer {
    pub fn new(
        bindings: impl IntoIterator<Item = AclBinding>,
        settings: AuthorizerSettings,
    ) -> Self {
        let mut authorizer = AclAuthorizer {
            super_users: settings.super_users.into_iter().collect(),
            allow_everyone_if_no_acl_found: settings.allow_everyone_if_no_acl_found,
            ..Default::default()
        };
        for binding in bindings {
            authorizer.add(binding);
        }
        authorizer
    }

    /// Replaces the configuration, keeping the ACLs.
    pub fn set_settings(&mut self, settings: AuthorizerSettings) {
        self.super_users = settings.super_users.into_iter().collect();
        self.allow_everyone_if_no_acl_found = settings.allow_everyone_if_no_acl_found;
    }

    /// Adds an ACL; false if it was already there (Kafka stores each distinct ACL once).
    pub fn add(&mut self, binding: AclBinding) -> bool {
        if self.bindings.contains(&binding) {
            return false;
        }
        if let Some(kind) = Self::index_kind(&binding) {
            let index = self.by_type.entry(binding.resource_type).or_default();
            let acl = IndexedAcl::new(&binding);
            match kind {
                PatternType::Literal => index
                    .literal
                    .entry(binding.resource_name.clone())
                    .or_default()
                    .push(acl),
                _ => {
                    let list = index
                        .prefixed
                        .entry(binding.resource_name.clone())
                        .or_default();
                    if list.is_empty() {
                        *index
                            .prefix_lengths
                            .entry(binding.resource_name.len())
                            .or_default() += 1;
                    }
                    list.push(acl);
                }
            }
        }
        self.bindings.insert(binding);
        true
    }

    /// Removes an ACL; false if it was not there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        if !self.bindings.remove(binding) {
            return false;
        }
        let Some(kind) = Self::index_kind(binding) else {
            return true;
        };
        let Some(index) = self.by_type.get_mut(&binding.resource_type) else {
            return true;
        };
        let map = if kind == PatternType::Literal {
            &mut index.literal
        } else {
            &mut index.prefixed
        };
        if let Some(list) = map.get_mut(&binding.resource_name) {
            if let Some(pos) = list.iter().position(|a| a.same_entry(binding)) {
                list.swap_remove(pos);
            }
            if list.is_empty() {
                map.remove(&binding.resource_name);
                if kind == PatternType::Prefixed {
                    let len = binding.resource_name.len();
                    if let Some(count) = index.prefix_lengths.get_mut(&len) {
                        *count -= 1;
                        if *count == 0 {
                            index.prefix_lengths.remove(&len);
                        }
                    }
                }
            }
        }
        if index.literal.is_empty() && index.prefixed.is_empty() {
            self.by_type.remove(&binding.resource_type);
        }
        true
    }

    /// Removes every ACL the filter matches (DeleteAcls), returning them in order.
    pub fn remove_matching(&mut self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let matched = self.acls(filter);
        for binding in &matched {
            self.remove(binding);
        }
        matched
    }

    /// The ACLs the filter matches (DescribeAcls), in [`AclBinding`] order (Kafka's
    /// response order is a hash map's, so none is promised).
    pub fn acls(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.bindings
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// Every ACL, in [`AclBinding`] order.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.bindings.iter()
    }

    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Whether `principal` is in `super.users` (compared as `type:name`).
    pub fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        self.super_users.contains(&principal.to_string())
    }

    fn index_kind(binding: &AclBinding) -> Option<PatternType> {
        binding
            .pattern_type
            .is_specific()
            .then_some(binding.pattern_type)
    }

    /// Kafka's `StandardAuthorizer.authorize` of one action on a literal resource name:
    /// super users are allowed; otherwise any matching DENY denies, else any matching
    /// ALLOW allows, else DENY if the resource has any ACL at all (any principal or
    /// operation), else `allow.everyone.if.no.acl.found`.
    ///
    /// An ACL applies to the resource when its name equals it (LITERAL), is `*`
    /// (LITERAL; as in Kafka, not for other names starting with `*`), or is a prefix of
    /// it (PREFIXED); it matches the request when its
    /// principal is the request's (type and name) or `User:*`, its host is `host` or `*`,
    /// and its operation is the action's, or ALL, or (ALLOW ACLs only) implies it: READ,
    /// WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS.
    /// `host` is the client address as Java prints it (see [`java_host_address`]).
    pub fn authorize(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let verdict = self.verdict(principal, host, operation, resource_type, resource_name);
        if verdict.deny {
            false
        } else if verdict.allow {
            true
        } else if verdict.has_resource_acls {
            false
        } else {
            self.allow_everyone_if_no_acl_found
        }
    }

    fn verdict(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        let Some(index) = self.by_type.get(&resource_type) else {
            return verdict;
        };
        let check = |acls: Option<&Vec<IndexedAcl>>, verdict: &mut Verdict| {
            for acl in acls.into_iter().flatten() {
                verdict.has_resource_acls = true;
                match acl_result(acl, principal, host, operation) {
                    Some(true) => verdict.allow = true,
                    Some(false) => verdict.deny = true,
                    None => {}
                }
            }
        };
        check(index.literal.get(name), &mut verdict);
        for &len in index.prefix_lengths.keys() {
            if len > name.len() {
                break;
            }
            if name.is_char_boundary(len) {
                check(index.prefixed.get(&name[..len]), &mut verdict);
            }
        }
        // Kafka's scan over its sorted ACLs skips the literal `*` ACLs for a name that
        // starts with `*` (it takes `*` there for a literal prefix of the name), so they
        // do not apply to such names, not even as "some ACL exists". Mirrored; for `*`
        // itself they were found above as the literal name.
        if !name.starts_with('*') {
            check(index.literal.get(WILDCARD), &mut verdict);
        }
        verdict
    }

    /// Kafka's `Authorizer.authorizeByResourceType` (the default the StandardAuthorizer
    /// uses): whether the principal may perform `operation` on at least one resource of
    /// the type, e.g. IDEMPOTENT_WRITE / WRITE on some topic. First `authorize` on a
    /// literal resource named `hardcode` (so super users, and `allow.everyone...` when no
    /// ACL applies to that name, are allowed); then, over the type's ACLs for this
    /// principal (or `User:*`) and host (or `*`) whose operation is `operation` or ALL (no
    /// implied operations here): a DENY on literal `*` denies; an ALLOW on literal `*`
    /// allows; else some allowed literal name not denied literally, or allowed prefix,
    /// with no denied prefix that is a prefix of it, allows.
    ///
    /// Kafka throws `IllegalArgumentException` for an ANY or UNKNOWN operation or
    /// resource type; this returns false for them.
    pub fn authorize_by_resource_type(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if matches!(resource_type, ResourceType::Any | ResourceType::Unknown)
            || matches!(operation, AclOperation::Any | AclOperation::Unknown)
        {
            return false;
        }
        if self.authorize(principal, host, operation, resource_type, "hardcode") {
            return true;
        }
        let Some(index) = self.by_type.get(&resource_type) else {
            return false;
        };
        let mut deny_literal: HashSet<&str> = HashSet::new();
        let mut deny_prefixed: HashSet<&str> = HashSet::new();
        let mut allow_literal: Vec<&str> = Vec::new();
        let mut allow_prefixed: Vec<&str> = Vec::new();
        let mut wildcard_allow = false;
        let applies = |acl: &IndexedAcl| {
            (acl.host == host || acl.host == WILDCARD)
                && match &acl.principal {
                    Some((t, n)) => {
                        (*t == principal.principal_type && *n == principal.name)
                            || (t == KafkaPrincipal::USER_TYPE && n == WILDCARD)
                    }
                    None => false,
                }
                && (acl.operation == operation || acl.operation == AclOperation::All)
        };
        for (patterns, prefixed) in [(&index.literal, false), (&index.prefixed, true)] {
            for (name, acls) in patterns {
                for acl in acls.iter().filter(|a| applies(a)) {
                    match (acl.permission_type, prefixed) {
                        (AclPermissionType::Deny, false) if name == WILDCARD => return false,
                        (AclPermissionType::Deny, false) => {
                            deny_literal.insert(name);
                        }
                        (AclPermissionType::Deny, true) => {
                            deny_prefixed.insert(name);
                        }
                        (AclPermissionType::Allow, false) if name == WILDCARD => {
                            wildcard_allow = true
                        }
                        (AclPermissionType::Allow, false) => allow_literal.push(name),
                        (AclPermissionType::Allow, true) => allow_prefixed.push(name),
                        _ => {}
                    }
                }
            }
        }
        if wildcard_allow {
            return true;
        }
        let dominated = |allowed: &str| {
            allowed
                .char_indices()
                .map(|(i, c)| &allowed[..i + c.len_utf8()])
                .any(|prefix| deny_prefixed.contains(prefix))
        };
        allow_literal
            .iter()
            .any(|name| !deny_literal.contains(name) && !dominated(name))
            || allow_prefixed.iter().any(|name| !dominated(name))
    }
}

/// Kafka's `StandardAuthorizerData.findResult` for an ACL already known to apply to the
/// resource: None if it does not match the request, else whether it allows.
fn acl_result(
    acl: &IndexedAcl,
    principal: &KafkaPrincipal,
    host: &str,
    operation: AclOperation,
) -> Option<bool> {
    let (acl_type, acl_name) = acl.principal.as_ref()?;
    let principal_matches = (*acl_type == principal.principal_type && *acl_name == principal.name)
        || (acl_type == KafkaPrincipal::USER_TYPE && acl_name == WILDCARD);
    if !principal_matches {
        return None;
    }
    if acl.host != WILDCARD && acl.host != host {
        return None;
    }
    let allow = acl.permission_type == AclPermissionType::Allow;
    if acl.operation != AclOperation::All {
        let implied = allow
            && match operation {
                AclOperation::Describe => matches!(
                    acl.operation,
                    AclOperation::Describe
                        | AclOperation::Read
                        | AclOperation::Write
                        | AclOperation::Delete
                        | AclOperation::Alter
                ),
                AclOperation::DescribeConfigs => matches!(
                    acl.operation,
                    AclOperation::DescribeConfigs | AclOperation::AlterConfigs
                ),
                _ => false,
            };
        if !implied && acl.operation != operation {
            return None;
        }
    }
    // Kafka: anything but ALLOW (DENY, or an UNKNOWN permission) denies.
    Some(allow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AclOperation as Op;
    use AclPermissionType as Perm;
    use PatternType as Pat;
    use ResourceType as Res;

    fn acl(
        rt: Res,
        name: &str,
        pt: Pat,
        principal: &str,
        host: &str,
        op: Op,
        perm: Perm,
    ) -> AclBinding {
        AclBinding::new(rt, name, pt, principal, host, op, perm)
    }

    fn topic(name: &str, pt: Pat, principal: &str, op: Op, perm: Perm) -> AclBinding {
        acl(Res::Topic, name, pt, principal, "*", op, perm)
    }

    fn alice() -> KafkaPrincipal {
        KafkaPrincipal::user("alice")
    }

    fn authorizer(acls: Vec<AclBinding>) -> AclAuthorizer {
        AclAuthorizer::new(acls, AuthorizerSettings::default())
    }

    const HOST: &str = "192.168.0.1";

    #[test]
    fn enum_codes_and_names() {
        for (i, v) in ResourceType::VALUES.iter().enumerate() {
            assert_eq!(v.code(), i as i8);
            assert_eq!(ResourceType::from_code(v.code()), *v);
        }
        assert_eq!(ResourceType::from_code(99), Res::Unknown);
        assert_eq!(AclOperation::from_code(14), Op::DescribeTokens);
        assert_eq!(AclOperation::from_code(-1), Op::Unknown);
        assert_eq!(PatternType::from_code(4), Pat::Prefixed);
        assert_eq!(AclPermissionType::from_code(3), Perm::Allow);
        assert_eq!(Res::TransactionalId.to_string(), "TRANSACTIONAL_ID");
        assert_eq!(Op::IdempotentWrite.to_string(), "IDEMPOTENT_WRITE");
        assert_eq!(Op::ClusterAction.pascal_name(), "ClusterAction");
        assert_eq!(Res::from_name("transactional_id"), Res::TransactionalId);
        assert_eq!(Res::from_name("TransactionalId"), Res::TransactionalId);
        assert_eq!(Res::from_name("TRANSACTIONALID"), Res::TransactionalId);
        assert_eq!(Res::from_name("nope"), Res::Unknown);
        assert_eq!(
            "describe_configs".parse::<Op>().unwrap(),
            Op::DescribeConfigs
        );
        assert_eq!("Allow".parse::<Perm>().unwrap(), Perm::Allow);
        // PatternType.fromString is case-sensitive.
        assert_eq!(Pat::from_name("PREFIXED"), Pat::Prefixed);
        assert_eq!(Pat::from_name("prefixed"), Pat::Unknown);
        for (i, v) in AclOperation::VALUES.iter().enumerate() {
            assert_eq!(v.code(), i as i8);
        }
    }

    #[test]
    fn binding_display_is_kafkas() {
        let b = topic("foo", Pat::Literal, "User:alice", Op::Read, Perm::Allow);
        assert_eq!(
            b.to_string(),
            "(pattern=ResourcePattern(resourceType=TOPIC, name=foo, patternType=LITERAL), \
             entry=(principal=User:alice, host=*, operation=READ, permissionType=ALLOW))"
        );
    }

    #[test]
    fn filter_matching() {
        let literal = topic("foo", Pat::Literal, "User:alice", Op::Read, Perm::Allow);
        let wildcard = topic("*", Pat::Literal, "User:alice", Op::Read, Perm::Allow);
        let prefixed = topic("fo", Pat::Prefixed, "User:alice", Op::Read, Perm::Allow);
        let other = topic("bar", Pat::Prefixed, "User:bob", Op::Write, Perm::Deny);
        let group = acl(
            Res::Group,
            "foo",
            Pat::Literal,
            "User:alice",
            "*",
            Op::Read,
            Perm::Allow,
        );
        let all = [&literal, &wildcard, &prefixed, &other, &group];
        let matching = |f: &AclBindingFilter| -> Vec<&AclBinding> {
            all.iter().copied().filter(|b| f.matches(b)).collect()
        };

        assert_eq!(matching(&AclBindingFilter::ANY).len(), 5);
        let mut f = AclBindingFilter {
            resource_type: Res::Topic,
            resource_name: Some("foo".into()),
            pattern_type: Pat::Match,
            ..AclBindingFilter::ANY
        };
        // MATCH: the literal name, the literal wildcard and prefixes of the name.
        assert_eq!(matching(&f), vec![&literal, &wildcard, &prefixed]);
        // ANY: exact name, any pattern type.
        f.pattern_type = Pat::Any;
        assert_eq!(matching(&f), vec![&literal]);
        f.resource_name = Some("fo".into());
        assert_eq!(matching(&f), vec![&prefixed]);
        // A specific pattern type: exact name and type.
        f.pattern_type = Pat::Literal;
        assert!(matching(&f).is_empty());
        f.resource_name = None;
        assert_eq!(matching(&f), vec![&literal, &wildcard]);
        // ANY resource type with a name.
        let f = AclBindingFilter {
            resource_name: Some("foo".into()),
            ..AclBindingFilter::ANY
        };
        assert_eq!(matching(&f), vec![&literal, &group]);
        // Entry fields.
        let f = AclBindingFilter {
            principal: Some("User:bob".into()),
            ..AclBindingFilter::ANY
        };
        assert_eq!(matching(&f), vec![&other]);
        let f = AclBindingFilter {
            operation: Op::Write,
            permission_type: Perm::Deny,
            host: Some("*".into()),
            ..AclBindingFilter::ANY
        };
        assert_eq!(matching(&f), vec![&other]);
        let f = AclBindingFilter {
            operation: Op::Write,
            permission_type: Perm::Allow,
            ..AclBindingFilter::ANY
        };
        assert!(matching(&f).is_empty());
        // A binding's own filter matches it; a MATCH filter for a name that only a prefix
        // covers.
        assert!(literal.to_filter().matches(&literal));
        assert!(literal.to_filter().matches_at_most_one());
        let f = AclBindingFilter {
            resource_name: Some("barn".into()),
            pattern_type: Pat::Match,
            ..AclBindingFilter::ANY
        };
        assert_eq!(matching(&f), vec![&wildcard, &other]);
        assert_eq!(
            AclBindingFilter::ANY.find_indefinite_field(),
            Some("Resource type is ANY.")
        );
    }

    #[test]
    fn delete_filter_validation() {
        assert!(AclBindingFilter::ANY.validate_for_delete().is_ok());
        let f = AclBindingFilter {
            pattern_type: Pat::Unknown,
            ..AclBindingFilter::ANY
        };
        assert_eq!(
            f.validate_for_delete().unwrap_err(),
            AclError::InvalidRequest("Unknown patternFilter.".into())
        );
        let f = AclBindingFilter {
            operation: Op::Unknown,
            ..AclBindingFilter::ANY
        };
        assert_eq!(
            f.validate_for_delete().unwrap_err().to_string(),
            "Unknown entryFilter."
        );
    }

    #[test]
    fn create_validation() {
        let ok = topic("foo", Pat::Literal, "User:alice", Op::Read, Perm::Allow);
        assert!(validate_for_create(&ok).is_ok());
        let check = |f: &dyn Fn(&mut AclBinding)| {
            let mut b = ok.clone();
            f(&mut b);
            validate_for_create(&b).unwrap_err()
        };
        let e = check(&|b| b.pattern_type = Pat::Match);
        assert_eq!(e, AclError::NotSpecific("patternType must not be MATCH"));
        assert_eq!(e.error_code(), -1);
        assert_eq!(e.error_message(), None);
        assert_eq!(
            check(&|b| b.resource_type = Res::Any).to_string(),
            "resourceType must not be ANY"
        );
        assert_eq!(check(&|b| b.operation = Op::Any).error_code(), -1);
        assert_eq!(check(&|b| b.permission_type = Perm::Any).error_code(), -1);
        let e = check(&|b| b.resource_type = Res::Cluster);
        assert_eq!(
            e.to_string(),
            "The only valid name for the CLUSTER resource is kafka-cluster"
        );
        assert_eq!(e.error_code(), 42);
        let mut cluster = ok.clone();
        cluster.resource_type = Res::Cluster;
        cluster.resource_name = CLUSTER_NAME.into();
        assert!(validate_for_create(&cluster).is_ok());
        assert_eq!(
            check(&|b| b.resource_name.clear()).to_string(),
            "Invalid empty resource name"
        );
        assert_eq!(
            check(&|b| b.resource_type = Res::Unknown).to_string(),
            "Invalid resourceType UNKNOWN"
        );
        assert_eq!(
            check(&|b| b.pattern_type = Pat::Unknown).to_string(),
            "Invalid patternType UNKNOWN"
        );
        assert_eq!(
            check(&|b| b.operation = Op::Unknown).to_string(),
            "Invalid operation UNKNOWN"
        );
        assert_eq!(
            check(&|b| b.permission_type = Perm::Unknown).to_string(),
            "Invalid permissionType UNKNOWN"
        );
        let e = check(&|b| b.principal = "alice".into());
        assert_eq!(
            e.to_string(),
            "Could not parse principal from `alice` (no colon is present separating the \
             principal type from the principal name)"
        );
        assert_eq!(e.error_code(), 42);
        // The cluster-name check comes before the controller's checks.
        let e = check(&|b| {
            b.resource_type = Res::Cluster;
            b.operation = Op::Unknown;
        });
        assert!(e.to_string().starts_with("The only valid name"));
        assert!(validate_create_codes(2, 3, 3, 3).is_ok());
        assert!(validate_create_codes(2, 99, 3, 3).is_ok());
        let e = validate_create_codes(2, 0, 3, 3).unwrap_err();
        assert_eq!(e.error_code(), 42);
    }

    #[test]
    fn super_users_and_settings() {
        let s = AuthorizerSettings::from_configs(Some(" User:admin ; ;User:ops;"), Some(" TRUE "))
            .unwrap();
        assert_eq!(s.super_users, vec!["User:admin", "User:ops"]);
        assert!(s.allow_everyone_if_no_acl_found);
        assert!(
            !AuthorizerSettings::from_configs(None, Some("yes"))
                .unwrap()
                .allow_everyone_if_no_acl_found
        );
        assert_eq!(
            AuthorizerSettings::from_configs(Some("User:a;bob"), None).unwrap_err(),
            AclError::InvalidSuperUser("bob".into())
        );

        // A super user is allowed even against a DENY.
        let a = AclAuthorizer::new(
            vec![topic("t", Pat::Literal, "User:*", Op::All, Perm::Deny)],
            s,
        );
        assert!(a.authorize(
            &KafkaPrincipal::user("admin"),
            HOST,
            Op::Write,
            Res::Topic,
            "t"
        ));
        assert!(!a.authorize(&alice(), HOST, Op::Write, Res::Topic, "t"));
        // Compared as type:name.
        assert!(!a.authorize(
            &KafkaPrincipal::new("Group", "admin"),
            HOST,
            Op::Write,
            Res::Topic,
            "t"
        ));
    }

    #[test]
    fn deny_overrides_allow() {
        let a = authorizer(vec![
            topic("t", Pat::Literal, "User:alice", Op::Read, Perm::Allow),
            topic("t", Pat::Literal, "User:alice", Op::Read, Perm::Deny),
        ]);
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "t"));
        // A wildcard DENY (any resource, any principal) overrides a specific ALLOW.
        let a = authorizer(vec![
            topic("t", Pat::Literal, "User:alice", Op::Read, Perm::Allow),
            topic("*", Pat::Literal, "User:*", Op::Read, Perm::Deny),
        ]);
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "t"));
        // A prefixed DENY overrides a literal ALLOW.
        let a = authorizer(vec![
            topic(
                "team-a.orders",
                Pat::Literal,
                "User:alice",
                Op::Write,
                Perm::Allow,
            ),
            topic(
                "team-a.",
                Pat::Prefixed,
                "User:alice",
                Op::Write,
                Perm::Deny,
            ),
        ]);
        assert!(!a.authorize(&alice(), HOST, Op::Write, Res::Topic, "team-a.orders"));
    }

    #[test]
    fn literal_prefixed_and_wildcard_resources() {
        let a = authorizer(vec![
            topic("orders", Pat::Literal, "User:alice", Op::Read, Perm::Allow),
            topic("team-", Pat::Prefixed, "User:alice", Op::Write, Perm::Allow),
            topic("*", Pat::Literal, "User:alice", Op::Describe, Perm::Allow),
            topic("x*", Pat::Literal, "User:alice", Op::Delete, Perm::Allow),
        ]);
        let can = |op, name| a.authorize(&alice(), HOST, op, Res::Topic, name);
        assert!(can(Op::Read, "orders"));
        assert!(!can(Op::Read, "orders2"), "a literal is not a prefix");
        assert!(can(Op::Write, "team-a"));
        assert!(can(Op::Write, "team-"));
        assert!(!can(Op::Write, "team"));
        assert!(can(Op::Describe, "anything"));
        // `*` is a wildcard only as a literal name on its own.
        assert!(can(Op::Delete, "x*"));
        assert!(!can(Op::Delete, "xy"));
        // Another resource type is unaffected.
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Group, "orders"));
    }

    #[test]
    fn wildcard_does_not_apply_to_names_starting_with_a_star() {
        // Kafka 4.1's StandardAuthorizer behaves so (checked against it).
        let settings = AuthorizerSettings {
            super_users: vec![],
            allow_everyone_if_no_acl_found: true,
        };
        let a = AclAuthorizer::new(
            vec![topic("*", Pat::Literal, "User:bob", Op::Read, Perm::Allow)],
            settings,
        );
        let bob = KafkaPrincipal::user("bob");
        assert!(a.authorize(&bob, HOST, Op::Read, Res::Topic, "x"));
        assert!(a.authorize(&bob, HOST, Op::Read, Res::Topic, "*"));
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "x"));
        // No ACL applies to `*x`: alice falls to allow.everyone, bob is not matched either.
        assert!(a.authorize(&alice(), HOST, Op::Read, Res::Topic, "*x"));
        let a = authorizer(vec![topic(
            "*",
            Pat::Literal,
            "User:bob",
            Op::Read,
            Perm::Allow,
        )]);
        assert!(!a.authorize(&bob, HOST, Op::Read, Res::Topic, "*x"));
    }

    #[test]
    fn principal_and_host_matching() {
        let a = authorizer(vec![
            acl(
                Res::Topic,
                "t",
                Pat::Literal,
                "User:*",
                "10.0.0.1",
                Op::Read,
                Perm::Allow,
            ),
            acl(
                Res::Topic,
                "u",
                Pat::Literal,
                "User:bob",
                "*",
                Op::Read,
                Perm::Allow,
            ),
        ]);
        assert!(a.authorize(&alice(), "10.0.0.1", Op::Read, Res::Topic, "t"));
        assert!(!a.authorize(&alice(), "10.0.0.2", Op::Read, Res::Topic, "t"));
        // `User:*` matches any principal, of any type.
        assert!(a.authorize(
            &KafkaPrincipal::new("Group", "g"),
            "10.0.0.1",
            Op::Read,
            Res::Topic,
            "t"
        ));
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "u"));
        assert!(a.authorize(
            &KafkaPrincipal::user("bob"),
            HOST,
            Op::Read,
            Res::Topic,
            "u"
        ));
        // The type counts.
        assert!(!a.authorize(
            &KafkaPrincipal::new("Group", "bob"),
            HOST,
            Op::Read,
            Res::Topic,
            "u"
        ));
    }

    #[test]
    fn implied_operations() {
        let a = authorizer(vec![
            topic("r", Pat::Literal, "User:alice", Op::Read, Perm::Allow),
            topic("w", Pat::Literal, "User:alice", Op::Write, Perm::Allow),
            topic("d", Pat::Literal, "User:alice", Op::Delete, Perm::Allow),
            topic("a", Pat::Literal, "User:alice", Op::Alter, Perm::Allow),
            topic(
                "c",
                Pat::Literal,
                "User:alice",
                Op::AlterConfigs,
                Perm::Allow,
            ),
            topic("all", Pat::Literal, "User:alice", Op::All, Perm::Allow),
            topic(
                "create",
                Pat::Literal,
                "User:alice",
                Op::Create,
                Perm::Allow,
            ),
        ]);
        let can = |op, name| a.authorize(&alice(), HOST, op, Res::Topic, name);
        for name in ["r", "w", "d", "a", "all"] {
            assert!(can(Op::Describe, name), "{name}");
        }
        assert!(!can(Op::Describe, "create"));
        assert!(!can(Op::Describe, "c"));
        assert!(can(Op::DescribeConfigs, "c"));
        assert!(can(Op::DescribeConfigs, "all"));
        assert!(!can(Op::DescribeConfigs, "r"));
        assert!(!can(Op::Write, "r"), "READ does not imply WRITE");
        for op in [
            Op::Read,
            Op::Write,
            Op::Create,
            Op::Delete,
            Op::Alter,
            Op::AlterConfigs,
        ] {
            assert!(can(op, "all"));
        }
        // Implication is for ALLOW only: DENY READ does not deny DESCRIBE ...
        let a = authorizer(vec![
            topic("t", Pat::Literal, "User:alice", Op::Read, Perm::Deny),
            topic("t", Pat::Literal, "User:alice", Op::Describe, Perm::Allow),
        ]);
        assert!(a.authorize(&alice(), HOST, Op::Describe, Res::Topic, "t"));
        // ... but DENY ALL denies everything.
        let a = authorizer(vec![
            topic("t", Pat::Literal, "User:alice", Op::All, Perm::Deny),
            topic("t", Pat::Literal, "User:alice", Op::Read, Perm::Allow),
        ]);
        assert!(!a.authorize(&alice(), HOST, Op::Describe, Res::Topic, "t"));
    }

    #[test]
    fn allow_everyone_if_no_acl_found() {
        let settings = AuthorizerSettings {
            super_users: vec![],
            allow_everyone_if_no_acl_found: true,
        };
        let a = AclAuthorizer::new(
            vec![
                topic("guarded", Pat::Literal, "User:bob", Op::Write, Perm::Allow),
                topic("team-", Pat::Prefixed, "User:bob", Op::Write, Perm::Allow),
            ],
            settings.clone(),
        );
        // No ACL on the resource at all: allowed.
        assert!(a.authorize(&alice(), HOST, Op::Read, Res::Topic, "open"));
        assert!(a.authorize(&alice(), HOST, Op::Read, Res::Group, "guarded"));
        // Any ACL on the resource (other principal, other operation, or a prefix): denied.
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "guarded"));
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "team-x"));
        // Default deny.
        let a = authorizer(vec![]);
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "open"));
        // A wildcard ACL counts as an ACL of every resource.
        let a = AclAuthorizer::new(
            vec![topic("*", Pat::Literal, "User:bob", Op::Read, Perm::Allow)],
            settings,
        );
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "open"));
    }

    #[test]
    fn incremental_add_and_remove() {
        let mut a = authorizer(vec![]);
        let allow = topic("team-", Pat::Prefixed, "User:alice", Op::Read, Perm::Allow);
        let deny = topic(
            "team-secret",
            Pat::Literal,
            "User:alice",
            Op::Read,
            Perm::Deny,
        );
        assert!(a.add(allow.clone()));
        assert!(!a.add(allow.clone()));
        assert!(a.add(deny.clone()));
        assert_eq!(a.len(), 2);
        assert!(a.authorize(&alice(), HOST, Op::Read, Res::Topic, "team-a"));
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "team-secret"));
        assert!(a.remove(&deny));
        assert!(!a.remove(&deny));
        assert!(a.authorize(&alice(), HOST, Op::Read, Res::Topic, "team-secret"));
        let removed = a.remove_matching(&AclBindingFilter {
            resource_name: Some("team-x".into()),
            pattern_type: Pat::Match,
            ..AclBindingFilter::ANY
        });
        assert_eq!(removed, vec![allow]);
        assert!(a.is_empty());
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "team-a"));
        assert!(a.by_type.is_empty());
    }

    #[test]
    fn principal_without_colon_matches_nothing_but_counts() {
        let settings = AuthorizerSettings {
            super_users: vec![],
            allow_everyone_if_no_acl_found: true,
        };
        let a = AclAuthorizer::new(
            vec![topic("t", Pat::Literal, "alice", Op::Read, Perm::Allow)],
            settings,
        );
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "t"));
    }

    #[test]
    fn many_acls_and_long_names() {
        let mut acls = Vec::new();
        for i in 0..2000 {
            acls.push(topic(
                &format!("p{i}-"),
                Pat::Prefixed,
                "User:bob",
                Op::Read,
                Perm::Allow,
            ));
            acls.push(topic(
                &format!("t{i}"),
                Pat::Literal,
                "User:bob",
                Op::Read,
                Perm::Allow,
            ));
        }
        acls.push(topic(
            "p7-",
            Pat::Prefixed,
            "User:alice",
            Op::Read,
            Perm::Allow,
        ));
        let a = authorizer(acls);
        assert!(a.authorize(&alice(), HOST, Op::Read, Res::Topic, "p7-x"));
        assert!(!a.authorize(&alice(), HOST, Op::Read, Res::Topic, "p8-x"));
        let long = format!("p7-{}", "é".repeat(50_000));
        assert!(a.authorize(&alice(), HOST, Op::Read, Res::Topic, &long));
    }

    #[test]
    fn authorize_by_resource_type() {
        let by_type = |acls: Vec<AclBinding>, op| {
            authorizer(acls).authorize_by_resource_type(&alice(), HOST, op, Res::Topic)
        };
        let allow = |name: &str, pt| topic(name, pt, "User:alice", Op::Write, Perm::Allow);
        let deny = |name: &str, pt| topic(name, pt, "User:alice", Op::Write, Perm::Deny);
        assert!(!by_type(vec![], Op::Write));
        assert!(by_type(vec![allow("t", Pat::Literal)], Op::Write));
        assert!(!by_type(vec![allow("t", Pat::Literal)], Op::Read));
        // No implied operations here: WRITE does not give DESCRIBE on some topic.
        assert!(!by_type(vec![allow("t", Pat::Literal)], Op::Describe));
        // ALL counts.
        assert!(by_type(
            vec![topic("t", Pat::Literal, "User:*", Op::All, Perm::Allow)],
            Op::Create
        ));
        // A literal deny of the same name, or a denied prefix of it, cancels an allow.
        assert!(!by_type(
            vec![allow("t", Pat::Literal), deny("t", Pat::Literal)],
            Op::Write
        ));
        assert!(!by_type(
            vec![allow("ab", Pat::Literal), deny("a", Pat::Prefixed)],
            Op::Write
        ));
        assert!(!by_type(
            vec![allow("ab", Pat::Prefixed), deny("ab", Pat::Prefixed)],
            Op::Write
        ));
        // A literal deny does not cancel a prefixed allow.
        assert!(by_type(
            vec![allow("ab", Pat::Prefixed), deny("ab", Pat::Literal)],
            Op::Write
        ));
        // One allowed name that no deny dominates is enough.
        assert!(by_type(
            vec![
                allow("ab", Pat::Literal),
                deny("a", Pat::Prefixed),
                allow("b", Pat::Literal)
            ],
            Op::Write
        ));
        // Wildcard allow; wildcard deny wins over everything (except the hardcode check).
        assert!(by_type(
            vec![allow("*", Pat::Literal), deny("a", Pat::Prefixed)],
            Op::Write
        ));
        assert!(!by_type(
            vec![allow("*", Pat::Literal), deny("*", Pat::Literal)],
            Op::Write
        ));
        assert!(!by_type(
            vec![allow("t", Pat::Literal), deny("*", Pat::Literal)],
            Op::Write
        ));
        // The hardcode check: a prefix ACL covering "hardcode" allows via authorize.
        assert!(by_type(vec![allow("hard", Pat::Prefixed)], Op::Write));
        // Super users and allow.everyone (no ACL on "hardcode") pass the first check.
        let settings = AuthorizerSettings {
            super_users: vec!["User:alice".into()],
            allow_everyone_if_no_acl_found: false,
        };
        let a = AclAuthorizer::new(vec![deny("*", Pat::Literal)], settings);
        assert!(a.authorize_by_resource_type(&alice(), HOST, Op::Write, Res::Topic));
        let settings = AuthorizerSettings {
            super_users: vec![],
            allow_everyone_if_no_acl_found: true,
        };
        let a = AclAuthorizer::new(vec![deny("t", Pat::Literal)], settings);
        assert!(a.authorize_by_resource_type(&alice(), HOST, Op::Write, Res::Topic));
        // Host and principal filters.
        let a = authorizer(vec![acl(
            Res::Topic,
            "t",
            Pat::Literal,
            "User:alice",
            "10.0.0.9",
            Op::Write,
            Perm::Allow,
        )]);
        assert!(!a.authorize_by_resource_type(&alice(), HOST, Op::Write, Res::Topic));
        assert!(a.authorize_by_resource_type(&alice(), "10.0.0.9", Op::Write, Res::Topic));
        assert!(!a.authorize_by_resource_type(&alice(), HOST, Op::Any, Res::Topic));
        assert!(!a.authorize_by_resource_type(&alice(), HOST, Op::Write, Res::Any));
    }

    #[test]
    fn host_address_is_javas() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(java_host_address(ip("10.1.2.3")), "10.1.2.3");
        assert_eq!(java_host_address(ip("::1")), "0:0:0:0:0:0:0:1");
        assert_eq!(java_host_address(ip("fe80::1:AB")), "fe80:0:0:0:0:0:1:ab");
        assert_eq!(java_host_address(ip("::ffff:10.1.2.3")), "10.1.2.3");
    }
}
