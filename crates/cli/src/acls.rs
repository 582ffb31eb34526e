//! `moldau acls add|list|remove`: ACLs, as `kafka-acls --bootstrap-server … --add|--list|
//! --remove` manages them (CreateAcls, DescribeAcls, DeleteAcls; brokers forward the
//! changes to the active controller).
//!
//! The flags are kafka-acls': resources (`--topic`, `--group`, `--cluster`,
//! `--transactional-id`, `--delegation-token`, `--user-principal`, each repeatable but
//! `--cluster`), `--resource-pattern-type` (LITERAL by default; `add` takes LITERAL or
//! PREFIXED, `list` and `remove` also ANY and MATCH), `--allow-principal` / `--deny-principal`
//! with `--allow-host` / `--deny-host` (`*` by default) and `--operation` (repeatable, `All`
//! by default), and the `--producer` (WRITE, DESCRIBE, CREATE on the topics; WRITE, DESCRIBE
//! on the transactional ids; IDEMPOTENT_WRITE on the cluster with `--idempotent`) and
//! `--consumer` (READ, DESCRIBE on the topics, READ on the groups) shorthands. `list` takes
//! `--principal` to show one principal's ACLs. `remove` asks for a `y` on stdin before each
//! deletion, as kafka-acls does, unless `--force`. The output is kafka-acls'
//! (`Current ACLs for resource `ResourcePattern(...)`:`), or JSON with `list -o json`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use moldau_security::acl::{AclOperation, AclPermissionType, PatternType, ResourceType};
use moldau_security::principal::KafkaPrincipal;
use moldau_wire::{check, ClientSettings};
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::output::print_json;
use crate::transactions::{connect, explain, run_wire};
use crate::Failure;

/// The one name of the cluster resource.
const CLUSTER_NAME: &str = "kafka-cluster";
/// kafka-acls' usage message when no resource is given.
const NO_RESOURCE: &str = "You must provide at least one resource: --topic <topic> or --cluster \
                           or --group <group> or --delegation-token <Delegation Token ID>";

#[derive(Subcommand)]
pub enum AclsCommand {
    /// Add ACLs (kafka-acls --add).
    Add(AddArgs),
    /// List ACLs, of the given resources or of all (kafka-acls --list).
    List(ListArgs),
    /// Remove ACLs: those of the given principals, else all of the resources
    /// (kafka-acls --remove).
    Remove(RemoveArgs),
}

/// The resources an ACL command is about.
#[derive(Args, Clone, Debug, Default)]
pub struct ResourceArgs {
    /// A topic ('*': every topic). Repeatable.
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// A consumer group ('*': every group). Repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// A transactional id ('*': every one). Repeatable.
    #[arg(long = "transactional-id", value_name = "ID")]
    transactional_ids: Vec<String>,
    /// A delegation token id ('*': every token). Repeatable.
    #[arg(long = "delegation-token", value_name = "TOKEN")]
    delegation_tokens: Vec<String>,
    /// A user principal as a resource (for CreateTokens, DescribeTokens). Repeatable.
    #[arg(long = "user-principal", value_name = "PRINCIPAL")]
    user_principals: Vec<String>,
}

/// Who an ACL allows or denies, from where, what.
#[derive(Args, Clone, Debug, Default)]
pub struct EntryArgs {
    /// A principal to allow, `type:name` (`User:alice`, `User:*`). Repeatable.
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    allow_principals: Vec<String>,
    /// A principal to deny (deny wins over allow). Repeatable.
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    deny_principals: Vec<String>,
    /// A host the allowed principals may connect from (default with --allow-principal: *).
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// A host the denied principals are denied from (default with --deny-principal: *).
    #[arg(long = "deny-host", value_name = "HOST")]
    deny_hosts: Vec<String>,
    /// An operation (Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, CreateTokens, DescribeTokens, All).
    /// Repeatable; default All.
    #[arg(long = "operation", value_name = "OPERATION")]
    operations: Vec<String>,
    /// The ACLs a producer needs: WRITE, DESCRIBE, CREATE on the topics, WRITE, DESCRIBE
    /// on the transactional ids.
    #[arg(long)]
    producer: bool,
    /// With --producer: IDEMPOTENT_WRITE on the cluster too.
    #[arg(long)]
    idempotent: bool,
    /// The ACLs a consumer needs: READ, DESCRIBE on the topics, READ on the groups.
    #[arg(long)]
    consumer: bool,
}

#[derive(Args)]
pub struct AddArgs {
    #[command(flatten)]
    resources: ResourceArgs,
    #[command(flatten)]
    entries: EntryArgs,
    /// LITERAL or PREFIXED.
    #[arg(long, value_name = "TYPE", default_value = "LITERAL", value_parser = parse_pattern_type)]
    resource_pattern_type: PatternType,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    resources: ResourceArgs,
    /// LITERAL, PREFIXED, ANY (any pattern, this exact name) or MATCH (every ACL that
    /// applies to the name).
    #[arg(long, value_name = "TYPE", default_value = "LITERAL", value_parser = parse_pattern_type)]
    resource_pattern_type: PatternType,
    /// Only the ACLs of this principal (`type:name`). Repeatable.
    #[arg(long = "principal", value_name = "PRINCIPAL")]
    principals: Vec<String>,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    resources: ResourceArgs,
    #[command(flatten)]
    entries: EntryArgs,
    /// LITERAL, PREFIXED, ANY or MATCH (with care: every ACL that applies to the name).
    #[arg(long, value_name = "TYPE", default_value = "LITERAL", value_parser = parse_pattern_type)]
    resource_pattern_type: PatternType,
    /// Do not ask for confirmation.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    conn: ConnectArgs,
}

/// kafka-acls' `PatternTypeConverter`: any case; UNKNOWN is refused.
fn parse_pattern_type(value: &str) -> Result<PatternType, String> {
    match PatternType::from_name(&value.to_uppercase()) {
        PatternType::Unknown => Err(format!("Unknown resource-pattern-type: {value}")),
        pattern => Ok(pattern),
    }
}

/// A resource pattern (or pattern filter): type, name, pattern type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pattern {
    resource_type: ResourceType,
    name: String,
    pattern_type: PatternType,
}

impl std::fmt::Display for Pattern {
    /// Kafka's `ResourcePattern.toString` (and `ResourcePatternFilter`'s).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            self.resource_type, self.name, self.pattern_type
        )
    }
}

/// An access control entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    principal: String,
    host: String,
    operation: AclOperation,
    permission: AclPermissionType,
}

impl std::fmt::Display for Entry {
    /// Kafka's `AccessControlEntry.toString`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(principal={}, host={}, operation={}, permissionType={})",
            self.principal, self.host, self.operation, self.permission
        )
    }
}

type Acls = BTreeMap<Pattern, BTreeSet<Entry>>;

pub fn run(cmd: AclsCommand) -> Result<(), Failure> {
    let usage = |error: anyhow::Error| Failure { code: 2, error };
    match cmd {
        AclsCommand::Add(args) => {
            let acls = acls_to_add(&args).map_err(usage)?;
            let conn = args.conn.clone();
            run_wire(&conn, |settings| add(conn.clone(), acls, settings))
        }
        AclsCommand::List(args) => {
            let filters = resource_filters(&args.resources, args.resource_pattern_type, false)
                .map_err(usage)?;
            let principals = parse_principals(&args.principals).map_err(usage)?;
            let conn = args.conn.clone();
            run_wire(&conn, |settings| {
                list(conn.clone(), filters, principals, args.output, settings)
            })
        }
        AclsCommand::Remove(args) => {
            check_entry_args(&args.resources, &args.entries).map_err(usage)?;
            let filters = pattern_acls(&args.resources, &args.entries, args.resource_pattern_type)
                .map_err(usage)?;
            let conn = args.conn.clone();
            run_wire(&conn, |settings| {
                remove(conn.clone(), filters, args.force, settings)
            })
        }
    }
}

/// kafka-acls' `checkArgs` for the entry flags of `add` and `remove`.
fn check_entry_args(resources: &ResourceArgs, entries: &EntryArgs) -> anyhow::Result<()> {
    if (entries.producer || entries.consumer)
        && (!entries.operations.is_empty()
            || !entries.deny_principals.is_empty()
            || !entries.deny_hosts.is_empty())
    {
        let flag = if entries.producer {
            "--producer"
        } else {
            "--consumer"
        };
        bail!("{flag} cannot be used with --operation, --deny-principal or --deny-host");
    }
    if entries.producer && resources.topics.is_empty() {
        bail!("With --producer you must specify a --topic");
    }
    if entries.idempotent && !entries.producer {
        bail!("The --idempotent option is only available if --producer is set");
    }
    if entries.consumer
        && (resources.topics.is_empty()
            || resources.groups.is_empty()
            || (!entries.producer
                && (resources.cluster || !resources.transactional_ids.is_empty())))
    {
        bail!(
            "With --consumer you must specify a --topic and a --group and no --cluster or \
             --transactional-id option should be specified."
        );
    }
    Ok(())
}

/// kafka-acls' `getResourceToAcls`: the bindings `add` creates, by resource.
fn acls_to_add(args: &AddArgs) -> anyhow::Result<Acls> {
    check_entry_args(&args.resources, &args.entries)?;
    if !args.resource_pattern_type.is_specific() {
        bail!(
            "A '--resource-pattern-type' value of '{}' is not valid when adding acls.",
            args.resource_pattern_type
        );
    }
    let acls = pattern_acls(&args.resources, &args.entries, args.resource_pattern_type)?;
    if acls.values().any(BTreeSet::is_empty) {
        bail!(
            "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs."
        );
    }
    Ok(acls)
}

/// kafka-acls' `getResourceFilterToAcls`: the entries per resource pattern, from the
/// flags or the --producer / --consumer shorthands.
fn pattern_acls(
    resources: &ResourceArgs,
    entries: &EntryArgs,
    pattern_type: PatternType,
) -> anyhow::Result<Acls> {
    use AclOperation::*;
    let filters = resource_filters(resources, pattern_type, true)?;
    let mut acls: Acls = BTreeMap::new();
    if !entries.producer && !entries.consumer {
        let operations = entries
            .operations
            .iter()
            .map(|name| parse_operation(name))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let operations = if operations.is_empty() {
            vec![All]
        } else {
            operations
        };
        let entries = acl_entries(entries, &operations)?;
        for filter in filters.iter() {
            acls.insert(filter.clone(), entries.clone());
        }
    }
    let of_type = |rt: ResourceType| {
        filters
            .iter()
            .filter(move |f| f.resource_type == rt)
            .cloned()
    };
    if entries.producer {
        for topic in of_type(ResourceType::Topic) {
            acls.insert(topic, acl_entries(entries, &[Write, Describe, Create])?);
        }
        for id in of_type(ResourceType::TransactionalId) {
            acls.insert(id, acl_entries(entries, &[Write, Describe])?);
        }
        if entries.idempotent {
            acls.insert(cluster_pattern(), acl_entries(entries, &[IdempotentWrite])?);
        }
    }
    if entries.consumer {
        for topic in of_type(ResourceType::Topic) {
            acls.entry(topic)
                .or_default()
                .extend(acl_entries(entries, &[Read, Describe])?);
        }
        for group in of_type(ResourceType::Group) {
            acls.entry(group)
                .or_default()
                .extend(acl_entries(entries, &[Read])?);
        }
    }
    // kafka-acls' `validateOperation`.
    for (pattern, set) in &acls {
        let valid = pattern.resource_type.supported_operations();
        if set
            .iter()
            .any(|e| e.operation != All && !valid.contains(&e.operation))
        {
            let names: Vec<&str> = valid
                .iter()
                .chain([&All])
                .map(|op| op.pascal_name())
                .collect();
            bail!(
                "ResourceType {} only supports operations {}",
                pattern.resource_type,
                names.join(", ")
            );
        }
    }
    Ok(acls)
}

fn parse_operation(name: &str) -> anyhow::Result<AclOperation> {
    match AclOperation::from_name(name.trim()) {
        AclOperation::Unknown | AclOperation::Any => bail!(
            "Unknown operation '{name}'; valid operations are Read, Write, Create, Delete, \
             Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, \
             CreateTokens, DescribeTokens, All"
        ),
        operation => Ok(operation),
    }
}

fn parse_principals(principals: &[String]) -> anyhow::Result<Vec<String>> {
    principals
        .iter()
        .map(|p| {
            KafkaPrincipal::parse(p.trim())
                .map(|p| p.to_string())
                .map_err(|_| {
                    anyhow!(
                        "expected a string in format principalType:principalName but got {}",
                        p.trim()
                    )
                })
        })
        .collect()
}

/// kafka-acls' `getAcl`: every allowed principal × operation × allowed host, and the same
/// for the denied ones (hosts default to `*` once a principal is given).
fn acl_entries(
    entries: &EntryArgs,
    operations: &[AclOperation],
) -> anyhow::Result<BTreeSet<Entry>> {
    let mut set = BTreeSet::new();
    for (principals, hosts, permission) in [
        (
            &entries.allow_principals,
            &entries.allow_hosts,
            AclPermissionType::Allow,
        ),
        (
            &entries.deny_principals,
            &entries.deny_hosts,
            AclPermissionType::Deny,
        ),
    ] {
        let principals = parse_principals(principals)?;
        let hosts: Vec<String> = if hosts.is_empty() {
            vec!["*".to_string()]
        } else {
            hosts.iter().map(|h| h.trim().to_string()).collect()
        };
        for principal in &principals {
            for operation in operations {
                for host in &hosts {
                    set.insert(Entry {
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *operation,
                        permission,
                    });
                }
            }
        }
    }
    Ok(set)
}

fn cluster_pattern() -> Pattern {
    Pattern {
        resource_type: ResourceType::Cluster,
        name: CLUSTER_NAME.to_string(),
        pattern_type: PatternType::Literal,
    }
}

/// kafka-acls' `getResourceFilter`: the resource patterns the flags name. The cluster
/// counts only with the LITERAL pattern type, as in kafka-acls.
fn resource_filters(
    resources: &ResourceArgs,
    pattern_type: PatternType,
    required: bool,
) -> anyhow::Result<BTreeSet<Pattern>> {
    let mut filters = BTreeSet::new();
    let mut add = |resource_type: ResourceType, names: &[String], trim: bool| {
        for name in names {
            let name = if trim { name.trim() } else { name.as_str() };
            filters.insert(Pattern {
                resource_type,
                name: name.to_string(),
                pattern_type,
            });
        }
    };
    add(ResourceType::Topic, &resources.topics, true);
    add(ResourceType::Group, &resources.groups, true);
    add(
        ResourceType::TransactionalId,
        &resources.transactional_ids,
        false,
    );
    add(
        ResourceType::DelegationToken,
        &resources.delegation_tokens,
        true,
    );
    add(ResourceType::User, &resources.user_principals, true);
    if pattern_type == PatternType::Literal && resources.cluster {
        filters.insert(cluster_pattern());
    }
    if filters.is_empty() && required {
        bail!("{NO_RESOURCE}");
    }
    Ok(filters)
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// kafka-acls' block: a header line, then each entry on a tab-indented line.
fn block(header: &str, entries: &BTreeSet<Entry>) -> String {
    let lines: Vec<String> = entries.iter().map(|e| format!("\t{e}")).collect();
    format!("{header} \n {} \n", lines.join("\n"))
}

async fn add(conn: ConnectArgs, acls: Acls, settings: ClientSettings) -> anyhow::Result<()> {
    let mut cluster = connect(&conn, settings).await?;
    for (pattern, entries) in &acls {
        say!(
            "{}",
            block(&format!("Adding ACLs for resource `{pattern}`:"), entries)
        );
        let creations = entries
            .iter()
            .map(|e| {
                AclCreation::default()
                    .with_resource_type(pattern.resource_type.code())
                    .with_resource_name(s(&pattern.name))
                    .with_resource_pattern_type(pattern.pattern_type.code())
                    .with_principal(s(&e.principal))
                    .with_host(s(&e.host))
                    .with_operation(e.operation.code())
                    .with_permission_type(e.permission.code())
            })
            .collect();
        let action = format!("cannot add ACLs for resource `{pattern}`");
        let response = cluster
            .bootstrap()
            .send(&CreateAclsRequest::default().with_creations(creations))
            .await
            .map_err(|e| explain(&conn, &action, e))?;
        for (entry, result) in entries.iter().zip(&response.results) {
            check(result.error_code, result.error_message.as_ref())
                .map_err(|e| anyhow!("{action}: {entry}: {e}"))?;
        }
    }
    Ok(())
}

/// DescribeAcls for a pattern filter (every entry), or for everything.
fn describe_request(filter: Option<&Pattern>) -> DescribeAclsRequest {
    let (resource_type, name, pattern_type) = match filter {
        Some(f) => (f.resource_type, Some(s(&f.name)), f.pattern_type),
        None => (ResourceType::Any, None, PatternType::Any),
    };
    DescribeAclsRequest::default()
        .with_resource_type_filter(resource_type.code())
        .with_resource_name_filter(name)
        .with_pattern_type_filter(pattern_type.code())
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(AclOperation::Any.code())
        .with_permission_type(AclPermissionType::Any.code())
}

/// One resource's ACLs, as `acls list -o json` prints them.
#[derive(Serialize)]
struct ListedResource {
    resource_type: String,
    name: String,
    pattern_type: String,
    acls: Vec<ListedAcl>,
}

#[derive(Serialize)]
struct ListedAcl {
    principal: String,
    host: String,
    operation: String,
    permission_type: String,
}

async fn list(
    conn: ConnectArgs,
    filters: BTreeSet<Pattern>,
    principals: Vec<String>,
    output: OutputArgs,
    settings: ClientSettings,
) -> anyhow::Result<()> {
    let mut cluster = connect(&conn, settings).await?;
    let requests: Vec<DescribeAclsRequest> = if filters.is_empty() {
        vec![describe_request(None)]
    } else {
        filters.iter().map(|f| describe_request(Some(f))).collect()
    };
    let mut acls: Acls = BTreeMap::new();
    for request in requests {
        let response = cluster
            .bootstrap()
            .send(&request)
            .await
            .map_err(|e| explain(&conn, "cannot list ACLs", e))?;
        check(response.error_code, response.error_message.as_ref())
            .map_err(|e| anyhow!("cannot list ACLs: {e}"))?;
        for resource in &response.resources {
            let pattern = Pattern {
                resource_type: ResourceType::from_code(resource.resource_type),
                name: resource.resource_name.to_string(),
                pattern_type: PatternType::from_code(resource.pattern_type),
            };
            let entries = acls.entry(pattern).or_default();
            for acl in &resource.acls {
                entries.insert(Entry {
                    principal: acl.principal.to_string(),
                    host: acl.host.to_string(),
                    operation: AclOperation::from_code(acl.operation),
                    permission: AclPermissionType::from_code(acl.permission_type),
                });
            }
        }
    }
    let of_principal = |principal: Option<&str>| -> Acls {
        acls.iter()
            .map(|(pattern, entries)| {
                let entries = entries
                    .iter()
                    .filter(|e| principal.is_none_or(|p| e.principal == p))
                    .cloned()
                    .collect::<BTreeSet<_>>();
                (pattern.clone(), entries)
            })
            .filter(|(_, entries)| !entries.is_empty())
            .collect()
    };
    if output.output == OutputFormat::Json {
        let selected = if principals.is_empty() {
            acls.clone()
        } else {
            let mut all = Acls::new();
            for principal in &principals {
                for (pattern, entries) in of_principal(Some(principal)) {
                    all.entry(pattern).or_default().extend(entries);
                }
            }
            all
        };
        let report: Vec<ListedResource> = selected
            .into_iter()
            .map(|(pattern, entries)| ListedResource {
                resource_type: pattern.resource_type.name().to_string(),
                name: pattern.name,
                pattern_type: pattern.pattern_type.name().to_string(),
                acls: entries
                    .into_iter()
                    .map(|e| ListedAcl {
                        principal: e.principal,
                        host: e.host,
                        operation: e.operation.name().to_string(),
                        permission_type: e.permission.name().to_string(),
                    })
                    .collect(),
            })
            .collect();
        return print_json(&report);
    }
    let print = |acls: &Acls| {
        for (pattern, entries) in acls {
            say!(
                "{}",
                block(&format!("Current ACLs for resource `{pattern}`:"), entries)
            );
        }
    };
    if principals.is_empty() {
        print(&acls);
    } else {
        for principal in &principals {
            say!("ACLs for principal `{principal}`");
            print(&of_principal(Some(principal)));
        }
    }
    Ok(())
}

/// kafka-acls' `confirmAction`: `--force`, or a `y` (any case) on stdin.
fn confirmed(force: bool, question: &str) -> bool {
    if force {
        return true;
    }
    say!("{question}");
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer);
    read.is_ok() && answer.trim().eq_ignore_ascii_case("y")
}

fn delete_filter(pattern: &Pattern, entry: Option<&Entry>) -> DeleteAclsFilter {
    let filter = DeleteAclsFilter::default()
        .with_resource_type_filter(pattern.resource_type.code())
        .with_resource_name_filter(Some(s(&pattern.name)))
        .with_pattern_type_filter(pattern.pattern_type.code());
    match entry {
        Some(e) => filter
            .with_principal_filter(Some(s(&e.principal)))
            .with_host_filter(Some(s(&e.host)))
            .with_operation(e.operation.code())
            .with_permission_type(e.permission.code()),
        None => filter
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(AclOperation::Any.code())
            .with_permission_type(AclPermissionType::Any.code()),
    }
}

async fn remove(
    conn: ConnectArgs,
    filters: Acls,
    force: bool,
    settings: ClientSettings,
) -> anyhow::Result<()> {
    let mut cluster = connect(&conn, settings).await?;
    for (pattern, entries) in &filters {
        let (question, delete_filters) = if entries.is_empty() {
            (
                format!(
                    "Are you sure you want to delete all ACLs for resource filter `{pattern}`? (y/n)"
                ),
                vec![delete_filter(pattern, None)],
            )
        } else {
            (
                format!(
                    "{} from resource filter `{pattern}`? (y/n)",
                    block("Are you sure you want to remove ACLs:", entries)
                ),
                entries
                    .iter()
                    .map(|e| delete_filter(pattern, Some(e)))
                    .collect(),
            )
        };
        if !confirmed(force, &question) {
            continue;
        }
        let action = format!("cannot remove ACLs for resource filter `{pattern}`");
        let response = cluster
            .bootstrap()
            .send(&DeleteAclsRequest::default().with_filters(delete_filters))
            .await
            .map_err(|e| explain(&conn, &action, e))?;
        for result in &response.filter_results {
            check(result.error_code, result.error_message.as_ref())
                .map_err(|e| anyhow!("{action}: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_args() -> EntryArgs {
        EntryArgs {
            allow_principals: vec!["User:alice".into()],
            ..EntryArgs::default()
        }
    }

    fn summary(acls: &Acls) -> Vec<String> {
        acls.iter()
            .flat_map(|(p, entries)| {
                entries.iter().map(move |e| {
                    format!(
                        "{}:{}:{} {} {} {} {}",
                        p.resource_type,
                        p.name,
                        p.pattern_type,
                        e.principal,
                        e.host,
                        e.operation,
                        e.permission
                    )
                })
            })
            .collect()
    }

    #[test]
    fn producer_and_consumer_expand_as_kafka_acls() {
        let resources = ResourceArgs {
            topics: vec!["t".into()],
            groups: vec!["g".into()],
            transactional_ids: vec!["tx".into()],
            ..ResourceArgs::default()
        };
        let entries = EntryArgs {
            producer: true,
            idempotent: true,
            consumer: true,
            ..entry_args()
        };
        check_entry_args(&resources, &entries).unwrap();
        let acls = pattern_acls(&resources, &entries, PatternType::Literal).unwrap();
        assert_eq!(
            summary(&acls),
            vec![
                "TOPIC:t:LITERAL User:alice * READ ALLOW",
                "TOPIC:t:LITERAL User:alice * WRITE ALLOW",
                "TOPIC:t:LITERAL User:alice * CREATE ALLOW",
                "TOPIC:t:LITERAL User:alice * DESCRIBE ALLOW",
                "GROUP:g:LITERAL User:alice * READ ALLOW",
                "CLUSTER:kafka-cluster:LITERAL User:alice * IDEMPOTENT_WRITE ALLOW",
                "TRANSACTIONAL_ID:tx:LITERAL User:alice * WRITE ALLOW",
                "TRANSACTIONAL_ID:tx:LITERAL User:alice * DESCRIBE ALLOW",
            ]
        );
    }

    #[test]
    fn flags_are_checked_as_kafka_acls_checks_them() {
        let topic = ResourceArgs {
            topics: vec!["t".into()],
            ..ResourceArgs::default()
        };
        let consumer = EntryArgs {
            consumer: true,
            ..entry_args()
        };
        let err = check_entry_args(&topic, &consumer).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("With --consumer you must specify"));
        let idempotent = EntryArgs {
            idempotent: true,
            ..entry_args()
        };
        assert!(check_entry_args(&topic, &idempotent).is_err());
        let producer_with_op = EntryArgs {
            producer: true,
            operations: vec!["Read".into()],
            ..entry_args()
        };
        assert!(check_entry_args(&topic, &producer_with_op).is_err());
        let wrong_op = EntryArgs {
            operations: vec!["IdempotentWrite".into()],
            ..entry_args()
        };
        let err = pattern_acls(&topic, &wrong_op, PatternType::Literal).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ResourceType TOPIC only supports operations Read, Write, Create, Describe, \
             Delete, Alter, DescribeConfigs, AlterConfigs, All"
        );
        let none = pattern_acls(
            &ResourceArgs::default(),
            &entry_args(),
            PatternType::Literal,
        );
        assert_eq!(none.unwrap_err().to_string(), NO_RESOURCE);
        assert!(parse_pattern_type("prefixed").is_ok());
        assert!(parse_pattern_type("nope").is_err());
        assert!(parse_principals(&["alice".into()]).is_err());
    }

    #[test]
    fn hosts_default_to_any_and_output_is_kafka_acls() {
        let resources = ResourceArgs {
            cluster: true,
            ..ResourceArgs::default()
        };
        let entries = EntryArgs {
            deny_principals: vec!["User:bob".into()],
            deny_hosts: vec!["10.0.0.1".into()],
            operations: vec!["alter".into(), "Describe".into()],
            ..entry_args()
        };
        let acls = pattern_acls(&resources, &entries, PatternType::Literal).unwrap();
        let (pattern, set) = acls.iter().next().unwrap();
        assert_eq!(
            pattern.to_string(),
            "ResourcePattern(resourceType=CLUSTER, name=kafka-cluster, patternType=LITERAL)"
        );
        assert_eq!(
            block("Current ACLs for resource `x`:", set),
            "Current ACLs for resource `x`: \n \t(principal=User:alice, host=*, operation=ALTER, \
             permissionType=ALLOW)\n\t(principal=User:alice, host=*, operation=DESCRIBE, \
             permissionType=ALLOW)\n\t(principal=User:bob, host=10.0.0.1, operation=ALTER, \
             permissionType=DENY)\n\t(principal=User:bob, host=10.0.0.1, operation=DESCRIBE, \
             permissionType=DENY) \n"
        );
        // The cluster counts only with LITERAL, as in kafka-acls.
        assert!(resource_filters(&resources, PatternType::Any, false)
            .unwrap()
            .is_empty());
    }
}
