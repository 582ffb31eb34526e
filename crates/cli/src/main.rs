//! The `moldau` binary: the broker (`moldau server`) and the command-line tools
//! that talk to any Kafka-compatible cluster through librdkafka (and, for the admin
//! requests librdkafka lacks, through the small protocol client `moldau_wire`).
//!
//! Every failure ends as one line on stderr and a non-zero exit code: 2 for bad
//! usage or configuration (clap's convention), 1 for everything else.

#[macro_use]
mod output;

mod acls;
mod args;
mod client;
mod cluster;
mod configs;
mod connect;
mod consume;
mod group_admin;
mod groups;
mod incremental_alter;
mod leaders;
mod log_dirs;
mod metadata_quorum;
mod perf;
mod produce;
mod quotas;
mod reassign;
mod server;
mod storage;
mod topics;
mod transactions;
mod users;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Moldau: a Kafka-compatible event streaming platform in one binary.
#[derive(Parser)]
#[command(name = "moldau", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker node (combined broker and controller roles).
    Server(server::ServerArgs),
    /// Run a Kafka Connect worker (standalone or distributed) with built-in connectors.
    #[command(subcommand)]
    Connect(connect::ConnectCommand),
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// Produce records, one per line, from stdin or a file.
    Produce(produce::ProduceArgs),
    /// Consume records from a topic and print them.
    Consume(consume::ConsumeArgs),
    /// Describe and alter topic or broker configs.
    #[command(subcommand)]
    Configs(configs::ConfigsCommand),
    /// List, describe and delete consumer groups; reset offsets; rate lag.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// List and describe transactions and their producers; abort hanging transactions.
    #[command(subcommand)]
    Transactions(transactions::TransactionsCommand),
    /// Measure producer or consumer throughput and latency.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// Format data directories (meta.properties) and show them, like kafka-storage.
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Show the cluster: its id, the active controller and the brokers.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Describe the metadata quorum, like kafka-metadata-quorum.
    #[command(subcommand)]
    MetadataQuorum(metadata_quorum::MetadataQuorumCommand),
    /// Describe every broker's log directories, like kafka-log-dirs.
    #[command(subcommand)]
    LogDirs(log_dirs::LogDirsCommand),
    /// Elect partition leaders on demand, like kafka-leader-election.
    #[command(subcommand)]
    Leaders(leaders::LeadersCommand),
    /// Move partitions between brokers, like kafka-reassign-partitions.
    #[command(subcommand)]
    Reassign(reassign::ReassignCommand),
    /// Set, delete and describe users' SCRAM credentials, like kafka-configs
    /// --entity-type users.
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Add, list and remove ACLs, like kafka-acls.
    #[command(subcommand)]
    Acls(acls::AclsCommand),
    /// Set, delete and describe client quotas, like kafka-configs --entity-type
    /// users|clients|ips with quota configs.
    #[command(subcommand)]
    Quotas(quotas::QuotasCommand),
}

/// A failure with the exit code it should produce.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure { code: 1, error }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_server = matches!(cli.command, Command::Server(_) | Command::Connect(_));
    init_logging(if is_server { "info" } else { "warn" });
    let result = match cli.command {
        Command::Server(args) => server::run(args),
        Command::Connect(cmd) => connect::run(cmd),
        Command::Topics(cmd) => topics::run(cmd).map_err(Failure::from),
        Command::Produce(args) => produce::run(args).map_err(Failure::from),
        Command::Consume(args) => consume::run(args).map_err(Failure::from),
        Command::Configs(cmd) => configs::run(cmd).map_err(Failure::from),
        Command::Groups(cmd) => groups::run(cmd).map_err(Failure::from),
        Command::Transactions(cmd) => transactions::run(cmd),
        Command::Perf(cmd) => perf::run(cmd).map_err(Failure::from),
        Command::Storage(cmd) => storage::run(cmd),
        Command::Cluster(cmd) => cluster::run(cmd),
        Command::MetadataQuorum(cmd) => metadata_quorum::run(cmd),
        Command::LogDirs(cmd) => log_dirs::run(cmd),
        Command::Leaders(cmd) => leaders::run(cmd),
        Command::Reassign(cmd) => reassign::run(cmd),
        Command::Users(cmd) => users::run(cmd),
        Command::Acls(cmd) => acls::run(cmd),
        Command::Quotas(cmd) => quotas::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // `{:#}` puts anyhow's context chain on one line; messages from
            // librdkafka or the OS may still carry line breaks.
            let message = format!("{:#}", failure.error);
            let message: Vec<&str> = message
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            note!("error: {}", message.join(" "));
            ExitCode::from(failure.code)
        }
    }
}

/// Changes the log filter at run time (`moldau connect`'s `/admin/loggers`).
pub type LogReload =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Set once logging is up.
pub static LOG_RELOAD: std::sync::OnceLock<LogReload> = std::sync::OnceLock::new();

/// The filter from `RUST_LOG` or the default level; openraft narrates every vote and
/// append at INFO: its warnings are what an operator needs, unless RUST_LOG asks for
/// openraft by name.
pub fn log_filter(default_level: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let asked_for_openraft = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("openraft"));
    if !asked_for_openraft {
        if let Ok(directive) = "openraft=warn".parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Logs go to stderr so that command output on stdout stays clean for scripts.
fn init_logging(default_level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(log_filter(default_level));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    let _ = LOG_RELOAD.set(handle);
}

#[cfg(test)]
mod tests {
    /// clap checks the whole command tree (unique argument names across flattened groups,
    /// ...) only when a command is built: every subcommand, at once.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
