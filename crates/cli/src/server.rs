//! `moldau server`: loads Kafka-style server.properties plus overrides and runs one
//! node until SIGINT or SIGTERM, then shuts it down cleanly (a second signal exits at once).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use clap::Args;
use moldau_broker::{Broker, ServerConfig};

use crate::args::{parse_key_value, KeyValue};
use crate::client::ShutdownSignals;
use crate::Failure;

#[derive(Args)]
pub struct ServerArgs {
    /// Kafka-style server.properties file. Without it: node.id=1,
    /// listeners=PLAINTEXT://127.0.0.1:9092, log.dirs=./data, combined roles.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set a config key, after the file (repeatable), e.g. --override log.dirs=/var/lib/moldau.
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    overrides: Vec<KeyValue>,
}

pub fn run(args: ServerArgs) -> Result<(), Failure> {
    let config = load_config(args.config.as_deref(), &args.overrides)?;
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("moldau")
        .build()
        .context("cannot start async runtime")?;
    runtime.block_on(serve(config)).map_err(Failure::from)
}

/// The server config from a properties file and `--override`s (exit code 2 when invalid;
/// unknown keys are logged as warnings). Also used by `moldau storage`.
pub fn load_config(path: Option<&Path>, overrides: &[KeyValue]) -> Result<ServerConfig, Failure> {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    let (config, warnings) = ServerConfig::load(path, &overrides).map_err(|e| Failure {
        code: 2,
        error: anyhow!("invalid configuration: {e}"),
    })?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

/// Every partition segment holds a descriptor: use all the hard limit allows, and say
/// what it is, since it bounds the partitions this node can host.
fn raise_open_files_limit() {
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    match moldau_broker::raise_nofile_limit() {
        Ok((before, hard, after)) => tracing::info!(
            "open files limit (RLIMIT_NOFILE): soft {} raised to {} (hard {})",
            show(before),
            show(after),
            show(hard)
        ),
        Err(e) => tracing::warn!("cannot raise the open files limit (RLIMIT_NOFILE): {e}"),
    }
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    // Caught from before startup, so that an early SIGTERM still shuts down cleanly.
    let mut signals = ShutdownSignals::new().context("cannot listen for SIGINT/SIGTERM")?;
    // A node may wait long at start (for a quorum majority): a signal stops that too.
    let broker = tokio::select! {
        started = Broker::start(config) => started.map_err(|e| anyhow!("cannot start broker: {e}"))?,
        _ = signals.recv() => {
            tracing::info!("stopped before the start completed (nothing was served)");
            return Ok(());
        }
    };
    tracing::info!("moldau is ready on {}", broker.bound_addr());
    signals.recv().await;
    tracing::info!("shutting down (a second SIGINT or SIGTERM exits at once)");
    tokio::select! {
        stopped = broker.shutdown() => stopped.map_err(|e| anyhow!("unclean shutdown: {e}"))?,
        _ = signals.recv() => {
            // The operator insists: exit without flushing; recovery on the next start
            // truncates whatever was not written whole.
            tracing::warn!("second signal: exiting without a clean shutdown");
            std::process::exit(130);
        }
    }
    tracing::info!("stopped cleanly");
    Ok(())
}
