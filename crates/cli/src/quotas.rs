//! `moldau quotas alter|describe`: client quotas, as `kafka-configs --bootstrap-server …
//! --entity-type users|clients|ips [--entity-name N | --entity-default] --alter
//! --add-config 'producer_byte_rate=1024,consumer_byte_rate=2048'`, `--delete-config …`
//! and `--describe` do (AlterClientQuotas, DescribeClientQuotas; brokers forward the
//! alteration to the active controller).
//!
//! The entity is given by `--user NAME` / `--user-default`, `--client-id ID` /
//! `--client-id-default` (both: the user's quota for that client id) or `--ip IP` /
//! `--ip-default`. As kafka-configs, `alter` checks the keys before sending (quota keys
//! only: `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`,
//! `controller_mutation_rate` for users and client ids, `connection_creation_rate` for
//! IPs), refuses to delete a key the entity does not have, and `describe` lists exactly
//! the entities of the types given (`--user` without a name: every user; no entity at
//! all: every quota).

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use moldau_wire::{check, retrying, Cluster, WireError};
use serde::Serialize;

use crate::args::{ConnectArgs, OutputArgs, OutputFormat};
use crate::output::{print_json, print_table, table};
use crate::transactions::{connect, explain, run_wire};
use crate::Failure;

const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
const IP: &str = "ip";

/// Kafka's quota keys for users and client ids, and for IPs.
const USER_AND_CLIENT_KEYS: &[&str] = &[
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
];
const IP_KEYS: &[&str] = &["connection_creation_rate"];

/// kafka-configs' match types.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

#[derive(Subcommand)]
pub enum QuotasCommand {
    /// Set or delete quotas of a user, a client id, a user's client id, or an IP.
    Alter(AlterArgs),
    /// Show quotas: of the entities given (exactly those types), or all.
    Describe(DescribeArgs),
}

#[derive(Args)]
pub struct AlterArgs {
    /// The user (principal name, e.g. ANONYMOUS for unauthenticated clients).
    #[arg(long, value_name = "NAME", conflicts_with = "user_default")]
    user: Option<String>,
    /// The default user: every user without a quota of its own.
    #[arg(long)]
    user_default: bool,
    /// The client id.
    #[arg(long, value_name = "ID", conflicts_with = "client_id_default")]
    client_id: Option<String>,
    /// The default client id.
    #[arg(long)]
    client_id_default: bool,
    /// An IP address (connection_creation_rate only).
    #[arg(long, value_name = "IP", conflicts_with = "ip_default")]
    ip: Option<String>,
    /// The default IP.
    #[arg(long)]
    ip_default: bool,
    /// Quotas to set: 'key=value,key=value'.
    #[arg(long, value_name = "KEY=VALUE,...")]
    add_config: Option<String>,
    /// Quotas to delete: 'key,key' (repeatable).
    #[arg(long, value_name = "KEY,...")]
    delete_config: Vec<String>,
    #[command(flatten)]
    conn: ConnectArgs,
}

#[derive(Args)]
pub struct DescribeArgs {
    /// A user; without a name, every user.
    #[arg(long, value_name = "NAME", num_args = 0..=1, conflicts_with = "user_default")]
    user: Option<Option<String>>,
    /// The default user.
    #[arg(long)]
    user_default: bool,
    /// A client id; without a name, every client id.
    #[arg(long, value_name = "ID", num_args = 0..=1, conflicts_with = "client_id_default")]
    client_id: Option<Option<String>>,
    /// The default client id.
    #[arg(long)]
    client_id_default: bool,
    /// An IP; without one, every IP.
    #[arg(long, value_name = "IP", num_args = 0..=1, conflicts_with = "ip_default")]
    ip: Option<Option<String>>,
    /// The default IP.
    #[arg(long)]
    ip_default: bool,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// One component of an entity: its type and name, `None` the default.
type Component = (&'static str, Option<String>);

pub fn run(cmd: QuotasCommand) -> Result<(), Failure> {
    match cmd {
        QuotasCommand::Alter(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| async move {
                let alteration = Alteration::parse(&args)?;
                let mut cluster = connect(&args.conn, settings).await?;
                alter(&args.conn, &mut cluster, &alteration).await
            })
        }
        QuotasCommand::Describe(args) => {
            let conn = args.conn.clone();
            run_wire(&conn, |settings| async move {
                let mut cluster = connect(&args.conn, settings).await?;
                describe(&args, &mut cluster).await
            })
        }
    }
}

/// What `alter` was asked: the entity, the keys to set and those to delete.
#[derive(Debug, PartialEq)]
struct Alteration {
    entity: Vec<Component>,
    add: Vec<(String, f64)>,
    delete: Vec<String>,
}

impl Alteration {
    fn parse(args: &AlterArgs) -> anyhow::Result<Alteration> {
        let mut entity: Vec<Component> = Vec::new();
        let named = |name: &Option<String>, default: bool| match (name, default) {
            (Some(name), _) => Some(Some(name.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        };
        for (entity_type, name) in [
            (USER, named(&args.user, args.user_default)),
            (CLIENT_ID, named(&args.client_id, args.client_id_default)),
            (IP, named(&args.ip, args.ip_default)),
        ] {
            if let Some(name) = name {
                if name.as_deref() == Some("") {
                    bail!("an empty {entity_type} is not an entity; use --{entity_type}-default for the default");
                }
                entity.push((entity_type, name));
            }
        }
        if entity.is_empty() {
            bail!("name the entity: --user, --client-id, --ip (or their -default forms)");
        }
        let is_ip = entity.iter().any(|(t, _)| *t == IP);
        if is_ip && entity.len() > 1 {
            bail!("an IP quota cannot be combined with a user or a client id");
        }
        let add = parse_add_config(args.add_config.as_deref().unwrap_or(""))?;
        let delete: Vec<String> = args
            .delete_config
            .iter()
            .flat_map(|list| list.split(','))
            .map(|key| key.trim().to_string())
            .filter(|key| !key.is_empty())
            .collect();
        if add.is_empty() && delete.is_empty() {
            bail!("at least one of --add-config or --delete-config must be given");
        }
        let valid = if is_ip { IP_KEYS } else { USER_AND_CLIENT_KEYS };
        let unknown: Vec<&str> = add
            .iter()
            .map(|(key, _)| key.as_str())
            .chain(delete.iter().map(String::as_str))
            .filter(|key| !valid.contains(key))
            .collect();
        if !unknown.is_empty() {
            let what = if is_ip {
                "connection quota configs"
            } else {
                "quota configs"
            };
            bail!(
                "Only {what} can be altered for this entity. Unexpected config names: {} (valid: {})",
                unknown.join(","),
                valid.join(", ")
            );
        }
        Ok(Alteration {
            entity,
            add,
            delete,
        })
    }

    /// kafka-configs' closing line.
    fn done_message(&self) -> String {
        let (entity_type, name) = &self.entity[0];
        let plural = match *entity_type {
            USER => "users",
            CLIENT_ID => "clients",
            _ => "ips",
        };
        match name {
            Some(name) => format!(
                "Completed updating config for {} {name}.",
                &plural[..plural.len() - 1]
            ),
            None => format!("Completed updating default config for {plural} in the cluster."),
        }
    }
}

/// kafka-configs' `--add-config`: `key=value` pairs separated by commas, values numbers.
fn parse_add_config(list: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let mut pairs: Vec<(String, f64)> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            bail!(
                "Invalid entity config: all configs to be added must be in the format \"key=val\"."
            );
        };
        let (key, value) = (key.trim(), value.trim());
        let number: f64 = value
            .parse()
            .map_err(|_| anyhow!("Cannot parse quota configuration value for {key}: {value}"))?;
        match pairs.iter_mut().find(|(k, _)| k == key) {
            // As a properties map: the last value of a key wins.
            Some(pair) => pair.1 = number,
            None => pairs.push((key.to_string(), number)),
        }
    }
    Ok(pairs)
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The exact-match filter of an entity (kafka-configs' `getClientQuotasConfig`).
fn exact_filter(entity: &[Component]) -> DescribeClientQuotasRequest {
    let components = entity
        .iter()
        .map(|(entity_type, name)| {
            ComponentData::default()
                .with_entity_type(str_bytes(entity_type))
                .with_match_type(if name.is_some() {
                    MATCH_EXACT
                } else {
                    MATCH_DEFAULT
                })
                .with_match(name.as_deref().map(str_bytes))
        })
        .collect();
    DescribeClientQuotasRequest::default()
        .with_components(components)
        .with_strict(true)
}

/// One entity's quotas, as `quotas describe` reports them.
#[derive(Debug, Serialize)]
struct EntityQuotas {
    /// Entity type to name (`null`: the default).
    entity: std::collections::BTreeMap<String, Option<String>>,
    quotas: std::collections::BTreeMap<String, f64>,
}

async fn describe_filter(
    cluster: &mut Cluster,
    request: &DescribeClientQuotasRequest,
) -> Result<Vec<EntityQuotas>, WireError> {
    let response = cluster.bootstrap().send(request).await?;
    check(response.error_code, response.error_message.as_ref())?;
    Ok(response
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|entry| EntityQuotas {
            entity: entry
                .entity
                .iter()
                .map(|e| {
                    (
                        e.entity_type.to_string(),
                        e.entity_name.as_ref().map(|n| n.to_string()),
                    )
                })
                .collect(),
            quotas: entry
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect(),
        })
        .collect())
}

async fn alter(
    conn: &ConnectArgs,
    cluster: &mut Cluster,
    alteration: &Alteration,
) -> anyhow::Result<()> {
    let action = "cannot alter client quotas";
    if !alteration.delete.is_empty() {
        let current = describe_filter(cluster, &exact_filter(&alteration.entity))
            .await
            .map_err(|e| explain(conn, action, e))?;
        let has = |key: &str| current.iter().any(|e| e.quotas.contains_key(key));
        let missing: Vec<&str> = alteration
            .delete
            .iter()
            .map(String::as_str)
            .filter(|key| !has(key))
            .collect();
        if !missing.is_empty() {
            bail!("Invalid config(s): {}", missing.join(","));
        }
    }
    let ops = alteration
        .add
        .iter()
        .map(|(key, value)| {
            OpData::default()
                .with_key(str_bytes(key))
                .with_value(*value)
        })
        .chain(
            alteration
                .delete
                .iter()
                .map(|key| OpData::default().with_key(str_bytes(key)).with_remove(true)),
        )
        .collect();
    let entity = alteration
        .entity
        .iter()
        .map(|(entity_type, name)| {
            EntityData::default()
                .with_entity_type(str_bytes(entity_type))
                .with_entity_name(name.as_deref().map(str_bytes))
        })
        .collect();
    let request = AlterClientQuotasRequest::default()
        .with_entries(vec![EntryData::default().with_entity(entity).with_ops(ops)]);
    let timeout = cluster.settings().timeout;
    let result = retrying(timeout, async || {
        let response: AlterClientQuotasResponse = cluster.bootstrap().send(&request).await?;
        let entry = response.entries.first().ok_or(WireError::Kafka {
            error: ResponseError::UnknownServerError,
            message: Some("the answer has no entry".into()),
        })?;
        check(entry.error_code, entry.error_message.as_ref())
    })
    .await;
    result.map_err(|e| explain(conn, action, e))?;
    say!("{}", alteration.done_message());
    Ok(())
}

/// The filter `describe` sends: the types given, each exact, default or any, strictly (as
/// kafka-configs); no type at all: every entity.
fn describe_request(args: &DescribeArgs) -> DescribeClientQuotasRequest {
    let mut components = Vec::new();
    for (entity_type, name, default) in [
        (USER, &args.user, args.user_default),
        (CLIENT_ID, &args.client_id, args.client_id_default),
        (IP, &args.ip, args.ip_default),
    ] {
        let (match_type, name) = match (name, default) {
            (Some(Some(name)), _) => (MATCH_EXACT, Some(str_bytes(name))),
            (Some(None), _) => (MATCH_ANY, None),
            (None, true) => (MATCH_DEFAULT, None),
            (None, false) => continue,
        };
        components.push(
            ComponentData::default()
                .with_entity_type(str_bytes(entity_type))
                .with_match_type(match_type)
                .with_match(name),
        );
    }
    let strict = !components.is_empty();
    DescribeClientQuotasRequest::default()
        .with_components(components)
        .with_strict(strict)
}

async fn describe(args: &DescribeArgs, cluster: &mut Cluster) -> anyhow::Result<()> {
    let entities = describe_filter(cluster, &describe_request(args))
        .await
        .map_err(|e| explain(&args.conn, "cannot describe client quotas", e))?;
    if args.output.output == OutputFormat::Json {
        return print_json(&entities);
    }
    let name = |entity: &EntityQuotas, entity_type: &str| match entity.entity.get(entity_type) {
        None => String::new(),
        Some(None) => "<default>".to_string(),
        Some(Some(name)) => name.clone(),
    };
    let mut t = table(["USER", "CLIENT-ID", "IP", "QUOTA", "VALUE"]);
    for entity in &entities {
        for (key, value) in &entity.quotas {
            t.add_row([
                name(entity, USER),
                name(entity, CLIENT_ID),
                name(entity, IP),
                key.clone(),
                value.to_string(),
            ]);
        }
    }
    print_table(&t);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: QuotasCommand,
    }

    fn parse(args: &[&str]) -> QuotasCommand {
        Cli::try_parse_from(std::iter::once("quotas").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    fn alteration(args: &[&str]) -> anyhow::Result<Alteration> {
        match parse(args) {
            QuotasCommand::Alter(args) => Alteration::parse(&args),
            QuotasCommand::Describe(_) => unreachable!(),
        }
    }

    #[test]
    fn alter_takes_kafka_configs_entities_and_configs() {
        let a = alteration(&[
            "alter",
            "--user",
            "alice",
            "--client-id-default",
            "--add-config",
            "producer_byte_rate=1024, consumer_byte_rate = 2048",
            "--delete-config",
            "request_percentage",
        ])
        .unwrap();
        assert_eq!(
            a,
            Alteration {
                entity: vec![(USER, Some("alice".into())), (CLIENT_ID, None)],
                add: vec![
                    ("producer_byte_rate".into(), 1024.0),
                    ("consumer_byte_rate".into(), 2048.0)
                ],
                delete: vec!["request_percentage".into()],
            }
        );
        assert_eq!(
            a.done_message(),
            "Completed updating config for user alice."
        );
        let d = alteration(&[
            "alter",
            "--client-id-default",
            "--delete-config",
            "producer_byte_rate",
        ])
        .unwrap();
        assert_eq!(
            d.done_message(),
            "Completed updating default config for clients in the cluster."
        );
        let ip = alteration(&[
            "alter",
            "--ip",
            "10.0.0.1",
            "--add-config",
            "connection_creation_rate=5",
        ])
        .unwrap();
        assert_eq!(ip.entity, vec![(IP, Some("10.0.0.1".into()))]);
    }

    #[test]
    fn alter_refuses_what_kafka_configs_refuses() {
        let error = |args: &[&str]| alteration(args).unwrap_err().to_string();
        assert!(
            error(&["alter", "--add-config", "producer_byte_rate=1"]).contains("name the entity")
        );
        assert!(error(&["alter", "--user", "a"]).contains("--add-config or --delete-config"));
        assert!(error(&["alter", "--user", "a", "--add-config", "x=1"])
            .contains("Unexpected config names: x"));
        assert!(error(&[
            "alter",
            "--ip",
            "::1",
            "--add-config",
            "producer_byte_rate=1"
        ])
        .contains("Unexpected config names: producer_byte_rate"));
        assert!(error(&[
            "alter",
            "--ip",
            "::1",
            "--user",
            "a",
            "--add-config",
            "connection_creation_rate=1"
        ])
        .contains("cannot be combined"));
        assert_eq!(
            error(&[
                "alter",
                "--user",
                "a",
                "--add-config",
                "producer_byte_rate=lots"
            ]),
            "Cannot parse quota configuration value for producer_byte_rate: lots"
        );
        assert!(
            error(&["alter", "--user", "a", "--add-config", "producer_byte_rate"])
                .contains("key=val")
        );
        assert!(Cli::try_parse_from(["quotas", "alter", "--user", "a", "--user-default"]).is_err());
    }

    #[test]
    fn describe_filters_exactly_the_types_given() {
        let request = |args: &[&str]| match parse(args) {
            QuotasCommand::Describe(args) => describe_request(&args),
            QuotasCommand::Alter(_) => unreachable!(),
        };
        let all = request(&["describe"]);
        assert!(all.components.is_empty() && !all.strict);
        let r = request(&["describe", "--user", "alice", "--client-id"]);
        let components: Vec<(&str, i8, Option<&str>)> = r
            .components
            .iter()
            .map(|c| (c.entity_type.as_str(), c.match_type, c._match.as_deref()))
            .collect();
        assert_eq!(
            components,
            vec![
                ("user", MATCH_EXACT, Some("alice")),
                ("client-id", MATCH_ANY, None)
            ]
        );
        assert!(r.strict);
        let r = request(&["describe", "--user-default"]);
        assert_eq!(r.components[0].match_type, MATCH_DEFAULT);
    }
}
