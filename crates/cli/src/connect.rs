//! `moldau connect`: a Kafka Connect worker in this binary (`moldau_connect`), started as
//! Kafka's `connect-standalone` and `connect-distributed` scripts start theirs.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::sync::Arc;

use moldau_connect::config::Props;
use moldau_connect::rest::{LoggerLevel, LoggerLevels};
use moldau_connect::rest_server::LoggerControl;
use moldau_connect::runtime;
use moldau_connect::worker::Plugins;

use crate::client::{java_properties, ShutdownSignals};
use crate::Failure;

#[derive(Subcommand)]
pub enum ConnectCommand {
    /// Run a standalone worker (like connect-standalone): its connectors from
    /// CONNECTOR files (.properties, or .json as for the REST API), source offsets in
    /// offset.storage.file.filename, the REST API on `listeners` (default http://:8083).
    Standalone {
        /// The worker's properties (Kafka Connect's keys: bootstrap.servers, converters...).
        #[arg(value_name = "WORKER.properties")]
        worker: PathBuf,
        /// Connector configurations to create at start.
        #[arg(value_name = "CONNECTOR")]
        connectors: Vec<PathBuf>,
    },
    /// Run a distributed worker (like connect-distributed): configs, offsets and statuses
    /// in Kafka topics, work shared with the other workers of the same group.id.
    Distributed {
        #[arg(value_name = "WORKER.properties")]
        worker: PathBuf,
    },
}

/// `/admin/loggers` on the binary's log filter: `root` is the default level, any other
/// logger a `target=level` directive (Rust targets such as `moldau_connect::worker`; Java
/// logger names are kept and shown but match no Rust target).
struct TracingLoggers {
    levels: std::sync::Mutex<BTreeMap<String, LoggerLevel>>,
}

impl TracingLoggers {
    fn new() -> TracingLoggers {
        let root = std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.contains('=') && !v.contains(','))
            .unwrap_or_else(|| "info".into())
            .to_ascii_uppercase();
        TracingLoggers {
            levels: std::sync::Mutex::new(BTreeMap::from([(
                "root".to_string(),
                LoggerLevel {
                    level: root,
                    last_modified: None,
                },
            )])),
        }
    }

    /// log4j's level as tracing's.
    fn tracing_level(level: &str) -> &'static str {
        match level.to_ascii_uppercase().as_str() {
            "OFF" => "off",
            "FATAL" | "ERROR" => "error",
            "WARN" => "warn",
            "INFO" => "info",
            "DEBUG" => "debug",
            _ => "trace",
        }
    }
}

impl LoggerControl for TracingLoggers {
    fn levels(&self) -> LoggerLevels {
        self.levels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_level(&self, logger: &str, level: &str) -> Result<Vec<String>, String> {
        let mut levels = self.levels.lock().unwrap_or_else(|e| e.into_inner());
        let level = level.to_ascii_uppercase();
        if levels.get(logger).is_some_and(|l| l.level == level) {
            return Ok(Vec::new());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .ok();
        levels.insert(
            logger.to_string(),
            LoggerLevel {
                level,
                last_modified: now,
            },
        );
        let root = levels
            .get("root")
            .map(|l| l.level.clone())
            .unwrap_or_else(|| "INFO".into());
        let mut filter = crate::log_filter(Self::tracing_level(&root));
        for (name, l) in levels.iter().filter(|(n, _)| *n != "root") {
            match format!("{name}={}", Self::tracing_level(&l.level)).parse() {
                Ok(directive) => filter = filter.add_directive(directive),
                Err(e) => return Err(format!("logger {name}: {e}")),
            }
        }
        if let Some(handle) = crate::LOG_RELOAD.get() {
            handle.reload(filter).map_err(|e| e.to_string())?;
        }
        Ok(vec![logger.to_string()])
    }
}

fn usage(error: anyhow::Error) -> Failure {
    Failure { code: 2, error }
}

fn read_properties(path: &Path) -> Result<Props, Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(usage)?;
    java_properties::parse(&java_properties::decode(&bytes))
        .map_err(|e| usage(anyhow!("{} line {}: {}", path.display(), e.line, e.message)))
}

fn read_connector(path: &Path) -> Result<(String, Props), Failure> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let result = if is_json {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .map_err(usage)?;
        runtime::connector_from_json(&text)
    } else {
        runtime::connector_name(read_properties(path)?)
    };
    result.map_err(|e| usage(anyhow!("connector file {}: {e}", path.display())))
}

pub fn run(cmd: ConnectCommand) -> Result<(), Failure> {
    let (worker, connectors, distributed) = match cmd {
        ConnectCommand::Standalone { worker, connectors } => (worker, connectors, false),
        ConnectCommand::Distributed { worker } => (worker, Vec::new(), true),
    };
    let worker_props = read_properties(&worker)?;
    let connectors = connectors
        .iter()
        .map(|p| read_connector(p))
        .collect::<Result<Vec<_>, _>>()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("moldau-connect")
        .build()
        .context("cannot start async runtime")?;
    rt.block_on(async move {
        let mut signals = ShutdownSignals::new().context("cannot listen for SIGINT/SIGTERM")?;
        let loggers: Arc<dyn LoggerControl> = Arc::new(TracingLoggers::new());
        let started = if distributed {
            runtime::start_distributed(worker_props, Plugins::default(), Some(loggers)).await
        } else {
            runtime::start_standalone(worker_props, connectors, Plugins::default(), Some(loggers))
                .await
        };
        let running = started.map_err(|e| usage(anyhow!("{e}")))?;
        tracing::info!("Kafka Connect started; REST API on {}", running.rest_url());
        signals.recv().await;
        tracing::info!("Kafka Connect stopping");
        running.shutdown().await;
        tracing::info!("Kafka Connect stopped");
        Ok(())
    })
}
