//! Starting a worker: Kafka's `ConnectStandalone` (and, later, `ConnectDistributed`):
//! worker properties in, REST listener up, connectors from files created.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Props, WorkerConfig, WorkerMode};
use crate::distributed::herder::DistributedHerder;
use crate::distributed::kafka_log::KafkaLog;
use crate::distributed::member::GroupMember;
use crate::distributed::offsets::KafkaOffsetStore;
use crate::rest::{CreateConnectorRequest, ErrorMessage};
use crate::rest_server::{serve, LoggerControl, RestServer};
use crate::security::{client_security, forwarding_agent, rest_tls, top_level, RestTls};
use crate::worker::{FileOffsetStore, Herder, HerderApi, Plugins, WorkerContext, WorkerError};

/// A failure to start a worker, naming the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Worker(#[from] WorkerError),
    #[error("Failed to create connector {name}: {}", .error.message)]
    Connector { name: String, error: ErrorMessage },
    #[error("REST listener {listener}: {error}")]
    Listener {
        listener: String,
        error: std::io::Error,
    },
}

/// A running worker.
pub struct RunningWorker {
    pub herder: Arc<dyn HerderApi>,
    /// The distributed herder, to stop it (leave the group) on shutdown.
    distributed: Option<Arc<DistributedHerder>>,
    /// The standalone herder.
    standalone: Option<Arc<Herder>>,
    pub rest_addr: SocketAddr,
    /// `http` or `https`: the REST listener's scheme.
    pub rest_scheme: &'static str,
    rest_task: tokio::task::JoinHandle<()>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl RunningWorker {
    /// The REST API's base URL (`http://127.0.0.1:8083`, `https://...` for an https
    /// listener).
    pub fn rest_url(&self) -> String {
        format!("{}://{}", self.rest_scheme, self.rest_addr)
    }

    /// Stops every connector and task (each within `task.shutdown.graceful.timeout.ms`)
    /// and the REST listener.
    pub async fn shutdown(self) {
        self.rest_task.abort();
        if let Some(h) = &self.standalone {
            h.shutdown().await;
        }
        if let Some(h) = &self.distributed {
            h.shutdown().await;
            // The loop leaves the group when it sees the stop.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.supervisor).await;
        } else {
            self.supervisor.abort();
        }
    }

    /// Kills the worker without a goodbye (tests: a crashed worker).
    pub fn abort(self) {
        self.rest_task.abort();
        self.supervisor.abort();
    }
}

/// Parses a `listeners` URL (`http://host:port` or `https://host:port`, empty host = every
/// interface) into a bind address. Anything else is refused, naming it (fail closed).
pub fn listener_bind_address(listener: &str) -> Result<String, StartError> {
    listener_scheme_and_address(listener).map(|(_, address)| address)
}

/// The scheme (`http`, `https`) and bind address of a `listeners` URL.
pub fn listener_scheme_and_address(listener: &str) -> Result<(&'static str, String), StartError> {
    let bad = |m: &str| {
        StartError::Config(format!(
            "Invalid value {listener} for configuration listeners: {m}"
        ))
    };
    let lower = listener.to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("http://") {
        ("http", &listener["http://".len()..])
    } else if lower.starts_with("https://") {
        ("https", &listener["https://".len()..])
    } else {
        return Err(bad("expected http://host:port or https://host:port"));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("expected http://host:port or https://host:port"))?;
    let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok((scheme, format!("{host}:{port}")))
}

/// The REST listener of `config.listeners`: its URL, scheme and bind address, and its TLS
/// for https (also the client's of the requests between workers). Moldau serves one
/// listener: a second one is refused, as is `rest.advertised.listener` naming a scheme
/// the listener does not serve.
pub fn rest_listener(
    config: &WorkerConfig,
) -> Result<(String, &'static str, String, Option<RestTls>), StartError> {
    let listener = config
        .listeners
        .first()
        .cloned()
        .unwrap_or_else(|| "http://:8083".into());
    if let Some(second) = config.listeners.get(1) {
        return Err(StartError::Config(format!(
            "Invalid value {} for configuration listeners: Moldau Connect serves one REST \
             listener; {second} would not be served",
            config.listeners.join(",")
        )));
    }
    let (scheme, bind) = listener_scheme_and_address(&listener)?;
    if let Some(advertised) = &config.rest_advertised_listener {
        if !advertised.trim().eq_ignore_ascii_case(scheme) {
            return Err(StartError::Config(format!(
                "rest.advertised.listener: {advertised} is not served (the REST listener is \
                 {listener})"
            )));
        }
    }
    let tls = if scheme == "https" {
        Some(rest_tls(&config.originals).map_err(StartError::Config)?)
    } else {
        None
    };
    Ok((listener, scheme, bind, tls))
}

/// The librdkafka properties every client of the worker starts from: `bootstrap.servers`
/// and the worker's client security (its top-level `security.protocol`, `sasl.*`, `ssl.*`,
/// translated; `crate::security`). The `producer.`, `consumer.` and `admin.` security keys
/// are checked here too, so that what a connector's clients would refuse fails the start.
pub fn worker_kafka_props(config: &WorkerConfig) -> Result<Props, StartError> {
    let mut p = Props::new();
    p.insert(
        "bootstrap.servers".into(),
        config.bootstrap_servers.join(","),
    );
    let top = top_level(&config.originals);
    p.extend(client_security(&[("", &top)], "the worker's clients").map_err(StartError::Config)?);
    for (prefix, props, client) in [
        ("producer.", &config.producer, "the worker's producers"),
        ("consumer.", &config.consumer, "the worker's consumers"),
        ("admin.", &config.admin, "the worker's admin clients"),
    ] {
        if props.keys().any(|k| crate::security::is_security_key(k)) {
            client_security(&[("", &top), (prefix, props)], client).map_err(StartError::Config)?;
        }
    }
    Ok(p)
}

/// A client context that keeps the last authentication or TLS failure librdkafka reports
/// (and logs every error, as the default context does).
#[derive(Default)]
struct SecurityErrors {
    last: parking_lot::Mutex<Option<String>>,
}

impl rdkafka::ClientContext for SecurityErrors {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::types::RDKafkaErrorCode;
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL)
        ) {
            *self.last.lock() = Some(reason.to_string());
        }
        tracing::error!("librdkafka: {error}: {reason}");
    }
}

impl rdkafka::producer::ProducerContext for SecurityErrors {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// The Kafka cluster's id (Kafka's worker looks it up before it starts, and `GET /` shows
/// it); an unreachable cluster is a start error, and a refused authentication or TLS
/// handshake one at once, with librdkafka's reason.
async fn kafka_cluster_id(kafka_props: &Props) -> Result<String, StartError> {
    let props = kafka_props.clone();
    let bootstrap = props.get("bootstrap.servers").cloned().unwrap_or_default();
    tokio::task::spawn_blocking(move || {
        use rdkafka::producer::Producer as _;
        // A producer that sends nothing: polling it serves librdkafka's error events.
        let client: rdkafka::producer::BaseProducer<SecurityErrors> =
            crate::worker::client_config(&props)
                .create_with_context(SecurityErrors::default())
                .map_err(|e| StartError::Config(format!("Kafka client: {e}")))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(id) = client
                .client()
                .fetch_cluster_id(std::time::Duration::from_millis(500))
            {
                return Ok(id);
            }
            client.poll(std::time::Duration::ZERO);
            if let Some(reason) = client.context().last.lock().clone() {
                return Err(StartError::Config(format!(
                    "cannot connect to the Kafka cluster at bootstrap.servers={bootstrap}: \
                     {reason}"
                )));
            }
            if std::time::Instant::now() >= deadline {
                return Err(StartError::Config(format!(
                    "cannot reach the Kafka cluster at bootstrap.servers={bootstrap} (no \
                     cluster id within 30 s)"
                )));
            }
        }
    })
    .await
    .map_err(|e| StartError::Config(e.to_string()))?
}

/// A connector given as JSON (a `.json` connector file, KIP-980): Kafka's create request
/// (`{"name":..,"config":{..}}`) or a bare config object. The name must be there.
pub fn connector_from_json(text: &str) -> Result<(String, Props), String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let config: Props = if json.get("config").is_some() {
        let req: CreateConnectorRequest =
            serde_json::from_value(json).map_err(|e| e.to_string())?;
        let mut config = req.config.unwrap_or_default();
        if let Some(name) = req.name {
            config.insert("name".into(), name);
        }
        config
    } else {
        serde_json::from_value(json)
            .map_err(|e| format!("expected an object of string values: {e}"))?
    };
    connector_name(config)
}

/// The connector's `name` with its config (a config without a name is an error).
pub fn connector_name(config: Props) -> Result<(String, Props), String> {
    let name = config
        .get("name")
        .cloned()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| "the connector config has no name".to_string())?;
    Ok((name, config))
}

/// Starts a standalone worker: offsets in `offset.storage.file.filename`, the connectors of
/// the given configs created (and a bad one an error naming it).
pub async fn start_standalone(
    worker_props: Props,
    connectors: Vec<(String, Props)>,
    plugins: Plugins,
    loggers: Option<Arc<dyn LoggerControl>>,
) -> Result<RunningWorker, StartError> {
    let config = WorkerConfig::parse(&worker_props, WorkerMode::Standalone)
        .map_err(|e| StartError::Config(e.to_string()))?;
    for k in &config.unknown_keys {
        tracing::warn!("The configuration '{k}' was supplied but isn't a known config.");
    }
    let kafka_props = worker_kafka_props(&config)?;
    let (listener, rest_scheme, bind, tls) = rest_listener(&config)?;
    let cluster_id = kafka_cluster_id(&kafka_props).await?;
    let offsets_file = config
        .offset_storage_file_filename
        .clone()
        .ok_or_else(|| StartError::Config("Missing required configuration \"offset.storage.file.filename\" which has no default value.".into()))?;
    let offsets = Arc::new(FileOffsetStore::open(&offsets_file)?);
    let (listen, worker_id) = bind_rest(&config, listener.clone(), &bind).await?;
    let rest_addr = listen.local_addr().map_err(|error| StartError::Listener {
        listener: listener.clone(),
        error,
    })?;
    drop(listen);
    let ctx = Arc::new(WorkerContext {
        config,
        worker_id,
        kafka_props,
        offsets,
        plugins,
    });
    let herder = Herder::new(ctx, worker_props);
    let supervisor = herder.spawn_supervisor();
    let server = Arc::new(RestServer {
        herder: herder.clone(),
        loggers,
        kafka_cluster_id: Some(cluster_id),
        scheme: rest_scheme,
        forward_agent: forwarding_agent(tls.as_ref()),
    });
    let (rest_addr, rest_task) = serve(server, &rest_addr.to_string(), tls.map(|t| t.server))
        .await
        .map_err(|error| StartError::Listener { listener, error })?;
    for (name, config) in connectors {
        if let Err(error) = herder.put_connector(&name, config, false, None).await {
            herder.shutdown().await;
            rest_task.abort();
            return Err(StartError::Connector { name, error });
        }
    }
    Ok(RunningWorker {
        herder: herder.clone(),
        distributed: None,
        standalone: Some(herder),
        rest_addr,
        rest_scheme,
        rest_task,
        supervisor,
    })
}

/// Binds the REST listener of `config.listeners` (port 0 picks one) and returns the bound
/// listener with the worker id (`host:port`, advertised settings first).
async fn bind_rest(
    config: &WorkerConfig,
    listener: String,
    bind: &str,
) -> Result<(tokio::net::TcpListener, String), StartError> {
    let listen =
        tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|error| StartError::Listener {
                listener: listener.clone(),
                error,
            })?;
    let addr = listen
        .local_addr()
        .map_err(|error| StartError::Listener { listener, error })?;
    // Bound to every interface: the machine's name, as Kafka advertises its host then.
    let host = config.rest_advertised_host_name.clone().unwrap_or_else(|| {
        if addr.ip().is_unspecified() {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "127.0.0.1".to_string())
        } else {
            addr.ip().to_string()
        }
    });
    let port = config
        .rest_advertised_port
        .map(|p| p as u16)
        .unwrap_or(addr.port());
    Ok((listen, format!("{host}:{port}")))
}

/// Starts a distributed worker: joins the group `group.id` with the other workers of it;
/// configs, offsets and statuses in their topics.
pub async fn start_distributed(
    worker_props: Props,
    plugins: Plugins,
    loggers: Option<Arc<dyn LoggerControl>>,
) -> Result<RunningWorker, StartError> {
    let config = WorkerConfig::parse(&worker_props, WorkerMode::Distributed)
        .map_err(|e| StartError::Config(e.to_string()))?;
    for k in &config.unknown_keys {
        tracing::warn!("The configuration '{k}' was supplied but isn't a known config.");
    }
    let settings = config
        .distributed
        .clone()
        .ok_or_else(|| StartError::Config("not a distributed worker configuration".into()))?;
    let kafka_props = worker_kafka_props(&config)?;
    // The group membership (moldau-wire) connects as the worker's librdkafka clients do.
    let wire_security = moldau_wire::WireSecurity::from_librdkafka(&kafka_props).map_err(|e| {
        StartError::Config(format!(
            "{e} (the distributed worker's group membership, through moldau-wire)"
        ))
    })?;
    let (listener, rest_scheme, bind, tls) = rest_listener(&config)?;
    if let Some(key) = tls.as_ref().and_then(|t| t.no_hostname_check.clone()) {
        return Err(StartError::Config(format!(
            "{key}: an empty value (no host name check) is not supported for the requests \
             between workers; give the workers certificates for their advertised host names"
        )));
    }
    let cluster_id = kafka_cluster_id(&kafka_props).await?;
    let offsets_log = KafkaLog::open(&kafka_props, &settings.offset_storage).await?;
    let offsets = Arc::new(KafkaOffsetStore::open(offsets_log).await?);
    let (listen, worker_id) = bind_rest(&config, listener, &bind).await?;
    let rest_addr = listen.local_addr().map_err(|error| StartError::Listener {
        listener: worker_id.clone(),
        error,
    })?;
    drop(listen);
    let bootstrap = config.bootstrap_servers.join(",");
    let ctx = Arc::new(WorkerContext {
        config,
        worker_id: worker_id.clone(),
        kafka_props,
        offsets,
        plugins,
    });
    let herder =
        DistributedHerder::open(ctx, worker_props, format!("{rest_scheme}://{worker_id}/")).await?;
    let member = GroupMember::connect(
        &bootstrap,
        moldau_wire::ClientSettings {
            client_id: format!("connect-{worker_id}"),
            timeout: std::time::Duration::from_secs(30),
            security: wire_security,
        },
        &settings.group_id,
        settings.session_timeout_ms,
        settings.rebalance_timeout_ms,
    )
    .await
    .map_err(|e| {
        StartError::Config(format!("cannot reach the Kafka cluster ({bootstrap}): {e}"))
    })?;
    let supervisor = tokio::spawn(herder.clone().run(member));
    let server = Arc::new(RestServer {
        herder: herder.clone(),
        loggers,
        kafka_cluster_id: Some(cluster_id),
        scheme: rest_scheme,
        forward_agent: forwarding_agent(tls.as_ref()),
    });
    let (rest_addr, rest_task) = serve(server, &rest_addr.to_string(), tls.map(|t| t.server))
        .await
        .map_err(|error| StartError::Listener {
            listener: worker_id,
            error,
        })?;
    Ok(RunningWorker {
        herder: herder.clone(),
        distributed: Some(herder),
        standalone: None,
        rest_addr,
        rest_scheme,
        rest_task,
        supervisor,
    })
}
