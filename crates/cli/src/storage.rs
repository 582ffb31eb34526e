//! `moldau storage random-uuid|format|info`, like kafka-storage: prepare a node's data
//! directories (`meta.properties`, and the records `--add-scram` puts in the metadata log
//! at the first start) before its first start, and show what they hold.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use moldau_broker::meta_properties::{
    self, FormatOutcome, InitialControllers, InitialVoter, MetaProperties,
};
use moldau_broker::ServerConfig;

use crate::args::{parse_key_value, KeyValue};
use crate::Failure;

#[derive(Subcommand)]
pub enum StorageCommand {
    /// Print a new random cluster id (URL-safe base64 of a UUID, as Kafka's).
    RandomUuid,
    /// Write meta.properties (cluster id, node id, directory id) in every data directory
    /// (log.dirs and metadata.log.dir) of a server config.
    Format(FormatArgs),
    /// Show the meta.properties of every data directory of a server config.
    Info(ConfigArgs),
}

#[derive(Args)]
pub struct ConfigArgs {
    /// The server.properties file the node will start with.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set a config key, after the file (repeatable), as `moldau server --override`.
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    overrides: Vec<KeyValue>,
}

#[derive(Args)]
pub struct FormatArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The cluster id (from `moldau storage random-uuid`); every node of a cluster gets the same.
    #[arg(long, short = 't', value_name = "ID")]
    cluster_id: String,
    /// Skip directories that are already formatted instead of failing.
    #[arg(long, short = 'g')]
    ignore_formatted: bool,
    /// A dynamic quorum (controller.quorum.bootstrap.servers) whose only first voter is
    /// this controller.
    #[arg(long, short = 's', group = "initial")]
    standalone: bool,
    /// A dynamic quorum's first voters: id@host:port:directory-id,... (this controller
    /// among them).
    #[arg(long, short = 'I', value_name = "VOTERS", group = "initial")]
    initial_controllers: Option<String>,
    /// A controller that joins an existing dynamic quorum (added later with
    /// `moldau metadata-quorum add-controller`).
    #[arg(long, short = 'N', group = "initial")]
    no_initial_controllers: bool,
    /// A SCRAM credential to add to the metadata log at the first start (repeatable), as
    /// kafka-storage: 'SCRAM-SHA-256=[name=alice,password=alice-secret]' or
    /// 'SCRAM-SHA-512=[name=alice,iterations=8192,salt="N3E=",saltedpassword="YCE="]'.
    #[arg(long = "add-scram", short = 'S', value_name = "SCRAM_CREDENTIAL")]
    add_scram: Vec<String>,
}

pub fn run(command: StorageCommand) -> Result<(), Failure> {
    match command {
        StorageCommand::RandomUuid => {
            println!("{}", meta_properties::random_uuid());
            Ok(())
        }
        StorageCommand::Format(args) => {
            let config = load(&args.config)?;
            let initial = if args.standalone {
                InitialControllers::Standalone
            } else if let Some(voters) = &args.initial_controllers {
                InitialControllers::List(InitialVoter::parse_list(voters).map_err(|e| anyhow!(e))?)
            } else if args.no_initial_controllers {
                InitialControllers::Join
            } else {
                InitialControllers::None
            };
            // Checked (and salted) before any directory is written, as Kafka's formatter.
            let bootstrap =
                meta_properties::parse_add_scram(&args.add_scram).map_err(|e| anyhow!(e))?;
            let outcomes = meta_properties::format_with_bootstrap(
                &config,
                &args.cluster_id,
                args.ignore_formatted,
                &initial,
                &bootstrap,
            )
            .map_err(|e| anyhow!(e))?;
            for (dir, outcome) in outcomes {
                match outcome {
                    FormatOutcome::Formatted => println!(
                        "Formatting {} with cluster.id {} and node.id {}",
                        dir.display(),
                        args.cluster_id,
                        config.node_id
                    ),
                    FormatOutcome::Skipped => {
                        println!("Skipping {}: already formatted", dir.display())
                    }
                }
            }
            Ok(())
        }
        StorageCommand::Info(args) => {
            let config = load(&args)?;
            let mut unformatted = 0;
            for dir in meta_properties::data_dirs(&config) {
                match MetaProperties::read(&dir).map_err(|e| anyhow!(e))? {
                    Some(meta) => println!(
                        "{}: cluster.id={} node.id={} version={} directory.id={}",
                        dir.display(),
                        meta.cluster_id,
                        meta.node_id,
                        meta.version,
                        meta.directory_id.as_deref().unwrap_or("-")
                    ),
                    None => {
                        unformatted += 1;
                        println!("{}: not formatted", dir.display());
                    }
                }
            }
            if unformatted > 0 {
                // As kafka-storage info: a non-zero exit when a directory needs formatting.
                return Err(Failure {
                    code: 1,
                    error: anyhow!("{unformatted} data directory(ies) not formatted"),
                });
            }
            Ok(())
        }
    }
}

fn load(args: &ConfigArgs) -> Result<ServerConfig, Failure> {
    crate::server::load_config(args.config.as_deref(), &args.overrides)
}
