//! `moldau configs describe|alter`, like kafka-configs, for topics and brokers.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use rdkafka::admin::{AdminClient, ConfigEntry, ConfigSource, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use serde::Serialize;

use crate::args::{
    parse_config_list, parse_name_list, parse_topic, ConnectArgs, KeyValue, OutputArgs,
    OutputFormat,
};
use crate::client::{
    admin_client, admin_options, describe_code, describe_kafka_error, fetch_metadata,
    plain_consumer, runtime, topic_info, QuietContext,
};
use crate::incremental_alter::incremental_alter_configs;
use crate::output::{print_json, print_table, table};

#[derive(Subcommand)]
pub enum ConfigsCommand {
    /// Show the configs of a topic or a broker (overrides only, unless --all).
    Describe(DescribeArgs),
    /// Set or remove config overrides of a topic or a broker.
    Alter(AlterArgs),
}

/// Which resource: exactly one of --topic or --broker.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Entity {
    /// A topic.
    #[arg(long, short = 't', value_parser = parse_topic)]
    topic: Option<String>,
    /// A broker, by node id.
    #[arg(long, value_name = "NODE_ID", value_parser = clap::value_parser!(i32).range(0..))]
    broker: Option<i32>,
}

impl Entity {
    fn specifier(&self) -> ResourceSpecifier<'_> {
        match (&self.topic, self.broker) {
            (Some(topic), _) => ResourceSpecifier::Topic(topic),
            (None, Some(id)) => ResourceSpecifier::Broker(id),
            // clap's group guarantees one of the two.
            (None, None) => unreachable!("clap requires --topic or --broker"),
        }
    }
}

#[derive(Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    entity: Entity,
    /// List every config, including defaults, not only the overrides.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
    .args(["add_config", "delete_config"])))]
pub struct AlterArgs {
    #[command(flatten)]
    entity: Entity,
    /// Configs to set: k1=v1,k2=[v2a,v2b] (repeatable).
    #[arg(long, value_name = "K=V,...", value_parser = parse_config_list)]
    add_config: Vec<Vec<KeyValue>>,
    /// Config names to remove, back to their defaults: k1,k2 (repeatable).
    #[arg(long, value_name = "K,...", value_parser = parse_name_list)]
    delete_config: Vec<Vec<String>>,
    #[command(flatten)]
    conn: ConnectArgs,
}

pub fn run(cmd: ConfigsCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigsCommand::Describe(args) => describe_cmd(args),
        ConfigsCommand::Alter(args) => alter_cmd(args),
    }
}

/// A config entry as printed.
#[derive(Serialize)]
struct ConfigRow<'a> {
    name: &'a str,
    value: Option<&'a str>,
    source: &'static str,
    is_default: bool,
    is_sensitive: bool,
    is_read_only: bool,
}

fn describe_cmd(args: DescribeArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let admin = admin_client(conn)?;
    let spec = args.entity.specifier();
    check_exists(conn, spec)?;
    let mut entries = runtime()?.block_on(describe(&admin, conn, spec))?;
    if !args.all {
        entries.retain(|e| is_override(&e.source));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let rows: Vec<ConfigRow> = entries
        .iter()
        .map(|e| ConfigRow {
            name: &e.name,
            value: e.value.as_deref(),
            source: source_name(&e.source),
            is_default: e.is_default,
            is_sensitive: e.is_sensitive,
            is_read_only: e.is_read_only,
        })
        .collect();
    match args.output.output {
        OutputFormat::Json => print_json(&rows)?,
        OutputFormat::Table => {
            if rows.is_empty() {
                note!(
                    "No config overrides for {}; --all lists every config.",
                    entity_name(spec)
                );
                return Ok(());
            }
            let mut t = table(["NAME", "VALUE", "SOURCE", "SENSITIVE", "READ-ONLY"]);
            for r in &rows {
                let value = match (r.is_sensitive, r.value) {
                    (true, _) => "(sensitive)",
                    (false, Some(v)) => v,
                    (false, None) => "null",
                };
                t.add_row(vec![
                    r.name.to_string(),
                    value.to_string(),
                    r.source.to_string(),
                    r.is_sensitive.to_string(),
                    r.is_read_only.to_string(),
                ]);
            }
            print_table(&t);
        }
    }
    Ok(())
}

fn alter_cmd(args: AlterArgs) -> anyhow::Result<()> {
    let conn = &args.conn;
    let admin = admin_client(conn)?;
    let spec = args.entity.specifier();
    let set: Vec<KeyValue> = args.add_config.into_iter().flatten().collect();
    let delete: Vec<String> = args.delete_config.into_iter().flatten().collect();
    alter_incremental(&admin, conn, &runtime()?, spec, &set, &delete)?;
    say!("Completed updating config for {}.", entity_name(spec));
    Ok(())
}

/// All config entries of one resource.
pub async fn describe(
    admin: &AdminClient<QuietContext>,
    conn: &ConnectArgs,
    spec: ResourceSpecifier<'_>,
) -> anyhow::Result<Vec<ConfigEntry>> {
    let results = admin
        .describe_configs([&spec], &admin_options(conn))
        .await
        .map_err(|e| {
            anyhow!(
                "describe configs of {} failed: {}",
                entity_name(spec),
                describe_kafka_error(&e, conn)
            )
        })?;
    let Some(result) = results.into_iter().next() else {
        bail!(
            "describe configs of {}: empty answer from the broker",
            entity_name(spec)
        );
    };
    match result {
        Ok(resource) => Ok(resource.entries),
        Err(code) => bail!(
            "describe configs of {} failed: {}",
            entity_name(spec),
            describe_code(code, conn)
        ),
    }
}

/// Sets and removes overrides, keeping the others (IncrementalAlterConfigs).
///
/// Like kafka-configs, deleting a key that is not overridden is an error, which
/// catches typos: the broker itself would accept it as a no-op.
pub fn alter_incremental(
    admin: &AdminClient<QuietContext>,
    conn: &ConnectArgs,
    rt: &tokio::runtime::Runtime,
    spec: ResourceSpecifier<'_>,
    set: &[KeyValue],
    delete: &[String],
) -> anyhow::Result<()> {
    check_exists(conn, spec)?;
    if !delete.is_empty() {
        let entries = rt.block_on(describe(admin, conn, spec))?;
        let is_set = |name: &str| {
            entries
                .iter()
                .any(|e| e.name == name && e.source == own_override_source(spec))
        };
        if let Some(name) = delete.iter().find(|name| !is_set(name)) {
            bail!(
                "config '{name}' is not set on {}, nothing to delete",
                entity_name(spec)
            );
        }
    }
    incremental_alter_configs(admin, spec, set, delete, conn.request_timeout())
        .map_err(|e| anyhow!("alter configs of {} failed: {e:#}", entity_name(spec)))
}

/// Fails, in words, for a topic or broker the cluster does not have: the admin
/// API would time out waiting for an unknown broker id.
fn check_exists(conn: &ConnectArgs, spec: ResourceSpecifier<'_>) -> anyhow::Result<()> {
    // A consumer, because a producer-type client's metadata request may auto-create the topic.
    let consumer = plain_consumer(conn, &[])?;
    match spec {
        ResourceSpecifier::Topic(topic) => {
            topic_info(consumer.client(), conn, topic)?;
        }
        ResourceSpecifier::Broker(id) => {
            let metadata = fetch_metadata(consumer.client(), conn, None)?;
            let mut ids: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
            if !ids.contains(&id) {
                ids.sort_unstable();
                bail!(
                    "broker {id} is not in the cluster (brokers: {})",
                    crate::output::id_list(&ids)
                );
            }
        }
        ResourceSpecifier::Group(_) => {}
    }
    Ok(())
}

/// Whether an entry is an override (what kafka-configs shows without --all).
pub fn is_override(source: &ConfigSource) -> bool {
    matches!(
        source,
        ConfigSource::DynamicTopic
            | ConfigSource::DynamicBroker
            | ConfigSource::DynamicDefaultBroker
    )
}

/// The source whose entries an AlterConfigs on this resource replaces.
fn own_override_source(spec: ResourceSpecifier<'_>) -> ConfigSource {
    match spec {
        ResourceSpecifier::Broker(_) => ConfigSource::DynamicBroker,
        _ => ConfigSource::DynamicTopic,
    }
}

/// Kafka's names for config sources.
fn source_name(source: &ConfigSource) -> &'static str {
    match source {
        ConfigSource::Unknown => "UNKNOWN",
        ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
        ConfigSource::Default => "DEFAULT_CONFIG",
    }
}

fn entity_name(spec: ResourceSpecifier<'_>) -> String {
    match spec {
        ResourceSpecifier::Topic(t) => format!("topic '{t}'"),
        ResourceSpecifier::Broker(id) => format!("broker {id}"),
        ResourceSpecifier::Group(g) => format!("group '{g}'"),
    }
}
